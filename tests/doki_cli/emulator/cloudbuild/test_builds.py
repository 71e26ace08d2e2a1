"""Builds through the official Cloud Build client, on a fake Docker engine: the lifecycle Google reports (status,
steps, timing, results, operation metadata and errors), pushes into Artifact Registry, logs, source safety,
timeouts, cancels, listing and restarts."""

from __future__ import annotations

import base64
import tarfile
from datetime import timedelta
from typing import Any

import pytest
from google.api_core import exceptions
from google.cloud.devtools import cloudbuild_v1 as cb

from doki_cli.emulator.cloudbuild.state import NO_ENGINE, CloudBuild
from doki_cli.emulator.operations.state import Operations
from doki_cli.emulator.projects import project_number
from tests.doki_cli.emulator.cloudbuild.conftest import (
    BUCKET,
    GENERATION,
    IMAGE,
    OBJECT,
    PROJECT,
    REPOSITORY,
    BuildWorld,
    FakeBuckets,
    FakeLogs,
)

DOCKER = "gcr.io/cloud-builders/docker"
DOCKERFILE = "FROM base\nCOPY hello.txt /hello.txt\n"
FILES = {"Dockerfile": DOCKERFILE, "hello.txt": "hello\n"}
Status = cb.Build.Status
FailureType = cb.Build.FailureInfo.FailureType


def _submit_args(tag: str = IMAGE) -> list[str]:
    # What `gcloud builds submit --tag` asks for.
    return ["build", "--network", "cloudbuild", "--no-cache", "-t", tag, "."]


def _create(world: BuildWorld, build: cb.Build, parent: str = f"projects/{PROJECT}/locations/global") -> Any:
    return world.client.create_build(request={"parent": parent, "project_id": PROJECT, "build": build})


def _submit(
    world: BuildWorld, files: dict[str, str] = FILES, *, extra: list[tarfile.TarInfo] | None = None, **build: Any
) -> Any:
    """Upload `files` (and `extra` raw members) and build them as `gcloud builds submit --tag IMAGE` does."""
    fields = {"steps": [cb.BuildStep(name=DOCKER, args=_submit_args())], "images": [IMAGE], **build}
    return _create(world, cb.Build(source=world.upload(files, extra=extra), **fields))


def _failed(operation: Any) -> cb.Build:
    """The build of an operation that ended with Google's error for a failed build."""
    with pytest.raises(exceptions.Unknown, match=r"Build failed; check build logs for details"):
        operation.result(timeout=10)
    build: cb.Build = operation.metadata.build
    return build


def _wait_for_step(world: BuildWorld) -> None:
    assert world.engine.started.wait(10), "the engine was never asked to build"


def test_a_submitted_build_succeeds_and_its_result_carries_the_pushed_digest(world: BuildWorld) -> None:
    world.create_repository()
    operation = _submit(world)
    build = operation.result(timeout=10)
    digest = build.results.images[0].digest
    assert build.status == Status.SUCCESS
    assert build.status_detail == ""
    assert operation.operation.name == f"operations/build/{PROJECT}/{base64.b64encode(build.id.encode()).decode()}"
    assert build.name == f"projects/{PROJECT}/locations/global/builds/{build.id}"
    assert build.project_id == PROJECT
    assert build.log_url == f"https://console.cloud.google.com/cloud-build/builds/{build.id}?project={PROJECT}"
    assert [(image.name, image.digest) for image in build.results.images] == [(IMAGE, digest)]
    assert digest.startswith("sha256:") and len(digest) == 71
    assert list(build.results.build_step_images) == [""]
    assert [(step.status, step.exit_code) for step in build.steps] == [(Status.SUCCESS, 0)]
    assert build.steps[0].timing.end_time >= build.steps[0].timing.start_time
    assert set(build.timing) == {"FETCHSOURCE", "BUILD", "PUSH"}
    assert build.create_time <= build.start_time <= build.finish_time
    assert build.timeout == timedelta(minutes=10)
    assert build.source_provenance.resolved_storage_source.object_ == OBJECT
    assert operation.metadata.build == build


