"""The token verifier against a real (local) Supabase Auth JWKS endpoint and real signatures, attacker's view.

Nothing here mocks PyJWT or httpx: tokens are signed with real keys by `tests.fakes.supabase_auth`, keys are
fetched over HTTP from its server, and time is an injected clock that tests move by hand. Every refusal goes
through `Verifier.rejects`, which also checks that the message a client would see holds no token and no secret.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import random
import time
import traceback
import uuid
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import FrozenInstanceError
from typing import Any, TypeVar

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from doki.auth import (
    DEVELOPMENT_PRINCIPAL,
    AuthError,
    AuthUnavailableError,
    InvalidTokenError,
    Principal,
)
from doki.auth.verifier import CLOCK_SKEW_LEEWAY, MAX_TOKEN_LENGTH, NOT_CONFIGURED, TokenVerifier
from doki.settings import Settings
from tests.fakes.supabase_auth import FakeSupabaseAuth, SigningKey
from tests.helpers import SECRETS

SECRET = SECRETS.register("the legacy JWT secret", "legacy-hs256-jwt-secret-0123456789-abcdefghijklmnop")
OTHER_SECRET = SECRETS.register("another JWT secret", "a-different-hs256-jwt-secret-0123456789-abcdefghij")
USER_ID = "8d1b3b5e-2f4a-4c7e-9a1d-3f6b2c9e0a17"
TTL = 600.0
REFETCH_INTERVAL = 30.0
MAX_STALE = 3600.0
T = TypeVar("T")


# --- harness ----------------------------------------------------------------------------------------------------


class FakeClock:
    """Time that only moves when a test says so."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# Longer than any test takes, so only a Deadline the test expires ends a hanging fetch (never httpx's own timeouts).
FETCH_TIMEOUT = 600.0
# How long a test waits for something that takes milliseconds before failing, saying what never happened.
PATIENCE = 60.0


async def fetch_arrived(auth: FakeSupabaseAuth) -> None:
    """Once the JWKS request the verifier started has reached the fake server."""
    arrived = await asyncio.to_thread(auth.fetch_arrived.wait, PATIENCE)
    assert arrived, "the verifier never asked for the JWKS"


async def released_once_fetching(
    auth: FakeSupabaseAuth, verifications: list[Coroutine[Any, Any, Principal]]
) -> list[Principal | BaseException]:
    """The outcomes of `verifications`, run at once against a hanging JWKS that answers once a fetch reached it: by
    then every verification has run up to the fetch or the wait for it (the event loop ran each before any I/O)."""
    running = asyncio.gather(*verifications, return_exceptions=True)
    await fetch_arrived(auth)
    auth.behave_normally()
    return await running


class Deadline:
    """The verifier's fetch deadline, expired by the test instead of by the passing of time."""

    def __init__(self) -> None:
        self.armed: list[float] = []  # the seconds each fetch's deadline was set to
        self._timeouts: list[asyncio.Timeout] = []

    def __call__(self, seconds: float) -> asyncio.Timeout:
        self.armed.append(seconds)
        self._timeouts.append(asyncio.timeout(None))
        return self._timeouts[-1]

    def expire(self) -> None:
        for timeout in self._timeouts:
            timeout.reschedule(asyncio.get_running_loop().time())

    async def expired_once_fetching(
        self, auth: FakeSupabaseAuth, verifications: list[Coroutine[Any, Any, Principal]]
    ) -> list[Principal | BaseException]:
        """The outcomes of `verifications`, run at once, the deadline expired once the JWKS fetch reached `auth`."""
        running = asyncio.gather(*verifications, return_exceptions=True)
        await fetch_arrived(auth)
        self.expire()
        return await running


def assert_safe_to_show(text: str, token: object) -> None:
    """`text` names no token, no piece of one, and no secret."""
    assert SECRET not in text and OTHER_SECRET not in text
    if isinstance(token, str) and token:
        assert token not in text
        for segment in token.split("."):
            if len(segment) >= 8:
                assert segment not in text
    assert "eyJ" not in text  # the start of any base64url JSON object: a JWT segment


class Verifier:
    """A TokenVerifier driven from sync tests, on one event loop for the whole test, so its cache and lock
    live across calls as they do in the app."""

    def __init__(self, runner: asyncio.Runner, inner: TokenVerifier) -> None:
        self.runner = runner
        self.inner = inner

    def accepts(self, token: str) -> Principal:
        return self.runner.run(self.inner.verify(token))

    def rejects(self, token: Any) -> str:
        with pytest.raises(InvalidTokenError) as caught:
            self.runner.run(self.inner.verify(token))
        return self._checked(caught.value, token, 401)

    def is_unavailable_for(self, token: str) -> str:
        with pytest.raises(AuthUnavailableError) as caught:
            self.runner.run(self.inner.verify(token))
        return self._checked(caught.value, token, 503)

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.runner.run(coroutine)

    @staticmethod
    def _checked(error: AuthError, token: object, status: int) -> str:
        assert error.status_code == status
        assert error.description and error.description == str(error)
        assert_safe_to_show(error.description, token)
        assert_safe_to_show(repr(error), token)
        return error.description


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def auth(clock: FakeClock) -> Iterator[FakeSupabaseAuth]:
    with FakeSupabaseAuth(clock=clock) as fake:
        yield fake


@pytest.fixture
def runner() -> Iterator[asyncio.Runner]:
    with asyncio.Runner() as runner:
        yield runner


@pytest.fixture
def make_verifier(
    auth: FakeSupabaseAuth, clock: FakeClock, runner: asyncio.Runner
) -> Iterator[Callable[..., Verifier]]:
    clients: list[httpx.AsyncClient] = []

    def make(*, follow_redirects: bool = False, **overrides: Any) -> Verifier:
        http = httpx.AsyncClient(follow_redirects=follow_redirects)
        clients.append(http)
        options: dict[str, Any] = {
            "supabase_url": auth.url,
            "jwt_secret": None,
            "algorithms": ["ES256", "RS256"],
            "http": http,
            "clock": clock,
            "jwks_ttl": TTL,
            "fetch_timeout": 2.0,
            "min_refetch_interval": REFETCH_INTERVAL,
            "jwks_max_stale": MAX_STALE,
        }
        options.update(overrides)
        return Verifier(runner, TokenVerifier(**options))

    yield make
    for http in clients:
        runner.run(http.aclose())


