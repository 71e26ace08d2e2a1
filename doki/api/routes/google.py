"""Google account routes: sign in with Google, connect Google to a signed-in user, status, disconnect.

`GET /auth/google/login` and `POST /auth/google/connect` start an authorization round trip: its state, PKCE
verifier and nonce go into the browser's signed session cookie, and the browser goes to Google. Google sends it
back to `GET /auth/google/callback`, which takes the round trip out of the session (single use), checks the
state, exchanges the code with the verifier, and stores the tokens: for the user Supabase signs in with the
Google ID token (login), or for the user bound into the round trip (connect). The browser then goes to the
frontend with the outcome in the URL fragment (never sent to any server), or gets JSON when no frontend is set.

A connect whose callback comes back without the session cookie (a frontend on another site: browsers keep its
cookies apart) is found by its state among the round trips kept server-side; its grant then waits until the user
confirms it with their bearer token and the one-time code the redirect carried (`POST /auth/google/connect/complete`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from doki.api.deps import PrincipalDep, SettingsDep, UpstreamsDep
from doki.api.errors import error_responses
from doki.auth import DEVELOPMENT_PRINCIPAL
from doki.connectors import Upstreams
from doki.connectors.errors import ConnectorError
from doki.connectors.google import FLOW_MAX_AGE_SECONDS, GoogleConnection, OAuthFlow, nonce_digest
from doki.settings import Settings, is_https_or_loopback, url_origin

if TYPE_CHECKING:
    # Only for types: the Supabase Auth client brings httpx, which a cold start does without.
    from doki.auth.supabase_auth import AuthSession

router = APIRouter(prefix="/auth/google", tags=["google"])

SESSION_KEY = "google_oauth"
# Sessions and codes must not linger in caches, nor leak to the next page through Referer.
NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
_START_AGAIN = "start again: GET /auth/google/login (or POST /auth/google/connect)"
_START_ERRORS = error_responses(
    {
        400: "redirect_not_allowed: redirect_to is not on an allowed origin",
        503: "google_not_configured: this server has no Google OAuth client; or the credential store fails",
    }
)
_GOOGLE_ERRORS = error_responses(
    {
        409: "google_reconnect_required: run POST /auth/google/connect again",
        429: "google_rate_limited: retry later",
        502: "Google answered something unexpected",
        503: "Google or the credential store is unreachable: retry later",
    }
)


def http_error(error: ConnectorError) -> HTTPException:
    """The API's answer for a connector error: its status, its body (answered as `{"detail": message, code, hint,
    ...}` by doki.api.errors.http_error_rendered), its headers."""
    return HTTPException(error.status_code, detail=error.body(), headers=error.headers or None)


class ConnectIn(BaseModel):
    redirect_to: str | None = Field(
        default=None,
        max_length=2048,
        description="where the browser goes afterwards: a URL on an allowed frontend origin, or a path on "
        "FRONTEND_URL's origin; default FRONTEND_URL (or a JSON answer without one)",
    )


class ConnectOut(BaseModel):
    authorization_url: str = Field(description="open it in the browser (same browser session as this call)")


class CompleteIn(BaseModel):
    connect_code: str = Field(
        min_length=1, max_length=256, description="the connect_code the callback's redirect carried (google=pending)"
    )


class GoogleStatusOut(BaseModel):
    connected: bool
    status: Literal["not_connected", "connected", "incomplete"]
    email: str | None = None
    scopes: list[str] = Field(default_factory=list)
    missing_scopes: list[str] = Field(
        default_factory=list, description="scopes to allow on reconnecting; offline_access means no refresh token"
    )
    reconnect: bool = Field(default=False, description="true when POST /auth/google/connect should be run again")


class CallbackUserOut(BaseModel):
    id: str
    email: str | None


class CallbackSessionOut(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str
    expires_in: int
    expires_at: int


class PendingGoogleOut(BaseModel):
    status: Literal["pending"]
    connect_code: str = Field(description="for POST /auth/google/connect/complete, with the user's bearer token")


class CallbackOut(BaseModel):
    """The callback's JSON (no frontend to redirect to): the original backend's `status`, `access_token`, `user`
    and `message`, with `session` and `google` beside them."""

    status: Literal["authenticated", "connected", "pending"] = Field(
        description="authenticated: signed in with Google; connected: Google connected to the signed-in user; "
        "pending: the connection waits for POST /auth/google/connect/complete"
    )
    access_token: str = Field(description="the Supabase access token (session.access_token); empty without a session")
    user: CallbackUserOut
    message: str
    session: CallbackSessionOut | None = Field(description="the Supabase session of a sign-in; null otherwise")
    google: GoogleStatusOut | PendingGoogleOut


_SIGNED_IN = "Successfully authenticated with Supabase. Use the access_token for API requests."


class DisconnectOut(BaseModel):
    disconnected: bool = Field(description="whether a connection was stored")
    revoked: bool = Field(description="whether Google confirmed revoking the tokens")


@router.get(
    "/login",
    status_code=302,
    response_class=RedirectResponse,
    summary="Sign in with Google (redirects to Google's consent screen)",
    responses={302: {"description": "to Google"}, **_START_ERRORS},
)
async def login(
    request: Request,
    settings: SettingsDep,
    upstreams: UpstreamsDep,
    redirect_to: Annotated[str | None, Query(max_length=2048)] = None,
) -> RedirectResponse:
    _, url = _start(request, settings, upstreams, user_id=None, redirect_to=redirect_to)
    return RedirectResponse(url, status_code=302, headers=NO_STORE)


@router.post(
    "/connect", response_model=ConnectOut, summary="Connect Google to the signed-in user", responses=_START_ERRORS
)
async def connect(
    request: Request,
    principal: PrincipalDep,
    settings: SettingsDep,
    upstreams: UpstreamsDep,
    body: ConnectIn | None = None,
) -> ConnectOut:
    redirect_to = body.redirect_to if body else None
    flow, url = _start(request, settings, upstreams, user_id=principal.user_id, redirect_to=redirect_to)
    try:
        # For a browser that does not send the session cookie back (a frontend on another site).
        await upstreams.google().keep_connect(flow)
    except ConnectorError as failure:
        raise http_error(failure) from None
    return ConnectOut(authorization_url=url)


@router.post(
    "/connect/complete",
    response_model=GoogleStatusOut,
    summary="Confirm a Google connection whose callback came back without the browser's session cookie",
    description="When the frontend is on another site than this API, the browser does not send the session cookie "
    "back to the callback: the callback then parks the grant and redirects with `google=pending&connect_code=…`. "
    "The signed-in user confirms it here; no one else can.",
    responses=error_responses(
        {
            400: "google_connect_code_invalid: not the code the callback gave for this user",
            409: "google_connect_not_pending: nothing waits for this user's confirmation (expired or done)",
            503: "the credential store is unavailable or misconfigured",
        }
    ),
)
async def complete_connect(principal: PrincipalDep, upstreams: UpstreamsDep, body: CompleteIn) -> GoogleStatusOut:
    try:
        connection = await upstreams.google().complete(principal.user_id, body.connect_code)
    except ConnectorError as failure:
        raise http_error(failure) from None
    return GoogleStatusOut(**connection.as_dict())


@router.get(
    "/callback",
    summary="Google's redirect back: stores the tokens, hands over the Supabase session",
    responses={
        200: {"model": CallbackOut, "description": "the outcome, when there is no frontend to send the browser to"},
        302: {"description": "to the frontend, the outcome in the URL fragment"},
        **error_responses(
            {
                400: "the sign-in in this browser session is missing, used, expired or not this one, or Google "
                "refused the code",
                403: "google_access_denied: the user did not allow access; user_banned or signup_disabled: "
                "Supabase Auth refuses this user",
                429: "rate_limited: retry later",
                502: "Google or Supabase Auth answered something unexpected",
                503: "Google, Supabase Auth or the credential store is unreachable: retry later",
            }
        ),
    },
)
async def callback(
    request: Request,
    settings: SettingsDep,
    upstreams: UpstreamsDep,
    code: Annotated[str | None, Query(max_length=2048)] = None,
    state: Annotated[str | None, Query(max_length=512)] = None,
    error: Annotated[str | None, Query(max_length=256)] = None,
) -> Response:
    try:
        flow, proven = await _round_trip(request, upstreams, state)
    except _Refused as refused:
        # The browser still goes back to the frontend, to the page its sign-in was for when this session's own
        # round trip says which; it never lands on raw JSON when a frontend is known.
        target = refused.flow.redirect_to if refused.flow else settings.frontend_url
        if target:
            return _to_frontend(target, {"error": refused.error.code, "error_description": refused.error.message})
        raise http_error(refused.error) from None
    try:
        if error:
            raise ConnectorError(
                403 if error == "access_denied" else 400,
                "google_access_denied" if error == "access_denied" else "google_authorization_failed",
                f"Google did not authorize Doki ({error})",
                hint=f"{_START_AGAIN}, and allow access on Google's consent screen",
            )
        if not code:
            raise ConnectorError(400, "oauth_code_missing", "Google's redirect carries no code", hint=_START_AGAIN)
        with upstreams.google_deadline():
            outcome = await _complete(flow, code, settings, upstreams, proven=proven)
    except ConnectorError as failure:
        if flow.redirect_to:
            return _to_frontend(flow.redirect_to, {"error": failure.code, "error_description": failure.message})
        raise http_error(failure) from None
    if flow.redirect_to:
        return _to_frontend(flow.redirect_to, outcome.fragment())
    return JSONResponse(outcome.body(), headers=NO_STORE)


@router.get(
    "", response_model=GoogleStatusOut, summary="The signed-in user's Google connection", responses=_GOOGLE_ERRORS
)
async def status(principal: PrincipalDep, upstreams: UpstreamsDep) -> GoogleStatusOut:
    try:
        connection = await upstreams.google().connection(principal.user_id)
    except ConnectorError as failure:
        raise http_error(failure) from None
    if connection is None:
        return GoogleStatusOut(connected=False, status="not_connected")
    return GoogleStatusOut(**connection.as_dict())


@router.delete(
    "",
    response_model=DisconnectOut,
    summary="Disconnect Google: revoke at Google, delete the tokens",
    responses=_GOOGLE_ERRORS,
)
async def disconnect(principal: PrincipalDep, upstreams: UpstreamsDep) -> DisconnectOut:
    try:
        with upstreams.google_deadline():
            return DisconnectOut(**await upstreams.google().disconnect(principal.user_id))
    except ConnectorError as failure:
        raise http_error(failure) from None


# --- the round trip ------------------------------------------------------------------------------------------


def _start(
    request: Request, settings: Settings, upstreams: Upstreams, *, user_id: str | None, redirect_to: str | None
) -> tuple[OAuthFlow, str]:
    try:
        oauth = upstreams.google().oauth
        target = frontend_target(settings, redirect_to)
    except ConnectorError as failure:
        raise http_error(failure) from None
    flow = OAuthFlow.start(now=upstreams.clock(), user_id=user_id, redirect_to=target)
    # One round trip per browser session: starting another abandons the previous one.
    request.session[SESSION_KEY] = flow.to_session()
    return flow, oauth.authorization_url(flow)


def frontend_target(settings: Settings, redirect_to: str | None) -> str | None:
    """Where the browser may go after the round trip: only ever to an allowed frontend origin (no open redirect)."""
    if redirect_to is None:
        return settings.frontend_url
    refused = ConnectorError(
        400,
        "redirect_not_allowed",
        "redirect_to is not on an allowed frontend origin",
        hint="use a URL on one of ALLOWED_ORIGINS, or a path (/...) on FRONTEND_URL's origin",
    )
    # Browsers drop tabs and newlines from URLs: "/\t/evil.example" would become "//evil.example".
    if any(ord(c) < 0x21 or ord(c) == 0x7F or c == "\\" for c in redirect_to):
        raise refused
    if redirect_to.startswith("/"):
        if redirect_to.startswith("//") or not settings.frontend_url:
            raise refused
        return url_origin(settings.frontend_url) + redirect_to
    try:
        parts = urlsplit(redirect_to)
        origin = url_origin(redirect_to)
    except ValueError:
        raise refused from None
    if parts.scheme not in ("http", "https") or parts.username or parts.password or parts.fragment:
        raise refused
    if origin not in settings.allowed_origins:
        raise refused
    if settings.is_production and not is_https_or_loopback(redirect_to):
        # The Supabase session goes into the fragment: over plain http anyone on the way could read it.
        raise ConnectorError(
            400,
            "redirect_not_allowed",
            "redirect_to is not https: the session handed to it would travel in the clear",
            hint="use the https:// address of your frontend",
        )
    return redirect_to


class _Refused(Exception):
    """The callback cannot go on: `error` says why; `flow` is this browser session's round trip, when it has a
    readable one (its redirect target was checked when it started)."""

    def __init__(self, error: ConnectorError, flow: OAuthFlow | None = None) -> None:
        super().__init__(error.message)
        self.error = error
        self.flow = flow


async def _round_trip(request: Request, upstreams: Upstreams, state: str | None) -> tuple[OAuthFlow, bool]:
    """The round trip this callback ends, and whether this browser proved it started it: its session held it.

    Without that proof, a connect round trip kept server-side is taken instead (see doki.connectors.google):
    its grant then waits for the user's own confirmation.
    """
    try:
        return _take_flow(request, upstreams, state), True
    except _Refused as refused:
        if refused.error.code not in ("oauth_session_missing", "oauth_state_mismatch") or not state:
            raise
        try:
            kept = await upstreams.google().take_connect(state)
        except ConnectorError as failure:
            raise _Refused(failure) from None
        if kept is None:
            raise
    _check_fresh(kept, upstreams)
    return kept, False


def _take_flow(request: Request, upstreams: Upstreams, state: str | None) -> OAuthFlow:
    """The session's round trip, removed from it (single use), if `state` is its state and it is fresh."""
    raw = request.session.pop(SESSION_KEY, None)
    if raw is None:
        raise _Refused(
            ConnectorError(
                400,
                "oauth_session_missing",
                "no Google sign-in is in progress in this browser session (expired, finished, or started elsewhere)",
                hint=_START_AGAIN,
            )
        )
    try:
        flow = OAuthFlow.from_session(raw)
    except ValueError:
        raise _Refused(
            ConnectorError(400, "oauth_session_invalid", "the sign-in in this session is incomplete", hint=_START_AGAIN)
        ) from None
    if not state or not flow.matches(state):
        raise _Refused(
            ConnectorError(
                400,
                "oauth_state_mismatch",
                "the state Google sent back is not this browser session's",
                hint=_START_AGAIN,
            ),
            flow,
        )
    _check_fresh(flow, upstreams)
    return flow


def _check_fresh(flow: OAuthFlow, upstreams: Upstreams) -> None:
    """Refuse a round trip older than its lifetime, or already redeemed here (single use)."""
    now = upstreams.clock()
    if not 0 <= now - flow.created_at <= FLOW_MAX_AGE_SECONDS:
        raise _Refused(ConnectorError(400, "oauth_flow_expired", "the sign-in took too long", hint=_START_AGAIN), flow)
    if not upstreams.used_states().claim(flow.state, now):
        raise _Refused(
            ConnectorError(400, "oauth_state_used", "this sign-in was completed already", hint=_START_AGAIN), flow
        )


@dataclass(frozen=True)
class _Outcome:
    user_id: str
    email: str | None
    session: AuthSession | None
    google: GoogleConnection | None
    connect_code: str | None = None
    """Set when the grant waits for the user's confirmation (POST /auth/google/connect/complete)."""

    login: bool = False
    """The round trip signed the user in (GET /auth/google/login), not connected a signed-in user."""

    def body(self) -> dict[str, Any]:
        """The JSON answer: CallbackOut."""
        if self.google is None:
            status = "pending"
            message = "Confirm connecting Google: POST /auth/google/connect/complete with this connect_code."
            google: dict[str, Any] = {"status": "pending", "connect_code": self.connect_code}
        else:
            google = self.google.as_dict()
            status = "authenticated" if self.login else "connected"
            if self.session is not None:
                message = _SIGNED_IN
            elif self.login:
                message = "Signed in as the development user: requests without a token run as this user."
            else:
                message = "Google is connected to the signed-in user."
        return {
            "status": status,
            "access_token": self.session.access_token if self.session else "",
            "user": {"id": self.user_id, "email": self.email},
            "message": message,
            "session": self.session.as_dict() if self.session else None,
            "google": google,
        }

    def fragment(self) -> dict[str, str]:
        # The Supabase session in the shape supabase-js reads from a redirect (access_token, refresh_token, ...).
        values = {k: str(v) for k, v in self.session.as_dict().items()} if self.session else {}
        if self.google is None:
            return {**values, "google": "pending", "connect_code": str(self.connect_code)}
        values["google"] = self.google.status
        if self.google.missing_scopes:
            values["missing_scopes"] = " ".join(self.google.missing_scopes)
        return values


async def _complete(flow: OAuthFlow, code: str, settings: Settings, upstreams: Upstreams, *, proven: bool) -> _Outcome:
    """Exchange the code and store the grant; a connect that this browser did not prove it started (`proven`:
    its session cookie held the round trip) is parked for the user's confirmation instead."""
    google = upstreams.google()
    oauth = google.oauth
    grant = await oauth.exchange_code(code, flow.verifier)
    if grant.id_token is None:
        raise ConnectorError(502, "google_error", "Google answered without an ID token", hint=_START_AGAIN)
    claims = oauth.id_token_claims(grant.id_token)
    if claims.get("nonce") != nonce_digest(flow.nonce):
        raise ConnectorError(
            400, "oauth_nonce_mismatch", "Google's ID token is not for this sign-in", hint=_START_AGAIN
        )
    email = claims.get("email") if isinstance(claims.get("email"), str) else None
    session = None
    if flow.user_id is not None:
        user_id = flow.user_id
    else:
        auth = upstreams.supabase_auth()
        if auth is None:
            if settings.is_production:  # production always has Supabase; stay safe should that change
                raise ConnectorError(
                    503, "supabase_not_configured", "Supabase Auth is not configured", hint="set SUPABASE_URL"
                )
            # Development without Supabase: requests without a token run as the development user; so do these tokens.
            user_id = DEVELOPMENT_PRINCIPAL.user_id
        else:
            signed_in = await auth.sign_in_with_id_token(grant.id_token, flow.nonce)
            user_id, email, session = signed_in.user_id, signed_in.email or email, signed_in.session
    if not proven:
        connect_code = await google.park(user_id, grant, claims)
        return _Outcome(user_id=user_id, email=email, session=None, google=None, connect_code=connect_code)
    if flow.user_id is not None:
        await google.take_connect(flow.state)  # its server-side copy is used up too: single use everywhere
    connection = await google.save(user_id, grant, claims)
    return _Outcome(user_id=user_id, email=email, session=session, google=connection, login=flow.user_id is None)


def _to_frontend(target: str, values: dict[str, str]) -> RedirectResponse:
    # The fragment stays in the browser: a session in it never reaches a server log or a Referer.
    return RedirectResponse(f"{target}#{urlencode(values)}", status_code=302, headers=NO_STORE)
