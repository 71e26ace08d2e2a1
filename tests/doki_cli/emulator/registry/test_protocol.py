"""The emulator's Docker registry over HTTP, as the distribution spec describes it: auth, uploads (monolithic,
chunked, streamed), digests checked, manifests and indexes, tags, mounts, and its content surviving a restart."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from google.cloud import artifactregistry_v1 as ar

from doki_cli.emulator.server import Emulator, EmulatorConfig
from doki_cli.gcp.clients import ClientFactory

NAME = "us-central1-docker.pkg.dev/p/apps/app"
REPOSITORY = "projects/p/locations/us-central1/repositories/apps"
AUTH = ("oauth2accesstoken", "any-token")
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def create_repository(clients: ClientFactory, repository_id: str = "apps") -> None:
    clients.artifact_registry().create_repository(
        parent="projects/p/locations/us-central1",
        repository_id=repository_id,
        repository=ar.Repository(format_=ar.Repository.Format.DOCKER),
    ).result(timeout=10)


@pytest.fixture
def http(emulator: Emulator, clients: ClientFactory) -> Iterator[httpx.Client]:
    create_repository(clients)
    with httpx.Client(base_url=f"http://{emulator.registry_address}", auth=AUTH) as client:
        yield client


def upload(http: httpx.Client, data: bytes, name: str = NAME) -> str:
    """One blob, monolithically; its digest."""
    digest = digest_of(data)
    response = http.post(f"/v2/{name}/blobs/uploads/", params={"digest": digest}, content=data)
    assert response.status_code == 201, response.text
    return digest


def image_manifest(http: httpx.Client, media_type: str = DOCKER_MANIFEST, layer: bytes = b"layer") -> bytes:
    config, layer_digest = upload(http, b'{"architecture": "amd64", "os": "linux"}'), upload(http, layer)
    document = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": config, "size": 41},
        "layers": [
            {"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": layer_digest, "size": 5}
        ],
    }
    return json.dumps(document).encode()


def errors_of(response: httpx.Response) -> list[str]:
    return [error["code"] for error in response.json()["errors"]]


def test_the_base_endpoint_challenges_for_basic_auth_and_accepts_oauth2accesstoken(emulator: Emulator) -> None:
    base = f"http://{emulator.registry_address}/v2/"
    anonymous = httpx.get(base)
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"] == 'Basic realm="doki emulator registry"'
    assert anonymous.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    assert errors_of(anonymous) == ["UNAUTHORIZED"]
    assert httpx.get(base, auth=AUTH).status_code == 200


@pytest.mark.parametrize("auth", [("someone", "a-token"), ("oauth2accesstoken", "")])
def test_another_username_or_an_empty_token_is_unauthorized(emulator: Emulator, auth: tuple[str, str]) -> None:
    response = httpx.get(f"http://{emulator.registry_address}/v2/", auth=auth)
    assert response.status_code == 401
    assert errors_of(response) == ["UNAUTHORIZED"]
    assert response.json()["errors"][0]["message"] == (
        f"authentication failed for user {auth[0]!r}: log in as oauth2accesstoken with an access token as the password"
    )


def test_a_name_whose_artifact_registry_repository_is_missing_is_name_unknown(http: httpx.Client) -> None:
    response = http.post("/v2/us-central1-docker.pkg.dev/p/nope/app/blobs/uploads/")
    assert response.status_code == 404
    assert response.json()["errors"] == [
        {
            "code": "NAME_UNKNOWN",
            "message": 'Repository "nope" not found',
            "detail": {"name": "us-central1-docker.pkg.dev/p/nope/app"},
        }
    ]


def test_a_name_that_is_no_artifact_registry_image_is_name_invalid(http: httpx.Client) -> None:
    response = http.get("/v2/library/alpine/tags/list")
    assert response.status_code == 400
    assert errors_of(response) == ["NAME_INVALID"]


def test_a_chunked_upload_assembles_its_chunks_and_the_blob_reads_back(http: httpx.Client) -> None:
    started = http.post(f"/v2/{NAME}/blobs/uploads/")
    assert started.status_code == 202
    location = started.headers["Location"]
    assert location == f"/v2/{NAME}/blobs/uploads/{started.headers['Docker-Upload-UUID']}"
    first = http.patch(location, content=b"hello ", headers={"Content-Range": "0-5"})
    assert (first.status_code, first.headers["Range"]) == (202, "0-5")
    # A body of unknown length goes out with chunked transfer encoding, as the engine sends layers.
    second = http.patch(location, content=iter([b"wor", b"ld"]))
    assert (second.status_code, second.headers["Range"]) == (202, "0-10")
    assert http.get(location).headers["Range"] == "0-10"
    digest = digest_of(b"hello world")
    done = http.put(location, params={"digest": digest})
    assert done.status_code == 201
    assert (done.headers["Location"], done.headers["Docker-Content-Digest"]) == (f"/v2/{NAME}/blobs/{digest}", digest)
    head = http.head(f"/v2/{NAME}/blobs/{digest}")
    assert (head.status_code, head.headers["Content-Length"]) == (200, "11")
    assert http.get(f"/v2/{NAME}/blobs/{digest}").content == b"hello world"


def test_a_chunk_that_does_not_start_where_the_upload_ends_is_refused(http: httpx.Client) -> None:
    location = http.post(f"/v2/{NAME}/blobs/uploads/").headers["Location"]
    http.patch(location, content=b"abc")
    response = http.patch(location, content=b"def", headers={"Content-Range": "5-7"})
    assert response.status_code == 416
    assert http.get(location).headers["Range"] == "0-2"


def test_an_upload_whose_content_does_not_match_its_digest_is_refused_and_discarded(http: httpx.Client) -> None:
    location = http.post(f"/v2/{NAME}/blobs/uploads/").headers["Location"]
    http.patch(location, content=b"real content")
    claimed = digest_of(b"other content")
    response = http.put(location, params={"digest": claimed})
    assert response.status_code == 400
    assert errors_of(response) == ["DIGEST_INVALID"]
    assert http.head(f"/v2/{NAME}/blobs/{claimed}").status_code == 404
    assert http.head(f"/v2/{NAME}/blobs/{digest_of(b'real content')}").status_code == 404
    assert errors_of(http.get(location)) == ["BLOB_UPLOAD_UNKNOWN"]


def test_a_monolithic_upload_with_the_wrong_digest_stores_nothing(http: httpx.Client) -> None:
    claimed = digest_of(b"something else")
    response = http.post(f"/v2/{NAME}/blobs/uploads/", params={"digest": claimed}, content=b"payload")
    assert errors_of(response) == ["DIGEST_INVALID"]
    assert http.head(f"/v2/{NAME}/blobs/{digest_of(b'payload')}").status_code == 404


def test_a_mount_of_a_known_blob_is_created_and_of_an_unknown_one_falls_back_to_an_upload(http: httpx.Client) -> None:
    digest = upload(http, b"shared layer")
    mounted = http.post(f"/v2/{NAME}/blobs/uploads/", params={"mount": digest, "from": "elsewhere/app"})
    assert (mounted.status_code, mounted.headers["Docker-Content-Digest"]) == (201, digest)
    unknown = http.post(f"/v2/{NAME}/blobs/uploads/", params={"mount": digest_of(b"nope"), "from": "elsewhere/app"})
    assert unknown.status_code == 202
    assert "Docker-Upload-UUID" in unknown.headers


def test_a_tagged_manifest_is_served_by_tag_and_digest_and_recorded_in_artifact_registry(
    http: httpx.Client, clients: ClientFactory
) -> None:
    body = image_manifest(http)
    put = http.put(f"/v2/{NAME}/manifests/v1", content=body, headers={"Content-Type": DOCKER_MANIFEST})
    assert put.status_code == 201
    digest = digest_of(body)
    assert (put.headers["Docker-Content-Digest"], put.headers["Location"]) == (digest, f"/v2/{NAME}/manifests/{digest}")
    for reference in ("v1", digest):
        got = http.get(f"/v2/{NAME}/manifests/{reference}")
        assert (got.content, got.headers["Content-Type"], got.headers["Docker-Content-Digest"]) == (
            body,
            DOCKER_MANIFEST,
            digest,
        )
    assert http.head(f"/v2/{NAME}/manifests/v1").headers["Content-Length"] == str(len(body))
    assert http.get(f"/v2/{NAME}/tags/list").json() == {"name": NAME, "tags": ["v1"]}
    (image,) = clients.artifact_registry().list_docker_images(parent=REPOSITORY)
    assert image.uri == f"{NAME}@{digest}"
    assert list(image.tags) == ["v1"]
    assert (image.media_type, image.image_size_bytes) == (DOCKER_MANIFEST, 46)


def test_an_oci_index_is_stored_once_its_manifests_are_there(http: httpx.Client, clients: ClientFactory) -> None:
    child = image_manifest(http, OCI_MANIFEST)
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [{"mediaType": OCI_MANIFEST, "digest": digest_of(child), "size": len(child)}],
        }
    ).encode()
    early = http.put(f"/v2/{NAME}/manifests/v2", content=index, headers={"Content-Type": OCI_INDEX})
    assert errors_of(early) == ["MANIFEST_BLOB_UNKNOWN"]
    child_put = http.put(
        f"/v2/{NAME}/manifests/{digest_of(child)}", content=child, headers={"Content-Type": OCI_MANIFEST}
    )
    assert child_put.status_code == 201
    assert http.put(f"/v2/{NAME}/manifests/v2", content=index, headers={"Content-Type": OCI_INDEX}).status_code == 201
    assert http.get(f"/v2/{NAME}/manifests/v2").headers["Content-Type"] == OCI_INDEX
    (image,) = clients.artifact_registry().list_docker_images(parent=REPOSITORY)  # the untagged child is not listed
    assert (image.uri, image.media_type, list(image.tags)) == (f"{NAME}@{digest_of(index)}", OCI_INDEX, ["v2"])


@pytest.mark.parametrize(
    ("document", "content_type", "code"),
    [
        (
            {
                "schemaVersion": 2,
                "mediaType": DOCKER_MANIFEST,
                "config": {"digest": "sha256:" + "0" * 64, "size": 1},
                "layers": [],
            },
            DOCKER_MANIFEST,
            "MANIFEST_BLOB_UNKNOWN",
        ),
        ({"schemaVersion": 1, "name": "x"}, "application/vnd.docker.distribution.manifest.v1+json", "MANIFEST_INVALID"),
        ({"schemaVersion": 2, "mediaType": DOCKER_MANIFEST, "layers": []}, DOCKER_MANIFEST, "MANIFEST_INVALID"),
        ({"schemaVersion": 2, "mediaType": OCI_MANIFEST}, DOCKER_MANIFEST, "MANIFEST_INVALID"),
    ],
)
def test_a_manifest_that_is_unsupported_malformed_or_refers_to_missing_blobs_is_refused(
    http: httpx.Client, clients: ClientFactory, document: dict[str, Any], content_type: str, code: str
) -> None:
    response = http.put(
        f"/v2/{NAME}/manifests/v1", content=json.dumps(document).encode(), headers={"Content-Type": content_type}
    )
    assert (response.status_code, errors_of(response)) == (400, [code])
    assert errors_of(http.get(f"/v2/{NAME}/manifests/v1")) == ["MANIFEST_UNKNOWN"]
    assert list(clients.artifact_registry().list_docker_images(parent=REPOSITORY)) == []


def test_a_manifest_put_under_a_digest_it_does_not_have_is_refused(http: httpx.Client) -> None:
    body = image_manifest(http)
    response = http.put(
        f"/v2/{NAME}/manifests/{digest_of(b'other')}", content=body, headers={"Content-Type": DOCKER_MANIFEST}
    )
    assert errors_of(response) == ["DIGEST_INVALID"]


def test_a_tag_moves_to_the_latest_manifest_pushed_under_it(http: httpx.Client, clients: ClientFactory) -> None:
    first, second = image_manifest(http, layer=b"one"), image_manifest(http, layer=b"two")
    for body in (first, second):
        http.put(f"/v2/{NAME}/manifests/latest", content=body, headers={"Content-Type": DOCKER_MANIFEST})
    assert http.get(f"/v2/{NAME}/manifests/latest").headers["Docker-Content-Digest"] == digest_of(second)
    tags = {image.uri: list(image.tags) for image in clients.artifact_registry().list_docker_images(parent=REPOSITORY)}
    assert tags == {f"{NAME}@{digest_of(first)}": [], f"{NAME}@{digest_of(second)}": ["latest"]}


def test_tags_are_listed_in_pages_with_a_link_to_the_next(http: httpx.Client) -> None:
    body = image_manifest(http)
    for tag in ("c", "a", "b"):
        http.put(f"/v2/{NAME}/manifests/{tag}", content=body, headers={"Content-Type": DOCKER_MANIFEST})
    page = http.get(f"/v2/{NAME}/tags/list", params={"n": 2})
    assert page.json()["tags"] == ["a", "b"]
    assert page.headers["Link"] == f'</v2/{NAME}/tags/list?n=2&last=b>; rel="next"'
    assert http.get(f"/v2/{NAME}/tags/list", params={"n": 2, "last": "b"}).json()["tags"] == ["c"]
    assert errors_of(http.get("/v2/us-central1-docker.pkg.dev/p/apps/never-pushed/tags/list")) == ["NAME_UNKNOWN"]


def test_blobs_manifests_and_tags_survive_a_restart(tmp_path: Any) -> None:
    config = EmulatorConfig(state_dir=tmp_path / "state")
    with Emulator(config) as first:
        create_repository(ClientFactory(first.grpc_address))
        with httpx.Client(base_url=f"http://{first.registry_address}", auth=AUTH) as http:
            body = image_manifest(http)
            http.put(f"/v2/{NAME}/manifests/v1", content=body, headers={"Content-Type": DOCKER_MANIFEST})
    with Emulator(config) as second, httpx.Client(base_url=f"http://{second.registry_address}", auth=AUTH) as http:
        assert http.get(f"/v2/{NAME}/manifests/v1").content == body
        assert http.get(f"/v2/{NAME}/blobs/{digest_of(b'layer')}").content == b"layer"


def test_without_a_state_directory_the_blobs_go_to_a_temporary_directory_removed_on_stop() -> None:
    with Emulator(EmulatorConfig()) as emulator:
        root = emulator.docker_registry.root
        assert (root / "blobs" / "sha256").is_dir()
    assert not root.exists()
