"""Cloud Storage's data and rules: buckets, objects (one live generation each) and resumable upload sessions.

Object bytes live in files under `blob_dir` when it is set (one file per generation, written before the metadata
points at it), in memory otherwise; the JSON snapshot holds metadata only. Upload sessions are not persisted: a
restart loses uploads in flight, which clients restart as they would after a session expires.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import os
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import google_crc32c
import grpc

from doki_cli.emulator.errors import ApiError

MAX_LIST_RESULTS = 1000
# Metadata a client may set on an object, kept verbatim (JSON API names).
WRITABLE_OBJECT_FIELDS = frozenset(
    {"cacheControl", "contentDisposition", "contentEncoding", "contentLanguage", "metadata", "storageClass"}
)
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]")


class StorageError(ApiError):
    """An error as the Cloud Storage JSON API sends it: its own HTTP status and an `errors[].reason`."""

    def __init__(self, code: grpc.StatusCode, http_status: int, reason: str, message: str) -> None:
        super().__init__(code, message)
        self._http_status = http_status
        self.reason = reason

    @property
    def http_status(self) -> int:
        return self._http_status

    def rest_body(self) -> dict[str, object]:
        error = {"message": self.message, "domain": "global", "reason": self.reason}
        return {"error": {"code": self._http_status, "message": self.message, "errors": [error]}}


def bad_request(message: str, reason: str = "invalid") -> StorageError:
    """An HTTP 400 answer with the JSON API's `reason`."""
    return StorageError(grpc.StatusCode.INVALID_ARGUMENT, 400, reason, message)


def _bucket_not_found() -> StorageError:
    return StorageError(grpc.StatusCode.NOT_FOUND, 404, "notFound", "The specified bucket does not exist.")


def _object_not_found(bucket: str, name: str) -> StorageError:
    return StorageError(grpc.StatusCode.NOT_FOUND, 404, "notFound", f"No such object: {bucket}/{name}")


def _condition_not_met() -> StorageError:
    return StorageError(
        grpc.StatusCode.FAILED_PRECONDITION,
        412,
        "conditionNotMet",
        "At least one of the pre-conditions you specified did not hold.",
    )


def _rfc3339(seconds: float) -> str:
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def checksums(data: bytes) -> tuple[str, str]:
    """(md5Hash, crc32c) as the JSON API spells them: base64 of the digests, CRC32C big-endian."""
    md5 = base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()
    crc = base64.b64encode(int(google_crc32c.value(data)).to_bytes(4, "big")).decode()
    return md5, crc


@dataclass(frozen=True)
class Preconditions:
    """The `ifGenerationMatch` family of a request; None: not asked. `if_generation_match=0`: must not exist."""

    if_generation_match: int | None = None
    if_metageneration_match: int | None = None

    def check(self, current: StoredObject | None) -> None:
        """Raise 412 unless `current` (None: no live object) satisfies every condition."""
        if self.if_generation_match is not None:
            generation = current.generation if current is not None else 0
            if generation != self.if_generation_match:
                raise _condition_not_met()
        if self.if_metageneration_match is not None and (
            current is None or current.metageneration != self.if_metageneration_match
        ):
            raise _condition_not_met()


NO_PRECONDITIONS = Preconditions()


@dataclass(frozen=True)
class StoredObject:
    """An object's metadata (its bytes are kept apart)."""

    bucket: str
    name: str
    generation: int
    metageneration: int
    size: int
    md5_hash: str
    crc32c: str
    content_type: str
    time_created: str
    updated: str
    extra: dict[str, Any] = field(default_factory=dict)  # WRITABLE_OBJECT_FIELDS the client set


@dataclass(frozen=True)
class StoredBucket:
    name: str
    project: str
    location: str
    storage_class: str
    time_created: str
    updated: str
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class _Session:
    """A resumable upload in flight."""

    bucket: str
    name: str
    content_type: str
    extra: dict[str, Any]
    preconditions: Preconditions
    total: int | None
    data: bytearray = field(default_factory=bytearray)


@dataclass(frozen=True)
class ChunkResult:
    """What a chunk of a resumable upload led to: the finished object, or how many bytes are persisted so far."""

    received: int
    finished: StoredObject | None = None