@pytest.fixture
def verifier(make_verifier: Callable[..., Verifier]) -> Verifier:
    return make_verifier()


@pytest.fixture
def with_secret(make_verifier: Callable[..., Verifier]) -> Verifier:
    """A verifier that also accepts legacy HS256 tokens signed with SECRET."""
    return make_verifier(jwt_secret=SECRET)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def random_kid() -> str:
    return str(uuid.uuid4())


# --- tokens that are accepted -----------------------------------------------------------------------------------


def test_a_valid_es256_token_is_accepted_as_its_user(auth: FakeSupabaseAuth, verifier: Verifier) -> None:
    token = auth.mint({"sub": USER_ID, "email": "ada@example.com"}, alg="ES256")
    assert verifier.accepts(token) == Principal(user_id=USER_ID, email="ada@example.com", role="authenticated")


def test_a_valid_rs256_token_is_accepted_as_its_user(auth: FakeSupabaseAuth, verifier: Verifier) -> None:
    token = auth.mint({"sub": USER_ID, "email": "bob@example.com"}, alg="RS256")
    assert verifier.accepts(token) == Principal(user_id=USER_ID, email="bob@example.com", role="authenticated")


def test_a_valid_hs256_token_is_accepted_when_the_legacy_secret_is_set(
    auth: FakeSupabaseAuth, with_secret: Verifier
) -> None:
    token = auth.mint({"sub": USER_ID}, alg="HS256", key=SECRET)
    assert with_secret.accepts(token).user_id == USER_ID


def test_an_hs256_token_never_costs_a_jwks_fetch(auth: FakeSupabaseAuth, with_secret: Verifier) -> None:
    # Supabase puts a kid on legacy tokens too; it must not send the verifier to the JWKS.
    with_secret.accepts(auth.mint(alg="HS256", key=SECRET, kid="legacy-kid"))
    assert auth.fetch_count == 0


@pytest.mark.parametrize(("claims", "drop"), [({"email": ""}, ["email"]), ({"email": ""}, []), ({"email": 7}, [])])
def test_a_user_without_a_usable_email_gets_none(
    auth: FakeSupabaseAuth, verifier: Verifier, claims: dict[str, Any], drop: list[str]
) -> None:
    assert verifier.accepts(auth.mint(claims, drop=drop)).email is None


def test_a_token_within_the_clock_skew_leeway_is_accepted(
    auth: FakeSupabaseAuth, verifier: Verifier, clock: FakeClock
) -> None:
    # 20 s of skew between Supabase's clock and ours is normal; tokens must not flap at their edges.
    now = int(clock())
    verifier.accepts(auth.mint({"exp": now - 20}))
    verifier.accepts(auth.mint({"nbf": now + 20}))
    verifier.accepts(auth.mint({"iat": now + 20}))
    assert CLOCK_SKEW_LEEWAY <= 60  # ... but the leeway stays small


