"""`/connectors/supabase/*` through the whole app, in development (SQLite store) and production (Supabase store).

The user's project is a fake PostgREST on loopback; callers sign in with HS256 tokens (the legacy JWT secret),
so the credential store can be the deployment's own fake Supabase at SUPABASE_URL.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from doki.app import create_app
from doki.storage import StoredCredential
from tests.doki.conftest import development_settings, production_settings
from tests.fakes.postgrest import FakePostgrest, TableSpec
from tests.fakes.supabase_auth import FakeSupabaseAuth
from tests.helpers import secret

JWT_SECRET = secret("the legacy JWT secret", "legacy-jwt-hs256-for-tests-0123456789abcdefghij")
SECRET = secret("the user's Supabase secret key", "sb_secret_UsersOwnProject0123456789abcdefghij")
ANON = "sb_publishable_UsersOwnProject0123456789abcd"
KEYS = (SECRET, ANON)
ALICE = str(uuid.UUID(int=0xA11CE, version=4))
BOB = str(uuid.UUID(int=0xB0B, version=4))

CUSTOMERS = TableSpec(
    columns=("id", "email", "created_at"),
    primary_key=("id",),
    not_null=frozenset({"id", "email"}),
    types={"id": "bigint", "created_at": "timestamp with time zone"},
    comment="Customers",
)
LEADS = TableSpec(
    columns=("id", "source", "score", "active"),
    primary_key=("id",),
    not_null=frozenset({"id"}),
    types={"id": "uuid", "score": "integer", "active": "boolean"},
    sql_defaults={"source": "'ad'::text", "score": "0", "active": "true"},
)
CUSTOMERS_OUT = {
    "name": "customers",
    "description": "Customers",
    "writable": True,
    "columns": [
        {
            "name": "id",
            "type": "bigint",
            "json_type": "integer",
            "nullable": False,
            "primary_key": True,
            "foreign_key": None,
            "default": None,
            "enum": None,
            "max_length": None,
            "description": None,
        },
        {
            "name": "email",
            "type": "text",
            "json_type": "string",
            "nullable": False,
            "primary_key": False,
            "foreign_key": None,
            "default": None,
            "enum": None,
            "max_length": None,
            "description": None,
        },
        {
            "name": "created_at",
            "type": "timestamp with time zone",
            "json_type": "string",
            "nullable": True,
            "primary_key": False,
            "foreign_key": None,
            "default": None,
            "enum": None,
            "max_length": None,
            "description": None,
        },
    ],
}


@dataclass
class Backend:
    app: FastAPI
    client: TestClient
    minter: FakeSupabaseAuth
    issuer: str

    def auth(self, user: str = ALICE) -> dict[str, str]:
        token = self.minter.mint({"sub": user, "iss": self.issuer}, alg="HS256", key=JWT_SECRET, kid=None)
        return {"Authorization": f"Bearer {token}"}

    def connect(self, project: FakePostgrest, user: str = ALICE, **body: str) -> httpx.Response:
        payload = {"project_url": project.url, "service_role_key": SECRET, **body}
        return self.client.post("/connectors/supabase/connect", json=payload, headers=self.auth(user))

    def get(self, path: str, user: str = ALICE, **params: str) -> httpx.Response:
        return self.client.get(f"/connectors/supabase{path}", params=params, headers=self.auth(user))

    def stored(self, user: str = ALICE) -> StoredCredential | None:
        row: StoredCredential | None = self.app.state.store.get(user, "supabase")
        return row


@pytest.fixture(scope="module")
def minter() -> FakeSupabaseAuth:
    return FakeSupabaseAuth()  # only mints: HS256 tokens need no key server


@pytest.fixture
def project() -> Iterator[FakePostgrest]:
    with FakePostgrest(SECRET, {"customers": CUSTOMERS}, schemas={"sales": {"leads": LEADS}}, anon_key=ANON) as server:
        yield server


@pytest.fixture(params=["development", "production"])
def backend(request: pytest.FixtureRequest, tmp_path: Path, minter: FakeSupabaseAuth) -> Iterator[Backend]:
    if request.param == "production":
        own_supabase: FakePostgrest = request.getfixturevalue("fake_postgrest")
        settings = production_settings(own_supabase.url, supabase_jwt_secret=JWT_SECRET)
    else:
        # No secret key: development keeps credentials in SQLite; the URL only names the token issuer.
        settings = development_settings(
            state_dir=tmp_path / "state", supabase_url="http://127.0.0.1:9", supabase_jwt_secret=JWT_SECRET
        )
    assert settings.supabase_issuer is not None
    app = create_app(settings)
    with TestClient(app) as client:
        yield Backend(app, client, minter, settings.supabase_issuer)


def assert_no_keys(*responses: httpx.Response) -> None:
    for response in responses:
        for key in KEYS:
            assert key not in response.text
            assert key not in str(response.headers)


# Connecting


def test_connect_stores_the_keys_encrypted_for_the_user_and_answers_without_them(
    backend: Backend, project: FakePostgrest
) -> None:
    response = backend.connect(project, anon_key=ANON)

    assert response.status_code == 200
    body = response.json()
    connected_at = body.pop("connected_at")
    connection_id = body.pop("connection_id")
    assert body == {
        "success": True,
        "message": "Supabase project connected successfully",
        "status": "connected",
        "project_url": project.url,
        "project_ref": None,
        "has_anon_key": True,
    }
    assert uuid.UUID(connection_id).version == 4
    assert_no_keys(response)
    row = backend.stored()
    assert row is not None
    assert row.metadata == {"project_url": project.url, "project_ref": "", "connection_id": connection_id}
    assert row.updated_at.isoformat().replace("+00:00", "Z")[:19] == connected_at[:19]
    assert SECRET not in row.ciphertext and ANON not in row.ciphertext
    assert json.loads(backend.app.state.cipher.decrypt(ALICE, row.ciphertext)) == {
        "v": 1,
        "project_url": project.url,
        "service_role_key": SECRET,
        "anon_key": ANON,
    }


def test_each_connect_is_a_new_connection_id_kept_in_the_stored_row(backend: Backend, project: FakePostgrest) -> None:
    # The original backend inserted a row per connect and answered its id: a reconnect is a new connection.
    first = backend.connect(project).json()["connection_id"]
    second = backend.connect(project).json()["connection_id"]

    assert first != second
    row = backend.stored()
    assert row is not None
    assert row.metadata["connection_id"] == second


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"service_role_key": "sb_secret_NotThisProject0123456789abcdefgh"}, "rejected the service role key (401)"),
        ({"anon_key": "sb_publishable_NotThisProject0123456789ab"}, "rejected the anon key (401)"),
    ],
)
def test_a_key_the_project_rejects_is_never_stored(
    backend: Backend, project: FakePostgrest, body: dict[str, str], message: str
) -> None:
    response = backend.connect(project, **body)

    assert response.status_code == 400
    error = response.json()
    assert error["code"] == "supabase_credentials_rejected"
    assert error["detail"] == f"the project at {project.url} {message}"
    assert backend.stored() is None
    assert_no_keys(response)
    assert all(key not in response.text for key in body.values())


def test_the_publishable_key_in_the_service_role_slot_is_refused_without_calling_the_project(
    backend: Backend, project: FakePostgrest
) -> None:
    response = backend.connect(project, service_role_key=ANON)

    assert response.status_code == 400
    assert response.json()["code"] == "supabase_invalid_key"
    assert project.requests == []
    assert backend.stored() is None
    assert_no_keys(response)


@pytest.mark.parametrize(
    "url",
    [
        "{url}/rest/v1",
        "{url}/?apikey=1",
        "{url}#x",
        "http://someone:pw@{host}",
        "http://abcdefghijklmnopqrst.supabase.co",
        "ftp://{host}",
        "not a url",
        "https://xn--.com",
        "https://exa\u2603mple.com",
    ],
)
def test_a_project_url_that_is_not_a_bare_https_base_is_refused_and_never_contacted(
    backend: Backend, project: FakePostgrest, url: str
) -> None:
    response = backend.connect(project, project_url=url.format(url=project.url, host=project.url[7:]))

    assert response.status_code == 400
    error = response.json()
    assert error["code"] == "supabase_invalid_url"
    assert error["hint"].startswith("use the project URL from Project Settings > API")
    assert project.requests == []
    assert backend.stored() is None


def test_production_against_a_real_supabase_refuses_a_loopback_project(
    minter: FakeSupabaseAuth, project: FakePostgrest
) -> None:
    # The deployment's own Supabase is https: nothing here is a rehearsal, so loopback is this server's machine.
    # The refusal comes before the store is used, so the unreachable https store is never called.
    settings = production_settings("https://abcdefghijklmnopqrst.supabase.co", supabase_jwt_secret=JWT_SECRET)
    assert settings.supabase_issuer is not None
    app = create_app(settings)
    with TestClient(app) as client:
        backend = Backend(app, client, minter, settings.supabase_issuer)
        response = backend.connect(project)
        private = backend.connect(project, project_url="https://10.1.2.3")

    assert response.status_code == 400
    assert "points at this server's own machine (loopback)" in response.json()["detail"]
    assert "is a private or reserved address" in private.json()["detail"]
    assert project.requests == []


def test_production_refuses_a_project_whose_name_resolves_into_a_private_network(
    minter: FakeSupabaseAuth, fake_postgrest: FakePostgrest, project: FakePostgrest
) -> None:
    settings = production_settings(fake_postgrest.url, supabase_jwt_secret=JWT_SECRET)
    assert settings.supabase_issuer is not None
    app = create_app(settings)
    with TestClient(app) as client:
        backend = Backend(app, client, minter, settings.supabase_issuer)
        names: list[str] = []

        async def resolve(host: str) -> list[str]:
            names.append(host)
            return ["10.20.30.40"]  # an internal service, wherever the name came from

        app.state.supabase_projects.resolve = resolve
        response = backend.connect(project, project_url=project.url.replace("127.0.0.1", "localhost"))
        assert backend.stored() is None

    assert response.status_code == 400
    assert response.json()["code"] == "supabase_invalid_url"
    assert "resolves to 10.20.30.40, a private or reserved address" in response.json()["detail"]
    assert names == ["localhost"]
    assert project.requests == []


def test_an_unreachable_project_is_a_503_to_retry_and_nothing_is_stored(
    backend: Backend, project: FakePostgrest
) -> None:
    project.stop()

    response = backend.connect(project)

    assert response.status_code == 503
    assert response.headers["retry-after"] == "30"
    assert response.json()["code"] == "supabase_unreachable"
    assert backend.stored() is None


def test_a_project_that_echoes_the_key_back_in_its_error_does_not_get_it_into_our_answer(
    backend: Backend, project: FakePostgrest
) -> None:
    project.fail_next(1, status=400, body=json.dumps({"code": SECRET, "message": SECRET, "hint": SECRET}))

    response = backend.connect(project)

    assert response.status_code == 502
    assert response.json()["detail"] == f"{project.url}/rest/v1/ answered 400: there is no Supabase API there"
    assert_no_keys(response)


def test_validation_errors_name_the_field_but_never_echo_what_was_sent(backend: Backend) -> None:
    missing_url = backend.client.post(
        "/connectors/supabase/connect", json={"service_role_key": SECRET}, headers=backend.auth()
    )
    bare_key = backend.client.post("/connectors/supabase/connect", json=SECRET, headers=backend.auth())

    assert missing_url.status_code == 422
    assert missing_url.json()["detail"] == [
        {"type": "missing", "loc": ["body", "project_url"], "msg": "Field required"}
    ]
    assert bare_key.status_code == 422
    assert_no_keys(missing_url, bare_key)


# Testing the connection


def test_the_status_goes_from_disconnected_to_connected_and_back_when_the_key_is_rotated(
    backend: Backend, project: FakePostgrest
) -> None:
    # `status` is the original backend's verdict (connected or disconnected), `state` ours beside it.
    before = backend.get("/test")
    assert before.status_code == 200
    assert before.json() == {
        "status": "disconnected",
        "state": "not_connected",
        "project_url": None,
        "project_ref": None,
        "connected_at": None,
        "message": "no Supabase project is connected for this user",
        "hint": "connect one: POST /connectors/supabase/connect with the project URL and its service role key",
    }

    backend.connect(project)
    connected = backend.get("/test")
    body = connected.json()
    connected_at = body.pop("connected_at")
    assert body == {
        "status": "connected",
        "state": "connected",
        "project_url": project.url,
        "project_ref": None,
        "message": "Connection verified",
        "hint": None,
    }
    row = backend.stored()
    assert row is not None
    assert row.updated_at.isoformat().replace("+00:00", "Z")[:19] == connected_at[:19]

    project.apikey = "sb_secret_RotatedRotatedRotatedRotated01234"
    rejected = backend.get("/test")
    assert rejected.status_code == 200
    assert rejected.json() == {
        "status": "disconnected",
        "state": "credentials_rejected",
        "project_url": project.url,
        "project_ref": None,
        "connected_at": connected_at,
        "message": f"the project at {project.url} rejected the service role key (401)",
        "hint": "reconnect with the project's secret key (sb_secret_...) or legacy service_role key, "
        "from Project Settings > API Keys",
    }
    assert_no_keys(before, connected, rejected)


def test_the_status_of_a_project_that_went_down_is_a_503_not_a_verdict(
    backend: Backend, project: FakePostgrest
) -> None:
    backend.connect(project)
    project.stop()

    response = backend.get("/test")

    assert response.status_code == 503
    assert response.json()["code"] == "supabase_unreachable"


# Tables


def listed_column(column: dict[str, object], type_: str, default_value: str | None) -> dict[str, object]:
    """A column of /list: ours, with the original backend's type, is_nullable and default_value beside."""
    return {**column, "type": type_, "is_nullable": column["nullable"], "default_value": default_value}


