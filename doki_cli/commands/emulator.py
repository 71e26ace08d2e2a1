"""`doki emulator`: run the local Google control plane, find it, point shells at it, stop it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from doki_cli.context import app_of
from doki_cli.errors import Code, DokiError
from doki_cli.globaloptions import DokiTyper

if TYPE_CHECKING:
    from doki_cli.emulator.process import Running
    from doki_cli.output import Output

app = DokiTyper(
    help="A local emulator of the Google APIs doki uses (Cloud Run, Secret Manager, Cloud Build, Logging, ...).",
    no_args_is_help=True,
)

StateDirOption = Annotated[
    Path,
    typer.Option(
        "--state-dir",
        envvar="DOKI_EMULATOR_STATE_DIR",
        help="Where the emulator keeps its state between runs.",
    ),
]
DEFAULT_STATE_DIR = Path(".doki/emulator")


@contextmanager
def _reported() -> Iterator[None]:
    """The emulator's failures as doki's: the emulator has its own error type (it imports nothing of doki), which
    becomes a DokiError here with the same code, message and hint."""
    from doki_cli.emulator.process import EmulatorError

    try:
        yield
    except EmulatorError as err:
        raise DokiError(Code[err.code.value.upper()], err.message, err.hint) from None


@app.command("start")
def start(
    ctx: typer.Context,
    port: Annotated[int, typer.Option("--port", help="gRPC port (Cloud Run, Secret Manager, Build, Logging, ...).")] = (
        8470
    ),
    rest_port: Annotated[int, typer.Option("--rest-port", help="REST port (gcloud, Cloud Storage, control API).")] = (
        8471
    ),
    registry_port: Annotated[
        int, typer.Option("--registry-port", help="Docker registry port (docker push/pull of its images).")
    ] = 8472,
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    foreground: Annotated[bool, typer.Option("--foreground", help="Run in this terminal until Ctrl-C.")] = False,
    no_docker: Annotated[
        bool, typer.Option("--no-docker", help="Do not use a Docker engine: revisions never become Ready.")
    ] = False,
) -> None:
    """Start the emulator in the background (or --foreground) and print how to point clients at it."""
    from doki_cli.emulator import process

    out = app_of(ctx).output
    for name, value in (("--port", port), ("--rest-port", rest_port), ("--registry-port", registry_port)):
        if not 0 <= value <= 65535:
            raise DokiError(Code.BAD_OPTION, f"{name} {value} is not a port", f"use a port from 1 to 65535 for {name}")
    if port and port == rest_port:
        raise DokiError(Code.BAD_OPTION, f"--port and --rest-port are both {port}", "give them different ports")
    if registry_port and registry_port in (port, rest_port):
        raise DokiError(
            Code.BAD_OPTION, f"--registry-port {registry_port} is taken by another option", "give it a port of its own"
        )
    state_dir = state_dir.resolve()
    with _reported():
        running = process.find_running(state_dir)
    if running is not None:
        out.note(f"an emulator for {state_dir} is already running (pid {running.pid})")
        _show(out, running)
        return
    if foreground:
        _run_foreground(
            out, port=port, rest_port=rest_port, registry_port=registry_port, state_dir=state_dir, no_docker=no_docker
        )
        return
    args = ["--port", str(port), "--rest-port", str(rest_port), "--registry-port", str(registry_port)]
    args += ["--state-dir", str(state_dir)]
    with _reported():
        running = process.spawn(state_dir, args + (["--no-docker"] if no_docker else []))
    _show(out, running)
    out.note(f"Point this shell at it: {env_command(state_dir)}; log: {state_dir / process.LOG_FILE}")


def env_command(state_dir: Path) -> str:
    """The line that points a shell at the emulator of `state_dir`, to paste as it is: `--state-dir` named unless
    it is the default one of the working directory, where `doki emulator env` looks without it."""
    import shlex

    if state_dir == DEFAULT_STATE_DIR.resolve():
        return 'eval "$(doki emulator env)"'
    return f'eval "$(doki emulator env --state-dir {shlex.quote(str(state_dir))})"'


def _run_foreground(
    out: Output, *, port: int, rest_port: int, registry_port: int, state_dir: Path, no_docker: bool
) -> None:
    import logging
    import os
    import signal
    import threading

    from doki_cli.emulator import process
    from doki_cli.emulator.server import Emulator, EmulatorConfig
    from doki_cli.engine import DockerEngine

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    engine = None
    if not no_docker:
        try:
            engine = DockerEngine.connect()
        except DokiError as err:
            out.note(f"No Docker engine ({err.message}): every API answers, but revisions cannot become Ready.")
    config = EmulatorConfig(grpc_port=port, rest_port=rest_port, registry_port=registry_port, state_dir=state_dir)
    emulator = Emulator(config, engine=engine)
    try:
        emulator.start()
    except (OSError, RuntimeError) as exc:
        emulator.stop()
        raise DokiError(
            Code.EMULATOR_PORT_IN_USE,
            f"cannot listen on 127.0.0.1:{port} (gRPC), 127.0.0.1:{rest_port} (REST) and "
            f"127.0.0.1:{registry_port} (registry): {exc}",
            "pass free ports with --port, --rest-port and --registry-port, or stop what uses them",
        ) from None
    status = emulator.status()
    running = process.Running(
        os.getpid(), status["grpc"], status["rest"], str(state_dir), engine is not None, status["registry"]
    )
    process.write_running(state_dir, running)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    _show(out, running)
    try:
        # Woken by a signal, or by the control API's shutdown having stopped the emulator.
        while not stop.wait(0.5) and not emulator.stopped.is_set():
            pass
    finally:
        emulator.stop()
        process.clear_running(state_dir, running.pid)
    out.note("emulator stopped; state saved in " + str(state_dir))


def _show(out: Output, running: Running) -> None:
    from dataclasses import asdict

    out.data(asdict(running))
    out.line(f"Emulator running (pid {running.pid})")
    out.line(f"  gRPC      {running.grpc}")
    out.line(f"  REST      {running.rest}")
    if running.registry:
        out.line(f"  registry  {running.registry}")
    out.line(f"  state     {running.state_dir}")
    if not running.engine:
        out.line("  no Docker engine: revisions cannot become Ready")


def _require_running(state_dir: Path) -> Running:
    from doki_cli.emulator import process

    with _reported():
        running = process.find_running(state_dir.resolve())
    if running is None:
        raise DokiError(
            Code.EMULATOR_NOT_RUNNING,
            f"no emulator is running for {state_dir.resolve()}",
            "start one with `doki emulator start` (or pass the --state-dir it was started with)",
        )
    return running


@app.command("status")
def status(ctx: typer.Context, state_dir: StateDirOption = DEFAULT_STATE_DIR) -> None:
    """Show whether an emulator is running, where, and on which ports."""
    _show(app_of(ctx).output, _require_running(state_dir))


@app.command("env")
def env(
    ctx: typer.Context,
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    unset: Annotated[
        bool,
        typer.Option("--unset", help='Print the unsets that leave emulator mode: eval "$(doki emulator env --unset)".'),
    ] = False,
) -> None:
    """Print shell exports pointing doki, the Google clients and gcloud at the emulator: eval "$(doki emulator env)"."""
    import shlex

    from doki_cli.emulator.process import ENV_NAMES

    out = app_of(ctx).output
    if unset:
        # No emulator needed: it is how a shell leaves one that was stopped.
        out.data({"unset": list(ENV_NAMES)})
        out.line(f"unset {' '.join(ENV_NAMES)}")
        return
    values = _require_running(state_dir).env()
    out.data(values)
    for name, value in values.items():
        out.line(f"export {name}={shlex.quote(value)}")


@app.command("stop")
def stop(ctx: typer.Context, state_dir: StateDirOption = DEFAULT_STATE_DIR) -> None:
    """Stop the emulator: its containers are removed and its state is kept for the next start."""
    from doki_cli.emulator import process

    out = app_of(ctx).output
    with _reported():
        running = process.find_running(state_dir.resolve())
    if running is None:
        out.data({"stopped": False, "state_dir": str(state_dir.resolve())})
        out.line(f"No emulator is running for {state_dir.resolve()}")
        return
    with _reported():
        process.stop(running)
    out.data({"stopped": True, "pid": running.pid, "state_dir": running.state_dir})
    out.line(f"Stopped the emulator (pid {running.pid}); state kept in {running.state_dir}")
