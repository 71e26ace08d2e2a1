"""Signing in with Google and connecting Google, through the whole app against fake Google and fake Supabase:
the happy trips in development and production, and every way a hostile or broken trip must fail."""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
import schemathesis
from itsdangerous import TimestampSigner

from doki.auth import DEVELOPMENT_PRINCIPAL
from tests.doki.api.google_harness import (
    FRONTEND_ORIGIN,
    REDIRECT_URI,
    Backend,
    account,
    backend,
    fragment,
)
from tests.fakes.google import SCOPE_DRIVE_READONLY, SCOPE_SHEETS_READONLY, FakeGoogle
from tests.fakes.postgrest import FakePostgrest
from tests.fakes.supabase_auth import FakeSupabaseAuth

ALL_SCOPES = [
    "openid",
    "https://www.googleapis.com/auth/userinfo.email",
    "https://www.googleapis.com/auth/userinfo.profile",
    SCOPE_DRIVE_READONLY,
    SCOPE_SHEETS_READONLY,
]


def documented(doki: Backend, method: str, path: str, response: httpx.Response) -> None:
    """`response` is one the app's own OpenAPI document describes, body and all (schemathesis checks it)."""
    spec = doki.client.get("/openapi.json").json()
    schemathesis.openapi.from_dict(spec)[path][method].validate_response(response)


# --- the authorization request -------------------------------------------------------------------------------


def test_login_sends_the_browser_to_google_with_pkce_offline_access_and_the_exact_redirect_uri(doki: Backend) -> None:
    response = doki.login()
    assert response.status_code == 302
    assert response.headers["cache-control"] == "no-store"
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{doki.google.url}/o/oauth2/v2/auth"
    params = {name: values[0] for name, values in parse_qs(location.query).items()}
    assert params["client_id"] == doki.google.client_id
    assert params["redirect_uri"] == REDIRECT_URI
    assert params["response_type"] == "code"
    assert params["scope"].split() == ["openid", "email", "profile", SCOPE_DRIVE_READONLY, SCOPE_SHEETS_READONLY]
    assert params["access_type"] == "offline"
    assert params["prompt"] == "consent"
    assert params["code_challenge_method"] == "S256"
    assert len(params["code_challenge"]) == 43  # base64url of a SHA-256, unpadded
    assert len(params["state"]) >= 43 and len(params["nonce"]) == 64
    assert response.headers["set-cookie"].startswith("doki_session=")


def test_the_redirect_uri_is_the_configured_one_whatever_host_the_request_names(doki: Backend) -> None:
    response = doki.client.get(
        "/auth/google/login",
        headers={"Host": "evil.example", "X-Forwarded-Host": "evil.example"},
        follow_redirects=False,
    )
    assert parse_qs(urlsplit(response.headers["location"]).query)["redirect_uri"] == [REDIRECT_URI]


def test_two_logins_never_share_a_state_or_a_verifier(doki: Backend) -> None:
    first = parse_qs(urlsplit(doki.login().headers["location"]).query)
    second = parse_qs(urlsplit(doki.login().headers["location"]).query)
    assert first["state"] != second["state"]
    assert first["code_challenge"] != second["code_challenge"]


def test_without_a_google_client_login_answers_503_saying_what_to_set(
    google: FakeGoogle, supabase: FakeSupabaseAuth
) -> None:
    with backend("development", google, supabase, google_client_id=None, google_redirect_uri=None) as doki:
        response = doki.login()
    assert response.status_code == 503
    assert response.json()["code"] == "google_not_configured"
    assert "GOOGLE_CLIENT_ID" in response.json()["hint"]


# --- signing in ----------------------------------------------------------------------------------------------


def test_signing_in_with_google_signs_into_supabase_and_stores_the_google_tokens_encrypted(doki: Backend) -> None:
    response = doki.sign_in_with_google()
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    supabase_user = doki.supabase.users["ada@gmail.com"]
    assert body["user"] == {"id": supabase_user.id, "email": "ada@gmail.com"}
    assert ("google", account(doki.google, "ada@gmail.com").sub) in supabase_user.identities
    assert body["google"] == {
        "connected": True,
        "status": "connected",
        "email": "ada@gmail.com",
        "scopes": sorted(ALL_SCOPES),
        "missing_scopes": [],
        "reconnect": False,
    }
    # The session is a real Supabase session: the backend accepts its access token.
    session = body["session"]
    assert session["token_type"] == "bearer" and session["refresh_token"]
    assert set(session) == {"access_token", "refresh_token", "token_type", "expires_in", "expires_at"}
    me = doki.client.get("/auth/me", headers={"Authorization": f"Bearer {session['access_token']}"})
    assert me.json()["user_id"] == supabase_user.id
    stored = doki.stored(supabase_user.id)
    assert stored is not None and stored.metadata["status"] == "connected"
    refresh_token = doki.google.refresh_tokens_of(account(doki.google, "ada@gmail.com"))[0]
    assert refresh_token not in stored.ciphertext and "ya29." not in stored.ciphertext
    assert refresh_token not in response.text  # Google's tokens never leave the backend


