"""Connections users made on the original backend (Tsu-kimi/Doki-Backend), carried over into Doki's store.

The original kept every user's Google tokens and Supabase project keys in one table of the deployment's own Supabase
(`credentials`; LEGACY_CREDENTIALS_TABLE names it): a row inserted per Google sign-in and per Supabase connect, never
updated or deleted, each token encrypted on its own with the original's one Fernet key (its ENCRYPTION_KEY_NAME) and
kept in a bytea column, which PostgREST hands back as `\\x` and hex. Doki keeps one row per (user, provider), the
whole connection encrypted and bound to its user (doki.crypto).

With LEGACY_CREDENTIALS_TABLE set, a user's connection still only in the original's table is carried over:

- lazily, by `LegacyFallbackStore`, the store the app runs on then. Asked for a user's "google" or "supabase" row
  that Doki lacks, it reads the user's rows in the original's table, newest first, takes the first one that decrypts
  (LEGACY_ENCRYPTION_KEY) and that Doki's own rules accept, and writes it into Doki's table encrypted for the user,
  with `insert_if_absent`: a connection the user made meanwhile is never overwritten. Callers see an ordinary row;
- at once, for every user, by `python -m doki.migrate` (doki.migrate), with the same steps.

The original's table is only ever read. Each lookup leaves a marker row, (user, "legacy:<provider>"), holding its
outcome, so the table is read once per user and provider, and a connection the user disconnects is not brought back
from it: a disconnect leaves a marker too. Markers hold no secret (their ciphertext is "{}" encrypted for the user,
so a key rotation moves them like any row), and no answer ever shows one.
"""

from __future__ import annotations

import base64
import binascii
import logging
import threading
import uuid
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

from pydantic import SecretStr

from doki.connectors.google import REQUIRED_SCOPES, imported_connection, normalize_scopes
from doki.connectors.supabase_project import ProjectCredentials, ProjectURL, SupabaseProjectError
from doki.storage.supabase import DEFAULT_PAGE_SIZE, DEFAULT_TIMEOUT_SECONDS, PostgrestTable

if TYPE_CHECKING:
    from cryptography.fernet import MultiFernet

    from doki.crypto import CredentialCipher
    from doki.settings import Settings
    from doki.storage.base import CredentialStore, StoredCredential

logger = logging.getLogger(__name__)

PROVIDERS = ("google", "supabase")
MARKER_PREFIX = "legacy:"
# A marker's status: what the lookup found. The first three settle the user's connection for good; after the others
# the batch import looks again (a key added to LEGACY_ENCRYPTION_KEY may make a row usable).
Status = Literal["imported", "disconnected", "superseded", "undecryptable", "unusable", "absent"]
FINAL: frozenset[str] = frozenset({"imported", "disconnected", "superseded"})
# What one lookup comes to: a row imported, one there already (the user's own), or why nothing was.
Outcome = Literal["imported", "already", "undecryptable", "unusable", "absent"]
# A Fernet token starts with its version byte, 0x80, and a 64-bit timestamp, which base64 writes "gAAAAA".
_FERNET_TEXT_PREFIX = "gAAAAA"
# Where rows without a creation time sort: last.
_OLDEST = datetime.min.replace(tzinfo=UTC)


def marker_provider(provider: str) -> str:
    """The provider name of `provider`'s marker row."""
    return f"{MARKER_PREFIX}{provider}"


def is_marker(provider: str) -> bool:
    return provider.startswith(MARKER_PREFIX)


class _NotUsable(Exception):
    """A row of the original's that cannot become a Doki connection; the message says why, never a secret."""

    def __init__(self, outcome: Literal["undecryptable", "unusable"], reason: str) -> None:
        super().__init__(reason)
        self.outcome = outcome
        self.reason = reason


@dataclass(frozen=True)
class LegacyRow:
    """One row of the original's table, its values as PostgREST answers them (bytea as `\\x` text)."""

    id: str
    user_id: str
    provider: str
    created_at: datetime | None
    access_token: Any = field(repr=False)
    refresh_token: Any = field(repr=False)
    expires_at: Any
    scopes: Any
    metadata: Any

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> LegacyRow:
        return cls(
            id=str(row.get("id")),
            user_id=str(row.get("user_id")),
            provider=str(row.get("provider")),
            created_at=_timestamp(row.get("created_at")),
            access_token=row.get("access_token_encrypted"),
            refresh_token=row.get("refresh_token_encrypted"),
            expires_at=row.get("expires_at"),
            scopes=row.get("scopes"),
            metadata=row.get("metadata"),
        )


