"""Email and password accounts through Supabase Auth (the fake GoTrue): sign-up, sign-in, sign-out, and the
errors the frontend must be able to tell apart."""

from __future__ import annotations

import pytest

from tests.doki.api.google_harness import ANON_KEY, Backend, backend
from tests.doki.conftest import SUPABASE_SECRET
from tests.fakes.google import FakeGoogle
from tests.fakes.supabase_auth import FakeSupabaseAuth
from tests.helpers import secret

PASSWORD = secret("the test user's password", "correct horse battery staple")


def credentials(email: str = "grace@example.com", password: str = PASSWORD) -> dict[str, str]:
    return {"email": email, "password": password}


def test_signing_up_creates_the_user_and_returns_a_session_the_backend_accepts(doki: Backend) -> None:
    response = doki.client.post("/auth/signup", json=credentials())
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    user = doki.supabase.users["grace@example.com"]
    assert body["user"] == {"id": user.id, "email": "grace@example.com"}
    assert set(body["session"]) == {"access_token", "refresh_token", "token_type", "expires_in", "expires_at"}
    me = doki.client.get("/auth/me", headers={"Authorization": f"Bearer {body['session']['access_token']}"})
    assert me.json()["user_id"] == user.id


def test_a_project_that_confirms_emails_answers_sign_up_without_a_session(doki: Backend) -> None:
    doki.supabase.confirm_email = True
    body = doki.client.post("/auth/signup", json=credentials()).json()
    assert body["session"] is None and body["user"]["email"] == "grace@example.com"
    signin = doki.client.post("/auth/signin", json=credentials())
    assert signin.status_code == 403
    assert signin.json()["code"] == "email_not_confirmed"


def test_signing_up_twice_is_a_422_that_says_to_sign_in(doki: Backend) -> None:
    doki.client.post("/auth/signup", json=credentials())
    response = doki.client.post("/auth/signup", json=credentials())
    assert response.status_code == 422
    assert response.json() == {
        "detail": "User already registered",
        "code": "user_already_exists",
        "hint": "sign in instead: POST /auth/signin",
    }


def test_a_weak_password_is_a_422_with_supabases_reason(doki: Backend) -> None:
    response = doki.client.post("/auth/signup", json=credentials(password="12345"))
    assert response.status_code == 422
    assert response.json()["code"] == "weak_password"
    assert response.json()["detail"] == "Password should be at least 6 characters."


@pytest.mark.parametrize("body", [{"email": "not-an-email", "password": PASSWORD}, {"email": "a@b.c"}, {}])
def test_malformed_credentials_are_refused_before_supabase_is_asked(doki: Backend, body: dict[str, str]) -> None:
    assert doki.client.post("/auth/signin", json=body).status_code == 422
    assert "/auth/v1/token" not in doki.supabase.requested_paths


def test_signing_in_with_the_right_password_returns_a_session(doki: Backend) -> None:
    user = doki.supabase.add_user("grace@example.com", PASSWORD)
    response = doki.client.post("/auth/signin", json=credentials())
    assert response.status_code == 200
    assert response.json()["user"]["id"] == user.id
    assert response.json()["session"]["token_type"] == "bearer"


@pytest.mark.parametrize("email", ["grace@example.com", "nobody@example.com"])
def test_a_wrong_password_or_unknown_email_is_the_same_401(doki: Backend, email: str) -> None:
    doki.supabase.add_user("grace@example.com", PASSWORD)
    response = doki.client.post("/auth/signin", json=credentials(email, "wrong password"))
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_credentials"
    assert PASSWORD not in response.text


def test_signing_out_ends_the_users_supabase_sessions(doki: Backend) -> None:
    doki.supabase.add_user("grace@example.com", PASSWORD)
    session = doki.client.post("/auth/signin", json=credentials()).json()["session"]
    headers = {"Authorization": f"Bearer {session['access_token']}"}
    assert doki.client.post("/auth/signout", headers=headers).status_code == 204
    assert doki.supabase.signed_out == [doki.supabase.users["grace@example.com"].id]
    # A second sign-out of the ended session is fine.
    assert doki.client.post("/auth/signout", headers=headers).status_code == 204


def test_signing_out_needs_a_token_even_in_development(doki: Backend) -> None:
    response = doki.client.post("/auth/signout")
    assert response.status_code == 401
    assert doki.supabase.signed_out == []


def test_signing_out_with_a_forged_token_is_refused_before_supabase_is_asked(doki: Backend) -> None:
    forged = doki.supabase.mint(alg="HS256", key=b"guess" * 8)
    assert doki.client.post("/auth/signout", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    assert "/auth/v1/logout" not in doki.supabase.requested_paths


def test_supabase_auth_calls_carry_the_publishable_key_when_set(google: FakeGoogle, supabase: FakeSupabaseAuth) -> None:
    with backend("development", google, supabase) as doki:
        doki.client.post("/auth/signup", json=credentials())
    assert supabase.apikeys_seen == [ANON_KEY]


def test_without_a_publishable_key_supabase_auth_calls_carry_the_secret_key(
    google: FakeGoogle, supabase: FakeSupabaseAuth
) -> None:
    with backend("production", google, supabase) as doki:
        doki.client.post("/auth/signup", json=credentials())
    assert supabase.apikeys_seen == [SUPABASE_SECRET]


def test_a_key_supabase_refuses_is_a_502_that_names_the_settings(doki: Backend) -> None:
    doki.supabase.apikeys = {"sb_publishable_someone_elses"}
    response = doki.client.post("/auth/signin", json=credentials())
    assert response.status_code == 502
    assert response.json()["code"] == "supabase_auth_misconfigured"
    assert "SUPABASE_ANON_KEY" in response.json()["hint"]


def test_supabase_rate_limiting_is_a_429_with_retry_after(doki: Backend) -> None:
    doki.supabase.auth_failure = (429, {"code": 429, "error_code": "over_request_rate_limit", "msg": "Too many"})
    response = doki.client.post("/auth/signin", json=credentials())
    assert response.status_code == 429
    assert response.json()["code"] == "rate_limited"
    assert response.headers["retry-after"] == "60"


def test_a_failing_supabase_auth_is_a_503_never_a_500(doki: Backend) -> None:
    doki.supabase.auth_failure = (500, {"message": "upstream down"})
    response = doki.client.post("/auth/signup", json=credentials())
    assert response.status_code == 503
    assert response.json()["code"] == "supabase_auth_unavailable"


def test_an_unreachable_supabase_auth_is_a_503(google: FakeGoogle, supabase: FakeSupabaseAuth) -> None:
    with backend("development", google, supabase) as doki:
        supabase.go_down()
        response = doki.client.post("/auth/signin", json=credentials())
    assert response.status_code == 503
    assert response.json()["code"] == "supabase_auth_unavailable"
    assert response.headers["retry-after"] == "5"


def test_without_supabase_email_accounts_answer_503_saying_what_to_set(
    google: FakeGoogle, supabase: FakeSupabaseAuth
) -> None:
    with backend("development", google, supabase, supabase_url=None, supabase_anon_key=None) as doki:
        response = doki.client.post("/auth/signup", json=credentials())
    assert response.status_code == 503
    assert response.json()["code"] == "supabase_not_configured"


def test_only_sign_out_declares_the_bearer_scheme(doki: Backend) -> None:
    paths = doki.client.get("/openapi.json").json()["paths"]
    assert paths["/auth/signout"]["post"]["security"] == [{"HTTPBearer": []}]
    assert "security" not in paths["/auth/signup"]["post"]
    assert "security" not in paths["/auth/signin"]["post"]
