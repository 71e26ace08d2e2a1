"""Email and password accounts through Supabase Auth (the fake GoTrue): sign-up, sign-in, sign-out, and the
errors the frontend must be able to tell apart.

Every test runs against a project with email confirmation on (a new hosted project's default) and one with it off
(Autoconfirm), unless it is about one of them (`CONFIRM_EMAIL`, `AUTOCONFIRM`); each in development and production."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.doki.api.google_harness import ANON_KEY, Backend, backend, new_supabase
from tests.doki.conftest import SUPABASE_SECRET
from tests.fakes.google import FakeGoogle
from tests.fakes.postgrest import FakePostgrest
from tests.fakes.supabase_auth import FakeSupabaseAuth
from tests.helpers import secret

PASSWORD = secret("the test user's password", "correct horse battery staple")


@pytest.fixture(params=[True, False], ids=["confirm-email", "autoconfirm"])
def supabase(
    request: pytest.FixtureRequest, google: FakeGoogle, fake_postgrest: FakePostgrest
) -> Iterator[FakeSupabaseAuth]:
    fake = new_supabase(google, fake_postgrest, confirm_email=request.param)
    yield fake
    fake.stop()


CONFIRM_EMAIL = pytest.mark.parametrize("supabase", [True], ids=["confirm-email"], indirect=True)
AUTOCONFIRM = pytest.mark.parametrize("supabase", [False], ids=["autoconfirm"], indirect=True)


def credentials(email: str = "grace@example.com", password: str = PASSWORD, **more: str) -> dict[str, str]:
    return {"email": email, "password": password, **more}


def sign_up_and_confirm(doki: Backend, **more: str) -> None:
    """A sign-up through the API, then, where the project confirms emails, the link opened: the user can sign in."""
    response = doki.client.post("/auth/signup", json=credentials(**more))
    assert response.status_code == 200, response.text
    if doki.supabase.confirm_email:
        assert response.json()["status"] == "pending_confirmation"
        doki.supabase.confirm(more.get("email", "grace@example.com"))


SESSION_FIELDS = {"access_token", "refresh_token", "token_type", "expires_in", "expires_at"}


# --- sign-up: the original's AuthResponse, our session beside it ---------------------------------------------


@AUTOCONFIRM
def test_signing_up_creates_the_user_and_returns_a_session_the_backend_accepts(doki: Backend) -> None:
    response = doki.client.post("/auth/signup", json=credentials(display_name="Grace Hopper"))
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    user = doki.supabase.users["grace@example.com"]
    session = body["session"]
    assert set(session) == SESSION_FIELDS and session["token_type"] == "bearer"
    assert body == {
        "status": "authenticated",
        "access_token": session["access_token"],
        "refresh_token": session["refresh_token"],
        "user": {"id": user.id, "email": "grace@example.com", "display_name": "Grace Hopper"},
        "message": "Signup successful! You are now logged in.",
        "session": session,
    }
    me = doki.client.get("/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.json()["user_id"] == user.id


def test_sign_up_stores_the_display_name_in_the_supabase_users_metadata(doki: Backend) -> None:
    doki.client.post("/auth/signup", json=credentials(display_name="Grace Hopper"))
    assert doki.supabase.users["grace@example.com"].user_metadata == {"display_name": "Grace Hopper"}


def test_sign_up_without_a_display_name_stores_no_metadata_and_answers_an_empty_name(doki: Backend) -> None:
    body = doki.client.post("/auth/signup", json=credentials()).json()
    assert doki.supabase.users["grace@example.com"].user_metadata == {}
    assert body["user"]["display_name"] == ""


@CONFIRM_EMAIL
def test_a_project_that_confirms_emails_answers_sign_up_pending_confirmation(doki: Backend) -> None:
    response = doki.client.post("/auth/signup", json=credentials(display_name="Grace Hopper"))
    assert response.status_code == 200
    user = doki.supabase.users["grace@example.com"]
    assert user.user_metadata == {"display_name": "Grace Hopper"}
    assert response.json() == {
        "status": "pending_confirmation",
        "access_token": "",
        "refresh_token": None,
        "user": {"id": user.id, "email": "grace@example.com", "display_name": "Grace Hopper"},
        "message": "Signup successful! Please check your email to confirm your account.",
        "session": None,
    }
    signin = doki.client.post("/auth/signin", json=credentials())
    assert signin.status_code == 403
    assert signin.json() == {
        "detail": "Please confirm your email before signing in",
        "code": "email_not_confirmed",
        "hint": "open the confirmation link Supabase emailed, then sign in",
    }


@pytest.mark.parametrize("display_name", ["", "x" * 257])
def test_a_display_name_the_original_would_refuse_is_refused(doki: Backend, display_name: str) -> None:
    response = doki.client.post("/auth/signup", json=credentials(display_name=display_name))
    assert response.status_code == 422
    assert "/auth/v1/signup" not in doki.supabase.requested_paths


# --- a repeated sign-up -----------------------------------------------------------------------------------------


@AUTOCONFIRM
def test_signing_up_twice_without_email_confirmation_is_the_originals_400(doki: Backend) -> None:
    doki.client.post("/auth/signup", json=credentials())
    response = doki.client.post("/auth/signup", json=credentials())
    assert response.status_code == 400
    assert response.json() == {
        "detail": "Email already registered",
        "code": "user_already_exists",
        "hint": "sign in instead: POST /auth/signin",
    }


@CONFIRM_EMAIL
def test_signing_up_again_as_a_confirmed_user_with_confirmation_on_looks_like_a_new_sign_up(doki: Backend) -> None:
    # Supabase answers 200 with an obfuscated user (a random id, the request's data as metadata, no identities): who
    # has an account is not told, and the answer is read as any sign-up waiting for confirmation.
    user = doki.supabase.add_user("grace@example.com", PASSWORD, confirmed=True)
    fresh = doki.client.post("/auth/signup", json=credentials("ada@example.com", display_name="Ada")).json()
    response = doki.client.post("/auth/signup", json=credentials(display_name="Someone Else"))
    assert response.status_code == 200
    body = response.json()
    assert body["user"]["id"] != user.id
    assert body == {
        **fresh,
        "user": {"id": body["user"]["id"], "email": "grace@example.com", "display_name": "Someone Else"},
    }
    assert body["status"] == "pending_confirmation" and body["session"] is None
    # Nothing about the real user changed.
    assert user.user_metadata == {} and doki.supabase.users["grace@example.com"] is user


@CONFIRM_EMAIL
def test_a_repeated_sign_up_without_a_display_name_answers_an_empty_one(doki: Backend) -> None:
    doki.supabase.add_user("grace@example.com", PASSWORD, confirmed=True)
    response = doki.client.post("/auth/signup", json=credentials())
    assert response.status_code == 200
    assert response.json()["user"]["display_name"] == ""
    assert response.json()["status"] == "pending_confirmation"


@CONFIRM_EMAIL
def test_signing_up_again_before_confirming_resends_the_link_once_a_minute(doki: Backend) -> None:
    first = doki.client.post("/auth/signup", json=credentials(display_name="Grace"))
    assert first.status_code == 200
    again = doki.client.post("/auth/signup", json=credentials(display_name="Grace"))
    assert again.status_code == 429
    assert again.json()["code"] == "rate_limited" and again.headers["retry-after"] == "60"


# --- weak passwords ---------------------------------------------------------------------------------------------


def test_a_password_under_six_characters_gets_fastapis_422_as_the_originals_did(doki: Backend) -> None:
    response = doki.client.post("/auth/signup", json=credentials(password="12345"))
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert (error["loc"], error["type"]) == (["body", "password"], "string_too_short")
    assert "/auth/v1/signup" not in doki.supabase.requested_paths


def test_a_password_the_project_finds_weak_is_a_422_with_supabases_reasons(doki: Backend) -> None:
    doki.supabase.password_min_length = 10  # a project asking more than Supabase's floor of 6
    response = doki.client.post("/auth/signup", json=credentials(password="123456789"))
    assert response.status_code == 422
    assert response.json() == {
        "detail": "Password should be at least 10 characters.",
        "code": "weak_password",
        "hint": "choose a longer, less common password",
        "reasons": ["length"],
    }
    assert "grace@example.com" not in doki.supabase.users


def test_a_password_is_as_long_as_its_utf8_bytes_for_supabase(doki: Backend) -> None:
    # GoTrue measures a password with Go's `len`, in bytes. Doki's own floor counts characters, as the original's
    # SignUpRequest did (6), so the bytes show in a project asking more: 10 here. Six characters, five of them two
    # bytes long, are 11 bytes: long enough; six with three such are 9: too short.
    doki.supabase.password_min_length = 10
    sign_up_and_confirm(doki, password="ééééé1")
    assert doki.client.post("/auth/signin", json=credentials(password="ééééé1")).status_code == 200
    too_short = doki.client.post("/auth/signup", json=credentials("ada@example.com", password="ééé123"))
    assert (too_short.status_code, too_short.json()["reasons"]) == (422, ["length"])


# --- emails Supabase refuses, and emails in capitals --------------------------------------------------------------


@pytest.mark.parametrize(
    ("email", "message"),
    [
        ("grace@example..com", "Unable to validate email address: invalid format"),
        ("grace@-example.com", "Unable to validate email address: invalid format"),
        ("grace@mail_server.example.com", "Unable to validate email address: invalid format"),
        ("gräce@example.com", "Unable to validate email address: invalid format"),
        ("grace@bücher.example", "Unable to validate email address: invalid format"),
        ("(grace)@example.com", "Unable to validate email address: invalid format"),
        ("g" * 244 + "@example.com", "An email address is too long"),  # 256 bytes; this server takes up to 320
    ],
)
def test_an_email_this_server_takes_but_supabase_refuses_is_a_422_with_supabases_words(
    doki: Backend, email: str, message: str
) -> None:
    response = doki.client.post("/auth/signup", json=credentials(email, display_name="Grace"))
    assert response.status_code == 422
    assert response.json() == {
        "detail": message,
        "code": "validation_failed",
        "hint": "check the email address and password",
    }
    assert doki.supabase.requested_paths.count("/auth/v1/signup") == 1  # Supabase was asked, and said no
    assert doki.supabase.users == {}


def test_an_email_is_one_account_whatever_its_capitals(doki: Backend) -> None:
    # Supabase stores the address lower-cased and finds it by LOWER(email).
    sign_up_and_confirm(doki, email="Grace.Hopper@Example.COM", display_name="Grace")
    user = doki.supabase.users["grace.hopper@example.com"]
    response = doki.client.post("/auth/signin", json=credentials("GRACE.HOPPER@example.com"))
    assert response.status_code == 200
    assert response.json()["user"] == {"id": user.id, "email": "grace.hopper@example.com", "display_name": "Grace"}
    again = doki.client.post("/auth/signup", json=credentials("grace.hopper@EXAMPLE.com"))
    if doki.supabase.confirm_email:  # the obfuscated answer, not a second account
        assert again.status_code == 200 and again.json()["user"]["id"] != user.id
    else:
        assert (again.status_code, again.json()["code"]) == (400, "user_already_exists")
    assert list(doki.supabase.users) == ["grace.hopper@example.com"]


@pytest.mark.parametrize("body", [{"email": "not-an-email", "password": PASSWORD}, {"email": "a@b.c"}, {}])
def test_malformed_credentials_are_refused_before_supabase_is_asked(doki: Backend, body: dict[str, str]) -> None:
    assert doki.client.post("/auth/signin", json=body).status_code == 422
    assert "/auth/v1/token" not in doki.supabase.requested_paths


def test_signing_in_returns_the_originals_body_with_the_display_name_supabase_holds(doki: Backend) -> None:
    sign_up_and_confirm(doki, display_name="Grace Hopper")
    user = doki.supabase.users["grace@example.com"]
    response = doki.client.post("/auth/signin", json=credentials())
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    session = body["session"]
    assert set(session) == SESSION_FIELDS and session["token_type"] == "bearer"
    assert body == {
        "status": "authenticated",
        "access_token": session["access_token"],
        "refresh_token": session["refresh_token"],
        "user": {"id": user.id, "email": "grace@example.com", "display_name": "Grace Hopper"},
        "message": "Sign in successful!",
        "session": session,
    }


def test_signing_in_as_a_user_without_a_display_name_answers_an_empty_one(doki: Backend) -> None:
    doki.supabase.add_user("grace@example.com", PASSWORD)
    response = doki.client.post("/auth/signin", json=credentials())
    assert response.json()["user"] == {
        "id": doki.supabase.users["grace@example.com"].id,
        "email": "grace@example.com",
        "display_name": "",
    }


@pytest.mark.parametrize("email", ["grace@example.com", "nobody@example.com"])
def test_a_wrong_password_or_unknown_email_is_the_same_401(doki: Backend, email: str) -> None:
    doki.supabase.add_user("grace@example.com", PASSWORD)
    response = doki.client.post("/auth/signin", json=credentials(email, "wrong password"))
    assert response.status_code == 401
    assert response.json() == {
        "detail": "Invalid email or password",
        "code": "invalid_credentials",
        "hint": "check the email and password",
    }
    assert PASSWORD not in response.text


@pytest.mark.parametrize("password", [PASSWORD, "wrong password"], ids=["right-password", "wrong-password"])
def test_a_banned_user_is_refused_with_a_403_user_banned(doki: Backend, password: str) -> None:
    # Supabase answers 400 `user_banned` to the password grant, and checks the ban before the password.
    doki.supabase.add_user("grace@example.com", PASSWORD)
    doki.supabase.ban("grace@example.com")
    response = doki.client.post("/auth/signin", json=credentials(password=password))
    assert response.status_code == 403
    assert response.json() == {
        "detail": "User is banned",
        "code": "user_banned",
        "hint": "this account is banned in Supabase Auth",
    }
    assert "access_token" not in response.text
    doki.supabase.ban("grace@example.com", banned=False)
    assert doki.client.post("/auth/signin", json=credentials()).status_code == 200


SIGNED_OUT = {"status": "signed_out", "message": "Successfully signed out"}


def test_signing_out_ends_the_users_supabase_sessions(doki: Backend) -> None:
    doki.supabase.add_user("grace@example.com", PASSWORD)
    token = doki.client.post("/auth/signin", json=credentials()).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    response = doki.client.post("/auth/signout", headers=headers)
    assert response.status_code == 200
    assert response.json() == SIGNED_OUT
    assert doki.supabase.signed_out == [doki.supabase.users["grace@example.com"].id]
    assert doki.supabase.sessions == {}
    # A second sign-out of the ended session (Supabase: 403 session_not_found) is fine.
    again = doki.client.post("/auth/signout", headers=headers)
    assert (again.status_code, again.json()) == (200, SIGNED_OUT)
    assert doki.supabase.signed_out == [doki.supabase.users["grace@example.com"].id]


def test_a_token_supabase_no_longer_verifies_is_signed_out_all_the_same(doki: Backend) -> None:
    # The key that signed the token was revoked in Supabase after this server fetched it: the logout is a 403
    # bad_jwt, and there is no session left that the token could end.
    doki.supabase.add_user("grace@example.com", PASSWORD)
    token = doki.client.post("/auth/signin", json=credentials()).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert doki.client.get("/auth/me", headers=headers).status_code == 200  # the key is cached here
    doki.supabase.unpublish(doki.supabase.es256.kid)
    response = doki.client.post("/auth/signout", headers=headers)
    assert (response.status_code, response.json()) == (200, SIGNED_OUT)
    assert doki.supabase.requested_paths.count("/auth/v1/logout") == 1
    assert doki.supabase.signed_out == []


def test_signing_out_with_a_key_supabase_refuses_is_a_502_not_a_sign_out(doki: Backend) -> None:
    doki.supabase.add_user("grace@example.com", PASSWORD)
    token = doki.client.post("/auth/signin", json=credentials()).json()["access_token"]
    doki.supabase.apikeys = {"sb_publishable_someone_elses"}
    response = doki.client.post("/auth/signout", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 502
    assert response.json()["code"] == "supabase_auth_misconfigured"


def test_signing_out_in_development_without_a_token_is_done_without_asking_supabase(
    google: FakeGoogle, supabase: FakeSupabaseAuth
) -> None:
    with backend("development", google, supabase) as doki:
        response = doki.client.post("/auth/signout")
    assert (response.status_code, response.json()) == (200, SIGNED_OUT)
    assert "/auth/v1/logout" not in supabase.requested_paths


def test_signing_out_in_development_without_supabase_or_a_token_is_done(
    google: FakeGoogle, supabase: FakeSupabaseAuth
) -> None:
    with backend("development", google, supabase, supabase_url=None, supabase_anon_key=None) as doki:
        response = doki.client.post("/auth/signout")
    assert (response.status_code, response.json()) == (200, SIGNED_OUT)


def test_signing_out_in_production_needs_a_token(google: FakeGoogle, supabase: FakeSupabaseAuth) -> None:
    with backend("production", google, supabase) as doki:
        response = doki.client.post("/auth/signout")
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"
    assert "/auth/v1/logout" not in supabase.requested_paths


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
    assert {"HTTPBearer": []} in paths["/auth/signout"]["post"]["security"]
    assert "security" not in paths["/auth/signup"]["post"]
    assert "security" not in paths["/auth/signin"]["post"]


def test_sign_out_documents_its_token_as_optional_in_development_only(
    google: FakeGoogle, supabase: FakeSupabaseAuth
) -> None:
    for environment, security in (("development", [{"HTTPBearer": []}, {}]), ("production", [{"HTTPBearer": []}])):
        with backend(environment, google, supabase) as doki:
            spec = doki.client.get("/openapi.json").json()
        assert spec["paths"]["/auth/signout"]["post"]["security"] == security, environment
