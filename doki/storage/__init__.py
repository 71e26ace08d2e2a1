"""Credential storage: the `CredentialStore` interface, its SQLite and Supabase backends, and the factory.

The app asks `build_store(settings)` for a store and never names a backend itself, so development (SQLite in
the state dir) and production (Supabase) run the same code paths.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from doki.storage.base import CredentialStore, StoredCredential, StoreError, StoreUnavailableError
from doki.storage.sqlite import SQLiteCredentialStore
from doki.storage.supabase import SupabaseCredentialStore

if TYPE_CHECKING:
    from doki.settings import Settings

SQLITE_FILENAME = "credentials.sqlite3"

__all__ = [
    "SQLITE_FILENAME",
    "CredentialStore",
    "SQLiteCredentialStore",
    "StoreError",
    "StoreUnavailableError",
    "StoredCredential",
    "SupabaseCredentialStore",
    "build_store",
]


def build_store(settings: Settings) -> CredentialStore:
    """The store `settings.store_kind` selects: Supabase, or the SQLite file in the state dir."""
    if settings.store_kind == "supabase":
        if not (settings.supabase_url and settings.supabase_secret_key):
            raise StoreError(
                "the Supabase credential store needs SUPABASE_URL and SUPABASE_SECRET_KEY (the secret key)"
            )
        return SupabaseCredentialStore(settings.supabase_url, settings.supabase_secret_key, settings.credentials_table)
    return SQLiteCredentialStore(settings.state_dir / SQLITE_FILENAME)
