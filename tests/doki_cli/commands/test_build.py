"""`doki build` on a real engine: the project's Dockerfile, tagged by commit, errors that say what to do."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from doki_cli.main import app
from tests.helpers import BASE_IMAGE, CliRunner, copy_checkout, run

runner = CliRunner()
MINIMAL_TOML = '[service]\nname = "s"\nproject = "proj-1"\nregion = "us-central1"\nrepository = "x"\n'
IMAGE = "europe-west1-docker.pkg.dev/doki-test/doki/doki-backend"


def _git(root: Path, *args: str) -> str:
    return run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A committed checkout of this repository: what a user runs `doki build` in."""
    root = copy_checkout(tmp_path / "project")
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    return root


def _build(root: Path, *extra: str) -> Any:
    args = ["--json", "--config", str(root / "doki.toml"), "--project", "doki-test", "--region", "europe-west1"]
    return runner.invoke(app, [*args, "build", "--base-image", BASE_IMAGE, *extra])


def test_build_tags_the_image_with_the_commit_and_latest(docker_client: Any, project: Path) -> None:
    result = _build(project)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    sha = _git(project, "rev-parse", "--short", "HEAD")
    assert report["image"] == IMAGE
    assert report["tags"] == [f"{IMAGE}:{sha}", f"{IMAGE}:latest"]
    assert report["size"] > 0
    image = docker_client.images.get(f"{IMAGE}:{sha}")
    assert image.id == report["id"] == docker_client.images.get(f"{IMAGE}:latest").id


def test_an_uncommitted_change_marks_the_tag_dirty(docker_client: Any, project: Path) -> None:
    (project / "doki" / "api" / "routes" / "root.py").write_text(
        (project / "doki" / "api" / "routes" / "root.py").read_text() + "\n# edited\n"
    )
    result = _build(project)
    assert result.exit_code == 0, result.output
    sha = _git(project, "rev-parse", "--short", "HEAD")
    assert json.loads(result.stdout)["tags"][0] == f"{IMAGE}:{sha}-dirty"


def test_tag_replaces_the_commit_version(docker_client: Any, project: Path) -> None:
    result = _build(project, "--tag", "v1.2.3")
    assert json.loads(result.stdout)["tags"] == [f"{IMAGE}:v1.2.3", f"{IMAGE}:latest"]


def test_a_failing_build_shows_the_failing_step_and_its_output(docker_client: Any, tmp_path: Path) -> None:
    root = tmp_path / "broken"
    root.mkdir()
    (root / "doki.toml").write_text(
        '[service]\nname = "svc"\nproject = "proj-1"\nregion = "us-central1"\nrepository = "r"\n'
    )
    (root / "Dockerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo about-to-fail && false\n")
    result = runner.invoke(
        app, ["--config", str(root / "doki.toml"), "build", "--tag", "t", "--base-image", BASE_IMAGE]
    )
    assert result.exit_code == 1
    assert "Error [build_failed]: the image build failed at Step 3/3 : RUN echo about-to-fail && false:\n" in (
        result.stderr
    )
    assert "about-to-fail" in result.stderr.split("Step 3/3", 1)[1]
    assert "returned a non-zero code: 1" in result.stderr
    assert result.stderr.endswith("  Hint: fix the failing step (rerun with -v to see the whole build)\n")


def test_a_base_image_the_engine_cannot_pull_says_to_pass_one_it_has(docker_client: Any, tmp_path: Path) -> None:
    (tmp_path / "doki.toml").write_text(MINIMAL_TOML)
    (tmp_path / "Dockerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n")
    # A registry on a port where nothing listens: the pull fails at once, as where no registry is reachable.
    result = runner.invoke(
        app, ["--config", str(tmp_path / "doki.toml"), "build", "--tag", "t", "--base-image", "127.0.0.1:9/none:1"]
    )
    assert result.exit_code == 1
    assert "Error [build_failed]: the image build failed at Step 2/2 : FROM ${BASE_IMAGE}:\n" in result.stderr
    assert "127.0.0.1:9" in result.stderr
    assert result.stderr.endswith(
        "  Hint: the base image could not be pulled: pass --base-image with one the engine has (`docker images` lists "
        "them), or log the engine in to its registry\n"
    )


def test_without_an_engine_build_says_where_it_looked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    (tmp_path / "doki.toml").write_text(MINIMAL_TOML)
    result = runner.invoke(app, ["build", "--tag", "t"])
    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"Error [docker_unreachable]: no Docker engine answers at unix://{tmp_path}/no-docker.sock (DOCKER_HOST): "
    )
    assert result.stderr.endswith(
        "  Hint: start Docker (e.g. `sudo systemctl start docker`), or point DOCKER_HOST at a running engine\n"
    )


def test_without_doki_toml_build_says_where_it_looked_and_how_to_point_at_one() -> None:
    result = runner.invoke(app, ["build"])
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error [config_not_found]: no doki.toml in {Path.cwd()} or any directory above it\n"
        "  Hint: make one with `doki init` in your project's root, or pass --config PATH (DOKI_CONFIG)\n"
    )


def test_outside_git_build_needs_a_tag(tmp_path: Path) -> None:
    (tmp_path / "doki.toml").write_text(MINIMAL_TOML)
    result = runner.invoke(app, ["build"])
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error [no_git_version]: {tmp_path} is not a git checkout with a commit, so no commit names the image\n"
        "  Hint: commit your work (git init && git commit), or pass --tag VERSION\n"
    )


def test_an_unknown_environment_names_the_known_ones(tmp_path: Path) -> None:
    (tmp_path / "doki.toml").write_text(MINIMAL_TOML + '[environments.staging]\nname = "s2"\n')
    result = runner.invoke(app, ["--env", "prod", "build"])
    assert result.stderr.startswith("Error [unknown_env]: doki.toml has no environment 'prod' (known: staging)\n")


@pytest.mark.parametrize("tag", ["bad tag!", "-v1", ".hidden", "a" * 129, "v1/2"])
def test_a_tag_docker_would_refuse_is_refused_before_building(tag: str, tmp_path: Path) -> None:
    (tmp_path / "doki.toml").write_text(MINIMAL_TOML)
    result = runner.invoke(app, ["--config", str(tmp_path / "doki.toml"), "build", "--tag", tag])
    assert result.exit_code == 1
    assert result.stdout == ""  # nothing was built: no "Building ..." line
    assert result.stderr == (
        f"Error [bad_option]: --tag {tag!r} is not a Docker tag\n"
        "  Hint: use up to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-' (e.g. --tag v1.2.3)\n"
    )
