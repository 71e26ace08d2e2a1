"""Encryption of stored credentials: Fernet with key rotation, each value bound to the user who owns it.

Why these choices:

- Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`) is authenticated: an altered value fails to
  decrypt instead of decrypting to garbage.
- `ENCRYPTION_KEY` is a comma-separated list, newest first, fed to `MultiFernet`: the first key encrypts,
  every key decrypts. To rotate, put a new key in front, run `reencrypt_store` so every row moves to it, then
  drop the old key. Values rotated before the drop keep decrypting after it.
- Every plaintext is wrapped, inside the encryption, with the id of the user it belongs to, and decryption
  checks it. Anyone who can write the table (a bug, a bad migration, a person with SQL access) could
  otherwise copy user A's token into user B's row and have the app act on A's account for B. The envelope is
  `version (1 byte) | user id length (2 bytes, big-endian) | user id (UTF-8) | plaintext (UTF-8)`: the
  length prefix means no user id can pass as a prefix of another, and the version lets the format change.
- `cryptography` loads on the first encryption or decryption, not at start-up: it is a tenth of the backend's
  import time, and the health check and most routes never need it. Keys are checked at start-up all the same,
  by their format (`is_fernet_key`): exactly the text Fernet writes for a key, which every release accepts.
  Releases disagree on anything else (50 decodes '+' and '/' and an extra '=', 51 refuses them but takes a
  missing '='), so a looser check would pass a key that the installed release refuses at the first encryption.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import os
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from cryptography.fernet import Fernet, MultiFernet

    from doki.settings import Settings
    from doki.storage.base import CredentialStore, StoredCredential

logger = logging.getLogger(__name__)

_ENVELOPE_V1 = 1
_LENGTH_BYTES = 2
_MAX_USER_ID_BYTES = 2 ** (8 * _LENGTH_BYTES) - 1
# A row that keeps changing under the rotation is being rewritten by a live writer: after this many tries it
# is logged and left for the next run.
_CAS_ATTEMPTS = 3


FERNET_KEY_BYTES = 32
# Base64 writes 32 bytes as 43 characters and one '=' of padding.
_FERNET_KEY_LENGTH = 44
_URLSAFE_BASE64 = frozenset(string.ascii_letters + string.digits + "-_=")


def generate_key() -> str:
    """A new random Fernet key, as `ENCRYPTION_KEY` holds it (what `Fernet.generate_key()` makes)."""
    return base64.urlsafe_b64encode(os.urandom(FERNET_KEY_BYTES)).decode("ascii")


def is_fernet_key(key: str) -> bool:
    """Whether `key` is a Fernet key as Fernet writes it, which every release of `cryptography` accepts."""
    return fernet_key_defect(key) is None


def fernet_key_defect(key: str) -> str | None:
    """What keeps `key` from being a Fernet key as Fernet writes it, never quoting the key; None when it is one.

    A key is the URL-safe base64 of 32 bytes, written back exactly: 43 characters of A-Z, a-z, 0-9, '-' and '_',
    then one '=' (strict decoding: no '+' or '/', no space, no missing or extra padding, no stray low bits)."""
    try:
        raw = base64.urlsafe_b64decode(key)
        if len(raw) == FERNET_KEY_BYTES and base64.urlsafe_b64encode(raw).decode("ascii") == key:
            return None
    except (binascii.Error, ValueError):
        pass
    if "+" in key or "/" in key:
        return "it is standard base64 ('+' or '/'): Fernet keys are URL-safe base64, with '-' and '_' instead"
    if not set(key) <= _URLSAFE_BASE64:
        return "it holds characters other than A-Z, a-z, 0-9, '-', '_' and '=' (a space or a quote?)"
    if len(key) != _FERNET_KEY_LENGTH:
        return f"it is {len(key)} characters long: a key is {_FERNET_KEY_LENGTH}, the last one its only '='"
    if key.find("=") != _FERNET_KEY_LENGTH - 1:
        return "it must end with an '=', its only one"
    # Decoding drops those bits, so re-encoding the decoded bytes mends the key without changing it.
    return (
        "its last character before the '=' sets bits a 32-byte key leaves at zero (re-encoding the key's bytes with "
        "base64.urlsafe_b64encode mends it and keeps the key)"
    )


def bad_key_message(index: int, key: str) -> str:
    """What is wrong with key number `index` of ENCRYPTION_KEY, by position: the key must not reach a log."""
    return (
        f"ENCRYPTION_KEY key #{index} is not a valid Fernet key: {fernet_key_defect(key)}; "
        "`doki keys generate` makes one"
    )


class CredentialDecryptError(Exception):
    """A stored value cannot be decrypted for this user. The message never holds plaintext or key material."""


class CredentialCipher:
    """Encrypts credentials for one user and decrypts them only for that user, under rotating Fernet keys."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError("ENCRYPTION_KEY is empty: `doki keys generate` makes a key")
        for index, key in enumerate(keys, start=1):
            if not is_fernet_key(key):
                raise ValueError(bad_key_message(index, key))
        self._keys = list(keys)

    @classmethod
    def from_keys(cls, keys: Sequence[str]) -> CredentialCipher:
        """A cipher over url-safe base64 Fernet keys, newest first; ValueError names a bad key by position."""
        return cls(keys)

    @classmethod
    def from_settings(cls, settings: Settings) -> CredentialCipher:
        """The cipher for `settings.encryption_keys` (ENCRYPTION_KEY)."""
        return cls.from_keys(settings.encryption_keys)

    @cached_property
    def _fernets(self) -> tuple[Fernet, MultiFernet]:
        """The newest key's Fernet, which encrypts, and a MultiFernet over all keys, which decrypts."""
        from cryptography.fernet import Fernet, MultiFernet

        fernets = [Fernet(key) for key in self._keys]
        return fernets[0], MultiFernet(fernets)

    def encrypt(self, user_id: str, plaintext: str) -> str:
        """`plaintext` encrypted with the newest key and bound to `user_id`."""
        return self._fernets[0].encrypt(_envelope(user_id, plaintext)).decode("ascii")

    def decrypt(self, user_id: str, token: str) -> str:
        """The plaintext of `token`, if some key decrypts it and it was encrypted for `user_id`."""
        owner, plaintext = _open_envelope(self._decrypt_any(token))
        if not hmac.compare_digest(owner, user_id.encode("utf-8")):
            raise CredentialDecryptError(
                "the stored credential was encrypted for a different user (it was copied between rows): "
                "it cannot be used; reconnect the account"
            )
        try:
            return plaintext.decode("utf-8")
        except UnicodeDecodeError:
            raise CredentialDecryptError("the stored credential is not UTF-8 text: reconnect the account") from None

    def rotate(self, token: str) -> str:
        """`token` re-encrypted under the newest key; its payload, hence its user binding, is unchanged."""
        payload = self._decrypt_any(token)
        _open_envelope(payload)
        return self._fernets[0].encrypt(payload).decode("ascii")

    def is_current(self, token: str) -> bool:
        """Whether `token` is already encrypted with the newest key."""
        from cryptography.fernet import InvalidToken

        try:
            self._fernets[0].decrypt(token.encode("ascii"))
        except (InvalidToken, UnicodeEncodeError):
            return False
        return True

    def _decrypt_any(self, token: str) -> bytes:
        from cryptography.fernet import InvalidToken

        try:
            return self._fernets[1].decrypt(token.encode("ascii"))
        except (InvalidToken, UnicodeEncodeError):
            raise _undecryptable() from None


