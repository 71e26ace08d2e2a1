"""`doki build --remote` through the emulated Cloud Build: upload, build on the engine, push, digest back."""

from __future__ import annotations

import contextlib
import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from doki_cli.emulator.server import Emulator
from doki_cli.gcp.clients import ClientFactory
from doki_cli.main import app
from tests.helpers import BASE_IMAGE, CliRunner

runner = CliRunner()
IMAGE = "us-central1-docker.pkg.dev/proj-remote/apps/api"


@pytest.fixture
def project(
    tmp_path: Path, engine_emulator: Emulator, monkeypatch: pytest.MonkeyPatch, docker_client: Any
) -> Iterator[Path]:
    monkeypatch.setenv("DOKI_EMULATOR", engine_emulator.grpc_address)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", engine_emulator.rest_url)
    (tmp_path / "doki.toml").write_text('[service]\nname = "api"\nproject = "proj-remote"\nrepository = "apps"\n')
    (tmp_path / "Dockerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY app.txt /app.txt\n")
    (tmp_path / "app.txt").write_text("hello\n")
    (tmp_path / ".env").write_text("ENCRYPTION_KEY=must-not-leave\n")
    (tmp_path / ".dockerignore").write_text(".env\n")
    yield tmp_path
    from docker.errors import ImageNotFound

    for tag in ("r1", "latest"):
        with contextlib.suppress(ImageNotFound):
            docker_client.images.remove(f"{IMAGE}:{tag}", force=True)


def test_a_remote_build_pushes_the_image_and_never_uploads_dotenv(
    project: Path, engine_emulator: Emulator, docker_client: Any
) -> None:
    result = runner.invoke(app, ["--json", "build", "--remote", "--tag", "r1", "--base-image", BASE_IMAGE])
    assert result.exit_code == 0, result.output
    outcome = json.loads(result.stdout)
    assert outcome["tags"] == [f"{IMAGE}:r1", f"{IMAGE}:latest"]
    digest = outcome["digests"][f"{IMAGE}:r1"]
    assert digest.startswith("sha256:")
    # Pushed for real: the digest is the manifest's in the emulator's registry, as a pull by digest would find it.
    registry = engine_emulator.registry_address
    assert f"{registry}/{IMAGE}@{digest}" in docker_client.images.get(f"{IMAGE}:r1").attrs["RepoDigests"]

    factory = ClientFactory(engine_emulator.grpc_address, engine_emulator.rest_url)
    repository = factory.artifact_registry().get_repository(
        name="projects/proj-remote/locations/us-central1/repositories/apps"
    )
    assert repository.format_.name == "DOCKER"
    (blob,) = list(factory.storage("proj-remote").list_blobs("proj-remote_cloudbuild", prefix="source/"))
    with tarfile.open(fileobj=io.BytesIO(blob.download_as_bytes()), mode="r:gz") as archive:
        names = set(archive.getnames())
    assert {"Dockerfile", "app.txt"} <= names
    assert ".env" not in names


def test_a_failing_remote_build_says_so_with_its_status(project: Path) -> None:
    (project / "Dockerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo about-to-fail && false\n")
    result = runner.invoke(app, ["build", "--remote", "--tag", "r1", "--base-image", BASE_IMAGE])
    assert result.exit_code == 1
    assert "Error [build_failed]: remote build " in result.stderr
    assert " ended FAILURE: " in result.stderr
    # Without -v the log was not shown while it ran: its end, with the failing step's output, is in the error.
    error = result.stderr[result.stderr.index("Error [build_failed]") :]
    assert "\nStep #0: about-to-fail\n" in error
    assert "  Hint: fix the failing step; the whole log: rerun with -v, or " in error


