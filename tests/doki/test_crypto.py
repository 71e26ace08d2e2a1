"""Credential encryption: round trips, the user binding, tampering, key rotation and store re-encryption."""

from __future__ import annotations

import logging
import uuid

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from doki.crypto import CredentialCipher, CredentialDecryptError, reencrypt_store
from doki.settings import Settings
from doki.storage import CredentialStore, StoredCredential
from tests.helpers import SECRETS

OLD_KEY = SECRETS.register("the old Fernet key", Fernet.generate_key().decode())
NEW_KEY = SECRETS.register("the new Fernet key", Fernet.generate_key().decode())
PLAINTEXT = '{"refresh_token": "1//0g-very-secret"}'


def new_user() -> str:
    return str(uuid.uuid4())


def assert_reveals_nothing(error: BaseException) -> None:
    message = str(error)
    for secret in (PLAINTEXT, "very-secret", OLD_KEY, NEW_KEY):
        assert secret not in message


# Round trip and user binding


def test_a_value_round_trips_for_its_owner() -> None:
    cipher = CredentialCipher.from_keys([NEW_KEY])
    user = new_user()

    token = cipher.encrypt(user, PLAINTEXT)

    assert PLAINTEXT not in token
    assert cipher.decrypt(user, token) == PLAINTEXT


def test_unicode_and_empty_values_round_trip() -> None:
    cipher = CredentialCipher.from_keys([NEW_KEY])

    assert cipher.decrypt("usér-ü", cipher.encrypt("usér-ü", "clé ✓ 鍵")) == "clé ✓ 鍵"
    assert cipher.decrypt("u", cipher.encrypt("u", "")) == ""


def test_encrypting_the_same_value_twice_gives_different_tokens() -> None:
    cipher = CredentialCipher.from_keys([NEW_KEY])
    user = new_user()

    assert cipher.encrypt(user, PLAINTEXT) != cipher.encrypt(user, PLAINTEXT)


def test_a_value_copied_to_another_user_does_not_decrypt() -> None:
    cipher = CredentialCipher.from_keys([NEW_KEY])
    token = cipher.encrypt(new_user(), PLAINTEXT)

    with pytest.raises(CredentialDecryptError, match="different user") as caught:
        cipher.decrypt(new_user(), token)

    assert_reveals_nothing(caught.value)


def test_a_user_id_cannot_absorb_the_start_of_the_plaintext() -> None:
    # Without the length prefix, ("ab", "c...") and ("abc", "...") would be the same bytes.
    cipher = CredentialCipher.from_keys([NEW_KEY])
    token = cipher.encrypt("ab", "c-secret")

    with pytest.raises(CredentialDecryptError):
        cipher.decrypt("abc", token)
    with pytest.raises(CredentialDecryptError):
        cipher.decrypt("a", token)


def test_a_value_without_an_owner_is_refused() -> None:
    cipher = CredentialCipher.from_keys([NEW_KEY])

    with pytest.raises(ValueError, match="user id"):
        cipher.encrypt("", PLAINTEXT)


def test_a_tampered_token_is_refused_without_revealing_anything() -> None:
    cipher = CredentialCipher.from_keys([NEW_KEY])
    user = new_user()
    token = cipher.encrypt(user, PLAINTEXT)
    middle = len(token) // 2
    tampered = token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]

    with pytest.raises(CredentialDecryptError, match="altered") as caught:
        cipher.decrypt(user, tampered)

    assert_reveals_nothing(caught.value)


def test_garbage_and_non_ascii_tokens_are_refused() -> None:
    cipher = CredentialCipher.from_keys([NEW_KEY])

    for token in ("", "not a token", "clé"):
        with pytest.raises(CredentialDecryptError):
            cipher.decrypt("u", token)


def test_a_plain_fernet_token_without_the_envelope_is_refused() -> None:
    # Encrypted with the right key but not by this module: it carries no owner, so it binds to nobody.
    token = Fernet(NEW_KEY.encode()).encrypt(PLAINTEXT.encode()).decode()
    cipher = CredentialCipher.from_keys([NEW_KEY])

    with pytest.raises(CredentialDecryptError, match="format") as caught:
        cipher.decrypt("u", token)

    assert_reveals_nothing(caught.value)


# Keys and rotation


