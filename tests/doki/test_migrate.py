"""`python -m doki.migrate`: every user's connections carried over from the original backend's table at once.

The original's rows are written as its own code wrote them (tests/helpers/original.py) into a PostgREST fake that
holds Doki's table beside the original's; the command runs on the settings a deployment would give it.
"""

from __future__ import annotations

import io
import json
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.fernet import Fernet

from doki.crypto import CredentialCipher
from doki.migrate import main
from doki.storage import SupabaseCredentialStore
from tests.doki.conftest import SUPABASE_SECRET
from tests.fakes.postgrest import FakePostgrest
from tests.helpers import clean_env, run, secret
from tests.helpers.original import SCOPES, TABLE, Original

ORIGINAL_KEY = secret("the original backend's Fernet key", Fernet.generate_key().decode())
OTHER_KEY = secret("a Fernet key the original never had", Fernet.generate_key().decode())
DOKI_KEY = secret("Doki's Fernet key", Fernet.generate_key().decode())
SERVICE_ROLE = secret("a user's Supabase secret key", "sb_secret_UsersOwnProject0123456789abcdefghij")
PROJECT = "https://abcdefghijklmnopqrst.supabase.co"
ALICE, BOB, CAROL, DAN = (str(uuid.UUID(int=n, version=4)) for n in (0xA11CE, 0xB0B, 0xCA201, 0xDA2))
CIPHER = CredentialCipher.from_keys([DOKI_KEY])


@dataclass
class Ran:
    status: int
    counts: dict[str, Any]
    stderr: str


def migrate(*args: str) -> Ran:
    out, err = io.StringIO(), io.StringIO()
    status = main(list(args), stdout=out, stderr=err)
    lines = out.getvalue().splitlines()
    assert len(lines) == (1 if status in (0, 1) else 0), out.getvalue()
    return Ran(status, json.loads(lines[0]) if lines else {}, err.getvalue())


def counts(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "dry_run": False,
        "users": 0,
        "rows": 0,
        "imported": {"google": 0, "supabase": 0},
        "already": 0,
        "undecryptable": 0,
        "unusable": 0,
        "failed": 0,
    }
    return {**base, **changes}


@pytest.fixture
def configured(monkeypatch: pytest.MonkeyPatch, original_postgrest: FakePostgrest) -> FakePostgrest:
    """The environment of a deployment that switched from the original to Doki."""
    monkeypatch.setenv("SUPABASE_URL", original_postgrest.url)
    monkeypatch.setenv("SUPABASE_SECRET_KEY", SUPABASE_SECRET)
    monkeypatch.setenv("ENCRYPTION_KEY", DOKI_KEY)
    monkeypatch.setenv("LEGACY_CREDENTIALS_TABLE", TABLE)
    monkeypatch.setenv("LEGACY_ENCRYPTION_KEY", ORIGINAL_KEY)
    return original_postgrest


@pytest.fixture
def doki_store(original_postgrest: FakePostgrest) -> Iterator[SupabaseCredentialStore]:
    store = SupabaseCredentialStore(original_postgrest.url, SUPABASE_SECRET, "doki_credentials")
    yield store
    store.close()


@pytest.fixture
def original(original_postgrest: FakePostgrest) -> Original:
    return Original(original_postgrest.url, SUPABASE_SECRET, ORIGINAL_KEY)


def sign_in(original: Original, user: str, access: str = "ya29.access-token-of-the-original") -> None:
    original.google_signed_in(user, access, "1//0g-refresh-token-of-the-original", None, list(SCOPES))


@pytest.fixture
def users_of_the_original(
    configured: FakePostgrest, original: Original, doki_store: SupabaseCredentialStore
) -> dict[str, Any]:
    """Alice: two Google sign-ins and a project. Bob: a sign-in under another key. Carol: a project URL Doki refuses.
    Dan: a sign-in on the original, and a connection made on Doki since."""
    sign_in(original, ALICE, "ya29.older-sign-in")
    sign_in(original, ALICE, "ya29.newer-sign-in")
    alice_project = original.supabase_connected(ALICE, PROJECT, None, SERVICE_ROLE)
    sign_in(Original(configured.url, SUPABASE_SECRET, OTHER_KEY), BOB)
    original.supabase_connected(CAROL, "http://abcdefghijklmnopqrst.supabase.co", None, SERVICE_ROLE)
    sign_in(original, DAN)
    dans = doki_store.put(DAN, "google", CIPHER.encrypt(DAN, "made on Doki"), {"status": "connected"})
    return {"alice_project": alice_project, "dans": dans, "original_rows": configured.rows(TABLE)}


