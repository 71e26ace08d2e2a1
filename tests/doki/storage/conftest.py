"""Stores under test: SQLite in a temporary directory, Supabase against the local fake PostgREST server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from doki.storage import CredentialStore, SQLiteCredentialStore, SupabaseCredentialStore
from tests.fakes.postgrest import FakePostgrest

# Shaped like a new Supabase secret key: not a JWT, so it must travel in `apikey` only.
SECRET_KEY = "sb_secret_TestOnly0123456789abcdefghijklmnop"
# A small page makes a handful of rows span several pages.
PAGE_SIZE = 3


@pytest.fixture
def fake_postgrest() -> Iterator[FakePostgrest]:
    with FakePostgrest(SECRET_KEY) as server:
        yield server


@pytest.fixture
def supabase_store(fake_postgrest: FakePostgrest) -> Iterator[SupabaseCredentialStore]:
    store = SupabaseCredentialStore(fake_postgrest.url, SECRET_KEY, "doki_credentials", page_size=PAGE_SIZE)
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
