"""`doki build --push` against the emulator with the real engine: the repository made when missing, every tag
pushed through the emulator's registry, and Artifact Registry listing the image under its real name and digest."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.api_core import exceptions

from doki_cli.emulator.server import Emulator
from doki_cli.gcp.clients import ClientFactory
from doki_cli.gcp.google import Google
from doki_cli.main import app
from tests.helpers import BASE_IMAGE, CliRunner

runner = CliRunner()
IMAGE = "us-central1-docker.pkg.dev/proj-push/apps/api"
REPOSITORY = "projects/proj-push/locations/us-central1/repositories/apps"


@pytest.fixture
def project(
    tmp_path: Path, engine_emulator: Emulator, monkeypatch: pytest.MonkeyPatch, docker_client: Any
) -> Iterator[Path]:
    monkeypatch.setenv("DOKI_EMULATOR", engine_emulator.grpc_address)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", engine_emulator.rest_url)
    monkeypatch.setenv("DOKI_EMULATOR_REGISTRY", engine_emulator.registry_address)
    (tmp_path / "doki.toml").write_text('[service]\nname = "api"\nproject = "proj-push"\nrepository = "apps"\n')
    (tmp_path / "Dockerfile").write_text("ARG BASE_IMAGE=scratch\nFROM ${BASE_IMAGE}\nCOPY app.txt /app.txt\n")
    (tmp_path / "app.txt").write_text(f"built in {tmp_path}\n")
    yield tmp_path
    from docker.errors import ImageNotFound

    for name in (IMAGE, f"{engine_emulator.registry_address}/{IMAGE}"):
        for tag in ("v1", "r1", "latest"):
            with contextlib.suppress(ImageNotFound):
                docker_client.images.remove(f"{name}:{tag}", force=True)


# A build's progress line in a log: `2026-12-07T09:17:06Z building: Step 1/3 : ...`.
BUILDING = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ building: (Step .*)")


def built_steps(stderr: str) -> list[str]:
    return [match[1] for line in stderr.splitlines() if (match := BUILDING.fullmatch(line))]


def notes(stderr: str) -> list[str]:
    """What stderr says besides the build's progress."""
    return [line for line in stderr.splitlines() if not BUILDING.fullmatch(line)]


def pushed_digest(docker_client: Any, emulator: Emulator) -> str:
    """The digest the engine recorded for its push of the v1 tag."""
    (repo_digest,) = docker_client.images.get(f"{emulator.registry_address}/{IMAGE}:v1").attrs["RepoDigests"]
    name, _, digest = repo_digest.partition("@")
    assert name == f"{emulator.registry_address}/{IMAGE}"
    return digest


def test_push_creates_the_repository_pushes_every_tag_and_artifact_registry_lists_the_digest(
    project: Path, engine_emulator: Emulator, engine_clients: ClientFactory, docker_client: Any
) -> None:
    result = runner.invoke(app, ["build", "--push", "--tag", "v1"])
    assert result.exit_code == 0, result.output
    image = docker_client.images.get(f"{IMAGE}:v1")
    digest = pushed_digest(docker_client, engine_emulator)
    assert result.stdout == (
        f"Building {IMAGE}:v1 from {project}\n"
        f"Built {image.id[:19]} (0 MB)\n"
        "Pushed to Artifact Registry\n"
        f"  {IMAGE}:v1  {digest}\n"
        f"  {IMAGE}:latest  {digest}\n"
    )
    # Without a terminal (a CI log) the build says each step as a stamped line; the rest is what happened.
    assert built_steps(result.stderr) == [
        "Step 1/3 : ARG BASE_IMAGE=scratch",
        "Step 2/3 : FROM ${BASE_IMAGE}",
        "Step 3/3 : COPY app.txt /app.txt",
    ]
    assert notes(result.stderr) == ["created the Artifact Registry repository apps in us-central1"]
    registry = engine_clients.artifact_registry()
    assert registry.get_repository(name=REPOSITORY).format_.name == "DOCKER"
    (listed,) = registry.list_docker_images(parent=REPOSITORY)
    assert listed.uri == f"{IMAGE}@{digest}"  # under its real name, as deploys and releases will ask for it
    assert sorted(listed.tags) == ["latest", "v1"]
    assert Google(engine_clients, "proj-push").artifact_registry.digest_of(f"{IMAGE}:v1") == digest


