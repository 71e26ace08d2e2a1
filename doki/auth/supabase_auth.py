"""Supabase Auth (GoTrue) over its HTTP API: sign-up, password and Google ID-token sign-in, sign-out.

The calls supabase-py makes, made with httpx (already a runtime dependency) so the image stays small:
`POST /auth/v1/signup`, `POST /auth/v1/token?grant_type=password`, `POST /auth/v1/token?grant_type=id_token`,
`POST /auth/v1/logout`. Requests carry the project's publishable (anon) key as `apikey` when configured, else the
secret key; sign-out carries the user's own access token.

GoTrue's errors (`{"code", "error_code", "msg"}`, or the older `{"error", "error_description"}`) become
`ConnectorError`s with a stable `code` for the frontend: wrong credentials are 401, an existing user 400, a weak
password 422 (with GoTrue's `reasons`), rate limits 429, and an unreachable or failing Supabase 503, never a 500.
Where the original Doki backend (Tsu-kimi/Doki-Backend, `app/api/auth.py`) answered a fixed text, that text is the
message, so that a frontend written for it still recognises the answer.

A repeated sign-up with email confirmation on (Supabase's hosted default) is not an error: GoTrue answers 200 with
an obfuscated user (a random id, no identities, supabase/auth `internal/api/signup.go` `sanitizeUser`), the same
answer as for a new address, so that sign-up does not tell who has an account. It is passed on as a sign-up waiting
for confirmation, which is what it looks like to the caller too.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from doki.connectors.errors import ConnectorError

if TYPE_CHECKING:
    from doki.settings import Settings

logger = logging.getLogger(__name__)

# The original backend's texts for the answers it told apart (app/api/auth.py:183-195, 239-253).
INVALID_CREDENTIALS = "Invalid email or password"
EMAIL_NOT_CONFIRMED = "Please confirm your email before signing in"
EMAIL_ALREADY_REGISTERED = "Email already registered"

_CLIENT_CODES = {
    # GoTrue error_code -> (our status, our code, hint)
    "invalid_credentials": (401, "invalid_credentials", "check the email and password"),
    "invalid_grant": (401, "invalid_credentials", "check the email and password"),
    "email_not_confirmed": (403, "email_not_confirmed", "open the confirmation link Supabase emailed, then sign in"),
    # 400 as the original answered (GoTrue: 422, only with email confirmation off).
    "user_already_exists": (400, "user_already_exists", "sign in instead: POST /auth/signin"),
    "email_exists": (400, "user_already_exists", "sign in instead: POST /auth/signin"),
    "weak_password": (422, "weak_password", "choose a longer, less common password"),
    "email_address_invalid": (422, "email_address_invalid", "check the email address"),
    "validation_failed": (422, "validation_failed", "check the email address and password"),
    "signup_disabled": (403, "signup_disabled", "sign-ups are disabled in this Supabase project's Auth settings"),
    "email_provider_disabled": (403, "signup_disabled", "enable the Email provider in Supabase Auth settings"),
    "user_banned": (403, "user_banned", "this account is banned in Supabase Auth"),
    "over_request_rate_limit": (429, "rate_limited", "wait a minute and retry"),
    "over_email_send_rate_limit": (429, "rate_limited", "wait a minute and retry"),
}
# Our code -> the original's text, used as the message in place of GoTrue's.
_ORIGINAL_MESSAGES = {
    "invalid_credentials": INVALID_CREDENTIALS,
    "email_not_confirmed": EMAIL_NOT_CONFIRMED,
    "user_already_exists": EMAIL_ALREADY_REGISTERED,
}
# What GoTrue answers a logout whose session cannot be ended any more (supabase/auth internal/api/auth.go:83-164): a
# token it cannot verify (a revoked signing key, an expired token), a user or session that is gone. Nothing is left to
# end: signed out.
_ALREADY_ENDED = frozenset({"bad_jwt", "session_not_found", "user_not_found"})


# Refusals of a sign-in that concern the user, passed on as they are; any other refusal of our own Google ID
# token means the project is not set up for it.
_USER_REFUSALS = frozenset({"user_banned", "signup_disabled", "rate_limited"})


@dataclass(frozen=True)
class AuthSession:
    """A Supabase session, as the frontend's Supabase client takes it (`setSession`)."""

    access_token: str
    refresh_token: str
    token_type: str
    expires_in: int
    expires_at: int

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class AuthResult:
    user_id: str
    email: str | None
    session: AuthSession | None
    """None after a sign-up that waits for email confirmation."""
    user_metadata: dict[str, Any] = field(default_factory=dict)
    """GoTrue's `user.user_metadata` (what sign-up sent as `data`); {} when absent or null."""

    @property
    def display_name(self) -> str | None:
        name = self.user_metadata.get("display_name")
        return name if isinstance(name, str) else None


