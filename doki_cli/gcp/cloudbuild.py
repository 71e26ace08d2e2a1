"""Cloud Build and Cloud Storage for remote builds: the only module importing those clients.

A remote build is what `gcloud builds submit --tag` does, through the client libraries: the build context (with
.dockerignore applied) goes to gs://PROJECT_cloudbuild/source/, a build with one docker step builds and pushes
the image, its log lines are shown while it runs, and the image digest comes back. It runs as doki.toml's
`[build] service_account` when set, else as the project's default build account, which on projects made since 2024
is the Compute Engine default account (https://cloud.google.com/build/docs/cloud-build-service-account-updates).
"""

from __future__ import annotations

import time
import uuid
from collections import deque
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from doki_cli.config import account_project
from doki_cli.errors import Code, DokiError
from doki_cli.gcp.errors import call_google, google_error
from doki_cli.gcp.logs import Logs
from doki_cli.gcp.retry import Retrier, knowing_retries, no_library_retry
from doki_cli.waiting import HEARTBEAT_SECONDS

DOCKER_BUILDER = "gcr.io/cloud-builders/docker"
# How much of a failed build's log its error shows.
FAILED_LOG_LINES = 20
# The build is polled every second; its log every this many polls (Cloud Logging's read quota is 60 a minute).
LOG_POLL_EVERY = 5
# Build statuses that do not change any more.
FINISHED = frozenset({"SUCCESS", "FAILURE", "INTERNAL_ERROR", "TIMEOUT", "CANCELLED", "EXPIRED"})


def build_identity(account: str | None) -> str:
    """Who a remote build runs as, in words for the line that announces it."""
    if account:
        return f"as {account}"
    return "as the project's default build account (the Compute Engine default account on projects made since 2024)"


@dataclass(frozen=True)
class RemoteBuild:
    id: str
    images: dict[str, str]  # image -> digest
    log_url: str


