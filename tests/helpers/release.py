"""What the `doki release` tests share: git in a project's checkout, the image name a release pushes, and
`doki release` run as CI runs it, built on the local engine (used by the release tests and by the test that every
writing command keeps what doki does not manage). The project itself is the `project` fixture of
tests/doki_cli/commands/conftest.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from doki_cli.main import app
from tests.helpers import BASE_IMAGE, CliRunner, run

runner = CliRunner()
IMAGE = "us-central1-docker.pkg.dev/doki-e2e/doki/doki-backend"


def git(root: Path, *args: str) -> str:
    return run(
        ["git", "-c", "user.name=ci", "-c", "user.email=ci@example.com", *args],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def commit(root: Path, message: str) -> str:
    git(root, "add", "-A")
    git(root, "commit", "-qm", message)
    return git(root, "rev-parse", "HEAD")


def release(*args: str) -> Any:
    return runner.invoke(app, ["--json", "release", "--local", "--base-image", BASE_IMAGE, *args])