def test_the_sign_in_json_keeps_the_original_backends_status_access_token_and_message(doki: Backend) -> None:
    # The original answered {status: "authenticated", access_token: <Supabase JWT>, user: {id, email}, message}.
    response = doki.sign_in_with_google()
    documented(doki, "GET", "/auth/google/callback", response)
    body = response.json()
    user = doki.supabase.users["ada@gmail.com"]
    assert body == {
        "status": "authenticated",
        "access_token": body["session"]["access_token"],
        "user": {"id": user.id, "email": "ada@gmail.com"},
        "message": "Successfully authenticated with Supabase. Use the access_token for API requests.",
        "session": body["session"],
        "google": body["google"],
    }
    assert doki.client.get("/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"}).status_code == 200


def test_the_id_token_reaches_supabase_with_the_raw_nonce_whose_hash_google_signed(doki: Backend) -> None:
    # The fake Supabase refuses an ID token whose nonce is not the SHA-256 of the one sent alongside it.
    doki.sign_in_with_google()
    assert "/auth/v1/token" in doki.supabase.requested_paths
    assert doki.supabase.sessions  # a session was issued


def test_with_a_frontend_url_the_browser_lands_there_with_the_session_in_the_fragment(
    google: FakeGoogle, supabase: FakeSupabaseAuth
) -> None:
    with backend("production", google, supabase, frontend_url=f"{FRONTEND_ORIGIN}/signed-in?from=google") as doki:
        response = doki.sign_in_with_google()
        assert response.status_code == 302
        location = response.headers["location"]
        assert location.startswith(f"{FRONTEND_ORIGIN}/signed-in?from=google#")
        values = fragment(location)
        assert values["token_type"] == "bearer" and values["google"] == "connected"
        assert int(values["expires_in"]) == 3600 and values["refresh_token"]
        assert "missing_scopes" not in values
        me = doki.client.get("/auth/me", headers={"Authorization": f"Bearer {values['access_token']}"})
        assert me.json()["email"] == "ada@gmail.com"
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["referrer-policy"] == "no-referrer"


@pytest.mark.parametrize(
    ("redirect_to", "lands_on"),
    [
        (f"{FRONTEND_ORIGIN}/projects/7", f"{FRONTEND_ORIGIN}/projects/7#"),
        ("/projects/7?tab=sheets", f"{FRONTEND_ORIGIN}/projects/7?tab=sheets#"),
    ],
)
def test_redirect_to_on_the_frontends_origin_is_where_the_browser_lands(
    redirect_to: str, lands_on: str, google: FakeGoogle, supabase: FakeSupabaseAuth
) -> None:
    with backend("production", google, supabase, frontend_url=f"{FRONTEND_ORIGIN}/") as doki:
        response = doki.sign_in_with_google(redirect_to=redirect_to)
    assert response.headers["location"].startswith(lands_on)


@pytest.mark.parametrize(
    "redirect_to",
    [
        "https://evil.example/steal",
        "//evil.example/steal",
        "/\t/evil.example",
        "/\\evil.example",
        "https://app.doki.com@evil.example/",
        "https://app.doki.com.evil.example/",
        "http://app.doki.com/",  # right host, wrong scheme: another origin
        "javascript:alert(1)",
        "https://app.doki.com/#access_token=forged",
    ],
)
def test_a_redirect_anywhere_but_an_allowed_frontend_origin_is_refused_before_google_is_asked(
    redirect_to: str, google: FakeGoogle, supabase: FakeSupabaseAuth
) -> None:
    with backend("production", google, supabase, frontend_url=f"{FRONTEND_ORIGIN}/done") as doki:
        response = doki.login(redirect_to=redirect_to)
    assert response.status_code == 400
    assert response.json()["code"] == "redirect_not_allowed"
    assert "set-cookie" not in response.headers


