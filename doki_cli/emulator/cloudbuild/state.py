"""Cloud Build state: builds, run on the local Docker engine from a source tarball in the emulator's Cloud Storage.

A build goes QUEUED -> WORKING -> SUCCESS / FAILURE / INTERNAL_ERROR / TIMEOUT / CANCELLED. It runs on the thread of
its long-running operation, whose metadata (BuildOperationMetadata) follows every change, as on Google. Its steps
run one after the other (the order Cloud Build uses when no step sets wait_for); each docker build runs on a helper
thread so the build can end on its timeout or a cancel while the engine is still busy. Images listed in `images`
are then "pushed": each must have been built by a step, and its Artifact Registry repository must exist, else the
build fails as Docker's push would. Every log line goes to Cloud Logging under the build's resource.
"""

from __future__ import annotations

import base64
import logging
import shutil
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
from google.cloud.devtools import cloudbuild_v1 as cb
from google.longrunning import operations_pb2

from doki_cli.emulator import protojson
from doki_cli.emulator.artifactregistry.state import ImageRef, Registry
from doki_cli.emulator.cloudbuild.source import UnsafeSource, extract
from doki_cli.emulator.cloudbuild.steps import StepError, parse_docker_build, substitute, with_tag
from doki_cli.emulator.cloudlogging.state import LogStore
from doki_cli.emulator.errors import ApiError, invalid_argument, not_found, permission_denied
from doki_cli.emulator.iamadmin.state import ServiceAccounts
from doki_cli.emulator.operations.state import Operations
from doki_cli.emulator.paging import Paging
from doki_cli.emulator.projects import compute_default_account
from doki_cli.emulator.storage.state import Buckets

if TYPE_CHECKING:
    from doki_cli.emulator.engine import ContainerEngine, Image

log = logging.getLogger("doki.emulator")
T = TypeVar("T")
Status = cb.Build.Status
FailureType = cb.Build.FailureInfo.FailureType
# mypy types proto-plus enum members as plain ints; calling the enum gives each member its type, once, here.
QUEUED = Status(Status.QUEUED)
WORKING = Status(Status.WORKING)
SUCCESS = Status(Status.SUCCESS)
FAILURE = Status(Status.FAILURE)
INTERNAL_ERROR = Status(Status.INTERNAL_ERROR)
TIMEOUT = Status(Status.TIMEOUT)
CANCELLED = Status(Status.CANCELLED)
TERMINAL = (SUCCESS, FAILURE, INTERNAL_ERROR, TIMEOUT, CANCELLED, Status(Status.EXPIRED))
USER_BUILD_STEP = FailureType(FailureType.USER_BUILD_STEP)
FETCH_SOURCE_FAILED = FailureType(FailureType.FETCH_SOURCE_FAILED)
PUSH_FAILED = FailureType(FailureType.PUSH_FAILED)
PUSH_IMAGE_NOT_FOUND = FailureType(FailureType.PUSH_IMAGE_NOT_FOUND)

DEFAULT_TIMEOUT = timedelta(minutes=10)  # Cloud Build's default
LOG_ID = "cloudbuild"
RESOURCE_TYPE = "build"
PAGING = Paging(default_size=50, max_size=1000, bad_size="page_size must not be negative, got {size}")
# How often a waiting build looks at its cancel flag while the engine builds.
POLL_SECONDS = 0.05
# What operation.result() raises for a build that did not succeed: Google ends the operation with these errors
# (FAILURE's is the one every client sees: Unknown "Build failed; check build logs for details").
OPERATION_ERRORS = {
    FAILURE: (grpc.StatusCode.UNKNOWN, "Build failed; check build logs for details"),
    INTERNAL_ERROR: (grpc.StatusCode.INTERNAL, "Build failed with an internal error; check build logs for details"),
    TIMEOUT: (grpc.StatusCode.DEADLINE_EXCEEDED, "Build timed out"),
    CANCELLED: (grpc.StatusCode.CANCELLED, "Build was cancelled"),
}
NO_ENGINE = (
    "the emulator has no Docker engine, so it cannot run build steps; "
    "restart `doki emulator` where a Docker engine is reachable (and without --no-docker)"
)
BUILD_FILTER_FIELDS = ("status", "id", "images", "tags")
Logging = cb.BuildOptions.LoggingMode
# Where a build that names its account may keep its logs: Cloud Logging only, or nowhere. STACKDRIVER_ONLY is the
# same as CLOUD_LOGGING_ONLY (the LoggingMode enum's comment in google/devtools/cloudbuild/v1/cloudbuild.proto).
LOGS_WITHOUT_DEFAULT_BUCKET = (Logging.CLOUD_LOGGING_ONLY, Logging.STACKDRIVER_ONLY, Logging.NONE)
# Google's refusal of a build that names its account but would keep its logs in the default logs bucket, which
# Cloud Build writes as its own account (https://cloud.google.com/build/docs/securing-builds/configure-user-specified-service-accounts,
# "Setting up build logs"); the wording as users meet it, e.g. https://github.com/in28minutes/course-material/pull/11
# and https://github.com/cert-manager/cert-manager/pull/8851.
LOGS_NEED_A_CHOICE = (
    "if 'build.service_account' is specified, the build must either (a) specify 'build.logs_bucket', (b) use the "
    "REGIONAL_USER_OWNED_BUCKET build.options.default_logs_bucket_behavior option, or (c) use either "
    "CLOUD_LOGGING_ONLY / NONE logging options"
)


