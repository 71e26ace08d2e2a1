"""Credential storage: the `CredentialStore` interface, its SQLite and Supabase backends, and the factory.

The app asks `build_store(settings)` for a store and never names a backend itself, so development (SQLite in
the state dir) and production (Supabase) run the same code paths.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from doki.storage.base import CredentialStore, StoredCredential, StoreError, StoreUnavailableError
from doki.storage.sqlite import SQLiteCredentialStore

if TYPE_CHECKING:
    from doki.settings import Settings
    from doki.storage.supabase import SupabaseCredentialStore

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


def __getattr__(name: str) -> Any:
    # The Supabase store pulls in httpx: a development server on SQLite starts without it.
    if name == "SupabaseCredentialStore":
        from doki.storage.supabase import SupabaseCredentialStore

        return SupabaseCredentialStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_store(settings: Settings) -> CredentialStore:
    """The store `settings.store_kind` selects: Supabase, or the SQLite file in the state dir."""
    if settings.store_kind == "supabase":
        if not (settings.supabase_url and settings.supabase_secret_key):
            raise StoreError(
                "the Supabase credential store needs SUPABASE_URL and SUPABASE_SECRET_KEY (the secret key)"
            )
        from doki.storage.supabase import SupabaseCredentialStore

        return SupabaseCredentialStore(settings.supabase_url, settings.supabase_secret_key, settings.credentials_table)
    return SQLiteCredentialStore(settings.state_dir / SQLITE_FILENAME)
