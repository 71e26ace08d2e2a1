"""Google account routes: sign in with Google, connect Google to a signed-in user, status, disconnect.

`GET /auth/google/login` and `POST /auth/google/connect` start an authorization round trip: its state, PKCE
verifier and nonce go into the browser's signed session cookie, and the browser goes to Google. Google sends it
back to `GET /auth/google/callback`, which takes the round trip out of the session (single use), checks the
state, exchanges the code with the verifier, and stores the tokens: for the user Supabase signs in with the
Google ID token (login), or for the user bound into the round trip (connect). The browser then goes to the
frontend with the outcome in the URL fragment (never sent to any server), or gets JSON when no frontend is set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from doki.api.deps import PrincipalDep, SettingsDep, UpstreamsDep
from doki.auth import DEVELOPMENT_PRINCIPAL
from doki.connectors import Upstreams
from doki.connectors.errors import ConnectorError
from doki.connectors.google import FLOW_MAX_AGE_SECONDS, GoogleConnection, OAuthFlow, nonce_digest
from doki.settings import Settings, url_origin

if TYPE_CHECKING:
    # Only for types: the Supabase Auth client brings httpx, which a cold start does without.
    from doki.auth.supabase_auth import AuthSession

router = APIRouter(prefix="/auth/google", tags=["google"])

SESSION_KEY = "google_oauth"
# Sessions and codes must not linger in caches, nor leak to the next page through Referer.
NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
_START_AGAIN = "start again: GET /auth/google/login (or POST /auth/google/connect)"


def http_error(error: ConnectorError) -> HTTPException:
    """The API's answer for a connector error: its status, `{"detail": {code, message, hint, ...}}`, headers."""
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


class GoogleStatusOut(BaseModel):
    connected: bool
    status: Literal["not_connected", "connected", "incomplete"]
    email: str | None = None
    scopes: list[str] = Field(default_factory=list)
    missing_scopes: list[str] = Field(
        default_factory=list, description="scopes to allow on reconnecting; offline_access means no refresh token"
    )
    reconnect: bool = Field(default=False, description="true when POST /auth/google/connect should be run again")


class DisconnectOut(BaseModel):
    disconnected: bool = Field(description="whether a connection was stored")
    revoked: bool = Field(description="whether Google confirmed revoking the tokens")


@router.get(
    "/login",
    status_code=302,
    response_class=RedirectResponse,
    summary="Sign in with Google (redirects to Google's consent screen)",
    responses={302: {"description": "to Google"}, 400: {"description": "redirect_to not allowed"}},
)
async def login(
    request: Request,
    settings: SettingsDep,
    upstreams: UpstreamsDep,
    redirect_to: Annotated[str | None, Query(max_length=2048)] = None,
) -> RedirectResponse:
    url = _start(request, settings, upstreams, user_id=None, redirect_to=redirect_to)
    return RedirectResponse(url, status_code=302, headers=NO_STORE)


@router.post("/connect", response_model=ConnectOut, summary="Connect Google to the signed-in user")
async def connect(
    request: Request,
    principal: PrincipalDep,
    settings: SettingsDep,
    upstreams: UpstreamsDep,
    body: ConnectIn | None = None,
) -> ConnectOut:
    redirect_to = body.redirect_to if body else None
    url = _start(request, settings, upstreams, user_id=principal.user_id, redirect_to=redirect_to)
    return ConnectOut(authorization_url=url)


@router.get(
    "/callback",
    summary="Google's redirect back: stores the tokens, hands over the Supabase session",
    responses={302: {"description": "to the frontend, the outcome in the URL fragment"}},
)
async def callback(
    request: Request,
    settings: SettingsDep,
    upstreams: UpstreamsDep,
    code: Annotated[str | None, Query(max_length=2048)] = None,
    state: Annotated[str | None, Query(max_length=512)] = None,
    error: Annotated[str | None, Query(max_length=256)] = None,
) -> Response:
    flow = _take_flow(request, upstreams, state)
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
        outcome = await _complete(flow, code, settings, upstreams)
    except ConnectorError as failure:
        if flow.redirect_to:
            return _to_frontend(flow.redirect_to, {"error": failure.code, "error_description": failure.message})
        raise http_error(failure) from None
    if flow.redirect_to:
        return _to_frontend(flow.redirect_to, outcome.fragment())
    return JSONResponse(outcome.body(), headers=NO_STORE)


