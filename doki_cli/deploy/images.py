"""The image a release deploys: the one already in Artifact Registry under the commit's tag, else built and pushed.

Building remotely is `doki build --remote` (Cloud Build); locally it is `doki build` then `doki build --push`.
Either way the image is tagged exactly as `doki build` tags it, so a tag names one commit's image everywhere.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from doki_cli.config import ServiceConfig
from doki_cli.deploy.release import ProvidedImage
from doki_cli.errors import DokiError
from doki_cli.gcp.artifactregistry import ArtifactRegistry
from doki_cli.gcp.google import Google
from doki_cli.waiting import lines_in_sight


def tag_digests(registry: ArtifactRegistry) -> Callable[[str], str | None]:
    """What an Artifact Registry tag points at, for the planner: asked only when the live image is pinned by digest
    to the image the plan names by tag."""

    def digest_of(image: str) -> str | None:
        if not registry.is_tagged_reference(image):
            return None
        try:
            return registry.digest_of(image)
        except DokiError:
            # Unknown is a change, as without the lookup: the plan shows the image, nothing is hidden.
            return None

    return digest_of


class Images:
    def __init__(
        self,
        google: Google,
        config: ServiceConfig,
        *,
        remote: bool,
        base_image: str | None,
        on_line: Callable[[str], None],
        on_progress: Callable[[str], None] = lambda message: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock  # the push's heartbeat counts on it
        self._google = google
        self._config = config
        self._remote = remote
        self._build_args = {"BASE_IMAGE": base_image} if base_image else {}
        self._on_line = on_line
        self._progress = on_progress

    def provide(self, image: str, *, reuse: bool) -> ProvidedImage:
        registry = self._google.artifact_registry
        if reuse:
            digest = registry.digest_of(image)
            if digest is not None:
                return ProvidedImage(digest, "reused")
        registry.ensure_repository(self._config.repository)
        if self._remote:
            from doki_cli.engine import build_context
            from doki_cli.gcp.cloudbuild import build_identity

            account = self._config.build.service_account
            self._progress(f"not in Artifact Registry: building it on Cloud Build, {build_identity(account)}")
            built = self._google.cloud_build.submit(
                build_context(self._config.root),
                [image],
                build_args=self._build_args,
                service_account=account,
                on_line=self._on_line,
                on_progress=self._progress,
            )
            return ProvidedImage(built.images.get(image), "built-remote")
        from doki_cli.engine import DockerEngine

        engine = DockerEngine.connect()
        self._progress("not in Artifact Registry: building it with the local Docker engine")
        engine.build(self._config.root, [image], build_args=self._build_args or None, on_line=self._build_line)
        self._progress("pushing it to Artifact Registry")
        pushing = lines_in_sight(
            self._on_line, doing="waiting for the push", clock=self._clock, on_progress=self._progress
        )
        digest = registry.push(engine, [image], on_line=pushing)
        return ProvidedImage(digest, "built")

    def _build_line(self, line: str) -> None:
        self._on_line(line)
        if line.startswith("Step "):  # the Dockerfile's steps, as the engine numbers them: the build moves on
            step = " ".join(line.split())
            self._progress(f"  {step[:97]}..." if len(step) > 100 else f"  {step}")  # one line each, as a log shows