def test_production_never_hands_a_session_to_a_plain_http_frontend_even_on_an_allowed_origin(
    google: FakeGoogle, supabase: FakeSupabaseAuth
) -> None:
    origins = f"{FRONTEND_ORIGIN},http://app.example.com,http://localhost:3000"
    with backend("production", google, supabase, allowed_origins=origins) as doki:
        plain = doki.login(redirect_to="http://app.example.com/landing")
        _, headers = doki.signed_in()
        connect = doki.client.post(
            "/auth/google/connect", headers=headers, json={"redirect_to": "http://app.example.com/landing"}
        )
        local = doki.login(redirect_to="http://localhost:3000/landing")  # loopback: a rehearsal on this machine
    for refused in (plain, connect):
        assert refused.status_code == 400
        assert refused.json()["code"] == "redirect_not_allowed"
        assert "not https" in refused.json()["detail"]
    assert "set-cookie" not in plain.headers
    assert local.status_code == 302


def test_development_lands_on_a_plain_http_frontend(google: FakeGoogle, supabase: FakeSupabaseAuth) -> None:
    with backend("development", google, supabase, allowed_origins="http://app.example.com") as doki:
        response = doki.sign_in_with_google(redirect_to="http://app.example.com/landing")
    assert response.headers["location"].startswith("http://app.example.com/landing#access_token=")


def test_a_relative_redirect_without_a_frontend_url_is_refused(doki: Backend) -> None:
    response = doki.login(redirect_to="/projects")
    assert response.json()["code"] == "redirect_not_allowed"


def test_development_without_supabase_stores_google_for_the_development_user(
    google: FakeGoogle, supabase: FakeSupabaseAuth
) -> None:
    google.add_spreadsheet(google.accounts[0], "Budget")
    with backend("development", google, supabase, supabase_url=None, supabase_anon_key=None) as doki:
        body = doki.sign_in_with_google().json()
        assert body["user"]["id"] == DEVELOPMENT_PRINCIPAL.user_id and body["session"] is None
        # No Supabase, no token to hand over: requests without one run as the development user.
        assert (body["status"], body["access_token"]) == ("authenticated", "")
        assert body["message"] == "Signed in as the development user: requests without a token run as this user."
        # Development requests without a token run as that user, so its spreadsheets are right there.
        listed = doki.client.get("/connectors/sheets/list")
    assert [s["name"] for s in listed.json()] == ["Budget"]


def test_supabase_refusing_the_google_id_token_is_a_502_that_says_to_enable_the_provider(
    google: FakeGoogle, fake_postgrest: FakePostgrest
) -> None:
    with FakeSupabaseAuth() as untrusting:  # its Google provider is off
        untrusting.serve_rest_from(fake_postgrest.url)
        with backend("production", google, untrusting) as doki:
            response = doki.sign_in_with_google()
    assert response.status_code == 502
    assert response.json()["code"] == "supabase_google_sign_in_refused"
    assert "Google provider" in response.json()["hint"]
    assert fake_postgrest.rows() == []


def test_a_banned_supabase_user_signing_in_with_google_is_told_so_not_blamed_on_the_provider(doki: Backend) -> None:
    doki.sign_in_with_google()
    doki.supabase.users["ada@gmail.com"].banned = True
    response = doki.sign_in_with_google()
    assert response.status_code == 403
    assert response.json()["code"] == "user_banned"


def test_a_new_google_user_where_sign_ups_are_disabled_is_told_so(doki: Backend) -> None:
    doki.supabase.allow_signups = False
    response = doki.sign_in_with_google()
    assert response.status_code == 403
    assert response.json()["code"] == "signup_disabled"


# --- hostile and broken round trips --------------------------------------------------------------------------


def test_a_replayed_callback_is_refused_even_with_the_session_cookie_from_before(doki: Backend) -> None:
    start = doki.login()
    cookie = doki.client.cookies["doki_session"]
    path = doki.back_from_google(start.headers["location"])
    assert doki.callback(path).status_code == 200
    doki.client.cookies.clear()
    replay = doki.callback(path, headers={"Cookie": f"doki_session={cookie}"})
    assert replay.status_code == 400
    assert replay.json()["code"] == "oauth_state_used"
    assert doki.google.calls("/token") == 1  # the code was never offered to Google twice