class Buckets:
    """Every bucket of every project. Thread-safe; `persist` is called after every change."""

    def __init__(self, *, persist: Callable[[], None], blob_dir: Path | None) -> None:
        self._persist = persist
        self._blob_dir = blob_dir
        self._lock = threading.RLock()
        self._buckets: dict[str, StoredBucket] = {}
        self._objects: dict[str, dict[str, StoredObject]] = {}
        self._memory: dict[tuple[str, int], bytes] = {}  # (bucket, generation) -> bytes, when there is no blob_dir
        self._sessions: dict[str, _Session] = {}
        self._last_generation = 0

    # -- bytes --------------------------------------------------------------------------------------------------

    def _blob_path(self, bucket: str, generation: int) -> Path:
        assert self._blob_dir is not None
        # Bucket names are validated (no "/" or ".." possible), generations are numbers: safe as path parts.
        return self._blob_dir / bucket / str(generation)

    def _put_bytes(self, bucket: str, generation: int, data: bytes) -> None:
        if self._blob_dir is None:
            self._memory[(bucket, generation)] = data
            return
        path = self._blob_path(bucket, generation)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)

    def _get_bytes(self, bucket: str, generation: int) -> bytes:
        if self._blob_dir is None:
            return self._memory[(bucket, generation)]
        return self._blob_path(bucket, generation).read_bytes()

    def _drop_bytes(self, bucket: str, generation: int) -> None:
        if self._blob_dir is None:
            self._memory.pop((bucket, generation), None)
        else:
            self._blob_path(bucket, generation).unlink(missing_ok=True)

    def _next_generation(self) -> int:
        # Google's generations are microsecond timestamps; strictly increasing even within one microsecond.
        self._last_generation = max(self._last_generation + 1, time.time_ns() // 1000)
        return self._last_generation

    # -- buckets ------------------------------------------------------------------------------------------------

    def create_bucket(
        self, project: str, name: str, *, location: str = "US", storage_class: str = "STANDARD", labels: Any = None
    ) -> StoredBucket:
        """A new, empty bucket owned by `project`; 409 if the name is taken."""
        if not project:
            raise bad_request("Required parameter: project", reason="required")
        if not _BUCKET_NAME.fullmatch(name) or (".." in name) or ("." not in name and len(name) > 63):
            raise bad_request(f"Invalid bucket name: '{name}'")
        now = _rfc3339(time.time())
        bucket = StoredBucket(
            name=name,
            project=project,
            location=(location or "US").upper(),
            storage_class=storage_class or "STANDARD",
            time_created=now,
            updated=now,
            labels=dict(labels or {}),
        )
        with self._lock:
            if name in self._buckets:
                raise StorageError(
                    grpc.StatusCode.ALREADY_EXISTS,
                    409,
                    "conflict",
                    "Your previous request to create the named bucket succeeded and you already own it.",
                )
            self._buckets[name] = bucket
            self._objects[name] = {}
        self._persist()
        return bucket

    def get_bucket(self, name: str) -> StoredBucket:
        """The bucket `name`; 404 when missing."""
        with self._lock:
            bucket = self._buckets.get(name)
            if bucket is None:
                raise _bucket_not_found()
            return bucket

    def list_buckets(self, project: str, prefix: str = "") -> list[StoredBucket]:
        """The buckets of `project` whose names start with `prefix`, in name order."""
        if not project:
            raise bad_request("Required parameter: project", reason="required")
        with self._lock:
            return [b for n, b in sorted(self._buckets.items()) if b.project == project and n.startswith(prefix)]

    def delete_bucket(self, name: str) -> None:
        """Delete an empty bucket; 409 while it holds objects."""
        with self._lock:
            self.get_bucket(name)
            if self._objects[name]:
                raise StorageError(
                    grpc.StatusCode.FAILED_PRECONDITION, 409, "conflict", "The bucket you tried to delete is not empty."
                )
            del self._buckets[name]
            del self._objects[name]
            self._sessions = {k: s for k, s in self._sessions.items() if s.bucket != name}
        self._persist()

    # -- objects ------------------------------------------------------------------------------------------------

    def write(
        self,
        bucket: str,
        name: str,
        data: bytes,
        *,
        content_type: str = "application/octet-stream",
        extra: dict[str, Any] | None = None,
        preconditions: Preconditions = NO_PRECONDITIONS,
        expected_md5: str | None = None,
        expected_crc32c: str | None = None,
    ) -> StoredObject:
        """Store `data` as the new live generation of `bucket`/`name` (what every upload ends in)."""
        _check_object_name(name)
        md5, crc = checksums(data)
        if expected_crc32c is not None and expected_crc32c != crc:
            raise bad_request(
                f'Provided CRC32C "{expected_crc32c}" doesn\'t match calculated CRC32C "{crc}".', reason="invalid"
            )
        if expected_md5 is not None and expected_md5 != md5:
            raise bad_request(f'Provided MD5 hash "{expected_md5}" doesn\'t match calculated MD5 hash "{md5}".')
        with self._lock:
            self.get_bucket(bucket)
            current = self._objects[bucket].get(name)
            preconditions.check(current)
            now = _rfc3339(time.time())
            stored = StoredObject(
                bucket=bucket,
                name=name,
                generation=self._next_generation(),
                metageneration=1,
                size=len(data),
                md5_hash=md5,
                crc32c=crc,
                content_type=content_type or "application/octet-stream",
                time_created=now,
                updated=now,
                extra={k: v for k, v in (extra or {}).items() if k in WRITABLE_OBJECT_FIELDS},
            )
            # Bytes first, then the metadata that points at them: a crash in between leaves only an orphan file.
            self._put_bytes(bucket, stored.generation, data)
            self._objects[bucket][name] = stored
            if current is not None:
                self._drop_bytes(bucket, current.generation)
        self._persist()
        return stored

    def stat(
        self,
        bucket: str,
        name: str,
        generation: int | None = None,
        preconditions: Preconditions = NO_PRECONDITIONS,
    ) -> StoredObject:
        """The metadata of the live generation (404 when missing or not `generation`)."""
        with self._lock:
            self.get_bucket(bucket)
            current = self._objects[bucket].get(name)
            if current is None or (generation is not None and generation != current.generation):
                raise _object_not_found(bucket, name)
            preconditions.check(current)
            return current

    def read_object(
        self,
        bucket: str,
        name: str,
        generation: int | None = None,
        preconditions: Preconditions = NO_PRECONDITIONS,
    ) -> tuple[StoredObject, bytes]:
        """The metadata and bytes of the live generation."""
        with self._lock:
            stored = self.stat(bucket, name, generation, preconditions)
            return stored, self._get_bytes(bucket, stored.generation)

    def read(self, bucket: str, name: str) -> bytes:
        """The bytes of the live generation of `bucket`/`name` (NOT_FOUND when either is missing)."""
        return self.read_object(bucket, name)[1]

    def list_objects(
        self,
        bucket: str,
        *,
        prefix: str = "",
        delimiter: str = "",
        start_offset: str = "",
        end_offset: str = "",
        max_results: int = MAX_LIST_RESULTS,
        page_token: str = "",
    ) -> tuple[list[StoredObject], list[str], str]:
        """(objects, prefixes, next page token) in name order; with a delimiter, deeper names fold into prefixes."""
        if max_results < 1:
            raise bad_request(f"Invalid value for maxResults: {max_results}")
        after = ""
        if page_token:
            try:
                after = base64.urlsafe_b64decode(page_token.encode()).decode()
            except ValueError:
                raise bad_request(f"Invalid page token: {page_token}") from None
        with self._lock:
            self.get_bucket(bucket)
            names = sorted(self._objects[bucket])
            objects = dict(self._objects[bucket])
        entries: list[tuple[str, StoredObject | None]] = []  # (name or prefix, object or None for a prefix)
        seen_prefixes: set[str] = set()
        for name in names:
            if not name.startswith(prefix) or name < start_offset or (end_offset and name >= end_offset):
                continue
            cut = name.find(delimiter, len(prefix)) if delimiter else -1
            if cut >= 0:
                folded = name[: cut + len(delimiter)]
                if folded not in seen_prefixes:
                    seen_prefixes.add(folded)
                    entries.append((folded, None))
            else:
                entries.append((name, objects[name]))
        entries = [e for e in entries if e[0] > after]
        page = entries[:max_results]
        next_token = base64.urlsafe_b64encode(page[-1][0].encode()).decode() if len(entries) > max_results else ""
        return [o for _, o in page if o is not None], [n for n, o in page if o is None], next_token

    def delete_object(
        self,
        bucket: str,
        name: str,
        generation: int | None = None,
        preconditions: Preconditions = NO_PRECONDITIONS,
    ) -> None:
        """Delete the object and its bytes."""
        with self._lock:
            current = self.stat(bucket, name, generation, preconditions)
            del self._objects[bucket][name]
            self._drop_bytes(bucket, current.generation)
        self._persist()

    # -- resumable uploads --------------------------------------------------------------------------------------

    def start_upload(
        self,
        bucket: str,
        name: str,
        *,
        content_type: str,
        extra: dict[str, Any],
        total: int | None,
        preconditions: Preconditions = NO_PRECONDITIONS,
    ) -> str:
        """Open a resumable upload session; its id goes into the session URI."""
        _check_object_name(name)
        with self._lock:
            self.get_bucket(bucket)
            preconditions.check(self._objects[bucket].get(name))
            upload_id = secrets.token_urlsafe(24)
            self._sessions[upload_id] = _Session(bucket, name, content_type, extra, preconditions, total)
        return upload_id

    def upload_chunk(
        self,
        upload_id: str,
        start: int | None,
        chunk: bytes,
        total: int | None,
        *,
        expected_md5: str | None = None,
        expected_crc32c: str | None = None,
    ) -> ChunkResult:
        """Add `chunk` at offset `start` (None: a status query); once `total` bytes are in, the object is written.

        Bytes already received may be sent again (a client retrying a chunk): only the new part is kept.
        """
        with self._lock:
            session = self._sessions.get(upload_id)
            if session is None:
                raise StorageError(
                    grpc.StatusCode.NOT_FOUND, 404, "notFound", "The requested upload session was not found."
                )
            if total is not None:
                if session.total is not None and session.total != total:
                    raise bad_request(f"The upload's total size changed from {session.total} to {total}.")
                session.total = total
            received = len(session.data)
            if start is not None:
                if start > received:
                    raise bad_request(
                        f"Invalid request. The chunk starts at byte {start} but only {received} bytes were received."
                    )
                session.data += chunk[received - start :]
            if session.total is not None and len(session.data) > session.total:
                raise bad_request(f"The upload has more bytes ({len(session.data)}) than its total ({session.total}).")
            if session.total is None or len(session.data) < session.total:
                return ChunkResult(len(session.data))
            del self._sessions[upload_id]
        stored = self.write(
            session.bucket,
            session.name,
            bytes(session.data),
            content_type=session.content_type,
            extra=session.extra,
            preconditions=session.preconditions,
            expected_md5=expected_md5,
            expected_crc32c=expected_crc32c,
        )
        return ChunkResult(stored.size, stored)

    def cancel_upload(self, upload_id: str) -> bool:
        """Drop an upload session; False when there was none."""
        with self._lock:
            return self._sessions.pop(upload_id, None) is not None

    # -- persistence --------------------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Metadata as JSON-able data; bytes only when there is no blob_dir to keep them in."""
        with self._lock:
            data: dict[str, Any] = {
                "last_generation": self._last_generation,
                "buckets": [asdict(b) for b in self._buckets.values()],
                "objects": [asdict(o) for objects in self._objects.values() for o in objects.values()],
            }
            if self._blob_dir is None:
                # Nothing is written to disk without a blob_dir, but a snapshot must still restore completely.
                data["bytes"] = [
                    {"bucket": b, "generation": g, "data": base64.b64encode(v).decode()}
                    for (b, g), v in self._memory.items()
                ]
        return data

    def restore(self, data: dict[str, Any]) -> None:
        """Replace the whole state with a `snapshot()`; upload sessions start empty."""
        buckets = {b["name"]: StoredBucket(**b) for b in data.get("buckets", [])}
        objects: dict[str, dict[str, StoredObject]] = {name: {} for name in buckets}
        for item in data.get("objects", []):
            stored = StoredObject(**item)
            objects[stored.bucket][stored.name] = stored
        memory = {(b["bucket"], b["generation"]): base64.b64decode(b["data"]) for b in data.get("bytes", [])}
        with self._lock:
            self._buckets = buckets
            self._objects = objects
            self._memory = memory
            self._last_generation = int(data.get("last_generation", 0))
            self._sessions = {}


def _check_object_name(name: str) -> None:
    encoded = name.encode()
    if not encoded or len(encoded) > 1024 or name in (".", "..") or "\r" in name or "\n" in name:
        raise bad_request(f"The object name '{name}' is not valid: 1 to 1024 bytes, no CR or LF, not . or ..")