def _now() -> datetime:
    return datetime.now(UTC)


def _copy(message: T) -> T:
    result: T = protojson.copy(message)
    return result


@dataclass
class _Run:
    """What a running build needs beyond its stored message: its source, how to publish, and its cancel flag."""

    source: bytes | None
    publish: Callable[[cb.Build], None] = lambda build: None
    cancelled: threading.Event = field(default_factory=threading.Event)
    # Set once the build has ended: output the engine still streams for it afterwards is dropped.
    ended: threading.Event = field(default_factory=threading.Event)


class _Stopped(Exception):
    """The build ended (cancelled or timed out) while a step was running."""


@dataclass
class _Outcome:
    """How a build ends: its status, status_detail and, for a failure, what kind of failure it was."""

    status: cb.Build.Status
    detail: str
    failure_type: cb.Build.FailureInfo.FailureType | None = None


class CloudBuild:
    """Builds by resource name (projects/P/locations/L/builds/ID)."""

    def __init__(
        self,
        *,
        persist: Callable[[], None],
        buckets: Buckets,
        registry: Registry,
        logs: LogStore,
        operations: Operations,
        engine: ContainerEngine | None,
        push: Callable[[str], str] | None = None,
        accounts: ServiceAccounts | None = None,
    ) -> None:
        """`push(image)` sends the built local image to the emulator's registry and returns its manifest digest
        (the registry records it in Artifact Registry); without it, an image is recorded under its local id. With
        `accounts`, a build may name only an account that exists."""
        self._persist = persist
        self._accounts = accounts
        self._push_image = push
        self._buckets = buckets
        self._registry = registry
        self._logs = logs
        self._operations = operations
        self._engine = engine
        self._lock = threading.Lock()
        self._builds: dict[str, cb.Build] = {}
        self._runs: dict[str, _Run] = {}

    # Requests

    def create_build(self, parent: str, project_id: str, build: cb.Build) -> operations_pb2.Operation:
        """Queue `build` and start it; the operation's metadata carries the build as it progresses."""
        project, location = _where(parent, project_id)
        _validate(build)
        self._check_service_account(build)
        source = self._fetch_source(build)
        stored = _copy(build)
        if not stored.service_account:
            # Projects that enabled Cloud Build since the 2024 change build as the Compute Engine default account
            # when the build names none, and the build says so
            # (https://cloud.google.com/build/docs/cloud-build-service-account-updates); the emulator's projects are
            # all new ones.
            stored.service_account = f"projects/{project}/serviceAccounts/{compute_default_account(project)}"
        stored.id = str(uuid.uuid4())
        stored.name = f"projects/{project}/locations/{location}/builds/{stored.id}"
        stored.project_id = project
        stored.status = QUEUED
        for step in stored.steps:
            step.status = QUEUED
        stored.create_time = _now()
        if not stored.timeout:
            stored.timeout = DEFAULT_TIMEOUT
        region = "" if location == "global" else f";region={location}"
        stored.log_url = f"https://console.cloud.google.com/cloud-build/builds{region}/{stored.id}?project={project}"
        if source is not None:
            stored.source_provenance.resolved_storage_source = stored.source.storage_source
        run = _Run(source)
        with self._lock:
            self._builds[stored.name] = stored
            self._runs[stored.name] = run
            queued = _copy(stored)
        self._persist()
        if location == "global":
            encoded = base64.b64encode(stored.id.encode()).decode()
            operation = f"operations/build/{project}/{encoded}"
        else:
            operation = f"projects/{project}/locations/{location}/operations/{uuid.uuid4()}"

        def work(set_metadata: Callable[[Any], None]) -> cb.Build:
            run.publish = lambda current: set_metadata(cb.BuildOperationMetadata(build=current))
            return self._execute(stored.name, run)

        return self._operations.start(operation, cb.BuildOperationMetadata(build=queued), work)

    def get_build(self, name: str, project_id: str, build_id: str) -> cb.Build:
        key = name or f"projects/{project_id}/locations/global/builds/{build_id}"
        with self._lock:
            build = self._builds.get(key)
            if build is None:
                raise not_found(f'Build "{key.rsplit("/", 1)[-1]}" not found.')
            return _copy(build)

    def list_builds(
        self, parent: str, project_id: str, page_size: int, page_token: str, filter_: str
    ) -> tuple[list[cb.Build], str]:
        """Builds of one project and location, newest first."""
        project, location = _where(parent, project_id)
        prefix = f"projects/{project}/locations/{location}/builds/"
        keep = _build_filter(filter_)
        with self._lock:
            builds = [b for name, b in self._builds.items() if name.startswith(prefix) and keep(b)]
            chosen, token = PAGING.page(
                builds,
                # Fixed-width creation time first, so the string order is the time order; the id breaks ties.
                lambda b: f"{b.create_time.timestamp():020.6f}|{b.id}",
                page_size,
                page_token,
                descending=True,
            )
            return [_copy(b) for b in chosen], token

    def cancel_build(self, name: str, project_id: str, build_id: str) -> cb.Build:
        """Cancel a queued or running build; a finished build is answered unchanged."""
        key = name or f"projects/{project_id}/locations/global/builds/{build_id}"
        self.get_build(key, "", "")
        changed = self._finish(key, _Outcome(CANCELLED, "Build was cancelled by the user."))
        with self._lock:
            run = self._runs.get(key)
        if run is not None:
            run.cancelled.set()
        if changed:
            self._emit(key, "CANCELLED")
        return self.get_build(key, "", "")

    # Running

    def _execute(self, name: str, run: _Run) -> cb.Build:
        """Run the build to its end; its final message, or the error Google ends a failed build's operation with."""
        started = _now()

        def start(build: cb.Build) -> None:
            build.status = WORKING
            build.start_time = started

        self._update(name, start)
        build = self.get_build(name, "", "")
        deadline = time.monotonic() + build.timeout.total_seconds()
        outcome: _Outcome | None
        try:
            self._emit(name, f'starting build "{build.id}"')
            outcome = self._run(name, build, run, deadline)
        except _Stopped:
            outcome = None  # already ended by the cancel or the timeout
        except Exception as exc:  # an emulator bug ends the build as Google's own failures do, never hangs it
            log.error("build %s failed:\n%s", name, traceback.format_exc())
            outcome = _Outcome(INTERNAL_ERROR, f"the emulator failed running the build: {exc}")
        if outcome is not None and self._finish(name, outcome):
            self._emit(name, "DONE" if outcome.status == SUCCESS else "ERROR")
            if outcome.status != SUCCESS:
                self._emit(name, f"ERROR: {outcome.detail}")
        with self._lock:
            self._runs.pop(name, None)
            final = _copy(self._builds[name])
        if final.status == SUCCESS:
            return final
        code, message = OPERATION_ERRORS.get(final.status, (grpc.StatusCode.UNKNOWN, final.status_detail))
        raise ApiError(code, message)

    def _run(self, name: str, build: cb.Build, run: _Run, deadline: float) -> _Outcome:
        if self._engine is None:
            return _Outcome(FAILURE, NO_ENGINE)
        values = {"PROJECT_ID": build.project_id, "BUILD_ID": build.id, "LOCATION": build.name.split("/")[3]}
        values.update(build.substitutions)
        env = _env(build.options.env, values)
        with tempfile.TemporaryDirectory(prefix="doki-build-") as scratch:
            workspace = Path(scratch) / "workspace"
            workspace.mkdir()
            if run.ended.is_set():  # cancelled while queued
                raise _Stopped
            if run.source is not None:
                failure = self._fetch(name, build, run.source, workspace)
                if failure is not None:
                    return failure
            self._emit(name, "BUILD")
            started = _now()
            produced: dict[str, Image] = {}
            for index, step in enumerate(build.steps):
                if run.ended.is_set():
                    raise _Stopped
                failure = self._step(name, index, step, values, env, workspace, produced, run, deadline)
                if failure is not None:
                    return failure
            self._record_timing(name, "BUILD", started)
            images = [substitute(image, values) for image in build.images]
            return self._push(name, images, produced, self._engine.failure)

    def _fetch(self, name: str, build: cb.Build, source: bytes, workspace: Path) -> _Outcome | None:
        storage = build.source.storage_source
        started = _now()
        self._emit(name, "FETCHSOURCE")
        generation = f"#{storage.generation}" if storage.generation else ""
        self._emit(name, f"Fetching storage object: gs://{storage.bucket}/{storage.object_}{generation}")
        try:
            count = extract(source, workspace)
        except UnsafeSource as exc:
            return _Outcome(FAILURE, f"failed to fetch source: {exc}", FETCH_SOURCE_FAILED)
        self._emit(name, f"Operation completed over {count} objects.")
        self._record_timing(name, "FETCHSOURCE", started)
        return None

    def _step(
        self,
        name: str,
        index: int,
        step: cb.BuildStep,
        values: dict[str, str],
        build_env: dict[str, str],
        workspace: Path,
        produced: dict[str, Image],
        run: _Run,
        deadline: float,
    ) -> _Outcome | None:
        """Run step `index`; None when it succeeded, else how the build ends."""
        assert self._engine is not None  # checked before the first step
        engine = self._engine
        prefix = f'Step #{index} - "{step.id}"' if step.id else f"Step #{index}"
        started = _now()

        def mark(status: cb.Build.Status, exit_code: int | None = None) -> None:
            def change(build: cb.Build) -> None:
                target = build.steps[index]
                target.status = status
                target.timing = cb.TimeSpan(start_time=started, end_time=None if status == WORKING else _now())
                if exit_code is not None:
                    target.exit_code = exit_code

            self._update(name, change)

        mark(WORKING)
        self._emit(name, f"Starting {prefix}")
        resolved = _copy(step)
        resolved.args = [substitute(arg, values) for arg in step.args]
        env = {**build_env, **_env(step.env, values)}
        step_deadline = deadline
        if step.timeout:
            step_deadline = min(deadline, time.monotonic() + step.timeout.total_seconds())
        try:
            spec = parse_docker_build(index, resolved, env)
            root = workspace.resolve()
            directory = _inside(root, root, substitute(step.dir_, values))
            # As the docker CLI does, the context and -f are relative to the step's working directory.
            context = _inside(root, directory, spec.context)
            if spec.dockerfile is not None:
                context = _with_dockerfile(context, _inside(root, directory, spec.dockerfile), workspace.parent)
        except StepError as exc:
            mark(FAILURE)
            return _Outcome(FAILURE, str(exc), USER_BUILD_STEP)

        def on_line(line: str) -> None:
            if line.strip() and not run.ended.is_set():
                self._emit(name, f"{prefix}: {line}")

        def build_image() -> Image:
            return engine.build(context, spec.tags, build_args=spec.build_args, no_cache=spec.no_cache, on_line=on_line)

        try:
            built = self._wait(build_image, run, step_deadline)
        except engine.failure as exc:
            # The engine has streamed the step's output already; the engine's error is its last line.
            lines = str(exc).strip().splitlines()
            if lines:
                on_line(lines[-1])
            mark(FAILURE, exit_code=1)
            return _Outcome(
                FAILURE,
                f'Build step failure: build step {index} "{step.name}" failed: step exited with non-zero status: 1',
                USER_BUILD_STEP,
            )
        except TimeoutError:
            mark(TIMEOUT)
            if time.monotonic() < deadline:
                return _Outcome(
                    FAILURE,
                    f'Build step failure: build step {index} "{step.name}" failed: step timed out',
                    USER_BUILD_STEP,
                )
            seconds = f"{self.get_build(name, '', '').timeout.total_seconds():g}"
            if self._finish(name, _Outcome(TIMEOUT, f"the build ran longer than its timeout of {seconds}s")):
                self._emit(name, "TIMEOUT")
                self._emit(name, f"ERROR: the build ran longer than its timeout of {seconds}s")
            raise _Stopped from None
        for tag in spec.tags:
            produced[tag] = built
        mark(SUCCESS, exit_code=0)
        self._emit(name, f"Finished {prefix}")
        return None

    def _wait(self, work: Callable[[], Image], run: _Run, deadline: float) -> Image:
        """`work()` on a helper thread: its result, its exception, _Stopped on cancel, TimeoutError at `deadline`."""
        done = threading.Event()
        box: dict[str, Any] = {}

        def target() -> None:
            try:
                box["result"] = work()
            except BaseException as exc:  # re-raised on the build's own thread below
                box["error"] = exc
            finally:
                done.set()

        # The engine cannot be interrupted mid-build: on a cancel or timeout this thread is left to finish alone.
        threading.Thread(target=target, name="doki-build-step", daemon=True).start()
        while not done.wait(POLL_SECONDS):
            if run.cancelled.is_set():
                raise _Stopped
            if time.monotonic() >= deadline:
                raise TimeoutError
        if run.cancelled.is_set():
            raise _Stopped
        if "error" in box:
            raise box["error"]
        result: Image = box["result"]
        return result

    def _push(self, name: str, images: list[str], produced: dict[str, Image], failure: type[Exception]) -> _Outcome:
        """Push the built `images` to the registry; a push the engine fails raises its `failure`."""
        if not images:
            return _Outcome(SUCCESS, "")
        started = _now()
        self._emit(name, "PUSH")
        missing = [image for image in images if with_tag(image) not in produced]
        if missing:
            listed = ", ".join(f'"{image}"' for image in missing)
            return _Outcome(
                FAILURE,
                f"failed to find one or more images after execution of build steps: [{listed}]",
                PUSH_IMAGE_NOT_FOUND,
            )
        # Every push is checked before any is recorded: a build either pushes all its images or none.
        for image in images:
            self._emit(name, f"Pushing {image}")
            ref = ImageRef.parse(image)
            if ref is None:
                reason = "the emulator pushes only to Artifact Registry (LOCATION-docker.pkg.dev/PROJECT/REPO/IMAGE)"
            elif self._registry.repository_for(image) is None:
                reason = f'name unknown: Repository "{ref.repository}" not found'
            else:
                continue
            self._emit(name, reason)
            return _Outcome(FAILURE, f'error pushing image "{image}": {reason}', PUSH_FAILED)
        results = cb.Results(build_step_images=[""] * len(self.get_build(name, "", "").steps))
        for image in images:
            built = produced[with_tag(image)]
            pushed = _now()
            if self._push_image is not None:
                # A real push, as Cloud Build's: the digest is the manifest's, the one a pull by digest finds.
                try:
                    digest = self._push_image(with_tag(image))
                except failure as err:
                    self._emit(name, str(err))
                    return _Outcome(FAILURE, f'error pushing image "{image}": {err}', PUSH_FAILED)
            else:
                digest = built.id
                self._registry.record_image(image, built.id, built.size)
            tag = with_tag(image).rsplit(":", 1)[1]
            self._emit(name, f"{tag}: digest: {digest} size: {built.size}")
            results.images.append(
                cb.BuiltImage(name=image, digest=digest, push_timing=cb.TimeSpan(start_time=pushed, end_time=_now()))
            )

        def record(build: cb.Build) -> None:
            build.results = results
            build.timing["PUSH"] = cb.TimeSpan(start_time=started, end_time=_now())

        self._update(name, record)
        return _Outcome(SUCCESS, "")

    # Stored builds

    def _record_timing(self, name: str, phase: str, started: datetime) -> None:
        def record(build: cb.Build) -> None:
            build.timing[phase] = cb.TimeSpan(start_time=started, end_time=_now())

        self._update(name, record)

    def _update(self, name: str, change: Callable[[cb.Build], object]) -> None:
        """Apply `change` to a build that has not ended yet, then publish and persist it."""
        with self._lock:
            build = self._builds[name]
            if build.status in TERMINAL:
                return
            change(build)
            self._publish(name, build)
        self._persist()

    def _finish(self, name: str, outcome: _Outcome) -> bool:
        """End the build with `outcome` unless it has ended already; whether it did."""
        with self._lock:
            build = self._builds[name]
            if build.status in TERMINAL:
                return False
            build.status = outcome.status
            build.status_detail = outcome.detail
            build.finish_time = _now()
            if outcome.failure_type is not None:
                build.failure_info = cb.Build.FailureInfo(type_=outcome.failure_type, detail=outcome.detail)
            for step in build.steps:
                if step.status == WORKING:
                    step.status = outcome.status
                    step.timing.end_time = build.finish_time
            self._publish(name, build)
            run = self._runs.get(name)
            if run is not None:
                run.ended.set()
        self._persist()
        return True

    def _publish(self, name: str, build: cb.Build) -> None:
        # Called under the lock, so the operation's metadata changes in the order the build did.
        run = self._runs.get(name)
        if run is not None:
            run.publish(_copy(build))

    def _emit(self, name: str, line: str) -> None:
        project, build_id = name.split("/")[1], name.rsplit("/", 1)[1]
        self._logs.emit(
            project=project,
            log_id=LOG_ID,
            resource_type=RESOURCE_TYPE,
            labels={"build_id": build_id, "project_id": project},
            line=line,
        )

    def _check_service_account(self, build: cb.Build) -> None:
        """Refuse the account `build` names, as Cloud Build does, before anything is stored. The one place a build's
        account is checked."""
        account = build.service_account
        if not account:
            return  # the project's default build account, filled in by create_build
        # "Must be of the format projects/{PROJECT_ID}/serviceAccounts/{ACCOUNT}. ACCOUNT can be email address or
        # uniqueId of the service account" (Build.service_account's comment in cloudbuild.proto); users report a bare
        # email refused (https://github.com/openconfig/featureprofiles/pull/2652, a trigger's build config;
        # https://github.com/kubernetes-sigs/resource-state-metrics/pull/83). Google's wording of that refusal is not
        # on record: this one is the emulator's.
        parts = account.split("/")
        if len(parts) != 4 or parts[0] != "projects" or parts[2] != "serviceAccounts" or not parts[1] or not parts[3]:
            raise invalid_argument(
                f'invalid build: service_account "{account}" must be of the format '
                "projects/{PROJECT_ID}/serviceAccounts/{ACCOUNT}, ACCOUNT being the account's email or unique id"
            )
        options = build.options
        if not (
            build.logs_bucket
            or options.logging in LOGS_WITHOUT_DEFAULT_BUCKET
            or options.default_logs_bucket_behavior
            == cb.BuildOptions.DefaultLogsBucketBehavior.REGIONAL_USER_OWNED_BUCKET
        ):
            raise invalid_argument(LOGS_NEED_A_CHOICE)
        if self._accounts is not None and "@" in parts[3]:
            # The submitter must be allowed to act as the account, and IAM cannot tell a caller who may not from an
            # account that does not exist (Cloud Run's answer says "or it may not exist"): Cloud Build's refusal,
            # PERMISSION_DENIED "caller does not have permission to act as service account …", as users meet it
            # (kohei321dev/spot-diggz#164). The emulator has no callers, so only an account that does not exist is
            # refused; an account named by unique id is not looked up.
            self._accounts.require(
                parts[3],
                lambda _: permission_denied(f"caller does not have permission to act as service account {account}"),
            )

    def _fetch_source(self, build: cb.Build) -> bytes | None:
        if "source" not in build or "storage_source" not in build.source:
            return None
        storage = build.source.storage_source
        try:
            # Read now, not when the build starts: the build runs on the source as it was when submitted.
            return self._buckets.read_object(storage.bucket, storage.object_, storage.generation or None)[1]
        except ApiError as err:
            if err.code != grpc.StatusCode.NOT_FOUND:
                raise
            raise invalid_argument(
                f"could not resolve source: googleapi: Error 404: No such object: "
                f"{storage.bucket}/{storage.object_}, notFound"
            ) from None

    # Persistence

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"builds": [protojson.to_dict(build) for build in self._builds.values()]}

    def restore(self, data: dict[str, Any]) -> None:
        builds = [protojson.from_dict(cb.Build, item) for item in data.get("builds", [])]
        for build in builds:
            if build.status not in TERMINAL:
                # Its run died with the previous emulator process; nothing will ever finish it.
                build.status = INTERNAL_ERROR
                build.status_detail = "the emulator stopped while the build was running"
                build.finish_time = _now()
        with self._lock:
            self._builds = {build.name: build for build in builds}