def test_the_callback_clears_the_round_trip_from_the_session(doki: Backend) -> None:
    path = doki.back_from_google(doki.login().headers["location"])
    doki.callback(path)
    again = doki.callback(path)
    assert again.status_code == 400
    assert again.json()["code"] == "oauth_session_missing"


def test_a_callback_in_a_browser_that_never_started_the_sign_in_is_refused(doki: Backend) -> None:
    # Login CSRF: the attacker's own code and state, delivered to the victim's browser.
    path = doki.back_from_google(doki.login().headers["location"])
    doki.client.cookies.clear()
    response = doki.callback(path)
    assert response.status_code == 400
    assert response.json()["code"] == "oauth_session_missing"
    assert doki.google.calls("/token") == 0


def test_a_connect_callback_in_a_browser_that_never_started_the_connect_links_nothing(doki: Backend) -> None:
    # Account-linking CSRF: the attacker starts a connect for their own Doki user and gets the victim's browser to
    # consent with the victim's Google account. The grant is parked, waiting for a confirmation neither can give.
    attacker_id, attacker = doki.signed_in("mallory@example.com")
    start = doki.client.post("/auth/google/connect", headers=attacker)
    path = doki.back_from_google(start.json()["authorization_url"])
    doki.client.cookies.clear()  # the victim's browser: it never started this round trip
    response = doki.callback(path)
    assert response.status_code == 200
    code = response.json()["google"]["connect_code"]
    assert response.json() == {
        "status": "pending",
        "access_token": "",
        "user": {"id": attacker_id, "email": "ada@gmail.com"},
        "message": "Confirm connecting Google: POST /auth/google/connect/complete with this connect_code.",
        "session": None,
        "google": {"status": "pending", "connect_code": code},
    }
    documented(doki, "GET", "/auth/google/callback", response)
    assert doki.stored(attacker_id) is None

    _, victim = doki.signed_in("victim@example.com")
    as_victim = doki.client.post("/auth/google/connect/complete", headers=victim, json={"connect_code": code})
    assert as_victim.status_code == 409
    assert as_victim.json()["code"] == "google_connect_not_pending"
    guessed = doki.client.post("/auth/google/connect/complete", headers=attacker, json={"connect_code": "guess"})
    assert guessed.status_code == 400
    assert guessed.json()["code"] == "google_connect_code_invalid"
    assert doki.stored(attacker_id) is None


def test_a_login_callback_in_a_browser_that_never_started_it_is_still_refused_with_a_connect_pending(
    doki: Backend,
) -> None:
    _, headers = doki.signed_in()
    doki.client.post("/auth/google/connect", headers=headers)  # kept server-side: must not stand in for a login
    path = doki.back_from_google(doki.login().headers["location"])
    doki.client.cookies.clear()
    response = doki.callback(path)
    assert response.json()["code"] == "oauth_session_missing"
    assert doki.google.calls("/token") == 0


def test_a_state_from_another_browser_session_is_refused_and_ends_this_sessions_round_trip(doki: Backend) -> None:
    attacker_path = doki.back_from_google(doki.login().headers["location"])
    doki.client.cookies.clear()
    own = doki.login()  # the victim's own round trip
    response = doki.callback(attacker_path)
    assert response.status_code == 400
    assert response.json()["code"] == "oauth_state_mismatch"
    assert doki.google.calls("/token") == 0
    # Single use: the victim's state is gone too, so it cannot be raced.
    assert doki.callback(doki.back_from_google(own.headers["location"])).json()["code"] == "oauth_session_missing"


def test_a_callback_without_a_state_is_refused(doki: Backend) -> None:
    doki.login()
    response = doki.callback("/auth/google/callback?code=4/0Aforged")
    assert response.json()["code"] == "oauth_state_mismatch"


def test_a_session_whose_round_trip_lacks_its_pkce_verifier_is_refused(doki: Backend) -> None:
    start = doki.login()
    state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
    path = doki.back_from_google(start.headers["location"])
    # A session signed with the real key (as a bug elsewhere could write it) but without the verifier.
    flow = {"state": state, "nonce": "n" * 43, "created_at": 0, "user_id": None, "redirect_to": None}
    secret = doki.app.state.settings.session_secret_key.get_secret_value()
    payload = base64.b64encode(json.dumps({"google_oauth": flow}).encode())
    forged = TimestampSigner(secret).sign(payload).decode()
    doki.client.cookies.clear()
    response = doki.callback(path, headers={"Cookie": f"doki_session={forged}"})
    assert response.status_code == 400
    assert response.json()["code"] == "oauth_session_invalid"
    assert doki.google.calls("/token") == 0