def test_a_value_from_an_unknown_key_is_refused_without_revealing_anything() -> None:
    token = CredentialCipher.from_keys([OLD_KEY]).encrypt("u", PLAINTEXT)

    with pytest.raises(CredentialDecryptError, match="ENCRYPTION_KEY") as caught:
        CredentialCipher.from_keys([NEW_KEY]).decrypt("u", token)

    assert_reveals_nothing(caught.value)


def test_the_old_key_still_decrypts_after_a_new_key_is_put_in_front() -> None:
    user = new_user()
    token = CredentialCipher.from_keys([OLD_KEY]).encrypt(user, PLAINTEXT)

    rotated_config = CredentialCipher.from_keys([NEW_KEY, OLD_KEY])

    assert rotated_config.decrypt(user, token) == PLAINTEXT
    assert not rotated_config.is_current(token)


def test_new_values_are_encrypted_with_the_first_key() -> None:
    user = new_user()

    token = CredentialCipher.from_keys([NEW_KEY, OLD_KEY]).encrypt(user, PLAINTEXT)

    assert CredentialCipher.from_keys([NEW_KEY]).decrypt(user, token) == PLAINTEXT
    with pytest.raises(CredentialDecryptError):
        CredentialCipher.from_keys([OLD_KEY]).decrypt(user, token)


def test_rotation_moves_a_value_to_the_newest_key_and_it_survives_dropping_the_old_key() -> None:
    user = new_user()
    old_token = CredentialCipher.from_keys([OLD_KEY]).encrypt(user, PLAINTEXT)
    both = CredentialCipher.from_keys([NEW_KEY, OLD_KEY])

    rotated = both.rotate(old_token)

    assert both.is_current(rotated)
    new_only = CredentialCipher.from_keys([NEW_KEY])
    assert new_only.decrypt(user, rotated) == PLAINTEXT
    with pytest.raises(CredentialDecryptError):
        new_only.decrypt(user, old_token)


def test_rotation_keeps_the_user_binding() -> None:
    user = new_user()
    old_token = CredentialCipher.from_keys([OLD_KEY]).encrypt(user, PLAINTEXT)

    rotated = CredentialCipher.from_keys([NEW_KEY, OLD_KEY]).rotate(old_token)

    with pytest.raises(CredentialDecryptError, match="different user"):
        CredentialCipher.from_keys([NEW_KEY]).decrypt(new_user(), rotated)


def test_rotating_a_value_no_key_decrypts_is_refused() -> None:
    token = CredentialCipher.from_keys([OLD_KEY]).encrypt("u", PLAINTEXT)

    with pytest.raises(CredentialDecryptError):
        CredentialCipher.from_keys([NEW_KEY]).rotate(token)


def test_an_invalid_key_is_refused_by_position_without_echoing_it() -> None:
    bad = "not-a-fernet-key-but-a-secret"

    with pytest.raises(ValueError, match="key #2") as caught:
        CredentialCipher.from_keys([NEW_KEY, bad])

    assert bad not in str(caught.value)
    assert NEW_KEY not in str(caught.value)


def test_no_key_at_all_is_refused() -> None:
    with pytest.raises(ValueError, match="ENCRYPTION_KEY is empty"):
        CredentialCipher.from_keys([])


def test_the_cipher_from_settings_encrypts_with_the_first_of_the_comma_separated_keys() -> None:
    settings = Settings(encryption_key=SecretStr(f"{NEW_KEY}, {OLD_KEY}"))
    user = new_user()
    old_token = CredentialCipher.from_keys([OLD_KEY]).encrypt(user, PLAINTEXT)

    cipher = CredentialCipher.from_settings(settings)

    assert cipher.decrypt(user, old_token) == PLAINTEXT
    assert CredentialCipher.from_keys([NEW_KEY]).decrypt(user, cipher.encrypt(user, PLAINTEXT)) == PLAINTEXT


# Re-encrypting a whole store, against each real backend


def test_reencrypt_store_moves_every_row_to_the_newest_key(store: CredentialStore) -> None:
    old = CredentialCipher.from_keys([OLD_KEY])
    rows = {(new_user(), provider): f"{provider}-secret" for provider in ("google", "github", "notion")}
    for (user, provider), plaintext in rows.items():
        store.put(user, provider, old.encrypt(user, plaintext), {"email": "a@example.org"})

    rotated = reencrypt_store(store, CredentialCipher.from_keys([NEW_KEY, OLD_KEY]))

    assert (rotated.moved, rotated.current, rotated.unreadable, rotated.changing) == (len(rows), 0, [], [])
    new_only = CredentialCipher.from_keys([NEW_KEY])
    for (user, provider), plaintext in rows.items():
        credential = store.get(user, provider)
        assert credential is not None
        assert new_only.decrypt(user, credential.ciphertext) == plaintext
        assert credential.metadata == {"email": "a@example.org"}


