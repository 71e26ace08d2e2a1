"""Images in the emulator's Artifact Registry as `doki build --push` leaves them, without moving their bytes: the
emulator's revisions run an image from the local engine once its registry holds it, as Cloud Run pulls it only from
there."""

from __future__ import annotations

import hashlib
from contextlib import suppress

from google.cloud import artifactregistry_v1 as ar

from doki_cli.emulator.artifactregistry.state import ImageRef
from doki_cli.emulator.errors import ApiError
from doki_cli.emulator.server import Emulator


def publish(emulator: Emulator, image: str) -> None:
    """Record `image` (REGION-docker.pkg.dev/PROJECT/REPOSITORY/NAME:TAG) as pushed, its repository made if new."""
    ref = ImageRef.parse(image)
    assert ref is not None, f"{image} is not an Artifact Registry image"
    parent = ref.repository_name.rsplit("/repositories/", 1)[0]
    with suppress(ApiError):  # already there
        emulator.registry.create_repository(parent, ref.repository, ar.Repository(format_=ar.Repository.Format.DOCKER))
    emulator.registry.record_image(image, "sha256:" + hashlib.sha256(image.encode()).hexdigest(), 1)