def test_a_session_cookie_signed_with_another_key_counts_as_no_session(doki: Backend) -> None:
    start = doki.login()
    state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
    flow = {"state": state, "verifier": "v" * 86, "nonce": "n" * 43, "created_at": 0}
    payload = base64.b64encode(json.dumps({"google_oauth": flow}).encode())
    forged = TimestampSigner("not-the-server-key-at-all-0123456789").sign(payload).decode()
    doki.client.cookies.clear()
    response = doki.callback(
        doki.back_from_google(start.headers["location"]), headers={"Cookie": f"doki_session={forged}"}
    )
    assert response.json()["code"] == "oauth_session_missing"


def test_a_round_trip_older_than_fifteen_minutes_is_refused(doki: Backend) -> None:
    path = doki.back_from_google(doki.login().headers["location"])
    later = doki.app.state.upstreams.clock() + 16 * 60
    doki.app.state.upstreams.clock = lambda: later
    response = doki.callback(path)
    assert response.json()["code"] == "oauth_flow_expired"


def test_a_refused_callback_of_a_round_trip_with_a_redirect_sends_the_browser_back_with_the_error(
    google: FakeGoogle, supabase: FakeSupabaseAuth
) -> None:
    with backend("production", google, supabase, frontend_url=f"{FRONTEND_ORIGIN}/done") as doki:
        path = doki.back_from_google(doki.login(redirect_to="/projects/7").headers["location"])
        later = doki.app.state.upstreams.clock() + 16 * 60
        doki.app.state.upstreams.clock = lambda: later
        expired = doki.callback(path)
    assert expired.status_code == 302
    assert expired.headers["location"].startswith(f"{FRONTEND_ORIGIN}/projects/7#")
    assert fragment(expired.headers["location"]) == {
        "error": "oauth_flow_expired",
        "error_description": "the sign-in took too long",
    }


def test_a_replayed_callback_with_a_frontend_lands_there_with_the_error(
    google: FakeGoogle, supabase: FakeSupabaseAuth
) -> None:
    with backend("production", google, supabase, frontend_url=f"{FRONTEND_ORIGIN}/done") as doki:
        start = doki.login()
        cookie = doki.client.cookies["doki_session"]
        path = doki.back_from_google(start.headers["location"])
        assert "access_token" in fragment(doki.callback(path).headers["location"])
        doki.client.cookies.clear()
        replay = doki.callback(path, headers={"Cookie": f"doki_session={cookie}"})
        doki.client.cookies.clear()
        missing = doki.callback(path)
    assert replay.status_code == 302
    assert fragment(replay.headers["location"])["error"] == "oauth_state_used"
    # Without a round trip in the session nothing says where it was for: FRONTEND_URL.
    assert missing.status_code == 302
    assert missing.headers["location"].startswith(f"{FRONTEND_ORIGIN}/done#")
    assert fragment(missing.headers["location"])["error"] == "oauth_session_missing"
    assert doki.google.calls("/token") == 1


def test_a_code_whose_pkce_verifier_does_not_match_is_refused_by_google(doki: Backend) -> None:
    # Two round trips in one browser: the code of the first, redeemed with the second's verifier.
    first_path = doki.back_from_google(doki.login().headers["location"])
    first_state = parse_qs(urlsplit(first_path).query)["state"][0]
    second = doki.login()
    second_state = parse_qs(urlsplit(second.headers["location"]).query)["state"][0]
    swapped = first_path.replace(quote(first_state, safe=""), quote(second_state, safe=""))
    swapped = swapped.replace(f"state={first_state}", f"state={second_state}")
    response = doki.callback(swapped)
    assert response.status_code == 400
    assert response.json()["code"] == "google_code_rejected"
    assert "verifier" in response.json()["detail"]


def test_refusing_consent_is_a_403_that_says_to_allow_access(doki: Backend) -> None:
    doki.google.will_consent(deny=True)
    response = doki.sign_in_with_google()
    assert response.status_code == 403
    assert response.json()["code"] == "google_access_denied"


def test_refusing_consent_with_a_frontend_sends_the_error_to_the_frontend(
    google: FakeGoogle, supabase: FakeSupabaseAuth
) -> None:
    google.will_consent(deny=True)
    with backend("production", google, supabase, frontend_url=f"{FRONTEND_ORIGIN}/done") as doki:
        response = doki.sign_in_with_google()
    assert response.status_code == 302
    assert fragment(response.headers["location"])["error"] == "google_access_denied"


