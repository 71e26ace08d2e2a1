"""Small helpers for tests that start real processes, containers and servers on loopback.

Whatever such a process or container prints, the leak check (tests/leakcheck.py) reads: a test starts processes
with `run`, `Process` or `running`, and containers with `container` or `container_output`, never with subprocess or
the Docker client directly (tests/test_leakcheck.py holds the suite to it)."""

from __future__ import annotations

import io
import os
import selectors
import shlex
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NoReturn
from urllib.parse import quote

import httpx
import pytest
from pydantic import AliasChoices
from typer import testing

from doki.settings import Settings

if TYPE_CHECKING:
    from doki_cli.emulator.server import Emulator

REPO = Path(__file__).resolve().parents[2]
# The base the container tests build on: no registry is reachable here, `.ci/docker-setup` makes this stand-in.
BASE_IMAGE = os.environ.get("DOKI_TEST_BASE_IMAGE", "doki-base:bookworm-py311")
# The Doki backend image, tagged as `doki build` would tag it for the emulator tests' project.
# One tag per test session: parallel sessions on one engine would otherwise remove or rebuild each other's image.
BACKEND_IMAGE = f"us-central1-docker.pkg.dev/doki-e2e/doki/doki-backend:e2e-{os.getpid()}"
# Settings the backend reads (every name and alias, from Settings itself so none is forgotten): a test process
# starts from none of the developer's own.
BACKEND_ENV_NAMES = tuple(
    sorted(
        {
            str(choice).upper()
            for name, field in Settings.model_fields.items()
            for choice in (
                field.validation_alias.choices if isinstance(field.validation_alias, AliasChoices) else [name]
            )
        }
    )
)


class Secrets:
    """Every secret value the suite uses (keys, tokens, passwords), by label; the leak check (tests/leakcheck.py)
    fails a test whose output or logs hold one. Fixtures and fakes register what they make or are given."""

    # Shorter values would match ordinary text; the suite's secrets are all longer.
    MIN_LENGTH = 8

    def __init__(self) -> None:
        self._labels: dict[str, str] = {}  # value (or its URL-encoded form) -> label

    def register(self, label: str, value: str) -> str:
        """Remember `value` as a secret; returns it, so a fixture can register as it assigns."""
        if len(value) >= self.MIN_LENGTH:
            self._labels.setdefault(value, label)
            self._labels.setdefault(quote(value, safe=""), label)
        return value

    def found_in(self, text: str) -> list[str]:
        """The labels of the secrets `text` holds (never the values), each once."""
        return sorted({label for value, label in self._labels.items() if value in text})

    def mask(self, text: str) -> str:
        """`text` with each secret it holds replaced by its label."""
        for value, label in sorted(self._labels.items(), key=lambda item: -len(item[0])):
            text = text.replace(value, f"[{label}]")
        return text


SECRETS = Secrets()
# What the current test printed where pytest does not capture it (CliRunner results, the output of the processes
# it started, its containers' logs, the emulator's stored logs), as (where, text): the leak check reads it at the end
# of each phase of the test, and empties it.
OUTPUTS: list[tuple[str, str]] = []


def record(where: str, output: str | bytes | None) -> str:
    """Hand `output` (what a process or container printed) to the leak check as seen in `where`; returns it as text."""
    text = output.decode(errors="replace") if isinstance(output, bytes) else output or ""
    if text:
        OUTPUTS.append((where, text))
    return text


def secret(label: str, value: str) -> str:
    """`value`, registered as a secret under `label`."""
    return SECRETS.register(label, value)


def record_stored_logs(state_dir: Path | None) -> None:
    """Hand the log entries the emulator saved when it stopped (its containers' and builds' output) to the leak
    check (tests/leakcheck.py)."""
    saved = state_dir / "logging.json" if state_dir is not None else None
    if saved is not None and saved.is_file():
        OUTPUTS.append(("the emulator's stored logs", saved.read_text()))


class CliRunner(testing.CliRunner):
    """typer's CliRunner whose every result (stdout, stderr, an uncaught exception) the leak check reads."""

    def invoke(self, *args: Any, **kwargs: Any) -> testing.Result:
        result = super().invoke(*args, **kwargs)
        OUTPUTS.append(("the output of a CLI run", result.output))
        if result.exception is not None:
            OUTPUTS.append(("the exception of a CLI run", repr(result.exception)))
        return result