def test_tables_lists_the_public_schema_in_our_shape(backend: Backend, project: FakePostgrest) -> None:
    backend.connect(project)

    tables = backend.get("/tables")

    assert tables.status_code == 200
    assert tables.json() == {"project_url": project.url, "schema": "public", "tables": [CUSTOMERS_OUT]}
    assert project.requests[-1].headers["accept-profile"] == "public"
    assert_no_keys(tables)


def test_list_is_the_original_backends_bare_array_with_our_fields_beside(
    backend: Backend, project: FakePostgrest
) -> None:
    backend.connect(project)

    listed = backend.get("/list")

    assert listed.status_code == 200
    columns = cast(list[dict[str, object]], CUSTOMERS_OUT["columns"])
    assert listed.json() == [
        {
            "table_name": "customers",
            "schema_name": "public",
            "columns": [listed_column(c, str(c["type"]), None) for c in columns],
            "name": "customers",
            "description": "Customers",
            "writable": True,
        }
    ]
    assert project.requests[-1].headers["accept-profile"] == "public"
    assert_no_keys(listed)


def test_list_names_the_schema_asked_for_and_gives_defaults_as_text(backend: Backend, project: FakePostgrest) -> None:
    # The original always said "public" (its builder left schema_name to the default): ours is the schema asked.
    backend.connect(project)

    (leads,) = backend.get("/list", schema="sales").json()

    assert (leads["table_name"], leads["schema_name"]) == ("leads", "sales")
    assert [(c["name"], c["type"], c["is_nullable"], c["default_value"]) for c in leads["columns"]] == [
        ("id", "uuid", False, None),
        ("source", "text", True, "ad"),
        ("score", "integer", True, "0"),  # PostgREST shows it as the JSON number 0
        ("active", "boolean", True, "true"),
    ]
    assert [c["default"] for c in leads["columns"]] == [None, "ad", 0, True]
    assert project.requests[-1].headers["accept-profile"] == "sales"