def test_reencrypt_store_skips_rows_already_on_the_newest_key(store: CredentialStore) -> None:
    cipher = CredentialCipher.from_keys([NEW_KEY, OLD_KEY])
    user = new_user()
    store.put(user, "google", cipher.encrypt(user, PLAINTEXT))
    store.put(user, "github", CredentialCipher.from_keys([OLD_KEY]).encrypt(user, PLAINTEXT))
    current = store.get(user, "google")

    first = reencrypt_store(store, cipher)
    assert (first.moved, first.current) == (1, 1)
    again = reencrypt_store(store, cipher)
    assert (again.moved, again.current, again.seen) == (0, 2, 2)
    assert store.get(user, "google") == current


def test_reencrypt_store_leaves_undecryptable_and_misbound_rows_untouched(
    store: CredentialStore, caplog: pytest.LogCaptureFixture
) -> None:
    old = CredentialCipher.from_keys([OLD_KEY])
    victim, thief, lost = new_user(), new_user(), new_user()
    copied = old.encrypt(victim, PLAINTEXT)
    store.put(thief, "google", copied)
    unknown_key = CredentialCipher.from_keys([Fernet.generate_key().decode()]).encrypt(lost, PLAINTEXT)
    store.put(lost, "google", unknown_key)
    store.put(victim, "google", copied)

    with caplog.at_level(logging.WARNING, logger="doki.crypto"):
        rotated = reencrypt_store(store, CredentialCipher.from_keys([NEW_KEY, OLD_KEY]))

    assert rotated.moved == 1
    assert sorted(rotated.unreadable) == sorted([(thief, "google"), (lost, "google")])
    assert_credential(store.get(thief, "google"), copied)
    assert_credential(store.get(lost, "google"), unknown_key)
    logged = caplog.text
    assert thief in logged
    assert lost in logged
    assert PLAINTEXT not in logged


def assert_credential(credential: StoredCredential | None, ciphertext: str) -> None:
    assert credential is not None
    assert credential.ciphertext == ciphertext


class RacingStore:
    """A real store with a second writer that saves a fresh value just before each compare-and-swap."""

    def __init__(self, store: CredentialStore, fresh: dict[tuple[str, str], str]) -> None:
        self.store = store
        self.fresh = fresh

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)

    def replace_ciphertext(self, user_id: str, provider: str, expected: str, new: str) -> bool:
        value = self.fresh.pop((user_id, provider), None)
        if value is not None:
            self.store.put(user_id, provider, value)
        return self.store.replace_ciphertext(user_id, provider, expected, new)


def test_reencrypt_store_never_overwrites_a_value_written_meanwhile(store: CredentialStore) -> None:
    old, both = CredentialCipher.from_keys([OLD_KEY]), CredentialCipher.from_keys([NEW_KEY, OLD_KEY])
    user = new_user()
    store.put(user, "google", old.encrypt(user, "stale"))
    fresh = both.encrypt(user, "reconnected")

    rotated = reencrypt_store(RacingStore(store, {(user, "google"): fresh}), both)  # type: ignore[arg-type]

    assert (rotated.moved, rotated.current) == (0, 1)
    assert_credential(store.get(user, "google"), fresh)


def test_reencrypt_store_rotates_a_value_written_meanwhile_with_the_old_key(store: CredentialStore) -> None:
    # During a rolling deploy an instance still on the old key list may write with the old key.
    old, both = CredentialCipher.from_keys([OLD_KEY]), CredentialCipher.from_keys([NEW_KEY, OLD_KEY])
    user = new_user()
    store.put(user, "google", old.encrypt(user, "stale"))
    racing = RacingStore(store, {(user, "google"): old.encrypt(user, "reconnected")})

    rotated = reencrypt_store(racing, both)  # type: ignore[arg-type]

    assert rotated.moved == 1
    credential = store.get(user, "google")
    assert credential is not None
    assert CredentialCipher.from_keys([NEW_KEY]).decrypt(user, credential.ciphertext) == "reconnected"