def _where(parent: str, project_id: str) -> tuple[str, str]:
    """(project, location) from a parent "projects/P/locations/L" and/or a project id (location "global")."""
    if parent:
        parts = parent.split("/")
        if len(parts) != 4 or parts[0] != "projects" or parts[2] != "locations" or not parts[1] or not parts[3]:
            raise invalid_argument(f'Invalid parent "{parent}": expected "projects/PROJECT/locations/LOCATION".')
        if project_id and project_id != parts[1]:
            raise invalid_argument(f'project_id "{project_id}" does not match the parent "{parent}".')
        return parts[1], parts[3]
    if not project_id:
        raise invalid_argument("project_id is required.")
    return project_id, "global"


def _validate(build: cb.Build) -> None:
    if not build.steps:
        raise invalid_argument("invalid build: a build must have at least one step")
    for index, step in enumerate(build.steps):
        if not step.name:
            raise invalid_argument(f"invalid build: build step {index} must specify a name")
    if build.timeout and build.timeout.total_seconds() <= 0:
        raise invalid_argument("invalid build: timeout must be positive")
    if "source" in build and "storage_source" not in build.source:
        raise invalid_argument("the emulator builds only from a Cloud Storage source (source.storageSource)")
    for image in build.images:
        if not image:
            raise invalid_argument("invalid build: images must not be empty")


