"""`doki dev`: the backend on this machine, with zero configuration."""

from __future__ import annotations

from typing import Annotated

import typer

from doki_cli.context import App, app_of
from doki_cli.errors import Code, DokiError
from doki_cli.options import BaseImageOption

HostOption = Annotated[str, typer.Option("--host", envvar="DOKI_DEV_HOST", help="Interface to listen on.")]
PortOption = Annotated[int, typer.Option("--port", envvar="PORT", min=1, max=65535, help="Port to listen on.")]
ReloadOption = Annotated[bool, typer.Option("--reload/--no-reload", help="Restart when the code changes.")]
DockerOption = Annotated[bool, typer.Option("--docker", help="Build the image and run it in a container instead.")]
DetachOption = Annotated[bool, typer.Option("--detach", help="With --docker: leave the container running.")]
NetworkOption = Annotated[
    str,
    typer.Option(
        "--network",
        help="With --docker: 'host' (engines without port publishing) or 'publish' (-p PORT:PORT).",
    ),
]


def dev(
    ctx: typer.Context,
    host: HostOption = "127.0.0.1",
    port: PortOption = 8080,
    reload: ReloadOption = True,
    docker: DockerOption = False,
    detach: DetachOption = False,
    network: NetworkOption = "host",
    base_image: BaseImageOption = None,
) -> None:
    """Run the backend locally in development mode, on embedded defaults.

    Nothing to configure: missing keys are generated once into .doki/ (git-ignored), credentials are kept in a
    SQLite file there, and requests without a token run as a development user. Values from the environment or a
    .env file are used when present; ENVIRONMENT is always development here.
    """
    import os
    import socket
    import sys
    from pathlib import Path

    app = app_of(ctx)
    out = app.output
    if network not in ("host", "publish"):
        raise DokiError(Code.BAD_OPTION, f"--network {network!r} is not host or publish", "use --network host")
    if docker:
        from doki_cli.devcontainer import run_dev_container
        from doki_cli.engine import DockerEngine
        from doki_cli.interrupts import EXIT_TERMINATED, Terminated

        config = app.config
        try:
            run_dev_container(
                out,
                DockerEngine.connect(),
                config,
                port=port,
                host_network=network == "host",
                detach=detach,
                base_image=base_image,
            )
        except Terminated:
            out.note(f"terminated: stopped and removed doki-dev-{config.name}")
            raise typer.Exit(EXIT_TERMINATED) from None
        return
    if detach:
        raise DokiError(Code.BAD_OPTION, "--detach works with --docker only", "add --docker, or drop --detach")
    _to_project_root(app)

    from doki.settings import ConfigError, load_settings

    try:
        settings = load_settings(environment="development")
    except ConfigError as exc:
        raise DokiError(
            Code.CONFIG_INVALID,
            exc.render(),
            "fix these values in your environment or .env (see docs/configuration.md)",
        ) from None

    # Fail here, in words, rather than in a uvicorn traceback after the banner said all was well.
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise DokiError(
                Code.PORT_UNAVAILABLE,
                f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                f"stop whatever uses port {port}, or pick another: doki dev --port {port + 1}",
            ) from None

    shown_host = f"[{host}]" if ":" in host else host
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else shown_host}:{port}"
    out.data(
        {
            "url": url,
            "docs": f"{url}/docs",
            "store": settings.store_kind,
            "state_dir": str(settings.state_dir),
        }
    )
    out.line(f"Doki backend (development) at {url}")
    out.line(f"  API docs:          {url}/docs")
    out.line(f"  credential store:  {settings.store_kind} (state in {settings.state_dir}/)")
    out.line("  auth:              requests without a token run as dev@doki.local")
    sys.stdout.flush()

    import uvicorn

    os.environ["ENVIRONMENT"] = "development"  # read again by the server process that uvicorn starts

    import doki

    uvicorn.run(
        "doki.main:app",
        host=host,
        port=port,
        reload=reload,
        reload_dirs=[str(Path(doki.__file__).parent)] if reload else None,
        log_level="info",
    )


def _to_project_root(app: App) -> None:
    """Run from the project's root when doki.toml is found above the current directory: the backend reads `.env`
    and keeps `.doki/` relative to where it runs (its server process too), and those are the project's, as the
    other commands read them beside doki.toml. Without a doki.toml, here: `doki dev` needs none."""
    import os
    from pathlib import Path

    from doki_cli.config import find_config

    path = app.options.config or find_config()
    if path is None or not path.is_file():
        return
    root = path.resolve().parent
    if root != Path.cwd().resolve():
        app.output.note(f"running in {root}, beside its doki.toml: .env and .doki/ are read there")
        os.chdir(root)
