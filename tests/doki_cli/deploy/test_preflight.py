"""The image check a deploy makes before its first write, with a fake Artifact Registry: what is looked up, what
stops the deploy, and what --skip-checks turns into a plan line."""

from __future__ import annotations

import pytest

from doki_cli.deploy.preflight import image_check
from doki_cli.errors import Code, DokiError
from doki_cli.gcp.artifactregistry import ArtifactRegistry

TAGGED = "us-central1-docker.pkg.dev/p/doki/api:v1"


class FakeRegistry:
    """Answers like the Artifact Registry adapter; remembers what it was asked."""

    def __init__(self, *, digest: str | None = None, standard: bool = True, error: DokiError | None = None) -> None:
        self._digest = digest
        self._standard = standard
        self._error = error
        self.asked: list[str] = []

    is_tagged_reference = staticmethod(ArtifactRegistry.is_tagged_reference)

    def digest_of(self, image: str) -> str | None:
        self.asked.append(image)
        if self._error is not None:
            raise self._error
        return self._digest

    def is_standard_repository(self, image: str) -> bool:
        return self._standard


def check(registry: FakeRegistry, image: str = TAGGED, *, skip: bool = False) -> list[str]:
    return image_check(registry, image, skip=skip)  # type: ignore[arg-type]


def test_a_pushed_image_passes_and_images_outside_artifact_registry_or_by_digest_are_not_looked_up() -> None:
    registry = FakeRegistry(digest="sha256:" + "a" * 64)
    assert check(registry) == []
    assert check(registry, "docker.io/library/nginx:1") == []
    assert check(registry, "us-central1-docker.pkg.dev/p/doki/api@sha256:" + "b" * 64) == []
    assert registry.asked == [TAGGED]


def test_an_image_never_pushed_stops_the_deploy_unless_the_checks_are_skipped() -> None:
    with pytest.raises(DokiError) as stopped:
        check(FakeRegistry())
    assert (stopped.value.code, stopped.value.exit_code) == ("image_not_pushed", 78)
    assert check(FakeRegistry(), skip=True) == [
        f"the image {TAGGED} is not in Artifact Registry, so Cloud Run could not pull it"
    ]


def test_a_remote_or_virtual_repository_is_not_judged_by_what_it_lists() -> None:
    assert check(FakeRegistry(standard=False)) == []


def test_a_lookup_that_fails_stops_the_deploy_or_with_skipped_checks_becomes_a_plan_line() -> None:
    denied = DokiError(Code.PERMISSION_DENIED, "listing the images of …: permission denied", "grant a role")
    with pytest.raises(DokiError) as stopped:
        check(FakeRegistry(error=denied))
    assert stopped.value is denied
    assert check(FakeRegistry(error=denied), skip=True) == [
        f"whether {TAGGED} is in Artifact Registry is unknown: listing the images of …: permission denied"
    ]