def test_list_gives_a_column_without_a_postgres_type_its_json_type_or_unknown(
    backend: Backend, project: FakePostgrest
) -> None:
    backend.connect(project)
    document = {
        "swagger": "2.0",
        "definitions": {"t": {"properties": {"n": {"type": "number", "default": 1.5}, "j": {}}, "required": ["j"]}},
    }
    project.fail_next(1, status=200, body=json.dumps(document))

    (table,) = backend.get("/list").json()

    assert [(c["name"], c["type"], c["is_nullable"], c["default_value"]) for c in table["columns"]] == [
        ("n", "number", True, "1.5"),
        ("j", "unknown", False, None),
    ]


def test_list_without_a_connection_is_a_404_as_the_original_answered(backend: Backend) -> None:
    response = backend.get("/list")

    assert response.status_code == 404
    assert response.json() == {
        "detail": "no Supabase project is connected for this user",
        "code": "supabase_not_connected",
        "hint": "connect one: POST /connectors/supabase/connect with the project URL and its service role key",
        "connect": "POST /connectors/supabase/connect",
    }


def test_list_with_a_key_the_project_no_longer_accepts_is_a_409_to_reconnect(
    backend: Backend, project: FakePostgrest
) -> None:
    backend.connect(project)
    project.apikey = "sb_secret_RotatedRotatedRotatedRotated01234"

    response = backend.get("/list")

    assert response.status_code == 409
    assert response.json()["code"] == "supabase_credentials_rejected"


