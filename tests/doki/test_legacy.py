"""Connections made on the original backend, carried over into Doki's store (doki.legacy).

The original's table lives in a PostgREST fake beside Doki's, filled by the original's own writes over HTTP
(tests/helpers/original.py): bytea columns holding each token's Fernet text, a row per sign-in or connect. Through
the whole app, a user of the original uses Sheets and their Supabase project on Doki without reconnecting.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet

from doki.connectors.google import REQUIRED_SCOPES, SCOPE_DRIVE_READONLY, SCOPE_EMAIL
from doki.connectors.supabase_project import ProjectURL, parse_project_url
from doki.crypto import CredentialCipher, CredentialDecryptError, reencrypt_store
from doki.legacy import Found, LegacyCredentials, LegacyFallbackStore, settle, stored_bytes
from doki.storage import StoreError, SupabaseCredentialStore
from tests.doki.api.google_harness import Backend, account, backend, new_google, new_supabase
from tests.doki.conftest import SUPABASE_SECRET
from tests.fakes.google import FakeGoogle
from tests.fakes.postgrest import FakePostgrest, TableSpec
from tests.fakes.supabase_auth import FakeSupabaseAuth
from tests.helpers import secret
from tests.helpers.original import SCOPES, TABLE, Original, encrypt_token_for_storage, google_sign_in

ORIGINAL_KEY = secret("the original backend's Fernet key", Fernet.generate_key().decode())
OTHER_KEY = secret("a Fernet key the original never had", Fernet.generate_key().decode())
DOKI_KEY = secret("Doki's Fernet key", Fernet.generate_key().decode())
NEW_KEY = secret("Doki's next Fernet key", Fernet.generate_key().decode())
SERVICE_ROLE = secret("the user's Supabase secret key", "sb_secret_UsersOwnProject0123456789abcdefghij")
ANON = "sb_publishable_UsersOwnProject0123456789abcd"
ACCESS = secret("a Google access token of the original's", "ya29.a0OriginalAccessToken0123456789")
REFRESH = secret("a Google refresh token of the original's", "1//0gOriginalRefreshToken0123456789")
EXPIRY = datetime(2030, 1, 2, 3, 4, 5, 600000)  # naive UTC, as google-auth keeps it
CUSTOMERS = TableSpec(columns=("id", "email"), primary_key=("id",), types={"id": "bigint"})


def new_user() -> str:
    return str(uuid.uuid4())


def parse_url(raw: str) -> ProjectURL:
    return parse_project_url(raw, allow_loopback=True, production=False)


def legacy_requests(postgrest: FakePostgrest) -> int:
    return sum(1 for request in postgrest.requests if request.path == f"/rest/v1/{TABLE}")


@pytest.fixture
def original(original_postgrest: FakePostgrest) -> Original:
    return Original(original_postgrest.url, SUPABASE_SECRET, ORIGINAL_KEY)


@pytest.fixture
def legacy(original_postgrest: FakePostgrest) -> Iterator[LegacyCredentials]:
    reader = LegacyCredentials(original_postgrest.url, SUPABASE_SECRET, TABLE, [ORIGINAL_KEY], parse_url, page_size=2)
    yield reader
    reader.close()


@pytest.fixture
def cipher() -> CredentialCipher:
    return CredentialCipher.from_keys([DOKI_KEY])


@pytest.fixture
def doki_store(original_postgrest: FakePostgrest) -> Iterator[SupabaseCredentialStore]:
    store = SupabaseCredentialStore(original_postgrest.url, SUPABASE_SECRET, "doki_credentials")
    yield store
    store.close()


@pytest.fixture
def fallback(
    doki_store: SupabaseCredentialStore, legacy: LegacyCredentials, cipher: CredentialCipher
) -> LegacyFallbackStore:
    return LegacyFallbackStore(doki_store, legacy, cipher)


def google_row(original: Original, user: str, **changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "access_token": ACCESS,
        "refresh_token": REFRESH,
        "expiry": EXPIRY,
        "granted_scopes": list(SCOPES),
    }
    values.update(changes)
    return original.google_signed_in(user, **values)


# The fake's bytea columns, as Postgres's


def test_a_token_the_original_stored_is_kept_as_its_bytes_and_answered_as_hex(
    original: Original, original_postgrest: FakePostgrest
) -> None:
    answered = google_row(original, new_user())

    (stored,) = original_postgrest.rows(TABLE)
    token = stored["access_token_encrypted"]
    assert isinstance(token, bytes) and token.startswith(b"gAAAAA")
    assert answered["access_token_encrypted"] == "\\x" + token.hex()
    assert Fernet(ORIGINAL_KEY).decrypt(token).decode() == ACCESS


@pytest.mark.parametrize(
    ("text", "stored"),
    [
        ("\\x6869", b"hi"),
        ("\\x 68\n69\t", b"hi"),  # whitespace between digit pairs
        ("\\x", b""),
        ("plain", b"plain"),
        ("a\\\\b", b"a\\b"),  # escape format: a doubled backslash is one
        ("\\101\\000", b"A\x00"),  # escape format: octal
        ("é", "é".encode()),
    ],
)
def test_the_fake_reads_bytea_input_in_hex_and_escape_format(
    original: Original, original_postgrest: FakePostgrest, text: str, stored: bytes
) -> None:
    answered = original.insert({"user_id": new_user(), "provider": "google", "access_token_encrypted": text})

    assert original_postgrest.rows(TABLE)[0]["access_token_encrypted"] == stored
    assert answered["access_token_encrypted"] == "\\x" + stored.hex()


@pytest.mark.parametrize(
    ("text", "code", "message"),
    [
        ("\\x686", "22023", "invalid hexadecimal data: odd number of digits"),
        ("\\x6z", "22023", 'invalid hexadecimal digit: "z"'),
        ("\\x6 8", "22023", 'invalid hexadecimal digit: " "'),
        ("a\\qb", "22P02", "invalid input syntax for type bytea"),
        ("\\400", "22P02", "invalid input syntax for type bytea"),
    ],
)
def test_the_fake_refuses_bytea_input_as_postgres_does(
    original_postgrest: FakePostgrest, text: str, code: str, message: str
) -> None:
    response = httpx.post(
        f"{original_postgrest.url}/rest/v1/{TABLE}",
        json={"user_id": new_user(), "provider": "google", "access_token_encrypted": text},
        headers={"apikey": SUPABASE_SECRET},
    )

    assert response.status_code == 400
    assert (response.json()["code"], response.json()["message"]) == (code, message)
    assert original_postgrest.rows(TABLE) == []


# What a token column holds


TOKEN = Fernet(Fernet.generate_key()).encrypt(b"t")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("\\x" + TOKEN.hex(), TOKEN),  # bytea, as PostgREST answers it
        (TOKEN.decode(), TOKEN),  # a text column holding the token's text
        (TOKEN.hex(), TOKEN),  # hex without its prefix: the original's first fallback
        ("aGk=", b"hi"),  # base64: its last one
        ("aGk", b"hi"),  # ... with its padding put back
        ("", b""),
        (None, b""),
    ],
    # Named, not shown: the token is new at each import, and every xdist worker must collect the same test ids.
    ids=["bytea", "text", "hex", "base64", "base64-unpadded", "empty", "null"],
)
def test_a_token_column_is_read_as_the_original_read_it(value: object, expected: bytes) -> None:
    assert stored_bytes(value) == expected


@pytest.mark.parametrize("value", ["not a token!", 42, ["\\x00"]])
def test_a_token_column_holding_neither_hex_nor_base64_is_refused(value: object) -> None:
    with pytest.raises(ValueError):
        stored_bytes(value)


# From the original's rows to Doki's connection


def test_a_google_row_becomes_the_connection_doki_stores(original: Original, legacy: LegacyCredentials) -> None:
    user = new_user()
    row = google_row(original, user)

    found = legacy.evaluate("google", legacy.rows(user, "google"))

    assert found.status == "importable"
    assert json.loads(found.plaintext) == {
        "access_token": ACCESS,
        "refresh_token": REFRESH,
        "expires_at": EXPIRY.replace(tzinfo=UTC).timestamp(),
        "scopes": sorted(REQUIRED_SCOPES),
        "google_sub": None,
        "email": None,
    }
    assert found.metadata == {
        "status": "connected",
        "email": "",
        "scopes": " ".join(sorted(REQUIRED_SCOPES)),
        "missing_scopes": "",
        "migrated_from": f"{TABLE}:{row['id']}",
    }


def test_google_scopes_are_spelled_as_google_answers_and_none_means_what_the_original_asked_for(
    original: Original, legacy: LegacyCredentials
) -> None:
    short, empty = new_user(), new_user()
    google_row(original, short, granted_scopes=["email", SCOPE_DRIVE_READONLY])
    google_row(original, empty, granted_scopes=[])

    found_short = json.loads(legacy.evaluate("google", legacy.rows(short, "google")).plaintext)
    found_empty = json.loads(legacy.evaluate("google", legacy.rows(empty, "google")).plaintext)

    assert found_short["scopes"] == sorted([SCOPE_EMAIL, SCOPE_DRIVE_READONLY])
    assert found_empty["scopes"] == sorted(REQUIRED_SCOPES)


def test_a_google_row_without_an_expiry_is_refreshed_first_and_one_without_a_refresh_token_is_incomplete(
    original: Original, legacy: LegacyCredentials
) -> None:
    user = new_user()
    google_row(original, user, refresh_token=None, expiry=None)

    found = legacy.evaluate("google", legacy.rows(user, "google"))

    assert json.loads(found.plaintext)["expires_at"] == 0
    assert json.loads(found.plaintext)["refresh_token"] is None
    assert (found.metadata["status"], found.metadata["missing_scopes"]) == ("incomplete", "offline_access")


def test_a_supabase_row_becomes_the_project_credentials_with_its_row_id_as_connection_id(
    original: Original, legacy: LegacyCredentials
) -> None:
    user = new_user()
    row = original.supabase_connected(user, "https://abcdefghijklmnopqrst.supabase.co/", ANON, SERVICE_ROLE)

    found = legacy.evaluate("supabase", legacy.rows(user, "supabase"))

    assert found.status == "importable"
    assert json.loads(found.plaintext) == {
        "v": 1,
        "project_url": "https://abcdefghijklmnopqrst.supabase.co",
        "service_role_key": SERVICE_ROLE,
        "anon_key": ANON,
    }
    assert found.metadata == {
        "project_url": "https://abcdefghijklmnopqrst.supabase.co",
        "project_ref": "abcdefghijklmnopqrst",
        "connection_id": row["id"],
        "migrated_from": f"{TABLE}:{row['id']}",
    }


@pytest.mark.parametrize(
    ("project_url", "anon", "reason"),
    [
        ("http://abcdefghijklmnopqrst.supabase.co", None, "is not https"),
        ("https://abcdefghijklmnopqrst.supabase.co/rest/v1", None, "has a path"),
        ("https://abcdefghijklmnopqrst.supabase.co", SERVICE_ROLE, "anon_key is a secret key"),
    ],
)
def test_a_supabase_row_doki_would_refuse_to_connect_is_unusable(
    original: Original, legacy: LegacyCredentials, project_url: str, anon: str | None, reason: str
) -> None:
    user = new_user()
    original.supabase_connected(user, project_url, anon, SERVICE_ROLE)

    found = legacy.evaluate("supabase", legacy.rows(user, "supabase"))

    assert found.status == "unusable"
    assert reason in found.reason
    assert SERVICE_ROLE not in found.reason


def test_a_supabase_row_without_its_project_url_is_unusable(original: Original, legacy: LegacyCredentials) -> None:
    user = new_user()
    original.insert(
        {
            "user_id": user,
            "provider": "supabase",
            "access_token_encrypted": encrypt_token_for_storage(ORIGINAL_KEY, SERVICE_ROLE),
        }
    )

    found = legacy.evaluate("supabase", legacy.rows(user, "supabase"))

    assert (found.status, found.reason) == ("unusable", "the Supabase row names no project_url in its metadata")


def test_rows_no_key_decrypts_are_undecryptable(original_postgrest: FakePostgrest, legacy: LegacyCredentials) -> None:
    user = new_user()
    google_row(Original(original_postgrest.url, SUPABASE_SECRET, OTHER_KEY), user)

    found = legacy.evaluate("google", legacy.rows(user, "google"))

    assert found.status == "undecryptable"
    assert "LEGACY_ENCRYPTION_KEY" in found.reason
    assert found.plaintext == ""


def test_any_of_several_legacy_keys_decrypts(original: Original, original_postgrest: FakePostgrest) -> None:
    user = new_user()
    google_row(original, user)
    reader = LegacyCredentials(original_postgrest.url, SUPABASE_SECRET, TABLE, [OTHER_KEY, ORIGINAL_KEY], parse_url)

    try:
        assert reader.evaluate("google", reader.rows(user, "google")).status == "importable"
    finally:
        reader.close()


def test_a_user_without_rows_has_nothing_to_import(legacy: LegacyCredentials) -> None:
    assert legacy.evaluate("google", legacy.rows(new_user(), "google")).status == "absent"


def test_the_newest_row_that_decrypts_wins_whatever_order_the_table_keeps_rows_in(
    original_postgrest: FakePostgrest, legacy: LegacyCredentials
) -> None:
    user = new_user()

    def row(day: int, key: str, token: str) -> None:
        original_postgrest.insert_row(
            TABLE,
            {
                "user_id": user,
                "provider": "google",
                "access_token_encrypted": encrypt_token_for_storage(key, token),
                "created_at": f"2025-01-0{day}T10:00:00.000001",
            },
        )

    row(2, ORIGINAL_KEY, "middle")
    row(3, OTHER_KEY, "newest, but not the original's key")
    row(1, ORIGINAL_KEY, "oldest")

    found = legacy.evaluate("google", legacy.rows(user, "google"))

    assert json.loads(found.plaintext)["access_token"] == "middle"


def test_every_user_is_read_with_all_their_rows_across_pages(original: Original, legacy: LegacyCredentials) -> None:
    users = {new_user(): n for n in (1, 2, 3)}  # 6 rows in pages of 2: users straddle page boundaries
    for user, rows in users.items():
        for _ in range(rows):
            google_row(original, user)
    original.supabase_connected(new_user(), "https://abcdefghijklmnopqrst.supabase.co", None, SERVICE_ROLE)

    seen = {user: len(rows) for user, rows in legacy.users("google")}

    assert seen == users


def test_a_missing_original_table_is_a_store_error_naming_the_setting(original_postgrest: FakePostgrest) -> None:
    reader = LegacyCredentials(original_postgrest.url, SUPABASE_SECRET, "credentialz", [ORIGINAL_KEY], parse_url)

    try:
        with pytest.raises(StoreError, match="set LEGACY_CREDENTIALS_TABLE to the original backend's table"):
            reader.rows(new_user(), "google")
    finally:
        reader.close()


# The store that carries connections over


def test_a_user_without_a_doki_row_gets_the_original_connection_carried_over_once(
    original: Original,
    original_postgrest: FakePostgrest,
    fallback: LegacyFallbackStore,
    cipher: CredentialCipher,
) -> None:
    user = new_user()
    google_row(original, user)

    first = fallback.get(user, "google")
    again = fallback.get(user, "google")

    assert first is not None and again == first
    assert json.loads(cipher.decrypt(user, first.ciphertext))["refresh_token"] == REFRESH
    assert legacy_requests(original_postgrest) == 2  # the original's insert, and one read
    assert ACCESS not in first.ciphertext


def test_the_original_rows_are_left_byte_for_byte_as_they_were(
    original: Original, original_postgrest: FakePostgrest, fallback: LegacyFallbackStore
) -> None:
    user = new_user()
    google_row(original, user)
    original.supabase_connected(user, "https://abcdefghijklmnopqrst.supabase.co", ANON, SERVICE_ROLE)
    before = original_postgrest.rows(TABLE)

    fallback.get(user, "google")
    fallback.get(user, "supabase")
    fallback.delete(user, "google")

    assert original_postgrest.rows(TABLE) == before
    assert {r.method for r in original_postgrest.requests if r.path == f"/rest/v1/{TABLE}"} == {"POST", "GET"}


def test_the_imported_connection_decrypts_only_for_its_own_user(
    original: Original, fallback: LegacyFallbackStore, cipher: CredentialCipher
) -> None:
    user = new_user()
    google_row(original, user)

    row = fallback.get(user, "google")

    assert row is not None
    with pytest.raises(CredentialDecryptError, match="encrypted for a different user"):
        cipher.decrypt(new_user(), row.ciphertext)


def test_a_connection_doki_has_is_answered_without_reading_the_original_table(
    original: Original,
    original_postgrest: FakePostgrest,
    doki_store: SupabaseCredentialStore,
    fallback: LegacyFallbackStore,
) -> None:
    user = new_user()
    google_row(original, user)
    mine = doki_store.put(user, "google", "made on Doki")

    assert fallback.get(user, "google") == mine
    assert legacy_requests(original_postgrest) == 1  # the original's insert alone


def test_a_connection_made_meanwhile_wins_over_the_import(
    doki_store: SupabaseCredentialStore, cipher: CredentialCipher
) -> None:
    user = new_user()
    mine = doki_store.put(user, "google", "made on Doki")

    outcome, row = settle(doki_store, cipher, user, "google", Found("importable", "{}", {"migrated_from": "x:1"}))

    assert (outcome, row) == ("already", mine)
    marker = doki_store.get(user, "legacy:google")
    assert marker is not None and marker.metadata == {"status": "superseded"}


def test_after_a_disconnect_the_original_connection_is_not_brought_back(
    original: Original, original_postgrest: FakePostgrest, fallback: LegacyFallbackStore
) -> None:
    user = new_user()
    google_row(original, user)
    assert fallback.get(user, "google") is not None

    assert fallback.delete(user, "google") is True

    assert fallback.get(user, "google") is None
    assert legacy_requests(original_postgrest) == 2


def test_disconnecting_a_connection_only_the_original_has_disconnects_it_for_good(
    original: Original, fallback: LegacyFallbackStore, doki_store: SupabaseCredentialStore
) -> None:
    user = new_user()
    original.supabase_connected(user, "https://abcdefghijklmnopqrst.supabase.co", None, SERVICE_ROLE)

    assert fallback.delete(user, "supabase") is True  # it was the user's connection, though not yet on Doki

    assert fallback.get(user, "supabase") is None
    marker = doki_store.get(user, "legacy:supabase")
    assert marker is not None and marker.metadata == {"status": "imported"}


def test_disconnecting_a_connection_made_on_doki_keeps_the_original_one_from_coming_back(
    original: Original, fallback: LegacyFallbackStore, doki_store: SupabaseCredentialStore
) -> None:
    user = new_user()
    doki_store.put(user, "google", "made on Doki before the import was switched on")
    google_row(original, user)

    assert fallback.delete(user, "google") is True

    assert fallback.get(user, "google") is None
    marker = doki_store.get(user, "legacy:google")
    assert marker is not None and marker.metadata == {"status": "disconnected"}


def test_a_user_the_original_never_had_is_looked_up_once(
    original_postgrest: FakePostgrest, fallback: LegacyFallbackStore, doki_store: SupabaseCredentialStore
) -> None:
    user = new_user()

    assert fallback.get(user, "google") is None
    assert fallback.get(user, "google") is None

    assert legacy_requests(original_postgrest) == 1
    marker = doki_store.get(user, "legacy:google")
    assert marker is not None and marker.metadata == {"status": "absent"}


def test_a_connection_no_key_decrypts_is_not_connected_and_is_marked_so(
    original_postgrest: FakePostgrest, fallback: LegacyFallbackStore, doki_store: SupabaseCredentialStore
) -> None:
    user = new_user()
    google_row(Original(original_postgrest.url, SUPABASE_SECRET, OTHER_KEY), user)

    assert fallback.get(user, "google") is None

    assert doki_store.get(user, "google") is None
    marker = doki_store.get(user, "legacy:google")
    assert marker is not None and marker.metadata == {"status": "undecryptable"}


def test_concurrent_first_requests_read_the_original_table_once(
    original: Original, original_postgrest: FakePostgrest, fallback: LegacyFallbackStore
) -> None:
    user = new_user()
    google_row(original, user)

    with ThreadPoolExecutor(max_workers=8) as pool:
        rows = list(pool.map(lambda _: fallback.get(user, "google"), range(8)))

    assert len({row.ciphertext for row in rows if row is not None}) == 1
    assert None not in rows
    assert legacy_requests(original_postgrest) == 2


def test_other_providers_never_read_the_original_table(
    original_postgrest: FakePostgrest, fallback: LegacyFallbackStore
) -> None:
    assert fallback.get(new_user(), "google_connect") is None
    assert legacy_requests(original_postgrest) == 0


def test_markers_never_show_among_a_users_connections_and_move_with_a_key_rotation(
    original: Original, fallback: LegacyFallbackStore, doki_store: SupabaseCredentialStore, caplog: Any
) -> None:
    user = new_user()
    google_row(original, user)
    fallback.get(user, "google")
    fallback.get(user, "supabase")

    assert [row.provider for row in fallback.list_for_user(user)] == ["google"]
    assert {row.provider for row in doki_store.list_for_user(user)} == {"google", "legacy:google", "legacy:supabase"}

    rotated = CredentialCipher.from_keys([NEW_KEY, DOKI_KEY])
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="doki"):
        assert reencrypt_store(fallback, rotated).moved == 3
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert all(rotated.is_current(row.ciphertext) for row in doki_store.list_for_user(user))


# Through the whole app


@pytest.fixture
def google() -> Iterator[FakeGoogle]:
    fake = new_google()
    yield fake
    fake.stop()


@pytest.fixture
def supabase(google: FakeGoogle, original_postgrest: FakePostgrest) -> Iterator[FakeSupabaseAuth]:
    fake = new_supabase(google, original_postgrest)
    yield fake
    fake.stop()


@pytest.fixture
def project() -> Iterator[FakePostgrest]:
    with FakePostgrest(SERVICE_ROLE, {"customers": CUSTOMERS}, anon_key=ANON) as server:
        yield server


@pytest.fixture(params=["production", "development"])
def environment(request: pytest.FixtureRequest) -> str:
    """Production keeps connections in Supabase, development in SQLite: both read the original's table."""
    param: str = request.param
    return param