def test_a_wrong_client_secret_is_a_502_that_says_how_to_fix_the_oauth_client(doki: Backend) -> None:
    doki.google.client_secret = "GOCSPX-rotated"
    response = doki.sign_in_with_google()
    assert response.status_code == 502
    error = response.json()
    assert error["code"] == "google_client_misconfigured"
    assert "GOOGLE_CLIENT_SECRET" in error["hint"]


def test_google_failing_during_the_code_exchange_is_retried_and_then_a_503(doki: Backend) -> None:
    doki.google.fail_next(10, 503, path="/token")
    response = doki.sign_in_with_google()
    assert response.status_code == 503
    assert response.json()["code"] == "google_unavailable"
    assert response.headers["retry-after"] == "30"
    assert doki.sleeps == [0.5, 1.0, 2.0]


# --- scopes --------------------------------------------------------------------------------------------------


def test_a_partial_grant_is_stored_as_incomplete_and_the_api_says_what_to_reconnect(doki: Backend) -> None:
    doki.google.will_consent(scopes=["openid", "https://www.googleapis.com/auth/userinfo.email"])
    body = doki.sign_in_with_google().json()
    assert body["google"]["status"] == "incomplete"
    assert body["google"]["missing_scopes"] == [
        "https://www.googleapis.com/auth/userinfo.profile",
        SCOPE_DRIVE_READONLY,
        SCOPE_SHEETS_READONLY,
    ]
    headers = {"Authorization": f"Bearer {body['session']['access_token']}"}
    status = doki.client.get("/auth/google", headers=headers).json()
    assert status["status"] == "incomplete" and status["reconnect"] is True
    listed = doki.client.get("/connectors/sheets/list", headers=headers)
    assert listed.status_code == 409
    assert listed.json()["code"] == "google_reconnect_required"
    assert listed.json()["missing_scopes"] == [SCOPE_DRIVE_READONLY, SCOPE_SHEETS_READONLY]
    assert listed.json()["connect"] == "POST /auth/google/connect"
    assert doki.google.calls("/drive") == 0


def test_a_partial_grant_with_a_frontend_names_the_missing_scopes_in_the_fragment(
    google: FakeGoogle, supabase: FakeSupabaseAuth
) -> None:
    google.will_consent(scopes=["openid", "https://www.googleapis.com/auth/userinfo.email", SCOPE_DRIVE_READONLY])
    with backend("production", google, supabase, frontend_url=f"{FRONTEND_ORIGIN}/done") as doki:
        values = fragment(doki.sign_in_with_google().headers["location"])
    assert values["google"] == "incomplete"
    assert values["missing_scopes"].split() == [
        "https://www.googleapis.com/auth/userinfo.profile",
        SCOPE_SHEETS_READONLY,
    ]


# --- connecting Google to a signed-in user -------------------------------------------------------------------


def test_connect_stores_the_tokens_for_the_signed_in_user_without_a_new_supabase_sign_in(doki: Backend) -> None:
    user_id, headers = doki.signed_in("grace@example.com")
    response = doki.connect(headers["Authorization"].removeprefix("Bearer "))
    assert response.status_code == 200
    body = response.json()
    assert body == {
        "status": "connected",
        "access_token": "",  # the user has their Supabase session already; none is issued
        "user": {"id": user_id, "email": "ada@gmail.com"},
        "message": "Google is connected to the signed-in user.",
        "session": None,
        "google": {
            "connected": True,
            "status": "connected",
            "email": "ada@gmail.com",
            "scopes": sorted(ALL_SCOPES),
            "missing_scopes": [],
            "reconnect": False,
        },
    }
    documented(doki, "GET", "/auth/google/callback", response)
    assert "/auth/v1/token" not in doki.supabase.requested_paths
    assert doki.client.get("/auth/google", headers=headers).json()["status"] == "connected"
    assert doki.stored(user_id) is not None
    assert doki.app.state.store.get(user_id, "google_connect") is None  # the server-side copy is used up


def test_an_id_token_whose_nonce_is_not_this_round_trips_is_refused(doki: Backend) -> None:
    # Connecting does not go through Supabase, which would check the nonce too: the backend checks it itself.
    user_id, headers = doki.signed_in()
    doki.google.nonce_override = "0" * 64
    response = doki.connect(headers["Authorization"].removeprefix("Bearer "))
    assert response.status_code == 400
    assert response.json()["code"] == "oauth_nonce_mismatch"
    assert doki.stored(user_id) is None


