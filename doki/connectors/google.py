"""The Google account connector: OAuth 2.0 with PKCE, and each user's Google tokens, encrypted and refreshed.

- The authorization request asks for the scopes Doki needs (openid, email, profile, drive.readonly,
  spreadsheets.readonly) with offline access, PKCE (S256) and a nonce; the redirect URI is exactly the configured
  `GOOGLE_REDIRECT_URI`, never one built from a request.
- Google lets users untick scopes on the consent screen. The scopes it actually granted are checked: a partial
  grant is stored, marked incomplete with the missing scopes, so the API can say what to reconnect.
- Google returns a refresh token only on some consents. A reconnect without one keeps the stored refresh token,
  but only for the same Google account: another account's token must never be kept under this one.
- Access tokens are refreshed shortly before they expire, and once more when Google refuses one. A refresh
  answered `invalid_grant` (revoked, expired, password changed) deletes the stored tokens: they can never work
  again, and the API answers "reconnect Google".
- Tokens are stored only encrypted (`CredentialCipher`, bound to the user) under provider "google"; the store
  row's metadata holds what status needs without decrypting (status, email, scopes).
- Connecting Google to a signed-in user also keeps the round trip server-side (provider "google_connect"), its
  state naming the user. A callback that comes back without the browser's session cookie (a frontend on another
  site, whose cookies browsers keep apart) is still completed, but not stored: the grant is parked there, and the
  browser gets a one-time connect code for its frontend to confirm with the user's own bearer token. Whoever
  started the round trip cannot finish it without the code, nor can the browser that has the code as another user:
  no one links someone else's Google account (account-linking CSRF).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import re
import secrets
import time
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from urllib.parse import quote, urlencode

from doki.connectors import call_store
from doki.connectors.errors import (
    CONNECT_GOOGLE,
    ConnectorError,
    google_error,
    google_not_connected,
    google_reconnect_required,
    google_unavailable,
)
from doki.crypto import CredentialDecryptError

if TYPE_CHECKING:
    from doki.connectors.http import Upstream
    from doki.crypto import CredentialCipher
    from doki.settings import Settings
    from doki.storage import CredentialStore, StoredCredential

logger = logging.getLogger(__name__)

PROVIDER = "google"
# A connect round trip kept server-side, then the grant its callback parked until the user confirms it.
PENDING_PROVIDER = "google_connect"
CONNECT_STATE_PREFIX = "connect."
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
SCOPE_OPENID = "openid"
SCOPE_EMAIL = "https://www.googleapis.com/auth/userinfo.email"
SCOPE_PROFILE = "https://www.googleapis.com/auth/userinfo.profile"
SCOPE_DRIVE_READONLY = "https://www.googleapis.com/auth/drive.readonly"
SCOPE_SHEETS_READONLY = "https://www.googleapis.com/auth/spreadsheets.readonly"
# As asked for; Google answers with the long form of `email` and `profile`.
REQUESTED_SCOPES = ("openid", "email", "profile", SCOPE_DRIVE_READONLY, SCOPE_SHEETS_READONLY)
REQUIRED_SCOPES = (SCOPE_OPENID, SCOPE_EMAIL, SCOPE_PROFILE, SCOPE_DRIVE_READONLY, SCOPE_SHEETS_READONLY)
# What reading spreadsheets needs; the identity scopes matter only for signing in.
DATA_SCOPES = (SCOPE_DRIVE_READONLY, SCOPE_SHEETS_READONLY)
# Named among the missing scopes when Google gave no refresh token: without one, access ends within the hour.
OFFLINE_ACCESS = "offline_access"
_SCOPE_ALIASES = {"email": SCOPE_EMAIL, "profile": SCOPE_PROFILE}
# Refresh this long before Google's expiry, so a token never expires between our check and Google's.
EXPIRY_MARGIN_SECONDS = 60.0
# An OAuth round trip (consent screen included) must finish within this; the session cookie lives as long.
FLOW_MAX_AGE_SECONDS = 15 * 60
# Google's ID tokens name one of these issuers (OpenID Connect Core 3.1.3.7, Google's discovery document).
GOOGLE_ISSUERS = ("https://accounts.google.com", "accounts.google.com")
# Clocks differ a little between Google and us.
ID_TOKEN_LEEWAY_SECONDS = 60
# A refresh that loses a race with a write elsewhere reads the row again; this many rounds at most.
_REFRESH_ROUNDS = 3
_CLIENT_MISCONFIGURED_HINT = (
    "check GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET, and that GOOGLE_REDIRECT_URI is listed exactly among the "
    "OAuth client's authorized redirect URIs (Google Cloud console > APIs & Services > Credentials)"
)

T = TypeVar("T")


# --- the authorization request -------------------------------------------------------------------------------


def normalize_scopes(scope: str) -> frozenset[str]:
    """The scopes of a space-separated `scope` value, short names spelled as Google spells them in answers."""
    return frozenset(_SCOPE_ALIASES.get(s, s) for s in scope.split())


def pkce_challenge(verifier: str) -> str:
    """The S256 code challenge of a PKCE verifier (RFC 7636)."""
    return _b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def nonce_digest(nonce: str) -> str:
    """What goes to Google as `nonce`: Supabase compares the ID token's nonce with the SHA-256 of the raw one."""
    return hashlib.sha256(nonce.encode()).hexdigest()