def test_tables_of_another_schema_are_asked_for_with_accept_profile(backend: Backend, project: FakePostgrest) -> None:
    backend.connect(project)

    response = backend.get("/tables", schema="sales")

    assert response.status_code == 200
    assert [t["name"] for t in response.json()["tables"]] == ["leads"]
    assert response.json()["schema"] == "sales"
    assert project.requests[-1].headers["accept-profile"] == "sales"


def test_an_unexposed_schema_is_a_404_and_a_malformed_name_a_400_sent_nowhere(
    backend: Backend, project: FakePostgrest
) -> None:
    backend.connect(project)

    unexposed = backend.get("/tables", schema="private")
    sent = len(project.requests)
    malformed = backend.get("/tables", schema="public,private")

    assert unexposed.status_code == 404
    assert unexposed.json()["detail"] == (
        "the schema 'private' is not exposed by the project's API (it exposes public, sales)"
    )
    assert malformed.status_code == 400
    assert malformed.json()["code"] == "supabase_invalid_schema"
    assert len(project.requests) == sent


def test_tables_without_a_connection_is_a_409_saying_how_to_connect(backend: Backend) -> None:
    response = backend.get("/tables")

    assert response.status_code == 409
    assert response.json() == {
        "detail": "no Supabase project is connected for this user",
        "code": "supabase_not_connected",
        "hint": "connect one: POST /connectors/supabase/connect with the project URL and its service role key",
        "connect": "POST /connectors/supabase/connect",
    }


