"""Secret Manager over REST: the official client's REST transport, and the raw requests gcloud sends."""

from __future__ import annotations

import base64
from typing import Any

import google_crc32c
import httpx
import pytest
from google.api_core import exceptions
from google.iam.v1 import policy_pb2

from doki_cli.emulator.projects import compute_default_account
from doki_cli.emulator.server import Emulator
from tests.doki_cli.emulator.secretmanager.support import PROJECT, make_secret

# An account that exists in every project (IAM policies name only accounts that exist).
P_DEFAULT_ACCOUNT = f"serviceAccount:{compute_default_account('p')}"


def test_the_rest_client_sees_what_grpc_wrote(sm: Any, rest_sm: Any) -> None:
    name = make_secret(sm, "token", b"one", b"two", labels={"env": "prod"})
    assert [s.name for s in rest_sm.list_secrets(parent=PROJECT)] == [name]
    assert rest_sm.get_secret(name=name) == sm.get_secret(name=name)
    answer = rest_sm.access_secret_version(name=f"{name}/versions/latest")
    assert (answer.name, answer.payload.data, answer.payload.data_crc32c) == (
        f"{name}/versions/2",
        b"two",
        google_crc32c.value(b"two"),
    )


def test_grpc_sees_what_the_rest_client_wrote(sm: Any, rest_sm: Any) -> None:
    name = make_secret(rest_sm, "token", b"one", labels={"env": "dev"})
    rest_sm.update_secret(secret={"name": name, "labels": {"env": "prod"}}, update_mask={"paths": ["labels"]})
    rest_sm.add_secret_version(parent=name, payload={"data": b"two"})
    rest_sm.disable_secret_version(name=f"{name}/versions/1")
    assert dict(sm.get_secret(name=name).labels) == {"env": "prod"}
    assert [(v.name.rsplit("/", 1)[1], v.state.name) for v in sm.list_secret_versions(parent=name)] == [
        ("2", "ENABLED"),
        ("1", "DISABLED"),
    ]
    assert sm.access_secret_version(name=f"{name}/versions/latest").payload.data == b"two"


def test_rest_pages_and_filters_like_grpc(rest_sm: Any) -> None:
    for secret_id in ("a", "b", "c"):
        make_secret(rest_sm, secret_id, labels={"keep": "yes" if secret_id != "b" else "no"})
    page = rest_sm.list_secrets(request={"parent": PROJECT, "page_size": 2})
    assert [s.name.rsplit("/", 1)[1] for s in page] == ["a", "b", "c"]
    kept = rest_sm.list_secrets(request={"parent": PROJECT, "filter": "labels.keep=yes"})
    assert [s.name.rsplit("/", 1)[1] for s in kept] == ["a", "c"]


def test_rest_errors_raise_the_same_exceptions_as_grpc_by_http_status(rest_sm: Any) -> None:
    make_secret(rest_sm, "token", b"one")
    with pytest.raises(exceptions.Conflict, match=r"Secret \[projects/p/secrets/token\] already exists."):
        make_secret(rest_sm, "token")
    with pytest.raises(exceptions.NotFound, match=r"Secret \[projects/p/secrets/nope\] not found."):
        rest_sm.get_secret(name="projects/p/secrets/nope")
    rest_sm.destroy_secret_version(name="projects/p/secrets/token/versions/1")
    # FAILED_PRECONDITION is HTTP 400 on Google's REST surface, so the REST client raises BadRequest.
    with pytest.raises(exceptions.BadRequest, match="is in DESTROYED state"):
        rest_sm.access_secret_version(name="projects/p/secrets/token/versions/1")


def test_rest_iam_round_trips_and_guards_with_the_etag(rest_sm: Any, emulator: Emulator) -> None:
    name = make_secret(rest_sm, "token")
    policy = rest_sm.get_iam_policy(request={"resource": name})
    stale = rest_sm.get_iam_policy(request={"resource": name})
    member = P_DEFAULT_ACCOUNT
    policy.bindings.append(policy_pb2.Binding(role="roles/secretmanager.secretAccessor", members=[member]))
    rest_sm.set_iam_policy(request={"resource": name, "policy": policy})
    assert emulator.secrets.can_access(name, member) is True
    stale.bindings.append(policy_pb2.Binding(role="roles/owner", members=["user:x@example.com"]))
    with pytest.raises(exceptions.Conflict, match="concurrent policy changes"):
        rest_sm.set_iam_policy(request={"resource": name, "policy": stale})
    granted = rest_sm.test_iam_permissions(request={"resource": name, "permissions": ["a.b.c"]})
    assert list(granted.permissions) == ["a.b.c"]