def test_the_largest_allowed_token_is_accepted_and_one_byte_more_is_refused(
    auth: FakeSupabaseAuth, verifier: Verifier
) -> None:
    def padded(length: int) -> str:
        return auth.mint({"sub": USER_ID, "user_metadata": {"pad": "x" * length}})

    pad = 0
    while len(padded(pad + 1)) <= MAX_TOKEN_LENGTH:
        pad += max(1, (MAX_TOKEN_LENGTH - len(padded(pad))) * 3 // 4)
        while len(padded(pad)) > MAX_TOKEN_LENGTH:
            pad -= 1
    largest = padded(pad)
    assert MAX_TOKEN_LENGTH - 2 <= len(largest) <= MAX_TOKEN_LENGTH
    assert verifier.accepts(largest).user_id == USER_ID
    too_large = padded(pad + 2)
    assert len(too_large) > MAX_TOKEN_LENGTH
    assert verifier.rejects(too_large) == "token is too large"


# --- algorithms and keys: the header never chooses ----------------------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_an_unsigned_token_is_refused(auth: FakeSupabaseAuth, with_secret: Verifier, alg: str) -> None:
    unsigned = auth.mint(alg=alg, kid=auth.es256.kid)
    assert unsigned.endswith(".")
    assert with_secret.rejects(unsigned) == "malformed token"
    # ... and with a signature-shaped tail, it is still no algorithm we run.
    assert with_secret.rejects(unsigned + "c2lnbmF0dXJl") == "token algorithm is not accepted"


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_hs256_signed_with_the_public_key_is_refused_without_a_secret(
    auth: FakeSupabaseAuth, verifier: Verifier, alg: str
) -> None:
    key = auth.es256 if alg == "ES256" else auth.rs256
    forged = auth.mint({"sub": USER_ID}, alg="HS256", key=key.public_pem(), kid=key.kid)
    assert verifier.rejects(forged) == "token algorithm is not accepted"


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_hs256_signed_with_the_public_key_is_refused_even_with_a_secret(
    auth: FakeSupabaseAuth, with_secret: Verifier, alg: str
) -> None:
    # The classic key confusion: the verifier must use *its* secret for HS256, never the key the kid names.
    key = auth.es256 if alg == "ES256" else auth.rs256
    for secret in (key.public_pem(), json.dumps(key.public_jwk()).encode()):
        forged = auth.mint({"sub": USER_ID}, alg="HS256", key=secret, kid=key.kid)
        assert with_secret.rejects(forged) == "token signature is invalid"


def test_hs256_is_refused_without_the_legacy_secret_even_when_correctly_signed(
    auth: FakeSupabaseAuth, verifier: Verifier
) -> None:
    assert verifier.rejects(auth.mint(alg="HS256", key=SECRET)) == "token algorithm is not accepted"


def test_hs256_signed_with_another_secret_is_refused(auth: FakeSupabaseAuth, with_secret: Verifier) -> None:
    assert with_secret.rejects(auth.mint(alg="HS256", key=OTHER_SECRET)) == "token signature is invalid"


def test_rs256_naming_an_ec_key_is_refused(auth: FakeSupabaseAuth, verifier: Verifier) -> None:
    token = auth.mint(alg="RS256", key=auth.rs256, kid=auth.es256.kid)
    assert verifier.rejects(token) == "token algorithm does not match its signing key"


def test_es256_naming_an_rsa_key_is_refused(auth: FakeSupabaseAuth, verifier: Verifier) -> None:
    token = auth.mint(alg="ES256", key=auth.es256, kid=auth.rs256.kid)
    assert verifier.rejects(token) == "token algorithm does not match its signing key"


@pytest.mark.parametrize("alg", ["ES384", "ES512", "PS256", "RS512", "HS512", "EdDSA", "es256", "ES256 ", ""])
def test_an_algorithm_outside_the_pinned_set_is_refused(
    auth: FakeSupabaseAuth, with_secret: Verifier, alg: str
) -> None:
    token = auth.mint(key=auth.es256, header_overrides={"alg": alg})
    assert with_secret.rejects(token) == "token algorithm is not accepted"


def test_an_algorithm_the_configuration_leaves_out_is_refused_before_any_fetch(
    auth: FakeSupabaseAuth, make_verifier: Callable[..., Verifier]
) -> None:
    es256_only = make_verifier(algorithms=["ES256"])
    assert es256_only.rejects(auth.mint(alg="RS256")) == "token algorithm is not accepted"
    assert auth.fetch_count == 0
    es256_only.accepts(auth.mint(alg="ES256"))


def test_a_token_signed_by_a_key_that_is_not_the_project_s_is_refused(
    auth: FakeSupabaseAuth, verifier: Verifier
) -> None:
    attacker = SigningKey.generate("ES256")
    token = auth.mint(alg="ES256", key=attacker, kid=auth.es256.kid)
    assert verifier.rejects(token) == "token signature is invalid"


def test_a_key_embedded_in_the_header_is_never_used(auth: FakeSupabaseAuth, verifier: Verifier) -> None:
    attacker = SigningKey.generate("ES256", kid=auth.es256.kid)
    embedded = auth.mint(alg="ES256", key=attacker, header_overrides={"jwk": attacker.public_jwk()})
    assert verifier.rejects(embedded) == "token signature is invalid"


def test_a_jwks_url_in_the_header_is_never_fetched(auth: FakeSupabaseAuth, verifier: Verifier) -> None:
    attacker = SigningKey.generate("ES256", kid=auth.es256.kid)
    for member in ("jku", "x5u"):
        token = auth.mint(key=attacker, header_overrides={member: f"{auth.url}/attacker/jwks.json"})
        assert verifier.rejects(token) == "token signature is invalid"
    assert "/attacker/jwks.json" not in auth.requested_paths


def test_an_asymmetric_token_without_a_kid_is_refused(auth: FakeSupabaseAuth, verifier: Verifier) -> None:
    assert verifier.rejects(auth.mint(kid=None)) == "token does not name its signing key (kid)"
    assert verifier.rejects(auth.mint(header_overrides={"kid": ""})) == "token does not name its signing key (kid)"


@pytest.mark.parametrize(
    "header",
    [{"crit": ["exp"]}, {"crit": ["x-custom"], "x-custom": 1}, {"crit": ["b64"], "b64": False}, {"crit": []}],
)
def test_a_token_with_critical_header_extensions_is_refused(
    auth: FakeSupabaseAuth, verifier: Verifier, header: dict[str, Any]
) -> None:
    # RFC 7515: an extension listed as critical must be understood, or the token refused. b64: false (RFC 7797)
    # would make the signature cover a payload other than the one in the token.
    assert verifier.rejects(auth.mint(header_overrides=header)) == "malformed token"


# --- claims -------------------------------------------------------------------------------------------------------


def test_an_expired_token_is_refused(auth: FakeSupabaseAuth, verifier: Verifier, clock: FakeClock) -> None:
    token = auth.mint({"exp": int(clock()) - int(CLOCK_SKEW_LEEWAY) - 1})
    assert verifier.rejects(token) == "token has expired"


def test_a_token_expires_by_the_injected_clock(auth: FakeSupabaseAuth, verifier: Verifier, clock: FakeClock) -> None:
    token = auth.mint()
    verifier.accepts(token)
    clock.advance(3600 + CLOCK_SKEW_LEEWAY)
    assert verifier.rejects(token) == "token has expired"


def test_a_token_not_valid_yet_is_refused(auth: FakeSupabaseAuth, verifier: Verifier, clock: FakeClock) -> None:
    assert verifier.rejects(auth.mint({"nbf": int(clock()) + 120})) == "token is not valid yet"


def test_a_token_issued_in_the_future_is_refused(auth: FakeSupabaseAuth, verifier: Verifier, clock: FakeClock) -> None:
    assert verifier.rejects(auth.mint({"iat": int(clock()) + 120})) == "token was issued in the future"


@pytest.mark.parametrize(
    ("claim", "value"),
    [
        ("exp", "9999999999"),
        ("exp", True),
        ("exp", float("nan")),
        ("exp", float("inf")),
        ("exp", [9999999999]),
        ("nbf", float("nan")),
        ("nbf", float("-inf")),
        ("nbf", None),
        ("iat", "now"),
        ("iat", float("nan")),
    ],
)
def test_a_time_claim_that_is_not_a_finite_number_is_refused(
    auth: FakeSupabaseAuth, verifier: Verifier, claim: str, value: object
) -> None:
    # NaN and Infinity are legal JSON to Python: an `exp` of NaN compares false against everything, so a naive
    # `now >= exp` check would let it live forever.
    assert verifier.rejects(auth.mint({claim: value})) == f"token {claim} claim is not a time"


@pytest.mark.parametrize("claim", ["exp", "sub", "aud", "iss"])
def test_a_token_missing_a_required_claim_is_refused(auth: FakeSupabaseAuth, verifier: Verifier, claim: str) -> None:
    assert verifier.rejects(auth.mint(drop=[claim])) == f"token lacks the {claim} claim"
    assert verifier.rejects(auth.mint({claim: None})) == f"token lacks the {claim} claim"


@pytest.mark.parametrize(
    "aud",
    ["anon", "service_role", "Authenticated", "authenticated ", ["authenticated"], ["authenticated", "x"], 42],
)
def test_a_token_for_another_audience_is_refused(auth: FakeSupabaseAuth, verifier: Verifier, aud: object) -> None:
    assert verifier.rejects(auth.mint({"aud": aud})) == "token audience is not accepted"


@pytest.mark.parametrize(
    "issuer",
    [
        lambda iss: iss + "evil",
        lambda iss: iss + "/",
        lambda iss: iss.removesuffix("/v1"),
        lambda iss: iss.removesuffix("/auth/v1"),
        lambda iss: iss.replace("http://", "https://"),
        lambda iss: iss.upper(),
        lambda iss: " " + iss,
        lambda iss: "supabase",
        lambda iss: "https://otherproject.supabase.co/auth/v1",
        lambda iss: [iss],
        lambda iss: {"iss": iss},
    ],
    ids=["suffix", "slash", "auth", "bare", "https", "upper", "space", "legacy", "other", "list", "object"],
)
def test_a_token_from_another_issuer_is_refused(
    auth: FakeSupabaseAuth, verifier: Verifier, issuer: Callable[[str], object]
) -> None:
    assert verifier.rejects(auth.mint({"iss": issuer(auth.issuer)})) == "token issuer is not accepted"


@pytest.mark.parametrize(
    "issuer",
    [
        "https://x.supabase.co/auth/v1evil",
        "https://x.supabase.co/auth",
        "https://x.supabase.co/auth/v1/",
        "https://x.supabase.co",
        "https://x.supabase.co.evil.com/auth/v1",
        "https://evil.com/https://x.supabase.co/auth/v1",
        "https://x.supabase.co/auth/v",
    ],
)
def test_an_issuer_that_only_starts_or_ends_like_the_project_s_is_refused(
    auth: FakeSupabaseAuth, make_verifier: Callable[..., Verifier], issuer: str
) -> None:
    # PyJWT 2.10.0 matched `iss` as a substring (CVE-2024-53861): ".../auth" passed for ".../auth/v1".
    project = make_verifier(supabase_url="https://x.supabase.co", jwt_secret=SECRET)
    project.accepts(auth.mint({"iss": "https://x.supabase.co/auth/v1"}, alg="HS256", key=SECRET))
    refused = project.rejects(auth.mint({"iss": issuer}, alg="HS256", key=SECRET))
    assert refused == "token issuer is not accepted"


@pytest.mark.parametrize("sub", ["", "   ", 123, ["x"]])
def test_a_token_with_an_unusable_subject_is_refused(auth: FakeSupabaseAuth, verifier: Verifier, sub: object) -> None:
    assert verifier.rejects(auth.mint({"sub": sub})) == "token subject is invalid"


@pytest.mark.parametrize("role", ["anon", "service_role", "supabase_admin", "Authenticated", None, ["authenticated"]])
def test_a_token_for_any_role_but_authenticated_is_refused(
    auth: FakeSupabaseAuth, verifier: Verifier, role: object
) -> None:
    token = auth.mint({"role": role}) if role is not None else auth.mint(drop=["role"])
    assert verifier.rejects(token) == "token role is not accepted: sign in as a user"


# --- API keys are not users ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["anon", "service_role"])
def test_a_legacy_api_key_is_refused_as_a_bearer_token(
    auth: FakeSupabaseAuth, make_verifier: Callable[..., Verifier], role: str
) -> None:
    api_key = auth.mint_legacy_api_key(role, SECRET)
    # Signed with the very secret the verifier trusts: only the claims tell it apart from a user token.
    assert make_verifier(jwt_secret=SECRET).rejects(api_key) == "token lacks the sub claim"
    assert make_verifier().rejects(api_key) == "token algorithm is not accepted"


def test_a_service_role_token_with_every_other_claim_right_is_refused(
    auth: FakeSupabaseAuth, with_secret: Verifier
) -> None:
    token = auth.mint({"role": "service_role"}, alg="HS256", key=SECRET)
    assert with_secret.rejects(token) == "token role is not accepted: sign in as a user"


@pytest.mark.parametrize("prefix", ["sb_publishable_", "sb_secret_"])
def test_a_new_style_api_key_is_refused_as_malformed(with_secret: Verifier, prefix: str) -> None:
    api_key = prefix + "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZg_7b9c1e2f"
    assert with_secret.rejects(api_key) == "malformed token: a Supabase API key is not a user access token"


# --- malformed input ----------------------------------------------------------------------------------------------

HEADER = b64(b'{"alg":"ES256","typ":"JWT"}')
CLAIMS = b64(b'{"sub":"x"}')
SIG = b64(b"\x01" * 64)

MALFORMED: dict[str, Callable[[FakeSupabaseAuth], Any]] = {
    "empty": lambda auth: "",
    "a word": lambda auth: "garbage",
    "two segments": lambda auth: f"{HEADER}.{CLAIMS}",
    "four segments": lambda auth: auth.mint() + "." + SIG,
    "an empty middle segment": lambda auth: f"{HEADER}..{SIG}",
    "dots only": lambda auth: "..",
    "the Bearer prefix left on": lambda auth: "Bearer " + auth.mint(),
    "a trailing newline": lambda auth: auth.mint() + "\n",
    "a trailing space": lambda auth: auth.mint() + " ",
    "base64 padding": lambda auth: auth.mint() + "==",
    "standard base64 characters": lambda auth: auth.mint().replace("-", "+").replace("_", "/") + "+/",
    "non-ASCII": lambda auth: "é.é.é",
    "a NUL byte": lambda auth: f"{HEADER}\x00.{CLAIMS}.{SIG}",
    "a header that is not JSON": lambda auth: f"{b64(b'not json')}.{CLAIMS}.{SIG}",
    "a header that is a JSON array": lambda auth: f"{b64(b'[1,2]')}.{CLAIMS}.{SIG}",
    "a header that is JSON null": lambda auth: f"{b64(b'null')}.{CLAIMS}.{SIG}",
    "a header that is not UTF-8": lambda auth: f"{b64(bytes([0xFF, 0xFE, 0xFD]))}.{CLAIMS}.{SIG}",
    "a deeply nested header": lambda auth: f"{b64(b'[' * 2500 + b']' * 2500)}.{CLAIMS}.{SIG}",
    "a payload that is not JSON": lambda auth: auth.mint(payload=b"not json"),
    "a payload that is a JSON array": lambda auth: auth.mint(payload=b'["sub"]'),
    "a payload that is a JSON string": lambda auth: auth.mint(payload=b'"authenticated"'),
    "a deeply nested payload": lambda auth: auth.mint(payload=b"[" * 2500 + b"]" * 2500),
    "an integer too long to parse": lambda auth: auth.mint(payload=b'{"exp":' + b"9" * 5000 + b"}"),
    "an alg that is not a string": lambda auth: auth.mint(header_overrides={"alg": 256}),
    "no alg": lambda auth: auth.mint(header_overrides={"alg": None}),
    "a kid that is not a string": lambda auth: auth.mint(header_overrides={"kid": 7}),
    "a kid that is an object": lambda auth: auth.mint(header_overrides={"kid": {"$ne": ""}}),
    "a signature that is not canonical base64url": lambda auth: auth.mint()[:-1] + "_",
    "a truncated signature": lambda auth: auth.mint()[:-20],
    "a signature of the wrong length": lambda auth: auth.mint().rsplit(".", 1)[0] + "." + SIG + SIG,
    "not a string": lambda auth: auth.mint().encode(),
    "None": lambda auth: None,
}


@pytest.mark.parametrize("make_token", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_token_is_refused_as_invalid_never_crashing(
    auth: FakeSupabaseAuth, with_secret: Verifier, make_token: Callable[[FakeSupabaseAuth], Any]
) -> None:
    with_secret.rejects(make_token(auth))


def test_an_oversized_token_is_refused_before_it_is_parsed(auth: FakeSupabaseAuth, verifier: Verifier) -> None:
    assert verifier.rejects("a" * (MAX_TOKEN_LENGTH + 1)) == "token is too large"
    assert verifier.rejects(f"{HEADER}.{'A' * 1_000_000}.{SIG}") == "token is too large"
    assert auth.fetch_count == 0


def test_randomly_corrupted_tokens_are_all_refused_as_invalid(auth: FakeSupabaseAuth, with_secret: Verifier) -> None:
    rng = random.Random(20240601)
    originals = [auth.mint(alg="ES256"), auth.mint(alg="RS256"), auth.mint(alg="HS256", key=SECRET)]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ \x00é"
    tried = 0
    for _ in range(600):
        original = rng.choice(originals)
        position = rng.randrange(len(original))
        mutation = rng.randrange(5)
        if mutation == 0:
            corrupted = original[:position] + rng.choice(alphabet) + original[position + 1 :]
        elif mutation == 1:
            corrupted = original[:position] + original[position + 1 :]
        elif mutation == 2:
            corrupted = original[:position] + rng.choice(alphabet) + original[position:]
        elif mutation == 3:
            corrupted = original[:position]
        else:
            segments = original.split(".")
            rng.shuffle(segments)
            corrupted = ".".join(segments)
        if corrupted == original:
            continue
        tried += 1
        with_secret.rejects(corrupted)
    assert tried > 500


# --- the JWKS cache -----------------------------------------------------------------------------------------------


def test_keys_are_fetched_once_and_reused(auth: FakeSupabaseAuth, verifier: Verifier) -> None:
    for alg in ("ES256", "RS256", "ES256"):
        verifier.accepts(auth.mint(alg=alg))
    assert auth.fetch_count == 1


def test_a_rotated_key_is_accepted_after_exactly_one_refetch(
    auth: FakeSupabaseAuth, verifier: Verifier, clock: FakeClock
) -> None:
    verifier.accepts(auth.mint())
    assert auth.fetch_count == 1
    clock.advance(REFETCH_INTERVAL + 1)  # still well inside the cache TTL
    new_key = auth.rotate("ES256")
    assert verifier.accepts(auth.mint(key=new_key)).role == "authenticated"
    assert auth.fetch_count == 2
    verifier.accepts(auth.mint(key=new_key))
    verifier.accepts(auth.mint(alg="RS256"))
    assert auth.fetch_count == 2


def test_a_kid_still_unknown_after_the_refetch_is_refused(
    auth: FakeSupabaseAuth, verifier: Verifier, clock: FakeClock
) -> None:
    verifier.accepts(auth.mint())
    clock.advance(REFETCH_INTERVAL + 1)
    unpublished = auth.new_key("ES256", publish=False)
    assert verifier.rejects(auth.mint(key=unpublished)) == "token signing key is not known"
    assert auth.fetch_count == 2


def test_an_unknown_kid_on_a_cold_cache_costs_one_fetch(auth: FakeSupabaseAuth, verifier: Verifier) -> None:
    assert verifier.rejects(auth.mint(kid=random_kid())) == "token signing key is not known"
    assert auth.fetch_count == 1


def test_a_flood_of_unknown_kids_costs_one_refetch_per_interval(
    auth: FakeSupabaseAuth, verifier: Verifier, clock: FakeClock
) -> None:
    good = auth.mint()
    verifier.accepts(good)
    clock.advance(REFETCH_INTERVAL + 1)
    for _ in range(100):
        clock.advance(0.1)
        verifier.rejects(auth.mint(kid=random_kid()))
        verifier.accepts(good)  # real users are not affected by the flood
    assert auth.fetch_count == 2
    clock.advance(REFETCH_INTERVAL)
    for _ in range(20):
        verifier.rejects(auth.mint(kid=random_kid()))
    assert auth.fetch_count == 3


def test_a_concurrent_flood_of_unknown_kids_costs_one_refetch(
    auth: FakeSupabaseAuth, verifier: Verifier, clock: FakeClock
) -> None:
    verifier.accepts(auth.mint())
    clock.advance(REFETCH_INTERVAL + 1)
    auth.hang()
    results = verifier.run(
        released_once_fetching(auth, [verifier.inner.verify(auth.mint(kid=random_kid())) for _ in range(50)])
    )
    assert all(isinstance(r, InvalidTokenError) for r in results)
    assert auth.fetch_count == 2


@pytest.mark.parametrize("refetch_interval", [REFETCH_INTERVAL, 0.0])
def test_concurrent_verifications_on_a_cold_cache_share_one_fetch(
    auth: FakeSupabaseAuth, make_verifier: Callable[..., Verifier], refetch_interval: float
) -> None:
    # Also without a rate limit: sharing the in-flight fetch is the lock's job, not the rate limit's.
    verifier = make_verifier(min_refetch_interval=refetch_interval)
    auth.hang()
    tokens = [auth.mint({"sub": str(i)}, alg=("ES256", "RS256")[i % 2]) for i in range(30)]
    results = verifier.run(released_once_fetching(auth, [verifier.inner.verify(token) for token in tokens]))
    assert [r.user_id for r in results if isinstance(r, Principal)] == [str(i) for i in range(30)]
    assert auth.fetch_count == 1


def test_keys_are_refetched_when_the_cache_ttl_runs_out(
    auth: FakeSupabaseAuth, verifier: Verifier, clock: FakeClock
) -> None:
    verifier.accepts(auth.mint())
    clock.advance(TTL - 1)
    verifier.accepts(auth.mint())
    assert auth.fetch_count == 1
    clock.advance(2)
    verifier.accepts(auth.mint())
    assert auth.fetch_count == 2


def test_a_key_removed_from_the_jwks_stops_working_once_the_cache_expires(
    auth: FakeSupabaseAuth, verifier: Verifier, clock: FakeClock
) -> None:
    revoked = auth.es256
    verifier.accepts(auth.mint(key=revoked))
    auth.unpublish(revoked.kid)
    clock.advance(TTL + 1)
    assert verifier.rejects(auth.mint(key=revoked)) == "token signing key is not known"
    assert auth.fetch_count == 2


def test_a_clock_that_jumps_backwards_refetches_instead_of_trusting_the_cache_forever(
    auth: FakeSupabaseAuth, verifier: Verifier, clock: FakeClock
) -> None:
    verifier.accepts(auth.mint())
    clock.advance(-86400)
    verifier.accepts(auth.mint())
    assert auth.fetch_count == 2


def test_a_verification_cancelled_mid_fetch_does_not_hold_back_the_next_one(
    auth: FakeSupabaseAuth, verifier: Verifier
) -> None:
    token = auth.mint()
    auth.hang()

    async def cancel_during_fetch() -> None:
        task = asyncio.ensure_future(verifier.inner.verify(token))
        await fetch_arrived(auth)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    verifier.runner.run(cancel_during_fetch())
    auth.behave_normally()
    verifier.accepts(token)  # no clock advance: the cancelled fetch must not count against the rate limit
    assert auth.fetch_count == 2


# --- Supabase unreachable or answering nonsense -------------------------------------------------------------------


def test_an_unreachable_jwks_makes_verification_unavailable(auth: FakeSupabaseAuth, verifier: Verifier) -> None:
    auth.go_down()
    description = verifier.is_unavailable_for(auth.mint())
    assert "Supabase" in description


def test_a_hanging_jwks_is_given_up_on_within_the_fetch_timeout(
    auth: FakeSupabaseAuth, make_verifier: Callable[..., Verifier]
) -> None:
    deadline = Deadline()
    impatient = make_verifier(fetch_timeout=FETCH_TIMEOUT, deadline=deadline)
    auth.hang()
    [result] = impatient.run(deadline.expired_once_fetching(auth, [impatient.inner.verify(auth.mint())]))
    assert isinstance(result, AuthUnavailableError)
    # The one deadline bounds the whole fetch, and lasts fetch_timeout.
    assert deadline.armed == [FETCH_TIMEOUT]
    assert auth.fetch_count == 1


def test_concurrent_verifications_during_a_hang_wait_for_one_timeout_not_one_each(
    auth: FakeSupabaseAuth, make_verifier: Callable[..., Verifier]
) -> None:
    deadline = Deadline()
    impatient = make_verifier(fetch_timeout=FETCH_TIMEOUT, deadline=deadline)
    auth.hang()
    verifications = [impatient.inner.verify(auth.mint()) for _ in range(20)]
    results = impatient.run(deadline.expired_once_fetching(auth, verifications))
    assert all(isinstance(r, AuthUnavailableError) for r in results)
    assert deadline.armed == [FETCH_TIMEOUT]
    assert auth.fetch_count == 1


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (500, b'{"error":"internal"}'),
        (404, b"not found"),
        (200, b"<html>Supabase is down for maintenance</html>"),
        (200, b""),
        (200, b"[]"),
        (200, b'{"keys": {}}'),
        (200, b'{"kes": []}'),
        (200, b"\xff\xfe\x00"),
        (200, json.dumps({"keys": [], "padding": "x" * 100_000}).encode()),
    ],
    ids=["500", "404", "html", "empty", "array", "keys-object", "no-keys", "binary", "huge"],
)
def test_a_jwks_answering_nonsense_makes_verification_unavailable(
    auth: FakeSupabaseAuth, verifier: Verifier, status: int, body: bytes
) -> None:
    auth.respond_with(status, body)
    verifier.is_unavailable_for(auth.mint())
    assert auth.fetch_count == 1