def test_connect_with_a_redirect_sends_the_browser_back_to_the_frontend(
    google: FakeGoogle, supabase: FakeSupabaseAuth
) -> None:
    with backend("production", google, supabase) as doki:
        _, headers = doki.signed_in()
        response = doki.connect(headers["Authorization"].removeprefix("Bearer "), redirect_to=f"{FRONTEND_ORIGIN}/x")
    assert response.status_code == 302
    assert response.headers["location"] == f"{FRONTEND_ORIGIN}/x#google=connected"


def test_connect_from_a_frontend_on_another_site_completes_with_the_users_own_token(
    google: FakeGoogle, supabase: FakeSupabaseAuth
) -> None:
    with backend("production", google, supabase) as doki:
        user_id, headers = doki.signed_in()
        start = doki.client.post("/auth/google/connect", headers=headers, json={"redirect_to": f"{FRONTEND_ORIGIN}/x"})
        path = doki.back_from_google(start.json()["authorization_url"])
        doki.client.cookies.clear()  # a cross-site XHR's cookie: the browser never sends it to the callback
        landed = doki.callback(path)
        values = fragment(landed.headers["location"])
        assert landed.headers["location"].startswith(f"{FRONTEND_ORIGIN}/x#")
        assert values["google"] == "pending" and "access_token" not in values
        assert doki.stored(user_id) is None
        replay = doki.callback(path)  # the kept round trip was taken: a replay finds nothing
        assert replay.json()["code"] == "oauth_session_missing"

        completed = doki.client.post(
            "/auth/google/connect/complete", headers=headers, json={"connect_code": values["connect_code"]}
        )
        assert completed.status_code == 200
        assert completed.json()["status"] == "connected" and completed.json()["email"] == "ada@gmail.com"
        assert doki.stored(user_id) is not None
        google.add_spreadsheet(account(google, "ada@gmail.com"), "Budget")
        assert doki.client.get("/connectors/sheets/list", headers=headers).status_code == 200
        again = doki.client.post(
            "/auth/google/connect/complete", headers=headers, json={"connect_code": values["connect_code"]}
        )
        assert again.json()["code"] == "google_connect_not_pending"
        assert google.calls("/token") == 1


def test_a_parked_connect_expires_with_its_round_trip_and_goes_with_a_disconnect(doki: Backend) -> None:
    user_id, headers = doki.signed_in()

    def park() -> str:
        start = doki.client.post("/auth/google/connect", headers=headers)
        path = doki.back_from_google(start.json()["authorization_url"])
        doki.client.cookies.clear()
        code: str = doki.callback(path).json()["google"]["connect_code"]
        return code

    code = park()
    later = doki.app.state.upstreams.clock() + 16 * 60
    doki.app.state.upstreams.clock = lambda: later
    late = doki.client.post("/auth/google/connect/complete", headers=headers, json={"connect_code": code})
    assert late.json()["code"] == "google_connect_not_pending"
    code = park()
    doki.client.delete("/auth/google", headers=headers)
    gone = doki.client.post("/auth/google/connect/complete", headers=headers, json={"connect_code": code})
    assert gone.json()["code"] == "google_connect_not_pending"
    assert doki.stored(user_id) is None


def test_connect_refuses_a_foreign_redirect(doki: Backend) -> None:
    _, headers = doki.signed_in()
    response = doki.client.post("/auth/google/connect", headers=headers, json={"redirect_to": "https://evil.example"})
    assert response.status_code == 400
    assert response.json()["code"] == "redirect_not_allowed"


def test_connect_in_production_needs_a_signed_in_user(google: FakeGoogle, supabase: FakeSupabaseAuth) -> None:
    with backend("production", google, supabase) as doki:
        response = doki.client.post("/auth/google/connect")
    assert response.status_code == 401


def test_a_reconnect_without_a_refresh_token_keeps_the_stored_one(doki: Backend) -> None:
    _, headers = doki.signed_in()
    token = headers["Authorization"].removeprefix("Bearer ")
    doki.connect(token)
    ada = account(doki.google, "ada@gmail.com")
    [refresh_token] = doki.google.refresh_tokens_of(ada)
    doki.google.will_consent(ada, refresh_token=False)
    assert doki.connect(token).json()["google"]["status"] == "connected"
    # The new access token dies; the kept refresh token gets another.
    doki.google.expire_access_tokens()
    doki.google.add_spreadsheet(ada, "Budget")
    assert doki.client.get("/connectors/sheets/list", headers=headers).status_code == 200
    refreshes = [p for m, path, p in doki.google.requests if path == "/token" and p["grant_type"] == ["refresh_token"]]
    assert [p["refresh_token"] for p in refreshes] == [[refresh_token]]


