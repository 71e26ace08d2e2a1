"""The OpenAPI document lists the answers no route signature shows (doki.api.openapi), and what hostile input
found stays fixed: a request body FastAPI cannot echo back is answered 422, not 500."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from doki.app import create_app
from tests.doki.conftest import development_settings, production_settings
from tests.fakes.supabase_auth import FakeSupabaseAuth

BEARER = {"HTTPBearer": []}
ERROR = {"$ref": "#/components/schemas/ErrorOut"}


@pytest.fixture
def production(supabase_auth: FakeSupabaseAuth) -> Iterator[TestClient]:
    with TestClient(create_app(production_settings(supabase_auth.url))) as client:
        yield client


def _operations(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            yield f"{method.upper()} {path}", operation


def _schemas(response: dict[str, Any]) -> list[dict[str, Any]]:
    schema = response["content"]["application/json"]["schema"]
    return list(schema.get("anyOf", [schema]))


def test_every_operation_that_needs_a_user_documents_401_with_its_challenge_and_503(production: TestClient) -> None:
    spec = production.get("/openapi.json").json()
    protected = [(label, op) for label, op in _operations(spec) if BEARER in op.get("security", [])]

    assert len(protected) >= 12
    for label, operation in protected:
        assert ERROR in _schemas(operation["responses"]["401"]), label
        assert ERROR in _schemas(operation["responses"]["503"]), label
    error_out = spec["components"]["schemas"]["ErrorOut"]
    assert {name: field["type"] for name, field in error_out["properties"].items()} == {
        "detail": "string",
        "code": "string",
        "hint": "string",
    }
    assert error_out["required"] == ["detail", "code", "hint"]
    # Some codes carry more fields (`connect`, `missing_scopes`): allowed, never required.
    assert error_out["additionalProperties"] is True
    assert "ErrorDetail" not in spec["components"]["schemas"]
    me = spec["paths"]["/auth/me"]["get"]["responses"]["401"]
    assert me["headers"]["WWW-Authenticate"]["required"] is True


def test_production_requires_the_token_and_development_documents_it_as_optional(
    production: TestClient, tmp_path: Any
) -> None:
    with TestClient(create_app(development_settings(state_dir=tmp_path / "state"))) as development:
        dev_spec = development.get("/openapi.json").json()
    prod_spec = production.get("/openapi.json").json()

    assert prod_spec["paths"]["/auth/me"]["get"]["security"] == [BEARER]
    assert dev_spec["paths"]["/auth/me"]["get"]["security"] == [BEARER, {}]
    assert dev_spec["paths"]["/connectors/sheets/list"]["get"]["security"] == [BEARER, {}]
    # Sign-out too: without a token, development's stand-in user has no Supabase session to end.
    assert dev_spec["paths"]["/auth/signout"]["post"]["security"] == [BEARER, {}]
    assert prod_spec["paths"]["/auth/signout"]["post"]["security"] == [BEARER]


def test_operations_with_a_body_document_fastapis_400_beside_their_own(production: TestClient) -> None:
    spec = production.get("/openapi.json").json()

    connect = spec["paths"]["/connectors/supabase/connect"]["post"]["responses"]["400"]
    assert _schemas(connect) == [{"$ref": "#/components/schemas/ErrorOut"}]
    assert connect["description"].endswith("; or the body cannot be read")
    signup = spec["paths"]["/auth/signup"]["post"]["responses"]["422"]
    assert _schemas(signup) == [
        {"$ref": "#/components/schemas/ErrorOut"},
        {"$ref": "#/components/schemas/HTTPValidationError"},
    ]


def test_the_document_is_completed_again_when_routes_are_added(production: TestClient) -> None:
    app: Any = production.app
    app.get("/late")(lambda: {})
    assert "/late" in app.openapi()["paths"]
    assert ERROR in _schemas(app.openapi()["paths"]["/connectors/sheets/list"]["get"]["responses"]["401"])


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/auth/signin", '{"email": "ada@example.com", "password": "\\ud800"}'),
        ("/auth/signup", '{"email": "\\udfff@example.com", "password": "correct horse"}'),
        ("/auth/google/connect", '{"redirect_to": "https://app.doki.com/\\ud83d"}'),
        ("/auth/signin", '{"email": "ada@example.com", "password": 1e999}'),
        ("/auth/signup", '{"email": -1e999, "password": [NaN, {"x": Infinity}]}'),
        ("/auth/google/connect", '{"redirect_to": NaN}'),
    ],
)
def test_input_json_cannot_carry_back_gets_422_not_500(tmp_path: Any, path: str, body: str) -> None:
    # FastAPI's own 422 echoes the input: a lone surrogate no UTF-8 encoder takes, or a NaN or infinite number no
    # JSON writer may emit, made it answer 500.
    with TestClient(create_app(development_settings(state_dir=tmp_path / "state"))) as client:
        response = client.post(path, content=body.encode(), headers={"Content-Type": "application/json"})

    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["type"] in ("string_unicode", "string_type")