def test_a_jwks_redirect_is_not_followed(auth: FakeSupabaseAuth, make_verifier: Callable[..., Verifier]) -> None:
    # Even on a client built to follow redirects: keys come from the project URL and nowhere else.
    following = make_verifier(follow_redirects=True)
    auth.respond_with(302, headers={"Location": f"{auth.url}/attacker/jwks.json"})
    following.is_unavailable_for(auth.mint())
    assert "/attacker/jwks.json" not in auth.requested_paths


def test_an_empty_jwks_means_unknown_key_not_unavailable(auth: FakeSupabaseAuth, verifier: Verifier) -> None:
    # A project on legacy HS256 only publishes {"keys": []}: an answer, not an outage.
    auth.respond_with(200, b'{"keys": []}')
    assert verifier.rejects(auth.mint()) == "token signing key is not known"


def test_a_jwks_down_at_startup_is_retried_after_the_refetch_interval(
    auth: FakeSupabaseAuth, verifier: Verifier, clock: FakeClock
) -> None:
    auth.go_down()
    verifier.is_unavailable_for(auth.mint())
    auth.come_back_up()
    # Failures are rate-limited like any fetch, so an outage is not hammered with one request per call.
    verifier.is_unavailable_for(auth.mint())
    assert auth.fetch_count == 0
    clock.advance(REFETCH_INTERVAL + 1)
    verifier.accepts(auth.mint())
    assert auth.fetch_count == 1


