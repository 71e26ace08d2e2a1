"""Fixtures more than one command test module takes: `project`, the release tests' checkout (test_release.py,
test_keeps_unmanaged.py; a module with a `project` fixture of its own, as most have, gets its own), and
`failed_service`, a deployed service whose revision never became Ready, which needs no container."""

from __future__ import annotations

from pathlib import Path

import pytest

from doki_cli.emulator.server import Emulator
from doki_cli.gcp.clients import ClientFactory
from doki_cli.main import app
from tests.helpers import CliRunner, copy_checkout
from tests.helpers.accounts import make_accounts
from tests.helpers.project import ENV, TOML, setup_project
from tests.helpers.release import commit, git


@pytest.fixture
def project(tmp_path: Path, engine_emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A checkout of this repository as a user's project: doki.toml, a .env kept out of git, one commit."""
    root = copy_checkout(tmp_path / "project")
    (root / "doki.toml").write_text(
        TOML + '[release]\nattempts = 3\n[[release.checks]]\npath = "/docs"\ncontains = "Swagger"\n'
    )
    (root / ".env").write_text(ENV)
    make_accounts(engine_emulator, TOML)
    git(root, "init", "-q")
    commit(root, "first")
    monkeypatch.chdir(root)
    monkeypatch.setenv("DOKI_EMULATOR", engine_emulator.grpc_address)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", engine_emulator.rest_url)
    monkeypatch.setenv("DOKI_EMULATOR_REGISTRY", engine_emulator.registry_address)
    monkeypatch.delenv("CI", raising=False)
    for name in ("GITHUB_SHA", "COMMIT_SHA", "CI_COMMIT_SHA", "BUILDKITE_COMMIT", "CIRCLE_SHA1", "GIT_COMMIT"):
        monkeypatch.delenv(name, raising=False)
    return root


@pytest.fixture
def failed_service(tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> ClientFactory:
    """A service whose only revision never became Ready (no engine): it exists, nothing serves."""
    setup_project(tmp_path, emulator, monkeypatch)
    CliRunner().invoke(app, ["secrets", "push"])
    assert CliRunner().invoke(app, ["deploy", "--image", "img:1", "--yes"]).exit_code == 1
    return ClientFactory(emulator.grpc_address)