@dataclass
class Reencryption:
    """What a pass of `reencrypt_store` did, by row: `moved` to the newest key, `current` already there, `unreadable`
    and `changing` left as they were, as (user id, provider): no key decrypts them (or they are bound to another
    user), or a live writer kept rewriting them."""

    moved: int = 0
    current: int = 0
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    changing: list[tuple[str, str]] = field(default_factory=list)

    @property
    def seen(self) -> int:
        return self.moved + self.current + len(self.unreadable) + len(self.changing)


def reencrypt_store(
    store: CredentialStore, cipher: CredentialCipher, *, on_row: Callable[[Reencryption], None] | None = None
) -> Reencryption:
    """Move every row of `store` to the cipher's newest key; what was done, row by row (`on_row` hears after each).

    Each rewrite is a compare-and-swap on the old ciphertext, so a value written concurrently (a user
    reconnecting) is never overwritten with a stale one. Rows no configured key can decrypt, or bound to
    another user, are left as they are and logged by (user, provider): they are unusable already. A pass stopped
    part-way (a store that stops answering raises StoreError) loses nothing: each row is under one of the keys, and
    the next pass skips those on the newest.
    """
    report = Reencryption()
    for row in store.iter_all():
        outcome = _rotate_row(store, cipher, row)
        if outcome == "moved":
            report.moved += 1
        elif outcome == "current":
            report.current += 1
        else:
            getattr(report, outcome).append((row.user_id, row.provider))
        if on_row is not None:
            on_row(report)
    return report