class SupabaseAuthClient:
    """GoTrue calls for one project. Does not own `http` (the app's lifespan closes it)."""

    def __init__(self, supabase_url: str, apikey: str, http: httpx.AsyncClient, *, timeout: float = 10.0) -> None:
        self._base = f"{supabase_url.rstrip('/')}/auth/v1"
        self._apikey = apikey
        self._http = http
        self._timeout = timeout

    @classmethod
    def from_settings(cls, settings: Settings, http: httpx.AsyncClient) -> SupabaseAuthClient | None:
        """None when no Supabase project is configured."""
        key = settings.supabase_anon_key or settings.supabase_secret_key
        if not (settings.supabase_url and key):
            return None
        return cls(settings.supabase_url, key.get_secret_value(), http)

    async def sign_up(self, email: str, password: str, data: dict[str, Any] | None = None) -> AuthResult:
        """Create the user; `data` becomes its `user_metadata` (GoTrue `SignupParams.Data`)."""
        payload: dict[str, Any] = {"email": email, "password": password}
        if data:
            payload["data"] = data
        body = await self._post("/signup", payload, what="sign-up")
        # A project that confirms emails answers with the user alone; one that does not, with a session too.
        return _result(body, requires_session=False)

    async def sign_in_with_password(self, email: str, password: str) -> AuthResult:
        body = await self._post("/token?grant_type=password", {"email": email, "password": password}, what="sign-in")
        return _result(body, requires_session=True)

    async def sign_in_with_id_token(self, id_token: str, nonce: str) -> AuthResult:
        """Sign in (creating the user on first sight) with a Google ID token, as `sign_in_with_id_token` does."""
        try:
            body = await self._post(
                "/token?grant_type=id_token",
                {"provider": "google", "id_token": id_token, "nonce": nonce},
                what="Google sign-in",
            )
        except ConnectorError as error:
            if error.code in _USER_REFUSALS:
                raise  # about this user, not this server: banned, or new users may not sign up
            if error.status_code in (400, 401, 403, 422):
                # Our own Google token was refused: the project's Google provider is off or does not know our client.
                raise ConnectorError(
                    502,
                    "supabase_google_sign_in_refused",
                    f"Supabase Auth refused the Google ID token: {error.message}",
                    hint="enable the Google provider in Supabase Auth and add GOOGLE_CLIENT_ID to its client IDs",
                ) from None
            raise
        return _result(body, requires_session=True)

    async def sign_out(self, access_token: str) -> None:
        """End the user's sessions (every device, GoTrue's default scope). An already ended session is fine."""
        response = await self._send("/logout", None, what="sign-out", bearer=access_token)
        if response.status_code in (200, 204, 404):
            return
        if response.status_code in (401, 403) and _gotrue_code(response) in _ALREADY_ENDED:
            return
        # Anything else, this server's API key refused among them, is not a sign-out.
        raise _error(response, "sign-out")

    async def _post(self, path: str, payload: dict[str, Any], *, what: str) -> dict[str, Any]:
        response = await self._send(path, payload, what=what)
        if response.status_code in (200, 201):
            try:
                body = response.json()
            except ValueError:
                body = None
            if isinstance(body, dict):
                return body
            raise _unavailable(f"Supabase Auth answered the {what} with something that is not JSON")
        raise _error(response, what)

    async def _send(
        self, path: str, payload: dict[str, Any] | None, *, what: str, bearer: str | None = None
    ) -> httpx.Response:
        headers = {"apikey": self._apikey, "Accept": "application/json"}
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        try:
            return await self._http.post(
                f"{self._base}{path}", json=payload, headers=headers, timeout=self._timeout, follow_redirects=False
            )
        except httpx.TransportError as error:
            raise _unavailable(f"cannot reach Supabase Auth for the {what} ({type(error).__name__})") from None