FIRST_RUN = counts(
    users=4, rows=6, imported={"google": 1, "supabase": 1}, already=1, undecryptable=1, unusable=1, failed=0
)


def test_a_dry_run_decrypts_and_counts_everything_and_writes_nothing(
    users_of_the_original: dict[str, Any], configured: FakePostgrest
) -> None:
    before = configured.rows("doki_credentials")

    ran = migrate("--dry-run")

    assert ran.status == 0
    assert ran.counts == {**FIRST_RUN, "dry_run": True}
    assert configured.rows("doki_credentials") == before
    assert configured.rows(TABLE) == users_of_the_original["original_rows"]
    assert f"user {BOB}, google: undecryptable: no key in LEGACY_ENCRYPTION_KEY decrypts the row" in ran.stderr
    assert f"user {CAROL}, supabase: unusable: Doki refuses the stored project" in ran.stderr


def test_the_import_carries_each_connection_over_encrypted_for_its_own_user(
    users_of_the_original: dict[str, Any], configured: FakePostgrest, doki_store: SupabaseCredentialStore
) -> None:
    ran = migrate()

    assert (ran.status, ran.counts) == (0, FIRST_RUN)
    google = doki_store.get(ALICE, "google")
    assert google is not None
    assert json.loads(CIPHER.decrypt(ALICE, google.ciphertext))["access_token"] == "ya29.newer-sign-in"
    project = doki_store.get(ALICE, "supabase")
    assert project is not None
    assert json.loads(CIPHER.decrypt(ALICE, project.ciphertext))["service_role_key"] == SERVICE_ROLE
    assert project.metadata["connection_id"] == users_of_the_original["alice_project"]["id"]
    assert doki_store.get(BOB, "google") is None and doki_store.get(CAROL, "supabase") is None
    assert configured.rows(TABLE) == users_of_the_original["original_rows"]


def test_a_second_run_imports_nothing_again(users_of_the_original: dict[str, Any]) -> None:
    assert migrate().counts == FIRST_RUN

    again = migrate()

    assert again.counts == counts(users=4, rows=6, already=3, undecryptable=1, unusable=1)


def test_a_user_who_connected_on_doki_meanwhile_keeps_that_connection(
    users_of_the_original: dict[str, Any], doki_store: SupabaseCredentialStore
) -> None:
    migrate()

    assert doki_store.get(DAN, "google") == users_of_the_original["dans"]


def test_a_connection_the_user_disconnected_is_not_imported_again(
    users_of_the_original: dict[str, Any], doki_store: SupabaseCredentialStore
) -> None:
    migrate("--user", ALICE, "--provider", "google")
    assert doki_store.delete(ALICE, "google")  # as a disconnect does, its marker left behind

    ran = migrate("--user", ALICE, "--provider", "google")

    assert ran.counts == counts(users=1, rows=2, already=1)
    assert doki_store.get(ALICE, "google") is None


def test_a_key_added_later_imports_what_no_key_decrypted_before(
    users_of_the_original: dict[str, Any], monkeypatch: pytest.MonkeyPatch, doki_store: SupabaseCredentialStore
) -> None:
    assert migrate("--user", BOB).counts == counts(users=1, rows=1, undecryptable=1)

    monkeypatch.setenv("LEGACY_ENCRYPTION_KEY", f"{ORIGINAL_KEY},{OTHER_KEY}")
    ran = migrate("--user", BOB)

    assert ran.counts == counts(users=1, rows=1, imported={"google": 1, "supabase": 0})
    assert doki_store.get(BOB, "google") is not None


def test_provider_and_user_narrow_the_run(users_of_the_original: dict[str, Any]) -> None:
    assert migrate("--dry-run", "--provider", "supabase").counts == counts(
        dry_run=True, users=2, rows=2, imported={"google": 0, "supabase": 1}, unusable=1
    )
    assert migrate("--dry-run", "--user", ALICE.upper()).counts == counts(
        dry_run=True, users=1, rows=3, imported={"google": 1, "supabase": 1}
    )
    assert migrate("--dry-run", "--user", str(uuid.uuid4())).counts == counts(dry_run=True)