def test_stale_keys_are_served_for_a_bounded_time_when_the_refetch_fails(
    auth: FakeSupabaseAuth, verifier: Verifier, clock: FakeClock
) -> None:
    verifier.accepts(auth.mint())
    auth.respond_with(500, b"down")
    clock.advance(TTL + 1)
    verifier.accepts(auth.mint())  # stale, but within the bound
    assert auth.fetch_count == 2
    clock.advance(REFETCH_INTERVAL / 2)
    verifier.accepts(auth.mint())
    assert auth.fetch_count == 2  # failed refetches are rate-limited too
    clock.advance(REFETCH_INTERVAL)
    verifier.accepts(auth.mint())
    assert auth.fetch_count == 3
    # An unknown kid while Supabase is unreachable: the key may exist, so 503 rather than a false 401.
    verifier.is_unavailable_for(auth.mint(kid=random_kid()))
    clock.advance(MAX_STALE)  # now past TTL + MAX_STALE since the last good fetch
    verifier.is_unavailable_for(auth.mint())


def test_verification_recovers_once_the_jwks_answers_again(
    auth: FakeSupabaseAuth, verifier: Verifier, clock: FakeClock
) -> None:
    verifier.accepts(auth.mint())
    auth.go_down()
    clock.advance(TTL + MAX_STALE + 1)
    verifier.is_unavailable_for(auth.mint())
    auth.come_back_up()
    clock.advance(REFETCH_INTERVAL + 1)
    verifier.accepts(auth.mint())


