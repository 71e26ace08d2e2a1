"""The user's own Supabase project: connect it, test it, list its tables, disconnect it.

The project URL and keys are stored encrypted and bound to the signed-in user (provider "supabase"); every
request reads only the caller's own row. Keys are never echoed back: not in answers, not in validation errors
(this router drops the offending input from them), not in log lines.

The original backend's paths (Tsu-kimi/Doki-Backend, `app/api/connectors.py`) answer its bodies, ours beside them:
`connect` its `success`, `message`, `connection_id`; `test` its `status` (`connected` or `disconnected`) and
`message`, with ours in `state`; `list` its bare array of `{table_name, schema_name, columns: [{name, type,
is_nullable, default_value}]}`. `/tables` is ours alone and keeps its shape.
"""

from __future__ import annotations

import json
import logging
import uuid
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
    Column,
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
_LIST_ERRORS = {
    **_TABLES_ERRORS,
    **error_responses(
        {
            404: "no project connected (code supabase_not_connected: reconnect), as the original backend answered; "
            "or the schema is not exposed",
            409: "the stored credentials no longer work: reconnect",
        }
    ),
}
CONNECTED_MESSAGE = "Supabase project connected successfully"
VERIFIED_MESSAGE = "Connection verified"


class ConnectIn(BaseModel):
    project_url: str = Field(description="the project's URL, https://<project ref>.supabase.co")
    service_role_key: SecretStr = Field(description="the secret key (sb_secret_...) or legacy service_role key")
    anon_key: SecretStr | None = Field(default=None, description="the publishable (anon) key, optional")


class ConnectionOut(BaseModel):
    success: Literal[True] = Field(default=True, description="always true: a failure is an error answer")
    message: str = CONNECTED_MESSAGE
    connection_id: str = Field(description="new at every connect: a reconnect is a new connection")
    status: Literal["connected"] = "connected"
    project_url: str
    project_ref: str | None = Field(description="the project ref of a *.supabase.co URL")
    has_anon_key: bool
    connected_at: datetime


class StatusOut(BaseModel):
    status: Literal["connected", "disconnected"] = Field(
        description="the original backend's verdict: connected, or disconnected (no connection, or it no longer "
        "works); `state` says which"
    )
    state: Literal["connected", "not_connected", "credentials_rejected"]
    project_url: str | None = None
    project_ref: str | None = None
    connected_at: datetime | None = None
    message: str = Field(description=f"{VERIFIED_MESSAGE!r} when connected; otherwise why not")
    hint: str | None = Field(default=None, description="what to do about it, when it is not connected")


class ListColumnOut(Column):
    """A column as the original backend listed it (`name`, `type`, `is_nullable`, `default_value`), with ours."""

    type: str = Field(  # always a string here, as the original's
        description="the Postgres type as PostgREST shows it (e.g. text, bigint, text[]); its JSON type when it "
        "shows none; 'unknown' when neither"
    )
    is_nullable: bool = Field(description="the same as `nullable`")
    default_value: str | None = Field(description="the default as text (JSON for a number or boolean), or null")


class ListTableOut(BaseModel):
    """A table or view as the original backend listed it (`table_name`, `schema_name`, `columns`), with ours."""

    table_name: str
    schema_name: str = Field(description="the schema asked for")
    columns: list[ListColumnOut]
    name: str = Field(description="the same as `table_name`")
    description: str | None = Field(default=None, description="the table's SQL comment")
    writable: bool = Field(description="whether rows can be inserted, updated or deleted through the API")


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
    # Metadata is for operators reading the table; requests go only where the encrypted payload says. The
    # original backend inserted a row per connect and answered its id: a new id per connect, kept beside.
    connection_id = str(uuid.uuid4())
    metadata = {"project_url": project.url, "project_ref": project.ref or "", "connection_id": connection_id}
    stored = await _store(store.put, principal.user_id, PROVIDER, ciphertext, metadata)
    logger.info("user %s connected the Supabase project %s", principal.user_id, project.url)
    return ConnectionOut(
        connection_id=connection_id,
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
        return _disconnected(not_connected())
    try:
        credentials, project = _stored_connection(row, principal.user_id, cipher, projects)
    except SupabaseProjectError as exc:
        return _disconnected(exc)
    shown = StatusOut(
        status="connected",
        state="connected",
        project_url=project.url,
        project_ref=project.ref,
        connected_at=row.updated_at,
        message=VERIFIED_MESSAGE,
    )
    try:
        await projects.verify(credentials)
    except CredentialsRejectedError as exc:
        update = {"status": "disconnected", "state": "credentials_rejected", "message": exc.message, "hint": exc.hint}
        return shown.model_copy(update=update)
    except SupabaseProjectError as exc:
        if exc.status_code == 400:  # the stored URL is no longer one to send the key to
            return _disconnected(exc)
        # Unreachable or failing: not a verdict on the connection ("disconnected" would say reconnect), a retry.
        raise _http(exc) from None
    return shown


def _disconnected(error: SupabaseProjectError) -> StatusOut:
    return StatusOut(status="disconnected", state="not_connected", message=error.message, hint=error.hint)


@router.get(
    "/tables",
    response_model=TablesOut,
    summary="Tables and columns of a schema of the user's Supabase project",
    description="Read from the OpenAPI description the project's PostgREST serves: nothing is installed in "
    "the project.",
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


@router.get(
    "/list",
    response_model=list[ListTableOut],
    summary="Tables and columns of a schema of the user's Supabase project, as the original backend listed them",
    description="The tables of /tables as a bare array, each with the original backend's `table_name`, "
    "`schema_name` and columns' `type`, `is_nullable`, `default_value` beside ours. Without a connection the "
    "answer is 404, as the original's (/tables: 409).",
    responses=_LIST_ERRORS,
)
async def list_tables(
    principal: PrincipalDep,
    store: StoreDep,
    cipher: CipherDep,
    projects: SupabaseProjectsDep,
    schema: Annotated[str, Query(description="a schema the project exposes")] = "public",
) -> list[ListTableOut]:
    try:
        check_schema_name(schema)
        row = await _store(store.get, principal.user_id, PROVIDER)
        try:
            if row is None:
                raise not_connected()
            credentials, _ = _stored_connection(row, principal.user_id, cipher, projects)
        except SupabaseProjectError as exc:
            raise _not_found(exc) from None
        found = await projects.tables(credentials, schema)
    except SupabaseProjectError as exc:
        raise _http(exc) from None
    return [_listed(table, schema) for table in found]


def _not_found(error: SupabaseProjectError) -> SupabaseProjectError:
    """`error` (no usable connection) answered 404, as the original backend answered it on /list."""
    return SupabaseProjectError(404, error.code, error.message, hint=error.hint, headers=error.headers, **error.extra)


def _listed(table: Table, schema: str) -> ListTableOut:
    return ListTableOut(
        table_name=table.name,
        schema_name=schema,
        columns=[_listed_column(column) for column in table.columns],
        name=table.name,
        description=table.description,
        writable=table.writable,
    )


def _listed_column(column: Column) -> ListColumnOut:
    default = column.default
    return ListColumnOut(
        **column.model_dump(exclude={"type"}),
        type=column.type or column.json_type or "unknown",
        is_nullable=column.nullable,
        default_value=None if default is None else default if isinstance(default, str) else json.dumps(default),
    )


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