def _rotate_row(
    store: CredentialStore, cipher: CredentialCipher, row: StoredCredential
) -> Literal["moved", "current", "unreadable", "changing"]:
    for _ in range(_CAS_ATTEMPTS):
        if cipher.is_current(row.ciphertext):
            return "current"
        try:
            # Checks the binding as well: rotating would otherwise launder a value copied between users.
            cipher.decrypt(row.user_id, row.ciphertext)
        except CredentialDecryptError as exc:
            logger.warning("not re-encrypting the credential of user %s for %s: %s", row.user_id, row.provider, exc)
            return "unreadable"
        fresh = cipher.rotate(row.ciphertext)
        if store.replace_ciphertext(row.user_id, row.provider, row.ciphertext, fresh):
            return "moved"
        # A concurrent write won: look at what it left and try again.
        current = store.get(row.user_id, row.provider)
        if current is None:
            return "current"  # deleted meanwhile: nothing left to move
        row = current
    logger.warning(
        "not re-encrypting the credential of user %s for %s: it changed on each of %d attempts",
        row.user_id,
        row.provider,
        _CAS_ATTEMPTS,
    )
    return "changing"


def _envelope(user_id: str, plaintext: str) -> bytes:
    owner = user_id.encode("utf-8")
    if not owner:
        raise ValueError("a credential must be bound to a user id, and it is empty")
    if len(owner) > _MAX_USER_ID_BYTES:
        raise ValueError(f"a user id is at most {_MAX_USER_ID_BYTES} bytes")
    return bytes([_ENVELOPE_V1]) + len(owner).to_bytes(_LENGTH_BYTES, "big") + owner + plaintext.encode("utf-8")


def _open_envelope(payload: bytes) -> tuple[bytes, bytes]:
    """(user id, plaintext) from a decrypted payload."""
    header = 1 + _LENGTH_BYTES
    if len(payload) < header or payload[0] != _ENVELOPE_V1:
        raise CredentialDecryptError(
            "the stored credential is not in a format this version of Doki knows: reconnect the account"
        )
    length = int.from_bytes(payload[1:header], "big")
    if length == 0 or len(payload) < header + length:
        raise CredentialDecryptError("the stored credential is malformed: reconnect the account")
    return payload[header : header + length], payload[header + length :]


def _undecryptable() -> CredentialDecryptError:
    return CredentialDecryptError(
        "the stored credential cannot be decrypted: it was encrypted with a key that is not in "
        "ENCRYPTION_KEY, or it was altered. If a key was dropped, put it back after the newest key and "
        "run the re-encryption; otherwise reconnect the account"
    )