@dataclass(frozen=True)
class OAuthFlow:
    """One authorization round trip in progress, kept in the browser's signed session until the callback."""

    state: str
    verifier: str
    nonce: str
    created_at: float
    user_id: str | None = None
    """Set for `connect` (the signed-in user the tokens are for); None for a sign-in with Google."""
    redirect_to: str | None = None
    """Where the browser goes afterwards: a URL on an allowed frontend origin, or None for a JSON answer."""

    @classmethod
    def start(cls, *, now: float, user_id: str | None = None, redirect_to: str | None = None) -> OAuthFlow:
        state = secrets.token_urlsafe(32)
        if user_id is not None and _UUID.fullmatch(user_id):
            # Where the callback finds the round trip when the session cookie does not come back with it.
            state = f"{CONNECT_STATE_PREFIX}{user_id}.{state}"
        return cls(
            state=state,
            verifier=secrets.token_urlsafe(64),  # 86 characters: within PKCE's 43 to 128
            nonce=secrets.token_urlsafe(32),
            created_at=now,
            user_id=user_id,
            redirect_to=redirect_to,
        )

    def to_session(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "verifier": self.verifier,
            "nonce": self.nonce,
            "created_at": self.created_at,
            "user_id": self.user_id,
            "redirect_to": self.redirect_to,
        }

    @classmethod
    def from_session(cls, data: object) -> OAuthFlow:
        """The flow a session holds; ValueError when any part is missing or malformed."""
        if not isinstance(data, dict):
            raise ValueError("no flow")
        fields = {}
        for name in ("state", "verifier", "nonce"):
            value = data.get(name)
            if not isinstance(value, str) or not value:
                raise ValueError(f"the flow lacks its {name}")
            fields[name] = value
        created_at = data.get("created_at")
        if not isinstance(created_at, int | float):
            raise ValueError("the flow lacks its start time")
        user_id, redirect_to = data.get("user_id"), data.get("redirect_to")
        if not (user_id is None or isinstance(user_id, str)) or not (
            redirect_to is None or isinstance(redirect_to, str)
        ):
            raise ValueError("the flow is malformed")
        return cls(created_at=float(created_at), user_id=user_id, redirect_to=redirect_to, **fields)

    def matches(self, state: str) -> bool:
        return hmac.compare_digest(self.state.encode(), state.encode())


def connect_state_user(state: str) -> str | None:
    """The user a connect round trip's state names (it is kept server-side under them), or None."""
    user_id, dot, rest = state.removeprefix(CONNECT_STATE_PREFIX).partition(".")
    if not state.startswith(CONNECT_STATE_PREFIX) or not dot or not rest or not _UUID.fullmatch(user_id):
        return None
    return user_id


class UsedStates:
    """States already redeemed by this process, so a replayed callback fails even with the old session cookie.

    The session is a signed cookie: removing the flow from it only changes the *next* cookie, and a copy of the
    old one still holds the state. Google also accepts each code only once, which covers replays that reach
    another instance. Bounded: entries older than a flow's lifetime are useless and dropped.
    """

    def __init__(self, *, max_age: float = FLOW_MAX_AGE_SECONDS, max_entries: int = 100_000) -> None:
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._max_age = max_age
        self._max_entries = max_entries

    def claim(self, state: str, now: float) -> bool:
        """True the first time `state` is claimed, False ever after."""
        while self._seen and (
            next(iter(self._seen.values())) < now - self._max_age or len(self._seen) >= self._max_entries
        ):
            self._seen.popitem(last=False)
        key = hashlib.sha256(state.encode()).hexdigest()
        if key in self._seen:
            return False
        self._seen[key] = now
        return True


