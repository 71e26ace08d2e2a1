"""What every credential store promises, checked against each backend (see the `store` fixture)."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

from doki.storage import CredentialStore, StoredCredential


def new_user() -> str:
    return str(uuid.uuid4())


def test_every_backend_implements_the_store_interface(store: CredentialStore) -> None:
    assert isinstance(store, CredentialStore)


def test_a_stored_credential_reads_back_as_written(store: CredentialStore) -> None:
    user = new_user()
    written = store.put(user, "google", "ciphertext-1", {"email": "a@example.org", "scopes": "drive"})

    read = store.get(user, "google")

    assert read == written
    assert read == StoredCredential(
        user_id=user,
        provider="google",
        ciphertext="ciphertext-1",
        metadata={"email": "a@example.org", "scopes": "drive"},
        updated_at=written.updated_at,
    )


def test_a_missing_credential_reads_as_none(store: CredentialStore) -> None:
    user = new_user()
    store.put(user, "google", "c")

    assert store.get(user, "github") is None
    assert store.get(new_user(), "google") is None


def test_timestamps_are_timezone_aware(store: CredentialStore) -> None:
    written = store.put(new_user(), "google", "c")

    assert written.updated_at.utcoffset() is not None


def test_putting_again_replaces_the_ciphertext_and_the_metadata(store: CredentialStore) -> None:
    user = new_user()
    first = store.put(user, "google", "old", {"email": "a@example.org", "stale": "yes"})

    second = store.put(user, "google", "new", {"email": "b@example.org"})

    assert store.get(user, "google") == second
    assert (second.ciphertext, second.metadata) == ("new", {"email": "b@example.org"})
    assert second.updated_at >= first.updated_at
    assert len(store.list_for_user(user)) == 1


def test_metadata_left_out_is_stored_as_empty(store: CredentialStore) -> None:
    user = new_user()
    store.put(user, "google", "c", {"email": "a@example.org"})

    store.put(user, "google", "c2")

    read = store.get(user, "google")
    assert read is not None
    assert read.metadata == {}


def test_insert_if_absent_inserts_a_new_row_and_returns_it(store: CredentialStore) -> None:
    user = new_user()

    inserted = store.insert_if_absent(user, "google", "imported", {"migrated_from": "credentials:1"})

    assert inserted is not None
    assert store.get(user, "google") == inserted
    assert (inserted.ciphertext, inserted.metadata) == ("imported", {"migrated_from": "credentials:1"})


def test_insert_if_absent_leaves_a_row_already_there_exactly_as_it_was(store: CredentialStore) -> None:
    user = new_user()
    mine = store.put(user, "google", "connected-meanwhile", {"email": "a@example.org"})

    assert store.insert_if_absent(user, "google", "imported", {"migrated_from": "credentials:1"}) is None

    assert store.get(user, "google") == mine
    assert len(store.list_for_user(user)) == 1


def test_insert_if_absent_stores_metadata_left_out_as_empty(store: CredentialStore) -> None:
    user = new_user()

    inserted = store.insert_if_absent(user, "google", "c")

    assert inserted is not None
    assert inserted.metadata == {}
    assert inserted.updated_at.utcoffset() is not None


def test_concurrent_insert_if_absent_lets_exactly_one_writer_win(store: CredentialStore) -> None:
    user = new_user()

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda n: store.insert_if_absent(user, "google", f"c-{n}"), range(8)))

    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    assert store.get(user, "google") == winners[0]


def test_listing_returns_only_that_users_credentials_ordered_by_provider(store: CredentialStore) -> None:
    user, other = new_user(), new_user()
    for provider in ("notion", "github", "google"):
        store.put(user, provider, f"c-{provider}")
    store.put(other, "google", "other")

    listed = store.list_for_user(user)

    assert [c.provider for c in listed] == ["github", "google", "notion"]
    assert {c.user_id for c in listed} == {user}
    assert store.list_for_user(new_user()) == []


def test_delete_removes_only_the_named_credential_and_says_whether_it_existed(store: CredentialStore) -> None:
    user, other = new_user(), new_user()
    store.put(user, "google", "c")
    store.put(user, "github", "c")
    store.put(other, "google", "c")

    assert store.delete(user, "google") is True
    assert store.delete(user, "google") is False

    assert store.get(user, "google") is None
    assert store.get(user, "github") is not None
    assert store.get(other, "google") is not None


def test_iter_all_yields_every_row_exactly_once_across_pages(store: CredentialStore) -> None:
    expected = set()
    for _ in range(4):
        user = new_user()
        for provider in ("a", "b", "c"):  # 12 rows over pages of 3: users straddle page boundaries
            store.put(user, provider, f"{user}/{provider}")
            expected.add((user, provider))

    seen = [(c.user_id, c.provider) for c in store.iter_all()]

    assert len(seen) == len(expected)
    assert set(seen) == expected
    assert seen == sorted(seen)


def test_iter_all_pages_correctly_when_providers_contain_filter_syntax(store: CredentialStore) -> None:
    # Commas, dots, quotes and parentheses are PostgREST syntax: the paging filter must quote them.
    user = new_user()
    providers = ["a,b", "a.b", 'a"b', "a(b)", "a\\b", "a b", "z"]
    for provider in providers:
        store.put(user, provider, "c")

    seen = [c.provider for c in store.iter_all()]

    assert sorted(seen) == sorted(providers)
    assert len(seen) == len(providers)
    for provider in providers:
        assert store.get(user, provider) is not None


def test_iter_all_tolerates_rows_being_rewritten_between_pages(store: CredentialStore) -> None:
    users = [new_user() for _ in range(7)]
    for user in users:
        store.put(user, "google", "old")

    seen = []
    for credential in store.iter_all():
        seen.append(credential.user_id)
        assert store.replace_ciphertext(credential.user_id, "google", "old", "new")

    assert sorted(seen) == sorted(users)
    assert {c.ciphertext for c in store.iter_all()} == {"new"}


def test_an_empty_store_iterates_nothing(store: CredentialStore) -> None:
    assert list(store.iter_all()) == []


def test_replace_ciphertext_swaps_only_when_the_expected_value_is_still_there(store: CredentialStore) -> None:
    user = new_user()
    store.put(user, "google", "v1", {"email": "a@example.org"})

    assert store.replace_ciphertext(user, "google", "v1", "v2") is True
    assert store.replace_ciphertext(user, "google", "v1", "v3") is False

    read = store.get(user, "google")
    assert read is not None
    assert read.ciphertext == "v2"
    assert read.metadata == {"email": "a@example.org"}


def test_replace_ciphertext_touches_only_the_named_row(store: CredentialStore) -> None:
    user, other = new_user(), new_user()
    store.put(user, "google", "same")
    store.put(user, "github", "same")
    store.put(other, "google", "same")

    assert store.replace_ciphertext(user, "google", "same", "changed")

    assert [(c.provider, c.ciphertext) for c in store.list_for_user(user)] == [
        ("github", "same"),
        ("google", "changed"),
    ]
    assert store.list_for_user(other)[0].ciphertext == "same"


def test_replace_ciphertext_of_a_missing_row_reports_false_and_creates_nothing(
    store: CredentialStore,
) -> None:
    user = new_user()

    assert store.replace_ciphertext(user, "google", "v1", "v2") is False
    assert store.get(user, "google") is None


def test_replace_ciphertext_with_metadata_replaces_both_only_when_the_swap_happens(store: CredentialStore) -> None:
    user = new_user()
    store.put(user, "google", "v1", {"status": "connected"})

    assert store.replace_ciphertext(user, "google", "v1", "v2", {"status": "incomplete"}) is True
    assert store.replace_ciphertext(user, "google", "v1", "v3", {"status": "lost"}) is False

    read = store.get(user, "google")
    assert read is not None
    assert (read.ciphertext, read.metadata) == ("v2", {"status": "incomplete"})


def test_a_compare_and_delete_keeps_a_row_rewritten_meanwhile(store: CredentialStore) -> None:
    user = new_user()
    store.put(user, "google", "v1")
    store.put(user, "google", "v2")  # another writer got there first

    assert store.delete(user, "google", expected_ciphertext="v1") is False
    assert store.get(user, "google") is not None
    assert store.delete(user, "google", expected_ciphertext="v2") is True
    assert store.get(user, "google") is None


def test_concurrent_writes_from_many_threads_all_land(store: CredentialStore) -> None:
    # FastAPI runs sync endpoints in a threadpool: one store object serves many threads at once.
    user = new_user()
    providers = [f"p{i:02d}" for i in range(24)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda p: store.put(user, p, f"c-{p}"), providers))

    assert [(c.provider, c.ciphertext) for c in store.list_for_user(user)] == [(p, f"c-{p}") for p in providers]