def app(environment: str, google: FakeGoogle, supabase: FakeSupabaseAuth, **overrides: Any) -> Any:
    values: dict[str, Any] = {"legacy_credentials_table": TABLE, "legacy_encryption_key": ORIGINAL_KEY}
    if environment == "development":
        # The original's table is read in Supabase; Doki's connections are kept in the local SQLite file.
        values.update(supabase_secret_key=SUPABASE_SECRET, credential_store="sqlite")
    values.update(overrides)
    return backend(environment, google, supabase, **values)


def signed_in_user_of_the_original(doki: Backend, original: Original, email: str = "ada@example.com") -> str:
    """A user signed in to Doki (the client sends their token from now on) who had signed in to the original with
    Google (the fake's current consent account); their id."""
    user_id, headers = doki.signed_in(email)
    access, refresh, expiry, scopes = google_sign_in(doki.google)
    original.google_signed_in(user_id, access, refresh, expiry, scopes)
    doki.client.headers.update(headers)
    return user_id


def test_a_user_of_the_original_lists_their_spreadsheets_on_doki_without_reconnecting(
    environment: str,
    google: FakeGoogle,
    supabase: FakeSupabaseAuth,
    original: Original,
    original_postgrest: FakePostgrest,
) -> None:
    budget = google.add_spreadsheet(account(google, "ada@gmail.com"), "Budget")
    with app(environment, google, supabase) as doki:
        user_id = signed_in_user_of_the_original(doki, original)
        before = original_postgrest.rows(TABLE)

        response = doki.client.get("/connectors/sheets/list")

        assert response.status_code == 200, response.text
        assert [(s["id"], s["name"]) for s in response.json()] == [(budget, "Budget")]
        stored = doki.stored(user_id)
        assert stored is not None and stored.metadata["migrated_from"] == f"{TABLE}:{before[0]['id']}"
        assert doki.client.get("/auth/google").json()["connected"] is True
        assert original_postgrest.rows(TABLE) == before