def test_the_docker_step_builds_the_uploaded_source_with_its_tags_and_options(world: BuildWorld) -> None:
    world.create_repository()
    _submit(world).result(timeout=10)
    [call] = world.engine.calls
    assert (call.files, call.tags, call.build_args, call.no_cache) == (FILES, [IMAGE], {}, True)


def test_a_pushed_image_is_listed_in_artifact_registry_under_its_digest_and_tag(world: BuildWorld) -> None:
    world.create_repository()
    digest = _submit(world).result(timeout=10).results.images[0].digest
    [image] = world.registry_client.list_docker_images(parent=REPOSITORY)
    assert image.uri == f"us-central1-docker.pkg.dev/{PROJECT}/apps/web@{digest}"
    assert list(image.tags) == ["v1"]
    assert image.image_size_bytes == 1002


def test_the_build_log_goes_to_cloud_logging_line_by_line_under_the_build(world: BuildWorld) -> None:
    world.create_repository()
    build = _submit(world).result(timeout=10)
    digest = build.results.images[0].digest
    assert world.logs.lines(build.id) == [
        f'starting build "{build.id}"',
        "FETCHSOURCE",
        f"Fetching storage object: gs://{BUCKET}/{OBJECT}#{GENERATION}",
        "Operation completed over 2 objects.",
        "BUILD",
        "Starting Step #0",
        "Step #0: Step 1/2 : FROM base",
        "Step #0: Step 2/2 : COPY hello.txt /hello.txt",
        f"Step #0: Successfully built {digest[7:19]}",
        "Finished Step #0",
        "PUSH",
        f"Pushing {IMAGE}",
        f"v1: digest: {digest} size: 1002",
        "DONE",
    ]
    assert {
        (e["project"], e["log_id"], e["resource_type"], tuple(sorted(e["labels"].items()))) for e in world.logs.entries
    } == {(PROJECT, "cloudbuild", "build", (("build_id", build.id), ("project_id", PROJECT)))}


def test_a_failing_step_fails_the_build_and_its_operation_as_on_google(world: BuildWorld) -> None:
    world.create_repository()
    second = cb.BuildStep(name=DOCKER, args=["build", "-t", IMAGE, "."])
    build = _failed(_submit(world, {"Dockerfile": "FROM base\nRUN fail\n"}, steps=[_step(), second]))
    detail = (
        'Build step failure: build step 0 "gcr.io/cloud-builders/docker" failed: step exited with non-zero status: 1'
    )
    assert build.status == Status.FAILURE
    assert build.status_detail == detail
    assert (build.failure_info.type_, build.failure_info.detail) == (FailureType.USER_BUILD_STEP, detail)
    assert [(s.status, s.exit_code) for s in build.steps] == [(Status.FAILURE, 1), (Status.QUEUED, 0)]
    assert world.client.get_build(project_id=PROJECT, id=build.id) == build
    assert world.logs.lines(build.id)[-5:] == [
        "Step #0: Step 2/2 : RUN fail",
        "Step #0:  ---> Running in 0123456789ab",
        "Step #0: The command '/bin/sh -c fail' returned a non-zero code: 127",
        "ERROR",
        f"ERROR: {detail}",
    ]
    assert list(world.registry_client.list_docker_images(parent=REPOSITORY)) == []


def _step(*args: str, **fields: Any) -> cb.BuildStep:
    return cb.BuildStep(name=DOCKER, args=list(args) or _submit_args(), **fields)


def test_an_image_whose_repository_does_not_exist_fails_the_push_as_docker_does(world: BuildWorld) -> None:
    build = _failed(_submit(world))
    assert build.status_detail == f'error pushing image "{IMAGE}": name unknown: Repository "apps" not found'
    assert build.failure_info.type_ == FailureType.PUSH_FAILED
    assert build.steps[0].status == Status.SUCCESS
    assert world.logs.lines(build.id)[-4:] == [
        f"Pushing {IMAGE}",
        'name unknown: Repository "apps" not found',
        "ERROR",
        f"ERROR: {build.status_detail}",
    ]


