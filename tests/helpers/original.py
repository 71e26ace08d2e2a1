"""The original backend's writes to its `credentials` table, done again over HTTP with its exact payloads.

The original is Tsu-kimi/Doki-Backend at 3beecd6. It wrote a row per Google sign-in (app/api/auth.py:136-145) and
per Supabase connect (app/connectors/supabase.py:51-61, 87-92) through supabase-py, whose `insert` is a
`POST /rest/v1/credentials` with `Prefer: return=representation` (postgrest-py's default), and never updated or
deleted one. Each token went into a bytea column as the text of its Fernet token (`encrypt_token_for_storage`,
app/core/encryption.py:63-80), so the database holds the token's ASCII bytes.

Tests use these to fill a FakePostgrest holding `ORIGINAL_CREDENTIALS_TABLE` the way the original filled Supabase.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
from cryptography.fernet import Fernet

from doki.storage.supabase import looks_like_jwt
from tests.fakes.google import FakeGoogle

TABLE = "credentials"
# app/api/auth.py:13-19: what the original asked Google for.
SCOPES = [
    "openid",
    "https://www.googleapis.com/auth/userinfo.email",
    "https://www.googleapis.com/auth/userinfo.profile",
    "https://www.googleapis.com/auth/drive.readonly",
    "https://www.googleapis.com/auth/spreadsheets.readonly",
]
REDIRECT_URI = "https://original.doki.example/auth/google/callback"


def encrypt_token_for_storage(key: str, plaintext: str) -> str:
    """app/core/encryption.py:63-80: the Fernet token's text, "" for an empty value."""
    if not plaintext:
        return ""
    return Fernet(key.encode()).encrypt(plaintext.encode()).decode("utf-8")


class Original:
    """The original backend, as far as its `credentials` table goes: `url` and `service_key` are its Supabase's,
    `key` its ENCRYPTION_KEY_NAME."""

    def __init__(self, url: str, service_key: str, key: str) -> None:
        self.url = url
        self.key = key
        self._headers = {"apikey": service_key, "Prefer": "return=representation"}
        if looks_like_jwt(service_key):
            self._headers["Authorization"] = f"Bearer {service_key}"

    def google_signed_in(
        self,
        user_id: str,
        access_token: str,
        refresh_token: str | None,
        expiry: datetime | None,
        granted_scopes: list[str],
    ) -> dict[str, Any]:
        """The row a Google sign-in inserted (app/api/auth.py:93-145); `expiry` naive UTC, as google-auth keeps it."""
        return self.insert(
            {
                "user_id": user_id,
                "provider": "google",
                "access_token_encrypted": encrypt_token_for_storage(self.key, access_token),
                "refresh_token_encrypted": encrypt_token_for_storage(self.key, refresh_token)
                if refresh_token
                else None,
                "expires_at": expiry.isoformat() if expiry else None,
                "scopes": granted_scopes,
            }
        )

    def supabase_connected(
        self, user_id: str, project_url: str, anon_key: str | None, service_role_key: str
    ) -> dict[str, Any]:
        """The row a Supabase connect inserted (app/connectors/supabase.py:51-61); its `id` was the connection_id."""
        return self.insert(
            {
                "user_id": user_id,
                "provider": "supabase",
                "access_token_encrypted": encrypt_token_for_storage(self.key, service_role_key),
                "refresh_token_encrypted": encrypt_token_for_storage(self.key, anon_key) if anon_key else None,
                "metadata": {"project_url": project_url},
            }
        )

    def insert(self, payload: dict[str, Any]) -> dict[str, Any]:
        """`supabase.table("credentials").insert(payload).execute()`: the row as the database stored it."""
        response = httpx.post(f"{self.url}/rest/v1/{TABLE}", json=payload, headers=self._headers)
        assert response.status_code == 201, response.text
        (row,) = response.json()
        assert isinstance(row, dict)
        return row


def google_sign_in(google: FakeGoogle, *, now: datetime | None = None) -> tuple[str, str | None, datetime, list[str]]:
    """What the original's callback got from Google (app/api/auth.py:37-104, google-auth-oauthlib's Flow without
    PKCE): (access token, refresh token, expiry in naive UTC, granted scopes), from the fake's current consent."""
    google.settings(REDIRECT_URI)  # the original's OAuth client lists its own callback
    state = secrets.token_urlsafe(16)
    query = {
        "response_type": "code",
        "client_id": google.client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": " ".join(SCOPES),
        "state": state,
        "access_type": "offline",
        "include_granted_scopes": "true",
        "prompt": "consent",
    }
    location = google.authorize(f"{google.url}/o/oauth2/v2/auth?{urlencode(query)}")
    code = dict(parse_qsl(urlsplit(location).query))["code"]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "client_id": google.client_id,
        "client_secret": google.client_secret,
    }
    token = httpx.post(f"{google.url}/token", data=form).json()
    issued = (now or datetime.now(UTC)).replace(tzinfo=None)
    expiry = issued + timedelta(seconds=token["expires_in"])
    return token["access_token"], token.get("refresh_token"), expiry, token["scope"].split()
