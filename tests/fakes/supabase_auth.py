"""A local stand-in for Supabase Auth: its JWKS endpoint over real HTTP, and tokens shaped like its own.

Why a real server and not a mocked client: what the verifier must get right under attack or outage (timeouts,
refused connections, one fetch shared by concurrent requests, redirects it must not follow) lives in the HTTP
stack, and a mock would only test the mock. The keys are real too (EC P-256, RSA 2048), so a signature that
verifies here verifies for the same reasons it would against Supabase.

    with FakeSupabaseAuth() as auth:
        token = auth.mint({"email": "ada@example.com"})
        ...  # verify against auth.url; auth.fetch_count says how often the JWKS was asked for

It also speaks the GoTrue calls Doki makes for users: `POST /auth/v1/signup`, `POST /auth/v1/token` with
`grant_type=password` or `grant_type=id_token` (Google ID tokens, verified against the key `trust_google` names,
nonce included), and `POST /auth/v1/logout`; sessions carry access tokens minted here, which the verifier accepts.
Errors come in GoTrue's shape, `{"code", "error_code", "msg"}` (its API version before 2024-01-01, which is what a
client that sends no `X-Supabase-Api-Version` gets).

Its rules are GoTrue's, each citing supabase/auth's source (commit bc32168; `internal/api/...`), so that a backend
that passes here handles what the real service answers: email confirmation is on unless turned off (`confirm_email`,
as a new hosted project), and a repeated sign-up with it on is a 200 with an obfuscated user, not an error; a weak
password carries `weak_password.reasons`, and password lengths are Go's, in bytes; an email must pass GoTrue's
`validateEmail` (255 bytes, checkmail's format) and is stored and found lower-cased; `data` is stored as
`user_metadata` (`{}` when none was sent); a banned user (`ban`) cannot sign in, whatever the password; a logout with a
token GoTrue cannot verify is a 403 `bad_jwt`. `confirm` stands for the user opening the confirmation link.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from tests.helpers import SECRETS

JWKS_PATH = "/auth/v1/.well-known/jwks.json"
PROJECT_REF = "abcdefghijklmnopqrst"  # Supabase project refs are 20 lowercase letters

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


@dataclass(frozen=True)
class SigningKey:
    """One key pair, as Supabase holds it: the private half signs, the public half is published."""

    kid: str
    alg: str  # "ES256" or "RS256"
    private_key: PrivateKey

    @classmethod
    def generate(
        cls,
        alg: str = "ES256",
        *,
        kid: str | None = None,
        curve: ec.EllipticCurve | None = None,
        bits: int = 2048,
    ) -> SigningKey:
        private_key: PrivateKey
        if alg == "ES256":
            private_key = ec.generate_private_key(curve or ec.SECP256R1())
        elif alg == "RS256":
            private_key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        else:
            raise ValueError(f"no key type for {alg}")
        return cls(kid=kid or str(uuid.uuid4()), alg=alg, private_key=private_key)

    def public_jwk(self, **overrides: Any) -> dict[str, Any]:
        """The JWKS entry Supabase publishes for this key (kty, crv/n/e, kid, alg, use, key_ops)."""
        public = self.private_key.public_key()
        algorithm = ECAlgorithm if isinstance(public, ec.EllipticCurvePublicKey) else RSAAlgorithm
        jwk: dict[str, Any] = algorithm.to_jwk(public, as_dict=True)
        jwk.update({"kid": self.kid, "alg": self.alg, "use": "sig", "key_ops": ["verify"], "ext": True})
        jwk.update(overrides)
        return {k: v for k, v in jwk.items() if v is not None}

    def public_pem(self) -> bytes:
        """The public key as PEM: what a key-confusion attacker uses as an HMAC secret."""
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


@dataclass
class AuthUser:
    """A user of the fake project."""

    id: str
    email: str
    password: str | None
    confirmed: bool
    identities: set[tuple[str, str]] = field(default_factory=set)  # (provider, provider's subject)
    banned: bool = False  # `banned_until` in the future (models/user.go IsBanned); see FakeSupabaseAuth.ban
    # `raw_user_meta_data`: what sign-up sent as `data` (internal/models/user.go:65, `json:"user_metadata"`).
    user_metadata: dict[str, Any] = field(default_factory=dict)
    confirmation_sent_at: float | None = None


@dataclass
class _GoogleTrust:
    issuer: str
    public_key: Any
    client_id: str


@dataclass
class _Behaviour:
    """How the JWKS endpoint answers; swapped whole under the lock so a request sees one consistent state."""

    hang_seconds: float = 0.0  # wait this long (or until released) before answering
    status: int = 200
    body: bytes | None = None  # None: the published keys as JSON
    headers: dict[str, str] = field(default_factory=dict)


class FakeSupabaseAuth:
    """Supabase Auth's JWKS endpoint on 127.0.0.1 (ephemeral port, background thread) plus a token minter.

    Starts with one published ES256 and one published RS256 key. Stoppable, able to rotate keys, go down
    (connection refused), hang, or answer anything at all.
    """

    def __init__(
        self, *, clock: Callable[[], float] = time.time, project_ref: str = PROJECT_REF, confirm_email: bool = True
    ) -> None:
        self.clock = clock
        self.project_ref = project_ref
        self.keys: dict[str, SigningKey] = {}  # every key this project ever made, published or not
        self._published: list[str] = []
        self.extra_jwks: list[Any] = []  # raw entries appended to the JWKS, for hostile or odd keys
        self._lock = threading.Lock()
        self._behaviour = _Behaviour()
        self._release = threading.Event()
        # Set when a JWKS request reaches the server: a test waits for it instead of guessing how long that takes.
        self.fetch_arrived = threading.Event()
        self._requests: list[str] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._holder: socket.socket | None = None  # the port, held while the server is down
        self.port = 0
        self.es256 = self.new_key("ES256")
        self.rs256 = self.new_key("RS256")
        # GoTrue
        self.users: dict[str, AuthUser] = {}  # by email, lower-cased as GoTrue stores it (models/user.go NewUser)
        # Sign-ups wait for the confirmation link: GOTRUE_MAILER_AUTOCONFIRM is false unless set (conf/configuration.go,
        # `Autoconfirm`, no default), and a new hosted project has "Confirm email" on. False: Autoconfirm, as the
        # Supabase CLI's local stack (`enable_confirmations = false`) and projects that turned confirmations off.
        self.confirm_email = confirm_email
        self.password_min_length = 6  # GOTRUE_PASSWORD_MIN_LENGTH, Supabase's default
        self.email_max_frequency = 60.0  # GOTRUE_SMTP_MAX_FREQUENCY: one confirmation email a minute per user
        self.allow_signups = True  # Auth > "Allow new users to sign up"
        self.apikeys: set[str] | None = None  # the keys the gateway accepts as `apikey`; None: any non-empty
        self.apikeys_seen: list[str] = []
        self.sessions: dict[str, str] = {}  # session id (the access token's `session_id`) -> user id
        self.signed_out: list[str] = []  # user ids whose sessions `logout` ended
        self.auth_failure: tuple[int, dict[str, Any]] | None = None  # every GoTrue call answers this
        self._google: _GoogleTrust | None = None
        self.rest_upstream: str | None = None

    # --- lifecycle ------------------------------------------------------------------------------------------

    def start(self) -> FakeSupabaseAuth:
        self._serve(port=0)
        return self

    def stop(self) -> None:
        self._release.set()  # free any handler that is hanging, so its thread ends
        self._shutdown()
        self._let_go()

    def __enter__(self) -> FakeSupabaseAuth:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def go_down(self) -> None:
        """Stop listening: connections are refused until `come_back_up`, which listens on the same port again. The
        port stays held meanwhile by a socket bound to it that does not listen (so connections are refused), with
        SO_REUSEADDR so the server can bind beside it when it comes back: nothing else can take the port."""
        self._release.set()
        self._shutdown()
        self._holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._holder.bind(("127.0.0.1", self.port))

    def come_back_up(self) -> None:
        self._serve(port=self.port)
        self._let_go()

    def _let_go(self) -> None:
        if self._holder is not None:
            self._holder.close()
            self._holder = None

    @property
    def url(self) -> str:
        """The project URL, as in SUPABASE_URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def issuer(self) -> str:
        return f"{self.url}/auth/v1"

    # --- keys -----------------------------------------------------------------------------------------------

    def new_key(self, alg: str = "ES256", *, publish: bool = True, **options: Any) -> SigningKey:
        key = SigningKey.generate(alg, **options)
        with self._lock:
            self.keys[key.kid] = key
            if publish:
                self._published.append(key.kid)
        return key

    def publish(self, kid: str) -> None:
        with self._lock:
            if kid not in self._published:
                self._published.append(kid)

    def unpublish(self, kid: str) -> None:
        with self._lock:
            self._published.remove(kid)

    def rotate(self, alg: str = "ES256") -> SigningKey:
        """A new published key for `alg` that becomes the default signer; older keys stay published."""
        key = self.new_key(alg)
        if alg == "ES256":
            self.es256 = key
        else:
            self.rs256 = key
        return key

    @property
    def published_kids(self) -> list[str]:
        with self._lock:
            return list(self._published)

    def jwks(self) -> dict[str, Any]:
        with self._lock:
            entries = [self.keys[kid].public_jwk() for kid in self._published]
            return {"keys": [*entries, *self.extra_jwks]}

    # --- behaviour ------------------------------------------------------------------------------------------

    def hang(self, seconds: float = 10.0) -> None:
        """Every JWKS request waits `seconds` (or until released) before answering normally; `fetch_arrived` tells
        when the next one has arrived."""
        with self._lock:
            self._behaviour = _Behaviour(hang_seconds=seconds)
            self._release = threading.Event()
            self.fetch_arrived.clear()

    def respond_with(self, status: int, body: bytes = b"", headers: Mapping[str, str] | None = None) -> None:
        """Every JWKS request gets exactly this answer."""
        with self._lock:
            self._behaviour = _Behaviour(status=status, body=body, headers=dict(headers or {}))

    def behave_normally(self) -> None:
        with self._lock:
            self._release.set()
            self._behaviour = _Behaviour()

    @property
    def fetch_count(self) -> int:
        """How many requests reached the JWKS endpoint (refused connections never reach it)."""
        with self._lock:
            return self._requests.count(JWKS_PATH)

    @property
    def requested_paths(self) -> list[str]:
        with self._lock:
            return list(self._requests)

    # --- tokens ---------------------------------------------------------------------------------------------

    def claims(self, overrides: Mapping[str, Any] | None = None, drop: Iterable[str] = ()) -> dict[str, Any]:
        """The claims of a Supabase access token for a password sign-in, issued now, valid for an hour."""
        now = int(self.clock())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": str(uuid.uuid4()),
            "aud": "authenticated",
            "exp": now + 3600,
            "iat": now,
            "email": "ada@example.com",
            "phone": "",
            "app_metadata": {"provider": "email", "providers": ["email"]},
            "user_metadata": {"email_verified": True},
            "role": "authenticated",
            "aal": "aal1",
            "amr": [{"method": "password", "timestamp": now}],
            "session_id": str(uuid.uuid4()),
            "is_anonymous": False,
        }
        claims.update(overrides or {})
        for name in drop:
            claims.pop(name, None)
        return claims

    def mint(
        self,
        claims_overrides: Mapping[str, Any] | None = None,
        *,
        drop: Iterable[str] = (),
        alg: str = "ES256",
        kid: str | None = "",
        key: SigningKey | PrivateKey | bytes | str | None = None,
        header_overrides: Mapping[str, Any] | None = None,
        payload: bytes | None = None,
    ) -> str:
        """A compact JWS over `claims(claims_overrides, drop)` (or the raw `payload` bytes).

        `kid`: "" means the signing key's own kid, None leaves it out. `key`: a SigningKey or private key for
        ES256/RS256, a secret (bytes/str) for HS256 — anything at all, so tests can sign with the wrong thing.
        `header_overrides` replace header members (a None value removes one), after `alg` chose the signing
        method. `alg: none` gives an empty signature. Built by hand, not with PyJWT's encoder, which refuses to make
        the hostile tokens the tests need.
        """
        if key is None and alg in ("ES256", "RS256"):
            key = self.es256 if alg == "ES256" else self.rs256
        if kid == "":
            kid = key.kid if isinstance(key, SigningKey) else None
        header: dict[str, Any] = {"alg": alg, "typ": "JWT"}
        if kid is not None:
            header["kid"] = kid
        header.update(header_overrides or {})
        header = {name: value for name, value in header.items() if value is not None}  # None removes
        body = payload if payload is not None else _json(self.claims(claims_overrides, drop))
        signing_input = f"{_b64(_json(header))}.{_b64(body)}".encode()
        token = f"{signing_input.decode()}.{_b64(sign(signing_input, alg, key))}"
        return SECRETS.register("a token FakeSupabaseAuth minted", token)

    def mint_legacy_api_key(self, role: str, secret: str) -> str:
        """A legacy anon / service_role API key: an HS256 JWT with no sub, no aud, and iss "supabase"."""
        now = int(self.clock())
        claims = {
            "iss": "supabase",
            "ref": self.project_ref,
            "role": role,
            "iat": now - 86400,
            "exp": now + 10**8,
        }
        return self.mint(alg="HS256", key=secret, kid=None, payload=_json(claims))

    # --- GoTrue ---------------------------------------------------------------------------------------------

    def trust_google(self, issuer: str, jwk: Mapping[str, Any], client_id: str) -> None:
        """Enable the Google provider: accept ID tokens signed with `jwk` for `client_id`, as Supabase does."""
        self._google = _GoogleTrust(issuer, RSAAlgorithm.from_jwk(dict(jwk)), client_id)

    def _gotrue(self, path: str, query: str, headers: Mapping[str, str], body: bytes) -> tuple[int, bytes]:
        apikey = headers.get("apikey", "")
        self.apikeys_seen.append(apikey)
        if not apikey or (self.apikeys is not None and apikey not in self.apikeys):
            return 401, _json({"message": "Invalid API key", "hint": "Double check your Supabase API key."})
        if self.auth_failure is not None:
            return self.auth_failure[0], _json(self.auth_failure[1])
        try:
            payload = json.loads(body or b"null")
        except ValueError:
            return _gotrue_error(400, "bad_json", "Could not parse request body as JSON")
        grant_type = parse_qs(query).get("grant_type", [""])[0]
        if path == "/auth/v1/signup":
            return self._signup(payload)
        if path == "/auth/v1/token" and grant_type == "password":
            return self._password(payload)
        if path == "/auth/v1/token" and grant_type == "id_token":
            return self._id_token(payload)
        if path == "/auth/v1/logout":
            return self._logout(headers.get("Authorization", ""))
        return 404, _json({"code": 404, "error_code": "not_found", "msg": "Not Found"})

    def add_user(self, email: str, password: str | None = None, *, confirmed: bool = True) -> AuthUser:
        """A user as the dashboard or an earlier sign-up made it; the email lower-cased as GoTrue stores it
        (models/user.go NewUser, `strings.ToLower(email)`)."""
        email = email.lower()
        user = AuthUser(id=str(uuid.uuid4()), email=email, password=password, confirmed=confirmed)
        SECRETS.register(f"the password of {email}", password or "")
        with self._lock:
            self.users[email] = user
        return user

    def ban(self, email: str, *, banned: bool = True) -> AuthUser:
        """Ban (or, with `banned=False`, unban) the user, as the dashboard's "Ban user" does through the admin API
        (internal/api/admin.go adminUserUpdate, `ban_duration` -> `banned_until`); this ban does not run out."""
        with self._lock:
            user = self.users[email.lower()]
            user.banned = banned
        return user

    def confirm(self, email: str) -> AuthUser:
        """The user opens the confirmation link Supabase emailed (internal/api/verify.go signupVerify, user.Confirm)."""
        with self._lock:
            user = self.users[email.lower()]
            user.confirmed = True
        return user

    def user_by_id(self, user_id: str) -> AuthUser | None:
        return next((user for user in self.users.values() if user.id == user_id), None)

    def _signup(self, payload: Any) -> tuple[int, bytes]:
        """`Signup` (internal/api/signup.go:110-345), email provider."""
        if not self.allow_signups:  # signup.go:115-117
            return _gotrue_error(422, "signup_disabled", "Signups not allowed for this instance")
        # retrieveRequestParams (helpers.go:84-97) into SignupParams (signup.go:20-30).
        params = _request_params(payload, email=str, password=str, data=dict)
        if params is None:
            return _gotrue_error(400, "bad_json", "Could not parse request body as JSON")
        email, password = str(params.get("email", "")), str(params.get("password", ""))
        # ConfigureDefaults (signup.go:59-72): no `data` is an empty map, never nil.
        data: dict[str, Any] = dict(params.get("data") or {})
        # validateSignupParams (signup.go:33-41): a password is required, then checkPasswordStrength (password.go).
        if not password:
            return _gotrue_error(400, "validation_failed", "Signup requires a valid password")
        # password.go:31-44: Go's `len` of a string counts its UTF-8 bytes, in both checks.
        if len(_go_bytes(password)) > 72:  # MaxPasswordLength, bcrypt's limit
            return _gotrue_error(400, "validation_failed", "Password cannot be longer than 72 characters")
        if len(_go_bytes(password)) < self.password_min_length:
            # rendered by errors.go:129-146 with the reasons beside the message.
            return _weak_password([f"Password should be at least {self.password_min_length} characters."], ["length"])
        if not email:
            # No email (nor phone): no provider (signup.go:59-63), so "only available with" the enabled ones
            # (:158-170); the phone provider is off unless enabled.
            return _gotrue_error(400, "validation_failed", "Sign up only available with email provider")
        refusal = _email_refusal(email)
        if refusal is not None:
            return _gotrue_error(400, "validation_failed", refusal)
        email = email.lower()  # validateEmail's answer (mail.go:720)
        user = self.users.get(email)
        if user is not None and user.confirmed:
            # signup.go:193-196 (UserExistsError) and :280-301. With Autoconfirm (confirmations off) GoTrue says so;
            # with confirmations on it answers as for a new sign-up, with a user that is not the real one
            # (sanitizeUser, :349-378), so that sign-up does not tell who has an account (supabase/auth#273, #748).
            if not self.confirm_email:
                return _gotrue_error(422, "user_already_exists", "User already registered")
            return 200, _json(self._obfuscated_user(email, data))
        if user is None:
            user = AuthUser(id=str(uuid.uuid4()), email=email, password=password, confirmed=False)
            user.user_metadata = dict(data)  # params.ToUserModel: Data -> UserMetaData (signup.go:85-106)
            self.users[email] = user
        # An existing unconfirmed user is not updated: "we can't be sure of their claimed identity" (:197).
        user.identities.add(("email", user.id))
        if not self.confirm_email:
            user.confirmed = True  # signup.go:228-237, user.Confirm; then a session is issued (:305-332)
            return 200, _json(self._session(user, "email"))
        # sendConfirmation (mail.go:318-327): one email per SMTP_MAX_FREQUENCY, else 429.
        now = self.clock()
        if user.confirmation_sent_at is not None and now < user.confirmation_sent_at + self.email_max_frequency:
            wait = int(user.confirmation_sent_at + self.email_max_frequency - now) + 1
            message = f"For security purposes, you can only request this after {wait} seconds."
            return _gotrue_error(429, "over_email_send_rate_limit", message)
        user.confirmation_sent_at = now
        return 200, _json(self._user_json(user, "email"))  # signup.go:344

    def _obfuscated_user(self, email: str, data: dict[str, Any]) -> dict[str, Any]:
        """`sanitizeUser` (signup.go:349-378): a new random id, no role, no identities, `user_metadata` = the request's
        `data` (`{}` when none was sent: ConfigureDefaults, :59-72, made it an empty map), app_metadata of the email
        provider, confirmation just sent."""
        now = _timestamp(self.clock())
        return {
            "id": str(uuid.uuid4()),
            "aud": "authenticated",
            "role": "",
            "email": email,
            "phone": "",
            "confirmation_sent_at": now,
            "app_metadata": {"provider": "email", "providers": ["email"]},
            "user_metadata": data,
            "identities": [],
            "created_at": now,
            "updated_at": now,
            "is_anonymous": False,
        }

    def _logout(self, authorization: str) -> tuple[int, bytes]:
        """`Logout` (internal/api/logout.go) behind `requireAuthentication` (internal/api/auth.go:20-42)."""
        # extractBearerToken (auth.go:73-81), bearerRegexp `(?i)^bearer (\S+$)` (api.go:38).
        match = re.fullmatch(r"(?i)bearer (\S+)", authorization)
        if match is None:
            return _gotrue_error(401, "no_authorization", "This endpoint requires a valid Bearer token")
        # parseJWTClaims (auth.go:83-116): signed by a key this project holds, unexpired; else 403 bad_jwt.
        try:
            claims = self._verify(match.group(1))
        except jwt.PyJWTError as error:
            return _gotrue_error(
                403, "bad_jwt", f"invalid JWT: unable to parse or verify signature, {type(error).__name__}"
            )
        # maybeLoadUserOrSession (auth.go:118-164).
        subject = claims.get("sub")
        if not subject:
            return _gotrue_error(403, "bad_jwt", "invalid claim: missing sub claim")
        user = self.user_by_id(str(subject))
        if user is None:
            return _gotrue_error(403, "user_not_found", "User from sub claim in JWT does not exist")
        session_id = claims.get("session_id")
        if session_id and session_id not in self.sessions:
            return _gotrue_error(403, "session_not_found", "Session from session_id claim in JWT does not exist")
        if user.banned:  # auth.go:36-39
            return _gotrue_error(403, "user_banned", "User is banned")
        # logout.go: scope "global" by default, every session of the user ends; 204.
        self.signed_out.append(user.id)
        self.sessions = {s: u for s, u in self.sessions.items() if u != user.id}
        return 204, b""

    def _verify(self, token: str) -> dict[str, Any]:
        """The claims of an access token signed by one of this project's published keys (GoTrue's JWT keys)."""
        header = jwt.get_unverified_header(token)
        kid = header.get("kid")
        key = self.keys.get(kid) if kid in self._published else None  # the caller holds the lock
        if key is None or header.get("alg") != key.alg:
            raise jwt.InvalidKeyError(f"unrecognized JWT kid {kid} for algorithm {header.get('alg')}")
        decoded: dict[str, Any] = jwt.decode(
            token,
            key.private_key.public_key(),
            algorithms=[key.alg],
            options={"verify_aud": False},  # GoTrue's parser checks no audience (auth.go:87)
        )
        return decoded

    def _password(self, payload: Any) -> tuple[int, bytes]:
        """`ResourceOwnerPasswordGrant` (internal/api/token.go:70-200), by email."""
        params = _request_params(payload, email=str, phone=str, password=str)  # PasswordGrantParams (:24-28)
        if params is None:
            return _gotrue_error(400, "bad_json", "Could not parse request body as JSON")
        email, password = str(params.get("email", "")), str(params.get("password", ""))
        if not email:  # :105-107 (without a phone either)
            return _gotrue_error(400, "validation_failed", "missing email or phone")
        # FindUserByEmailAndAudience (models/user.go:699-701): `LOWER(email) = ?` with the email lower-cased.
        user = self.users.get(email.lower())
        if user is None or not user.password:  # :109-118, not found or no password: the same answer
            return _gotrue_error(400, "invalid_credentials", "Invalid login credentials")
        if user.banned:  # :120-122, before the password is even checked
            return _gotrue_error(400, "user_banned", "User is banned")
        # As bytes: compare_digest refuses non-ASCII str, and GoTrue takes any password.
        if not hmac.compare_digest(_go_bytes(user.password), _go_bytes(password)):  # :124-179
            return _gotrue_error(400, "invalid_credentials", "Invalid login credentials")
        if not user.confirmed:  # :181-182
            return _gotrue_error(400, "email_not_confirmed", "Email not confirmed")
        return 200, _json(self._session(user, "email"))

    def _id_token(self, payload: Any) -> tuple[int, bytes]:
        if payload.get("provider") != "google" or self._google is None:
            return _gotrue_error(
                400, "provider_disabled", 'Provider (issuer "https://accounts.google.com") is not enabled'
            )
        trust = self._google
        try:
            claims = jwt.decode(
                str(payload.get("id_token")),
                trust.public_key,
                algorithms=["RS256"],
                audience=trust.client_id,
                issuer=trust.issuer,
                leeway=30,
            )
        except jwt.PyJWTError as error:
            return _gotrue_error(400, "bad_jwt", f"Bad ID token: {type(error).__name__}")
        nonce, hashed = payload.get("nonce"), claims.get("nonce")
        if bool(nonce) != bool(hashed):
            return _gotrue_error(400, "bad_jwt", "Passed nonce and nonce in id_token should either both exist or not.")
        if nonce and hashlib.sha256(str(nonce).encode()).hexdigest() != hashed:
            return _gotrue_error(400, "bad_jwt", "Nonces mismatch")
        identity = ("google", str(claims["sub"]))
        user = next((u for u in self.users.values() if identity in u.identities), None)
        if user is None:
            email = str(claims.get("email", "")).lower()  # stored lower-cased (models/user.go NewUser)
            # A verified Google email joins the account that already has it, as GoTrue links identities.
            user = self.users.get(email) if claims.get("email_verified") else None
            if user is None:
                if not self.allow_signups:
                    return _gotrue_error(422, "signup_disabled", "Signups not allowed for this instance")
                user = AuthUser(id=str(uuid.uuid4()), email=email, password=None, confirmed=True)
                self.users[email] = user
            user.identities.add(identity)
        if user.banned:  # createAccountFromExternalIdentity (external.go:405-407): a 403, unlike the password grant
            return _gotrue_error(403, "user_banned", "User is banned")
        return 200, _json(self._session(user, "google"))

    def _session(self, user: AuthUser, provider: str) -> dict[str, Any]:
        """An `AccessTokenResponse` (internal/api/token.go): tokens, and the user as `_user_json`."""
        now = int(self.clock())
        session_id = str(uuid.uuid4())
        access_token = self.mint(
            {
                "sub": user.id,
                "email": user.email,
                "app_metadata": {"provider": provider, "providers": sorted({p for p, _ in user.identities})},
                "user_metadata": dict(user.user_metadata),
                "amr": [{"method": "oauth" if provider != "email" else "password", "timestamp": now}],
                "session_id": session_id,
            }
        )
        self.sessions[session_id] = user.id
        return {
            "access_token": access_token,
            "token_type": "bearer",
            "expires_in": 3600,
            "expires_at": now + 3600,
            "refresh_token": SECRETS.register("a Supabase refresh token", secrets.token_urlsafe(9)),
            "user": self._user_json(user, provider),
        }

    def _user_json(self, user: AuthUser, provider: str) -> dict[str, Any]:
        """The user as GoTrue writes it (internal/models/user.go:24-77), the fields Doki may read."""
        body: dict[str, Any] = {
            "id": user.id,
            "aud": "authenticated",
            "role": "authenticated",
            "email": user.email,
            "app_metadata": {"provider": provider, "providers": sorted({p for p, _ in user.identities})},
            "user_metadata": dict(user.user_metadata),
            "identities": [{"provider": p, "id": sub} for p, sub in sorted(user.identities)],
            "is_anonymous": False,
        }
        if user.confirmation_sent_at is not None:
            body["confirmation_sent_at"] = _timestamp(user.confirmation_sent_at)
        return body

    # --- the server -----------------------------------------------------------------------------------------

    def _serve(self, port: int) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            # HTTP/1.0: one request per connection, so "down" really refuses the next request (no kept-alive
            # connection to a dead server).
            protocol_version = "HTTP/1.0"

            def do_GET(self) -> None:
                fake._answer(self)

            def do_POST(self) -> None:
                fake._answer_post(self)

            def do_PATCH(self) -> None:
                fake._proxy_rest(self, "PATCH")

            def do_DELETE(self) -> None:
                fake._proxy_rest(self, "DELETE")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that gave up (timeout test) is expected, not an error

        self._server = Server(("127.0.0.1", port), Handler)
        self.port = self._server.server_address[1]
        # A short poll interval: `shutdown` waits up to one interval, and tests stop servers a lot.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.01,), name="fake-supabase-auth", daemon=True
        )
        self._thread.start()

    def _shutdown(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        if self._proxy_rest(handler, "GET"):
            return
        path = handler.path.split("?", 1)[0]
        with self._lock:
            self._requests.append(path)
            behaviour, release = self._behaviour, self._release
        if path != JWKS_PATH:
            self._send(handler, 404, b'{"error":"not found"}', {})
            return
        self.fetch_arrived.set()
        if behaviour.hang_seconds:
            release.wait(behaviour.hang_seconds)
        body = behaviour.body if behaviour.body is not None else _json(self.jwks())
        self._send(handler, behaviour.status, body, behaviour.headers)

    def serve_rest_from(self, postgrest_url: str) -> None:
        """Pass `/rest/v1/...` on to a FakePostgrest: one project URL serves Auth and REST, as Supabase's does."""
        self.rest_upstream = postgrest_url

    def _proxy_rest(self, handler: BaseHTTPRequestHandler, method: str) -> bool:
        if self.rest_upstream is None or not handler.path.startswith("/rest/v1/"):
            if method in ("PATCH", "DELETE"):
                self._send(handler, 404, b'{"error":"not found"}', {})
            return False
        body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        skip = {"host", "content-length", "connection", "accept-encoding"}
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in skip}
        response = httpx.request(method, self.rest_upstream + handler.path, headers=headers, content=body)
        passed = {k: v for k, v in response.headers.items() if k.lower() in ("content-range", "preference-applied")}
        self._send(handler, response.status_code, response.content, passed)
        return True

    def _answer_post(self, handler: BaseHTTPRequestHandler) -> None:
        if self._proxy_rest(handler, "POST"):
            return
        split = urlsplit(handler.path)
        body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        with self._lock:
            self._requests.append(split.path)
            status, payload = self._gotrue(split.path, split.query, handler.headers, body)
        self._send(handler, status, payload, {})

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, status: int, body: bytes, headers: Mapping[str, str]) -> None:
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(body)
        except OSError:
            pass  # the client hung up first


