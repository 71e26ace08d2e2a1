"""Cloud Storage's JSON API subset, driven by the official google-cloud-storage client and by raw HTTP where the
client hides the wire (resumable sessions, ranges, error bodies)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any

import google_crc32c
import httpx
import pytest
from google.api_core import exceptions

from doki_cli.emulator.server import Emulator, EmulatorConfig
from doki_cli.gcp.clients import ClientFactory

BUCKET = "p_cloudbuild"
WRITE = "/google.storage.v2.Storage/WriteObject"


@pytest.fixture
def gcs(clients: ClientFactory) -> Any:
    return clients.storage("p")


@pytest.fixture
def bucket(gcs: Any) -> Any:
    return gcs.create_bucket(BUCKET)


def _md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()


def _crc32c(data: bytes) -> str:
    return base64.b64encode(google_crc32c.value(data).to_bytes(4, "big")).decode()


def test_a_created_bucket_reads_back_and_lists_in_its_project(gcs: Any, bucket: Any) -> None:
    assert (bucket.name, bucket.location, bucket.storage_class) == (BUCKET, "US", "STANDARD")
    assert gcs.get_bucket(BUCKET).time_created == bucket.time_created
    gcs.create_bucket("other-bucket", project="other")
    assert [b.name for b in gcs.list_buckets()] == [BUCKET]


def test_creating_a_bucket_twice_is_a_conflict(gcs: Any, bucket: Any) -> None:
    with pytest.raises(exceptions.Conflict, match="you already own it"):
        gcs.create_bucket(BUCKET)


def test_a_bad_bucket_name_is_refused(gcs: Any) -> None:
    with pytest.raises(exceptions.BadRequest, match="Invalid bucket name: 'No_Caps'"):
        gcs.create_bucket("No_Caps")


def test_a_small_upload_goes_multipart_and_reads_back_with_its_metadata(bucket: Any, emulator: Emulator) -> None:
    data = b"source tarball bytes"
    blob = bucket.blob("source/123.tgz")
    blob.upload_from_string(data, content_type="application/gzip")
    assert emulator.faults.calls[WRITE] == 1  # one multipart request
    fetched = bucket.get_blob("source/123.tgz")
    assert (fetched.size, fetched.md5_hash, fetched.crc32c, fetched.content_type) == (
        len(data),
        _md5(data),
        _crc32c(data),
        "application/gzip",
    )
    assert fetched.generation == blob.generation
    assert fetched.metageneration == 1
    assert fetched.time_created is not None
    assert fetched.download_as_bytes() == data
    assert emulator.buckets.read(BUCKET, "source/123.tgz") == data


def test_a_large_upload_of_unknown_size_goes_resumable_in_chunks(bucket: Any, emulator: Emulator) -> None:
    data = os.urandom(600_000)
    blob = bucket.blob("source/big.tgz")
    blob.chunk_size = 256 * 1024
    # Without a size the client cannot choose multipart, so it opens a session and PUTs 256 KiB chunks.
    blob.upload_from_file(io.BytesIO(data))
    assert emulator.faults.calls[WRITE] == 1 + 3  # the session, then three chunks
    assert blob.size == 600_000
    assert bucket.blob("source/big.tgz").download_as_bytes() == data
    assert emulator.buckets.read(BUCKET, "source/big.tgz") == data


def test_a_ranged_download_returns_exactly_those_bytes(bucket: Any) -> None:
    data = bytes(range(256)) * 4
    bucket.blob("log.txt").upload_from_string(data)
    assert bucket.blob("log.txt").download_as_bytes(start=10, end=19) == data[10:20]
    assert bucket.blob("log.txt").download_as_bytes(start=1000) == data[1000:]


def test_an_empty_object_downloads_as_no_bytes(bucket: Any) -> None:
    bucket.blob("empty").upload_from_string(b"")
    assert bucket.blob("empty").download_as_bytes() == b""


def test_a_new_upload_replaces_the_object_with_a_higher_generation(bucket: Any, emulator: Emulator) -> None:
    first = bucket.blob("x")
    first.upload_from_string(b"one")
    second = bucket.blob("x")
    second.upload_from_string(b"two")
    assert second.generation > first.generation
    assert emulator.buckets.read(BUCKET, "x") == b"two"


def test_listing_with_a_prefix_and_a_delimiter(gcs: Any, bucket: Any) -> None:
    for name in ("source/a.tgz", "source/b.tgz", "source/deep/c.tgz", "logs/log-1.txt"):
        bucket.blob(name).upload_from_string(name.encode())
    assert [b.name for b in gcs.list_blobs(BUCKET, prefix="source/")] == [
        "source/a.tgz",
        "source/b.tgz",
        "source/deep/c.tgz",
    ]
    listing = gcs.list_blobs(BUCKET, prefix="source/", delimiter="/")
    assert [b.name for b in listing] == ["source/a.tgz", "source/b.tgz"]
    assert listing.prefixes == {"source/deep/"}


def test_listing_pages_through_every_object(gcs: Any, bucket: Any) -> None:
    for index in range(5):
        bucket.blob(f"o{index}").upload_from_string(b"x")
    pages = gcs.list_blobs(BUCKET, max_results=None, page_size=2).pages
    assert [[b.name for b in page] for page in pages] == [["o0", "o1"], ["o2", "o3"], ["o4"]]


def test_a_missing_object_or_bucket_is_not_found(gcs: Any, bucket: Any) -> None:
    with pytest.raises(exceptions.NotFound, match="No such object: p_cloudbuild/nope"):
        bucket.blob("nope").download_as_bytes()
    assert bucket.get_blob("nope") is None
    with pytest.raises(exceptions.NotFound, match=r"The specified bucket does not exist\."):
        gcs.get_bucket("no-such-bucket")


def test_buckets_read_of_a_missing_object_raises_not_found(emulator: Emulator, bucket: Any) -> None:
    with pytest.raises(Exception, match="No such object: p_cloudbuild/nope") as caught:
        emulator.buckets.read(BUCKET, "nope")
    assert getattr(caught.value, "status_name", None) == "NOT_FOUND"


def test_deleting_objects_then_the_bucket(gcs: Any, bucket: Any) -> None:
    bucket.blob("a").upload_from_string(b"a")
    with pytest.raises(exceptions.Conflict, match=r"The bucket you tried to delete is not empty\."):
        bucket.delete()
    bucket.blob("a").delete()
    with pytest.raises(exceptions.NotFound):
        bucket.blob("a").delete()
    bucket.delete()
    assert list(gcs.list_buckets()) == []


def test_an_upload_with_a_generation_precondition_that_fails_is_412(bucket: Any) -> None:
    bucket.blob("a").upload_from_string(b"a")
    with pytest.raises(exceptions.PreconditionFailed, match="pre-conditions you specified did not hold"):
        bucket.blob("a").upload_from_string(b"b", if_generation_match=0)
    current = bucket.get_blob("a")
    bucket.blob("a").upload_from_string(b"b", if_generation_match=current.generation)
    assert bucket.blob("a").download_as_bytes() == b"b"


def test_a_multipart_upload_with_a_wrong_checksum_is_refused(emulator: Emulator, bucket: Any) -> None:
    boundary = "==boundary=="
    body = (
        f"--{boundary}\r\ncontent-type: application/json; charset=UTF-8\r\n\r\n"
        + json.dumps({"name": "a", "crc32c": "AAAAAA=="})
        + f"\r\n--{boundary}\r\ncontent-type: text/plain\r\n\r\ndata\r\n--{boundary}--"
    ).encode()
    answer = httpx.post(
        f"{emulator.rest_url}/upload/storage/v1/b/{BUCKET}/o?uploadType=multipart",
        content=body,
        headers={"Content-Type": f'multipart/related; boundary="{boundary}"'},
    )
    assert answer.status_code == 400
    assert answer.json() == {
        "error": {
            "code": 400,
            "message": f'Provided CRC32C "AAAAAA==" doesn\'t match calculated CRC32C "{_crc32c(b"data")}".',
            "errors": [
                {
                    "message": f'Provided CRC32C "AAAAAA==" doesn\'t match calculated CRC32C "{_crc32c(b"data")}".',
                    "domain": "global",
                    "reason": "invalid",
                }
            ],
        }
    }


def test_a_multipart_body_with_lf_line_ends_and_a_single_quoted_boundary_as_gcloud_sends(
    emulator: Emulator, bucket: Any
) -> None:
    boundary = "===============1234=="
    body = (
        f"--{boundary}\nContent-Type: application/json\nMIME-Version: 1.0\n\n"
        + json.dumps({"bucket": BUCKET, "contentType": "text/plain", "name": "dir/f.txt"})
        + f"\n--{boundary}\nContent-Type: text/plain\nContent-Transfer-Encoding: binary\n\nhi\n\n--{boundary}--\n"
    ).encode()
    answer = httpx.post(
        f"{emulator.rest_url}/upload/storage/v1/b/{BUCKET}/o?alt=json&uploadType=multipart",
        content=body,
        headers={"Content-Type": f"multipart/related; boundary='{boundary}'"},
    )
    assert answer.status_code == 200
    assert (answer.json()["name"], answer.json()["size"], answer.json()["contentType"]) == (
        "dir/f.txt",
        "3",
        "text/plain",
    )
    assert emulator.buckets.read(BUCKET, "dir/f.txt") == b"hi\n"


def test_a_media_upload_takes_the_name_from_the_query(emulator: Emulator, bucket: Any) -> None:
    answer = httpx.post(
        f"{emulator.rest_url}/upload/storage/v1/b/{BUCKET}/o",
        params={"uploadType": "media", "name": "source/1.tgz"},
        content=b"tgz",
        headers={"Content-Type": "application/gzip"},
    )
    assert answer.json()["name"] == "source/1.tgz"
    assert answer.json()["mediaLink"].startswith(f"{emulator.rest_url}/download/storage/v1/b/{BUCKET}/o/source%2F1.tgz")
    assert emulator.buckets.read(BUCKET, "source/1.tgz") == b"tgz"


def test_a_resumable_session_reports_its_progress_with_308_and_range(emulator: Emulator, bucket: Any) -> None:
    started = httpx.post(
        f"{emulator.rest_url}/upload/storage/v1/b/{BUCKET}/o?uploadType=resumable",
        json={"name": "chunked"},
        headers={"X-Upload-Content-Type": "text/plain"},
    )
    session = started.headers["location"]
    assert session.startswith(f"{emulator.rest_url}/upload/storage/v1/b/{BUCKET}/o?uploadType=resumable&upload_id=")
    nothing_yet = httpx.put(session, headers={"Content-Range": "bytes */*"})
    assert (nothing_yet.status_code, nothing_yet.headers.get("range")) == (308, None)
    first = httpx.put(session, content=b"hello ", headers={"Content-Range": "bytes 0-5/*"})
    assert (first.status_code, first.headers["range"]) == (308, "bytes=0-5")
    # A retried chunk overlapping what arrived already only adds the new bytes.
    last = httpx.put(session, content=b" world", headers={"Content-Range": "bytes 5-10/11"})
    assert last.status_code == 200
    assert (last.json()["size"], last.json()["contentType"]) == ("11", "text/plain")
    assert emulator.buckets.read(BUCKET, "chunked") == b"hello world"
    assert httpx.put(session, headers={"Content-Range": "bytes */*"}).status_code == 404


def test_a_download_past_the_end_is_416_with_the_size(emulator: Emulator, bucket: Any) -> None:
    bucket.blob("log-1.txt").upload_from_string(b"12345")
    url = f"{emulator.rest_url}/storage/v1/b/{BUCKET}/o/log-1.txt?alt=media"
    tail = httpx.get(url, headers={"Range": "bytes=3-"})
    assert (tail.status_code, tail.content, tail.headers["content-range"]) == (206, b"45", "bytes 3-4/5")
    past = httpx.get(url, headers={"Range": "bytes=5-"})
    assert (past.status_code, past.headers["content-range"]) == (416, "bytes */5")


def test_objects_and_their_bytes_survive_a_restart_with_the_bytes_kept_out_of_the_json(tmp_path: Path) -> None:
    config = EmulatorConfig(state_dir=tmp_path / "state")
    data = os.urandom(4096)
    with Emulator(config) as first:
        gcs = ClientFactory(first.grpc_address, first.rest_url).storage("p")
        blob = gcs.create_bucket(BUCKET).blob("source/1.tgz")
        blob.upload_from_string(data)
        generation = blob.generation
    saved = (tmp_path / "state" / "storage.json").read_text()
    assert base64.b64encode(data[:48]).decode() not in saved
    assert list((tmp_path / "state" / "storage-objects" / BUCKET).iterdir()) == [
        tmp_path / "state" / "storage-objects" / BUCKET / str(generation)
    ]
    with Emulator(config) as second:
        gcs = ClientFactory(second.grpc_address, second.rest_url).storage("p")
        restored = gcs.bucket(BUCKET).get_blob("source/1.tgz")
        assert (restored.generation, restored.md5_hash) == (generation, _md5(data))
        assert restored.download_as_bytes() == data
        assert second.buckets.read(BUCKET, "source/1.tgz") == data
        # Generations keep increasing after a restart.
        again = gcs.bucket(BUCKET).blob("source/2.tgz")
        again.upload_from_string(b"x")
        assert again.generation > generation


def test_an_injected_fault_on_uploads_reaches_the_client(emulator: Emulator, bucket: Any) -> None:
    emulator.faults.fail("WriteObject", "PERMISSION_DENIED", message="no write access")
    with pytest.raises(exceptions.Forbidden, match="no write access"):
        bucket.blob("a").upload_from_string(b"a")
