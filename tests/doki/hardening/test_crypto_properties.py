"""Properties of credential encryption (doki.crypto) over generated users, values, keys and damage: a value
decrypts for its owner alone, under every rotation of the keys, and any change to a stored token makes it fail
to decrypt with CredentialDecryptError: never another exception, never another value."""

from __future__ import annotations

import base64
import re

import pytest
from cryptography.fernet import Fernet
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from doki.crypto import CredentialCipher, CredentialDecryptError, bad_key_message, generate_key, is_fernet_key
from tests.helpers import secret

# A handful of fixed keys: Fernet key generation is not what is under test, and fixed keys keep runs alike.
KEYS = [secret("a Fernet key", Fernet.generate_key().decode()) for _ in range(3)]
PROPERTY = settings(max_examples=150, deadline=None, derandomize=True, database=None)

users = st.text(min_size=1, max_size=80)
plaintexts = st.text(max_size=400)


@PROPERTY
@given(user=users, plaintext=plaintexts)
def test_any_value_round_trips_for_its_owner(user: str, plaintext: str) -> None:
    cipher = CredentialCipher.from_keys(KEYS[:1])

    assert cipher.decrypt(user, cipher.encrypt(user, plaintext)) == plaintext


@PROPERTY
@given(user=users, plaintext=plaintexts, rotations=st.permutations(KEYS))
def test_a_value_encrypted_under_any_old_key_still_decrypts_and_rotates_to_the_newest(
    user: str, plaintext: str, rotations: list[str]
) -> None:
    old = CredentialCipher.from_keys(rotations[-1:])
    current = CredentialCipher.from_keys(rotations)
    token = old.encrypt(user, plaintext)

    rotated = current.rotate(token)

    assert current.decrypt(user, token) == plaintext
    assert current.is_current(rotated) and current.decrypt(user, rotated) == plaintext
    assert CredentialCipher.from_keys(rotations[:1]).decrypt(user, rotated) == plaintext


@PROPERTY
@given(owner=users, other=users, plaintext=plaintexts)
def test_a_value_never_decrypts_for_another_user(owner: str, other: str, plaintext: str) -> None:
    assume(owner != other)
    cipher = CredentialCipher.from_keys(KEYS[:1])

    with pytest.raises(CredentialDecryptError, match="different user"):
        cipher.decrypt(other, cipher.encrypt(owner, plaintext))


