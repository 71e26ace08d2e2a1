"""A Doki backend under test with fake Google and fake Supabase behind it, and a browser to drive the OAuth trips.

Development runs on the SQLite store with Supabase Auth reached through its publishable key; production on the
Supabase store (the fake Supabase passes `/rest/v1` to a FakePostgrest, so one project URL serves both).
Retry waits are recorded in `sleeps`, never slept; they alone move the clock that Google deadlines are kept on.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient

from doki.app import create_app
from doki.storage import StoredCredential
from tests.doki.conftest import development_settings, production_settings
from tests.fakes.google import ISSUER, Account, FakeGoogle
from tests.fakes.postgrest import FakePostgrest
from tests.fakes.supabase_auth import FakeSupabaseAuth

REDIRECT_URI = "https://testserver/auth/google/callback"
FRONTEND_ORIGIN = "https://app.doki.com"  # the production settings' allowed origin
ANON_KEY = "sb_publishable_TestOnlyAnon0123456789"


@dataclass
class Backend:
    app: FastAPI
    client: TestClient
    google: FakeGoogle
    supabase: FakeSupabaseAuth
    sleeps: list[float] = field(default_factory=list)
    elapsed: float = 0.0  # the upstreams' monotonic clock: moved by the waits alone

    def login(self, **params: str) -> httpx.Response:
        return self.client.get("/auth/google/login", params=params, follow_redirects=False)

    def back_from_google(self, authorization_url: str) -> str:
        """Google's consent screen, as the fake's consent settings answer it: the callback path and query."""
        location = self.google.authorize(authorization_url)
        assert location.startswith(REDIRECT_URI), location
        return location.removeprefix("https://testserver")

    def callback(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.get(path, follow_redirects=False, **kwargs)

    def sign_in_with_google(self, **params: str) -> httpx.Response:
        """The whole browser trip: login, Google's consent, the callback's answer."""
        start = self.login(**params)
        assert start.status_code == 302, start.text
        return self.callback(self.back_from_google(start.headers["location"]))

    def connect(self, token: str | None, **body: str) -> httpx.Response:
        """POST /auth/google/connect as `token`'s user, then the browser trip; the callback's answer."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        start = self.client.post("/auth/google/connect", headers=headers, json=body or None)
        assert start.status_code == 200, start.text
        return self.callback(self.back_from_google(start.json()["authorization_url"]))

    def signed_in(self, email: str = "ada@example.com") -> tuple[str, dict[str, str]]:
        """A Supabase user of the fake project (id, Authorization header)."""
        user = self.supabase.add_user(email, "correct horse battery staple")
        token = self.supabase.mint({"sub": user.id, "email": email})
        return user.id, {"Authorization": f"Bearer {token}"}

    def stored(self, user_id: str) -> StoredCredential | None:
        row: StoredCredential | None = self.app.state.store.get(user_id, "google")
        return row


def fragment(location: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(location).fragment))


def new_google() -> FakeGoogle:
    google = FakeGoogle().start()
    google.add_account("ada@gmail.com", "Ada")
    return google


def new_supabase(google: FakeGoogle, postgrest: FakePostgrest, *, confirm_email: bool = False) -> FakeSupabaseAuth:
    """Supabase Auth trusting `google`'s ID tokens, `/rest/v1` served by `postgrest`. Email confirmation is off unless
    asked for (the fake's own default is on, as a new hosted project's): these tests sign users up and straight in,
    and those about confirmation turn it on, or run in both modes (tests/doki/api/test_email_auth.py)."""
    supabase = FakeSupabaseAuth(confirm_email=confirm_email).start()
    supabase.trust_google(ISSUER, google.public_jwk(), google.client_id)
    supabase.serve_rest_from(postgrest.url)
    return supabase


@contextmanager
def backend(environment: str, google: FakeGoogle, supabase: FakeSupabaseAuth, **overrides: Any) -> Iterator[Backend]:
    values = {**google.settings(REDIRECT_URI), **overrides}
    if environment == "production":
        settings = production_settings(supabase.url, **values)
    else:
        values.setdefault("supabase_url", supabase.url)
        values.setdefault("supabase_anon_key", ANON_KEY)
        values.setdefault("allowed_origins", f"{FRONTEND_ORIGIN},http://localhost:3000")
        settings = development_settings(**{k: v for k, v in values.items() if v is not None})
    app = create_app(settings)
    # https: production's session cookie is Secure, and a browser only sends it back over https.
    with TestClient(app, base_url="https://testserver") as client:
        harness = Backend(app=app, client=client, google=google, supabase=supabase)

        async def record(seconds: float) -> None:
            harness.sleeps.append(seconds)
            harness.elapsed += seconds

        app.state.upstreams.sleep = record
        app.state.upstreams.monotonic = lambda: harness.elapsed
        yield harness


def account(google: FakeGoogle, email: str) -> Account:
    return next(a for a in google.accounts if a.email == email)
