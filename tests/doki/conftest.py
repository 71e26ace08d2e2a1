"""Backends under test: built with `create_app(settings)`, each with its own settings and fakes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from doki.settings import Settings
from doki.storage import CredentialStore, SQLiteCredentialStore, SupabaseCredentialStore
from tests.fakes.postgrest import CREDENTIALS_TABLE, ORIGINAL_CREDENTIALS_TABLE, FakePostgrest
from tests.fakes.supabase_auth import FakeSupabaseAuth
from tests.helpers import secret

# Shaped like a new Supabase secret key: not a JWT, so it must travel in `apikey` only.
SUPABASE_SECRET = secret("the Supabase secret key", "sb_secret_TestOnly0123456789abcdefghijklmnop")
# A small page makes a handful of rows span several pages.
PAGE_SIZE = 2


@pytest.fixture
def supabase_auth() -> Iterator[FakeSupabaseAuth]:
    with FakeSupabaseAuth() as server:
        yield server


@pytest.fixture
def fake_postgrest() -> Iterator[FakePostgrest]:
    with FakePostgrest(SUPABASE_SECRET) as server:
        yield server


@pytest.fixture
def original_postgrest() -> Iterator[FakePostgrest]:
    """A Supabase that Doki and the original backend both used: Doki's table beside the original's `credentials`."""
    tables = {"doki_credentials": CREDENTIALS_TABLE, "credentials": ORIGINAL_CREDENTIALS_TABLE}
    with FakePostgrest(SUPABASE_SECRET, tables) as server:
        yield server


@pytest.fixture
def supabase_store(fake_postgrest: FakePostgrest) -> Iterator[SupabaseCredentialStore]:
    store = SupabaseCredentialStore(fake_postgrest.url, SUPABASE_SECRET, "doki_credentials", page_size=PAGE_SIZE)
    yield store
    store.close()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SQLiteCredentialStore]:
    store = SQLiteCredentialStore(tmp_path / "state" / "credentials.sqlite3", page_size=PAGE_SIZE)
    yield store
    store.close()


@pytest.fixture(params=["sqlite", "supabase"])
def store(request: pytest.FixtureRequest) -> CredentialStore:
    """Each backend in turn, so one contract suite covers both."""
    backend: CredentialStore = request.getfixturevalue(f"{request.param}_store")
    return backend


def production_settings(supabase_url: str, **overrides: Any) -> Settings:
    """Valid production settings whose Supabase is a local fake (loopback is allowed to be plain http)."""
    values: dict[str, Any] = {
        "environment": "production",
        "allowed_origins": "https://app.doki.com",
        "session_secret_key": secret("the session secret", "prod-session-0123456789abcdefghijklmnopqrstuv"),
        "encryption_key": secret("the production Fernet key", Fernet.generate_key().decode()),
        "supabase_url": supabase_url,
        "supabase_secret_key": SUPABASE_SECRET,
        "google_client_id": "1234-abc.apps.googleusercontent.com",
        "google_client_secret": secret("the Google client secret", "GOCSPX-real-one"),
        "gcp_project_id": "doki-prod",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


def development_settings(**overrides: Any) -> Settings:
    return Settings(_env_file=None, **overrides)
