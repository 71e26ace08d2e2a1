"""The settings the Google connector and sign-in add: Google's endpoints (real ones by default, configurable for
local stand-ins) and the frontend the browser lands on after signing in."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.fernet import Fernet

from doki.settings import Settings, url_origin
from tests.helpers import secret

KEY = secret("the Fernet key", Fernet.generate_key().decode())


def production(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "production",
        "allowed_origins": "https://app.doki.com",
        "session_secret_key": "k" * 16 + "Zq8vN2mP4rT6wY1uX3sA5dF7",
        "encryption_key": KEY,
        "supabase_url": "https://abc.supabase.co",
        "supabase_secret_key": "sb_secret_live_0123456789",
        "google_client_id": "1234-abc.apps.googleusercontent.com",
        "google_client_secret": "GOCSPX-real",
        "google_redirect_uri": "https://api.doki.com/auth/google/callback",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


def test_google_endpoints_default_to_googles_own() -> None:
    settings = Settings(_env_file=None)
    assert settings.google_auth_url == "https://accounts.google.com/o/oauth2/v2/auth"
    assert settings.google_token_url == "https://oauth2.googleapis.com/token"
    assert settings.google_revoke_url == "https://oauth2.googleapis.com/revoke"
    assert settings.google_drive_api_url == "https://www.googleapis.com/drive/v3"
    assert settings.google_sheets_api_url == "https://sheets.googleapis.com/v4"
    assert settings.frontend_url is None and settings.supabase_anon_key is None


def test_google_endpoints_are_read_from_the_environment_without_a_trailing_slash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GOOGLE_SHEETS_API_URL", "http://127.0.0.1:9000/v4/")
    monkeypatch.setenv("FRONTEND_URL", "http://localhost:3000/done")
    settings = Settings(_env_file=None)
    assert settings.google_sheets_api_url == "http://127.0.0.1:9000/v4"
    assert settings.frontend_url == "http://localhost:3000/done"


def test_production_with_the_default_endpoints_has_no_problems() -> None:
    assert production().problems() == []


@pytest.mark.parametrize(
    "name",
    ["google_auth_url", "google_token_url", "google_revoke_url", "google_drive_api_url", "google_sheets_api_url"],
)
def test_a_google_endpoint_that_is_not_a_url_is_a_problem_everywhere(name: str) -> None:
    problems = Settings(_env_file=None, **{name: "accounts.google.com"}).problems()
    assert problems == [f"{name.upper()} 'accounts.google.com' is not a URL: unset it to use Google's own endpoint"]


def test_production_sends_tokens_to_plain_http_endpoints_only_on_loopback() -> None:
    assert production(google_token_url="http://127.0.0.1:9000/token").problems() == []
    assert production(google_token_url="http://oauth.example/token").problems() == [
        "GOOGLE_TOKEN_URL 'http://oauth.example/token' is not https: unset it to use Google's own endpoint"
    ]


def test_the_frontend_url_must_be_on_an_allowed_origin() -> None:
    assert production(frontend_url="https://app.doki.com/auth/done?x=1").problems() == []
    assert production(frontend_url="https://evil.example/").problems() == [
        "FRONTEND_URL 'https://evil.example/' is not on an allowed origin: add https://evil.example to ALLOWED_ORIGINS"
    ]


def test_the_frontend_url_is_https_in_production_except_on_loopback() -> None:
    assert production(allowed_origins="http://localhost:3000", frontend_url="http://localhost:3000/").problems() == []
    problems = production(allowed_origins="http://app.doki.com", frontend_url="http://app.doki.com/done").problems()
    assert problems == [
        "FRONTEND_URL 'http://app.doki.com/done' is not https: the Supabase session travels to it; "
        "use the https:// address of your frontend"
    ]


@pytest.mark.parametrize(
    "url",
    ["https://app.doki.com/#done", "https://user:pw@app.doki.com/", "app.doki.com/done", "https://app.doki.com:x/"],
)
def test_a_frontend_url_with_a_fragment_credentials_or_no_scheme_is_a_problem(url: str) -> None:
    [problem] = production(frontend_url=url).problems()
    assert problem.startswith(f"FRONTEND_URL {url!r}")


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://app.doki.com/a?b", "https://app.doki.com"),
        ("https://app.doki.com:443/", "https://app.doki.com"),
        ("http://localhost:3000/x", "http://localhost:3000"),
        ("HTTPS://App.Doki.com/", "https://app.doki.com"),
        ("http://[::1]:8080/", "http://[::1]:8080"),
    ],
)
def test_url_origin_is_spelled_as_browsers_send_it(url: str, origin: str) -> None:
    assert url_origin(url) == origin