# --- Google's OAuth endpoints --------------------------------------------------------------------------------


@dataclass(frozen=True)
class GoogleClientConfig:
    """The OAuth client and Google's endpoints, from settings."""

    client_id: str
    client_secret: str
    redirect_uri: str
    auth_url: str
    token_url: str
    revoke_url: str

    @classmethod
    def from_settings(cls, settings: Settings) -> GoogleClientConfig | None:
        """None when the OAuth client is not configured (development without Google)."""
        if not (settings.google_client_id and settings.google_client_secret and settings.google_redirect_uri):
            return None
        return cls(
            client_id=settings.google_client_id.get_secret_value(),
            client_secret=settings.google_client_secret.get_secret_value(),
            redirect_uri=settings.google_redirect_uri,
            auth_url=settings.google_auth_url,
            token_url=settings.google_token_url,
            revoke_url=settings.google_revoke_url,
        )


@dataclass(frozen=True)
class TokenGrant:
    """What Google's token endpoint granted."""

    access_token: str
    expires_in: float
    refresh_token: str | None
    scopes: frozenset[str]
    id_token: str | None


class RefreshRejectedError(Exception):
    """Google answered `invalid_grant` to a refresh: the refresh token is dead for good."""


class GoogleUnauthorizedError(Exception):
    """A Google API refused the access token (HTTP 401); a refresh may fix it."""


class GoogleOAuth:
    """Google's authorization, token and revocation endpoints for one OAuth client."""

    def __init__(
        self, config: GoogleClientConfig, upstream: Upstream, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.config = config
        self._upstream = upstream
        self._clock = clock

    def authorization_url(self, flow: OAuthFlow) -> str:
        params = {
            "client_id": self.config.client_id,
            "redirect_uri": self.config.redirect_uri,
            "response_type": "code",
            "scope": " ".join(REQUESTED_SCOPES),
            "access_type": "offline",
            # Consent every time: Google only hands out a refresh token on a consent.
            "prompt": "consent",
            "include_granted_scopes": "true",
            "state": flow.state,
            "code_challenge": pkce_challenge(flow.verifier),
            "code_challenge_method": "S256",
            "nonce": nonce_digest(flow.nonce),
        }
        return f"{self.config.auth_url}?{urlencode(params, quote_via=quote)}"

    async def exchange_code(self, code: str, verifier: str) -> TokenGrant:
        response = await self._token_request(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self.config.redirect_uri,
                "code_verifier": verifier,
            }
        )
        if response.status_code == 200:
            return self._grant(_json(response))
        error, description = google_error(response)
        if error == "invalid_grant":
            raise ConnectorError(
                400,
                "google_code_rejected",
                f"Google refused the authorization code ({description or error}): it was used already, expired, "
                "or its PKCE verifier does not match",
                hint="start again: GET /auth/google/login (or POST /auth/google/connect)",
            )
        raise self._client_error(response, error, description)

    async def refresh(self, refresh_token: str) -> TokenGrant:
        response = await self._token_request({"grant_type": "refresh_token", "refresh_token": refresh_token})
        if response.status_code == 200:
            return self._grant(_json(response))
        error, description = google_error(response)
        if error == "invalid_grant":
            raise RefreshRejectedError(description or error)
        raise self._client_error(response, error, description)

    async def revoke(self, token: str) -> bool:
        """Whether Google confirmed the revocation. Best effort: failures are logged, never raised."""
        try:
            response = await self._upstream.request("POST", self.config.revoke_url, data={"token": token})
        except ConnectorError as error:
            logger.warning("could not revoke a Google token: %s", error.message)
            return False
        if response.status_code != 200:
            logger.warning("Google refused to revoke a token: HTTP %d %s", response.status_code, google_error(response))
        return response.status_code == 200

    def id_token_claims(self, id_token: str) -> dict[str, Any]:
        """The claims of an ID token received straight from Google's token endpoint.

        It came over TLS from Google itself in answer to our own client's request, so (OpenID Connect Core
        3.1.3.7) TLS stands in for the signature check; the issuer, the audience and the expiry are still
        checked. Supabase verifies the signature again when the token signs a user in.
        """
        try:
            payload = id_token.split(".")[1]
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except (IndexError, ValueError):
            raise _bad_google_answer("an ID token that is not a JWT") from None
        if not isinstance(claims, dict) or not isinstance(claims.get("sub"), str):
            raise _bad_google_answer("an ID token without a subject")
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if self.config.client_id not in audiences:
            raise _bad_google_answer("an ID token issued to another OAuth client")
        if claims.get("iss") not in GOOGLE_ISSUERS:
            raise _bad_google_answer("an ID token that Google did not issue")
        expires = claims.get("exp")
        if not isinstance(expires, int | float) or expires + ID_TOKEN_LEEWAY_SECONDS <= self._clock():
            raise _bad_google_answer("an ID token that has expired")
        return claims

    async def _token_request(self, form: dict[str, str]) -> Any:
        form = {**form, "client_id": self.config.client_id, "client_secret": self.config.client_secret}
        return await self._upstream.request(
            "POST", self.config.token_url, data=form, headers={"Accept": "application/json"}
        )

    @staticmethod
    def _grant(body: Any) -> TokenGrant:
        if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
            raise _bad_google_answer("a token answer without an access token")
        expires_in = body.get("expires_in", 3600)
        refresh_token = body.get("refresh_token")
        id_token = body.get("id_token")
        return TokenGrant(
            access_token=body["access_token"],
            expires_in=float(expires_in) if isinstance(expires_in, int | float) else 3600.0,
            refresh_token=refresh_token if isinstance(refresh_token, str) and refresh_token else None,
            scopes=normalize_scopes(str(body.get("scope", ""))),
            id_token=id_token if isinstance(id_token, str) and id_token else None,
        )

    @staticmethod
    def _client_error(response: Any, error: str, description: str) -> ConnectorError:
        if error in ("invalid_client", "unauthorized_client", "redirect_uri_mismatch"):
            return ConnectorError(
                502,
                "google_client_misconfigured",
                f"Google refused this app's OAuth client ({error}: {description})",
                hint=_CLIENT_MISCONFIGURED_HINT,
            )
        return ConnectorError(
            502,
            "google_error",
            f"Google's token endpoint answered {response.status_code} ({error or 'no error code'}: {description})",
            hint="retry; if it persists, check the OAuth client in the Google Cloud console",
        )


