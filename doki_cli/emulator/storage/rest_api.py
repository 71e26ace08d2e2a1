"""The Cloud Storage JSON API subset that google-cloud-storage and `gcloud builds submit` use, over HTTP.

Buckets: insert, get, list, delete. Objects: multipart, media and resumable uploads (a session URI in `Location`,
then PUT chunks with `Content-Range`, answered 308 with `Range` until the last), metadata, downloads honouring
`Range`, list with prefix and delimiter, delete. Object names arrive URL-encoded in paths (`source%2F1.tgz`).
Routes name the google.storage.v2 method they stand for, so faults and call counts apply as for gRPC services.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Callable
from typing import Any

from doki_cli.emulator.rest import Request, Response, Router
from doki_cli.emulator.storage.state import (
    WRITABLE_OBJECT_FIELDS,
    Buckets,
    ChunkResult,
    Preconditions,
    StoredBucket,
    StoredObject,
    bad_request,
)

RPC = "google.storage.v2.Storage"
_BUCKET = r"/b/(?P<bucket>[^/]+)"
_OBJECTS = _BUCKET + r"/o"
# Names are URL-encoded by the clients, but an unencoded "/" in a name still means the same object.
_OBJECT = _OBJECTS + r"/(?P<object>.+)"
_CONTENT_RANGE = re.compile(r"bytes (?:(?P<start>\d+)-(?P<end>\d+)|\*)/(?:(?P<total>\d+)|\*)")
_RANGE = re.compile(r"bytes=(?P<start>\d*)-(?P<end>\d*)")


def _base_url(request: Request) -> str:
    """Where the client reached us: links in resources must point back here, not at Google."""
    return "http://" + request.headers.get("host", "127.0.0.1")


def _int_arg(request: Request, name: str) -> int | None:
    value = request.arg(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise bad_request(f"Invalid value for {name}: {value}") from None


def _preconditions(request: Request) -> Preconditions:
    return Preconditions(
        if_generation_match=_int_arg(request, "ifGenerationMatch"),
        if_metageneration_match=_int_arg(request, "ifMetagenerationMatch"),
    )


def bucket_json(bucket: StoredBucket, base: str) -> dict[str, Any]:
    """A bucket resource as the JSON API sends it."""
    data: dict[str, Any] = {
        "kind": "storage#bucket",
        "id": bucket.name,
        "selfLink": f"{base}/storage/v1/b/{bucket.name}",
        "name": bucket.name,
        "timeCreated": bucket.time_created,
        "updated": bucket.updated,
        "metageneration": "1",
        "location": bucket.location,
        "locationType": "multi-region",
        "storageClass": bucket.storage_class,
        "etag": "CAE=",
    }
    if bucket.labels:
        data["labels"] = dict(bucket.labels)
    return data


def object_json(stored: StoredObject, base: str) -> dict[str, Any]:
    """An object resource as the JSON API sends it (integers as strings, checksums in base64)."""
    quoted = urllib.parse.quote(stored.name, safe="")
    media = f"{base}/download/storage/v1/b/{stored.bucket}/o/{quoted}"
    return {
        "kind": "storage#object",
        "id": f"{stored.bucket}/{stored.name}/{stored.generation}",
        "selfLink": f"{base}/storage/v1/b/{stored.bucket}/o/{quoted}",
        "mediaLink": f"{media}?generation={stored.generation}&alt=media",
        "name": stored.name,
        "bucket": stored.bucket,
        "generation": str(stored.generation),
        "metageneration": str(stored.metageneration),
        "contentType": stored.content_type,
        "storageClass": "STANDARD",
        "size": str(stored.size),
        "md5Hash": stored.md5_hash,
        "crc32c": stored.crc32c,
        "etag": f"CK{stored.generation:x}EAE=",
        "timeCreated": stored.time_created,
        "updated": stored.updated,
        "timeStorageClassUpdated": stored.time_created,
        **stored.extra,
    }


def _expected_hashes(header: str | None) -> tuple[str | None, str | None]:
    """(md5, crc32c) from an `X-Goog-Hash: crc32c=...,md5=...` header."""
    md5 = crc = None
    for part in (header or "").split(","):
        kind, _, value = part.strip().partition("=")
        # The base64 values end in "=" themselves: partition keeps everything after the first one.
        if kind == "md5":
            md5 = value
        elif kind == "crc32c":
            crc = value
    return md5, crc


def _multipart(request: Request) -> tuple[dict[str, Any], str, bytes]:
    """(metadata, media content type, media bytes) of a multipart/related upload body."""
    content_type = request.headers.get("content-type", "")
    # apitools (gcloud) quotes the boundary with single quotes, others with double quotes or not at all.
    match = re.search(r"""boundary=(["']?)([^"';]+)\1""", content_type)
    if not content_type.startswith("multipart/related") or match is None:
        raise bad_request("uploadType=multipart needs a multipart/related body with a boundary.")
    delimiter = b"--" + match.group(2).encode()
    parts = request.body.split(delimiter)
    # parts: preamble, metadata part, media part, "--" epilogue. Line ends are CRLF (RFC 2046) or LF (some clients).
    if len(parts) < 4 or not parts[3].startswith(b"--"):
        raise bad_request("A multipart upload needs exactly two parts: JSON metadata, then the media.")
    newline = b"\r\n" if parts[1].startswith(b"\r\n") else b"\n"

    def split(part: bytes) -> tuple[dict[str, str], bytes]:
        part = part.removeprefix(newline).removesuffix(newline)
        head, separator, content = part.partition(newline + newline)
        if not separator:
            raise bad_request("A part of the multipart upload has no blank line after its headers.")
        headers = {}
        for line in head.decode("latin-1").split(newline.decode()):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return headers, content

    _, metadata_bytes = split(parts[1])
    media_headers, media = split(parts[2])
    try:
        metadata = json.loads(metadata_bytes or b"{}")
    except ValueError as exc:
        raise bad_request(f"The metadata part is not JSON: {exc}") from None
    if not isinstance(metadata, dict):
        raise bad_request("The metadata part must be a JSON object.")
    return metadata, media_headers.get("content-type", ""), media


def add_routes(router: Router, buckets: Buckets) -> None:
    """Every route of the JSON API subset, each named after its google.storage.v2 method."""
    # -- buckets --------------------------------------------------------------------------------------------------

    def insert_bucket(request: Request) -> Response:
        body = request.json()
        bucket = buckets.create_bucket(
            request.arg("project") or "",
            str(body.get("name", "")),
            location=str(body.get("location") or "US"),
            storage_class=str(body.get("storageClass") or "STANDARD"),
            labels=body.get("labels"),
        )
        return Response.json(bucket_json(bucket, _base_url(request)))

    def list_buckets(request: Request) -> Response:
        found = buckets.list_buckets(request.arg("project") or "", request.arg("prefix") or "")
        items = [bucket_json(b, _base_url(request)) for b in found]
        return Response.json({"kind": "storage#buckets", **({"items": items} if items else {})})

    def get_bucket(request: Request) -> Response:
        return Response.json(bucket_json(buckets.get_bucket(request.params["bucket"]), _base_url(request)))

    def delete_bucket(request: Request) -> Response:
        buckets.delete_bucket(request.params["bucket"])
        return Response(204)

    # -- objects --------------------------------------------------------------------------------------------------

    def list_objects(request: Request) -> Response:
        objects, prefixes, next_token = buckets.list_objects(
            request.params["bucket"],
            prefix=request.arg("prefix") or "",
            delimiter=request.arg("delimiter") or "",
            start_offset=request.arg("startOffset") or "",
            end_offset=request.arg("endOffset") or "",
            max_results=_int_arg(request, "maxResults") or 1000,
            page_token=request.arg("pageToken") or "",
        )
        data: dict[str, Any] = {"kind": "storage#objects"}
        if objects:
            data["items"] = [object_json(o, _base_url(request)) for o in objects]
        if prefixes:
            data["prefixes"] = prefixes
        if next_token:
            data["nextPageToken"] = next_token
        return Response.json(data)

    def get_object(request: Request) -> Response:
        if request.arg("alt") == "media":
            return download(request)
        stored = buckets.stat(
            request.params["bucket"],
            request.params["object"],
            _int_arg(request, "generation"),
            _preconditions(request),
        )
        return Response.json(object_json(stored, _base_url(request)))

    def download(request: Request) -> Response:
        stored, data = buckets.read_object(
            request.params["bucket"],
            request.params["object"],
            _int_arg(request, "generation"),
            _preconditions(request),
        )
        headers = {
            "Content-Type": stored.content_type,
            "X-Goog-Generation": str(stored.generation),
            "X-Goog-Metageneration": str(stored.metageneration),
            # The hashes of the whole object, on ranged answers too, as Google sends them.
            "X-Goog-Hash": f"crc32c={stored.crc32c},md5={stored.md5_hash}",
            "X-Goog-Stored-Content-Length": str(stored.size),
            "X-Goog-Stored-Content-Encoding": "identity",
            "Accept-Ranges": "bytes",
        }
        wanted = request.headers.get("range")
        if not wanted:
            return Response(200, data, headers)
        match = _RANGE.fullmatch(wanted.strip())
        if match is None or not (match["start"] or match["end"]):
            return Response(200, data, headers)  # an unparseable Range is ignored, as HTTP says
        size = len(data)
        if match["start"]:
            start = int(match["start"])
            end = min(int(match["end"]), size - 1) if match["end"] else size - 1
        else:
            start, end = max(size - int(match["end"]), 0), size - 1
        if start >= size or start > end:
            error = bad_request("The requested range cannot be satisfied.", reason="requestedRangeNotSatisfiable")
            return Response(
                416, json.dumps(error.rest_body()).encode(), {"Content-Range": f"bytes */{size}", **headers}
            )
        return Response(206, data[start : end + 1], {**headers, "Content-Range": f"bytes {start}-{end}/{size}"})

    def delete_object(request: Request) -> Response:
        buckets.delete_object(
            request.params["bucket"],
            request.params["object"],
            _int_arg(request, "generation"),
            _preconditions(request),
        )
        return Response(204)

    # -- uploads --------------------------------------------------------------------------------------------------

    def upload(request: Request) -> Response:
        kind = request.arg("uploadType")
        if kind == "multipart":
            metadata, media_type, data = _multipart(request)
            return write(request, metadata, media_type, data)
        if kind == "media":
            return write(request, {}, request.headers.get("content-type", ""), request.body)
        if kind == "resumable":
            return start_resumable(request)
        raise bad_request(f"Invalid uploadType {kind!r}: use media, multipart or resumable.")

    def write(request: Request, metadata: dict[str, Any], media_type: str, data: bytes) -> Response:
        name = str(metadata.get("name") or request.arg("name") or "")
        if not name:
            raise bad_request("Required parameter: name", reason="required")
        stored = buckets.write(
            request.params["bucket"],
            name,
            data,
            content_type=str(metadata.get("contentType") or media_type or "application/octet-stream"),
            extra={k: v for k, v in metadata.items() if k in WRITABLE_OBJECT_FIELDS},
            preconditions=_preconditions(request),
            expected_md5=metadata.get("md5Hash"),
            expected_crc32c=metadata.get("crc32c"),
        )
        return Response.json(object_json(stored, _base_url(request)))

    def start_resumable(request: Request) -> Response:
        metadata = request.json()
        name = str(metadata.get("name") or request.arg("name") or "")
        if not name:
            raise bad_request("Required parameter: name", reason="required")
        total = request.headers.get("x-upload-content-length")
        content_type = metadata.get("contentType") or request.headers.get("x-upload-content-type")
        bucket = request.params["bucket"]
        upload_id = buckets.start_upload(
            bucket,
            name,
            content_type=str(content_type or "application/octet-stream"),
            extra={k: v for k, v in metadata.items() if k in WRITABLE_OBJECT_FIELDS},
            total=int(total) if total and total.isdigit() else None,
            preconditions=_preconditions(request),
        )
        session = f"{_base_url(request)}/upload/storage/v1/b/{bucket}/o?uploadType=resumable&upload_id={upload_id}"
        return Response(200, b"", {"Location": session, "X-GUploader-UploadID": upload_id})

    def put_chunk(request: Request) -> Response:
        upload_id = request.arg("upload_id")
        if not upload_id:
            raise bad_request("Required parameter: upload_id", reason="required")
        content_range = request.headers.get("content-range")
        start: int | None = 0
        total: int | None = len(request.body)  # no Content-Range: the body is the whole object
        if content_range is not None:
            match = _CONTENT_RANGE.fullmatch(content_range.strip())
            if match is None:
                raise bad_request(f"Invalid Content-Range header: {content_range}")
            start = int(match["start"]) if match["start"] is not None else None
            total = int(match["total"]) if match["total"] is not None else None
            if start is not None and int(match["end"]) - start + 1 != len(request.body):
                raise bad_request(f"Content-Range {content_range} does not match the {len(request.body)} bytes sent.")
        md5, crc = _expected_hashes(request.headers.get("x-goog-hash"))
        result = buckets.upload_chunk(upload_id, start, request.body, total, expected_md5=md5, expected_crc32c=crc)
        return chunk_response(request, result)

    def chunk_response(request: Request, result: ChunkResult) -> Response:
        if result.finished is not None:
            return Response.json(object_json(result.finished, _base_url(request)))
        # 308 "Resume Incomplete": Range says what is persisted; no Range when nothing is yet.
        headers = {"Range": f"bytes=0-{result.received - 1}"} if result.received else {}
        return Response(308, b"", headers)

    def cancel(request: Request) -> Response:
        if not buckets.cancel_upload(request.arg("upload_id") or ""):
            raise bad_request("The requested upload session was not found.", reason="notFound")
        return Response(499)

    routes: list[tuple[str, str, Callable[[Request], Response], str]] = [
        ("GET", r"/storage/v1/b", list_buckets, "ListBuckets"),
        ("POST", r"/storage/v1/b", insert_bucket, "CreateBucket"),
        ("GET", r"/storage/v1" + _BUCKET, get_bucket, "GetBucket"),
        ("DELETE", r"/storage/v1" + _BUCKET, delete_bucket, "DeleteBucket"),
        ("GET", r"/storage/v1" + _OBJECTS, list_objects, "ListObjects"),
        ("GET", r"/storage/v1" + _OBJECT, get_object, "GetObject"),
        ("DELETE", r"/storage/v1" + _OBJECT, delete_object, "DeleteObject"),
        ("GET", r"/download/storage/v1" + _OBJECT, download, "ReadObject"),
        ("POST", r"/upload/storage/v1" + _OBJECTS, upload, "WriteObject"),
        ("PUT", r"/upload/storage/v1" + _OBJECTS, put_chunk, "WriteObject"),
        ("DELETE", r"/upload/storage/v1" + _OBJECTS, cancel, "CancelResumableWrite"),
    ]
    for method, pattern, handler, rpc in routes:
        router.add(method, pattern, handler, rpc=f"{RPC}/{rpc}")