@contextmanager
def reserved_port(host: str = "127.0.0.1") -> Iterator[int]:
    """A port for whatever takes a port number and not a socket (`doki dev --port`, `doki emulator start --port`, a
    container's PORT, a port Docker publishes), held for it until the block ends: no "find a free port, release it,
    hope it stays free".

    The port is held by a socket bound to it with SO_REUSEADDR and never listening. Linux gives a bound port to no
    one else: not to a bind to port 0, not to an outgoing connection, not to a bind to it without SO_REUSEADDR. The
    server it is meant for binds it with SO_REUSEADDR, as uvicorn, Python's HTTP servers, gRPC and docker-proxy do,
    which Linux allows beside a socket that does not listen, and then listens on it. Until then nothing answers
    there, so it is also the port of "nothing listens here" tests.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind((host, 0))
        yield int(holder.getsockname()[1])


def restarted(first: Emulator) -> Emulator:
    """An emulator that comes back where the stopped `first` was, with its state: on the gRPC port `first` bound
    (its clients' address). A gRPC server takes no socket handed over, so the port is bound again by number; it binds
    without SO_REUSEPORT, so should anything have taken the port in the meantime, the start fails saying so."""
    from dataclasses import replace

    from doki_cli.emulator.server import Emulator

    return Emulator(replace(first.config, grpc_port=first.grpc_port))


def unavailable(reason: str, required_by: str = "DOKI_REQUIRE_DOCKER") -> NoReturn:
    """Skip the test for `reason` (what this machine lacks), or fail it where `required_by`=1 says it must run (CI)."""
    if os.environ.get(required_by) == "1":
        pytest.fail(f"{required_by}=1 but {reason}")
    pytest.skip(reason)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in BACKEND_ENV_NAMES and not k.startswith("DOKI_")}
    env.update(extra)
    return env


def wait_for_http(url: str, timeout: float = 30.0, proc: subprocess.Popen[str] | None = None) -> httpx.Response:
    """GET `url` until it answers (any status), or fail saying why."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            output = proc.stdout.read() if proc.stdout else ""
            raise AssertionError(f"server exited with {proc.returncode} before answering:\n{output}")
        try:
            return httpx.get(url, timeout=1.0)
        except httpx.TransportError as exc:
            last = exc
            time.sleep(0.05)
    raise AssertionError(f"{url} did not answer within {timeout}s: {last}")


def _command(args: str | Sequence[Any]) -> str:
    """`args` as a shell would show it, the program by its name only."""
    if isinstance(args, str):
        return args
    program, *rest = (str(arg) for arg in args)
    return shlex.join([Path(program).name, *rest])


def _where(args: str | Sequence[Any], kwargs: dict[str, Any]) -> tuple[str, str]:
    """How the leak check names a process's stdout and stderr."""
    command = _command(args)
    stdout = "output" if kwargs.get("stderr") == subprocess.STDOUT else "stdout"
    return f"the {stdout} of `{command}`", f"the stderr of `{command}`"


def run(args: str | Sequence[Any], **kwargs: Any) -> subprocess.CompletedProcess[Any]:
    """subprocess.run, whose captured output the leak check reads (also when it times out or fails its check)."""
    stdout, stderr = _where(args, kwargs)
    try:
        done = subprocess.run(args, **kwargs)
    except (subprocess.TimeoutExpired, subprocess.CalledProcessError) as exc:
        record(stdout, exc.stdout)
        record(stderr, exc.stderr)
        raise
    record(stdout, done.stdout)
    record(stderr, done.stderr)
    return done


class _Tee:
    """Copies a process's output pipe into a pipe the test reads, keeping every byte for the leak check: the test
    reads what it always did, when it did, and the check sees all the process printed, read or not."""

    def __init__(self, source: IO[Any]) -> None:
        self.data = bytearray()
        self.ended = threading.Event()  # the process (and every child of it) closed its end
        self._source = source
        read_end, self._sink = os.pipe()
        os.set_blocking(self._sink, False)
        reader: IO[Any] = os.fdopen(read_end, "rb")
        if hasattr(source, "encoding"):  # a text-mode Popen's stream, decoded as Popen decodes it
            reader = io.TextIOWrapper(reader, encoding=source.encoding, errors=source.errors)
        self.stream = reader
        threading.Thread(target=self._pump, name="tee", daemon=True).start()

    def _pump(self) -> None:
        source, sink = self._source.fileno(), self._sink
        # Read as soon as the process writes, whether or not the test reads: what it has not read waits here.
        pending = bytearray()
        with selectors.DefaultSelector() as selector:
            selector.register(source, selectors.EVENT_READ)
            while selector.get_map():
                if pending and sink not in selector.get_map():
                    selector.register(sink, selectors.EVENT_WRITE)
                for key, _ in selector.select():
                    if key.fd == source:
                        chunk = os.read(source, 65536)
                        self.data += chunk
                        pending += chunk
                        if not chunk:
                            selector.unregister(source)
                            self.ended.set()
                        continue
                    try:
                        del pending[: os.write(sink, pending)]
                    except BlockingIOError:
                        continue
                    except BrokenPipeError:  # the test closed its end: it wants no more
                        pending.clear()
                    if not pending:
                        selector.unregister(sink)
        os.close(sink)
        self._source.close()


class Process(subprocess.Popen[Any]):
    """subprocess.Popen whose piped stdout and stderr the leak check reads: everything the process printed there,
    whether the test read it or not, handed over once the process has exited (as wait() or poll() sees it)."""

    # How long an exited process's output may take to end: a child of it that still holds the pipe is not waited for.
    GRACE = 5.0

    def __init__(self, args: str | Sequence[Any], **kwargs: Any) -> None:
        self._tees: list[tuple[str, _Tee]] = []
        self._recorded = False
        super().__init__(args, **kwargs)
        stdout, stderr = _where(args, kwargs)
        if self.stdout is not None:
            self._tees.append((stdout, _Tee(self.stdout)))
            self.stdout = self._tees[-1][1].stream
        if self.stderr is not None:
            self._tees.append((stderr, _Tee(self.stderr)))
            self.stderr = self._tees[-1][1].stream

    def wait(self, timeout: float | None = None) -> int:
        code = super().wait(timeout)
        self._record()
        return code

    def poll(self) -> int | None:
        code = super().poll()
        if code is not None:
            self._record()
        return code

    def _record(self) -> None:
        if self._recorded:
            return
        self._recorded = True
        for where, tee in self._tees:
            tee.ended.wait(self.GRACE)
            record(where, bytes(tee.data))


@contextmanager
def running(args: list[str], cwd: Path, env: dict[str, str]) -> Iterator[Process]:
    """Run a process in its own process group, and end the whole group (uvicorn's reloader has children)."""
    proc = Process(
        args,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if proc.stdout:
            proc.stdout.close()


def copy_checkout(destination: Path) -> Path:
    """The repository's tracked files, as a fresh clone would have them."""
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    for name in files.splitlines():
        if (REPO / name).is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, destination / name)
    return destination


@dataclass
class Build:
    image_id: str
    log: str
    context: Path


def build_image(client: Any, context: Path, tag: str) -> Build:
    """Build `context`'s Dockerfile on the stand-in base (container tests, the emulator's end-to-end test)."""
    lines = []
    for chunk in client.api.build(
        path=str(context),
        tag=tag,
        buildargs={"BASE_IMAGE": BASE_IMAGE},
        network_mode="host",
        rm=True,
        decode=True,
    ):
        if "error" in chunk:
            raise AssertionError("docker build failed:\n" + "".join(lines) + chunk["error"])
        lines.append(chunk.get("stream", ""))
    log = record(f"the log of building {tag}", "".join(lines))
    return Build(client.images.get(tag).id, log, context)


def remove_container(container: Any) -> None:
    """Remove `container` (running or not), its logs (stdout and stderr) handed to the leak check first."""
    image = str(container.attrs["Config"]["Image"])  # as the container was run: a name, or an image's id
    if image.startswith("sha256:"):
        image = image.removeprefix("sha256:")[:12]  # as `docker ps` shortens it
    record(f"the logs of container {container.name} ({image})", container.logs())
    container.remove(force=True)


@contextmanager
def container(client: Any, image: str, command: str | list[str] | None = None, **kwargs: Any) -> Iterator[Any]:
    """A container of `image` run detached (Docker SDK's `containers.run` options), and removed after."""
    started = client.containers.create(image, command, **kwargs)
    try:
        started.start()  # a container that cannot start is removed too
        yield started
    finally:
        remove_container(started)


def container_output(client: Any, image: str, command: str | list[str], **kwargs: Any) -> str:
    """What a one-off container of `image` running `command` printed on stdout, as `docker run --rm` shows it."""
    with container(client, image, command, **kwargs) as one:
        code = one.wait(timeout=120)["StatusCode"]
        assert code == 0, f"{command} exited with {code}:\n{one.logs().decode(errors='replace')}"
        output: bytes = one.logs(stdout=True, stderr=False)
        return output.decode()


def plan_text(service_path: str, endpoint: str, *changes: str, cost: tuple[str, ...] = ()) -> str:
    """The plan a command that changes a service prints before it writes: a heading, one line a change, the cost
    lines (`$ …`, each given without its indent), a count."""
    service = service_path.rsplit("/", 1)[-1]
    count = f"{len(changes)} change{'s' if len(changes) != 1 else ''}." if changes else "No changes."
    priced = [f"  $ {line}" for line in cost]
    if cost:
        priced.append("  $ Cloud Billing Catalog list prices for us-central1, USD, before the free tier")
    lines = (f"Plan for {service} ({service_path}) on {endpoint}:", *changes, *priced, count)
    return "".join(f"{line}\n" for line in lines)


def allowed(url: str, origin: str) -> str | None:
    """The origin a running backend at `url` allows for a browser's preflight from `origin`, if any."""
    answer = httpx.options(
        url + "/auth/me", headers={"Origin": origin, "Access-Control-Request-Method": "GET"}, timeout=10
    )
    origin_allowed: str | None = answer.headers.get("access-control-allow-origin")
    return origin_allowed
