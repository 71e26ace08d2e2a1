"""`doki dev`: the backend on this machine, with zero configuration."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Annotated

import typer

from doki_cli.context import App, app_of
from doki_cli.errors import Code, DokiError
from doki_cli.options import BaseImageOption, ServiceOption

HostOption = Annotated[str, typer.Option("--host", envvar="DOKI_DEV_HOST", help="Interface to listen on.")]
PortOption = Annotated[int, typer.Option("--port", envvar="PORT", min=1, max=65535, help="Port to listen on.")]
ReloadOption = Annotated[bool, typer.Option("--reload/--no-reload", help="Restart when the code changes.")]
DockerOption = Annotated[bool, typer.Option("--docker", help="Build the image and run it in a container instead.")]
DetachOption = Annotated[bool, typer.Option("--detach", help="With --docker: leave the container running.")]
FromServiceOption = Annotated[
    bool,
    typer.Option(
        "--from-service",
        help="Run with the deployed service's variables and secrets (doki.toml's, or --env's, or --service's), read "
        "from Cloud Run and Secret Manager at start and held in memory only.",
    ),
]
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
    from_service: FromServiceOption = False,
    service: ServiceOption = None,
) -> None:
    """Run the backend locally in development mode, on embedded defaults.

    Nothing to configure: missing keys are generated once into .doki/ (git-ignored), credentials are kept in a
    SQLite file there, and requests without a token run as a development user. Values from the environment or a
    .env file are used when present; ENVIRONMENT is always development here.

    With --from-service, the deployed service's configuration instead (its ENVIRONMENT included): its variables, and
    its secrets' values from Secret Manager, never written to disk or printed; a variable set in your environment
    keeps your value.
    """
    import socket
    import sys
    from pathlib import Path

    app = app_of(ctx)
    out = app.output
    if network not in ("host", "publish"):
        raise DokiError(Code.BAD_OPTION, f"--network {network!r} is not host or publish", "use --network host")
    from typer._click.core import ParameterSource

    # DOKI_SERVICE exported for the operate commands is no reason to refuse a plain `doki dev`: only the option typed.
    typed = ctx.get_parameter_source("service") is ParameterSource.COMMANDLINE
    if service is not None and typed and not from_service:
        raise DokiError(
            Code.BAD_OPTION,
            "--service names the deployed service whose configuration --from-service runs with",
            "add --from-service, or drop --service",
        )
    if from_service and docker:
        raise DokiError(
            Code.BAD_OPTION,
            "--from-service keeps the service's secrets in memory, and a container's environment is kept on the "
            "engine's disk",
            "run `doki dev --from-service` without --docker",
        )
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
    cloud = _from_service(app, service if from_service else None, port) if from_service else None
    if cloud is None:
        _to_project_root(app)
    else:
        # The service's configuration alone: the backend reads .env and keeps .doki/ where it runs, so it runs in a
        # directory of its own, removed at exit (a developer's .env would fill what the service leaves unset).
        import atexit
        import shutil
        import tempfile

        workdir = tempfile.mkdtemp(prefix="doki-dev-from-service-")
        atexit.register(shutil.rmtree, workdir, True)
        os.chdir(workdir)

    from doki.settings import ConfigError, load_settings

    environment = os.environ.get("ENVIRONMENT", "development") if cloud is not None else "development"
    try:
        settings = load_settings(environment=environment)
    except ConfigError as exc:
        if cloud is None:
            raise DokiError(
                Code.CONFIG_INVALID,
                exc.render(),
                "fix these values in your environment or .env (see docs/configuration.md)",
            ) from None
        raise DokiError(
            Code.CONFIG_INVALID,
            cloud.redacted(exc.render()),
            "the service runs with these values: fix them in doki.toml (or `doki secrets push`) and deploy, or export "
            "one to override it here",
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
            **({"from_service": cloud.data} if cloud is not None else {}),
        }
    )
    out.line(f"Doki backend ({environment}) at {url}")
    out.line(f"  API docs:          {url}/docs")
    out.line(f"  credential store:  {settings.store_kind} (state in {settings.state_dir}/)")
    if environment == "development":
        out.line("  auth:              requests without a token run as dev@doki.local")
    sys.stdout.flush()

    import uvicorn

    os.environ["ENVIRONMENT"] = environment  # read again by the server process that uvicorn starts

    import doki

    uvicorn.run(
        "doki.main:app",
        host=host,
        port=port,
        reload=reload,
        reload_dirs=[str(Path(doki.__file__).parent)] if reload else None,
        log_level="info",
    )


@dataclass(frozen=True)
class _FromService:
    data: dict[str, object]  # what --json reports: names and secret versions, never values
    secret_values: tuple[tuple[str, str], ...]  # (variable, value) of each secret, to keep out of any message

    def redacted(self, text: str) -> str:
        """`text` with each secret's value replaced by where it came from (the backend's problems quote values)."""
        for name, value in sorted(self.secret_values, key=lambda pair: -len(pair[1])):
            if value:
                text = text.replace(value, f"<{name} from Secret Manager>")
        return text


def _from_service(app: App, service: str | None, port: int) -> _FromService:
    """The service's variables and secrets set in this process's environment (see doki_cli.devcloud), said on stderr
    by name (and secret version), never by value."""
    from doki_cli import devcloud

    app.use_service(service)
    config, google = app.config, app.google
    cloud = devcloud.read(google.run, google.secrets, config.name)
    kept = devcloud.apply(cloud, aliases=devcloud.backend_aliases())
    out = app.output
    out.note(f"with the configuration of {cloud.service}'s newest revision, {cloud.revision}, held in memory:")
    out.note(f"  variables: {', '.join(cloud.plain) or 'none'}")
    secrets = [f"{name} ({source})" for name, source in cloud.sources.items()]
    out.note(f"  from Secret Manager: {', '.join(secrets) or 'none'}")
    if kept:
        out.note(f"  kept from your environment instead: {', '.join(kept)}")
    for warning in cloud.warnings:
        out.note(f"  ! {warning}")
    if "ENVIRONMENT" in kept and os.environ.get("ENVIRONMENT") == "development":
        out.note(
            "  ! ENVIRONMENT=development from your environment: requests without a token run as dev@doki.local, "
            "against the service's store and keys"
        )
    if "GOOGLE_REDIRECT_URI" in cloud.plain and "GOOGLE_REDIRECT_URI" not in kept:
        out.note(
            f"  GOOGLE_REDIRECT_URI is the service's ({cloud.values['GOOGLE_REDIRECT_URI']}): Google sends sign-ins "
            f"back there, not here; to finish them here, export GOOGLE_REDIRECT_URI=http://127.0.0.1:{port}"
            "/auth/google/callback (allowed in the OAuth client)"
        )
    data: dict[str, object] = {
        "service": cloud.service,
        "revision": cloud.revision,
        "variables": cloud.plain,
        "secrets": cloud.sources,
        "kept_from_environment": kept,
        "warnings": cloud.warnings,
    }
    values = tuple((name, cloud.values[name]) for name in cloud.sources)
    return _FromService(data, values)


def _to_project_root(app: App) -> None:
    """Run from the project's root when doki.toml is found above the current directory: the backend reads `.env`
    and keeps `.doki/` relative to where it runs (its server process too), and those are the project's, as the
    other commands read them beside doki.toml. Without a doki.toml, here: `doki dev` needs none."""
    from pathlib import Path

    from doki_cli.config import find_config

    path = app.options.config or find_config()
    if path is None or not path.is_file():
        return
    root = path.resolve().parent
    if root != Path.cwd().resolve():
        app.output.note(f"running in {root}, beside its doki.toml: .env and .doki/ are read there")
        os.chdir(root)