def _env(items: Sequence[str], values: dict[str, str]) -> dict[str, str]:
    """KEY=VALUE strings as a mapping, substitutions applied."""
    pairs = (substitute(item, values).partition("=") for item in items)
    return {key: value for key, _, value in pairs}


def _inside(workspace: Path, base: Path, relative: str) -> Path:
    """`relative` to `base`, refused unless it stays inside the workspace (steps see nothing else)."""
    resolved = (base / relative).resolve()
    if not resolved.is_relative_to(workspace):
        raise StepError(f'the path "{relative}" leads outside the workspace')
    return resolved


def _with_dockerfile(context: Path, dockerfile: Path, scratch: Path) -> Path:
    """A copy of `context` with `dockerfile` as its Dockerfile, since the engine builds the context's Dockerfile."""
    if dockerfile == context / "Dockerfile":
        return context
    if not dockerfile.is_file():
        raise StepError(f'the Dockerfile "{dockerfile.name}" does not exist')
    # Outside the workspace, so later steps never see the copy.
    copy = Path(tempfile.mkdtemp(prefix="context-", dir=scratch))
    shutil.copytree(context, copy, symlinks=True, dirs_exist_ok=True)
    shutil.copyfile(dockerfile, copy / "Dockerfile")
    return copy


def _build_filter(expression: str) -> Callable[[cb.Build], bool]:
    """The builds `expression` keeps: terms `field="value"` joined by all AND or all OR."""
    if not expression.strip():
        return lambda build: True
    words = expression.split()
    joiners = {word for word in words if word in ("AND", "OR")}
    if len(joiners) > 1:
        raise invalid_argument("the emulator filters builds with either AND or OR, not both")
    joiner = joiners.pop() if joiners else "AND"
    tests: list[Callable[[cb.Build], bool]] = []
    for term in expression.split(f" {joiner} "):
        key, sep, value = term.partition("=")
        key, value = key.strip(), value.strip().strip('"')
        if not sep or key not in BUILD_FILTER_FIELDS:
            raise invalid_argument(
                f'Invalid filter term "{term.strip()}": the emulator filters builds by '
                + ", ".join(BUILD_FILTER_FIELDS)
            )
        tests.append(_term(key, value))
    if joiner == "AND":
        return lambda build: all(test(build) for test in tests)
    return lambda build: any(test(build) for test in tests)


def _term(key: str, value: str) -> Callable[[cb.Build], bool]:
    if key == "status":
        return lambda build: Status(build.status).name == value
    if key == "id":
        return lambda build: build.id == value
    if key == "images":
        return lambda build: value in build.images
    return lambda build: value in build.tags