def test_a_second_push_reports_the_same_digest_and_creates_nothing(
    project: Path, engine_emulator: Emulator, docker_client: Any
) -> None:
    first = runner.invoke(app, ["build", "--push", "--tag", "v1"])
    assert first.exit_code == 0, first.output
    again = runner.invoke(app, ["build", "--push", "--tag", "v1"])
    assert again.exit_code == 0, again.output
    assert again.stdout == first.stdout
    assert notes(again.stderr) == []
    assert f"  {IMAGE}:v1  {pushed_digest(docker_client, engine_emulator)}\n" in again.stdout


def test_push_with_json_reports_the_build_and_the_digest_of_every_tag(
    project: Path, engine_emulator: Emulator, docker_client: Any
) -> None:
    result = runner.invoke(app, ["--json", "build", "--push", "--tag", "v1"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    digest = pushed_digest(docker_client, engine_emulator)
    image = docker_client.images.get(f"{IMAGE}:v1")
    assert report == {
        "image": IMAGE,
        "tags": [f"{IMAGE}:v1", f"{IMAGE}:latest"],
        "id": image.id,
        "size": image.attrs["Size"],
        "digest": digest,
        "digests": {f"{IMAGE}:v1": digest, f"{IMAGE}:latest": digest},
    }


def test_with_verbose_the_push_shows_each_layer_on_stderr_but_no_progress_bars(
    project: Path, engine_emulator: Emulator, docker_client: Any
) -> None:
    result = runner.invoke(app, ["-v", "build", "--push", "--tag", "v1"])
    assert result.exit_code == 0, result.output
    layer = docker_client.images.get(f"{IMAGE}:v1").attrs["RootFS"]["Layers"][0]
    digest = pushed_digest(docker_client, engine_emulator)
    pushed = result.stderr.split("Successfully tagged " + f"{IMAGE}:v1\n")[1]
    assert "Pushing" not in pushed
    # The manifest's size follows the layer's compressed size, which is not this test's business.
    assert [line.partition(" size: ")[0] for line in pushed.splitlines()] == [
        f"The push refers to repository [{engine_emulator.registry_address}/{IMAGE}]",
        f"{layer[7:19]}: Preparing",
        f"{layer[7:19]}: Pushed",
        f"v1: digest: {digest}",
        f"The push refers to repository [{engine_emulator.registry_address}/{IMAGE}]",
        f"{layer[7:19]}: Preparing",
        f"{layer[7:19]}: Layer already exists",
        f"latest: digest: {digest}",
    ]


def test_push_and_remote_together_are_refused_before_anything_happens(
    project: Path, engine_clients: ClientFactory
) -> None:
    result = runner.invoke(app, ["build", "--push", "--remote", "--tag", "v1"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        "Error [bad_option]: --push and --remote do not go together: a remote build pushes its image itself\n"
        "  Hint: drop --push: doki build --remote builds on Cloud Build and pushes to Artifact Registry\n"
    )
    with pytest.raises(exceptions.NotFound):
        engine_clients.artifact_registry().get_repository(name=REPOSITORY)


def test_without_the_registry_variable_nothing_is_built(
    project: Path, monkeypatch: pytest.MonkeyPatch, docker_client: Any
) -> None:
    from docker.errors import ImageNotFound

    monkeypatch.delenv("DOKI_EMULATOR_REGISTRY")
    result = runner.invoke(app, ["build", "--push", "--tag", "v1"])
    assert result.exit_code == 1
    assert result.stderr.endswith(
        "Error [no_registry_emulator]: DOKI_EMULATOR is set but DOKI_EMULATOR_REGISTRY is not, so images have nowhere "
        'to be pushed\n  Hint: set both with `eval "$(doki emulator env)"`\n'
    )
    with pytest.raises(ImageNotFound):
        docker_client.images.get(f"{IMAGE}:v1")


def test_after_a_remote_build_the_digest_of_its_tag_is_found(
    project: Path, engine_clients: ClientFactory, docker_client: Any
) -> None:
    result = runner.invoke(app, ["--json", "build", "--remote", "--tag", "r1", "--base-image", BASE_IMAGE])
    assert result.exit_code == 0, result.output
    digests = json.loads(result.stdout)["digests"]
    registry = Google(engine_clients, "proj-push").artifact_registry
    assert registry.digest_of(f"{IMAGE}:r1") == digests[f"{IMAGE}:r1"]
    assert registry.digest_of(f"{IMAGE}:latest") == digests[f"{IMAGE}:latest"]
    assert registry.digest_of(f"{IMAGE}:v1") is None