@dataclass(frozen=True)
class Found:
    """What a user's rows for one provider come to: a connection to import, or why there is none."""

    status: Literal["importable", "undecryptable", "unusable", "absent"]
    plaintext: str = field(default="", repr=False)
    metadata: dict[str, str] = field(default_factory=dict)
    reason: str = ""

    @property
    def outcome(self) -> Outcome:
        """What writing it comes to, unless the user has a row by then."""
        return _OUTCOMES[self.status]


_OUTCOMES: dict[str, Outcome] = {
    "importable": "imported",
    "undecryptable": "undecryptable",
    "unusable": "unusable",
    "absent": "absent",
}


class LegacyCredentials:
    """The original's table, read with the project's secret key; its tokens decrypted with the original's keys.

    `parse_url` judges a stored project URL as a connect would (doki.connectors.supabase_project).
    """

    def __init__(
        self,
        url: str,
        secret_key: SecretStr | str,
        table: str,
        keys: Sequence[str],
        parse_url: Callable[[str], ProjectURL],
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> None:
        if not keys:
            raise ValueError("no key to decrypt the original's tokens with: set LEGACY_ENCRYPTION_KEY")
        self.table = table
        self.page_size = page_size
        self._keys = list(keys)
        self._parse_url = parse_url
        self._table = PostgrestTable(
            url,
            secret_key,
            table,
            timeout=timeout,
            missing_table_fix="set LEGACY_CREDENTIALS_TABLE to the original backend's table (credentials), or unset it",
        )

    @classmethod
    def from_settings(cls, settings: Settings, parse_url: Callable[[str], ProjectURL]) -> LegacyCredentials:
        if not (settings.legacy_credentials_table and settings.supabase_url and settings.supabase_secret_key):
            raise ValueError("LEGACY_CREDENTIALS_TABLE, SUPABASE_URL and SUPABASE_SECRET_KEY must all be set")
        return cls(
            settings.supabase_url,
            settings.supabase_secret_key,
            settings.legacy_credentials_table,
            settings.legacy_encryption_keys,
            parse_url,
        )

    def __repr__(self) -> str:
        return f"LegacyCredentials(table={self.table!r})"

    def rows(self, user_id: str, provider: str) -> list[LegacyRow]:
        """The user's rows for `provider`, newest first."""
        if not _is_uuid(user_id):
            return []  # the column is a uuid: no row can match, and PostgREST would answer 400
        found = self._table.request(
            "GET",
            params={
                "select": "*",
                "user_id": f"eq.{user_id}",
                "provider": f"eq.{provider}",
                "order": "created_at.desc,id.desc",
            },
        )
        return [LegacyRow.from_json(row) for row in found]

    def users(self, provider: str) -> Iterator[tuple[str, list[LegacyRow]]]:
        """Every user with rows for `provider`, with those rows, by user id; read in pages, keyset on (user_id, id)
        so a page boundary neither skips nor repeats a row."""
        user: str | None = None
        rows: list[LegacyRow] = []
        for row in self._pages(provider):
            if row.user_id != user and rows:
                yield rows[0].user_id, rows
                rows = []
            user = row.user_id
            rows.append(row)
        if rows:
            yield rows[0].user_id, rows

    def evaluate(self, provider: str, rows: Sequence[LegacyRow]) -> Found:
        """The newest of `rows` that decrypts and that Doki's rules accept, as a connection; or why there is none."""
        failures: list[_NotUsable] = []
        # Newest first, ties by id as the query orders them: the original read Google rows in no order at all
        # (app/connectors/sheets.py:28-42), and the latest sign-in is the likeliest to hold a live grant.
        for row in sorted(rows, key=lambda r: (r.created_at or _OLDEST, r.id), reverse=True):
            try:
                plaintext, metadata = self._google(row) if provider == "google" else self._supabase(row)
            except _NotUsable as failure:
                failures.append(failure)
                continue
            return Found("importable", plaintext, {**metadata, "migrated_from": f"{self.table}:{row.id}"})
        if not failures:
            return Found("absent", reason=f"no {provider} row in {self.table}")
        # A row that decrypted but was refused says more about what to fix than one that did not decrypt.
        worst = next((f for f in failures if f.outcome == "unusable"), failures[0])
        return Found(worst.outcome, reason=worst.reason)

    def close(self) -> None:
        self._table.close()

    def _pages(self, provider: str) -> Iterator[LegacyRow]:
        after: tuple[str, str] | None = None
        while True:
            params = {
                "select": "*",
                "provider": f"eq.{provider}",
                "order": "user_id.asc,id.asc",
                "limit": str(self.page_size),
            }
            if after is not None:
                user, row_id = after  # uuids: nothing in them is PostgREST syntax
                params["or"] = f"(user_id.gt.{user},and(user_id.eq.{user},id.gt.{row_id}))"
            found = self._table.request("GET", params=params)
            yield from (LegacyRow.from_json(row) for row in found)
            if len(found) < self.page_size:
                return
            after = (str(found[-1]["user_id"]), str(found[-1]["id"]))

    def _google(self, row: LegacyRow) -> tuple[str, dict[str, str]]:
        access, refresh = self._decrypt(row.access_token), self._decrypt(row.refresh_token)
        if not access and not refresh:
            raise _NotUsable("unusable", "the Google row holds no token")
        # The original asked for these (app/api/auth.py:13-19) and kept what Google granted; a row without them
        # gets the asked-for set, and Google's own 403 says "reconnect" if that guess is wrong.
        scopes = _scopes(row.scopes) or frozenset(REQUIRED_SCOPES)
        return imported_connection(access or "", refresh, _epoch(row.expires_at), scopes)

    def _supabase(self, row: LegacyRow) -> tuple[str, dict[str, str]]:
        service, anon = self._decrypt(row.access_token), self._decrypt(row.refresh_token)
        project_url = row.metadata.get("project_url") if isinstance(row.metadata, dict) else None
        if not isinstance(project_url, str):
            raise _NotUsable("unusable", "the Supabase row names no project_url in its metadata")
        try:
            project = self._parse_url(project_url)
            credentials = ProjectCredentials.checked(project.url, service or "", anon)
        except SupabaseProjectError as refused:
            raise _NotUsable("unusable", f"Doki refuses the stored project ({refused.message})") from None
        # The original answered the row's id as the connection_id; a connect through Doki keeps one likewise.
        metadata = {"project_url": project.url, "project_ref": project.ref or "", "connection_id": row.id}
        return credentials.to_json(), metadata

    def _decrypt(self, value: object) -> str | None:
        """A token column's plaintext, None when the column is empty; _NotUsable when no key decrypts it."""
        from cryptography.fernet import InvalidToken

        try:
            token = stored_bytes(value)
            return self._fernet.decrypt(token).decode("utf-8") if token else None
        except (InvalidToken, ValueError):  # ValueError covers bad hex, bad base64 and bad UTF-8
            raise _NotUsable(
                "undecryptable",
                f"no key in LEGACY_ENCRYPTION_KEY decrypts the row (is it the original's ENCRYPTION_KEY_NAME?) "
                f"or the row is not a Fernet token in {self.table}",
            ) from None

    @cached_property
    def _fernet(self) -> MultiFernet:
        from cryptography.fernet import Fernet, MultiFernet

        return MultiFernet([Fernet(key) for key in self._keys])


def stored_bytes(value: object) -> bytes:
    """The bytes a token column holds, as the original's decrypt_token_from_storage read them
    (app/core/encryption.py:83-127): bytea's hex text `\\x...`; a Fernet token's own text (a text column); plain hex;
    or, last, base64. Empty for an empty or missing value; ValueError when it is none of those."""
    if value is None or value == "":
        return b""
    if not isinstance(value, str):
        raise ValueError("not text")
    if value.startswith("\\x"):
        return bytes.fromhex(value[2:])
    if value.startswith(_FERNET_TEXT_PREFIX):
        return value.encode("ascii")
    try:
        return bytes.fromhex(value)
    except ValueError:
        cleaned = "".join(value.split())
        try:
            return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
        except binascii.Error as exc:
            raise ValueError("neither hex nor base64") from exc


# --- writing what was found ------------------------------------------------------------------------------------


def settle(
    store: CredentialStore, cipher: CredentialCipher, user_id: str, provider: str, found: Found
) -> tuple[Outcome, StoredCredential | None]:
    """Write what a lookup found: the connection (never over one there already), then the marker; the outcome, and
    the user's row for `provider` (None when there is none)."""
    if found.status == "undecryptable" or found.status == "unusable" or found.status == "absent":
        mark(store, cipher, user_id, provider, found.status)
        return found.status, None
    row = store.insert_if_absent(user_id, provider, cipher.encrypt(user_id, found.plaintext), found.metadata)
    # The row first: a marker without its row would hide the connection for good, a row without its marker is
    # harmless (a disconnect marks it).
    mark(store, cipher, user_id, provider, "imported" if row is not None else "superseded")
    if row is None:
        return "already", store.get(user_id, provider)
    return "imported", row


def mark(store: CredentialStore, cipher: CredentialCipher, user_id: str, provider: str, status: Status) -> None:
    """Record the outcome of the user's lookup for `provider`, replacing an earlier one."""
    store.put(user_id, marker_provider(provider), cipher.encrypt(user_id, "{}"), {"status": status})


class LegacyFallbackStore:
    """A `CredentialStore` that carries a user's connection over from the original's table the first time it is
    asked for (see the module docstring); every other call goes straight to `store`."""

    def __init__(self, store: CredentialStore, legacy: LegacyCredentials, cipher: CredentialCipher) -> None:
        self._store = store
        self._legacy = legacy
        self._cipher = cipher
        # The store is called from worker threads (doki.connectors.call_store): one lookup per user at a time, so
        # two first requests read and write the original's rows once.
        self._locks: weakref.WeakValueDictionary[str, threading.Lock] = weakref.WeakValueDictionary()
        self._locks_guard = threading.Lock()

    def __repr__(self) -> str:
        return f"LegacyFallbackStore({self._store!r}, {self._legacy!r})"

    def get(self, user_id: str, provider: str) -> StoredCredential | None:
        row = self._store.get(user_id, provider)
        if row is not None or provider not in PROVIDERS:
            return row
        row, marked = self._current(user_id, provider)
        if row is not None or marked:
            return row  # looked up already (by another request since the read above, perhaps), or disconnected
        with self._lock(user_id):
            return self._look_up(user_id, provider)

    def delete(self, user_id: str, provider: str, *, expected_ciphertext: str | None = None) -> bool:
        if provider in PROVIDERS:
            # A connection still only in the original's table is the user's too: carried over first, it is deleted
            # like any, and the marker keeps it from coming back.
            self.get(user_id, provider)
            marker = self._cipher.encrypt(user_id, "{}")
            self._store.insert_if_absent(user_id, marker_provider(provider), marker, {"status": "disconnected"})
        return self._store.delete(user_id, provider, expected_ciphertext=expected_ciphertext)

    def list_for_user(self, user_id: str) -> list[StoredCredential]:
        return [row for row in self._store.list_for_user(user_id) if not is_marker(row.provider)]

    def put(
        self, user_id: str, provider: str, ciphertext: str, metadata: dict[str, str] | None = None
    ) -> StoredCredential:
        return self._store.put(user_id, provider, ciphertext, metadata)

    def insert_if_absent(
        self, user_id: str, provider: str, ciphertext: str, metadata: dict[str, str] | None = None
    ) -> StoredCredential | None:
        return self._store.insert_if_absent(user_id, provider, ciphertext, metadata)

    def iter_all(self) -> Iterator[StoredCredential]:
        # Markers included: re-encryption must move them to the new key like every row.
        return self._store.iter_all()

    def replace_ciphertext(
        self,
        user_id: str,
        provider: str,
        expected_ciphertext: str,
        new_ciphertext: str,
        metadata: dict[str, str] | None = None,
    ) -> bool:
        return self._store.replace_ciphertext(user_id, provider, expected_ciphertext, new_ciphertext, metadata)

    def close(self) -> None:
        self._legacy.close()
        self._store.close()

    def _current(self, user_id: str, provider: str) -> tuple[StoredCredential | None, bool]:
        """The user's row for `provider` and whether its marker exists, read in one statement: a lookup writes the row
        before the marker, so a marker read here comes with its row (unless the user disconnected since)."""
        rows = {row.provider: row for row in self._store.list_for_user(user_id)}
        return rows.get(provider), marker_provider(provider) in rows

    def _look_up(self, user_id: str, provider: str) -> StoredCredential | None:
        # Another thread may have done this lookup while this one waited for the lock.
        row, marked = self._current(user_id, provider)
        if row is not None or marked:
            return row
        found = self._legacy.evaluate(provider, self._legacy.rows(user_id, provider))
        outcome, row = settle(self._store, self._cipher, user_id, provider, found)
        if outcome == "imported":
            logger.info("carried the %s connection of user %s over from %s", provider, user_id, self._legacy.table)
        elif outcome in ("undecryptable", "unusable"):
            logger.warning(
                "not carrying the %s connection of user %s over from %s: %s",
                provider,
                user_id,
                self._legacy.table,
                found.reason,
            )
        return row

    def _lock(self, user_id: str) -> threading.Lock:
        with self._locks_guard:
            lock = self._locks.get(user_id)
            if lock is None:
                lock = self._locks[user_id] = threading.Lock()
            return lock


def _is_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


def _scopes(value: object) -> frozenset[str]:
    """The granted scopes of a `text[]` column, short names spelled as Google answers them."""
    if not isinstance(value, list):
        return frozenset()
    return normalize_scopes(" ".join(scope for scope in value if isinstance(scope, str)))


def _timestamp(value: object) -> datetime | None:
    """A timestamp as PostgREST answers it, naive ones read as UTC (the original wrote UTC, Supabase runs in UTC)."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _epoch(value: object) -> float:
    """The access token's expiry in seconds since the epoch; 0, "refresh at first use", when unknown."""
    moment = _timestamp(value)
    return moment.timestamp() if moment is not None else 0.0
