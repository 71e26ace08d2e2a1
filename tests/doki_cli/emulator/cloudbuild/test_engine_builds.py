"""Builds on the real Docker engine, end to end through the emulator: the source uploaded with the storage client as
`gcloud builds submit --tag` uploads it, the build run by the official Cloud Build client, the image checked on the
engine and in Artifact Registry, the build log read back through Cloud Logging."""

from __future__ import annotations

import contextlib
import io
import tarfile
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from docker.errors import ImageNotFound
from google.api_core import exceptions
from google.cloud import artifactregistry_v1 as ar
from google.cloud.devtools import cloudbuild_v1 as cb

from doki_cli.emulator.cloudbuild.state import NO_ENGINE
from doki_cli.gcp.clients import ClientFactory
from tests.helpers import BASE_IMAGE

PROJECT = "doki-builds"
REGION = "us-central1"
REPOSITORY = f"projects/{PROJECT}/locations/{REGION}/repositories/apps"
DOCKERFILE = "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY hello.txt /hello.txt\n"
Status = cb.Build.Status


def _tarball(files: dict[str, str], *, extra: list[tarfile.TarInfo] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path, text in files.items():
            info = tarfile.TarInfo(path)
            info.size = len(text.encode())
            archive.addfile(info, io.BytesIO(text.encode()))
        for info in extra or []:
            archive.addfile(info, io.BytesIO(b"x" * info.size))
    return buffer.getvalue()


def _upload(clients: ClientFactory, data: bytes) -> cb.Source:
    """The source as `gcloud builds submit` stores it: bucket PROJECT_cloudbuild, object source/<ts>-<uuid>.tgz."""
    storage = clients.storage(PROJECT)
    bucket = storage.lookup_bucket(f"{PROJECT}_cloudbuild") or storage.create_bucket(f"{PROJECT}_cloudbuild")
    blob = bucket.blob(f"source/{time.time():.6f}-{uuid.uuid4().hex}.tgz")
    blob.upload_from_string(data, content_type="application/gzip")
    return cb.Source(storage_source=cb.StorageSource(bucket=bucket.name, object_=blob.name, generation=blob.generation))


def _build(clients: ClientFactory, source: cb.Source, tag: str) -> Any:
    step = cb.BuildStep(
        name="gcr.io/cloud-builders/docker",
        args=[
            "build",
            "--network",
            "cloudbuild",
            "--no-cache",
            "--build-arg",
            f"BASE_IMAGE={BASE_IMAGE}",
            "-t",
            tag,
            ".",
        ],
    )
    return clients.cloud_build().create_build(
        request={
            "parent": f"projects/{PROJECT}/locations/global",
            "project_id": PROJECT,
            "build": cb.Build(source=source, steps=[step], images=[tag]),
        }
    )


def _log(clients: ClientFactory, build_id: str) -> list[str]:
    entries = clients.logging().list_log_entries(
        resource_names=[f"projects/{PROJECT}"],
        filter=f'logName="projects/{PROJECT}/logs/cloudbuild" AND resource.type="build" '
        f'AND resource.labels.build_id="{build_id}"',
    )
    return [entry.text_payload for entry in entries]


def _create_repository(clients: ClientFactory) -> None:
    clients.artifact_registry().create_repository(
        parent=f"projects/{PROJECT}/locations/{REGION}",
        repository_id="apps",
        repository=ar.Repository(format_=ar.Repository.Format.DOCKER),
    ).result(timeout=10)


@pytest.fixture
def tag(docker_client: Any) -> Iterator[str]:
    """A fresh image tag in the test repository, removed from the engine afterwards."""
    name = f"{REGION}-docker.pkg.dev/{PROJECT}/apps/hello:{uuid.uuid4().hex[:10]}"
    yield name
    with contextlib.suppress(ImageNotFound):
        docker_client.images.remove(name, force=True)


def test_a_submitted_build_runs_on_the_engine_and_pushes_into_artifact_registry(
    engine_clients: ClientFactory, docker_client: Any, tag: str
) -> None:
    _create_repository(engine_clients)
    source = _upload(engine_clients, _tarball({"Dockerfile": DOCKERFILE, "hello.txt": "hello\n"}))
    build = _build(engine_clients, source, tag).result(timeout=300)
    assert build.status == Status.SUCCESS
    [image] = build.results.images
    assert image.name == tag
    # Pushed for real into the emulator's registry: the digest is the manifest's, which the engine knows too.
    repo_digests = docker_client.images.get(tag).attrs["RepoDigests"]
    assert any(d.endswith(f"/{REGION}-docker.pkg.dev/{PROJECT}/apps/hello@{image.digest}") for d in repo_digests)
    [pushed] = engine_clients.artifact_registry().list_docker_images(parent=REPOSITORY)
    assert pushed.uri == f"{REGION}-docker.pkg.dev/{PROJECT}/apps/hello@{image.digest}"
    assert list(pushed.tags) == [tag.rsplit(":", 1)[1]]
    assert pushed.image_size_bytes > 0
    log = _log(engine_clients, build.id)
    assert log[0] == f'starting build "{build.id}"'
    assert "Step #0: Step 3/3 : COPY hello.txt /hello.txt" in log
    assert log[-1] == "DONE"


def test_a_failing_dockerfile_fails_the_build_and_its_log_shows_why(
    engine_clients: ClientFactory, docker_client: Any, tag: str
) -> None:
    dockerfile = "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN exit 3\n"
    operation = _build(engine_clients, _upload(engine_clients, _tarball({"Dockerfile": dockerfile})), tag)
    with pytest.raises(exceptions.Unknown, match="Build failed; check build logs for details"):
        operation.result(timeout=300)
    build = engine_clients.cloud_build().get_build(project_id=PROJECT, id=operation.metadata.build.id)
    assert build.status == Status.FAILURE
    assert (build.steps[0].status, build.steps[0].exit_code) == (Status.FAILURE, 1)
    log = _log(engine_clients, build.id)
    assert any(line.startswith("Step #0: ") and "returned a non-zero code: 3" in line for line in log)
    assert log[-1] == f"ERROR: {build.status_detail}"
    with pytest.raises(ImageNotFound):
        docker_client.images.get(tag)


def test_a_build_into_a_missing_repository_fails_with_dockers_push_error(
    engine_clients: ClientFactory, tag: str
) -> None:
    source = _upload(engine_clients, _tarball({"Dockerfile": DOCKERFILE, "hello.txt": "hello\n"}))
    operation = _build(engine_clients, source, tag)
    with pytest.raises(exceptions.Unknown):
        operation.result(timeout=300)
    assert (
        operation.metadata.build.status_detail
        == f'error pushing image "{tag}": name unknown: Repository "apps" not found'
    )


def test_the_dockerignore_in_the_source_is_honoured(engine_clients: ClientFactory, tag: str) -> None:
    _create_repository(engine_clients)
    files = {
        "Dockerfile": "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY . /app\n"
        "RUN test -e /app/hello.txt && test ! -e /app/secret.txt\n",
        ".dockerignore": "secret.txt\n",
        "hello.txt": "hello\n",
        "secret.txt": "do not ship\n",
    }
    assert (
        _build(engine_clients, _upload(engine_clients, _tarball(files)), tag).result(timeout=300).status
        == Status.SUCCESS
    )


def test_a_source_with_a_member_outside_the_workspace_is_refused(engine_clients: ClientFactory, tag: str) -> None:
    evil = tarfile.TarInfo("../evil.txt")
    evil.size = 1
    source = _upload(engine_clients, _tarball({"Dockerfile": DOCKERFILE}, extra=[evil]))
    operation = _build(engine_clients, source, tag)
    with pytest.raises(exceptions.Unknown):
        operation.result(timeout=60)
    assert operation.metadata.build.status_detail == (
        'failed to fetch source: the source archive member "../evil.txt" would be extracted outside the workspace'
    )


def test_an_emulator_without_an_engine_fails_builds_saying_why(clients: ClientFactory) -> None:
    source = _upload(clients, _tarball({"Dockerfile": DOCKERFILE}))
    operation = _build(clients, source, f"{REGION}-docker.pkg.dev/{PROJECT}/apps/hello:v1")
    with pytest.raises(exceptions.Unknown, match="Build failed; check build logs for details"):
        operation.result(timeout=60)
    assert operation.metadata.build.status == Status.FAILURE
    assert operation.metadata.build.status_detail == NO_ENGINE
    assert _log(clients, operation.metadata.build.id)[-1] == f"ERROR: {NO_ENGINE}"