def sign(signing_input: bytes, alg: str, key: Any) -> bytes:
    """The JWS signature of `signing_input` with `key` under `alg`, whatever the combination."""
    if alg.lower() == "none":
        return b""
    if alg == "HS256":
        secret = key if isinstance(key, bytes) else str(key).encode()
        return hmac.new(secret, signing_input, hashlib.sha256).digest()
    private_key = key.private_key if isinstance(key, SigningKey) else key
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        return ECAlgorithm(ECAlgorithm.SHA256).sign(signing_input, private_key)
    if isinstance(private_key, rsa.RSAPrivateKey):
        return RSAAlgorithm(RSAAlgorithm.SHA256).sign(signing_input, private_key)
    raise TypeError(f"cannot sign {alg} with {type(key).__name__}")


def _gotrue_error(status: int, error_code: str, msg: str) -> tuple[int, bytes]:
    return status, _json({"code": status, "error_code": error_code, "msg": msg})


def _weak_password(messages: list[str], reasons: list[str]) -> tuple[int, bytes]:
    """A `WeakPasswordError` as errors.go:129-146 renders it: GoTrue's error with `weak_password.reasons`."""
    body = {"code": 422, "error_code": "weak_password", "msg": " ".join(messages)}
    return 422, _json({**body, "weak_password": {"reasons": reasons}})


