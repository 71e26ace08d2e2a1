"""The production image, built from the real Dockerfile and run on a real engine (host network: no port
publishing on these machines)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.container.conftest import PLANTED_SECRET, Build, build_image
from tests.helpers import container, container_output, wait_for_http


@contextmanager
def _run(client: Any, image: Build, **kwargs: Any) -> Iterator[Any]:
    """The image's container on the host network, removed after (its logs read by the leak check)."""
    with container(client, image.image_id, network_mode="host", **kwargs) as started:
        yield started


def _wait_status(started: Any, statuses: set[str], timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        started.reload()
        if started.status in statuses:
            return str(started.status)
        time.sleep(0.1)
    raise AssertionError(f"container stayed {started.status}; logs:\n{started.logs().decode()}")


def test_the_image_serves_the_health_body_and_docs_on_a_custom_port(
    docker_client: Any, image: Build, reserve_port: Callable[[], int]
) -> None:
    port = reserve_port()
    with _run(docker_client, image, environment={"PORT": str(port)}):
        response = wait_for_http(f"http://127.0.0.1:{port}/")
        assert response.status_code == 200
        assert response.text == '{"message":"Doki Backend up"}'
        assert httpx.get(f"http://127.0.0.1:{port}/docs").status_code == 200


def test_the_image_runs_as_a_non_root_user(docker_client: Any, image: Build) -> None:
    output = container_output(docker_client, image.image_id, ["id", "-u"], network_mode="none")
    assert output.strip() == "1000"


def test_the_healthcheck_turns_healthy(docker_client: Any, image: Build, reserve_port: Callable[[], int]) -> None:
    port = reserve_port()
    # The image's own check command; only the interval is shortened so the test need not wait 30 s.
    healthcheck = {"interval": 500_000_000, "timeout": 5_000_000_000, "retries": 3}
    with _run(docker_client, image, environment={"PORT": str(port)}, healthcheck=healthcheck) as started:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            started.reload()
            health = started.attrs["State"].get("Health", {}).get("Status")
            if health == "healthy":
                break
            time.sleep(0.2)
        assert health == "healthy", started.attrs["State"]


def test_secrets_tests_and_history_in_the_context_stay_out_of_the_image(docker_client: Any, image: Build) -> None:
    script = (
        "ls -a /app; test ! -e /app/.env && test ! -e /app/.env.production && test ! -e /app/.git "
        "&& test ! -e /app/tests && test ! -e /app/.doki && echo CLEAN; "
        f"grep -rl {PLANTED_SECRET} /app /opt/venv 2>/dev/null || echo NO-SECRET"
    )
    lines = container_output(docker_client, image.image_id, ["sh", "-c", script], network_mode="none").split()
    assert "CLEAN" in lines and "NO-SECRET" in lines, lines
    assert sorted(name for name in lines if not name.isupper()) == [".", "..", "doki"]


def test_no_cli_or_build_tool_is_installed_in_the_image(docker_client: Any, image: Build) -> None:
    modules = ["typer", "rich", "docker", "google.cloud.run_v2", "grpc", "poetry", "pytest", "pip"]
    probe = (
        "import importlib.util, sys\n"
        f"found = [m for m in {modules!r} if importlib.util.find_spec(m.split('.')[0]) is not None]\n"
        "print('FOUND=' + ','.join(found))\n"
    )
    output = container_output(docker_client, image.image_id, ["python", "-c", probe], network_mode="none")
    assert output.strip() == "FOUND="


# The server as `python -m doki` runs it, answering one request; only socket is used to ask, which it loads anyway.
SERVE_ONE_REQUEST = """
import socket, threading, time, uvicorn
server = uvicorn.Server(uvicorn.Config("doki.main:app", port=8099, proxy_headers=True, access_log=False))
threading.Thread(target=server.run, daemon=True).start()
while not server.started:
    time.sleep(0.05)
with socket.create_connection(("127.0.0.1", 8099)) as connection:
    connection.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
    assert b" 200 " in connection.recv(65536)
server.should_exit = True
"""


def test_a_cold_container_compiles_no_module_to_start_and_answer_its_first_request(
    docker_client: Any, image: Build
) -> None:
    # The container never writes bytecode: a module the image ships without it is compiled again on every cold start.
    # The standard library's count too: the official base image ships it without bytecode (and so does the stand-in).
    script = f"python -v -c '{SERVE_ONE_REQUEST}' 2>&1 | grep 'code object from'"
    lines = container_output(docker_client, image.image_id, ["sh", "-c", script], network_mode="none").splitlines()
    from_source = [line for line in lines if not line.endswith(".pyc'")]
    assert len(lines) > 100  # fastapi, pydantic, uvicorn, doki...: the probe saw the imports
    assert from_source == []


def test_sigterm_ends_the_container_cleanly(docker_client: Any, image: Build, reserve_port: Callable[[], int]) -> None:
    port = reserve_port()
    with _run(docker_client, image, environment={"PORT": str(port)}) as started:
        wait_for_http(f"http://127.0.0.1:{port}/")
        started.stop(timeout=10)  # SIGTERM, then SIGKILL after 10 s, as Cloud Run does
        started.reload()
        # 0, not 137: the server itself handled SIGTERM and finished.
        assert started.attrs["State"]["ExitCode"] == 0
        assert "Finished server process" in started.logs().decode()


def test_a_production_container_missing_secrets_exits_and_names_them(
    docker_client: Any, image: Build, reserve_port: Callable[[], int]
) -> None:
    environment = {"ENVIRONMENT": "production", "ALLOWED_ORIGINS": "https://app.doki.com", "PORT": str(reserve_port())}
    with _run(docker_client, image, environment=environment) as started:
        _wait_status(started, {"exited"})
        assert started.attrs["State"]["ExitCode"] == 78
        logs = started.logs().decode()
        assert "ENCRYPTION_KEY is not set" in logs
        assert "SESSION_SECRET_KEY is not set" in logs
        assert "Traceback" not in logs


def test_a_code_only_change_reuses_the_dependency_layer(docker_client: Any, image: Build) -> None:
    context: Path = image.context
    routes = context / "doki" / "api" / "routes" / "root.py"
    original = routes.read_text()
    routes.write_text(original + "\n# a code-only change\n")
    try:
        rebuilt = build_image(docker_client, context, "doki-backend:test-rebuild")
    finally:
        routes.write_text(original)
    install_step = rebuilt.log.split("poetry install", 1)[1]
    assert install_step.split("Step ", 1)[0].count("Using cache") == 1, rebuilt.log
    assert rebuilt.image_id != image.image_id
