"""Who the caller is, and email/password accounts through Supabase Auth (sign-up, sign-in, sign-out).

Sign-up, sign-in and sign-out answer what the original Doki backend answered (Tsu-kimi/Doki-Backend,
`app/models/auth.py` `AuthResponse` and `SignOutResponse`, `app/api/auth.py`), so that a frontend written for it keeps
working: `status`, `access_token`, `refresh_token`, `user{id, email, display_name}` and `message`; ours beside them
(`session`, the whole Supabase session the frontend's Supabase client takes).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Literal

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


class SignUpIn(EmailPasswordIn):
    # The original's `SignUpRequest` refused fewer than 6 characters with FastAPI's own 422 (its frontend reads that
    # list). 6 is also Supabase Auth's floor (GOTRUE_PASSWORD_MIN_LENGTH; supabase/auth's
    # internal/conf/configuration.go raises a smaller one to defaultMinPasswordLength, 6): a project that asks more
    # still answers its own 422 `weak_password`.
    password: str = Field(min_length=6, max_length=1024)
    display_name: str | None = Field(
        None,
        min_length=1,
        max_length=256,
        description="stored in the Supabase user's metadata (`user_metadata.display_name`), as the original did",
    )


class UserOut(BaseModel):
    id: str
    email: str | None
    display_name: str = Field(description='`user_metadata.display_name`; "" when the user has none')


class SessionOut(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str
    expires_in: int
    expires_at: int


SIGNED_UP_PENDING = "Signup successful! Please check your email to confirm your account."
SIGNED_UP = "Signup successful! You are now logged in."
SIGNED_IN = "Sign in successful!"


class AuthOut(BaseModel):
    status: Literal["authenticated", "pending_confirmation"] = Field(
        description="pending_confirmation: the project confirms emails, and the link Supabase emailed comes first"
    )
    access_token: str = Field(description='the session\'s access token; "" while confirmation is pending')
    refresh_token: str | None = Field(description="the session's refresh token; null while confirmation is pending")
    user: UserOut
    message: str
    session: SessionOut | None = Field(description="null after a sign-up that waits for email confirmation")


class SignOutOut(BaseModel):
    status: Literal["signed_out"]
    message: str


# What Supabase Auth's refusals and failures become (see doki.auth.supabase_auth).
_SUPABASE_AUTH_ERRORS = error_responses(
    {
        400: "user_already_exists (sign-up: 'Email already registered'), or Supabase Auth refused what was sent",
        401: "invalid_credentials: 'Invalid email or password'",
        403: "email_not_confirmed ('Please confirm your email before signing in'), signup_disabled, user_banned",
        422: "weak_password (with `reasons`), email_address_invalid, validation_failed",
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
async def signup(body: SignUpIn, response: Response, upstreams: UpstreamsDep) -> AuthOut:
    data = {"display_name": body.display_name} if body.display_name is not None else None
    result = await _call(upstreams, lambda auth: auth.sign_up(body.email, body.password, data))
    response.headers.update(NO_STORE)
    # A repeated sign-up of a confirmed address, with confirmations on, is answered by Supabase with an obfuscated
    # user (doki.auth.supabase_auth): it is told apart from a new one by no one, this answer included.
    message = SIGNED_UP if result.session else SIGNED_UP_PENDING
    return _auth_out(result, message, display_name=body.display_name)


@router.post(
    "/signin", response_model=AuthOut, summary="Sign in with email and password", responses=_SUPABASE_AUTH_ERRORS
)
async def signin(body: EmailPasswordIn, response: Response, upstreams: UpstreamsDep) -> AuthOut:
    result = await _call(upstreams, lambda auth: auth.sign_in_with_password(body.email, body.password))
    response.headers.update(NO_STORE)
    return _auth_out(result, SIGNED_IN)


@router.post(
    "/signout",
    response_model=SignOutOut,
    summary="Sign out: ends the caller's Supabase sessions",
    responses=_SUPABASE_AUTH_ERRORS,
)
async def signout(token: AccessTokenDep, upstreams: UpstreamsDep) -> SignOutOut:
    # Development without a token runs as the development user, who has no Supabase session to end.
    if token is not None:
        auth = _supabase_auth(upstreams)
        try:
            await auth.sign_out(token)
        except ConnectorError as failure:
            raise http_error(failure) from None
    return SignOutOut(status="signed_out", message="Successfully signed out")


def _auth_out(result: AuthResult, message: str, *, display_name: str | None = None) -> AuthOut:
    """The original's `AuthResponse` with our session beside it. `display_name`: the sign-up's own, else the one
    Supabase holds, else "" (the original: `user_metadata.get("display_name", "")`)."""
    session = result.session
    return AuthOut(
        status="authenticated" if session else "pending_confirmation",
        access_token=session.access_token if session else "",
        refresh_token=session.refresh_token if session else None,
        user=UserOut(
            id=result.user_id,
            email=result.email,
            display_name=display_name if display_name is not None else (result.display_name or ""),
        ),
        message=message,
        session=SessionOut(**session.as_dict()) if session else None,
    )


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