def test_an_image_outside_artifact_registry_cannot_be_pushed(world: BuildWorld) -> None:
    build = _failed(_submit(world, steps=[_step("build", "-t", "gcr.io/p/web", ".")], images=["gcr.io/p/web"]))
    assert build.status_detail == (
        'error pushing image "gcr.io/p/web": '
        "the emulator pushes only to Artifact Registry (LOCATION-docker.pkg.dev/PROJECT/REPO/IMAGE)"
    )


def test_an_image_no_step_built_is_not_found_for_the_push(world: BuildWorld) -> None:
    world.create_repository()
    other = f"us-central1-docker.pkg.dev/{PROJECT}/apps/api:v1"
    build = _failed(_submit(world, images=[IMAGE, other]))
    assert build.status_detail == f'failed to find one or more images after execution of build steps: ["{other}"]'
    assert build.failure_info.type_ == FailureType.PUSH_IMAGE_NOT_FOUND
    assert list(world.registry_client.list_docker_images(parent=REPOSITORY)) == []


def test_a_step_that_is_not_a_docker_build_fails_the_build_saying_so(world: BuildWorld) -> None:
    build = _failed(_submit(world, steps=[cb.BuildStep(name="ubuntu", args=["echo", "hi"])], images=[]))
    assert build.status_detail == (
        "the emulator runs only docker build steps (gcr.io/cloud-builders/docker with args build ...); "
        'step 0 ("ubuntu") is not one'
    )
    assert build.steps[0].status == Status.FAILURE
    assert world.engine.calls == []


def test_a_docker_step_other_than_build_fails_the_build_saying_so(world: BuildWorld) -> None:
    build = _failed(_submit(world, steps=[_step("push", IMAGE)], images=[]))
    assert build.status_detail == (
        f'the emulator runs only docker build steps; step 0 ("gcr.io/cloud-builders/docker") runs `docker push {IMAGE}`'
    )


@pytest.mark.parametrize(
    ("member", "reason"),
    [
        (tarfile.TarInfo("../evil.txt"), 'member "../evil.txt" would be extracted outside the workspace'),
        (tarfile.TarInfo("/etc/evil.txt"), 'member "/etc/evil.txt" would be extracted outside the workspace'),
    ],
)
def test_a_source_with_a_member_outside_the_workspace_is_refused(
    world: BuildWorld, member: tarfile.TarInfo, reason: str
) -> None:
    member.size = 1
    build = _failed(_submit(world, extra=[member]))
    assert build.status_detail == f"failed to fetch source: the source archive {reason}"
    assert build.failure_info.type_ == FailureType.FETCH_SOURCE_FAILED
    assert world.engine.calls == []


def test_a_source_with_a_link_out_of_the_workspace_is_refused(world: BuildWorld) -> None:
    link = tarfile.TarInfo("passwd")
    link.type, link.linkname = tarfile.SYMTYPE, "../../etc/passwd"
    build = _failed(_submit(world, extra=[link]))
    assert build.status_detail == (
        'failed to fetch source: the source archive member "passwd" links to "../../etc/passwd", outside the workspace'
    )


def test_an_older_generation_of_the_source_is_refused_when_the_build_is_created(world: BuildWorld) -> None:
    source = world.upload(FILES)
    source.storage_source.generation = GENERATION - 1
    with pytest.raises(exceptions.InvalidArgument, match="could not resolve source: googleapi: Error 404"):
        _create(world, cb.Build(source=source, steps=[_step()]))


def test_a_source_object_that_does_not_exist_is_refused_when_the_build_is_created(world: BuildWorld) -> None:
    source = cb.Source(storage_source=cb.StorageSource(bucket=BUCKET, object_="source/missing.tgz"))
    with pytest.raises(exceptions.InvalidArgument) as raised:
        _create(world, cb.Build(source=source, steps=[_step()]))
    assert raised.value.message == (
        f"could not resolve source: googleapi: Error 404: No such object: {BUCKET}/source/missing.tgz, notFound"
    )


