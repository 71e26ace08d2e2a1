"""Which commit a release ships: --sha, a CI variable, or git's HEAD, and never a tree that is not that commit."""

from __future__ import annotations

from pathlib import Path

import pytest

from doki_cli.errors import DokiError
from doki_cli.gitinfo import image_changes, resolve_commit, version_tag
from tests.helpers import run


def git(root: Path, *args: str) -> str:
    return run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    git(tmp_path, "init", "-q")
    (tmp_path / "app.py").write_text("print('hi')\n")
    git(tmp_path, "add", ".")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "first")
    return tmp_path


def test_without_a_sha_the_checked_out_commit_is_released_and_tagged_as_doki_build_tags(repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD")
    commit = resolve_commit(repo, None, {}, allow_dirty=False)
    assert (commit.sha, commit.source, commit.dirty) == (head, "git", False)
    assert commit.version == version_tag(repo) == head[:7]


def test_a_ci_variable_names_the_commit_and_a_short_sha_is_completed_from_git(repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD")
    commit = resolve_commit(repo, None, {"COMMIT_SHA": head[:10].upper()}, allow_dirty=False)
    assert (commit.sha, commit.source) == (head, "COMMIT_SHA")
    assert resolve_commit(repo, None, {"GITHUB_SHA": head, "COMMIT_SHA": "0" * 40}, allow_dirty=False).source == (
        "GITHUB_SHA"
    )


def test_a_sha_other_than_the_checkout_is_refused_because_the_image_would_lie(repo: Path) -> None:
    with pytest.raises(DokiError) as caught:
        resolve_commit(repo, "abcdef1234", {}, allow_dirty=False)
    head = git(repo, "rev-parse", "HEAD")
    assert (caught.value.code, caught.value.exit_code) == ("commit_mismatch", 78)
    assert caught.value.message == f"the release is for abcdef1234 (from --sha) but {repo} has {head[:12]} checked out"


def test_a_dirty_tree_is_refused_unless_allowed_and_then_tagged_dirty(repo: Path) -> None:
    (repo / "app.py").write_text("print('changed')\n")
    with pytest.raises(DokiError) as caught:
        resolve_commit(repo, None, {}, allow_dirty=False)
    assert (caught.value.code, caught.value.exit_code) == ("dirty_tree", 78)
    assert caught.value.hint == (
        "commit or stash them, or pass --allow-dirty (the image is then tagged -dirty and never reused)"
    )
    commit = resolve_commit(repo, None, {}, allow_dirty=True)
    assert commit.version == git(repo, "rev-parse", "HEAD")[:7] + "-dirty" == version_tag(repo)


def test_outside_git_a_sha_must_be_given_and_must_look_like_one(tmp_path: Path) -> None:
    assert resolve_commit(tmp_path, "ABCDEF1", {}, allow_dirty=False).sha == "abcdef1"
    with pytest.raises(DokiError) as missing:
        resolve_commit(tmp_path, None, {}, allow_dirty=False)
    assert (missing.value.code, missing.value.exit_code) == ("no_commit", 78)
    with pytest.raises(DokiError) as bad:
        resolve_commit(tmp_path, "main", {}, allow_dirty=False)
    assert bad.value.message == "'main' (from --sha) is not a commit sha"


def commit_all(root: Path, message: str) -> None:
    git(root, "add", "-A")
    git(root, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", message)


def test_only_changes_to_files_the_build_sends_make_the_tag_dirty(repo: Path) -> None:
    (repo / ".dockerignore").write_text("# only the app\n*\n!app/\n**/*.pyc\n")
    (repo / "app").mkdir()
    (repo / "app" / "main.py").write_text("print('app')\n")
    (repo / "Dockerfile").write_text("FROM scratch\n")
    (repo / "doki.toml").write_text('name = "x"\n')
    commit_all(repo, "project")
    head = git(repo, "rev-parse", "HEAD")[:7]

    (repo / "doki.toml").write_text('name = "y"\n')
    (repo / "NOTES.md").write_text("untracked, ignored by the build\n")
    (repo / "app" / "cache.pyc").write_bytes(b"\0")
    assert image_changes(repo) == []
    assert version_tag(repo) == head
    assert resolve_commit(repo, None, {}, allow_dirty=False).version == head

    (repo / "Dockerfile").write_text("FROM scratch\nENV A=1\n")  # always sent, whatever .dockerignore says
    (repo / "app" / "new.py").write_text("x = 1\n")
    assert image_changes(repo) == ["Dockerfile", "app/new.py"]
    assert version_tag(repo) == head + "-dirty"
    with pytest.raises(DokiError) as caught:
        resolve_commit(repo, None, {}, allow_dirty=False)
    assert caught.value.message == (
        f"{repo} has uncommitted changes to files the image holds (Dockerfile, app/new.py): "
        f"the image would not be what {head} holds"
    )


def test_a_project_below_the_repository_top_judges_its_own_files_and_renames_count_both_names(repo: Path) -> None:
    project = repo / "backend"
    (project / "src").mkdir(parents=True)
    (project / ".dockerignore").write_text("*\n!src/\n")
    (project / "src" / "old.py").write_text("x = 1\n")
    commit_all(repo, "backend")
    head = git(repo, "rev-parse", "HEAD")[:7]

    (repo / "app.py").write_text("print('outside the project')\n")
    assert version_tag(project) == head

    git(repo, "mv", "backend/src/old.py", "backend/docs.md")
    assert image_changes(project) == ["src/old.py"]  # gone from the image, though its new name is ignored
    assert version_tag(project) == head + "-dirty"
    git(repo, "mv", "backend/docs.md", "backend/src/old.py")
    assert image_changes(project) == []

    # A rename git sees only in the working tree (the new name added with --intent-to-add) counts both names too.
    (project / "src" / "old.py").rename(project / "src" / "new.py")
    git(repo, "add", "-N", "backend/src/new.py")
    assert image_changes(project) == ["src/new.py", "src/old.py"]
