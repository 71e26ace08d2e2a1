"""The fake Supabase Auth answers as GoTrue does (supabase/auth at bc32168, `internal/api/...`), on the wire: a
backend tested against it then handles what the real service answers. Each test names the source it holds the fake
to."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.fakes.supabase_auth import FakeSupabaseAuth
from tests.helpers import secret

PASSWORD = secret("the fake GoTrue test's password", "correct horse battery staple")


def post(auth: FakeSupabaseAuth, path: str, body: Any = None, token: str | None = None) -> httpx.Response:
    headers = {"apikey": "sb_publishable_test"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.post(f"{auth.url}/auth/v1{path}", json=body, headers=headers)


def sign_up(auth: FakeSupabaseAuth, email: str = "grace@example.com", **more: Any) -> httpx.Response:
    return post(auth, "/signup", {"email": email, "password": PASSWORD, **more})


def sign_in(auth: FakeSupabaseAuth, email: str = "grace@example.com", password: str = PASSWORD) -> httpx.Response:
    return post(auth, "/token?grant_type=password", {"email": email, "password": password})


def test_email_confirmation_is_on_by_default_as_in_a_new_hosted_project() -> None:
    # conf/configuration.go: GOTRUE_MAILER_AUTOCONFIRM (`Autoconfirm`) has no default, so false; Supabase's
    # dashboard starts a project with "Confirm email" on.
    with FakeSupabaseAuth() as auth:
        assert auth.confirm_email
        body = sign_up(auth).json()
        assert "access_token" not in body and body["confirmation_sent_at"]
        assert sign_in(auth).json()["error_code"] == "email_not_confirmed"
        auth.confirm("grace@example.com")  # the link opened (verify.go signupVerify)
        assert sign_in(auth).status_code == 200


@pytest.mark.parametrize("confirm_email", [True, False])
def test_sign_up_stores_data_as_user_metadata_and_returns_it(
    supabase_auth: FakeSupabaseAuth, confirm_email: bool
) -> None:
    # signup.go:24 (SignupParams.Data) -> models/user.go:65 (UserMetaData, json "user_metadata").
    supabase_auth.confirm_email = confirm_email
    body = sign_up(supabase_auth, data={"display_name": "Grace"}).json()
    user = body["user"] if not confirm_email else body  # a session with its user, or the user alone
    assert user["user_metadata"] == {"display_name": "Grace"}
    assert supabase_auth.users["grace@example.com"].user_metadata == {"display_name": "Grace"}
    supabase_auth.confirm("grace@example.com")
    assert sign_in(supabase_auth).json()["user"]["user_metadata"] == {"display_name": "Grace"}


def test_a_repeated_sign_up_with_autoconfirm_is_422_user_already_exists(supabase_auth: FakeSupabaseAuth) -> None:
    # signup.go:293-295.
    supabase_auth.confirm_email = False
    sign_up(supabase_auth)
    response = sign_up(supabase_auth)
    assert response.status_code == 422
    assert response.json() == {"code": 422, "error_code": "user_already_exists", "msg": "User already registered"}


def test_a_repeated_sign_up_with_confirmation_on_is_200_with_an_obfuscated_user(
    supabase_auth: FakeSupabaseAuth,
) -> None:
    # signup.go:296-300 and sanitizeUser, :349-378.
    real = supabase_auth.add_user("grace@example.com", PASSWORD)
    assert supabase_auth.confirm_email
    response = sign_up(supabase_auth, data={"display_name": "Mallory"})
    assert response.status_code == 200
    user = response.json()
    assert user["id"] != real.id and uuid.UUID(user["id"])
    assert (user["role"], user["identities"], user["email"]) == ("", [], "grace@example.com")
    assert user["user_metadata"] == {"display_name": "Mallory"}
    assert user["app_metadata"] == {"provider": "email", "providers": ["email"]}
    assert "access_token" not in user and "confirmed_at" not in user and user["confirmation_sent_at"]
    assert real.user_metadata == {}
    # Without data the metadata is the empty map ConfigureDefaults made of it (signup.go:59-72): {}, not null.
    assert sign_up(supabase_auth).json()["user_metadata"] == {}


def test_an_unconfirmed_users_sign_up_again_resends_the_link_at_most_once_a_minute(
    supabase_auth: FakeSupabaseAuth,
) -> None:
    # signup.go:197 and :250 (sendConfirmation), mail.go:318-327 and :723-728 (SMTP max frequency).
    first = sign_up(supabase_auth)
    assert first.status_code == 200 and first.json()["identities"]
    again = sign_up(supabase_auth)
    assert again.status_code == 429 and again.json()["error_code"] == "over_email_send_rate_limit"
    supabase_auth.email_max_frequency = 0
    resent = sign_up(supabase_auth)
    assert resent.status_code == 200 and resent.json()["id"] == first.json()["id"]


def test_a_weak_password_carries_its_reasons(supabase_auth: FakeSupabaseAuth) -> None:
    # password.go checkPasswordStrength; errors.go:129-146 (the API version before 2024-01-01).
    response = post(supabase_auth, "/signup", {"email": "grace@example.com", "password": "12345"})
    assert response.status_code == 422
    assert response.json() == {
        "code": 422,
        "error_code": "weak_password",
        "msg": "Password should be at least 6 characters.",
        "weak_password": {"reasons": ["length"]},
    }


def test_sign_ups_disabled_are_refused_first(supabase_auth: FakeSupabaseAuth) -> None:
    # signup.go:115-117.
    supabase_auth.allow_signups = False
    response = post(supabase_auth, "/signup", {"email": "grace@example.com", "password": "1"})
    assert (response.status_code, response.json()["error_code"]) == (422, "signup_disabled")


def test_logout_ends_every_session_of_the_user_then_the_session_is_gone(supabase_auth: FakeSupabaseAuth) -> None:
    # logout.go (scope global, 204); auth.go:146-158 (session_not_found).
    supabase_auth.add_user("grace@example.com", PASSWORD)
    token = sign_in(supabase_auth).json()["access_token"]
    assert post(supabase_auth, "/logout", token=token).status_code == 204
    again = post(supabase_auth, "/logout", token=token)
    assert (again.status_code, again.json()["error_code"]) == (403, "session_not_found")


@pytest.mark.parametrize("authorization", [None, "", "Basic abc"])
def test_logout_without_a_bearer_token_is_401_no_authorization(
    supabase_auth: FakeSupabaseAuth, authorization: str | None
) -> None:
    # auth.go:73-81 (extractBearerToken).
    headers = {"apikey": "sb_publishable_test"}
    if authorization is not None:
        headers["Authorization"] = authorization
    response = httpx.post(f"{supabase_auth.url}/auth/v1/logout", headers=headers)
    assert (response.status_code, response.json()["error_code"]) == (401, "no_authorization")


def test_logout_with_a_token_gotrue_cannot_verify_is_403_bad_jwt(supabase_auth: FakeSupabaseAuth) -> None:
    # auth.go:83-116 (parseJWTClaims): unparsable, signed by a key it does not hold, or expired.
    supabase_auth.add_user("grace@example.com", PASSWORD)
    token = sign_in(supabase_auth).json()["access_token"]
    stranger = supabase_auth.new_key(publish=False)
    for bad in ("not-a-jwt", supabase_auth.mint(key=stranger), supabase_auth.mint({"exp": 1_000_000})):
        response = post(supabase_auth, "/logout", token=bad)
        assert (response.status_code, response.json()["error_code"]) == (403, "bad_jwt")
    supabase_auth.unpublish(supabase_auth.es256.kid)  # the key that signed the session's token, revoked
    response = post(supabase_auth, "/logout", token=token)
    assert (response.status_code, response.json()["error_code"]) == (403, "bad_jwt")
    assert supabase_auth.signed_out == []


def test_logout_for_a_user_that_does_not_exist_is_403_user_not_found(supabase_auth: FakeSupabaseAuth) -> None:
    # auth.go:136-141.
    response = post(supabase_auth, "/logout", token=supabase_auth.mint())
    assert (response.status_code, response.json()["error_code"]) == (403, "user_not_found")


# --- the password grant ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("password", [PASSWORD, "not the password"])
def test_a_banned_user_is_refused_400_user_banned_before_the_password_is_checked(
    supabase_auth: FakeSupabaseAuth, password: str
) -> None:
    # token.go:120-122 (user.IsBanned(), before user.Authenticate at :124).
    supabase_auth.add_user("grace@example.com", PASSWORD)
    supabase_auth.ban("grace@example.com")
    response = sign_in(supabase_auth, password=password)
    assert response.status_code == 400
    assert response.json() == {"code": 400, "error_code": "user_banned", "msg": "User is banned"}
    supabase_auth.ban("grace@example.com", banned=False)
    assert sign_in(supabase_auth).status_code == 200


def test_an_unknown_user_or_one_without_a_password_is_invalid_credentials_even_when_banned(
    supabase_auth: FakeSupabaseAuth,
) -> None:
    # token.go:109-118 come before the ban check.
    supabase_auth.add_user("google@example.com", None)
    supabase_auth.ban("google@example.com")
    for email in ("google@example.com", "nobody@example.com"):
        assert sign_in(supabase_auth, email).json()["error_code"] == "invalid_credentials"


def test_a_sign_in_without_an_email_is_400_validation_failed(supabase_auth: FakeSupabaseAuth) -> None:
    # token.go:105-107.
    response = post(supabase_auth, "/token?grant_type=password", {"password": PASSWORD})
    assert response.json() == {"code": 400, "error_code": "validation_failed", "msg": "missing email or phone"}


# --- emails ---------------------------------------------------------------------------------------------------------


def test_emails_are_stored_lower_cased_and_found_whatever_their_capitals(supabase_auth: FakeSupabaseAuth) -> None:
    # models/user.go NewUser (strings.ToLower), FindUserByEmailAndAudience (`LOWER(email) = ?`, lower-cased);
    # mail.go:720 (validateEmail answers the email lower-cased).
    supabase_auth.confirm_email = False
    body = sign_up(supabase_auth, "Grace@Example.COM").json()
    assert body["user"]["email"] == "grace@example.com"
    assert list(supabase_auth.users) == ["grace@example.com"]
    assert sign_in(supabase_auth, "GRACE@EXAMPLE.COM").json()["user"]["id"] == body["user"]["id"]
    assert sign_up(supabase_auth, "grace@EXAMPLE.com").json()["error_code"] == "user_already_exists"
    added = supabase_auth.add_user("Ada@Example.com", PASSWORD)
    assert added.email == "ada@example.com" and supabase_auth.users["ada@example.com"] is added
    assert sign_in(supabase_auth, "ADA@example.com").status_code == 200


@pytest.mark.parametrize(
    "email",
    [
        "grace@example.com",
        "Grace.Hopper+doki@Mail-1.Example.COM",
        "grace@localhost",  # one label is enough
        "!#$%&'*+/=?^_`{|}~-.@example.com",  # every special the local part may hold, dots anywhere
        "g@" + "b" * 63 + ".example",  # a label of 63 characters
        "g" * 243 + "@example.com",  # 255 bytes
    ],
)
def test_validate_email_takes_what_checkmail_takes(supabase_auth: FakeSupabaseAuth, email: str) -> None:
    # mail.go:709-721; badoux/checkmail ValidateFormat at the commit go.mod pins.
    assert sign_up(supabase_auth, email).status_code == 200


@pytest.mark.parametrize(
    ("email", "message"),
    [
        ("g" * 244 + "@example.com", "An email address is too long"),  # 256 bytes
        ("é" * 122 + "@example.com", "An email address is too long"),  # 134 characters, 256 bytes
        ("é@example.com", "Unable to validate email address: invalid format"),  # no non-ASCII
        ("grace@bücher.example", "Unable to validate email address: invalid format"),  # nor an IDN unencoded
        ("grace", "Unable to validate email address: invalid format"),
        ("grace@", "Unable to validate email address: invalid format"),
        ("@example.com", "Unable to validate email address: invalid format"),
        ("grace@@example.com", "Unable to validate email address: invalid format"),
        ("grace@example..com", "Unable to validate email address: invalid format"),
        ("grace@.example.com", "Unable to validate email address: invalid format"),
        ("grace@example.com.", "Unable to validate email address: invalid format"),
        ("grace@-example.com", "Unable to validate email address: invalid format"),
        ("grace@example-.com", "Unable to validate email address: invalid format"),
        ("grace@mail_1.example.com", "Unable to validate email address: invalid format"),
        ("g@" + "b" * 64 + ".example", "Unable to validate email address: invalid format"),  # a 64-character label
        ('"grace"@example.com', "Unable to validate email address: invalid format"),  # no quoted local part
        ("grace@[127.0.0.1]", "Unable to validate email address: invalid format"),  # nor an address literal
        ("grace hopper@example.com", "Unable to validate email address: invalid format"),
        ("grace@example.com\n", "Unable to validate email address: invalid format"),  # Go's $ is the text's end
    ],
)
def test_validate_email_refuses_what_it_refuses_with_400_validation_failed(
    supabase_auth: FakeSupabaseAuth, email: str, message: str
) -> None:
    # mail.go:709-721: 255 bytes at most (Go's len), then checkmail.ValidateFormat; "%s" of ErrBadFormat.
    response = sign_up(supabase_auth, email)
    assert response.status_code == 400
    assert response.json() == {"code": 400, "error_code": "validation_failed", "msg": message}
    assert supabase_auth.users == {}


def test_a_sign_up_without_an_email_has_no_provider(supabase_auth: FakeSupabaseAuth) -> None:
    # signup.go:59-63 (no email, no phone: no provider) and :158-170, the phone provider off.
    response = post(supabase_auth, "/signup", {"password": PASSWORD})
    assert response.json() == {
        "code": 400,
        "error_code": "validation_failed",
        "msg": "Sign up only available with email provider",
    }


@pytest.mark.parametrize(
    "body",
    [[], "grace", {"email": 7, "password": PASSWORD}, {"email": "grace@example.com", "password": 123456}],
)
def test_a_body_that_does_not_unmarshal_is_400_bad_json(supabase_auth: FakeSupabaseAuth, body: Any) -> None:
    # helpers.go:84-97 (json.Unmarshal into SignupParams).
    response = post(supabase_auth, "/signup", body)
    assert (response.status_code, response.json()["error_code"]) == (400, "bad_json")


# --- password lengths: Go's len counts bytes ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "status"),
    [
        ("ééé", 200),  # 3 characters, 6 bytes: long enough
        ("éé", 422),  # 4 bytes
        ("é" * 36, 200),  # 72 bytes: bcrypt's limit exactly
        ("é" * 37, 400),  # 37 characters, 74 bytes
        ("x" * 73, 400),
    ],
)
def test_password_lengths_are_counted_in_utf8_bytes(
    supabase_auth: FakeSupabaseAuth, password: str, status: int
) -> None:
    # password.go:31-44: both checks are Go's `len`, bytes.
    response = post(supabase_auth, "/signup", {"email": "grace@example.com", "password": password})
    assert response.status_code == status
    if status == 400:
        assert response.json()["msg"] == "Password cannot be longer than 72 characters"
    if status == 422:
        assert response.json()["weak_password"] == {"reasons": ["length"]}


def test_an_unpaired_surrogate_counts_as_the_three_bytes_of_u_fffd(supabase_auth: FakeSupabaseAuth) -> None:
    # encoding/json decodes an unpaired surrogate escape as U+FFFD (3 bytes): two of them are 6, one is 3.
    headers = {"apikey": "sb_publishable_test", "Content-Type": "application/json"}

    def sign_up_with(password: bytes) -> int:
        body = b'{"email": "grace@example.com", "password": "' + password + b'"}'
        return httpx.post(f"{supabase_auth.url}/auth/v1/signup", content=body, headers=headers).status_code

    assert sign_up_with(b"\\ud800") == 422
    assert sign_up_with(b"\\ud800\\ud800") == 200
