"""`doki dev --docker` on a real engine: the guide's test-docker-local.sh as one command."""

from __future__ import annotations

import contextlib
import json
import re
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from docker.errors import NotFound

from doki_cli.main import app
from tests.helpers import (
    BASE_IMAGE,
    CliRunner,
    clean_env,
    copy_checkout,
    remove_container,
    running,
    unavailable,
)

runner = CliRunner()
DOKI = str(Path(sys.executable).with_name("doki"))
CONTAINER = "doki-dev-doki-backend"


@pytest.fixture
def project(tmp_path: Path, docker_client: Any) -> Any:
    root = copy_checkout(tmp_path / "project")
    yield root
    with contextlib.suppress(NotFound):
        remove_container(docker_client.containers.get(CONTAINER))


def _dev_docker(root: Path, port: int, *extra: str) -> Any:
    args = ["--config", str(root / "doki.toml"), "dev", "--docker", "--port", str(port)]
    return runner.invoke(app, [*args, "--base-image", BASE_IMAGE, *extra])


def test_dev_docker_runs_the_image_with_dotenv_and_the_projects_dev_keys(
    docker_client: Any, project: Path, reserve_port: Callable[[], int]
) -> None:
    (project / ".env").write_text("ALLOWED_ORIGINS=http://localhost:4000\n")
    port = reserve_port()
    result = _dev_docker(project, port, "--detach")
    assert result.exit_code == 0, result.output
    assert f"Doki backend (container {CONTAINER}) at http://127.0.0.1:{port}\n" in result.stdout
    assert httpx.get(f"http://127.0.0.1:{port}/").json() == {"message": "Doki Backend up"}
    preflight = httpx.options(
        f"http://127.0.0.1:{port}/auth/me",
        headers={"Origin": "http://localhost:4000", "Access-Control-Request-Method": "GET"},
    )
    assert preflight.headers["access-control-allow-origin"] == "http://localhost:4000"
    env = dict(item.split("=", 1) for item in docker_client.containers.get(CONTAINER).attrs["Config"]["Env"])
    keys = json.loads((project / ".doki" / "dev-keys.json").read_text())
    assert env["ENCRYPTION_KEY"] == keys["encryption_key"]
    assert env["ENVIRONMENT"] == "development"


def test_dev_docker_replaces_the_previous_container(
    docker_client: Any, project: Path, reserve_port: Callable[[], int]
) -> None:
    assert _dev_docker(project, reserve_port(), "--detach").exit_code == 0
    first = docker_client.containers.get(CONTAINER).id
    assert _dev_docker(project, reserve_port(), "--detach").exit_code == 0
    assert docker_client.containers.get(CONTAINER).id != first
    assert first not in [c.id for c in docker_client.containers.list(all=True)]


def test_a_container_that_exits_shows_its_last_lines_and_is_removed(
    docker_client: Any, project: Path, reserve_port: Callable[[], int]
) -> None:
    (project / ".env").write_text("ENCRYPTION_KEY=not-a-fernet-key\n")
    result = _dev_docker(project, reserve_port(), "--detach")
    assert result.exit_code == 1
    # The image's build says its steps first (stamped lines, as in any log), then the error.
    error = result.stderr[result.stderr.index("Error [") :]
    assert error.startswith("Error [container_exited]: the container exited with code 78 before serving")
    before = result.stderr[: result.stderr.index("Error [")].splitlines()
    assert before and all(re.fullmatch(r"\S+Z building: Step \d+/\d+ : .*", line) for line in before), before
    assert "ENCRYPTION_KEY key #1 is not a valid Fernet key" in result.stderr
    assert "Hint: fix what the log says (often a value in .env)" in result.stderr
    with pytest.raises(NotFound):
        docker_client.containers.get(CONTAINER)


@pytest.mark.parametrize(
    ("sent", "code"), [(signal.SIGINT, 0), (signal.SIGTERM, 143)], ids=["Ctrl-C", "SIGTERM from a process manager"]
)
def test_ctrl_c_or_sigterm_stops_and_removes_the_container(
    docker_client: Any, project: Path, sent: signal.Signals, code: int, reserve_port: Callable[[], int]
) -> None:
    port = reserve_port()
    args = [DOKI, "dev", "--docker", "--port", str(port), "--base-image", BASE_IMAGE]
    with running(args, cwd=project, env=clean_env()) as proc:
        assert proc.stdout is not None
        deadline = time.monotonic() + 120
        line = ""
        while "Doki backend (container" not in line and time.monotonic() < deadline:
            line = proc.stdout.readline()
        assert line == f"Doki backend (container {CONTAINER}) at http://127.0.0.1:{port}\n"
        proc.send_signal(sent)
        assert proc.wait(timeout=30) == code
    with pytest.raises(NotFound):
        docker_client.containers.get(CONTAINER)


def test_publishing_serves_the_backend_on_the_published_port(
    docker_client: Any, project: Path, reserve_port: Callable[[], int]
) -> None:
    if not docker_client.networks.list(names=["bridge"]):
        unavailable("the Docker engine has no bridge network (dockerd --bridge=none), so it cannot publish ports")
    port = reserve_port()
    result = _dev_docker(project, port, "--detach", "--network", "publish")
    assert result.exit_code == 0, result.output
    assert httpx.get(f"http://127.0.0.1:{port}/").json() == {"message": "Doki Backend up"}
    ports = docker_client.containers.get(CONTAINER).attrs["HostConfig"]["PortBindings"]
    assert ports == {f"{port}/tcp": [{"HostIp": "", "HostPort": str(port)}]}


def test_detach_without_docker_is_refused() -> None:
    result = runner.invoke(app, ["dev", "--detach"])
    assert result.exit_code == 1
    assert result.stderr == (
        "Error [bad_option]: --detach works with --docker only\n  Hint: add --docker, or drop --detach\n"
    )
