"""The user's own Supabase project: connect it, test it, list its tables, disconnect it.

The project URL and keys are stored encrypted and bound to the signed-in user (provider "supabase"); every
request reads only the caller's own row. Keys are never echoed back: not in answers, not in validation errors
(this router drops the offending input from them), not in log lines.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field, SecretStr

from doki.api.deps import CipherDep, PrincipalDep, StoreDep, SupabaseProjectsDep
from doki.api.errors import error_responses
from doki.connectors import call_store
from doki.connectors.errors import ConnectorError
from doki.connectors.supabase_project import (
    PROVIDER,
    CredentialsRejectedError,
    ProjectCredentials,
    ProjectURL,
    SupabaseProjectError,
    SupabaseProjects,
    Table,
    check_schema_name,
    not_connected,
)
from doki.crypto import CredentialCipher, CredentialDecryptError
from doki.storage import StoredCredential

logger = logging.getLogger(__name__)
T = TypeVar("T")


class _NoInputEcho(APIRoute):
    """FastAPI's 422 answer, minus the `input` and `ctx` it would copy from the request (a key, say)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                errors = [{k: v for k, v in e.items() if k not in ("input", "ctx")} for e in exc.errors()]
                raise RequestValidationError(errors) from None

        return route


router = APIRouter(prefix="/connectors/supabase", tags=["supabase"], route_class=_NoInputEcho)

_UNREACHABLE = "the project or the credential store is unreachable (retry later), or the store is misconfigured"
_ERRORS = error_responses(
    {
        400: "a bad project URL, key or schema name, or a key the project rejected",
        409: "no project connected, or its stored credentials no longer work: reconnect",
        503: _UNREACHABLE,
    }
)
_TABLES_ERRORS = {
    **_ERRORS,
    **error_responses({404: "the schema is not exposed", 502: "the project answered something unexpected"}),
}


class ConnectIn(BaseModel):
    project_url: str = Field(description="the project's URL, https://<project ref>.supabase.co")
    service_role_key: SecretStr = Field(description="the secret key (sb_secret_...) or legacy service_role key")
    anon_key: SecretStr | None = Field(default=None, description="the publishable (anon) key, optional")


class ConnectionOut(BaseModel):
    status: Literal["connected"] = "connected"
    project_url: str
    project_ref: str | None = Field(description="the project ref of a *.supabase.co URL")
    has_anon_key: bool
    connected_at: datetime


class StatusOut(BaseModel):
    status: Literal["connected", "not_connected", "credentials_rejected"]
    project_url: str | None = None
    project_ref: str | None = None
    connected_at: datetime | None = None
    message: str | None = Field(default=None, description="why it is not connected, when it is not")
    hint: str | None = Field(default=None, description="what to do about it")


class TablesOut(BaseModel):
    project_url: str
    # "schema" would shadow a BaseModel attribute: the field has another name, the JSON the expected one.
    schema_name: str = Field(alias="schema")
    tables: list[Table]


class DisconnectOut(BaseModel):
    disconnected: bool = Field(description="false when no project was connected")


@router.post(
    "/connect",
    response_model=ConnectionOut,
    summary="Connect the user's Supabase project",
    description="Checks the URL, tries the keys against the project, then stores them encrypted. "
    "Keys are never returned.",
    responses={**_ERRORS, **error_responses({502: "no Supabase API answers at that URL"})},
)
async def connect(
    body: ConnectIn,
    principal: PrincipalDep,
    store: StoreDep,
    cipher: CipherDep,
    projects: SupabaseProjectsDep,
) -> ConnectionOut:
    anon = body.anon_key.get_secret_value() if body.anon_key is not None else None
    try:
        project = projects.parse_url(body.project_url)
        credentials = ProjectCredentials.checked(project.url, body.service_role_key.get_secret_value(), anon)
        await projects.verify(credentials)
    except SupabaseProjectError as exc:
        raise _http(exc) from None
    ciphertext = cipher.encrypt(principal.user_id, credentials.to_json())
    # Metadata is for operators reading the table; requests go only where the encrypted payload says.
    metadata = {"project_url": project.url, "project_ref": project.ref or ""}
    stored = await _store(store.put, principal.user_id, PROVIDER, ciphertext, metadata)
    logger.info("user %s connected the Supabase project %s", principal.user_id, project.url)
    return ConnectionOut(
        project_url=project.url,
        project_ref=project.ref,
        has_anon_key=credentials.anon_key is not None,
        connected_at=stored.updated_at,
    )