def _result(body: dict[str, Any], *, requires_session: bool) -> AuthResult:
    user = body.get("user") if isinstance(body.get("user"), dict) else body
    user_id = user.get("id") if isinstance(user, dict) else None
    if not isinstance(user_id, str):
        raise _unavailable("Supabase Auth answered without a user")
    session = None
    if isinstance(body.get("access_token"), str):
        expires_in = int(body.get("expires_in") or 3600)
        session = AuthSession(
            access_token=body["access_token"],
            refresh_token=str(body.get("refresh_token") or ""),
            token_type=str(body.get("token_type") or "bearer"),
            expires_in=expires_in,
            expires_at=int(body.get("expires_at") or time.time() + expires_in),
        )
    elif requires_session:
        raise _unavailable("Supabase Auth signed the user in without a session")
    email = user.get("email") if isinstance(user, dict) else None
    metadata = user.get("user_metadata") if isinstance(user, dict) else None  # an object; anything else reads as {}
    return AuthResult(
        user_id=user_id,
        email=email if isinstance(email, str) and email else None,
        session=session,
        user_metadata=metadata if isinstance(metadata, dict) else {},
    )


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _gotrue_code(response: httpx.Response) -> str:
    """GoTrue's error code: `error_code`, or `code` in its 2024-01-01 format, or the older OAuth-style `error`."""
    body = _json_object(response)
    code = body.get("error_code") or (body.get("code") if isinstance(body.get("code"), str) else None)
    return str(code or body.get("error") or "")


def _error(response: httpx.Response, what: str) -> ConnectorError:
    body = _json_object(response)
    gotrue_code = _gotrue_code(response)
    message = str(body.get("msg") or body.get("error_description") or body.get("message") or response.reason_phrase)
    if gotrue_code in _CLIENT_CODES:
        status, code, hint = _CLIENT_CODES[gotrue_code]
        headers = {"Retry-After": "60"} if status == 429 else None
        extra: dict[str, Any] = {}
        weak = body.get("weak_password")
        reasons = weak.get("reasons") if isinstance(weak, dict) else None
        if code == "weak_password" and isinstance(reasons, list):
            # Which rules failed ("length", "characters", "pwned"): supabase/auth internal/api/password.go.
            extra["reasons"] = [str(reason) for reason in reasons]
        message = _ORIGINAL_MESSAGES.get(code, message)
        return ConnectorError(status, code, message, hint=hint, headers=headers, **extra)
    if response.status_code == 429:
        return ConnectorError(
            429, "rate_limited", message, hint="wait a minute and retry", headers={"Retry-After": "60"}
        )
    if response.status_code in (401, 403) and not gotrue_code:
        return ConnectorError(
            502,
            "supabase_auth_misconfigured",
            f"Supabase Auth refused this server's API key for the {what}",
            hint="set SUPABASE_ANON_KEY (or SUPABASE_SECRET_KEY) to a key of the project SUPABASE_URL names",
        )
    if response.status_code >= 500:
        return _unavailable(f"Supabase Auth answered {response.status_code} to the {what}")
    # Other client errors are about what the user sent: pass GoTrue's own words along.
    return ConnectorError(
        400 if response.status_code < 500 else 502,
        gotrue_code or "auth_rejected",
        message,
        hint=f"the {what} was refused by Supabase Auth",
    )


def _unavailable(message: str) -> ConnectorError:
    return ConnectorError(
        503,
        "supabase_auth_unavailable",
        message,
        hint="Supabase Auth is failing or unreachable: check the project is up, then retry",
        headers={"Retry-After": "5"},
    )
