"""`GET /auth/me` through the whole app: the principal for a good token, 401 or 503 with the right headers otherwise."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from doki.app import create_app
from tests.doki.conftest import development_settings, production_settings
from tests.fakes.supabase_auth import FakeSupabaseAuth


def test_a_valid_supabase_token_yields_its_user(supabase_auth: FakeSupabaseAuth) -> None:
    token = supabase_auth.mint({"sub": "5b0c1d5e-0000-4000-8000-00000000abcd", "email": "ada@example.com"})
    with TestClient(create_app(production_settings(supabase_auth.url))) as client:
        response = client.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.json() == {
        "user_id": "5b0c1d5e-0000-4000-8000-00000000abcd",
        "email": "ada@example.com",
        "role": "authenticated",
    }


def test_an_expired_token_gets_401_with_an_invalid_token_challenge(supabase_auth: FakeSupabaseAuth) -> None:
    token = supabase_auth.mint({"exp": 1_000_000})
    with TestClient(create_app(production_settings(supabase_auth.url))) as client:
        response = client.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="doki", error="invalid_token", error_description="')
    assert token not in response.text and token not in challenge
    error = response.json()
    assert error["code"] == "invalid_token" and error["hint"].startswith("sign in again")
    assert f'error_description="{error["detail"]}"' in challenge


def test_production_without_a_token_gets_401_and_a_plain_bearer_challenge(supabase_auth: FakeSupabaseAuth) -> None:
    with TestClient(create_app(production_settings(supabase_auth.url))) as client:
        response = client.get("/auth/me")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="doki"'
    assert response.json() == {
        "detail": "sign in: send 'Authorization: Bearer <Supabase access token>'",
        "code": "unauthorized",
        "hint": "sign in with Supabase Auth, then send the access token as 'Authorization: Bearer <token>'",
    }


@pytest.mark.parametrize("header", ["Basic dXNlcjpwdw==", "Bearer", "token abc"])
def test_a_malformed_authorization_header_is_401_even_in_development(header: str) -> None:
    with TestClient(create_app(development_settings())) as client:
        response = client.get("/auth/me", headers={"Authorization": header})
    assert response.status_code == 401
    assert 'error="invalid_request"' in response.headers["www-authenticate"]
    assert response.json()["code"] == "invalid_request"


def test_development_without_a_token_runs_as_the_development_user() -> None:
    with TestClient(create_app(development_settings())) as client:
        response = client.get("/auth/me")
    assert response.json() == {
        "user_id": "00000000-0000-4000-8000-000000000001",
        "email": "dev@doki.local",
        "role": "authenticated",
    }


def test_development_still_verifies_a_token_it_is_given(supabase_auth: FakeSupabaseAuth) -> None:
    forged = supabase_auth.mint(alg="HS256", key=b"guess")
    with TestClient(create_app(development_settings(supabase_url=supabase_auth.url))) as client:
        assert client.get("/auth/me", headers={"Authorization": f"Bearer {forged}"}).status_code == 401


def test_an_unreachable_key_endpoint_gets_503_with_retry_after(supabase_auth: FakeSupabaseAuth) -> None:
    token = supabase_auth.mint()
    supabase_auth.go_down()
    with TestClient(create_app(production_settings(supabase_auth.url))) as client:
        response = client.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json()["code"] == "auth_unavailable"
    assert response.json()["hint"].startswith("retry shortly")


def test_the_verifier_is_not_loaded_until_a_token_arrives(supabase_auth: FakeSupabaseAuth) -> None:
    # PyJWT, httpx and an SSL context stay out of the cold start: the first health check must not wait for them.
    app = create_app(production_settings(supabase_auth.url))
    with TestClient(app) as client:
        client.get("/")
        assert app.state.verifiers._verifier is None
        client.get("/auth/me", headers={"Authorization": f"Bearer {supabase_auth.mint()}"})
        assert app.state.verifiers._verifier is not None