def test_tables_with_a_key_the_project_no_longer_accepts_is_a_409_to_reconnect(
    backend: Backend, project: FakePostgrest
) -> None:
    backend.connect(project)
    project.apikey = "sb_secret_RotatedRotatedRotatedRotated01234"

    response = backend.get("/tables")

    assert response.status_code == 409
    assert response.json()["code"] == "supabase_credentials_rejected"


# Disconnecting


def test_disconnect_deletes_the_stored_keys_and_a_second_disconnect_finds_nothing(
    backend: Backend, project: FakePostgrest
) -> None:
    backend.connect(project)

    first = backend.client.delete("/connectors/supabase", headers=backend.auth())
    second = backend.client.delete("/connectors/supabase", headers=backend.auth())

    assert (first.status_code, first.json()) == (200, {"disconnected": True})
    assert second.json() == {"disconnected": False}
    assert backend.stored() is None
    assert backend.get("/test").json()["state"] == "not_connected"


# Users are kept apart


def test_another_user_can_neither_see_use_nor_delete_a_connection(backend: Backend, project: FakePostgrest) -> None:
    backend.connect(project, user=ALICE)
    sent = len(project.requests)

    status = backend.get("/test", user=BOB)
    tables = backend.get("/tables", user=BOB)
    listed = backend.get("/list", user=BOB)
    deleted = backend.client.delete("/connectors/supabase", headers=backend.auth(BOB))

    assert (status.json()["status"], status.json()["state"]) == ("disconnected", "not_connected")
    assert status.json()["project_url"] is None
    assert tables.status_code == 409
    assert listed.status_code == 404
    assert deleted.json() == {"disconnected": False}
    assert backend.stored(ALICE) is not None
    assert len(project.requests) == sent
    assert backend.get("/test", user=ALICE).json()["state"] == "connected"


