"""Identity tokens: minted for a service account, verified where a private Cloud Run URL is called.

Google signs ID tokens with its own keys (RS256) and Cloud Run checks the signature, the expiry and that the audience
is one of the service's URLs or custom audiences. The emulator signs with a key of its own, made at start, so a token
is good only for the emulator that minted it; anything else sent as a bearer token is no ID token to it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from doki_cli.emulator.iamadmin.state import Account

ISSUER = "https://accounts.google.com"
LIFETIME_SECONDS = 3600  # an hour, as Google's ID tokens


class IdTokens:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._kid = uuid.uuid4().hex

    def mint(self, account: Account, audience: str, *, include_email: bool) -> str:
        """An ID token for `account`, good for `audience` for an hour (the claims of Google's: the account's unique
        id as sub and azp; its email only when asked for)."""
        now = int(self._clock())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": audience,
            "azp": account.unique_id,
            "sub": account.unique_id,
            "iat": now,
            "exp": now + LIFETIME_SECONDS,
        }
        if include_email:
            claims |= {"email": account.email, "email_verified": True}
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self._kid})

    def verify(self, token: str) -> dict[str, Any] | None:
        """The claims of a token this emulator minted that has not expired; None for anything else. The audience is
        the caller's to judge: each service accepts its own."""
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._key.public_key(),
                algorithms=["RS256"],
                issuer=ISSUER,
                # The times are judged below by the emulator's clock, not PyJWT's.
                options={"verify_aud": False, "verify_exp": False, "verify_iat": False, "require": ["exp", "aud"]},
            )
        except jwt.PyJWTError:
            return None
        return claims if claims["exp"] > self._clock() else None