class CloudBuild:
    def __init__(
        self,
        builds: Any,
        storage: Any,
        logs: Logs,
        project: str,
        region: str,
        retrier: Retrier,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._builds = builds
        self._storage = storage
        self._logs = logs
        self.project = project
        self.region = region
        self._retrier = retrier
        self._sleep = sleep

    def _call(self, fn: Callable[[], Any], *, action: str, resource: str, api: str, role: str) -> Any:
        return call_google(self._retrier, fn, action=action, resource=resource, api=api, role=role)

    def upload(self, context: bytes) -> tuple[str, str, int]:
        """Put the build context where Cloud Build reads it; (bucket, object, generation)."""
        from google.api_core import exceptions

        bucket_name = f"{self.project}_cloudbuild"
        try:
            bucket = self._retrier.call(lambda: self._storage.lookup_bucket(bucket_name))
            made = False
            if bucket is None:
                try:
                    bucket = self._retrier.call(lambda: self._storage.create_bucket(bucket_name))
                    made = True
                except exceptions.Conflict:
                    # Made meanwhile: by another build, or by a try of ours whose answer was lost (Google says
                    # "your previous request ... succeeded"), or by someone else entirely: checked below.
                    bucket = self._retrier.call(lambda: self._storage.get_bucket(bucket_name))
            if not made and not self._owns(bucket_name):
                # Bucket names are global: anyone may have made PROJECT_cloudbuild, and read what lands there.
                # gcloud refuses such a bucket for the same reason (command_lib/builds/submit_util.py, b/33046325).
                raise DokiError(
                    Code.BUILD_BUCKET_NOT_OURS,
                    f"gs://{bucket_name} exists but belongs to another project: doki will not upload your source to "
                    "a bucket someone else may read",
                    "build locally and push instead (doki build --push; doki release --local)",
                )
            blob = bucket.blob(f"source/{time.time():.6f}-{uuid.uuid4().hex}.tgz")
            self._retrier.call(lambda: blob.upload_from_string(context, content_type="application/gzip"))
        except exceptions.GoogleAPICallError as exc:
            raise google_error(
                exc, action="uploading the build context to", resource=f"gs://{bucket_name}", api="cloudbuild"
            ) from None
        return bucket_name, blob.name, int(blob.generation)

    def _owns(self, bucket_name: str) -> bool:
        """Whether the project's own bucket list holds `bucket_name` (how gcloud checks it)."""
        listed = self._retrier.call(lambda: list(self._storage.list_buckets(prefix=bucket_name)))
        return any(bucket.name == bucket_name for bucket in listed)

    def submit(
        self,
        context: bytes,
        tags: list[str],
        *,
        build_args: dict[str, str],
        service_account: str | None,
        on_line: Callable[[str], None],
        on_progress: Callable[[str], None] = lambda _: None,
    ) -> RemoteBuild:
        """Build `context` on Cloud Build, tagged `tags` and pushed, as `service_account` (an email; None: the
        project's default build account); log lines go to `on_line` as they arrive, and the upload, the build's
        status on each change and every HEARTBEAT_SECONDS of polling to `on_progress` (a CI log's heartbeat
        without -v)."""
        from google.api_core import exceptions
        from google.cloud.devtools import cloudbuild_v1

        on_progress(f"uploading the source ({len(context) / 1e6:.1f} MB) to Cloud Storage")
        bucket, name, generation = self.upload(context)
        args = ["build", "--network", "cloudbuild", "--no-cache"]
        for key, value in build_args.items():
            args += ["--build-arg", f"{key}={value}"]
        for tag in tags:
            args += ["-t", tag]
        # A tag of this submission alone: a retry finds by it the build a try whose answer was lost did start.
        marker = f"doki-{uuid.uuid4().hex}"
        build = cloudbuild_v1.Build(
            source=cloudbuild_v1.Source(
                storage_source=cloudbuild_v1.StorageSource(bucket=bucket, object_=name, generation=generation)
            ),
            steps=[cloudbuild_v1.BuildStep(name=DOCKER_BUILDER, args=[*args, "."])],
            images=tags,
            tags=[marker],
        )
        if service_account:
            # The resource name Build.service_account's comment asks for (cloudbuild.proto), and the logging
            # option Cloud Build requires of a build that names its account: the default logs bucket is written as
            # Cloud Build's own account, so such a build must choose (Cloud Logging, as doki reads the log there).
            owner = account_project(service_account) or self.project
            build.service_account = f"projects/{owner}/serviceAccounts/{service_account}"
            build.options = cloudbuild_v1.BuildOptions(
                logging=cloudbuild_v1.BuildOptions.LoggingMode.CLOUD_LOGGING_ONLY
            )

        def start(retried: bool) -> str:
            # Starting a build twice would build and push twice, the later push moving the tags.
            if retried and (started := self._tagged(marker)) is not None:
                return started
            operation = self._builds.create_build(project_id=self.project, build=build)
            return str(operation.metadata.build.id)

        try:
            build_id: str = self._retrier.call(knowing_retries(start))
        except exceptions.GoogleAPICallError as exc:
            raise start_error(exc, project=self.project, account=service_account) from None
        log = _BuildLog(self._logs, build_id)
        polls = 0
        said = ""
        while True:
            # The build itself is polled, as gcloud does: found by a retry, it has no operation to follow.
            current = self._call(
                lambda: self._builds.get_build(project_id=self.project, id=build_id, retry=no_library_retry()),
                action="waiting for build",
                resource=f"{build_id} in projects/{self.project}",
                api="cloudbuild",
                role="roles/cloudbuild.builds.viewer",
            )
            finished = current.status.name in FINISHED
            # Polls are a second apart: the seconds slept so far count the heartbeat, as a fake sleep counts them.
            state = f"waiting for Cloud Build build {build_id}: {current.status.name}"
            if not finished and (state != said or polls % int(HEARTBEAT_SECONDS) == 0):
                on_progress(f"{state} ({polls} s)")
                said = state
            # The log is read every LOG_POLL_EVERY polls and at the end: Cloud Logging allows a project 60 reads a
            # minute, shared with every other reader of its logs.
            if finished or polls % LOG_POLL_EVERY == 0:
                try:
                    fresh = log.new_lines()
                except DokiError as err:
                    # The log is shown, never waited on: a spent read quota must not fail a build that went on.
                    on_line(f"(the build log could not be read just now: {err.message})")
                    fresh = []
                for message in fresh:
                    on_line(message)
            if finished:
                break
            polls += 1
            self._sleep(1.0)
        if current.status.name != "SUCCESS":
            # The end of its log, where the failing step's output is: shown whether or not -v showed it all. Read
            # whole once more, so entries that arrived late (stamped before the newest one seen) are in it too.
            last = list(log.last)
            with suppress(DokiError):
                last = [line.message for line in self._logs.build_lines(build_id, 0)[-FAILED_LOG_LINES:]]
            tail = "".join(f"\n{message}" for message in last)
            raise DokiError(
                Code.BUILD_FAILED,
                f"remote build {build_id} ended {current.status.name}: "
                f"{current.status_detail or 'no detail given'}{tail}",
                f"fix the failing step; the whole log: rerun with -v, or {current.log_url}",
            )
        return RemoteBuild(build_id, {i.name: i.digest for i in current.results.images}, current.log_url)

    def _tagged(self, marker: str) -> str | None:
        """The id of the build tagged `marker`, if one was started. Errors propagate to the caller's Retrier."""
        request = {"project_id": self.project, "filter": f'tags="{marker}"', "page_size": 1}
        pages = self._builds.list_builds(request=request, retry=no_library_retry())
        found = next(iter(pages), None)
        return None if found is None else str(found.id)


def start_error(exc: Exception, *, project: str, account: str | None) -> DokiError:
    """Why Cloud Build refused to start a build as `account` (None: the project's default) in `project`, with the
    real fix for a refused identity; other refusals as every Google error says them."""
    from google.api_core import exceptions

    action, resource = "starting a build in", f"projects/{project}"
    detail = getattr(exc, "message", None) or str(exc)
    # Whoever submits a build must be allowed to act as the account it runs as: the one it names, or the Compute
    # Engine default one that builds in projects made since 2024 run as
    # (https://cloud.google.com/build/docs/cloud-build-service-account-updates). Cloud Build says "caller does not
    # have permission to act as service account …"; IAM's own wording names the iam.serviceAccounts.actAs permission.
    if isinstance(exc, exceptions.PermissionDenied) and (
        "actas" in detail.lower() or "permission to act as" in detail.lower()
    ):
        who = account or "PROJECT_NUMBER-compute@developer.gserviceaccount.com"
        number = (
            "" if account else f" (PROJECT_NUMBER: gcloud projects describe {project} --format 'value(projectNumber)')"
        )
        return DokiError(
            Code.BUILD_ACCOUNT_DENIED,
            f"{action} {resource}: Cloud Build refused to run it "
            f"{build_identity(account)}, which your credentials may not act as ({detail})",
            f"grant them roles/iam.serviceAccountUser on that account: gcloud iam service-accounts "
            f"add-iam-policy-binding {who} --member=user:YOU@example.com (or serviceAccount:EMAIL for CI) "
            f"--role=roles/iam.serviceAccountUser --project {project}{number}; if it does not exist (Cloud Build "
            "answers the same), create it; or set [build] service_account in doki.toml to an account they may act as",
        )
    return google_error(exc, action=action, resource=resource, api="cloudbuild", role="roles/cloudbuild.builds.editor")


class _BuildLog:
    """A build's log read incrementally: each read asks only for entries stamped at or after the newest one seen,
    and drops those it has shown already (entries at the same instant are told apart by insert id)."""

    def __init__(self, logs: Logs, build_id: str) -> None:
        self._logs = logs
        self._build_id = build_id
        self._since = 0
        self._at_since: set[str] = set()  # insert ids of the entries stamped `_since`, already shown
        self.last: deque[str] = deque(maxlen=FAILED_LOG_LINES)

    def new_lines(self) -> list[str]:
        fresh = []
        for line in self._logs.build_lines(self._build_id, self._since):
            if line.nanos == self._since and line.insert_id in self._at_since:
                continue
            if line.nanos > self._since:
                self._since, self._at_since = line.nanos, set()
            self._at_since.add(line.insert_id)
            fresh.append(line.message)
        self.last.extend(fresh)
        return fresh
