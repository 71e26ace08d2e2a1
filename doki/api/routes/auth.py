"""Who the caller is, and email/password accounts through Supabase Auth (sign-up, sign-in, sign-out)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from fastapi import APIRouter, HTTPException, Response
from pydantic import BaseModel, Field

from doki.api.deps import AccessTokenDep, PrincipalDep, UpstreamsDep
from doki.api.errors import error_responses
from doki.api.routes.google import NO_STORE, http_error
from doki.connectors import Upstreams
from doki.connectors.errors import ConnectorError

if TYPE_CHECKING:
    # Only for types: the client brings httpx, which a cold start does without.
    from doki.auth.supabase_auth import AuthResult, SupabaseAuthClient

router = APIRouter(prefix="/auth", tags=["auth"])


class PrincipalOut(BaseModel):
    user_id: str
    email: str | None
    role: str


class EmailPasswordIn(BaseModel):
    email: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    password: str = Field(min_length=1, max_length=1024)


class UserOut(BaseModel):
    id: str
    email: str | None


class SessionOut(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str
    expires_in: int
    expires_at: int


class AuthOut(BaseModel):
    user: UserOut
    session: SessionOut | None = Field(description="null after a sign-up that waits for email confirmation")


# What Supabase Auth's refusals and failures become (see doki.auth.supabase_auth).
_SUPABASE_AUTH_ERRORS = error_responses(
    {
        400: "Supabase Auth refused what was sent",
        401: "invalid_credentials: wrong email or password",
        403: "email_not_confirmed, signup_disabled, user_banned",
        422: "user_already_exists, weak_password, email_address_invalid, validation_failed",
        429: "rate_limited: retry in a minute",
        502: "Supabase Auth refused this server's key, or answered nonsense",
        503: "supabase_auth_unavailable, or supabase_not_configured on this server",
    }
)


@router.get("/me", response_model=PrincipalOut, summary="The authenticated user")
async def me(principal: PrincipalDep) -> PrincipalOut:
    return PrincipalOut(user_id=principal.user_id, email=principal.email, role=principal.role)


@router.post(
    "/signup",
    response_model=AuthOut,
    summary="Create an email/password account in Supabase Auth",
    responses=_SUPABASE_AUTH_ERRORS,
)
async def signup(body: EmailPasswordIn, response: Response, upstreams: UpstreamsDep) -> AuthOut:
    result = await _call(upstreams, lambda auth: auth.sign_up(body.email, body.password))
    response.headers.update(NO_STORE)
    return AuthOut.model_validate(result.as_dict())


@router.post(
    "/signin", response_model=AuthOut, summary="Sign in with email and password", responses=_SUPABASE_AUTH_ERRORS
)
async def signin(body: EmailPasswordIn, response: Response, upstreams: UpstreamsDep) -> AuthOut:
    result = await _call(upstreams, lambda auth: auth.sign_in_with_password(body.email, body.password))
    response.headers.update(NO_STORE)
    return AuthOut.model_validate(result.as_dict())


@router.post(
    "/signout",
    status_code=204,
    summary="Sign out: ends the caller's Supabase sessions",
    responses=_SUPABASE_AUTH_ERRORS,
)
async def signout(token: AccessTokenDep, upstreams: UpstreamsDep) -> Response:
    auth = _supabase_auth(upstreams)
    try:
        await auth.sign_out(token)
    except ConnectorError as failure:
        raise http_error(failure) from None
    return Response(status_code=204)


async def _call(upstreams: Upstreams, call: Callable[[SupabaseAuthClient], Awaitable[AuthResult]]) -> AuthResult:
    auth = _supabase_auth(upstreams)
    try:
        return await call(auth)
    except ConnectorError as failure:
        raise http_error(failure) from None


def _supabase_auth(upstreams: Upstreams) -> SupabaseAuthClient:
    auth = upstreams.supabase_auth()
    if auth is None:
        raise HTTPException(
            503,
            detail={
                "code": "supabase_not_configured",
                "message": "Supabase Auth is not configured on this server",
                "hint": "set SUPABASE_URL and SUPABASE_ANON_KEY (or SUPABASE_SECRET_KEY)",
            },
        )
    return auth