# --- hostile or odd JWKS entries ----------------------------------------------------------------------------------


def _p384(auth: FakeSupabaseAuth) -> SigningKey:
    return auth.new_key("ES256", curve=ec.SECP384R1())


def _rsa_1024(auth: FakeSupabaseAuth) -> SigningKey:
    return auth.new_key("RS256", bits=1024)


def _published_with(**jwk_overrides: Any) -> Callable[[FakeSupabaseAuth], SigningKey]:
    def publish(auth: FakeSupabaseAuth) -> SigningKey:
        key = auth.new_key("ES256", publish=False)
        auth.extra_jwks.append(key.public_jwk(**jwk_overrides))
        return key

    return publish


def _with_private_half(auth: FakeSupabaseAuth) -> SigningKey:
    from jwt.algorithms import ECAlgorithm

    key = auth.new_key("ES256", publish=False)
    jwk = ECAlgorithm.to_jwk(key.private_key, as_dict=True)
    auth.extra_jwks.append({**jwk, "kid": key.kid, "alg": "ES256", "use": "sig"})
    return key


UNUSABLE_KEYS: dict[str, Callable[[FakeSupabaseAuth], SigningKey]] = {
    "an EC key on P-384": _p384,
    "a 1024-bit RSA key": _rsa_1024,
    "an encryption key": _published_with(use="enc"),
    "a key not for verifying": _published_with(key_ops=["encrypt"]),
    "an EC key labelled RS256": _published_with(alg="RS256"),
    "an EC key labelled HS256": _published_with(alg="HS256"),
    "a key with its private half": _with_private_half,
}