@PROPERTY
@given(plaintext=plaintexts, data=st.data())
def test_flipping_any_bit_of_the_encrypted_bytes_is_detected(plaintext: str, data: st.DataObject) -> None:
    cipher = CredentialCipher.from_keys(KEYS[:1])
    raw = bytearray(base64.urlsafe_b64decode(cipher.encrypt("user-1", plaintext)))
    position = data.draw(st.integers(0, len(raw) * 8 - 1), label="bit")
    raw[position // 8] ^= 1 << (position % 8)

    with pytest.raises(CredentialDecryptError, match="cannot be decrypted"):
        cipher.decrypt("user-1", base64.urlsafe_b64encode(bytes(raw)).decode())


# Characters are edited in the stored text, as a bad migration or a hand edit would: any character, not only
# base64's. Fernet's decoding forgives some edits (releases differ on which: whitespace and other stray characters,
# '+' and '/' for '-' and '_', a missing or extra '=', the last character's low bits, which decoding drops), so an
# edit may leave the bytes, and with them the value, intact; nothing else may ever decrypt.
@settings(PROPERTY, suppress_health_check=[HealthCheck.too_slow])
@given(plaintext=plaintexts, data=st.data())
def test_editing_the_stored_text_decrypts_to_the_same_value_or_fails_cleanly(
    plaintext: str, data: st.DataObject
) -> None:
    cipher = CredentialCipher.from_keys(KEYS)
    token = cipher.encrypt("user-1", plaintext)
    edit = data.draw(st.sampled_from(["replace", "delete", "insert", "truncate"]), label="edit")
    at = data.draw(st.integers(0, len(token) - 1), label="at")
    char = data.draw(st.characters(), label="char")
    damaged = {
        "replace": token[:at] + char + token[at + 1 :],
        "delete": token[:at] + token[at + 1 :],
        "insert": token[:at] + char + token[at:],
        "truncate": token[:at],
    }[edit]
    assume(damaged != token)

    try:
        revealed = cipher.decrypt("user-1", damaged)
    except CredentialDecryptError:
        return
    assert revealed == plaintext
    assert forgiving_decode(damaged) == forgiving_decode(token)


def forgiving_decode(text: str) -> bytes:
    """The bytes of `text` read as leniently as any Fernet release reads a token: anything outside base64 dropped,
    either alphabet, '=' only where it belongs."""
    kept = re.sub(r"[^A-Za-z0-9+/_-]", "", text).translate(str.maketrans("+/", "-_"))
    return base64.urlsafe_b64decode(kept + "=" * (-len(kept) % 4))


def fernet_accepts(key: str) -> bool:
    try:
        Fernet(key)
    except (ValueError, TypeError):
        return False
    return True


# Strings near the format: base64 of lengths around 32 bytes in either alphabet, padding missing, doubled or
# misplaced, stray low bits, whitespace and quotes mixed in, and any text at all.
keys_as_written = st.binary(min_size=32, max_size=32).map(lambda raw: base64.urlsafe_b64encode(raw).decode())
near_keys = st.one_of(
    st.binary(min_size=28, max_size=36).map(lambda raw: base64.urlsafe_b64encode(raw).decode()),
    st.binary(min_size=32, max_size=32).map(lambda raw: base64.b64encode(raw).decode()),
    keys_as_written.map(lambda key: key.rstrip("=")),
    keys_as_written.map(lambda key: key + "="),
    st.tuples(keys_as_written, st.sampled_from("BCDFJNaz19-_")).map(lambda drawn: drawn[0][:42] + drawn[1] + "="),
    st.tuples(keys_as_written, st.integers(0, 43), st.sampled_from([" ", "\t", '"', "'", "=", ".", "é"])).map(
        lambda drawn: drawn[0][: drawn[1]] + drawn[2] + drawn[0][drawn[1] :]
    ),
    st.text(alphabet="ABCabc019-_+/=. \n", min_size=40, max_size=48),
    st.text(max_size=60),
)


@PROPERTY
@given(key=near_keys)
def test_the_start_up_key_check_never_passes_a_key_fernet_refuses(key: str) -> None:
    # The bug this guards against: production starting with a key it then cannot encrypt with.
    if is_fernet_key(key):
        assert fernet_accepts(key)


# What Fernet writes for 32 bytes, spelled out: 42 URL-safe characters, one whose two low bits (padding, as 32 bytes
# are 256 of the 258 bits 43 characters hold) are zero, then '='. Strict decoding: whatever else a release forgives
# (releases differ), the start-up check refuses.
WRITTEN_BY_FERNET = re.compile(r"[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]=")


@PROPERTY
@given(key=near_keys)
def test_the_start_up_key_check_accepts_exactly_the_keys_fernet_writes_and_reads(key: str) -> None:
    assert is_fernet_key(key) is bool(WRITTEN_BY_FERNET.fullmatch(key) and fernet_accepts(key))


@PROPERTY
@given(key=keys_as_written)
def test_every_key_fernet_could_write_passes_the_start_up_check(key: str) -> None:
    assert is_fernet_key(key) and fernet_accepts(key)


@pytest.mark.parametrize(
    ("key", "defect"),
    [
        ("A" * 41 + "+A=", "it is standard base64 ('+' or '/')"),
        ("A" * 41 + "/A=", "it is standard base64 ('+' or '/')"),
        ("A" * 43, "it is 43 characters long: a key is 44"),
        ("A" * 43 + "==", "it is 45 characters long: a key is 44"),
        ("A" * 20 + "=" + "A" * 23, "it must end with an '=', its only one"),
        ("A" * 44, "it must end with an '=', its only one"),
        ("A" * 20 + " " + "A" * 22 + "=", "it holds characters other than A-Z, a-z, 0-9, '-', '_' and '='"),
        ('"' + "A" * 42 + '="', "it holds characters other than"),
        ("A" * 42 + "B=", "its last character before the '=' sets bits a 32-byte key leaves at zero"),
    ],
)
def test_a_refused_key_is_told_what_is_wrong_with_it(key: str, defect: str) -> None:
    message = bad_key_message(2, key)

    assert message.startswith(f"ENCRYPTION_KEY key #2 is not a valid Fernet key: {defect}")
    assert message.endswith("; `doki keys generate` makes one")
    assert key.strip('"=') not in message


def test_a_generated_key_is_one_fernet_accepts_and_is_new_each_time() -> None:
    keys = {generate_key() for _ in range(20)}

    assert len(keys) == 20
    for key in keys:
        Fernet(key)
        assert is_fernet_key(key)