def _json(response: Any) -> Any:
    """The JSON body of a 200 from Google; a 502 when it is not JSON (a proxy's or captive portal's page)."""
    try:
        return response.json()
    except ValueError:
        raise _bad_google_answer("a body that is not JSON") from None


def _bad_google_answer(what: str) -> ConnectorError:
    return ConnectorError(
        502, "google_error", f"Google answered with {what}", hint="retry; if it persists, check GOOGLE_TOKEN_URL"
    )


# --- each user's tokens --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GoogleConnection:
    """A user's Google connection as the API shows it: no token, ever."""

    status: Literal["connected", "incomplete"]
    email: str | None
    scopes: list[str]
    missing_scopes: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {
            "connected": True,
            "status": self.status,
            "email": self.email,
            "scopes": self.scopes,
            "missing_scopes": self.missing_scopes,
            "reconnect": self.status != "connected",
        }


@dataclass(frozen=True)
class _Tokens:
    """What is encrypted in the store."""

    access_token: str
    refresh_token: str | None
    expires_at: float
    scopes: list[str]
    google_sub: str | None
    email: str | None

    def dumps(self) -> str:
        return json.dumps(self.__dict__, separators=(",", ":"))

    @classmethod
    def loads(cls, text: str) -> _Tokens:
        data = json.loads(text)
        return cls(
            access_token=str(data["access_token"]),
            refresh_token=data.get("refresh_token"),
            expires_at=float(data["expires_at"]),
            scopes=[str(s) for s in data.get("scopes", [])],
            google_sub=data.get("google_sub"),
            email=data.get("email"),
        )

    def missing_scopes(self) -> list[str]:
        missing = [s for s in REQUIRED_SCOPES if s not in self.scopes]
        return [*missing, OFFLINE_ACCESS] if self.refresh_token is None else missing


