"""Verification of Supabase Auth access tokens: whether to believe a request's `Authorization: Bearer` header.

Every request names its user with a Supabase access token, and everything Doki stores is keyed by that user,
so a forged or misread token is a cross-user data leak. The rules follow RFC 8725 (JWT best practices):

- Keys come from one place only: the project's JWKS (`SUPABASE_URL/auth/v1/.well-known/jwks.json`) for ES256
  and RS256, plus the legacy shared secret for HS256 when, and only when, it is configured. Nothing a token
  says (`jku`, `jwk`, `x5u`) chooses or supplies a key.
- Algorithms are pinned by configuration. The header's `alg` must be allowed *and* match the type of the key
  it names, so a token cannot turn a public key into an HMAC secret (key confusion) or opt out of signing
  (`alg: none`).
- Claims: `iss` exactly this project's issuer, `aud` exactly "authenticated", `role` "authenticated", `exp`
  and `sub` present, neither `nbf` nor `iat` in the future. The `aud`/`role`/`sub` rules shut out the
  project's own anon and service_role API keys, which are JWTs too (signed with the same legacy secret).
- Failures say what was wrong in a few fixed words, safe to show a client. No message and no log line ever
  holds a token or a key: errors are built from literals, and library exceptions are not chained onto them.
- Time comes from one injected clock, for the claims and the key cache alike, so tests can move it; the bound on
  a JWKS fetch is an injected deadline (asyncio.timeout), so tests can expire it without waiting.

The JWKS cache:

- Keys are reused for `jwks_ttl` seconds, then refetched.
- A token naming an unknown `kid` triggers one refetch, since Supabase may have rotated keys. Refetches of any
  kind are at most one per `min_refetch_interval`, so a flood of random kids (or an outage) costs Supabase one
  request per interval, not one per request.
- Concurrent verifications that need a fetch share it: one holds the lock and fetches, the others wait for its
  result instead of asking again.
- Stale keys: when the cache has expired and a refetch fails, the last keys stay in use for up to
  `jwks_max_stale` seconds more (default one hour: the lifetime of a default Supabase access token). A brief
  Supabase outage then does not log everybody out, yet a key Supabase revoked stops working within a bound.
  Past that, or with no keys ever fetched, verification answers AuthUnavailableError (503), never a false 401.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from doki.auth.errors import AuthError, AuthUnavailableError, InvalidTokenError
from doki.auth.principal import Principal
from doki.settings import MIN_JWT_SECRET_BYTES

if TYPE_CHECKING:
    from doki.settings import Settings

logger = logging.getLogger(__name__)

AUDIENCE: Final = "authenticated"
AUTHENTICATED_ROLE: Final = "authenticated"
ASYMMETRIC_ALGORITHMS: Final = ("ES256", "RS256")
HS256: Final = "HS256"
JWKS_PATH: Final = "/auth/v1/.well-known/jwks.json"
# Supabase tokens are ~1 KiB; anything far bigger is an attack on the parser, refused before any decoding.
MAX_TOKEN_LENGTH: Final = 8 * 1024
# A JWKS holds a handful of keys (~1 KiB); the cap stops a broken or hostile endpoint from filling memory.
MAX_JWKS_BYTES: Final = 64 * 1024
# Tolerated clock difference between Supabase and us, for exp, nbf and iat alike.
CLOCK_SKEW_LEEWAY: Final = 30.0
MIN_RSA_BITS: Final = 2048
# Supabase requires legacy JWT secrets of at least 32 characters; HS256 with less is guessable.
MIN_SECRET_BYTES: Final = MIN_JWT_SECRET_BYTES
NOT_CONFIGURED: Final = "token verification is not configured: set SUPABASE_URL"

# Three non-empty base64url segments: a compact JWS. An empty signature (`alg: none`) fails here already.
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_API_KEY_PREFIXES = ("sb_publishable_", "sb_secret_")
_REQUIRED_CLAIMS = ("exp", "sub", "aud", "iss")
_DECODE_OPTIONS: Final[jwt.types.Options] = {
    "verify_signature": True,
    "require": list(_REQUIRED_CLAIMS),
    "verify_aud": True,
    "strict_aud": True,  # Supabase's aud is a plain string; a list is not what it issues
    "verify_iss": True,
    "verify_sub": True,
    "verify_jti": True,
    # Time claims are checked against the injected clock in `_check_times`, not PyJWT's wall clock.
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
    "enforce_minimum_key_length": True,
}


class _JWKSUnavailable(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey


@dataclass(frozen=True, slots=True)
class _SigningKey:
    kid: str
    algorithm: str  # the one algorithm this key verifies, derived from its type, never from a token
    public_key: PublicKey


class TokenVerifier:
    """Checks Supabase access tokens. One per process: it holds the JWKS cache.

    It does not own `http`: whoever created the client closes it (the app's lifespan).
    """

    def __init__(
        self,
        *,
        supabase_url: str | None,
        jwt_secret: str | None,
        algorithms: Sequence[str],
        http: httpx.AsyncClient,
        clock: Callable[[], float] = time.time,
        jwks_ttl: float = 600.0,
        fetch_timeout: float = 3.0,
        min_refetch_interval: float = 30.0,
        jwks_max_stale: float = 3600.0,
        deadline: Callable[[float], AbstractAsyncContextManager[object]] = asyncio.timeout,
    ) -> None:
        unsupported = [a for a in algorithms if a not in ASYMMETRIC_ALGORITHMS]
        if unsupported:
            raise ValueError(
                f"unsupported token algorithm(s) {unsupported}: allowed are "
                f"{', '.join(ASYMMETRIC_ALGORITHMS)} (HS256 is enabled by setting the JWT secret)"
            )
        if jwt_secret is not None and len(jwt_secret.encode()) < MIN_SECRET_BYTES:
            # The value itself stays out of the message: it is a secret even when it is a bad one.
            raise ValueError(f"the Supabase JWT secret is shorter than {MIN_SECRET_BYTES} bytes")
        if jwks_ttl <= 0 or fetch_timeout <= 0 or min_refetch_interval < 0 or jwks_max_stale < 0:
            raise ValueError("jwks_ttl and fetch_timeout must be positive, the other intervals not negative")

        base = supabase_url.rstrip("/") if supabase_url else None
        # Without the project URL there is no issuer to pin, so nothing can be verified, not even HS256
        # tokens: accepting any issuer would accept tokens minted for another project sharing the secret.
        self._issuer = f"{base}/auth/v1" if base else None
        self._jwks_url = httpx.URL(f"{base}{JWKS_PATH}") if base else None
        if self._jwks_url is not None and self._jwks_url.scheme not in ("http", "https"):
            raise ValueError("supabase_url must be an http(s) URL")
        self._secret = jwt_secret.encode() if jwt_secret is not None else None
        self._algorithms = frozenset(algorithms) | ({HS256} if self._secret is not None else set())
        self._http = http
        self._clock = clock
        self._ttl = jwks_ttl
        self._fetch_timeout = fetch_timeout
        self._min_refetch_interval = min_refetch_interval
        self._max_stale = jwks_max_stale
        # What ends a fetch that outlasts fetch_timeout; a test passes one that it expires itself, not the clock.
        self._deadline = deadline

        self._keys: dict[str, _SigningKey] = {}
        self._fetched_at: float | None = None  # last successful fetch
        self._attempted_at: float | None = None  # last finished fetch, successful or not
        self._last_fetch_failed = False
        self._lock = asyncio.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, http: httpx.AsyncClient) -> TokenVerifier:
        secret = settings.supabase_jwt_secret
        return cls(
            supabase_url=settings.supabase_url,
            jwt_secret=secret.get_secret_value() if secret is not None else None,
            algorithms=settings.supabase_jwt_algorithms,
            http=http,
        )

    async def verify(self, token: str) -> Principal:
        """The user `token` proves, or InvalidTokenError (401) / AuthUnavailableError (503)."""
        try:
            return await self._verify(token)
        except AuthError as error:
            logger.debug("access token refused: %s", error.description)
            raise

    async def _verify(self, token: str) -> Principal:
        if self._issuer is None:
            raise InvalidTokenError(NOT_CONFIGURED)
        header = _read_header(token)
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self._algorithms:
            raise InvalidTokenError("token algorithm is not accepted")
        key: PublicKey | bytes
        if alg == HS256:
            assert self._secret is not None  # HS256 is only in the allowed set when the secret is set
            key = self._secret
        else:
            kid = header.get("kid")
            if not isinstance(kid, str) or not kid:
                raise InvalidTokenError("token does not name its signing key (kid)")
            signing_key = await self._signing_key(kid)
            # The key decides the algorithm: an RSA key only ever verifies RS256, an EC P-256 key only ES256.
            if signing_key.algorithm != alg:
                raise InvalidTokenError("token algorithm does not match its signing key")
            key = signing_key.public_key
        claims = _decode(token, key, alg, self._issuer)
        self._check_times(claims)
        return _principal(claims)

    def _check_times(self, claims: dict[str, Any]) -> None:
        now = self._clock()
        if now >= _time_claim(claims, "exp") + CLOCK_SKEW_LEEWAY:
            raise InvalidTokenError("token has expired")
        if "nbf" in claims and _time_claim(claims, "nbf") > now + CLOCK_SKEW_LEEWAY:
            raise InvalidTokenError("token is not valid yet")
        if "iat" in claims and _time_claim(claims, "iat") > now + CLOCK_SKEW_LEEWAY:
            raise InvalidTokenError("token was issued in the future")

    # --- the JWKS cache -------------------------------------------------------------------------------------

    async def _signing_key(self, kid: str) -> _SigningKey:
        key = self._fresh_keys().get(kid)
        if key is None:
            await self._refresh(kid)
            key = self._usable_keys().get(kid)
        if key is not None:
            return key
        if self._last_fetch_failed:
            # Maybe the key exists and we just cannot see it: a 401 would sign a valid user out.
            raise AuthUnavailableError("cannot reach Supabase to check the token's signing key; retry soon")
        raise InvalidTokenError("token signing key is not known")

    def _fresh_keys(self) -> dict[str, _SigningKey]:
        return self._keys if _elapsed(self._fetched_at, self._clock()) < self._ttl else {}

    def _usable_keys(self) -> dict[str, _SigningKey]:
        """Fresh keys, or stale ones within the stale bound (only ever the case after a failed refetch)."""
        within = _elapsed(self._fetched_at, self._clock()) < self._ttl + self._max_stale
        return self._keys if within else {}

    async def _refresh(self, kid: str) -> None:
        async with self._lock:
            # Whoever held the lock before may have fetched exactly what this verification needs.
            if kid in self._fresh_keys():
                return
            # The rate limit covers unknown kids, expiry after a failure, and waiters behind a fetch that ran.
            if _elapsed(self._attempted_at, self._clock()) < self._min_refetch_interval:
                return
            await self._fetch()

    async def _fetch(self) -> None:
        # State changes only once the fetch has finished: a verification cancelled mid-fetch (client gone)
        # leaves the cache as it was, so the next waiter fetches instead of being rate-limited by nothing.
        try:
            keys = await self._download()
        except _JWKSUnavailable as failure:
            self._attempted_at = self._clock()
            self._last_fetch_failed = True
            stale = " (still using the previous keys for now)" if self._usable_keys() else ""
            logger.warning("Supabase signing keys unavailable from %s: %s%s", self._jwks_url, failure.reason, stale)
            return
        self._keys = keys
        self._fetched_at = self._attempted_at = self._clock()
        self._last_fetch_failed = False
        logger.info("loaded %d Supabase signing key(s) from %s", len(keys), self._jwks_url)

    async def _download(self) -> dict[str, _SigningKey]:
        assert self._jwks_url is not None  # only reached once an issuer (and so a URL) is configured
        body = bytearray()
        try:
            # httpx's timeout bounds each phase; this bounds the whole exchange, a slow trickle included.
            async with (
                self._deadline(self._fetch_timeout),
                self._http.stream(
                    "GET",
                    self._jwks_url,
                    headers={"Accept": "application/json"},
                    timeout=self._fetch_timeout,
                    # The keys come from the project URL itself, not from wherever it might point.
                    follow_redirects=False,
                ) as response,
            ):
                if response.status_code != httpx.codes.OK:
                    raise _JWKSUnavailable(f"HTTP {response.status_code}")
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_JWKS_BYTES:
                        raise _JWKSUnavailable(f"response larger than {MAX_JWKS_BYTES} bytes")
        except TimeoutError:
            raise _JWKSUnavailable(f"no answer within {self._fetch_timeout:g} s") from None
        except httpx.HTTPError as error:
            raise _JWKSUnavailable(type(error).__name__) from None
        try:
            document = json.loads(bytes(body))
        except (ValueError, RecursionError):
            raise _JWKSUnavailable("response is not JSON") from None
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise _JWKSUnavailable('response is not a JWKS (no "keys" list)')
        keys: dict[str, _SigningKey] = {}
        for entry in document["keys"]:
            key = _parse_jwk(entry)
            if key is not None:
                keys.setdefault(key.kid, key)
        return keys


def _elapsed(since: float | None, now: float) -> float:
    # Never, or a clock that went backwards, counts as long ago: one extra fetch beats a cache stuck fresh.
    if since is None or now < since:
        return math.inf
    return now - since


def _read_header(token: str) -> dict[str, Any]:
    if not isinstance(token, str):
        raise InvalidTokenError("malformed token")
    if len(token) > MAX_TOKEN_LENGTH:
        raise InvalidTokenError("token is too large")
    if token.startswith(_API_KEY_PREFIXES):
        raise InvalidTokenError("malformed token: a Supabase API key is not a user access token")
    if not _COMPACT_JWS.fullmatch(token):
        raise InvalidTokenError("malformed token")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        # Includes `crit` naming an extension PyJWT does not implement, as RFC 7515 §4.1.11 requires, and the
        # one it does (b64: false, RFC 7797), which needs a detached payload that this verifier never passes.
        raise InvalidTokenError("malformed token") from None
    return header


def _decode(token: str, key: PublicKey | bytes, alg: str, issuer: str) -> dict[str, Any]:
    # `from None` everywhere: a chained PyJWT exception could carry token fragments into a logged traceback.
    try:
        claims = jwt.decode(token, key, algorithms=[alg], audience=AUDIENCE, issuer=issuer, options=_DECODE_OPTIONS)
    except jwt.InvalidSignatureError:
        raise InvalidTokenError("token signature is invalid") from None
    except jwt.MissingRequiredClaimError as error:
        claim = error.claim if error.claim in _REQUIRED_CLAIMS else "a required"
        raise InvalidTokenError(f"token lacks the {claim} claim") from None
    except jwt.InvalidAudienceError:
        raise InvalidTokenError("token audience is not accepted") from None
    except jwt.InvalidIssuerError:
        raise InvalidTokenError("token issuer is not accepted") from None
    except jwt.exceptions.InvalidSubjectError:
        raise InvalidTokenError("token subject is invalid") from None
    except jwt.InvalidAlgorithmError:
        raise InvalidTokenError("token algorithm is not accepted") from None
    except jwt.PyJWTError:
        raise InvalidTokenError("malformed token") from None
    except (ValueError, TypeError, OverflowError, RecursionError):
        # PyJWT maps parse errors to its own; this is the net under it: hostile input is a 401, never a 500.
        raise InvalidTokenError("malformed token") from None
    # PyJWT checked both already; checked again because a library regression here is a cross-project breach
    # (PyJWT 2.10.0 matched `iss` as a substring: CVE-2024-53861).
    if claims.get("iss") != issuer:
        raise InvalidTokenError("token issuer is not accepted")
    if claims.get("aud") != AUDIENCE:
        raise InvalidTokenError("token audience is not accepted")
    return claims


def _time_claim(claims: dict[str, Any], name: str) -> float:
    value = claims.get(name)
    # bool is an int to Python, and JSON allows NaN and Infinity: an `exp` of NaN or Infinity never expires.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidTokenError(f"token {name} claim is not a time")
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidTokenError(f"token {name} claim is not a time")
    return value


def _principal(claims: dict[str, Any]) -> Principal:
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub.strip():
        raise InvalidTokenError("token subject is invalid")
    role = claims.get("role")
    if role != AUTHENTICATED_ROLE:
        # anon and service_role are API keys, not users; whatever else, only a signed-in user may call.
        raise InvalidTokenError("token role is not accepted: sign in as a user")
    email = claims.get("email")
    return Principal(user_id=sub, email=email if isinstance(email, str) and email else None, role=role)


def _parse_jwk(entry: object) -> _SigningKey | None:
    """The verification key in one JWKS entry, or None for anything not a usable ES256/RS256 signing key."""
    if not isinstance(entry, dict):
        return None
    kid = entry.get("kid")
    if not isinstance(kid, str) or not kid:
        return None
    if entry.get("use", "sig") != "sig":
        return None
    key_ops = entry.get("key_ops")
    if key_ops is not None and (not isinstance(key_ops, list) or "verify" not in key_ops):
        return None
    public_key: PublicKey
    # Only public EC P-256 and RSA keys pass the type checks below. A JWK with its private half parses to a
    # private key and is refused (a JWKS is public: that is a leak or a mistake), and a symmetric ("oct") key
    # is never used: a secret published at a URL is no secret.
    try:
        if entry.get("kty") == "EC":
            algorithm = "ES256"
            ec_key = ECAlgorithm.from_jwk(entry)
            if not (isinstance(ec_key, ec.EllipticCurvePublicKey) and isinstance(ec_key.curve, ec.SECP256R1)):
                return None
            public_key = ec_key
        elif entry.get("kty") == "RSA":
            algorithm = "RS256"
            rsa_key = RSAAlgorithm.from_jwk(entry)
            if not isinstance(rsa_key, rsa.RSAPublicKey) or rsa_key.key_size < MIN_RSA_BITS:
                return None
            public_key = rsa_key
        else:
            return None
    except (jwt.PyJWTError, ValueError, TypeError, KeyError):
        return None
    declared = entry.get("alg")
    if declared is not None and declared != algorithm:
        return None
    return _SigningKey(kid=kid, algorithm=algorithm, public_key=public_key)