def _timestamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def _go_bytes(text: str) -> bytes:
    """`text` as the bytes of the Go string GoTrue holds: encoding/json decodes an unpaired UTF-16 surrogate escape
    as U+FFFD (its Unmarshal documentation), so that is what `len` counts and bcrypt hashes."""
    return re.sub("[\ud800-\udfff]", "\ufffd", text).encode("utf-8")


def _request_params(payload: Any, **fields: type) -> dict[str, Any] | None:
    """The members of a JSON request body that GoTrue's struct has, as `json.Unmarshal` fills it
    (`retrieveRequestParams`, internal/api/helpers.go:84-97); None when Unmarshal fails (a body that is not an
    object, a member of another type), which GoTrue answers with 400 `bad_json`. `null` leaves a member unset."""
    if payload is None:
        return {}
    if not isinstance(payload, dict):
        return None
    params: dict[str, Any] = {}
    for name, kind in fields.items():
        value = payload.get(name)
        if value is None:
            continue
        if not isinstance(value, kind):
            return None
        params[name] = value
    return params


# badoux/checkmail's ValidateFormat at the version GoTrue pins (go.mod: v0.0.0-20170203135005-d0a759655d62): a local
# part of letters, digits and the specials below, then `@` and dot-separated labels of letters, digits and inner
# hyphens, 1 to 63 characters each. ASCII only, anchored at both ends.
_EMAIL_LOCAL_PART = r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+"
_EMAIL_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_EMAIL_FORMAT = re.compile(rf"{_EMAIL_LOCAL_PART}@{_EMAIL_LABEL}(?:\.{_EMAIL_LABEL})*")


def _email_refusal(email: str) -> str | None:
    """What GoTrue's `validateEmail` (internal/api/mail.go:709-721) says of a non-empty email, or None when it takes
    it: at most 255 bytes (Go's `len`), then checkmail's format."""
    if len(_go_bytes(email)) > 255:
        return "An email address is too long"
    if _EMAIL_FORMAT.fullmatch(email) is None:
        return "Unable to validate email address: invalid format"  # "%s" of checkmail.ErrBadFormat
    return None


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