def test_a_connection_copied_into_another_users_row_is_unusable_and_sends_no_key(
    backend: Backend, project: FakePostgrest
) -> None:
    backend.connect(project, user=ALICE)
    alices = backend.stored(ALICE)
    assert alices is not None
    backend.app.state.store.put(BOB, "supabase", alices.ciphertext, alices.metadata)
    sent = len(project.requests)

    status = backend.get("/test", user=BOB)
    tables = backend.get("/tables", user=BOB)
    listed = backend.get("/list", user=BOB)

    assert (status.json()["status"], status.json()["state"]) == ("disconnected", "not_connected")
    assert "encrypted for a different user" in status.json()["message"]
    assert tables.status_code == 409
    assert tables.json()["code"] == "supabase_not_connected"
    assert (listed.status_code, listed.json()["code"]) == (404, "supabase_not_connected")
    assert len(project.requests) == sent
    assert_no_keys(status, tables, listed)


# Everything else a route must get right


def test_keys_never_reach_a_log_line(
    backend: Backend, project: FakePostgrest, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    backend.connect(project, anon_key=ANON)
    backend.get("/test")
    backend.get("/tables", schema="sales")
    backend.connect(project, service_role_key="sb_secret_NotThisProject0123456789abcdefgh")
    backend.client.post("/connectors/supabase/connect", json={"service_role_key": SECRET}, headers=backend.auth())
    backend.client.delete("/connectors/supabase", headers=backend.auth())

    messages = [record.getMessage() for record in caplog.records]
    assert any(f"connected the Supabase project {project.url}" in m for m in messages)
    assert any("HTTP Request: GET" in m for m in messages)  # the outgoing calls are logged, keys are not
    for record in caplog.records:
        text = f"{record.getMessage()} {record.exc_text or ''} {record.args!r}"
        for key in (*KEYS, "sb_secret_NotThisProject0123456789abcdefgh"):
            assert key not in text


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/connectors/supabase/connect"),
        ("GET", "/connectors/supabase/test"),
        ("GET", "/connectors/supabase/tables"),
        ("GET", "/connectors/supabase/list"),
        ("DELETE", "/connectors/supabase"),
    ],
)
def test_production_refuses_every_supabase_route_without_a_token(
    fake_postgrest: FakePostgrest, method: str, path: str
) -> None:
    with TestClient(create_app(production_settings(fake_postgrest.url))) as client:
        response = client.request(method, path, json={"project_url": "https://x.supabase.co", "service_role_key": "k"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="doki"'
    assert fake_postgrest.requests == []


def test_a_credential_store_outage_is_a_503_not_a_500(
    minter: FakeSupabaseAuth, fake_postgrest: FakePostgrest, project: FakePostgrest
) -> None:
    settings = production_settings(fake_postgrest.url, supabase_jwt_secret=JWT_SECRET)
    assert settings.supabase_issuer is not None
    app = create_app(settings)
    with TestClient(app) as client:
        backend = Backend(app, client, minter, settings.supabase_issuer)
        fake_postgrest.stop()
        responses = [backend.connect(project), backend.get("/test"), backend.get("/tables")]

    assert [r.status_code for r in responses] == [503, 503, 503]
    assert responses[0].json()["code"] == "store_unavailable"
    assert responses[0].json() == {
        "detail": "the credential store is unavailable",
        "code": "store_unavailable",
        "hint": "retry in a minute",
    }
    assert responses[0].headers["retry-after"] == "30"


def test_a_credential_store_without_its_table_is_a_503_that_tells_the_operator_via_the_log(
    minter: FakeSupabaseAuth, fake_postgrest: FakePostgrest, project: FakePostgrest, caplog: pytest.LogCaptureFixture
) -> None:
    # The migration was never applied (PostgREST answers PGRST205): every route would fail the same way.
    settings = production_settings(fake_postgrest.url, supabase_jwt_secret=JWT_SECRET, credentials_table="missing")
    assert settings.supabase_issuer is not None
    app = create_app(settings)
    with TestClient(app) as client:
        backend = Backend(app, client, minter, settings.supabase_issuer)
        responses = [
            backend.connect(project),
            backend.get("/test"),
            backend.get("/tables"),
            client.delete("/connectors/supabase", headers=backend.auth()),
        ]

    assert [r.status_code for r in responses] == [503, 503, 503, 503]
    for response in responses:
        assert response.json() == {
            "detail": "the credential store refused the request: this server is misconfigured",
            "code": "store_misconfigured",
            "hint": "the server's operator must fix its credential store (the server log says what); retry afterwards",
        }
    logged = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert any("the table 'missing' does not exist; apply migrations/supabase/" in m for m in logged)