@pytest.mark.parametrize("publish", UNUSABLE_KEYS.values(), ids=UNUSABLE_KEYS.keys())
def test_a_jwks_entry_that_is_no_proper_signing_key_is_never_used(
    auth: FakeSupabaseAuth, verifier: Verifier, publish: Callable[[FakeSupabaseAuth], SigningKey]
) -> None:
    key = publish(auth)
    assert any(entry.get("kid") == key.kid for entry in auth.jwks()["keys"])
    assert verifier.rejects(auth.mint(alg=key.alg, key=key)) == "token signing key is not known"


def test_a_symmetric_key_in_the_jwks_never_verifies_hs256(
    auth: FakeSupabaseAuth, make_verifier: Callable[..., Verifier]
) -> None:
    published_secret = b"published-in-the-jwks-so-anyone-can-read-it!!"
    auth.extra_jwks.append({"kty": "oct", "kid": "oct-1", "alg": "HS256", "k": b64(published_secret)})
    token = auth.mint(alg="HS256", key=published_secret, kid="oct-1")
    assert make_verifier().rejects(token) == "token algorithm is not accepted"
    assert make_verifier(jwt_secret=SECRET).rejects(token) == "token signature is invalid"
    oct_as_es256 = auth.mint(alg="ES256", key=auth.es256, kid="oct-1")
    assert make_verifier().rejects(oct_as_es256) == "token signing key is not known"