def test_without_the_original_table_it_refuses_saying_what_to_set(
    monkeypatch: pytest.MonkeyPatch, original_postgrest: FakePostgrest
) -> None:
    monkeypatch.setenv("SUPABASE_URL", original_postgrest.url)
    monkeypatch.setenv("SUPABASE_SECRET_KEY", SUPABASE_SECRET)

    ran = migrate()

    assert ran.status == 78
    assert ran.stderr.startswith("doki.migrate cannot run: 2 configuration problem(s)\n")
    assert "  - LEGACY_CREDENTIALS_TABLE is not set: set it to the original backend's table (credentials)" in ran.stderr
    assert "  - ENCRYPTION_KEY is not set: connections are encrypted with it" in ran.stderr
    assert original_postgrest.requests == []


def test_settings_the_app_would_refuse_are_refused_before_anything_is_read(
    configured: FakePostgrest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEGACY_ENCRYPTION_KEY", "not-a-key")

    ran = migrate()

    assert ran.status == 78
    assert "LEGACY_ENCRYPTION_KEY key #1 is not a valid Fernet key" in ran.stderr
    assert "not-a-key" not in ran.stderr
    assert configured.requests == []


@pytest.mark.parametrize("user", ["alice", "", "a11ce"])
def test_a_user_that_is_not_a_user_id_is_a_usage_error_naming_the_fix(
    configured: FakePostgrest, capsys: pytest.CaptureFixture[str], user: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--user", user])

    assert exited.value.code == 2
    assert "is not a user id: give the user's Supabase Auth id, a UUID" in capsys.readouterr().err
    assert configured.requests == []


def test_a_missing_doki_table_stops_the_run_before_anything_is_written(
    users_of_the_original: dict[str, Any], configured: FakePostgrest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CREDENTIALS_TABLE", "doki_credentialz")
    before = configured.rows("doki_credentials")

    ran = migrate()

    assert ran.status == 1
    assert ran.counts == counts()
    assert "the table 'doki_credentialz' does not exist" in ran.stderr
    assert "once fixed, run it again" in ran.stderr
    assert configured.rows("doki_credentials") == before


def test_a_connection_the_store_refuses_is_counted_failed_and_the_others_still_carried_over(
    users_of_the_original: dict[str, Any], configured: FakePostgrest, doki_store: SupabaseCredentialStore
) -> None:
    # As Postgres answers a row whose user is gone from auth.users (doki_credentials.user_id references it).
    refusal = {
        "code": "23503",
        "message": 'insert or update on table "doki_credentials" violates foreign key constraint '
        '"doki_credentials_user_id_fkey"',
        "details": None,
        "hint": None,
    }
    configured.fail_next(1, status=409, body=json.dumps(refusal), method="POST")

    ran = migrate()

    # Users go in id order: Bob's is the first write (his marker), refused.
    assert ran.status == 1
    assert ran.counts == {**FIRST_RUN, "undecryptable": 0, "failed": 1}
    assert f"user {BOB}, google: not written: Supabase answered 409 23503" in ran.stderr
    assert doki_store.get(ALICE, "google") is not None and doki_store.get(ALICE, "supabase") is not None


def test_a_store_that_stops_answering_stops_the_run_keeping_what_was_done(
    users_of_the_original: dict[str, Any], configured: FakePostgrest
) -> None:
    assert migrate("--user", ALICE, "--provider", "google").counts["imported"] == {"google": 1, "supabase": 0}
    done = configured.rows("doki_credentials")
    configured.fail_next(100, status=503)

    ran = migrate()

    assert (ran.status, ran.counts) == (1, counts())
    assert "Supabase is failing or overloaded" in ran.stderr
    assert configured.rows("doki_credentials") == done


def test_python_m_doki_migrate_runs_as_a_command(
    users_of_the_original: dict[str, Any], configured: FakePostgrest
) -> None:
    env = clean_env(
        SUPABASE_URL=configured.url,
        SUPABASE_SECRET_KEY=SUPABASE_SECRET,
        ENCRYPTION_KEY=DOKI_KEY,
        LEGACY_CREDENTIALS_TABLE=TABLE,
        LEGACY_ENCRYPTION_KEY=ORIGINAL_KEY,
    )

    done = run([sys.executable, "-m", "doki.migrate", "--dry-run"], env=env, capture_output=True, text=True)

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {**FIRST_RUN, "dry_run": True}
