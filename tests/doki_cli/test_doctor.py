"""`doki doctor`: the guide's checklist as checks, offline and against the emulator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from doki_cli.emulator.server import Emulator
from doki_cli.main import app
from tests.helpers import copy_checkout

runner = CliRunner()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = copy_checkout(tmp_path / "project")
    monkeypatch.chdir(root)
    return root


def checks(*args: str) -> tuple[int, dict[str, dict[str, str]]]:
    result = runner.invoke(app, ["--json", "doctor", *args])
    return result.exit_code, {c["check"]: c for c in json.loads(result.stdout)}


def test_this_repository_passes_every_local_check(project: Path) -> None:
    code, found = checks("--offline")
    assert code == 0
    assert {c["status"] for c in found.values()} == {"pass"}
    assert set(found) == {
        "secrets",
        "runtime account",
        "cors",
        "environment",
        "dockerfile user",
        "dockerignore",
        "credential files",
    }


def test_a_wildcard_origin_a_plain_secret_and_a_root_dockerfile_fail(project: Path) -> None:
    toml = (project / "doki.toml").read_text()
    toml = toml.replace('ALLOWED_ORIGINS = ["https://app.doki.com", "https://www.doki.com"]', 'ALLOWED_ORIGINS = "*"')
    toml = toml.replace('GCP_PROJECT_ID = "doki-prod"', 'GCP_PROJECT_ID = "doki-prod"\nSTRIPE_SECRET = "sk_live_abc"')
    (project / "doki.toml").write_text(toml)
    dockerfile = (project / "Dockerfile").read_text().replace("USER 1000", "USER root")
    (project / "Dockerfile").write_text(dockerfile)
    code, found = checks("--offline")
    assert code == 1
    assert (found["cors"]["status"], found["cors"]["message"]) == ("fail", "ALLOWED_ORIGINS contains '*'")
    assert found["secrets"]["message"] == "plain env vars that look secret: STRIPE_SECRET"
    assert found["dockerfile user"]["status"] == "fail"
    human = runner.invoke(app, ["doctor", "--offline"]).stdout
    assert "FAIL  cors: ALLOWED_ORIGINS contains '*'\n      fix: list your frontend origins exactly\n" in human


def test_dotenv_and_key_files_in_the_build_context_fail(project: Path) -> None:
    (project / ".dockerignore").write_text("tests\n")
    (project / ".env").write_text("A=1\n")
    (project / "deploy.pem").write_text("-----BEGIN PRIVATE KEY-----\n")
    code, found = checks("--offline")
    assert code == 1
    assert found["dockerignore"]["status"] == "fail"
    assert found["credential files"]["message"] == "the build context would send .env, deploy.pem"


def test_online_it_finds_secrets_the_runtime_account_cannot_read(
    project: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOKI_EMULATOR", emulator.grpc_address)
    for name in ("SUPABASE_SECRET_KEY", "SUPABASE_JWT_SECRET", "GOOGLE_CLIENT_ID", "GOOGLE_CLIENT_SECRET"):
        (project / ".env").open("a").write(f"{name}=value-of-{name.lower()}\n")
    (project / ".env").open("a").write("SESSION_SECRET_KEY=" + "s" * 48 + "\nENCRYPTION_KEY=k\n")
    assert runner.invoke(app, ["--project", "doki-prod", "secrets", "push"]).exit_code == 0
    code, found = checks()
    assert code == 1
    assert found["secret access"]["message"].startswith("doki-runtime@doki-prod.iam.gserviceaccount.com cannot read ")
    assert found["service"]["status"] == "warn"
    assert runner.invoke(app, ["secrets", "grant"]).exit_code == 0
    assert checks()[1]["secret access"]["status"] == "pass"
