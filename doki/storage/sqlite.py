"""The embedded credential store: one SQLite file in the local state directory, for development.

Each call opens its own connection, so the store is safe to share across FastAPI's threadpool without a
lock; WAL lets readers run while a write commits, and `busy_timeout` makes concurrent writers wait instead
of failing. The file holds only ciphertext, but it is still created owner-only (0600): SQLite gives its
-wal and -shm files the same mode.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path

from doki.settings import ensure_state_dir
from doki.storage.base import StoredCredential, StoreError, StoreUnavailableError

_BUSY_TIMEOUT_SECONDS = 10.0
DEFAULT_PAGE_SIZE = 500
# Plain literals, not f-strings: every value goes through a `?` placeholder.
_UPSERT = """
INSERT INTO credentials (user_id, provider, ciphertext, metadata, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (user_id, provider) DO UPDATE
SET ciphertext = excluded.ciphertext, metadata = excluded.metadata, updated_at = excluded.updated_at
RETURNING user_id, provider, ciphertext, metadata, updated_at
"""
# DO NOTHING returns no row for a conflict: the caller learns the row was there already.
_INSERT_IF_ABSENT = """
INSERT INTO credentials (user_id, provider, ciphertext, metadata, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (user_id, provider) DO NOTHING
RETURNING user_id, provider, ciphertext, metadata, updated_at
"""
_GET = """
SELECT user_id, provider, ciphertext, metadata, updated_at FROM credentials
WHERE user_id = ? AND provider = ?
"""
_LIST_FOR_USER = """
SELECT user_id, provider, ciphertext, metadata, updated_at FROM credentials
WHERE user_id = ? ORDER BY provider
"""
_FIRST_PAGE = """
SELECT user_id, provider, ciphertext, metadata, updated_at FROM credentials
ORDER BY user_id, provider LIMIT ?
"""
_NEXT_PAGE = """
SELECT user_id, provider, ciphertext, metadata, updated_at FROM credentials
WHERE (user_id, provider) > (?, ?) ORDER BY user_id, provider LIMIT ?
"""
_SCHEMA = """
CREATE TABLE IF NOT EXISTS credentials (
    user_id    TEXT NOT NULL,
    provider   TEXT NOT NULL,
    ciphertext TEXT NOT NULL,
    metadata   TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (user_id, provider)
) WITHOUT ROWID
"""

Row = tuple[str, str, str, str, str]


class SQLiteCredentialStore:
    """A `CredentialStore` in the SQLite file at `path`; the file and its table are made on first use."""

    def __init__(self, path: Path | str, *, page_size: int = DEFAULT_PAGE_SIZE) -> None:
        self.path = Path(path)
        self.page_size = page_size
        self._init_lock = threading.Lock()
        self._initialized = False

    def __repr__(self) -> str:
        return f"SQLiteCredentialStore({str(self.path)!r})"

    def put(
        self, user_id: str, provider: str, ciphertext: str, metadata: dict[str, str] | None = None
    ) -> StoredCredential:
        now = _now()
        with self._connection() as conn:
            row = conn.execute(
                _UPSERT, (user_id, provider, ciphertext, json.dumps(metadata or {}), now, now)
            ).fetchone()
        return _credential(row)

    def insert_if_absent(
        self, user_id: str, provider: str, ciphertext: str, metadata: dict[str, str] | None = None
    ) -> StoredCredential | None:
        now = _now()
        with self._connection() as conn:
            row = conn.execute(
                _INSERT_IF_ABSENT, (user_id, provider, ciphertext, json.dumps(metadata or {}), now, now)
            ).fetchone()
        return _credential(row) if row else None

    def get(self, user_id: str, provider: str) -> StoredCredential | None:
        with self._connection() as conn:
            row = conn.execute(_GET, (user_id, provider)).fetchone()
        return _credential(row) if row else None

    def list_for_user(self, user_id: str) -> list[StoredCredential]:
        with self._connection() as conn:
            rows = conn.execute(_LIST_FOR_USER, (user_id,)).fetchall()
        return [_credential(row) for row in rows]

    def delete(self, user_id: str, provider: str, *, expected_ciphertext: str | None = None) -> bool:
        with self._connection() as conn:
            if expected_ciphertext is None:
                cursor = conn.execute("DELETE FROM credentials WHERE user_id = ? AND provider = ?", (user_id, provider))
            else:
                cursor = conn.execute(
                    "DELETE FROM credentials WHERE user_id = ? AND provider = ? AND ciphertext = ?",
                    (user_id, provider, expected_ciphertext),
                )
        return cursor.rowcount > 0

    def iter_all(self) -> Iterator[StoredCredential]:
        # Keyset pages, each read on its own connection: no read transaction stays open while the caller
        # writes between pages, and rows updated in place never move, so none is skipped or repeated.
        after: tuple[str, str] | None = None
        while True:
            with self._connection() as conn:
                if after is None:
                    rows = conn.execute(_FIRST_PAGE, (self.page_size,)).fetchall()
                else:
                    rows = conn.execute(_NEXT_PAGE, (*after, self.page_size)).fetchall()
            yield from (_credential(row) for row in rows)
            if len(rows) < self.page_size:
                return
            after = (rows[-1][0], rows[-1][1])

    def replace_ciphertext(
        self,
        user_id: str,
        provider: str,
        expected_ciphertext: str,
        new_ciphertext: str,
        metadata: dict[str, str] | None = None,
    ) -> bool:
        with self._connection() as conn:
            if metadata is None:
                cursor = conn.execute(
                    "UPDATE credentials SET ciphertext = ?, updated_at = ? "
                    "WHERE user_id = ? AND provider = ? AND ciphertext = ?",
                    (new_ciphertext, _now(), user_id, provider, expected_ciphertext),
                )
            else:
                cursor = conn.execute(
                    "UPDATE credentials SET ciphertext = ?, metadata = ?, updated_at = ? "
                    "WHERE user_id = ? AND provider = ? AND ciphertext = ?",
                    (new_ciphertext, json.dumps(metadata), _now(), user_id, provider, expected_ciphertext),
                )
        return cursor.rowcount > 0

    def close(self) -> None:
        """Nothing to release: every call closes its own connection."""

    def _connection(self) -> AbstractContextManager[sqlite3.Connection]:
        if not self._initialized:
            with self._init_lock:
                if not self._initialized:
                    self._initialize()
                    self._initialized = True
        return _connect(self.path)

    def _initialize(self) -> None:
        try:
            ensure_state_dir(self.path.parent)
            # Owner-only before SQLite opens it (SQLite would follow the umask, often giving 0644), and
            # tightened if an older file is looser.
            os.close(os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600))
            os.chmod(self.path, 0o600)
        except OSError as exc:
            raise StoreUnavailableError(
                f"cannot create the SQLite credential store at {self.path} ({exc.strerror}): "
                "make its directory writable, or point DOKI_STATE_DIR elsewhere"
            ) from exc
        with _connect(self.path) as conn:
            # WAL is a property of the file, set once; it survives reopening.
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(_SCHEMA)


@contextmanager
def _connect(path: Path) -> Iterator[sqlite3.Connection]:
    """One connection for one call: commits on success, rolls back on error, always closes.

    sqlite3 errors become store errors that name the file and the fix.
    """
    try:
        conn = sqlite3.connect(path, timeout=_BUSY_TIMEOUT_SECONDS)
    except sqlite3.Error as exc:
        raise _translate(exc, path) from exc
    try:
        with closing(conn), conn:
            yield conn
    except sqlite3.Error as exc:
        raise _translate(exc, path) from exc


def _translate(exc: sqlite3.Error, path: Path) -> StoreError:
    if isinstance(exc, sqlite3.OperationalError):
        # Locked past the busy timeout, unreadable file, full disk: conditions outside this code.
        return StoreUnavailableError(
            f"the SQLite credential store at {path} failed ({exc}): check the file is readable and "
            "writable, the disk has space, and no other process holds it locked"
        )
    # In practice "file is not a database" or "database disk image is malformed".
    return StoreError(
        f"the SQLite credential store at {path} failed ({exc}): if the file is damaged, move it aside; "
        "a new one is created, and users reconnect their accounts"
    )


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _credential(row: Row) -> StoredCredential:
    user_id, provider, ciphertext, metadata, updated_at = row
    return StoredCredential(
        user_id=user_id,
        provider=provider,
        ciphertext=ciphertext,
        metadata=json.loads(metadata),
        updated_at=datetime.fromisoformat(updated_at),
    )