def test_without_a_docker_engine_a_build_fails_saying_why(engineless: BuildWorld) -> None:
    build = _failed(_submit(engineless))
    assert build.status_detail == NO_ENGINE
    assert "no Docker engine" in engineless.logs.lines(build.id)[-1]


def test_a_build_running_past_its_timeout_ends_as_timeout(world: BuildWorld) -> None:
    world.create_repository()
    operation = _submit(world, {"Dockerfile": "FROM base\nRUN wait\n"}, timeout=timedelta(milliseconds=200))
    with pytest.raises(exceptions.DeadlineExceeded, match="Build timed out"):
        operation.result(timeout=10)
    build = world.client.get_build(project_id=PROJECT, id=operation.metadata.build.id)
    assert (build.status, build.status_detail) == (Status.TIMEOUT, "the build ran longer than its timeout of 0.2s")
    assert build.steps[0].status == Status.TIMEOUT
    world.engine.release.set()  # the engine finishes its build; nothing is pushed any more
    assert list(world.registry_client.list_docker_images(parent=REPOSITORY)) == []


def test_a_step_running_past_its_own_timeout_fails_the_build(world: BuildWorld) -> None:
    step = _step(timeout=timedelta(milliseconds=200))
    build = _failed(_submit(world, {"Dockerfile": "FROM base\nRUN wait\n"}, steps=[step]))
    assert (
        build.status_detail == 'Build step failure: build step 0 "gcr.io/cloud-builders/docker" failed: step timed out'
    )
    assert build.steps[0].status == Status.TIMEOUT


def test_the_operation_metadata_follows_the_build_while_it_runs(world: BuildWorld) -> None:
    operation = _submit(world, {"Dockerfile": "FROM base\nRUN wait\n"}, images=[])
    _wait_for_step(world)
    assert not operation.done()
    running = operation.metadata.build
    assert (running.status, running.steps[0].status) == (Status.WORKING, Status.WORKING)
    world.engine.release.set()
    assert operation.result(timeout=10).status == Status.SUCCESS


def test_cancelling_a_running_build_ends_it_as_cancelled(world: BuildWorld) -> None:
    world.create_repository()
    operation = _submit(world, {"Dockerfile": "FROM base\nRUN wait\n"})
    _wait_for_step(world)
    build_id = operation.metadata.build.id
    cancelled = world.client.cancel_build(project_id=PROJECT, id=build_id)
    assert cancelled.status == Status.CANCELLED
    assert cancelled.steps[0].status == Status.CANCELLED
    with pytest.raises(exceptions.Cancelled, match="Build was cancelled"):
        operation.result(timeout=10)
    world.engine.release.set()
    assert world.client.get_build(project_id=PROJECT, id=build_id).status == Status.CANCELLED
    assert list(world.registry_client.list_docker_images(parent=REPOSITORY)) == []
    assert world.logs.lines(build_id)[-1] == "CANCELLED"


def test_cancelling_a_finished_build_leaves_it_as_it_ended(world: BuildWorld) -> None:
    build = _failed(_submit(world))
    assert world.client.cancel_build(project_id=PROJECT, id=build.id) == build


def test_a_build_is_found_by_project_and_id_or_by_name(world: BuildWorld) -> None:
    build = _failed(_submit(world))
    assert world.client.get_build(request={"name": build.name}) == build
    with pytest.raises(exceptions.NotFound, match=r'Build "nope" not found\.'):
        world.client.get_build(project_id=PROJECT, id="nope")


def test_a_regional_build_has_a_regional_name_log_url_and_operation(world: BuildWorld) -> None:
    build = cb.Build(source=world.upload(FILES), steps=[_step()])
    operation = _create(world, build, parent=f"projects/{PROJECT}/locations/europe-west1")
    result = operation.result(timeout=10)
    assert result.name == f"projects/{PROJECT}/locations/europe-west1/builds/{result.id}"
    assert operation.operation.name.startswith(f"projects/{PROJECT}/locations/europe-west1/operations/")
    assert result.log_url == (
        f"https://console.cloud.google.com/cloud-build/builds;region=europe-west1/{result.id}?project={PROJECT}"
    )
    with pytest.raises(exceptions.NotFound):
        world.client.get_build(project_id=PROJECT, id=result.id)  # global is another location


