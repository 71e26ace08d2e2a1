"""The registry's content: blobs in files, upload sessions, and per image its manifests and tags.

Blobs (layers, configs, and the manifests themselves) are files named by their sha256 under `root/blobs`, so a
push of hundreds of MB never sits in memory: uploads stream into `root/uploads/ID` while their digest is computed,
and move into place only when the digest the client names is the digest of what arrived. Manifests and tags are
the JSON snapshot. Upload sessions are not persisted: a restart loses uploads in flight, which the engine retries.

Names are Artifact Registry image paths, `LOCATION-docker.pkg.dev/PROJECT/REPOSITORY/IMAGE`: the emulator serves
every location on one address, so the real host becomes the first path component (a local tag of the image is
`127.0.0.1:PORT/us-central1-docker.pkg.dev/p/r/app`). Every request for a name needs its Artifact Registry
repository (format DOCKER) to exist, and a manifest pushed under a tag is recorded there as a Docker image.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from doki_cli.emulator.artifactregistry.state import ImageRef, Registry
from doki_cli.emulator.errors import ApiError
from doki_cli.emulator.registry import errors

DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
TAG = re.compile(r"[\w][\w.-]{0,127}")
# The distribution spec's grammar of one path component of a repository name.
NAME_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*")
MAX_NAME_LENGTH = 255
# Manifests are read whole; registries commonly refuse them above 4 MiB.
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
IMAGE_MANIFESTS = (DOCKER_MANIFEST, OCI_MANIFEST)
INDEXES = (DOCKER_MANIFEST_LIST, OCI_INDEX)


@dataclass
class _Upload:
    name: str
    path: Path
    hasher: Any = field(default_factory=hashlib.sha256)
    size: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass(frozen=True)
class Manifest:
    media_type: str
    size: int  # the image's size as Artifact Registry reports it: its blobs, or its children for an index


@dataclass
class _Image:
    manifests: dict[str, Manifest] = field(default_factory=dict)  # digest -> manifest
    tags: dict[str, str] = field(default_factory=dict)  # tag -> digest


def is_digest(reference: str) -> bool:
    return DIGEST.fullmatch(reference) is not None


def _check_digest(digest: str) -> None:
    if not is_digest(digest):
        raise errors.digest_invalid(
            f"unsupported digest {digest!r}: the emulator's registry takes sha256 digests", digest
        )


class DockerRegistry:
    """Blobs, uploads and manifests under `root` (a temporary directory, removed by `close`, when None)."""

    def __init__(self, *, repositories: Registry, root: Path | None, persist: Callable[[], None]) -> None:
        self._repositories = repositories
        self._persist = persist
        self._temporary = root is None
        self.root = Path(tempfile.mkdtemp(prefix="doki-registry-")) if root is None else root
        self._blobs = self.root / "blobs" / "sha256"
        self._incoming = self.root / "uploads"
        # Uploads left by a previous process can never be finished: their sessions died with it.
        shutil.rmtree(self._incoming, ignore_errors=True)
        self._blobs.mkdir(parents=True, exist_ok=True)
        self._incoming.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._uploads: dict[str, _Upload] = {}
        self._images: dict[str, _Image] = {}

    def close(self) -> None:
        if self._temporary:
            shutil.rmtree(self.root, ignore_errors=True)

    # Names

    def check_name(self, name: str) -> None:
        """NAME_INVALID unless `name` is an Artifact Registry image path; NAME_UNKNOWN unless its repository exists."""
        components = name.split("/")
        if len(name) > MAX_NAME_LENGTH or not all(NAME_COMPONENT.fullmatch(part) for part in components):
            raise errors.name_invalid(name, "path components are lowercase letters and digits, separated by . _ -")
        ref = ImageRef.parse(name)
        if ref is None:
            raise errors.name_invalid(
                name,
                "the emulator's registry holds Artifact Registry images: LOCATION-docker.pkg.dev/PROJECT/REPO/IMAGE",
            )
        if self._repositories.repository_for(name) is None:
            # What Artifact Registry answers for a missing repository; docker prints "name unknown: ...".
            raise errors.name_unknown(f'Repository "{ref.repository}" not found', name)

    # Blobs

    def _blob_path(self, digest: str) -> Path:
        return self._blobs / digest.removeprefix("sha256:")

    def blob(self, digest: str) -> Path:
        """The file holding blob `digest`; BLOB_UNKNOWN when there is none."""
        _check_digest(digest)
        path = self._blob_path(digest)
        if not path.is_file():
            raise errors.blob_unknown(digest)
        return path

    def has_blob(self, digest: str) -> bool:
        return is_digest(digest) and self._blob_path(digest).is_file()

    # Uploads

    def start_upload(self, name: str) -> str:
        upload_id = str(uuid.uuid4())
        path = self._incoming / upload_id
        path.touch()
        with self._lock:
            self._uploads[upload_id] = _Upload(name, path)
        return upload_id

    def _upload(self, name: str, upload_id: str) -> _Upload:
        with self._lock:
            upload = self._uploads.get(upload_id)
        if upload is None or upload.name != name:
            raise errors.blob_upload_unknown(upload_id)
        return upload

    def upload_size(self, name: str, upload_id: str) -> int:
        return self._upload(name, upload_id).size

    def write(self, name: str, upload_id: str, chunks: Iterable[bytes], start: int | None = None) -> int:
        """Append `chunks` to the upload (at `start`, which must be where it ends); its size after."""
        upload = self._upload(name, upload_id)
        with upload.lock:
            if start is not None and start != upload.size:
                raise errors.range_invalid(
                    f"the upload has {upload.size} bytes, so a chunk must start there, not {start}"
                )
            self._append(upload, chunks)
            return upload.size

    def _append(self, upload: _Upload, chunks: Iterable[bytes]) -> None:
        with upload.path.open("ab") as file:
            for chunk in chunks:
                file.write(chunk)
                upload.hasher.update(chunk)
                upload.size += len(chunk)

    def finish_upload(self, name: str, upload_id: str, digest: str, chunks: Iterable[bytes]) -> None:
        """Append the last `chunks`, then store the upload as blob `digest` if that is what its content hashes to."""
        _check_digest(digest)
        upload = self._upload(name, upload_id)
        with upload.lock:
            self._append(upload, chunks)
            with self._lock:
                self._uploads.pop(upload_id, None)
            actual = "sha256:" + upload.hasher.hexdigest()
            if actual != digest:
                upload.path.unlink(missing_ok=True)
                raise errors.digest_invalid(f"provided digest did not match uploaded content ({actual})", digest)
            os.replace(upload.path, self._blob_path(digest))

    def cancel_upload(self, name: str, upload_id: str) -> None:
        upload = self._upload(name, upload_id)
        with self._lock:
            self._uploads.pop(upload_id, None)
        upload.path.unlink(missing_ok=True)

    # Manifests

    def put_manifest(self, name: str, reference: str, body: bytes, content_type: str) -> str:
        """Store a manifest under `reference` (a tag, or the digest it must have); its digest."""
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        tag = None
        if is_digest(reference):
            if reference != digest:
                raise errors.digest_invalid(f"the manifest's digest is {digest}, not the one in the URL", reference)
        elif TAG.fullmatch(reference):
            tag = reference
        else:
            raise errors.tag_invalid(reference)
        try:
            document = json.loads(body)
        except ValueError as exc:
            raise errors.manifest_invalid(f"the manifest is not JSON: {exc}") from None
        if not isinstance(document, dict):
            raise errors.manifest_invalid("the manifest is not a JSON object")
        declared = document.get("mediaType")
        media_type = content_type.split(";")[0].strip() or declared
        if media_type not in IMAGE_MANIFESTS + INDEXES:
            raise errors.manifest_invalid(
                f"unsupported manifest media type {media_type!r}: the emulator stores Docker schema 2 and OCI "
                "manifests and indexes"
            )
        if declared is not None and declared != media_type:
            raise errors.manifest_invalid(f"the manifest declares {declared!r} but was sent as {media_type!r}")
        size = self._size(name, media_type, document)
        if tag is not None:
            # Artifact Registry first: if its repository went away meanwhile, nothing is stored at all.
            try:
                self._repositories.record_image(f"{name}:{tag}", digest, size, media_type=media_type)
            except ApiError as err:
                if err.code != grpc.StatusCode.NOT_FOUND:
                    raise
                raise errors.name_unknown(err.message, name) from None
        path = self._blob_path(digest)
        if not path.is_file():
            partial = self._incoming / f"manifest-{uuid.uuid4()}"
            partial.write_bytes(body)
            os.replace(partial, path)
        with self._lock:
            image = self._images.setdefault(name, _Image())
            image.manifests[digest] = Manifest(media_type, size)
            if tag is not None:
                image.tags[tag] = digest
        self._persist()
        return digest

    def _size(self, name: str, media_type: str, document: dict[str, Any]) -> int:
        """The size of what `document` refers to, each reference checked to be here already."""
        if media_type in INDEXES:
            children = _descriptors(document.get("manifests"), "manifests")
            with self._lock:
                known = self._images.get(name, _Image()).manifests
                missing = [digest for digest, _ in children if digest not in known]
                if missing:
                    raise errors.manifest_blob_unknown(missing[0])
                return sum(known[digest].size for digest, _ in children)
        config = _descriptors([document.get("config")], "config")
        layers = _descriptors(document.get("layers"), "layers")
        for digest, _ in config + layers:
            if not self.has_blob(digest):
                raise errors.manifest_blob_unknown(digest)
        return sum(size for _, size in config + layers)

    def get_manifest(self, name: str, reference: str) -> tuple[bytes, str, str]:
        """(body, media type, digest) of the manifest a tag or digest names; MANIFEST_UNKNOWN when none."""
        with self._lock:
            image = self._images.get(name, _Image())
            digest = reference if is_digest(reference) else image.tags.get(reference)
            manifest = image.manifests.get(digest) if digest else None
        if digest is None or manifest is None:
            raise errors.manifest_unknown(reference)
        return self._blob_path(digest).read_bytes(), manifest.media_type, digest

    def tags(self, name: str) -> list[str]:
        with self._lock:
            image = self._images.get(name)
            if image is None:
                raise errors.name_unknown("repository name not known to registry", name)
            return sorted(image.tags)

    # Persistence

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "images": {
                    name: {
                        "manifests": {
                            digest: {"media_type": manifest.media_type, "size": manifest.size}
                            for digest, manifest in image.manifests.items()
                        },
                        "tags": dict(image.tags),
                    }
                    for name, image in self._images.items()
                }
            }

    def restore(self, data: dict[str, Any]) -> None:
        images = {
            name: _Image(
                manifests={digest: Manifest(m["media_type"], m["size"]) for digest, m in item["manifests"].items()},
                tags=dict(item["tags"]),
            )
            for name, item in data.get("images", {}).items()
        }
        with self._lock:
            self._images = images


def _descriptors(items: Any, field_name: str) -> list[tuple[str, int]]:
    """(digest, size) of each descriptor in `items`; MANIFEST_INVALID naming the field when one is malformed."""
    if not isinstance(items, list):
        raise errors.manifest_invalid(f"the manifest's {field_name} is missing or not a list")
    found = []
    for item in items:
        digest = item.get("digest") if isinstance(item, dict) else None
        size = item.get("size") if isinstance(item, dict) else None
        if not isinstance(digest, str) or not is_digest(digest) or not isinstance(size, int) or size < 0:
            raise errors.manifest_invalid(f"a descriptor in the manifest's {field_name} has no valid digest and size")
        found.append((digest, size))
    return found