def test_a_raw_create_takes_integer_enums_and_answers_googles_json(emulator: Emulator) -> None:
    answer = httpx.post(
        emulator.rest_url + "/v1/projects/p/secrets",
        params={"secretId": "typed", "$alt": "json;enum-encoding=int"},
        json={"replication": {"automatic": {}}, "secretType": 50, "labels": {"a": "b"}},
    )
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"name", "replication", "createTime", "labels", "etag", "secretType"}
    assert (body["name"], body["secretType"], body["replication"], body["labels"]) == (
        "projects/p/secrets/typed",
        "OTHER",
        {"automatic": {}},
        {"a": "b"},
    )


def test_gclouds_add_version_body_stores_the_payload_and_int64s_come_back_as_strings(emulator: Emulator) -> None:
    httpx.post(
        emulator.rest_url + "/v1/projects/p/secrets?alt=json&secretId=x",
        json={"annotations": {}, "replication": {"automatic": {}}},
    ).raise_for_status()
    crc = str(google_crc32c.value(b"hello"))
    added = httpx.post(
        emulator.rest_url + "/v1/projects/p/secrets/x:addVersion?alt=json",
        json={"payload": {"data": base64.b64encode(b"hello").decode(), "dataCrc32c": crc}},
    )
    assert added.json()["name"] == "projects/p/secrets/x/versions/1"
    assert added.json()["clientSpecifiedPayloadChecksum"] is True
    accessed = httpx.get(emulator.rest_url + "/v1/projects/p/secrets/x/versions/latest:access?alt=json").json()
    assert accessed == {
        "name": "projects/p/secrets/x/versions/1",
        "payload": {"data": base64.b64encode(b"hello").decode(), "dataCrc32c": crc},
    }


def test_a_raw_error_is_googles_json_error_body(emulator: Emulator) -> None:
    answer = httpx.get(emulator.rest_url + "/v1/projects/p/secrets/nope/versions/latest:access")
    assert answer.status_code == 404
    assert answer.json() == {
        "error": {
            "code": 404,
            "message": "Secret [projects/p/secrets/nope] not found or has no versions.",
            "status": "NOT_FOUND",
        }
    }


def test_a_malformed_json_body_is_an_invalid_argument(emulator: Emulator) -> None:
    answer = httpx.post(
        emulator.rest_url + "/v1/projects/p/secrets?secretId=x",
        json={"replication": {"automatic": {}}, "createTime": "yesterday"},
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert answer.json()["error"]["message"].startswith(
        "Invalid JSON payload received. Failed to parse secret field: Failed to parse createTime field"
    )


def test_a_delete_with_a_stale_etag_in_the_query_fails(emulator: Emulator, sm: Any) -> None:
    name = make_secret(sm, "token")
    stale = httpx.delete(f"{emulator.rest_url}/v1/{name}", params={"etag": '"stale"'})
    assert (stale.status_code, stale.json()["error"]["status"]) == (400, "FAILED_PRECONDITION")
    current = sm.get_secret(name=name).etag
    assert httpx.delete(f"{emulator.rest_url}/v1/{name}", params={"etag": current}).json() == {}
    assert emulator.secrets.exists(name) is False


def test_rest_calls_count_and_fail_like_their_grpc_twins(emulator: Emulator, rest_sm: Any) -> None:
    emulator.faults.fail("GetSecret", "UNAVAILABLE")
    with pytest.raises(exceptions.ServiceUnavailable, match="injected UNAVAILABLE for GetSecret"):
        rest_sm.get_secret(name="projects/p/secrets/any")
    assert emulator.faults.calls["/google.cloud.secretmanager.v1.SecretManagerService/GetSecret"] == 1
