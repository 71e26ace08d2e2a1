"""The credential store interface every backend implements, and the errors it raises.

A store keeps one row per (user, provider): the connector's credential, already encrypted by
`doki.crypto.CredentialCipher`, plus non-secret metadata. Stores never see plaintext, so a leaked database
or backup holds nothing usable without the encryption key.

User ids are the canonical (lowercase) UUID strings Supabase Auth issues: the Supabase table types the
column as `uuid`, and Postgres hands back the canonical spelling, which must match the id the ciphertext is
bound to.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable


class StoreError(Exception):
    """The credential store failed; the message says what and how to fix it, and never holds a secret."""


class StoreUnavailableError(StoreError):
    """The store's backend is unreachable, timed out or failed on its side: retrying later may succeed."""


@dataclass(frozen=True)
class StoredCredential:
    """One stored row: the encrypted credential of `user_id` for `provider`."""

    user_id: str
    provider: str
    ciphertext: str
    metadata: dict[str, str] = field(hash=False)
    updated_at: datetime


@runtime_checkable
class CredentialStore(Protocol):
    """Where encrypted credentials live: one row per (user_id, provider). All methods block."""

    def put(
        self, user_id: str, provider: str, ciphertext: str, metadata: dict[str, str] | None = None
    ) -> StoredCredential:
        """Insert or replace the row for (user_id, provider); metadata is replaced too (None means {})."""
        ...

    def insert_if_absent(
        self, user_id: str, provider: str, ciphertext: str, metadata: dict[str, str] | None = None
    ) -> StoredCredential | None:
        """Insert the row for (user_id, provider) unless there is one: the new row, or None when a row was there
        already (it is left exactly as it was). An import never overwrites what a user wrote meanwhile."""
        ...

    def get(self, user_id: str, provider: str) -> StoredCredential | None:
        """The row for (user_id, provider), or None."""
        ...

    def list_for_user(self, user_id: str) -> list[StoredCredential]:
        """Every row of `user_id`, ordered by provider."""
        ...

    def delete(self, user_id: str, provider: str, *, expected_ciphertext: str | None = None) -> bool:
        """Remove the row; True when there was one. With `expected_ciphertext`, a compare-and-delete: only a row
        that still holds that ciphertext is removed (a row rewritten meanwhile is kept, and False returned)."""
        ...

    def iter_all(self) -> Iterator[StoredCredential]:
        """Every row, ordered by (user_id, provider), fetched in pages so writes may interleave."""
        ...

    def replace_ciphertext(
        self,
        user_id: str,
        provider: str,
        expected_ciphertext: str,
        new_ciphertext: str,
        metadata: dict[str, str] | None = None,
    ) -> bool:
        """Compare-and-swap: set the ciphertext (and the metadata, when given) only if the ciphertext still is
        `expected_ciphertext`; True if set."""
        ...

    def close(self) -> None:
        """Release connections; the store is not used afterwards."""
        ...
