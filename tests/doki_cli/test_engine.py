"""The build context as the engine receives it: what .dockerignore keeps out never leaves the machine."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from doki_cli.engine import build_context
from tests.helpers import copy_checkout


def members(data: bytes) -> set[str]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        return set(archive.getnames())


def test_the_context_keeps_out_what_this_repositorys_dockerignore_names(tmp_path: Path) -> None:
    root = copy_checkout(tmp_path / "project")
    (root / ".env").write_text("ENCRYPTION_KEY=secret\n")
    (root / ".env.production").write_text("x=1\n")
    (root / ".doki").mkdir()
    (root / ".doki" / "dev-keys.json").write_text("{}")
    (root / ".git").mkdir(exist_ok=True)
    (root / ".git" / "config").write_text("[core]\n")
    names = members(build_context(root))
    assert {"Dockerfile", "pyproject.toml", "poetry.lock", "doki/app.py"} <= names
    for kept_out in (".env", ".env.production", ".doki/dev-keys.json", ".git/config", "tests/conftest.py"):
        assert kept_out not in names


def test_without_a_dockerignore_everything_is_sent(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / ".env").write_text("A=1\n")
    assert {"Dockerfile", ".env"} <= members(build_context(tmp_path))


def test_comments_blank_lines_and_exceptions_follow_dockers_rules(tmp_path: Path) -> None:
    (tmp_path / ".dockerignore").write_text("# secrets\n\n*.key\n!public.key\n")
    for name in ("Dockerfile", "private.key", "public.key"):
        (tmp_path / name).write_text("x")
    assert members(build_context(tmp_path)) >= {"Dockerfile", "public.key"}
    assert "private.key" not in members(build_context(tmp_path))
