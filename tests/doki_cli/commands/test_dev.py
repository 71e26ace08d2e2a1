"""`doki dev` as a newcomer runs it: a real server on loopback, nothing configured."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from doki_cli.main import app
from tests.helpers import CliRunner, clean_env, running, wait_for_http

DOKI = str(Path(sys.executable).with_name("doki"))
runner = CliRunner()


def _first_line(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    return proc.stdout.readline()


def test_doki_dev_serves_the_health_contract_with_nothing_configured(
    tmp_path: Path, reserve_port: Callable[[], int]
) -> None:
    port = reserve_port()
    with running([DOKI, "dev", "--port", str(port)], cwd=tmp_path, env=clean_env()) as proc:
        assert _first_line(proc) == f"Doki backend (development) at http://127.0.0.1:{port}\n"
        response = wait_for_http(f"http://127.0.0.1:{port}/", proc=proc)
        assert response.status_code == 200
        assert response.json() == {"message": "Doki Backend up"}
        me = wait_for_http(f"http://127.0.0.1:{port}/auth/me")
        assert me.json() == {
            "user_id": "00000000-0000-4000-8000-000000000001",
            "email": "dev@doki.local",
            "role": "authenticated",
        }
        assert wait_for_http(f"http://127.0.0.1:{port}/docs").status_code == 200
    keys = tmp_path / ".doki" / "dev-keys.json"
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600
    assert (tmp_path / ".doki" / ".gitignore").read_text() == "*\n"


def test_doki_dev_keeps_its_generated_keys_across_restarts(tmp_path: Path, reserve_port: Callable[[], int]) -> None:
    seen = []
    for _ in range(2):
        port = reserve_port()
        with running([DOKI, "dev", "--no-reload", "--port", str(port)], cwd=tmp_path, env=clean_env()) as proc:
            assert wait_for_http(f"http://127.0.0.1:{port}/", proc=proc).status_code == 200
        seen.append(json.loads((tmp_path / ".doki" / "dev-keys.json").read_text()))
    assert seen[0] == seen[1]


def test_doki_dev_honours_port_from_the_environment(tmp_path: Path, reserve_port: Callable[[], int]) -> None:
    port = reserve_port()
    with running([DOKI, "dev", "--no-reload"], cwd=tmp_path, env=clean_env(PORT=str(port))) as proc:
        assert _first_line(proc) == f"Doki backend (development) at http://127.0.0.1:{port}\n"
        assert wait_for_http(f"http://127.0.0.1:{port}/", proc=proc).json() == {"message": "Doki Backend up"}


def test_doki_dev_runs_in_development_even_when_dotenv_says_production(
    tmp_path: Path, reserve_port: Callable[[], int]
) -> None:
    (tmp_path / ".env").write_text("ENVIRONMENT=production\n")
    port = reserve_port()
    with running([DOKI, "dev", "--no-reload", "--port", str(port)], cwd=tmp_path, env=clean_env()) as proc:
        assert wait_for_http(f"http://127.0.0.1:{port}/auth/me", proc=proc).status_code == 200


def test_doki_dev_on_a_busy_port_says_so_and_how_to_fix_it() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = runner.invoke(app, ["dev", "--port", str(port)])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error [port_unavailable]: cannot listen on 127.0.0.1:{port}: ")
    assert result.stderr.endswith(
        f"  Hint: stop whatever uses port {port}, or pick another: doki dev --port {port + 1}\n"
    )


def test_doki_dev_from_a_subdirectory_reads_the_projects_env_beside_doki_toml(
    tmp_path: Path, reserve_port: Callable[[], int], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "doki.toml").write_text('[service]\nname = "api"\nproject = "proj-123"\n')
    (tmp_path / ".env").write_text("ENCRYPTION_KEY=not-a-key\n")
    (tmp_path / "app").mkdir()
    monkeypatch.chdir(tmp_path / "app")
    result = runner.invoke(app, ["dev", "--port", str(reserve_port())])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[:2] == [
        f"running in {tmp_path.resolve()}, beside its doki.toml: .env and .doki/ are read there",
        "Error [config_invalid]: Doki cannot start: 1 configuration problem(s)",
    ]
    assert "ENCRYPTION_KEY key #1 is not a valid Fernet key" in result.stderr


def test_doki_dev_lists_every_configuration_problem_before_starting(
    tmp_path: Path, reserve_port: Callable[[], int]
) -> None:
    (tmp_path / ".env").write_text("ALLOWED_ORIGINS=*,https://ok.example.com/\nENCRYPTION_KEY=not-a-key\n")
    result = runner.invoke(app, ["dev", "--port", str(reserve_port())])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == ("Error [config_invalid]: Doki cannot start: 3 configuration problem(s)")
    assert "ALLOWED_ORIGINS contains '*'" in result.stderr
    assert "'https://ok.example.com/' ends with '/'" in result.stderr
    assert "ENCRYPTION_KEY key #1 is not a valid Fernet key" in result.stderr
    assert "Hint: fix these values in your environment or .env" in result.stderr
    assert not (tmp_path / ".doki" / "credentials.sqlite3").exists()
    assert os.environ.get("ENVIRONMENT") is None
