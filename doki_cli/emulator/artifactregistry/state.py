"""Artifact Registry state: repositories, and the Docker images Cloud Build "pushes" into them.

No image bytes live here: an image stays on the local Docker engine under its registry tag, and the registry records
its digest (the engine's image id), tags, size and upload time, which is what ListDockerImages answers with.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote

from google.cloud import artifactregistry_v1 as ar

from doki_cli.emulator import protojson
from doki_cli.emulator.errors import ApiError, already_exists, invalid_argument, not_found
from doki_cli.emulator.iam import OrgPolicy, Policies
from doki_cli.emulator.iamadmin.state import ServiceAccounts
from doki_cli.emulator.paging import Paging

PARENT = re.compile(r"projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)")
DOCKER_IMAGE_NAME = re.compile(
    r"(?P<repository>projects/[^/]+/locations/[^/]+/repositories/[^/]+)"
    r"/dockerImages/(?P<image>.+)@(?P<digest>sha256:[0-9a-f]{64})"
)
REPOSITORY_ID = re.compile(r"[a-z][a-z0-9-]{0,62}")
IMAGE_URI = re.compile(
    r"(?P<location>[a-z0-9-]+)-docker\.pkg\.dev/(?P<project>[^/]+)/(?P<repository>[^/]+)/(?P<image>[a-z0-9._/-]+)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?"
)
# What a Docker v2 push of a single-platform image stores, as ListDockerImages reports it.
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
# Fields UpdateRepository may change; the rest (format, mode, encryption, location) are fixed at creation.
MUTABLE_FIELDS = (
    "description",
    "labels",
    "docker_config",
    "cleanup_policies",
    "cleanup_policy_dry_run",
    "vulnerability_scanning_config",
    "disallow_unspecified_mode",
)
PAGING = Paging(default_size=100, max_size=1000, bad_size="page_size must not be negative, got {size}")


@dataclass(frozen=True)
class ImageRef:
    """A Docker image URI in Artifact Registry: LOCATION-docker.pkg.dev/PROJECT/REPOSITORY/IMAGE[:TAG][@DIGEST]."""

    location: str
    project: str
    repository: str
    image: str
    tag: str | None

    @classmethod
    def parse(cls, uri: str) -> ImageRef | None:
        """The parts of `uri`, or None if it is not an Artifact Registry Docker URI."""
        match = IMAGE_URI.fullmatch(uri)
        if match is None:
            return None
        return cls(match["location"], match["project"], match["repository"], match["image"], match["tag"])

    @property
    def repository_name(self) -> str:
        return f"projects/{self.project}/locations/{self.location}/repositories/{self.repository}"

    @property
    def registry_path(self) -> str:
        """The URI without tag or digest."""
        return f"{self.location}-docker.pkg.dev/{self.project}/{self.repository}/{self.image}"


def _now() -> datetime:
    return datetime.now(UTC)


def _repository_not_found(name: str) -> ApiError:
    return not_found(f'Repository "{name}" not found.')


class Registry:
    """Repositories by resource name, and per repository its Docker images by "IMAGE@DIGEST"."""

    def __init__(
        self, *, persist: Callable[[], None], org: OrgPolicy | None = None, accounts: ServiceAccounts | None = None
    ) -> None:
        self._persist = persist
        self._lock = threading.Lock()
        self._repositories: dict[str, ar.Repository] = {}
        self._images: dict[str, dict[str, ar.DockerImage]] = {}
        self.policies = Policies(on_change=persist, org=org, accounts=accounts)

    # Repositories

    def create_repository(self, parent: str, repository_id: str, repository: ar.Repository) -> ar.Repository:
        """Create `repository` as `parent`/repositories/`repository_id`; the stored copy is returned."""
        match = PARENT.fullmatch(parent)
        if match is None:
            raise invalid_argument(f'Invalid parent "{parent}": expected "projects/PROJECT/locations/LOCATION".')
        if not REPOSITORY_ID.fullmatch(repository_id):
            raise invalid_argument(
                f'Invalid repository ID "{repository_id}": it must start with a lowercase letter, contain only '
                "lowercase letters, numbers and hyphens, and be at most 63 characters long."
            )
        if repository.format_ == ar.Repository.Format.FORMAT_UNSPECIFIED:
            raise invalid_argument("Repository format must be specified.")
        stored: ar.Repository = protojson.copy(repository)
        stored.name = f"{parent}/repositories/{repository_id}"
        now = _now()
        stored.create_time = now
        stored.update_time = now
        if stored.mode == ar.Repository.Mode.MODE_UNSPECIFIED:
            # Calling the enum types the member for mypy, which sees proto-plus enum members as plain ints.
            stored.mode = ar.Repository.Mode(ar.Repository.Mode.STANDARD_REPOSITORY)
        if stored.format_ == ar.Repository.Format.DOCKER:
            stored.registry_uri = f"{match['location']}-docker.pkg.dev/{match['project']}/{repository_id}"
        with self._lock:
            if stored.name in self._repositories:
                raise already_exists("the repository already exists")
            self._repositories[stored.name] = stored
            self._images[stored.name] = {}
            result: ar.Repository = protojson.copy(stored)
        self._persist()
        return result

    def get_repository(self, name: str) -> ar.Repository:
        with self._lock:
            return self._repository_copy(name)

    def list_repositories(self, parent: str, page_size: int, page_token: str) -> tuple[list[ar.Repository], str]:
        if PARENT.fullmatch(parent) is None:
            raise invalid_argument(f'Invalid parent "{parent}": expected "projects/PROJECT/locations/LOCATION".')
        prefix = parent + "/repositories/"
        with self._lock:
            names = [name for name in self._repositories if name.startswith(prefix)]
            chosen, next_token = PAGING.page(names, lambda name: name, page_size, page_token)
            return [self._repository_copy(name) for name in chosen], next_token

    def update_repository(self, repository: ar.Repository, paths: list[str]) -> ar.Repository:
        """Copy the fields named by `paths` (all mutable fields when empty) from `repository` onto the stored one."""
        for path in paths:
            if path not in MUTABLE_FIELDS:
                raise invalid_argument(f'Invalid update_mask path "{path}": it cannot be updated.')
        with self._lock:
            stored = self._repositories.get(repository.name)
            if stored is None:
                raise _repository_not_found(repository.name)
            for field in paths or MUTABLE_FIELDS:
                setattr(stored, field, getattr(repository, field))
            stored.update_time = _now()
            result = self._repository_copy(repository.name)
        self._persist()
        return result

    def delete_repository(self, name: str) -> None:
        """Delete the repository and every image in it."""
        with self._lock:
            if self._repositories.pop(name, None) is None:
                raise _repository_not_found(name)
            self._images.pop(name, None)
        self.policies.forget(name)
        self._persist()

    def check_exists(self, name: str) -> None:
        """NOT_FOUND unless the repository `name` exists (guards its IAM methods)."""
        with self._lock:
            if name not in self._repositories:
                raise _repository_not_found(name)

    def _repository_copy(self, name: str) -> ar.Repository:
        stored = self._repositories.get(name)
        if stored is None:
            raise _repository_not_found(name)
        result: ar.Repository = protojson.copy(stored)
        result.size_bytes = sum(image.image_size_bytes for image in self._images[name].values())
        return result

    # Docker images

    def repository_for(self, image_uri: str) -> str | None:
        """The name of the existing Docker repository `image_uri` would be pushed to, or None."""
        ref = ImageRef.parse(image_uri)
        if ref is None:
            return None
        with self._lock:
            repository = self._repositories.get(ref.repository_name)
            if repository is None or repository.format_ != ar.Repository.Format.DOCKER:
                return None
            return ref.repository_name

    def record_image(
        self, image_uri: str, digest: str, size_bytes: int, *, media_type: str = DOCKER_MANIFEST
    ) -> ar.DockerImage:
        """Record a push of `image_uri` as `digest`: its tag moves to this digest, as a registry moves tags."""
        ref = ImageRef.parse(image_uri)
        if ref is None:
            raise invalid_argument(f'"{image_uri}" is not an Artifact Registry Docker image URI.')
        tag = ref.tag or "latest"
        now = _now()
        with self._lock:
            images = self._images.get(ref.repository_name)
            if images is None:
                raise _repository_not_found(ref.repository_name)
            for other_key, other in images.items():
                if other_key.rpartition("@")[0] == ref.image and tag in other.tags:
                    other.tags.remove(tag)
                    other.update_time = now
            key = f"{ref.image}@{digest}"
            image = images.get(key)
            if image is None:
                image = ar.DockerImage(
                    name=f"{ref.repository_name}/dockerImages/{quote(ref.image, safe='')}@{digest}",
                    uri=f"{ref.registry_path}@{digest}",
                    image_size_bytes=size_bytes,
                    upload_time=now,
                    media_type=media_type,
                )
                images[key] = image
            if tag not in image.tags:
                image.tags.append(tag)
            image.update_time = now
            result: ar.DockerImage = protojson.copy(image)
        self._persist()
        return result

    def has_image(self, image_uri: str) -> bool:
        """Whether `image_uri` (by tag, `latest` when it names none, or by digest) was pushed to its repository."""
        return self.digest_uri(image_uri) is not None

    def digest_uri(self, image_uri: str) -> str | None:
        """`image_uri` by digest (`REGISTRY/PROJECT/REPO/IMAGE@sha256:…`) when it was pushed here, else None."""
        ref = ImageRef.parse(image_uri)
        if ref is None:
            return None
        digest = image_uri.rpartition("@")[2] if "@" in image_uri else None
        with self._lock:
            for key, image in self._images.get(ref.repository_name, {}).items():
                name, _, image_digest = key.rpartition("@")
                if name == ref.image and (image_digest == digest if digest else (ref.tag or "latest") in image.tags):
                    return f"{ref.registry_path}@{image_digest}"
        return None

    def get_docker_image(self, name: str) -> ar.DockerImage:
        match = DOCKER_IMAGE_NAME.fullmatch(name)
        if match is None:
            raise invalid_argument(
                f'Invalid docker image name "{name}": expected '
                '"projects/PROJECT/locations/LOCATION/repositories/REPOSITORY/dockerImages/IMAGE@sha256:DIGEST".'
            )
        with self._lock:
            images = self._images.get(match["repository"])
            if images is None:
                raise _repository_not_found(match["repository"])
            # Clients send the image path both as is and URL-encoded ("team%2Fapp").
            image = images.get(f"{unquote(match['image'])}@{match['digest']}")
            if image is None:
                raise not_found(f'Requested entity was not found: docker image "{name}".')
            result: ar.DockerImage = protojson.copy(image)
            return result

    def list_docker_images(
        self, parent: str, page_size: int, page_token: str, order_by: str
    ) -> tuple[list[ar.DockerImage], str]:
        field, _, direction = order_by.strip().partition(" ")
        field = field or "name"
        if field not in ("name", "upload_time", "update_time") or direction.strip() not in ("", "asc", "desc"):
            raise invalid_argument(
                f'Invalid order_by "{order_by}": use name, upload_time or update_time, optionally followed by desc.'
            )

        def key(image: ar.DockerImage) -> str:
            if field == "name":
                return image.name
            moment: datetime = getattr(image, field)
            # Fixed width, so the string order is the time order; the name breaks ties.
            return f"{moment.isoformat(timespec='microseconds')}|{image.name}"

        with self._lock:
            if parent not in self._repositories:
                raise _repository_not_found(parent)
            chosen, next_token = PAGING.page(
                self._images[parent].values(), key, page_size, page_token, descending=direction.strip() == "desc"
            )
            return [protojson.copy(image) for image in chosen], next_token

    # Persistence

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "repositories": [protojson.to_dict(repository) for repository in self._repositories.values()],
                "images": {
                    name: [protojson.to_dict(image) for image in images.values()]
                    for name, images in self._images.items()
                },
                "policies": self.policies.snapshot(),
            }

    def restore(self, data: dict[str, Any]) -> None:
        repositories = [protojson.from_dict(ar.Repository, item) for item in data.get("repositories", [])]
        images: dict[str, dict[str, ar.DockerImage]] = {repository.name: {} for repository in repositories}
        for name, items in data.get("images", {}).items():
            for item in items:
                image: ar.DockerImage = protojson.from_dict(ar.DockerImage, item)
                path = unquote(image.name.split("/dockerImages/", 1)[1])
                images.setdefault(name, {})[path] = image
        with self._lock:
            self._repositories = {repository.name: repository for repository in repositories}
            self._images = images
        self.policies.restore(data.get("policies", {}))