@router.get("", response_model=GoogleStatusOut, summary="The signed-in user's Google connection")
async def status(principal: PrincipalDep, upstreams: UpstreamsDep) -> GoogleStatusOut:
    try:
        connection = await upstreams.google().connection(principal.user_id)
    except ConnectorError as failure:
        raise http_error(failure) from None
    if connection is None:
        return GoogleStatusOut(connected=False, status="not_connected")
    return GoogleStatusOut(**connection.as_dict())


@router.delete("", response_model=DisconnectOut, summary="Disconnect Google: revoke at Google, delete the tokens")
async def disconnect(principal: PrincipalDep, upstreams: UpstreamsDep) -> DisconnectOut:
    try:
        return DisconnectOut(**await upstreams.google().disconnect(principal.user_id))
    except ConnectorError as failure:
        raise http_error(failure) from None


# --- the round trip ------------------------------------------------------------------------------------------


def _start(
    request: Request, settings: Settings, upstreams: Upstreams, *, user_id: str | None, redirect_to: str | None
) -> str:
    try:
        oauth = upstreams.google().oauth
        target = frontend_target(settings, redirect_to)
    except ConnectorError as failure:
        raise http_error(failure) from None
    flow = OAuthFlow.start(now=upstreams.clock(), user_id=user_id, redirect_to=target)
    # One round trip per browser session: starting another abandons the previous one.
    request.session[SESSION_KEY] = flow.to_session()
    return oauth.authorization_url(flow)


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
    return redirect_to


def _take_flow(request: Request, upstreams: Upstreams, state: str | None) -> OAuthFlow:
    """The session's round trip, removed from it (single use), if `state` is its state and it is fresh."""
    raw = request.session.pop(SESSION_KEY, None)
    if raw is None:
        raise http_error(
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
        raise http_error(
            ConnectorError(400, "oauth_session_invalid", "the sign-in in this session is incomplete", hint=_START_AGAIN)
        ) from None
    if not state or not flow.matches(state):
        raise http_error(
            ConnectorError(
                400,
                "oauth_state_mismatch",
                "the state Google sent back is not this browser session's",
                hint=_START_AGAIN,
            )
        )
    now = upstreams.clock()
    if not 0 <= now - flow.created_at <= FLOW_MAX_AGE_SECONDS:
        raise http_error(ConnectorError(400, "oauth_flow_expired", "the sign-in took too long", hint=_START_AGAIN))
    if not upstreams.used_states().claim(flow.state, now):
        raise http_error(
            ConnectorError(400, "oauth_state_used", "this sign-in was completed already", hint=_START_AGAIN)
        )
    return flow


@dataclass(frozen=True)
class _Outcome:
    user_id: str
    email: str | None
    session: AuthSession | None
    google: GoogleConnection

    def body(self) -> dict[str, Any]:
        return {
            "user": {"id": self.user_id, "email": self.email},
            "session": self.session.as_dict() if self.session else None,
            "google": self.google.as_dict(),
        }

    def fragment(self) -> dict[str, str]:
        # The Supabase session in the shape supabase-js reads from a redirect (access_token, refresh_token, ...).
        values = {k: str(v) for k, v in self.session.as_dict().items()} if self.session else {}
        values["google"] = self.google.status
        if self.google.missing_scopes:
            values["missing_scopes"] = " ".join(self.google.missing_scopes)
        return values


async def _complete(flow: OAuthFlow, code: str, settings: Settings, upstreams: Upstreams) -> _Outcome:
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
    connection = await google.save(user_id, grant, claims)
    return _Outcome(user_id=user_id, email=email, session=session, google=connection)


def _to_frontend(target: str, values: dict[str, str]) -> RedirectResponse:
    # The fragment stays in the browser: a session in it never reaches a server log or a Referer.
    return RedirectResponse(f"{target}#{urlencode(values)}", status_code=302, headers=NO_STORE)
