"""Cloud Build and Cloud Storage for remote builds: the only module importing those clients.

A remote build is what `gcloud builds submit --tag` does, through the client libraries: the build context (with
.dockerignore applied) goes to gs://PROJECT_cloudbuild/source/, a build with one docker step builds and pushes
the image, its log lines are shown while it runs, and the image digest comes back.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from doki_cli.errors import DokiError
from doki_cli.gcp.errors import call_google, google_error
from doki_cli.gcp.logs import Logs
from doki_cli.gcp.retry import Retrier, no_library_retry

DOCKER_BUILDER = "gcr.io/cloud-builders/docker"


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
            if bucket is None:
                bucket = self._retrier.call(lambda: self._storage.create_bucket(bucket_name))
            blob = bucket.blob(f"source/{time.time():.6f}-{uuid.uuid4().hex}.tgz")
            self._retrier.call(lambda: blob.upload_from_string(context, content_type="application/gzip"))
        except exceptions.GoogleAPICallError as exc:
            raise google_error(
                exc, action="uploading the build context to", resource=f"gs://{bucket_name}", api="cloudbuild"
            ) from None
        return bucket_name, blob.name, int(blob.generation)

    def submit(
        self, context: bytes, tags: list[str], *, build_args: dict[str, str], on_line: Callable[[str], None]
    ) -> RemoteBuild:
        """Build `context` on Cloud Build, tagged `tags` and pushed; log lines go to `on_line` as they arrive."""
        from google.cloud.devtools import cloudbuild_v1

        bucket, name, generation = self.upload(context)
        args = ["build", "--network", "cloudbuild", "--no-cache"]
        for key, value in build_args.items():
            args += ["--build-arg", f"{key}={value}"]
        for tag in tags:
            args += ["-t", tag]
        build = cloudbuild_v1.Build(
            source=cloudbuild_v1.Source(
                storage_source=cloudbuild_v1.StorageSource(bucket=bucket, object_=name, generation=generation)
            ),
            steps=[cloudbuild_v1.BuildStep(name=DOCKER_BUILDER, args=[*args, "."])],
            images=tags,
        )
        operation = self._call(
            lambda: self._builds.create_build(project_id=self.project, build=build),
            action="starting a build in",
            resource=f"projects/{self.project}",
            api="cloudbuild",
            role="roles/cloudbuild.builds.editor",
        )
        build_id = operation.metadata.build.id
        seen = 0  # build logs are bounded: each poll reads them all and shows the new ones
        while True:
            # Through call_google, as every other call: a poll that fails for good says which build and the fix.
            done = self._call(
                lambda: operation.done(retry=no_library_retry()),
                action="waiting for build",
                resource=f"{build_id} in projects/{self.project}",
                api="cloudbuild",
                role="roles/cloudbuild.builds.viewer",
            )
            lines = self._logs.build_lines(build_id, 0)
            for line in lines[seen:]:
                on_line(line.message)
            seen = max(seen, len(lines))
            if done:
                break
            self._sleep(1.0)
        result = operation.metadata.build
        error = operation.exception()
        if error is not None:
            raise DokiError(
                "build_failed",
                f"remote build {build_id} ended {result.status.name}: {result.status_detail or error}",
                f"its log is above and at {result.log_url}",
            )
        final = operation.result()
        return RemoteBuild(build_id, {i.name: i.digest for i in final.results.images}, final.log_url)