def test_a_reconnect_with_another_google_account_does_not_keep_the_first_accounts_refresh_token(
    doki: Backend,
) -> None:
    _, headers = doki.signed_in()
    token = headers["Authorization"].removeprefix("Bearer ")
    doki.connect(token)
    bob = doki.google.add_account("bob@gmail.com")
    doki.google.will_consent(bob, refresh_token=False)
    google = doki.connect(token).json()["google"]
    assert google["email"] == "bob@gmail.com"
    assert google["status"] == "incomplete" and google["missing_scopes"] == ["offline_access"]


# --- status and disconnect -----------------------------------------------------------------------------------


def test_status_without_a_connection_says_not_connected(doki: Backend) -> None:
    _, headers = doki.signed_in()
    assert doki.client.get("/auth/google", headers=headers).json() == {
        "connected": False,
        "status": "not_connected",
        "email": None,
        "scopes": [],
        "missing_scopes": [],
        "reconnect": False,
    }


def test_disconnect_revokes_at_google_and_deletes_the_tokens(doki: Backend) -> None:
    user_id, headers = doki.signed_in()
    doki.connect(headers["Authorization"].removeprefix("Bearer "))
    [refresh_token] = doki.google.refresh_tokens_of(account(doki.google, "ada@gmail.com"))
    response = doki.client.delete("/auth/google", headers=headers)
    assert response.json() == {"disconnected": True, "revoked": True}
    assert doki.google.revoked_tokens == [refresh_token]
    assert doki.stored(user_id) is None
    assert doki.client.get("/auth/google", headers=headers).json()["status"] == "not_connected"
    assert doki.client.get("/connectors/sheets/list", headers=headers).json()["code"] == "google_not_connected"


def test_disconnect_deletes_the_tokens_even_when_google_cannot_be_reached(doki: Backend) -> None:
    user_id, headers = doki.signed_in()
    doki.connect(headers["Authorization"].removeprefix("Bearer "))
    doki.google.fail_next(10, 503, path="/revoke")
    assert doki.client.delete("/auth/google", headers=headers).json() == {"disconnected": True, "revoked": False}
    assert doki.stored(user_id) is None


def test_a_credential_store_that_refuses_the_secret_key_is_a_503_for_google_routes_too(
    google: FakeGoogle, supabase: FakeSupabaseAuth, fake_postgrest: FakePostgrest
) -> None:
    with backend("production", google, supabase) as doki:
        _, headers = doki.signed_in()
        fake_postgrest.apikey = "sb_secret_RotatedAwayRotatedAway0123456789"  # SUPABASE_SECRET_KEY is stale
        responses = [
            doki.client.get("/auth/google", headers=headers),
            doki.client.delete("/auth/google", headers=headers),
            doki.client.get("/connectors/sheets/list", headers=headers),
        ]
    assert [r.status_code for r in responses] == [503, 503, 503]
    assert {r.json()["code"] for r in responses} == {"store_misconfigured"}


def test_disconnect_without_a_connection_changes_nothing(doki: Backend) -> None:
    _, headers = doki.signed_in()
    assert doki.client.delete("/auth/google", headers=headers).json() == {"disconnected": False, "revoked": False}
    assert doki.google.calls("/revoke") == 0


def test_every_google_route_but_the_browsers_declares_the_bearer_scheme(doki: Backend) -> None:
    paths = doki.client.get("/openapi.json").json()["paths"]
    # Development also lists "no token" ({}): it runs tokenless requests as its development user.
    assert {"HTTPBearer": []} in paths["/auth/google"]["get"]["security"]
    assert {"HTTPBearer": []} in paths["/auth/google"]["delete"]["security"]
    assert {"HTTPBearer": []} in paths["/auth/google/connect"]["post"]["security"]
    assert {"HTTPBearer": []} in paths["/auth/google/connect/complete"]["post"]["security"]
    assert "security" not in paths["/auth/google/login"]["get"]
    assert "security" not in paths["/auth/google/callback"]["get"]