def test_builds_are_listed_newest_first_page_by_page(world: BuildWorld) -> None:
    ids = [_submit(world, images=[]).result(timeout=10).id for _ in range(3)]
    first = world.client.list_builds(request={"project_id": PROJECT, "page_size": 2})
    assert [b.id for b in first.builds] == ids[:0:-1]
    assert [b.id for b in first] == ids[::-1]


def test_builds_can_be_listed_by_status(world: BuildWorld) -> None:
    succeeded = _submit(world, images=[]).result(timeout=10)
    failed = _failed(_submit(world))
    listed = world.client.list_builds(project_id=PROJECT, filter='status="FAILURE"')
    assert [b.id for b in listed] == [failed.id]
    either = world.client.list_builds(project_id=PROJECT, filter='status="SUCCESS" OR status="FAILURE"')
    assert [b.id for b in either] == [failed.id, succeeded.id]
    with pytest.raises(exceptions.InvalidArgument, match='Invalid filter term "color="red""'):
        list(world.client.list_builds(project_id=PROJECT, filter='color="red"'))


def test_dir_dockerfile_and_build_args_are_read_as_the_docker_cli_reads_them(world: BuildWorld) -> None:
    files = {"app/docker/Dockerfile.prod": "FROM base\nARG A\n", "app/main.py": "print()\n", "Dockerfile": "FROM x\n"}
    step = _step("build", "-f", "docker/Dockerfile.prod", "--build-arg", "A=1", "--build-arg=B", "-t", IMAGE, ".")
    step.dir_ = "app"
    step.env = ["B=2"]
    _submit(world, files, steps=[step], images=[]).result(timeout=10)
    [call] = world.engine.calls
    assert call.files == {
        "Dockerfile": "FROM base\nARG A\n",
        "docker/Dockerfile.prod": "FROM base\nARG A\n",
        "main.py": "print()\n",
    }
    assert call.build_args == {"A": "1", "B": "2"}


def test_substitutions_fill_step_args_and_images(world: BuildWorld) -> None:
    world.create_repository()
    image = "us-central1-docker.pkg.dev/$PROJECT_ID/apps/web:${_TAG}"
    build = _submit(world, steps=[_step("build", "-t", image, ".")], images=[image], substitutions={"_TAG": "v7"})
    result = build.result(timeout=10)
    assert world.engine.calls[0].tags == [f"us-central1-docker.pkg.dev/{PROJECT}/apps/web:v7"]
    assert result.results.images[0].name == f"us-central1-docker.pkg.dev/{PROJECT}/apps/web:v7"


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (cb.Build(), "invalid build: a build must have at least one step"),
        (cb.Build(steps=[cb.BuildStep(args=["build"])]), "invalid build: build step 0 must specify a name"),
        (
            cb.Build(steps=[_step()], source=cb.Source(repo_source=cb.RepoSource(repo_name="r"))),
            "the emulator builds only from a Cloud Storage source (source.storageSource)",
        ),
    ],
)
def test_an_invalid_build_is_refused_when_created(world: BuildWorld, build: cb.Build, message: str) -> None:
    with pytest.raises(exceptions.InvalidArgument) as raised:
        _create(world, build)
    assert raised.value.message == message


def test_builds_survive_a_restart_and_one_cut_short_ends_as_an_internal_error(world: BuildWorld) -> None:
    finished = _failed(_submit(world))
    running = _submit(world, {"Dockerfile": "FROM base\nRUN wait\n"})
    _wait_for_step(world)
    restarted = CloudBuild(
        persist=lambda: None,
        buckets=FakeBuckets(),
        registry=world.registry,
        logs=FakeLogs(),
        operations=Operations(world.faults),
        engine=None,
    )
    restarted.restore(world.builds.snapshot())
    assert restarted.get_build(finished.name, "", "") == finished
    cut_short = restarted.get_build("", PROJECT, running.metadata.build.id)
    assert (cut_short.status, cut_short.status_detail) == (
        Status.INTERNAL_ERROR,
        "the emulator stopped while the build was running",
    )


