"""Request dependencies. Everything a route needs comes from `app.state` through these, never a module global,
so each test builds an app with its own settings, store and verifier."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from doki.auth import (
    DEVELOPMENT_PRINCIPAL,
    AuthUnavailableError,
    InvalidTokenError,
    Principal,
    VerifierProvider,
)
from doki.connectors import Upstreams
from doki.connectors.supabase_project import SupabaseProjects
from doki.crypto import CredentialCipher
from doki.settings import Settings
from doki.storage import CredentialStore


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_verifiers(request: Request) -> VerifierProvider:
    verifiers: VerifierProvider = request.app.state.verifiers
    return verifiers


def get_store(request: Request) -> CredentialStore:
    store: CredentialStore = request.app.state.store
    return store


def get_cipher(request: Request) -> CredentialCipher:
    cipher: CredentialCipher = request.app.state.cipher
    return cipher


def get_supabase_projects(request: Request) -> SupabaseProjects:
    projects: SupabaseProjects = request.app.state.supabase_projects
    return projects


SettingsDep = Annotated[Settings, Depends(get_settings)]
VerifiersDep = Annotated[VerifierProvider, Depends(get_verifiers)]
StoreDep = Annotated[CredentialStore, Depends(get_store)]
CipherDep = Annotated[CredentialCipher, Depends(get_cipher)]
SupabaseProjectsDep = Annotated[SupabaseProjects, Depends(get_supabase_projects)]


def get_upstreams(request: Request) -> Upstreams:
    upstreams: Upstreams = request.app.state.upstreams
    return upstreams


UpstreamsDep = Annotated[Upstreams, Depends(get_upstreams)]

_bearer = HTTPBearer(auto_error=False, description="A Supabase Auth access token")


_HINTS = {
    # The challenge's error code (RFC 6750), or none for a request that sent no credentials at all.
    None: "sign in with Supabase Auth, then send the access token as 'Authorization: Bearer <token>'",
    "invalid_request": "send the access token as 'Authorization: Bearer <token>'",
    "invalid_token": "sign in again (the token expired, or is not one of this project's), then send the new one",
}


def _unauthorized(error: str | None, description: str) -> HTTPException:
    """401 with a `WWW-Authenticate` challenge, and the body every other error has (doki.api.errors)."""
    challenge = 'Bearer realm="doki"'
    if error:
        # Header values cannot carry quotes or newlines; descriptions are ours, but stay defensive.
        safe = description.replace('"', "'").replace("\r", " ").replace("\n", " ")
        challenge += f', error="{error}", error_description="{safe}"'
    detail = {"code": error or "unauthorized", "message": description, "hint": _HINTS[error]}
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": challenge})


async def get_principal(
    request: Request,
    settings: SettingsDep,
    verifiers: VerifiersDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The signed-in user. Development without any Authorization header runs as a fixed development user."""
    if credentials is None:
        if request.headers.get("authorization"):
            raise _unauthorized("invalid_request", "the Authorization header must be 'Bearer <access token>'")
        if not settings.is_production:
            return DEVELOPMENT_PRINCIPAL
        raise _unauthorized(None, "sign in: send 'Authorization: Bearer <Supabase access token>'")
    try:
        return await verifiers.get().verify(credentials.credentials)
    except InvalidTokenError as exc:
        raise _unauthorized("invalid_token", exc.description) from None
    except AuthUnavailableError as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail={
                "code": "auth_unavailable",
                "message": exc.description,
                "hint": "retry shortly: the token cannot be checked until Supabase's signing keys are reachable",
            },
            headers={"Retry-After": "5"},
        ) from None


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def get_access_token(
    principal: PrincipalDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> str | None:
    """The caller's own access token, verified, for calls made on their behalf (signing out). None only in
    development without an Authorization header: the development user, who has no token (production refuses such a
    request in `get_principal`)."""
    return credentials.credentials if credentials is not None else None


AccessTokenDep = Annotated[str | None, Depends(get_access_token)]