def test_the_newest_sign_in_that_decrypts_is_the_one_carried_over(
    google: FakeGoogle, supabase: FakeSupabaseAuth, original: Original, original_postgrest: FakePostgrest
) -> None:
    old = google.add_account("old@gmail.com")
    google.add_spreadsheet(old, "Old account's sheet")
    google.add_spreadsheet(account(google, "ada@gmail.com"), "Budget")
    with app("production", google, supabase) as doki:
        user_id, headers = doki.signed_in()
        google.will_consent(old)
        original.google_signed_in(user_id, *google_sign_in(google))
        google.will_consent(account(google, "ada@gmail.com"))
        original.google_signed_in(user_id, *google_sign_in(google))
        other = Original(original_postgrest.url, SUPABASE_SECRET, OTHER_KEY)
        other.google_signed_in(user_id, *google_sign_in(google))

        response = doki.client.get("/connectors/sheets/list", headers=headers)

        assert [s["name"] for s in response.json()] == ["Budget"]


def test_a_sign_in_no_key_decrypts_leaves_google_not_connected(
    environment: str, google: FakeGoogle, supabase: FakeSupabaseAuth, original_postgrest: FakePostgrest
) -> None:
    with app(environment, google, supabase) as doki:
        signed_in_user_of_the_original(doki, Original(original_postgrest.url, SUPABASE_SECRET, OTHER_KEY))

        response = doki.client.get("/connectors/sheets/list")

        assert response.status_code == 409
        assert response.json()["code"] == "google_not_connected"
        assert doki.client.get("/auth/google").json()["connected"] is False