def test_every_change_of_a_build_is_persisted(world: BuildWorld) -> None:
    world.create_repository()
    before = len(world.saves)
    _submit(world).result(timeout=10)
    # Created, started, source fetched, step working, step done, build timed, pushed, finished.
    assert len(world.saves) - before == 8


ACCOUNT = f"projects/{PROJECT}/serviceAccounts/builder@{PROJECT}-1.iam.gserviceaccount.com"
Logging = cb.BuildOptions.LoggingMode


@pytest.mark.parametrize(
    "options",
    [cb.BuildOptions(), cb.BuildOptions(logging=Logging.LEGACY), cb.BuildOptions(logging=Logging.GCS_ONLY)],
)
def test_a_build_naming_its_account_but_no_place_for_its_logs_is_refused_as_google_refuses_it(
    world: BuildWorld, options: cb.BuildOptions
) -> None:
    with pytest.raises(exceptions.InvalidArgument) as raised:
        _submit(world, service_account=ACCOUNT, options=options)
    assert raised.value.message == (
        "if 'build.service_account' is specified, the build must either (a) specify 'build.logs_bucket', (b) use the "
        "REGIONAL_USER_OWNED_BUCKET build.options.default_logs_bucket_behavior option, or (c) use either "
        "CLOUD_LOGGING_ONLY / NONE logging options"
    )
    assert list(world.client.list_builds(project_id=PROJECT)) == []
    assert world.engine.calls == []


@pytest.mark.parametrize(
    "where",
    [
        {"options": cb.BuildOptions(logging=Logging.CLOUD_LOGGING_ONLY)},
        {"options": cb.BuildOptions(logging=Logging.STACKDRIVER_ONLY)},
        {"options": cb.BuildOptions(logging=Logging.NONE)},
        {"logs_bucket": "gs://my-build-logs"},
        {
            "options": cb.BuildOptions(
                default_logs_bucket_behavior=cb.BuildOptions.DefaultLogsBucketBehavior.REGIONAL_USER_OWNED_BUCKET
            )
        },
    ],
)
def test_a_build_naming_its_account_and_a_place_for_its_logs_runs_and_reports_that_account(
    world: BuildWorld, where: dict[str, Any]
) -> None:
    world.create_repository()
    operation = _submit(world, service_account=ACCOUNT, **where)
    assert operation.result(timeout=10).status == Status.SUCCESS
    read = world.client.get_build(project_id=PROJECT, id=operation.metadata.build.id)
    assert read.service_account == ACCOUNT


@pytest.mark.parametrize(
    "account",
    [
        f"builder@{PROJECT}-1.iam.gserviceaccount.com",
        f"projects/{PROJECT}/builder@{PROJECT}-1.iam.gserviceaccount.com",
        f"projects//serviceAccounts/builder@{PROJECT}-1.iam.gserviceaccount.com",
    ],
)
def test_a_build_account_that_is_not_a_resource_name_is_refused(world: BuildWorld, account: str) -> None:
    with pytest.raises(exceptions.InvalidArgument) as raised:
        _submit(world, service_account=account, options=cb.BuildOptions(logging=Logging.CLOUD_LOGGING_ONLY))
    assert raised.value.message == (
        f'invalid build: service_account "{account}" must be of the format '
        "projects/{PROJECT_ID}/serviceAccounts/{ACCOUNT}, ACCOUNT being the account's email or unique id"
    )
    assert list(world.client.list_builds(project_id=PROJECT)) == []


def test_a_build_naming_no_account_runs_as_the_compute_engine_default_account_with_no_logging_choice(
    world: BuildWorld,
) -> None:
    world.create_repository()
    operation = _submit(world)
    assert operation.result(timeout=10).status == Status.SUCCESS
    read = world.client.get_build(project_id=PROJECT, id=operation.metadata.build.id)
    assert read.service_account == (
        f"projects/{PROJECT}/serviceAccounts/{project_number(PROJECT)}-compute@developer.gserviceaccount.com"
    )
    assert read.options.logging == Logging.LOGGING_UNSPECIFIED