def test_a_remote_build_tells_what_it_built_and_where_it_pushed(
    project: Path, engine_emulator: Emulator, docker_client: Any
) -> None:
    result = runner.invoke(app, ["build", "--remote", "--tag", "r1", "--base-image", BASE_IMAGE])
    assert result.exit_code == 0, result.output
    (build,) = ClientFactory(engine_emulator.grpc_address).cloud_build().list_builds(project_id="proj-remote")
    digest = build.results.images[0].digest
    assert (
        f"{engine_emulator.registry_address}/{IMAGE}@{digest}"
        in (docker_client.images.get(f"{IMAGE}:r1").attrs["RepoDigests"])
    )
    assert result.stdout == (
        f"Building {IMAGE}:r1 on Cloud Build (0.0 MB of context, .dockerignore applied), as the project's default "
        "build account (the Compute Engine default account on projects made since 2024)\n"
        f"Built and pushed on Cloud Build (build {build.id})\n"
        f"  {IMAGE}:r1  {digest}\n"
        f"  {IMAGE}:latest  {digest}\n"
    )
    assert result.stderr == "created the Artifact Registry repository apps in us-central1\n"

    again = runner.invoke(app, ["build", "--remote", "--tag", "r1", "--base-image", BASE_IMAGE])
    assert again.exit_code == 0, again.output
    assert again.stderr == ""  # the repository exists now: nothing to create, and the build log only with -v


def test_a_verbose_remote_build_shows_the_build_log_on_stderr(project: Path) -> None:
    result = runner.invoke(app, ["-v", "build", "--remote", "--tag", "r1", "--base-image", BASE_IMAGE])
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert lines[0] == "created the Artifact Registry repository apps in us-central1"
    assert "Step #0: Step 3/3 : COPY app.txt /app.txt" in lines
    assert f"Pushing {IMAGE}:r1" in lines
    assert lines[-1] == "DONE"
    assert result.stdout.startswith(f"Building {IMAGE}:r1 on Cloud Build (")  # the log never mixes into stdout


def test_a_build_bucket_made_by_another_project_gets_no_source(project: Path, engine_emulator: Emulator) -> None:
    # Bucket names are global: someone else made proj-remote_cloudbuild first, and could read what lands in it.
    factory = ClientFactory(engine_emulator.grpc_address, engine_emulator.rest_url)
    factory.storage("squatter-project").create_bucket("proj-remote_cloudbuild")

    result = runner.invoke(app, ["build", "--remote", "--tag", "r1", "--base-image", BASE_IMAGE])

    assert result.exit_code == 1
    assert result.stderr.endswith(
        "Error [build_bucket_not_ours]: gs://proj-remote_cloudbuild exists but belongs to another project: doki will "
        "not upload your source to a bucket someone else may read\n"
        "  Hint: build locally and push instead (doki build --push; doki release --local)\n"
    )
    assert list(factory.storage("squatter-project").list_blobs("proj-remote_cloudbuild")) == []


def test_a_remote_build_reads_its_log_a_few_times_a_minute_and_shows_each_line_once(
    project: Path, engine_emulator: Emulator
) -> None:
    # Cloud Logging allows a project 60 log reads a minute (the emulator enforces it): the build is polled every
    # second, its log every fifth poll, each read asking only for what is new.
    (project / "Dockerfile").write_text(
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN for i in 1 2 3 4 5 6 7 8; do echo tick-$i; sleep 1; done\n"
    )
    result = runner.invoke(app, ["-v", "build", "--remote", "--tag", "r1", "--base-image", BASE_IMAGE])
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert [line for line in lines if line.startswith("Step #0: tick-")] == [f"Step #0: tick-{i}" for i in range(1, 9)]
    assert lines.count("DONE") == 1
    calls = engine_emulator.faults.calls
    polls = calls["/google.devtools.cloudbuild.v1.CloudBuild/GetBuild"]
    reads = calls["/google.logging.v2.LoggingServiceV2/ListLogEntries"]
    assert polls >= 8
    assert reads <= polls // 5 + 2, (polls, reads)


def test_a_build_whose_writes_were_answered_with_a_lost_connection_is_uploaded_and_built_once(
    project: Path, engine_emulator: Emulator
) -> None:
    # Google made each change and the answer never came back. A second start would build and push again; the
    # bucket, made already, would refuse a second creation.
    for method in ("CreateBucket", "WriteObject", "CreateBuild"):
        engine_emulator.faults.fail(method, "UNAVAILABLE", answer_lost=True)

    result = runner.invoke(app, ["build", "--remote", "--tag", "r1", "--base-image", BASE_IMAGE])

    assert result.exit_code == 0, result.output
    (build,) = ClientFactory(engine_emulator.grpc_address).cloud_build().list_builds(project_id="proj-remote")
    assert build.status.name == "SUCCESS"
    assert f"Built and pushed on Cloud Build (build {build.id})\n" in result.stdout
    assert engine_emulator.faults.calls["/google.devtools.cloudbuild.v1.CloudBuild/CreateBuild"] == 1
    blobs = (
        ClientFactory(engine_emulator.grpc_address, engine_emulator.rest_url)
        .storage("proj-remote")
        .list_blobs("proj-remote_cloudbuild", prefix="source/")
    )
    assert len(list(blobs)) == 1


