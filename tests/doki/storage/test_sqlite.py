"""What only the SQLite store does: the file on disk, its permissions, and its failure modes."""

from __future__ import annotations

import sqlite3
import stat
import uuid
from pathlib import Path

import pytest

from doki.settings import Settings
from doki.storage import (
    SQLITE_FILENAME,
    SQLiteCredentialStore,
    StoreError,
    StoreUnavailableError,
    build_store,
)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_nothing_is_written_until_the_store_is_first_used(tmp_path: Path) -> None:
    path = tmp_path / "state" / "credentials.sqlite3"
    store = SQLiteCredentialStore(path)

    assert not path.parent.exists()

    store.list_for_user(str(uuid.uuid4()))
    assert path.exists()


def test_the_database_and_its_journal_files_are_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "state" / "credentials.sqlite3"
    store = SQLiteCredentialStore(path)

    store.put(str(uuid.uuid4()), "google", "c")

    assert mode(path) == 0o600
    # WAL side files exist while any connection is open: hold one to look at them.
    with sqlite3.connect(path) as conn:
        conn.execute("SELECT count(*) FROM credentials").fetchone()
        side_files = [p for p in (Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists()]
        assert side_files
        assert all(mode(p) == 0o600 for p in side_files)


def test_the_state_directory_is_created_private_and_git_ignored(tmp_path: Path) -> None:
    state = tmp_path / "state"

    SQLiteCredentialStore(state / "credentials.sqlite3").put(str(uuid.uuid4()), "google", "c")

    assert mode(state) == 0o700
    assert (state / ".gitignore").read_text() == "*\n"


def test_the_database_uses_write_ahead_logging(tmp_path: Path) -> None:
    path = tmp_path / "credentials.sqlite3"
    SQLiteCredentialStore(path).put(str(uuid.uuid4()), "google", "c")

    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_credentials_survive_reopening_the_store(tmp_path: Path) -> None:
    path = tmp_path / "credentials.sqlite3"
    user = str(uuid.uuid4())
    written = SQLiteCredentialStore(path).put(user, "google", "c", {"email": "a@example.org"})

    reopened = SQLiteCredentialStore(path)

    assert reopened.get(user, "google") == written


def test_a_location_that_cannot_hold_a_directory_raises_store_unavailable_naming_it(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    store = SQLiteCredentialStore(blocker / "credentials.sqlite3")

    with pytest.raises(StoreUnavailableError) as caught:
        store.get(str(uuid.uuid4()), "google")

    assert str(blocker) in str(caught.value)
    assert "DOKI_STATE_DIR" in str(caught.value)


def test_a_file_that_is_not_a_database_raises_a_store_error_saying_to_move_it_aside(tmp_path: Path) -> None:
    path = tmp_path / "credentials.sqlite3"
    path.write_bytes(b"this is not a database, just bytes " * 100)

    with pytest.raises(StoreError) as caught:
        SQLiteCredentialStore(path).get(str(uuid.uuid4()), "google")

    assert not isinstance(caught.value, StoreUnavailableError)
    assert str(path) in str(caught.value)
    assert "move it aside" in str(caught.value)


def test_build_store_uses_the_sqlite_file_in_the_state_dir_by_default(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path / "state")

    store = build_store(settings)

    assert isinstance(store, SQLiteCredentialStore)
    assert store.path == tmp_path / "state" / SQLITE_FILENAME