def test_without_legacy_encryption_key_the_original_key_is_looked_for_among_encryption_key(
    google: FakeGoogle, supabase: FakeSupabaseAuth, original: Original
) -> None:
    google.add_spreadsheet(account(google, "ada@gmail.com"), "Budget")
    keys = f"{DOKI_KEY},{ORIGINAL_KEY}"  # ENCRYPTION_KEY_NAME=<the original's key>, with a newer one in front
    with app("production", google, supabase, encryption_key=keys, legacy_encryption_key=None) as doki:
        signed_in_user_of_the_original(doki, original)

        response = doki.client.get("/connectors/sheets/list")

        assert [s["name"] for s in response.json()] == ["Budget"]


def test_after_disconnecting_google_the_original_connection_does_not_come_back(
    environment: str,
    google: FakeGoogle,
    supabase: FakeSupabaseAuth,
    original: Original,
    original_postgrest: FakePostgrest,
) -> None:
    with app(environment, google, supabase) as doki:
        signed_in_user_of_the_original(doki, original)
        before = original_postgrest.rows(TABLE)
        refresh_token = google.refresh_tokens_of(account(google, "ada@gmail.com"))[-1]

        disconnected = doki.client.delete("/auth/google")

        assert disconnected.json() == {"disconnected": True, "revoked": True}
        assert refresh_token in google.revoked_tokens  # the original's grant ends at Google too
        response = doki.client.get("/connectors/sheets/list")
        assert response.status_code == 409
        assert response.json()["code"] == "google_not_connected"
        assert original_postgrest.rows(TABLE) == before


