"""`doki dev --docker`: the deployment guide's test-docker-local.sh as one command.

Build, replace the previous dev container, run the new one with `.env` (plus development keys for what it lacks),
wait (bounded) for `/` and `/docs`, then follow its logs until Ctrl-C, which stops and removes it.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from doki_cli.config import ServiceConfig
from doki_cli.engine import DockerEngine, RunningContainer
from doki_cli.errors import Code, DokiError
from doki_cli.interrupts import terminate_as_interrupt
from doki_cli.output import Output

READY_TIMEOUT_SECONDS = 60.0
LAST_LOG_LINES = 40


def container_environment(root: Path, port: int) -> dict[str, str]:
    """`.env` of the project, in development, with the project's dev keys for whatever it leaves unset."""
    from dotenv import dotenv_values

    from doki.settings import Settings, with_development_defaults

    env_file = root / ".env"
    values = {k: v for k, v in dotenv_values(env_file).items() if v is not None} if env_file.exists() else {}
    values.setdefault("ENVIRONMENT", "development")
    values["PORT"] = str(port)
    if values["ENVIRONMENT"] == "development":
        # The same keys as `doki dev` on the host, so values encrypted by one decrypt in the other.
        settings = with_development_defaults(Settings(_env_file=None, state_dir=root / ".doki"))  # type: ignore[call-arg]
        if "ENCRYPTION_KEY" not in values and settings.encryption_key:
            values["ENCRYPTION_KEY"] = settings.encryption_key.get_secret_value()
        if "SESSION_SECRET_KEY" not in values and settings.session_secret_key:
            values["SESSION_SECRET_KEY"] = settings.session_secret_key.get_secret_value()
    return values


def wait_until_serving(
    container: RunningContainer,
    url: str,
    *,
    timeout: float = READY_TIMEOUT_SECONDS,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Until `url`/ and `url`/docs answer 200; a container that exits or stays silent is an error."""
    deadline = clock() + timeout
    while True:
        if container.status() in ("exited", "dead"):
            raise DokiError(
                Code.CONTAINER_EXITED,
                f"the container exited with code {container.exit_code()} before serving; its last lines:\n"
                + container.tail(LAST_LOG_LINES),
                "fix what the log says (often a value in .env), then run doki dev --docker again",
            )
        if _answers(f"{url}/"):
            break
        if clock() > deadline:
            raise DokiError(
                Code.CONTAINER_NOT_READY,
                f"the container did not answer {url}/ within {timeout:.0f} s; its last lines:\n"
                + container.tail(LAST_LOG_LINES),
                "check the log above; the app must listen on 0.0.0.0:$PORT",
            )
        sleep(0.2)
    if not _answers(f"{url}/docs"):
        raise DokiError(Code.CONTAINER_NOT_READY, f"{url}/docs does not answer 200", "check the container's log")


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - a loopback http URL we built
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def run_dev_container(
    out: Output,
    engine: DockerEngine,
    config: ServiceConfig,
    *,
    port: int,
    host_network: bool,
    detach: bool,
    base_image: str | None,
) -> None:
    # Before the build: a refusal must come before minutes of building and before the old container goes.
    if not host_network:
        engine.ensure_port_publishing()
    tag = f"{config.name}:dev"
    out.line(f"Building {tag} from {config.root}")
    with out.build_progress() as on_line:
        engine.build(config.root, [tag], build_args={"BASE_IMAGE": base_image} if base_image else None, on_line=on_line)
    name = f"doki-dev-{config.name}"
    with terminate_as_interrupt():
        container = engine.replace_container(
            tag, name, environment=container_environment(config.root, port), port=port, host_network=host_network
        )
        _serve(out, container, name, port, detach=detach)


def _serve(out: Output, container: RunningContainer, name: str, port: int, *, detach: bool) -> None:
    url = f"http://127.0.0.1:{port}"
    # Everything after the start sits in one try: a Ctrl-C or SIGTERM at any moment, even between two prints, or a
    # container that never serves, still ends with the container stopped and removed; only --detach keeps it.
    keep = False
    try:
        wait_until_serving(container, url)
        out.data({"url": url, "container": name, "id": container.id, "detached": detach})
        out.line(f"Doki backend (container {name}) at {url}")
        if detach:
            keep = True
            out.line(f"  left running: docker logs -f {name}; docker rm -f {name} to stop")
            return
        out.line("  following its logs; Ctrl-C stops and removes it")
        for text in container.follow():
            out.line(text.rstrip("\n"))
    except KeyboardInterrupt:
        pass
    finally:
        if not keep:
            container.stop_and_remove()
    out.note(f"stopped and removed {name}")