class GoogleAccounts:
    """Each user's Google tokens: saved from a grant, handed out fresh, refreshed, and revoked."""

    def __init__(
        self,
        oauth: GoogleOAuth | None,
        store: CredentialStore,
        cipher: CredentialCipher,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._oauth = oauth
        self._store = store
        self._cipher = cipher
        self._clock = clock
        # One refresh at a time per user: concurrent requests with an expired token share its result.
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    @property
    def oauth(self) -> GoogleOAuth:
        if self._oauth is None:
            raise ConnectorError(
                503,
                "google_not_configured",
                "Google sign-in is not configured on this server",
                hint="set GOOGLE_CLIENT_ID, GOOGLE_CLIENT_SECRET and GOOGLE_REDIRECT_URI",
            )
        return self._oauth

    async def connection(self, user_id: str) -> GoogleConnection | None:
        row = await self._get_or_none(user_id)
        return _connection(row.metadata) if row is not None else None

    async def save(self, user_id: str, grant: TokenGrant, claims: dict[str, Any]) -> GoogleConnection:
        """Store `grant` for `user_id`, keeping the stored refresh token when Google sent none for the same account."""
        google_sub = claims.get("sub") if isinstance(claims.get("sub"), str) else None
        email = claims.get("email") if isinstance(claims.get("email"), str) else None
        # Under the user's lock: a refresh in flight finishes first, and cannot then overwrite this new grant.
        async with self._lock(user_id):
            refresh_token = grant.refresh_token
            if refresh_token is None:
                previous = await self._tokens_or_none(user_id)
                if previous is not None and previous.refresh_token and google_sub and previous.google_sub == google_sub:
                    refresh_token = previous.refresh_token
            tokens = _Tokens(
                access_token=grant.access_token,
                refresh_token=refresh_token,
                expires_at=self._clock() + grant.expires_in,
                scopes=sorted(grant.scopes),
                google_sub=google_sub,
                email=email,
            )
            await self._put(user_id, tokens)
        return _connection(_metadata(tokens))

    async def access_token(self, user_id: str) -> str:
        """A valid access token for the data scopes; refreshed first when it is (nearly) expired."""
        tokens = await self._tokens(user_id)
        missing = [s for s in DATA_SCOPES if s not in tokens.scopes]
        if missing:
            raise google_reconnect_required(
                "Google was connected without access to Drive and Sheets: reconnect and allow both", missing
            )
        if tokens.expires_at - EXPIRY_MARGIN_SECONDS > self._clock():
            return tokens.access_token
        return await self._refresh(user_id, tokens.access_token)

    async def run(self, user_id: str, call: Callable[[str], Awaitable[T]]) -> T:
        """`call(access token)`, once more with a refreshed token when Google refuses the first one."""
        token = await self.access_token(user_id)
        try:
            return await call(token)
        except GoogleUnauthorizedError:
            pass
        token = await self._refresh(user_id, token)
        try:
            return await call(token)
        except GoogleUnauthorizedError:
            raise google_reconnect_required(
                "Google refuses even a freshly refreshed access token for this connection"
            ) from None

    async def disconnect(self, user_id: str) -> dict[str, bool]:
        """Revoke at Google when reachable, then delete the stored tokens whatever Google said."""
        # Under the user's lock: a refresh in flight in this process finishes first, so it cannot write the
        # tokens back after they are deleted (one in another instance finds the row gone: see _refresh).
        async with self._lock(user_id):
            tokens = await self._tokens_or_none(user_id)
            revoked = False
            if tokens is not None and self._oauth is not None:
                # Revoking the refresh token ends every access token of the grant too.
                revoked = await self._oauth.revoke(tokens.refresh_token or tokens.access_token)
            deleted = await call_store(self._store.delete, user_id, PROVIDER)
            # A grant parked for confirmation goes too: nothing of the user's Google access stays behind.
            await call_store(self._store.delete, user_id, PENDING_PROVIDER)
        return {"disconnected": deleted, "revoked": revoked}

    async def keep_connect(self, flow: OAuthFlow) -> None:
        """Keep a connect round trip server-side too (see the module docstring); one per user, the latest."""
        user_id = flow.user_id
        if user_id is None or connect_state_user(flow.state) != user_id:
            return  # not a connect round trip this server can find again
        ciphertext = self._cipher.encrypt(user_id, json.dumps({"flow": flow.to_session()}))
        await call_store(self._store.put, user_id, PENDING_PROVIDER, ciphertext, {"status": "started"})

    async def take_connect(self, state: str) -> OAuthFlow | None:
        """The kept connect round trip `state` names, removed from the store (single use, whichever instance the
        callback reaches), or None."""
        user_id = connect_state_user(state)
        if user_id is None:
            return None
        row = await call_store(self._store.get, user_id, PENDING_PROVIDER)
        if row is None:
            return None
        try:
            flow = OAuthFlow.from_session(json.loads(self._cipher.decrypt(user_id, row.ciphertext)).get("flow"))
        except (CredentialDecryptError, ValueError, AttributeError):
            return None
        if flow.user_id != user_id or not flow.matches(state):
            return None
        if not await call_store(self._store.delete, user_id, PENDING_PROVIDER, expected_ciphertext=row.ciphertext):
            return None  # another callback took it first
        return flow

    async def park(self, user_id: str, grant: TokenGrant, claims: dict[str, Any]) -> str:
        """Keep `grant` until `user_id` confirms it (`complete`); the one-time connect code to confirm with."""
        code = secrets.token_urlsafe(32)
        parked = {
            "grant": {
                "access_token": grant.access_token,
                "expires_at": self._clock() + grant.expires_in,
                "refresh_token": grant.refresh_token,
                "scopes": sorted(grant.scopes),
            },
            "claims": {k: claims[k] for k in ("sub", "email") if isinstance(claims.get(k), str)},
            "code_sha256": hashlib.sha256(code.encode()).hexdigest(),
            "parked_at": self._clock(),
        }
        ciphertext = self._cipher.encrypt(user_id, json.dumps(parked))
        await call_store(self._store.put, user_id, PENDING_PROVIDER, ciphertext, {"status": "granted"})
        return code

    async def complete(self, user_id: str, code: str) -> GoogleConnection:
        """Store the grant parked for `user_id`, if `code` is its connect code and it is fresh (single use)."""
        not_pending = ConnectorError(
            409,
            "google_connect_not_pending",
            "no Google connection is waiting for this user's confirmation (none started, expired, or done)",
            hint=f"connect again: {CONNECT_GOOGLE}",
        )
        row = await call_store(self._store.get, user_id, PENDING_PROVIDER)
        if row is None:
            raise not_pending
        try:
            parked = json.loads(self._cipher.decrypt(user_id, row.ciphertext))
            stored = parked["grant"]
            grant = TokenGrant(
                access_token=str(stored["access_token"]),
                expires_in=float(stored["expires_at"]) - self._clock(),
                refresh_token=stored.get("refresh_token"),
                scopes=frozenset(stored["scopes"]),
                id_token=None,
            )
            expected, parked_at, claims = str(parked["code_sha256"]), float(parked["parked_at"]), parked["claims"]
        except (CredentialDecryptError, ValueError, KeyError, TypeError):
            raise not_pending from None  # a round trip not finished yet, or a row this user cannot read
        if not hmac.compare_digest(hashlib.sha256(code.encode()).hexdigest(), expected):
            raise ConnectorError(
                400,
                "google_connect_code_invalid",
                "this connect code is not the one Google's callback gave for this user",
                hint="send the connect_code from the callback's redirect, signed in as the user who started it",
            )
        if not await call_store(self._store.delete, user_id, PENDING_PROVIDER, expected_ciphertext=row.ciphertext):
            raise not_pending  # confirmed concurrently
        if not 0 <= self._clock() - parked_at <= FLOW_MAX_AGE_SECONDS:
            raise not_pending
        return await self.save(user_id, grant, claims)

    async def _refresh(self, user_id: str, stale_access_token: str) -> str:
        async with self._lock(user_id):
            # Another instance may connect, disconnect or refresh this user while Google answers: every write
            # and delete below is conditional on the row still being the one read, and a lost race reads again.
            for _ in range(_REFRESH_ROUNDS):
                row = await self._get(user_id)
                tokens = self._decrypt(user_id, row)
                if tokens.access_token != stale_access_token and tokens.expires_at - EXPIRY_MARGIN_SECONDS > (
                    self._clock()
                ):
                    return tokens.access_token  # refreshed by whoever held the lock before, or reconnected
                if tokens.refresh_token is None:
                    raise google_reconnect_required(
                        "the Google access token expired and Google gave no refresh token (offline access)",
                        [OFFLINE_ACCESS],
                    )
                try:
                    grant = await self.oauth.refresh(tokens.refresh_token)
                except RefreshRejectedError as rejected:
                    # Dead for good (revoked, expired, password changed): keeping it helps no one. Unless the
                    # row changed meanwhile: then it holds another grant, which is not this one to delete.
                    if not await call_store(self._store.delete, user_id, PROVIDER, expected_ciphertext=row.ciphertext):
                        continue
                    logger.info("Google refused the refresh token of user %s (%s): tokens deleted", user_id, rejected)
                    raise google_reconnect_required(
                        "Google no longer accepts this connection (access was revoked or has expired); "
                        "the stored tokens were deleted"
                    ) from None
                fresh = _Tokens(
                    access_token=grant.access_token,
                    refresh_token=grant.refresh_token or tokens.refresh_token,
                    expires_at=self._clock() + grant.expires_in,
                    # A refresh answer lists the scopes still granted; without one they are unchanged.
                    scopes=sorted(grant.scopes) if grant.scopes else tokens.scopes,
                    google_sub=tokens.google_sub,
                    email=tokens.email,
                )
                ciphertext = self._cipher.encrypt(user_id, fresh.dumps())
                if await call_store(
                    self._store.replace_ciphertext, user_id, PROVIDER, row.ciphertext, ciphertext, _metadata(fresh)
                ):
                    return fresh.access_token
                # The row was rewritten or deleted meanwhile: its new state wins over this refresh.
            raise google_unavailable("the Google connection kept changing while its token was refreshed; retry")

    def _lock(self, user_id: str) -> asyncio.Lock:
        lock = self._locks.get(user_id)
        if lock is None:
            lock = self._locks[user_id] = asyncio.Lock()
        return lock

    async def _tokens(self, user_id: str) -> _Tokens:
        return self._decrypt(user_id, await self._get(user_id))

    def _decrypt(self, user_id: str, row: StoredCredential) -> _Tokens:
        try:
            return _Tokens.loads(self._cipher.decrypt(user_id, row.ciphertext))
        except CredentialDecryptError as error:
            raise google_reconnect_required(f"the stored Google connection is unusable: {error}") from None
        except (ValueError, KeyError, TypeError):
            raise google_reconnect_required("the stored Google connection is malformed") from None

    async def _tokens_or_none(self, user_id: str) -> _Tokens | None:
        row = await self._get_or_none(user_id)
        if row is None:
            return None
        try:
            return self._decrypt(user_id, row)
        except ConnectorError:
            return None

    async def _get(self, user_id: str) -> StoredCredential:
        row = await self._get_or_none(user_id)
        if row is None:
            raise google_not_connected()
        return row

    async def _get_or_none(self, user_id: str) -> StoredCredential | None:
        row: StoredCredential | None = await call_store(self._store.get, user_id, PROVIDER)
        return row

    async def _put(self, user_id: str, tokens: _Tokens) -> None:
        ciphertext = self._cipher.encrypt(user_id, tokens.dumps())
        await call_store(self._store.put, user_id, PROVIDER, ciphertext, _metadata(tokens))


def imported_connection(
    access_token: str, refresh_token: str | None, expires_at: float, scopes: Iterable[str]
) -> tuple[str, dict[str, str]]:
    """A connection made elsewhere (the original backend, see doki.legacy) as this module stores one: the plaintext to
    encrypt for the user, and the row's metadata. Its Google account is unknown (no subject, no email): a later
    reconnect without a refresh token therefore keeps none of this one's."""
    tokens = _Tokens(
        access_token=access_token,
        refresh_token=refresh_token or None,
        expires_at=expires_at,
        scopes=sorted(set(scopes)),
        google_sub=None,
        email=None,
    )
    return tokens.dumps(), _metadata(tokens)


def _metadata(tokens: _Tokens) -> dict[str, str]:
    missing = tokens.missing_scopes()
    return {
        "status": "incomplete" if missing else "connected",
        "email": tokens.email or "",
        "scopes": " ".join(tokens.scopes),
        "missing_scopes": " ".join(missing),
    }


def _connection(metadata: dict[str, str]) -> GoogleConnection:
    missing = metadata.get("missing_scopes", "").split()
    return GoogleConnection(
        status="incomplete" if missing or metadata.get("status") != "connected" else "connected",
        email=metadata.get("email") or None,
        scopes=metadata.get("scopes", "").split(),
        missing_scopes=missing,
    )


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