def test_a_user_who_connected_google_on_doki_keeps_that_connection(
    environment: str,
    google: FakeGoogle,
    supabase: FakeSupabaseAuth,
    original: Original,
    original_postgrest: FakePostgrest,
) -> None:
    old = google.add_account("old@gmail.com")
    google.add_spreadsheet(old, "Old account's sheet")
    google.add_spreadsheet(account(google, "ada@gmail.com"), "Budget")
    with app(environment, google, supabase) as doki:
        user_id, headers = doki.signed_in()
        google.will_consent(old)
        original.google_signed_in(user_id, *google_sign_in(google))
        google.will_consent(account(google, "ada@gmail.com"))
        assert doki.connect(headers["Authorization"].removeprefix("Bearer ")).status_code == 200

        response = doki.client.get("/connectors/sheets/list", headers=headers)

        assert [s["name"] for s in response.json()] == ["Budget"]
        assert legacy_requests(original_postgrest) == 1  # the original's insert: never read


def test_a_user_of_the_original_tests_their_supabase_project_on_doki(
    environment: str,
    google: FakeGoogle,
    supabase: FakeSupabaseAuth,
    original: Original,
    project: FakePostgrest,
) -> None:
    with app(environment, google, supabase) as doki:
        user_id, headers = doki.signed_in()
        row = original.supabase_connected(user_id, project.url, ANON, SERVICE_ROLE)

        response = doki.client.get("/connectors/supabase/test", headers=headers)

        assert response.status_code == 200, response.text
        assert (response.json()["status"], response.json()["project_url"]) == ("connected", project.url)
        stored = doki.app.state.store.get(user_id, "supabase")
        assert stored.metadata["connection_id"] == row["id"]
        assert SERVICE_ROLE not in response.text