@router.get(
    "/test",
    response_model=StatusOut,
    summary="Whether the user's Supabase project is connected and accepts its key",
    responses=error_responses({502: "the project answered something unexpected", 503: _UNREACHABLE}),
)
async def check(
    principal: PrincipalDep, store: StoreDep, cipher: CipherDep, projects: SupabaseProjectsDep
) -> StatusOut:
    row = await _store(store.get, principal.user_id, PROVIDER)
    if row is None:
        error = not_connected()
        return StatusOut(status="not_connected", message=error.message, hint=error.hint)
    try:
        credentials, project = _stored_connection(row, principal.user_id, cipher, projects)
    except SupabaseProjectError as exc:
        return StatusOut(status="not_connected", message=exc.message, hint=exc.hint)
    shown = StatusOut(status="connected", project_url=project.url, project_ref=project.ref, connected_at=row.updated_at)
    try:
        await projects.verify(credentials)
    except CredentialsRejectedError as exc:
        return shown.model_copy(update={"status": "credentials_rejected", "message": exc.message, "hint": exc.hint})
    except SupabaseProjectError as exc:
        if exc.status_code == 400:  # the stored URL is no longer one to send the key to
            return StatusOut(status="not_connected", message=exc.message, hint=exc.hint)
        raise _http(exc) from None
    return shown


@router.get(
    "/tables",
    response_model=TablesOut,
    summary="Tables and columns of a schema of the user's Supabase project",
    description="Read from the OpenAPI description the project's PostgREST serves: nothing is installed in "
    "the project.",
    responses=_TABLES_ERRORS,
)
@router.get(
    "/list",
    response_model=TablesOut,
    summary="Tables and columns of a schema of the user's Supabase project (alias of /tables)",
    responses=_TABLES_ERRORS,
)
async def tables(
    principal: PrincipalDep,
    store: StoreDep,
    cipher: CipherDep,
    projects: SupabaseProjectsDep,
    schema: Annotated[str, Query(description="a schema the project exposes")] = "public",
) -> TablesOut:
    try:
        check_schema_name(schema)
        row = await _store(store.get, principal.user_id, PROVIDER)
        if row is None:
            raise not_connected()
        credentials, _ = _stored_connection(row, principal.user_id, cipher, projects)
        found = await projects.tables(credentials, schema)
    except SupabaseProjectError as exc:
        raise _http(exc) from None
    return TablesOut(project_url=credentials.project_url, schema=schema, tables=found)


@router.delete(
    "",
    response_model=DisconnectOut,
    summary="Disconnect the user's Supabase project (its stored keys are deleted)",
    responses=error_responses({503: _UNREACHABLE}),
)
async def disconnect(principal: PrincipalDep, store: StoreDep) -> DisconnectOut:
    deleted = await _store(store.delete, principal.user_id, PROVIDER)
    if deleted:
        logger.info("user %s disconnected their Supabase project", principal.user_id)
    return DisconnectOut(disconnected=deleted)


def _stored_connection(
    row: StoredCredential, user_id: str, cipher: CredentialCipher, projects: SupabaseProjects
) -> tuple[ProjectCredentials, ProjectURL]:
    """The caller's stored credentials and their project URL, checked again before a key is sent there."""
    try:
        credentials = ProjectCredentials.from_json(cipher.decrypt(user_id, row.ciphertext))
    except (CredentialDecryptError, ValueError) as exc:
        # Undecryptable (a dropped key), bound to someone else (copied between rows), or unreadable: unusable.
        raise not_connected(f"the stored Supabase connection cannot be used: {exc}") from None
    try:
        project = projects.parse_url(credentials.project_url)
    except SupabaseProjectError as exc:
        raise not_connected(f"the stored Supabase connection cannot be used: {exc.message}") from None
    return credentials, project


async def _store(call: Callable[..., T], *args: Any) -> T:
    """A credential store call (see doki.connectors.store): its failures become 503s, never 500s."""
    try:
        return await call_store(call, *args)
    except ConnectorError as exc:
        raise _http(exc) from None


def _http(error: ConnectorError) -> HTTPException:
    return HTTPException(error.status_code, detail=error.body(), headers=error.headers or None)
