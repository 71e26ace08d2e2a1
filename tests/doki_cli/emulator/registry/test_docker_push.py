"""The real Docker engine pushing to and pulling from the emulator's registry over loopback (plain HTTP: dockerd
treats 127.0.0.0/8 registries as insecure), logged in as Artifact Registry expects."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from docker.errors import ImageNotFound
from google.cloud import artifactregistry_v1 as ar

from doki_cli.emulator.server import Emulator
from doki_cli.gcp.clients import ClientFactory
from tests.helpers import BASE_IMAGE

pytestmark = pytest.mark.docker

AUTH = {"username": "oauth2accesstoken", "password": "a-token"}
REPOSITORY = "projects/p/locations/us-central1/repositories/apps"


@pytest.fixture
def image(tmp_path: Path, emulator: Emulator, clients: ClientFactory, docker_client: Any) -> Iterator[str]:
    """A small image on the base, tagged with the emulator's name for us-central1-docker.pkg.dev/p/apps/app:v1."""
    clients.artifact_registry().create_repository(
        parent="projects/p/locations/us-central1",
        repository_id="apps",
        repository=ar.Repository(format_=ar.Repository.Format.DOCKER),
    ).result(timeout=10)
    (tmp_path / "Dockerfile").write_text(f"FROM {BASE_IMAGE}\nCOPY note.txt /note.txt\n")
    (tmp_path / "note.txt").write_text(f"pushed from {tmp_path}\n")
    name = f"{emulator.registry_address}/us-central1-docker.pkg.dev/p/apps/app"
    docker_client.images.build(path=str(tmp_path), tag=f"{name}:v1", network_mode="host", rm=True)
    yield name
    with contextlib.suppress(ImageNotFound):
        docker_client.images.remove(f"{name}:v1", force=True)


def push(docker_client: Any, name: str, tag: str, auth: dict[str, str]) -> list[dict[str, Any]]:
    return list(docker_client.api.push(name, tag=tag, auth_config=auth, stream=True, decode=True))


def test_the_engine_pushes_an_image_that_artifact_registry_lists_and_pulls_it_back(
    image: str, docker_client: Any, clients: ClientFactory
) -> None:
    built = docker_client.images.get(f"{image}:v1")
    lines = push(docker_client, image, "v1", AUTH)
    assert [line for line in lines if "error" in line] == []
    (digest,) = [line["aux"]["Digest"] for line in lines if "aux" in line]
    assert docker_client.images.get(f"{image}:v1").attrs["RepoDigests"] == [f"{image}@{digest}"]
    (listed,) = clients.artifact_registry().list_docker_images(parent=REPOSITORY)
    assert listed.uri == f"us-central1-docker.pkg.dev/p/apps/app@{digest}"  # the real name, not the emulator's
    assert list(listed.tags) == ["v1"]

    docker_client.images.remove(f"{image}:v1", force=True)
    with pytest.raises(ImageNotFound):
        docker_client.images.get(built.id)
    pulled = docker_client.images.pull(image, tag="v1", auth_config=AUTH)
    assert pulled.id == built.id


def test_the_engine_is_refused_a_push_as_another_user(image: str, docker_client: Any) -> None:
    lines = push(docker_client, image, "v1", {"username": "someone", "password": "a-token"})
    assert lines[-1]["error"] == (
        "unauthorized: authentication failed for user 'someone': "
        "log in as oauth2accesstoken with an access token as the password"
    )


def test_a_push_to_a_repository_that_does_not_exist_is_name_unknown(
    image: str, emulator: Emulator, docker_client: Any, clients: ClientFactory
) -> None:
    elsewhere = f"{emulator.registry_address}/us-central1-docker.pkg.dev/p/nope/app"
    docker_client.images.get(f"{image}:v1").tag(elsewhere, "other")
    try:
        lines = push(docker_client, elsewhere, "other", AUTH)
    finally:
        docker_client.images.remove(f"{elsewhere}:other")
    assert lines[-1]["error"] == 'name unknown: Repository "nope" not found'
    assert list(clients.artifact_registry().list_docker_images(parent=REPOSITORY)) == []