def test_disconnecting_a_supabase_project_only_the_original_knew_disconnects_it_for_good(
    environment: str, google: FakeGoogle, supabase: FakeSupabaseAuth, original: Original, project: FakePostgrest
) -> None:
    with app(environment, google, supabase) as doki:
        user_id, headers = doki.signed_in()
        original.supabase_connected(user_id, project.url, None, SERVICE_ROLE)

        assert doki.client.delete("/connectors/supabase", headers=headers).json() == {"disconnected": True}

        response = doki.client.get("/connectors/supabase/test", headers=headers)
        assert (response.json()["status"], response.json()["state"]) == ("disconnected", "not_connected")


def test_an_original_table_that_is_not_there_answers_503_not_500(
    google: FakeGoogle, supabase: FakeSupabaseAuth
) -> None:
    with app("production", google, supabase, legacy_credentials_table="credentials_gone") as doki:
        _, headers = doki.signed_in()

        response = doki.client.get("/connectors/sheets/list", headers=headers)

        assert response.status_code == 503
        assert response.json()["code"] == "store_misconfigured"


def test_without_the_setting_the_original_table_is_never_read(
    google: FakeGoogle, supabase: FakeSupabaseAuth, original: Original, original_postgrest: FakePostgrest
) -> None:
    with backend("production", google, supabase) as doki:
        user_id, headers = doki.signed_in()
        original.google_signed_in(user_id, *google_sign_in(google))

        assert doki.client.get("/connectors/sheets/list", headers=headers).status_code == 409
        assert legacy_requests(original_postgrest) == 1