# Without a Docker engine (these need none): the emulator records the build doki started, which then fails for want
# of an engine. What doki asked Cloud Build for is what they look at.
BUILDER = "builder@proj-remote.iam.gserviceaccount.com"


@pytest.fixture
def engineless(tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DOKI_EMULATOR", emulator.grpc_address)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", emulator.rest_url)
    (tmp_path / "doki.toml").write_text('[service]\nname = "api"\nproject = "proj-remote"\nrepository = "apps"\n')
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    return tmp_path


def test_a_remote_build_runs_as_the_build_account_of_doki_toml_and_says_so(
    engineless: Path, emulator: Emulator
) -> None:
    emulator.accounts.add("proj-remote", BUILDER)
    with (engineless / "doki.toml").open("a") as toml:
        toml.write(f'[build]\nservice_account = "{BUILDER}"\n')

    result = runner.invoke(app, ["build", "--remote", "--tag", "r1"])

    assert result.stdout == (
        f"Building {IMAGE}:r1 on Cloud Build (0.0 MB of context, .dockerignore applied), as {BUILDER}\n"
    )
    assert "Error [build_failed]: remote build " in result.stderr  # started, then failed for want of an engine
    client = ClientFactory(emulator.grpc_address).cloud_build()
    (listed,) = client.list_builds(project_id="proj-remote")
    build = client.get_build(project_id="proj-remote", id=listed.id)
    assert build.service_account == f"projects/proj-remote/serviceAccounts/{BUILDER}"
    assert build.options.logging.name == "CLOUD_LOGGING_ONLY"


def test_a_remote_build_without_a_build_account_says_it_runs_as_the_projects_default(
    engineless: Path, emulator: Emulator
) -> None:
    result = runner.invoke(app, ["build", "--remote", "--tag", "r1"])

    assert result.stdout == (
        f"Building {IMAGE}:r1 on Cloud Build (0.0 MB of context, .dockerignore applied), as the project's default "
        "build account (the Compute Engine default account on projects made since 2024)\n"
    )
    (build,) = ClientFactory(emulator.grpc_address).cloud_build().list_builds(project_id="proj-remote")
    assert build.options.logging.name == "LOGGING_UNSPECIFIED"  # as doki sent it before [build] existed
    assert build.service_account.endswith("-compute@developer.gserviceaccount.com")


def test_a_build_account_the_caller_may_not_act_as_stops_the_build_with_the_grant_that_fixes_it(
    engineless: Path, emulator: Emulator
) -> None:
    emulator.accounts.add("proj-remote", BUILDER)
    with (engineless / "doki.toml").open("a") as toml:
        toml.write(f'[build]\nservice_account = "{BUILDER}"\n')
    refused = "caller does not have permission to act as service account 109095503163182759798"
    emulator.faults.fail("CreateBuild", "PERMISSION_DENIED", message=refused)

    result = runner.invoke(app, ["build", "--remote", "--tag", "r1"])

    assert result.exit_code == 1
    assert result.stderr.endswith(
        "Error [build_account_denied]: starting a build in projects/proj-remote: Cloud Build refused to run it as "
        f"{BUILDER}, which your credentials may not act as ({refused})\n"
        "  Hint: grant them roles/iam.serviceAccountUser on that account: gcloud iam service-accounts "
        f"add-iam-policy-binding {BUILDER} --member=user:YOU@example.com (or serviceAccount:EMAIL for CI) "
        "--role=roles/iam.serviceAccountUser --project proj-remote; if it does not exist (Cloud Build answers the "
        "same), create it; or set [build] service_account in doki.toml to an account they may act as\n"
    )
    assert list(ClientFactory(emulator.grpc_address).cloud_build().list_builds(project_id="proj-remote")) == []