def test_junk_entries_in_the_jwks_do_not_spoil_the_good_keys(auth: FakeSupabaseAuth, verifier: Verifier) -> None:
    auth.extra_jwks.extend(
        [
            "a string",
            7,
            None,
            [],
            {},
            {"kty": "EC", "kid": 5},
            {"kty": "EC", "kid": "bad-point", "crv": "P-256", "x": "AAAA", "y": "AAAA"},
            {"kty": "RSA", "kid": "bad-rsa", "n": "", "e": ""},
            {"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": b64(b"\x00" * 32)},
            {"kty": "EC", "kid": auth.rs256.kid, "crv": "P-256"},  # a broken duplicate of a good kid
        ]
    )
    verifier.accepts(auth.mint(alg="ES256"))
    verifier.accepts(auth.mint(alg="RS256"))


# --- nothing leaks ------------------------------------------------------------------------------------------------


def test_refusals_never_echo_attacker_controlled_header_values(auth: FakeSupabaseAuth, with_secret: Verifier) -> None:
    marker = "ATTACKER-CONTROLLED-VALUE-1234567890"
    tokens = [
        auth.mint(header_overrides={"alg": marker}),
        auth.mint(kid=marker),
        auth.mint(header_overrides={"crit": [marker]}),
        auth.mint(header_overrides={"typ": marker, "cty": marker}, kid=random_kid()),
        auth.mint({"iss": marker}),
        auth.mint({"aud": marker}),
        auth.mint({"role": marker}),
        auth.mint({"exp": marker}),
        auth.mint({"sub": [marker]}),
        auth.mint(payload=marker.encode()),
    ]
    for token in tokens:
        assert marker not in with_secret.rejects(token)


def test_refusals_do_not_chain_library_errors_that_could_reach_a_traceback(
    auth: FakeSupabaseAuth, with_secret: Verifier
) -> None:
    bad = [auth.mint(alg="HS256", key=OTHER_SECRET), auth.mint(payload=b"not json"), "x.y.z"]
    for token in bad:
        with pytest.raises(InvalidTokenError) as caught:
            with_secret.accepts(token)
        assert caught.value.__cause__ is None and caught.value.__suppress_context__
        assert_safe_to_show("".join(traceback.format_exception(caught.value)), token)


def test_no_log_line_holds_a_token_or_a_secret(
    auth: FakeSupabaseAuth, with_secret: Verifier, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    tokens = [
        auth.mint(),
        auth.mint(alg="HS256", key=SECRET),
        auth.mint(alg="HS256", key=OTHER_SECRET),
        auth.mint(kid=random_kid()),
        auth.mint({"aud": "anon"}),
        "garbage",
    ]
    for token in tokens:
        with contextlib.suppress(AuthError):
            with_secret.accepts(token)
    auth.go_down()
    clock.advance(TTL + MAX_STALE + 1)
    late = auth.mint()
    with_secret.is_unavailable_for(late)
    assert caplog.records, "expected the verifier to log something, or this test proves nothing"
    for token in [*tokens, late]:
        assert_safe_to_show(caplog.text, token)


# --- configuration ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("secret", [None, SECRET])
def test_without_a_supabase_url_every_token_is_refused_as_not_configured(
    auth: FakeSupabaseAuth, make_verifier: Callable[..., Verifier], secret: str | None
) -> None:
    unconfigured = make_verifier(supabase_url=None, jwt_secret=secret)
    for token in (auth.mint(), auth.mint(alg="HS256", key=SECRET), "garbage", "a" * 100_000):
        assert unconfigured.rejects(token) == NOT_CONFIGURED
    assert auth.fetch_count == 0


def test_the_verifier_is_built_from_settings(auth: FakeSupabaseAuth, runner: asyncio.Runner, clock: FakeClock) -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        supabase_url=auth.url + "/",
        supabase_jwt_secret=SECRET,
        supabase_jwt_algorithms="ES256",
    )
    http = httpx.AsyncClient()
    try:
        built = Verifier(runner, TokenVerifier.from_settings(settings, http))
        assert built.accepts(auth.mint({"sub": USER_ID})).user_id == USER_ID
        assert built.accepts(auth.mint({"sub": USER_ID}, alg="HS256", key=SECRET)).user_id == USER_ID
        assert built.rejects(auth.mint(alg="RS256")) == "token algorithm is not accepted"
    finally:
        runner.run(http.aclose())


@pytest.mark.parametrize("algorithms", [["HS256"], ["none"], ["ES384"], ["ES256", "PS256"], ["es256"]])
def test_the_verifier_refuses_to_be_configured_with_other_algorithms(algorithms: list[str]) -> None:
    with pytest.raises(ValueError, match="unsupported token algorithm"):
        TokenVerifier(supabase_url="https://x.supabase.co", jwt_secret=None, algorithms=algorithms, http=None)  # type: ignore[arg-type]


def test_the_verifier_refuses_a_short_legacy_secret_without_echoing_it() -> None:
    short = "short-secret-value"
    with pytest.raises(ValueError, match="shorter than 32 bytes") as caught:
        TokenVerifier(supabase_url="https://x.supabase.co", jwt_secret=short, algorithms=[], http=None)  # type: ignore[arg-type]
    assert short not in str(caught.value)


# --- the principal ------------------------------------------------------------------------------------------------


def test_a_principal_is_frozen_and_renders_as_a_dict() -> None:
    principal = Principal(user_id=USER_ID, email=None, role="authenticated")
    assert principal.as_dict() == {"user_id": USER_ID, "email": None, "role": "authenticated"}
    with pytest.raises(FrozenInstanceError):
        principal.user_id = "someone-else"  # type: ignore[misc]


def test_the_development_principal_is_a_fixed_authenticated_user() -> None:
    assert DEVELOPMENT_PRINCIPAL.as_dict() == {
        "user_id": "00000000-0000-4000-8000-000000000001",
        "email": "dev@doki.local",
        "role": "authenticated",
    }
    assert uuid.UUID(DEVELOPMENT_PRINCIPAL.user_id).version == 4
