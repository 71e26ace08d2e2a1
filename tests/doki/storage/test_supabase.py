"""What only the Supabase store does: the requests it sends and how it reports PostgREST or network errors."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from doki.settings import Settings
from doki.storage import StoreError, StoreUnavailableError, SupabaseCredentialStore, build_store
from doki.storage.supabase import looks_like_jwt
from tests.doki.conftest import SUPABASE_SECRET as SECRET_KEY
from tests.fakes.postgrest import FakePostgrest


def new_user() -> str:
    return str(uuid.uuid4())


def fake_jwt() -> str:
    def part(data: dict[str, str]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part({'role': 'service_role'})}.c2lnbmF0dXJl"


@pytest.fixture
def closing_store() -> Iterator[list[SupabaseCredentialStore]]:
    """Collects stores a test builds itself, and closes them afterwards."""
    stores: list[SupabaseCredentialStore] = []
    yield stores
    for store in stores:
        store.close()


def make_store(
    stores: list[SupabaseCredentialStore],
    url: str,
    key: str,
    table: str = "doki_credentials",
    timeout: float = 5,
) -> SupabaseCredentialStore:
    store = SupabaseCredentialStore(url, key, table, timeout=timeout)
    stores.append(store)
    return store


# Headers


def test_a_secret_key_is_sent_as_apikey_and_never_as_a_bearer_token(
    fake_postgrest: FakePostgrest, supabase_store: SupabaseCredentialStore
) -> None:
    supabase_store.put(new_user(), "google", "c")
    supabase_store.list_for_user(new_user())

    assert len(fake_postgrest.requests) == 2
    for request in fake_postgrest.requests:
        assert request.headers["apikey"] == SECRET_KEY
        assert "authorization" not in request.headers


def test_a_legacy_jwt_key_is_sent_as_apikey_and_as_a_bearer_token(
    closing_store: list[SupabaseCredentialStore],
) -> None:
    key = fake_jwt()
    with FakePostgrest(key) as server:
        store = make_store(closing_store, server.url, key)

        store.put(new_user(), "google", "c")

        (request,) = server.requests
        assert request.headers["apikey"] == key
        assert request.headers["authorization"] == f"Bearer {key}"


def test_only_jwt_shaped_keys_count_as_jwts() -> None:
    assert looks_like_jwt(fake_jwt())
    assert not looks_like_jwt(SECRET_KEY)
    assert not looks_like_jwt("eyJ.only-two")
    assert not looks_like_jwt("abc.def.ghi")


def test_an_upsert_merges_on_the_primary_key_and_keeps_created_at(
    fake_postgrest: FakePostgrest, supabase_store: SupabaseCredentialStore
) -> None:
    user = new_user()
    supabase_store.put(user, "google", "v1")
    created_at = fake_postgrest.rows()[0]["created_at"]

    supabase_store.put(user, "google", "v2")

    post = fake_postgrest.requests[-1]
    assert post.method == "POST"
    assert ("on_conflict", "user_id,provider") in post.query
    assert "resolution=merge-duplicates" in post.headers["prefer"]
    (row,) = fake_postgrest.rows()
    assert row["ciphertext"] == "v2"
    assert row["created_at"] == created_at


def test_the_store_repr_shows_where_it_points_but_not_the_key(
    supabase_store: SupabaseCredentialStore,
) -> None:
    assert supabase_store.url in repr(supabase_store)
    assert SECRET_KEY not in repr(supabase_store)


# Outages: StoreUnavailableError, with a message that helps and holds no key


def test_an_unreachable_server_raises_store_unavailable_naming_the_url_but_not_the_key(
    fake_postgrest: FakePostgrest, supabase_store: SupabaseCredentialStore
) -> None:
    fake_postgrest.stop()

    with pytest.raises(StoreUnavailableError) as caught:
        supabase_store.get(new_user(), "google")

    message = str(caught.value)
    assert fake_postgrest.url in message
    assert "SUPABASE_URL" in message
    assert SECRET_KEY not in message


def test_a_server_slower_than_the_timeout_raises_store_unavailable(
    fake_postgrest: FakePostgrest, closing_store: list[SupabaseCredentialStore]
) -> None:
    store = make_store(closing_store, fake_postgrest.url, SECRET_KEY, timeout=0.2)
    fake_postgrest.delay_next(1, seconds=5)

    with pytest.raises(StoreUnavailableError) as caught:
        store.list_for_user(new_user())

    assert "did not answer within 0.2s" in str(caught.value)
    assert SECRET_KEY not in str(caught.value)


def test_a_503_raises_store_unavailable_and_the_next_call_succeeds(
    fake_postgrest: FakePostgrest, supabase_store: SupabaseCredentialStore
) -> None:
    user = new_user()
    fake_postgrest.fail_next(1)

    with pytest.raises(StoreUnavailableError) as caught:
        supabase_store.put(user, "google", "c")

    assert "503 PGRST001" in str(caught.value)
    assert fake_postgrest.rows() == []
    assert supabase_store.put(user, "google", "c").ciphertext == "c"


def test_a_gateway_error_page_that_is_not_json_raises_store_unavailable(
    fake_postgrest: FakePostgrest, supabase_store: SupabaseCredentialStore
) -> None:
    fake_postgrest.fail_next(1, status=502, body="<html>Bad Gateway</html>", content_type="text/html")

    with pytest.raises(StoreUnavailableError, match="502"):
        supabase_store.get(new_user(), "google")


def test_rate_limiting_raises_store_unavailable(
    fake_postgrest: FakePostgrest, supabase_store: SupabaseCredentialStore
) -> None:
    fake_postgrest.fail_next(1, status=429, body='{"message":"Too many requests"}')

    with pytest.raises(StoreUnavailableError, match="429"):
        supabase_store.delete(new_user(), "google")


# PostgREST errors that a retry would not fix: StoreError


def test_a_wrong_key_raises_a_store_error_that_names_the_setting_but_not_the_key(
    fake_postgrest: FakePostgrest, closing_store: list[SupabaseCredentialStore]
) -> None:
    wrong = "sb_secret_WrongWrongWrongWrongWrongWrong"
    store = make_store(closing_store, fake_postgrest.url, wrong)

    with pytest.raises(StoreError) as caught:
        store.get(new_user(), "google")

    message = str(caught.value)
    assert not isinstance(caught.value, StoreUnavailableError)
    assert "401" in message
    assert "SUPABASE_SECRET_KEY" in message
    assert wrong not in message
    assert SECRET_KEY not in message


def test_a_missing_table_raises_a_store_error_pointing_at_the_migration(
    fake_postgrest: FakePostgrest, closing_store: list[SupabaseCredentialStore]
) -> None:
    store = make_store(closing_store, fake_postgrest.url, SECRET_KEY, table="credentialz")

    with pytest.raises(StoreError) as caught:
        store.list_for_user(new_user())

    message = str(caught.value)
    assert "PGRST205" in message
    assert "0001_doki_credentials.sql" in message
    assert "CREDENTIALS_TABLE" in message


def test_a_database_error_keeps_code_and_message_but_leaves_out_the_row(
    supabase_store: SupabaseCredentialStore,
) -> None:
    with pytest.raises(StoreError) as caught:
        supabase_store.put("not-a-uuid", "google", "secret-looking-ciphertext")

    message = str(caught.value)
    assert not isinstance(caught.value, StoreUnavailableError)
    assert "400 22P02" in message
    assert "invalid input syntax for type uuid" in message
    assert "secret-looking-ciphertext" not in message


# build_store


def test_build_store_picks_supabase_once_its_url_and_key_are_set(fake_postgrest: FakePostgrest, tmp_path: Path) -> None:
    settings = Settings(
        supabase_url=fake_postgrest.url,
        supabase_secret_key=SecretStr(SECRET_KEY),
        state_dir=tmp_path / "state",
    )

    store = build_store(settings)
    try:
        assert isinstance(store, SupabaseCredentialStore)
        user = new_user()
        store.put(user, "google", "c")
        assert [row["user_id"] for row in fake_postgrest.rows()] == [user]
    finally:
        store.close()
    assert not (tmp_path / "state").exists()


# The fake itself: the store tests mean something only if it refuses what Supabase refuses


def test_the_fake_refuses_requests_without_the_right_apikey(fake_postgrest: FakePostgrest) -> None:
    url = f"{fake_postgrest.url}/rest/v1/doki_credentials"

    missing = httpx.get(url)
    wrong = httpx.get(url, headers={"apikey": "nope"})

    assert (missing.status_code, missing.json()["message"]) == (401, "No API key found in request")
    assert (wrong.status_code, wrong.json()["message"]) == (401, "Invalid API key")
    assert fake_postgrest.rows() == []


def test_the_fake_refuses_a_non_jwt_bearer_token(fake_postgrest: FakePostgrest) -> None:
    response = httpx.get(
        f"{fake_postgrest.url}/rest/v1/doki_credentials",
        headers={"apikey": SECRET_KEY, "Authorization": f"Bearer {SECRET_KEY}"},
    )

    assert response.status_code == 401
    assert response.json()["code"] == "PGRST301"


def test_the_fake_refuses_a_duplicate_insert_without_merge(fake_postgrest: FakePostgrest) -> None:
    url = f"{fake_postgrest.url}/rest/v1/doki_credentials"
    row = {"user_id": new_user(), "provider": "google", "ciphertext": "c"}

    first = httpx.post(url, json=row, headers={"apikey": SECRET_KEY})
    second = httpx.post(url, json=row, headers={"apikey": SECRET_KEY})

    assert first.status_code == 201
    assert second.status_code == 409
    assert set(second.json()) == {"code", "message", "details", "hint"}
    assert second.json()["code"] == "23505"


def test_the_fake_refuses_an_update_without_a_filter(fake_postgrest: FakePostgrest) -> None:
    fake_postgrest.insert_row("doki_credentials", {"user_id": new_user(), "provider": "google", "ciphertext": "c"})

    response = httpx.patch(
        f"{fake_postgrest.url}/rest/v1/doki_credentials",
        json={"ciphertext": "x"},
        headers={"apikey": SECRET_KEY},
    )

    assert (response.status_code, response.json()["code"]) == (400, "21000")
    assert fake_postgrest.rows()[0]["ciphertext"] == "c"
