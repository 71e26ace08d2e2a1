"""The app `create_app` builds: health contract, docs, error bodies, CORS, sessions, and refusing to start when
unsafe."""

from __future__ import annotations

import base64
import os
import sys
from pathlib import Path

import pytest
from fastapi import HTTPException, Request
from fastapi.testclient import TestClient

from doki.app import create_app
from doki.settings import ConfigError
from tests.doki.conftest import development_settings, production_settings
from tests.fakes.postgrest import FakePostgrest
from tests.helpers import clean_env, run, secret


def test_root_answers_exactly_the_guides_health_body() -> None:
    with TestClient(create_app(development_settings())) as client:
        response = client.get("/")
    assert response.status_code == 200
    assert response.text == '{"message":"Doki Backend up"}'


def test_docs_and_openapi_are_served_with_a_bearer_scheme() -> None:
    with TestClient(create_app(development_settings())) as client:
        assert client.get("/docs").status_code == 200
        spec = client.get("/openapi.json").json()
    assert spec["info"]["title"] == "Doki Backend"
    assert {"/", "/auth/me"} <= set(spec["paths"])
    assert spec["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "A Supabase Auth access token",
    }


def test_cors_preflight_from_an_allowed_origin_allows_credentials_and_auth_headers(
    fake_postgrest: FakePostgrest,
) -> None:
    app = create_app(production_settings(fake_postgrest.url))
    with TestClient(app) as client:
        response = client.options(
            "/auth/me",
            headers={
                "Origin": "https://app.doki.com",
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://app.doki.com"
    assert response.headers["access-control-allow-credentials"] == "true"
    assert response.headers["access-control-allow-headers"] == "authorization, content-type"


def test_cors_preflight_from_an_allowed_origin_allows_any_request_header_and_method(
    fake_postgrest: FakePostgrest,
) -> None:
    # As the backend Doki replaces did: its frontends send headers of their own.
    with TestClient(create_app(production_settings(fake_postgrest.url))) as client:
        response = client.options(
            "/connectors/supabase/connect",
            headers={
                "Origin": "https://app.doki.com",
                "Access-Control-Request-Method": "HEAD",
                "Access-Control-Request-Headers": "x-requested-with, x-custom",
            },
        )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://app.doki.com"
    assert response.headers["access-control-allow-credentials"] == "true"
    # Mirrored, never `*`: with credentials, browsers take `*` literally, as a header named "*".
    assert response.headers["access-control-allow-headers"] == "x-requested-with, x-custom"
    methods = set(response.headers["access-control-allow-methods"].split(", "))
    assert {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"} <= methods


def test_cors_refuses_any_request_header_from_an_origin_that_is_not_listed(fake_postgrest: FakePostgrest) -> None:
    with TestClient(create_app(production_settings(fake_postgrest.url))) as client:
        response = client.options(
            "/auth/me",
            headers={
                "Origin": "https://evil.example",
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "x-requested-with, x-custom",
            },
        )
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers


def test_cors_gives_nothing_to_an_origin_that_is_not_listed(fake_postgrest: FakePostgrest) -> None:
    with TestClient(create_app(production_settings(fake_postgrest.url))) as client:
        preflight = client.options(
            "/auth/me",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        )
        simple = client.get("/", headers={"Origin": "https://evil.example"})
    assert preflight.status_code == 400
    assert "access-control-allow-origin" not in preflight.headers
    assert "access-control-allow-origin" not in simple.headers


@pytest.mark.parametrize("environment", ["development", "production"])
def test_create_app_refuses_a_wildcard_origin(environment: str, fake_postgrest: FakePostgrest) -> None:
    # Any header from any site, with the user's credentials, is what exact origins keep from happening.
    if environment == "production":
        settings = production_settings(fake_postgrest.url, allowed_origins="*")
    else:
        settings = development_settings(allowed_origins="https://app.doki.com,*")
    with pytest.raises(ConfigError) as caught:
        create_app(settings)
    assert caught.value.problems[0].startswith("ALLOWED_ORIGINS contains '*'")


def test_an_error_is_the_message_as_detail_with_code_and_hint_beside_it() -> None:
    # Readable as the original backend's `{"detail": "<text>"}` (its frontend does `alert(data.detail)`) and as ours.
    with TestClient(create_app(development_settings())) as client:
        response = client.post("/auth/signin", json={"email": "ada@example.com", "password": "correct horse"})
    assert response.status_code == 503
    assert response.json() == {
        "detail": "Supabase Auth is not configured on this server",
        "code": "supabase_not_configured",
        "hint": "set SUPABASE_URL and SUPABASE_ANON_KEY (or SUPABASE_SECRET_KEY)",
    }


def test_fastapis_and_starlettes_own_answers_keep_their_text_as_detail_with_a_code_and_hint_beside_it() -> None:
    with TestClient(create_app(development_settings())) as client:
        invalid = client.post("/auth/signin", json={"email": "ada@example.com"})
        unreadable = client.post("/auth/signin", content=b"\xff", headers={"Content-Type": "application/json"})
        unknown = client.get("/nowhere")
        wrong_method = client.delete("/")
    assert invalid.status_code == 422
    assert invalid.json() == {
        "detail": [
            {
                "type": "missing",
                "loc": ["body", "password"],
                "msg": "Field required",
                "input": {"email": "ada@example.com"},
            }
        ]
    }
    # FastAPI's 422 keeps its list, as the original backend answered it; the rest gain a code beside their text.
    assert (unreadable.status_code, unreadable.json()) == (
        400,
        {
            "detail": "There was an error parsing the body",
            "code": "unreadable_body",
            "hint": "send the body as JSON, with 'Content-Type: application/json'",
        },
    )
    assert (unknown.status_code, unknown.json()["detail"], unknown.json()["code"]) == (404, "Not Found", "not_found")
    assert (wrong_method.status_code, wrong_method.json()["detail"], wrong_method.json()["code"]) == (
        405,
        "Method Not Allowed",
        "method_not_allowed",
    )
    assert wrong_method.headers["allow"] == "GET"


def test_an_error_keeps_its_headers_extra_fields_and_is_ascii_whatever_its_message_holds() -> None:
    app = create_app(development_settings())

    @app.get("/_refused")
    async def refused() -> None:
        detail = {"code": "x_refused", "message": "Ça ne va pas", "hint": "réessayez", "reasons": ["length"]}
        raise HTTPException(429, detail=detail, headers={"Retry-After": "7"})

    @app.get("/_unchanged")
    async def unchanged() -> None:
        raise HTTPException(304, detail={"code": "x", "message": "never sent", "hint": "h"}, headers={"ETag": '"v1"'})

    with TestClient(app) as client:
        response = client.get("/_refused")
        not_modified = client.get("/_unchanged")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    assert response.content == (
        b'{"detail":"\\u00c7a ne va pas","code":"x_refused","hint":"r\\u00e9essayez","reasons":["length"]}'
    )
    # A status that has no body (304, 204) has none, as FastAPI answers it; its headers stay.
    assert (not_modified.status_code, not_modified.content, not_modified.headers["etag"]) == (304, b"", '"v1"')


def test_a_failure_no_handler_expected_is_a_json_500_a_browser_can_read_and_its_cause_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Starlette's last resort answers plain text from outside CORS: a browser would report a CORS error, and the
    # original's frontend, which reads every error as JSON, would throw.
    app = create_app(development_settings())

    @app.get("/_broken")
    async def broken() -> None:
        raise RuntimeError("the cause, for the log only")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/_broken", headers={"Origin": "http://localhost:3000"})
    assert response.status_code == 500
    assert response.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert response.json() == {
        "detail": "Internal Server Error",
        "code": "internal_error",
        "hint": "retry; if it keeps failing, the server's log has the cause",
    }
    [logged] = [r for r in caplog.records if r.getMessage() == "unexpected failure answering GET /_broken"]
    assert logged.exc_info is not None and str(logged.exc_info[1]) == "the cause, for the log only"


@pytest.mark.parametrize(("environment", "secure"), [("development", False), ("production", True)])
def test_the_session_cookie_is_short_lived_lax_and_secure_in_production(
    environment: str, secure: bool, fake_postgrest: FakePostgrest
) -> None:
    if environment == "production":
        app = create_app(production_settings(fake_postgrest.url))
    else:
        app = create_app(development_settings())

    @app.get("/auth/google/_session")
    async def touch(request: Request) -> dict[str, bool]:
        request.session["oauth_state"] = "x"
        return {"ok": True}

    with TestClient(app, base_url="https://testserver") as client:
        cookie = client.get("/auth/google/_session").headers["set-cookie"]
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert cookie.startswith("doki_session=")
    assert "Max-Age=900" in cookie
    assert "samesite" in attributes and "samesite=lax" in cookie.lower()
    assert "httponly" in attributes
    assert ("secure" in attributes) is secure


def sessions_app(session_secret_key: str) -> TestClient:
    """The app with SESSION_SECRET_KEY as given, and a path that starts a session and one that reads it."""
    app = create_app(development_settings(SESSION_SECRET_KEY=session_secret_key))

    @app.get("/auth/google/_start")
    async def start(request: Request) -> dict[str, bool]:
        request.session["oauth_state"] = "started"
        return {"ok": True}

    @app.get("/auth/google/_read")
    async def read(request: Request) -> dict[str, str | None]:
        return {"state": request.session.get("oauth_state")}

    return TestClient(app)


def test_a_session_signed_before_a_rotation_lives_on_while_the_old_secret_is_listed_after_the_new() -> None:
    old, new = "o" * 40, "n" * 40
    with sessions_app(old) as before:
        before.get("/auth/google/_start")
        cookie = before.cookies["doki_session"]
    with sessions_app(f"{new},{old}") as during:
        during.cookies.set("doki_session", cookie)
        assert during.get("/auth/google/_read").json() == {"state": "started"}
        # What it signs now is the new secret's: the app that knows only the new one reads it.
        during.cookies.clear()
        during.get("/auth/google/_start")
        fresh = during.cookies["doki_session"]
    with sessions_app(new) as after:
        after.cookies.set("doki_session", fresh)
        assert after.get("/auth/google/_read").json() == {"state": "started"}
        # With the old secret dropped, a session it signed reads as none: the sign-in starts again.
        after.cookies.set("doki_session", cookie)
        assert after.get("/auth/google/_read").json() == {"state": None}


def test_sessions_exist_only_on_the_google_oauth_paths() -> None:
    app = create_app(development_settings())

    @app.get("/elsewhere")
    async def elsewhere(request: Request) -> dict[str, bool]:
        return {"has_session": "session" in request.scope}

    @app.get("/connectors/elsewhere")
    async def connector(request: Request) -> dict[str, bool]:
        return {"has_session": "session" in request.scope}

    @app.get("/auth/google/here")
    async def oauth(request: Request) -> dict[str, bool]:
        return {"has_session": "session" in request.scope}

    with TestClient(app) as client:
        assert client.get("/elsewhere").json() == {"has_session": False}
        assert client.get("/connectors/elsewhere").json() == {"has_session": False}
        assert client.get("/auth/google/here").json() == {"has_session": True}
        assert "set-cookie" not in client.get("/").headers


def test_production_starts_without_google_redirect_uri_and_logs_what_it_means(
    fake_postgrest: FakePostgrest, caplog: pytest.LogCaptureFixture
) -> None:
    # A first deploy's first revision has no service URL to point it at yet: it must still start.
    app = create_app(production_settings(fake_postgrest.url))
    with TestClient(app) as client:
        assert client.get("/").status_code == 200
        login = client.get("/auth/google/login", follow_redirects=False)
    assert login.status_code == 503
    assert login.json()["code"] == "google_not_configured"
    [warning] = [r.getMessage() for r in caplog.records if "GOOGLE_REDIRECT_URI" in r.getMessage()]
    assert "503 google_not_configured" in warning and "/auth/google/callback" in warning
    caplog.clear()
    create_app(production_settings(fake_postgrest.url, google_redirect_uri="https://api.doki.com/auth/google/callback"))
    assert not [r for r in caplog.records if "GOOGLE_REDIRECT_URI" in r.getMessage()]


def test_create_app_refuses_production_on_the_local_sqlite_store() -> None:
    settings = production_settings("https://abc.supabase.co", credential_store="sqlite")
    with pytest.raises(ConfigError) as caught:
        create_app(settings)
    assert caught.value.problems[0].startswith("the credential store is the local SQLite file")


def test_uvicorn_exits_78_listing_every_problem_and_no_traceback(tmp_path: Path) -> None:
    env = clean_env(ENVIRONMENT="production", ALLOWED_ORIGINS="*", SESSION_SECRET_KEY="your-session-secret")
    result = run(
        [sys.executable, "-m", "uvicorn", "doki.main:app", "--port", "0"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 78
    assert "Traceback" not in result.stderr
    assert "Doki cannot start: 8 configuration problem(s)" in result.stderr
    for name in (
        "ALLOWED_ORIGINS contains '*'",
        "SESSION_SECRET_KEY holds a development placeholder",
        "ENCRYPTION_KEY is not set",
        "SUPABASE_URL is not set",
        "GOOGLE_CLIENT_ID is not set",
        "the credential store is the local SQLite file",
    ):
        assert name in result.stderr
    assert "your-session-secret" not in result.stderr


def test_the_backend_starts_without_loading_what_only_signed_in_requests_need(tmp_path: Path) -> None:
    # Start-up time is Cloud Run's cold start: encryption, JWT checks and outbound HTTP load on first use instead.
    probe = (
        "import sys\n"
        "import doki.main\n"
        "loaded = sorted({m.split('.')[0] for m in sys.modules} & {'cryptography', 'jwt', 'httpx', 'httpcore'})\n"
        "print('LOADED=' + ','.join(loaded))\n"
    )
    env = clean_env(ENVIRONMENT="development", DOKI_STATE_DIR=str(tmp_path / "state"))
    result = run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "LOADED="


def test_python_m_doki_exits_78_naming_a_value_of_the_wrong_kind_without_a_traceback(tmp_path: Path) -> None:
    env = clean_env(PORT="eighty", LOG_LEVEL="LOUD")
    result = run([sys.executable, "-m", "doki"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 78
    assert result.stderr == (
        "Doki cannot start: 1 configuration problem(s)\n"
        "  - PORT: input should be a valid integer, unable to parse string as an integer\n"
    )


def test_production_refuses_to_start_on_a_standard_base64_encryption_key_naming_the_variable(tmp_path: Path) -> None:
    # Some releases of cryptography decode '+' and '/' in a key, others refuse it at the first encryption: the
    # start-up check refuses it whichever is installed, rather than start and fail on a user's first connect.
    good = secret("the production Fernet key", base64.urlsafe_b64encode(os.urandom(32)).decode())
    standard = secret("a standard base64 key", base64.b64encode(bytes([0xFB, 0xEF, 0xBE]) * 10 + b"ab").decode())
    assert "+" in standard and len(standard) == 44
    env = clean_env(
        ENVIRONMENT="production",
        ALLOWED_ORIGINS="https://app.doki.com",
        SESSION_SECRET_KEY=secret("the session secret", "prod-session-0123456789abcdefghijklmnopqrstuv"),
        ENCRYPTION_KEY=f"{good},{standard}",
        SUPABASE_URL="https://abc.supabase.co",
        SUPABASE_SECRET_KEY=secret("the Supabase secret key", "sb_secret_TestOnly0123456789abcdefghijklmnop"),
        GOOGLE_CLIENT_ID="1234-abc.apps.googleusercontent.com",
        GOOGLE_CLIENT_SECRET=secret("the Google client secret", "GOCSPX-real-one"),
    )

    result = run([sys.executable, "-m", "doki"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)

    assert result.returncode == 78
    assert result.stderr == (
        "Doki cannot start: 1 configuration problem(s)\n"
        "  - ENCRYPTION_KEY key #2 is not a valid Fernet key: it is standard base64 ('+' or '/'): Fernet keys are "
        "URL-safe base64, with '-' and '_' instead; `doki keys generate` makes one\n"
    )
