"""A local stand-in for Supabase's PostgREST (`/rest/v1/<table>`), so store tests speak real HTTP.

It implements the subset `SupabaseCredentialStore` uses, with PostgREST's wire behaviour: `select`, column
filters (`eq`, `neq`, `gt`, `gte`, `lt`, `lte`, `is`, with `not.`), `or`/`and` logic trees with quoted values,
`order`, `limit`, `offset`; POST inserts and upserts (`Prefer: resolution=merge-duplicates` or
`ignore-duplicates`, `on_conflict`); PATCH and DELETE with filters (refused without one, as Supabase's
pg-safeupdate does); `Prefer: return=representation|minimal`. Errors carry PostgREST's JSON body
(`code`, `message`, `details`, `hint`) and status: 401 for a missing or wrong `apikey` (the Supabase gateway's
answer) or a bearer token that is not a valid JWT (PGRST301), 404 PGRST205 for an unknown table, 400 42703
for an unknown column, 409 23505 for a duplicate insert, 400 22P02 for a bad uuid.

`bytea` columns take and give what Postgres's text forms do (https://www.postgresql.org/docs/current/datatype-binary.html):
a JSON string in is read as bytea input, hex (`\\x` and digit pairs) or escape format (other characters as their
UTF-8 bytes, `\\\\` and `\\ooo` escapes), and a value out is the hex output format (`bytea_output = hex`, the
default): `"\\x"` and lowercase hex digits, which PostgREST hands over as a JSON string.

The root, `GET /rest/v1/`, serves PostgREST's OpenAPI (Swagger 2.0) description of the schema's tables as
PostgREST builds it: one `definitions` entry per table with its non-null columns in `required`, each column's
Postgres type in `format` and its JSON type in `type`, keys noted in the column description
(`Note:\nThis is a Primary Key.<pk/>`, `<fk table='t' column='c'/>`), defaults as PostgREST parses them, and
one path per table (read-only views get only `get`). As Supabase's gateway does, the root answers only the
secret (service role) key; the anon key gets 403 there and 401 42501 on tables, whose grants it lacks.

Schemas: `public` plus any declared in `schemas`; `Accept-Profile` (reads) and `Content-Profile` (writes) pick
one, and a schema that is not exposed gets 406 PGRST106, as PostgREST answers.

Tables are declared with `TableSpec`, which emulates column defaults and an `updated_at` trigger.
`fail_next` and `delay_next` inject outages and slowness; `stop()` makes the server unreachable.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import sys
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.helpers import secret

Row = dict[str, Any]
Predicate = Callable[[Row], bool]

_RESERVED_PARAMS = frozenset({"select", "order", "limit", "offset", "on_conflict", "columns", "or", "and"})
_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b,
    "neq": lambda a, b: a != b,
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
}
_IS_VALUES: dict[str, object] = {"null": None, "true": True, "false": False}


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _now_without_time_zone() -> str:
    # `timestamp` (without time zone) keeps the server's wall time, UTC on Supabase, and prints no offset.
    return datetime.now(UTC).replace(tzinfo=None).isoformat()


@dataclass(frozen=True)
class TableSpec:
    """A table's shape: its columns, primary key, and what the database fills in on its own."""

    columns: tuple[str, ...]
    primary_key: tuple[str, ...]
    not_null: frozenset[str] = frozenset()
    uuid_columns: frozenset[str] = frozenset()
    # Column defaults, evaluated per inserted row (like `default now()`).
    defaults: Mapping[str, Callable[[], Any]] = field(default_factory=dict)
    # Columns a BEFORE UPDATE trigger sets to now().
    touch_on_update: tuple[str, ...] = ()
    # What the OpenAPI description shows. Postgres type names as PostgREST prints them ("text" when unlisted).
    types: Mapping[str, str] = field(default_factory=dict)
    # Column defaults as Postgres prints them (`now()`, `'draft'::text`, `nextval('t_id_seq'::regclass)`).
    sql_defaults: Mapping[str, str] = field(default_factory=dict)
    comment: str | None = None
    column_comments: Mapping[str, str] = field(default_factory=dict)
    # Single-column foreign keys: column -> (table, column).
    foreign_keys: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    # Enum-typed columns: column -> the enum's labels.
    enums: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # False for a read-only view: its OpenAPI path has `get` only.
    writable: bool = True
    # Columns of type bytea: stored as bytes, read in and written out in Postgres's text forms (see the docstring).
    bytea_columns: frozenset[str] = frozenset()


# Mirrors migrations/supabase/0001_doki_credentials.sql (tests/container/test_migration_postgres.py holds it to the
# table the migration makes in a real PostgreSQL).
CREDENTIALS_TABLE = TableSpec(
    columns=("user_id", "provider", "ciphertext", "metadata", "created_at", "updated_at"),
    primary_key=("user_id", "provider"),
    not_null=frozenset({"user_id", "provider", "ciphertext", "metadata", "created_at", "updated_at"}),
    uuid_columns=frozenset({"user_id"}),
    defaults={"metadata": dict, "created_at": _now, "updated_at": _now},
    touch_on_update=("updated_at",),
    types={
        "user_id": "uuid",
        "metadata": "jsonb",
        "created_at": "timestamp with time zone",
        "updated_at": "timestamp with time zone",
    },
    sql_defaults={"metadata": "'{}'::jsonb", "created_at": "now()", "updated_at": "now()"},
    comment="Doki connector credentials, encrypted by the backend; read only with the service role.",
)


# The original backend's table (Tsu-kimi/Doki-Backend at 3beecd6): the columns AUTH_IMPLEMENTATION.md:248-259
# documents, plus `metadata`, which app/connectors/supabase.py:55-61 writes (jsonb) and Google rows leave out.
# Rows are only ever inserted there, several per user and provider.
ORIGINAL_CREDENTIALS_TABLE = TableSpec(
    columns=(
        "id",
        "user_id",
        "provider",
        "access_token_encrypted",
        "refresh_token_encrypted",
        "expires_at",
        "scopes",
        "metadata",
        "created_at",
        "updated_at",
    ),
    primary_key=("id",),
    not_null=frozenset({"id", "user_id", "provider", "created_at", "updated_at"}),
    uuid_columns=frozenset({"id", "user_id"}),
    defaults={
        "id": lambda: str(uuid.uuid4()),
        "created_at": _now_without_time_zone,
        "updated_at": _now_without_time_zone,
    },
    touch_on_update=("updated_at",),
    types={
        "id": "uuid",
        "user_id": "uuid",
        "access_token_encrypted": "bytea",
        "refresh_token_encrypted": "bytea",
        "expires_at": "timestamp without time zone",
        "scopes": "text[]",
        "metadata": "jsonb",
        "created_at": "timestamp without time zone",
        "updated_at": "timestamp without time zone",
    },
    sql_defaults={"id": "gen_random_uuid()", "created_at": "now()", "updated_at": "now()"},
    bytea_columns=frozenset({"access_token_encrypted", "refresh_token_encrypted"}),
)


@dataclass(frozen=True)
class RecordedRequest:
    """A request as the server received it; header names are lowercase."""

    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]


class PostgrestError(Exception):
    """An error answer, in PostgREST's JSON shape."""

    def __init__(
        self, status: int, code: str | None, message: str, details: str | None = None, hint: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"code": code, "message": message, "details": details, "hint": hint}


@dataclass
class _Fault:
    status: int
    body: bytes
    content_type: str
    method: str | None = None
    after: int = 0  # matching requests answered as usual before this one fails


class FakePostgrest:
    """The server: `start()` binds an ephemeral port on 127.0.0.1 and serves from a background thread.

    `apikey` is the project's secret (service role) key; `anon_key`, when given, its anon (publishable) key.
    `tables` are the `public` schema's; `schemas` adds other exposed schemas with their tables.
    `ssl_context` (server side) makes it serve https, as a hosted project does.
    """

    def __init__(
        self,
        apikey: str,
        tables: Mapping[str, TableSpec] | None = None,
        *,
        schemas: Mapping[str, Mapping[str, TableSpec]] | None = None,
        anon_key: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.ssl_context = ssl_context
        self.apikey = secret("a Supabase service role key", apikey)
        self.anon_key = secret("a Supabase anon key", anon_key) if anon_key is not None else None
        self.specs = dict(tables if tables is not None else {"doki_credentials": CREDENTIALS_TABLE})
        self.schemas: dict[str, dict[str, TableSpec]] = {
            "public": self.specs,
            **{name: dict(specs) for name, specs in (schemas or {}).items()},
        }
        self.requests: list[RecordedRequest] = []
        self._data: dict[tuple[str, str], list[Row]] = {
            (schema, name): [] for schema, specs in self.schemas.items() for name in specs
        }
        self._lock = threading.Lock()
        self._faults: list[_Fault] = []
        self._delays: list[float] = []
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL to use as SUPABASE_URL."""
        if self._server is None:
            raise RuntimeError("the fake PostgREST server is not started")
        host, port = self._server.server_address[:2]
        return f"{'https' if self.ssl_context else 'http'}://{host!s}:{port}"

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the fake PostgREST server is not started")
        return int(self._server.server_address[1])

    def start(self) -> FakePostgrest:
        self._server = _Server(("127.0.0.1", 0), _Handler, self)
        if self.ssl_context is not None:
            # The handshake runs as each connection is accepted; a client that refuses the certificate is dropped.
            self._server.socket = self.ssl_context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="fake-postgrest", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the port: later requests are refused. The URL stays readable.

        Kept-alive connections are dropped too, as a server that goes down drops them: a client's pooled
        connection must not go on reaching a stopped server.
        """
        self._stopping.set()
        if self._server is not None and self._thread is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server.drop_connections()
            self._thread.join()
            self._thread = None

    def __enter__(self) -> FakePostgrest:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def fail_next(
        self,
        count: int = 1,
        status: int = 503,
        body: str | None = None,
        content_type: str = "application/json",
        *,
        method: str | None = None,
        after: int = 0,
    ) -> None:
        """Answer the next `count` requests (those with `method`, when given) with `status` and `body` (PostgREST's
        PGRST001 by default), once `after` of them have been answered as usual."""
        if body is None:
            body = json.dumps(
                {
                    "code": "PGRST001",
                    "message": "Database client error. Retrying the connection.",
                    "details": None,
                    "hint": None,
                }
            )
        with self._lock:
            fault = _Fault(status, body.encode(), content_type, method)
            self._faults += [replace(fault, after=after)] + [fault] * (count - 1) if count else []

    def delay_next(self, count: int, seconds: float) -> None:
        """Hold the next `count` requests for `seconds` before answering (`stop()` releases them)."""
        with self._lock:
            self._delays += [seconds] * count

    def rows(self, table: str = "doki_credentials", *, schema: str = "public") -> list[Row]:
        """A copy of the table's rows, in insertion order."""
        with self._lock:
            return [dict(row) for row in self._data[schema, table]]

    def insert_row(self, table: str, row: Row, *, schema: str = "public") -> None:
        """Put a row straight into the table, bypassing HTTP (for setting up odd states)."""
        spec = self.schemas[schema][table]
        with self._lock:
            self._data[schema, table].append(_complete_row(spec, table, row))

    # The request handler calls these.

    def _take_fault(self, method: str) -> tuple[_Fault | None, float]:
        with self._lock:
            fault = next((f for f in self._faults if f.method in (None, method)), None)
            if fault is not None and fault.after:
                self._faults[self._faults.index(fault)] = replace(fault, after=fault.after - 1)
                fault = None
            elif fault is not None:
                self._faults.remove(fault)
            delay = self._delays.pop(0) if self._delays else 0.0
        return fault, delay

    def _wait(self, seconds: float) -> None:
        self._stopping.wait(seconds)

    def _handle(
        self, method: str, path: str, query: list[tuple[str, str]], headers: dict[str, str], body: bytes
    ) -> tuple[int, Any]:
        """(status, JSON body or None) for one request that passed fault injection."""
        if not path.startswith("/rest/v1/"):
            return 404, {"message": "no Route matched with those values"}
        role = _check_auth(headers, self.apikey, self.anon_key)
        table = path.removeprefix("/rest/v1/")
        if not table and role != "service_role":
            # Supabase's gateway serves the schema description to the secret (service role) key only.
            raise PostgrestError(403, None, "Access to the OpenAPI description requires the secret key")
        schema = self._profile(method, headers)
        if not table:
            if method != "GET":
                raise PostgrestError(405, "PGRST117", f"Unsupported HTTP method: {method}")
            return 200, self._openapi(schema)
        if role != "service_role":
            # The anon role has no grants on these tables (see migrations/supabase/0001_doki_credentials.sql).
            raise PostgrestError(401, "42501", f"permission denied for table {table}")
        spec = self.schemas[schema].get(table)
        if spec is None:
            raise PostgrestError(404, "PGRST205", f"Could not find the table '{schema}.{table}' in the schema cache")
        params = _Params.parse(query, spec, table)
        prefer = _prefer(headers.get("prefer", ""))
        with self._lock:
            rows = self._data[schema, table]
            if method == "GET":
                return 200, params.shape(rows)
            payload = _json_body(body) if method in ("POST", "PATCH") else None
            if method == "POST":
                written = _insert(spec, table, rows, payload, params, prefer)
                status = 201
            elif method == "PATCH":
                written = _update(spec, table, rows, payload, params)
                status = 200
            else:
                written = _delete(table, rows, params)
                status = 200
        if prefer.get("return") == "representation":
            return status, params.project(written)
        return (201 if method == "POST" else 204), None

    def _profile(self, method: str, headers: Mapping[str, str]) -> str:
        """The schema the request targets: Accept-Profile for reads, Content-Profile for writes, else public."""
        header = "accept-profile" if method in ("GET", "HEAD") else "content-profile"
        schema = headers.get(header, "public")
        if schema not in self.schemas:
            raise PostgrestError(
                406,
                "PGRST106",
                f"Invalid schema: {schema}",
                hint=f"Only the following schemas are exposed: {', '.join(self.schemas)}",
            )
        return schema

    def _openapi(self, schema: str) -> dict[str, Any]:
        """The root's answer: PostgREST's Swagger 2.0 description of `schema`."""
        host = self.url.removeprefix("http://")
        paths: dict[str, Any] = {
            "/": {
                "get": {
                    "tags": ["Introspection"],
                    "summary": "OpenAPI description (this document)",
                    "produces": ["application/openapi+json", "application/json"],
                    "responses": {"200": {"description": "OK"}},
                }
            }
        }
        definitions: dict[str, Any] = {}
        for name, spec in self.schemas[schema].items():
            definitions[name] = _definition(spec)
            paths[f"/{name}"] = _path_item(name, spec)
        return {
            "swagger": "2.0",
            "info": {
                "description": "",
                "title": "standard public schema" if schema == "public" else "PostgREST API",
                "version": "12.2.3",
            },
            "host": host,
            "basePath": "/",
            "schemes": ["http"],
            "consumes": _MEDIA_TYPES,
            "produces": _MEDIA_TYPES,
            "paths": paths,
            "definitions": definitions,
            "externalDocs": {
                "description": "PostgREST Documentation",
                "url": "https://postgrest.org/en/v12/references/api.html",
            },
        }


_MEDIA_TYPES = [
    "application/json",
    "application/vnd.pgrst.object+json;nulls=stripped",
    "application/vnd.pgrst.object+json",
    "text/csv",
]
# PostgREST's mapping of Postgres types to Swagger types; json and jsonb get none, arrays are "array",
# everything else (dates, uuids, enums, ...) is a string.
_SWAGGER_TYPES = {
    "character varying": "string",
    "character": "string",
    "text": "string",
    "boolean": "boolean",
    "smallint": "integer",
    "integer": "integer",
    "bigint": "integer",
    "numeric": "number",
    "real": "number",
    "double precision": "number",
}


def _swagger_type(pg_type: str) -> str | None:
    if pg_type in ("json", "jsonb"):
        return None
    if pg_type.endswith("[]"):
        return "array"
    return _SWAGGER_TYPES.get(pg_type, "string")


def _openapi_default(pg_type: str, sql_default: str) -> tuple[bool, Any]:
    """(present, value): PostgREST quotes string-typed defaults and drops those that are not JSON."""
    text = sql_default
    if _swagger_type(pg_type) == "string":
        text = text.removesuffix(f"::{pg_type}").strip("'")
        return True, text
    try:
        return True, json.loads(text)
    except ValueError:
        return False, None


def _definition(spec: TableSpec) -> dict[str, Any]:
    definition: dict[str, Any] = {}
    if spec.comment:
        definition["description"] = spec.comment
    definition["type"] = "object"
    definition["properties"] = {column: _property(spec, column) for column in spec.columns}
    required = [column for column in spec.columns if column in spec.not_null]
    if required:
        definition["required"] = required
    return definition


def _property(spec: TableSpec, column: str) -> dict[str, Any]:
    pg_type = spec.types.get(column, "text")
    prop: dict[str, Any] = {}
    if column in spec.sql_defaults:
        present, value = _openapi_default(pg_type, spec.sql_defaults[column])
        if present:
            prop["default"] = value
    notes = ["Note:"]
    if column in spec.primary_key:
        notes.append("This is a Primary Key.<pk/>")
    if column in spec.foreign_keys:
        table, target = spec.foreign_keys[column]
        notes.append(f"This is a Foreign Key to `{table}.{target}`.<fk table='{table}' column='{target}'/>")
    comment = spec.column_comments.get(column)
    if len(notes) > 1:
        prop["description"] = (f"{comment}\n\n" if comment else "") + "\n".join(notes)
    elif comment:
        prop["description"] = comment
    if column in spec.enums:
        prop["enum"] = list(spec.enums[column])
    prop["format"] = pg_type
    swagger = _swagger_type(pg_type)
    if swagger is not None:
        prop["type"] = swagger
    if swagger == "array":
        item = _swagger_type(pg_type.removesuffix("[]"))
        prop["items"] = {"type": item} if item else {}
    return prop


def _path_item(name: str, spec: TableSpec) -> dict[str, Any]:
    tags = [name]
    item: dict[str, Any] = {
        "get": {
            "tags": tags,
            "responses": {
                "200": {
                    "description": "OK",
                    "schema": {"type": "array", "items": {"$ref": f"#/definitions/{name}"}},
                },
                "206": {"description": "Partial Content"},
            },
        }
    }
    if spec.writable:
        item["post"] = {"tags": tags, "responses": {"201": {"description": "Created"}}}
        item["patch"] = {"tags": tags, "responses": {"204": {"description": "No Content"}}}
        item["delete"] = {"tags": tags, "responses": {"204": {"description": "No Content"}}}
    return item


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], fake: FakePostgrest) -> None:
        super().__init__(address, handler)
        self.fake = fake
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already gone
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out hangs up before the delayed answer: expected, not worth a traceback.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, each answer would wait for a delayed ACK.
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: pytest shows failures, not every request."""

    def _serve(self) -> None:
        fake = self.server.fake
        parts = urlsplit(self.path)
        query = parse_qsl(parts.query, keep_blank_values=True)
        headers = {name.lower(): value for name, value in self.headers.items()}
        body = self.rfile.read(int(headers.get("content-length") or 0))
        fake.requests.append(RecordedRequest(self.command, parts.path, query, headers))
        fault, delay = fake._take_fault(self.command)
        if delay:
            fake._wait(delay)
        if fault is not None:
            self._send(fault.status, fault.body, fault.content_type)
            return
        try:
            status, answer = fake._handle(self.command, parts.path, query, headers, body)
        except PostgrestError as error:
            status, answer = error.status, error.body
        encoded = b"" if answer is None else json.dumps(answer).encode()
        media = "application/openapi+json" if parts.path == "/rest/v1/" and status == 200 else "application/json"
        self._send(status, encoded, f"{media}; charset=utf-8")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        if body:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _check_auth(headers: Mapping[str, str], apikey: str, anon_key: str | None) -> str:
    """The role the request runs as ("service_role" or "anon"), or the error Supabase answers."""
    # The Supabase gateway checks `apikey`; PostgREST then verifies any bearer token as a JWT.
    given = headers.get("apikey")
    if not given:
        raise PostgrestError(
            401,
            None,
            "No API key found in request",
            hint="No `apikey` request header or url param was found.",
        )
    if given != apikey and (anon_key is None or given != anon_key):
        raise PostgrestError(
            401, None, "Invalid API key", hint="Double check your Supabase `anon` or `service_role` API key."
        )
    role = "service_role" if given == apikey else "anon"
    authorization = headers.get("authorization")
    if authorization is None:
        return role
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise PostgrestError(401, "PGRST301", "No suitable key or wrong key type")
    segments = token.count(".") + 1
    if segments != 3:
        raise PostgrestError(401, "PGRST301", f"Expected 3 parts in JWT; got {segments}")
    if token != given:
        raise PostgrestError(401, "PGRST301", "JWSError JWSInvalidSignature")
    return role


def _prefer(header: str) -> dict[str, str]:
    prefs = {}
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key:
            prefs[key] = value
    return prefs


def _json_body(body: bytes) -> Any:
    try:
        return json.loads(body or b"null")
    except ValueError:
        raise PostgrestError(400, "PGRST102", "Empty or invalid json") from None


def _canonical_uuid(value: Any) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise PostgrestError(400, "22P02", f'invalid input syntax for type uuid: "{value}"') from None


def _complete_row(spec: TableSpec, table: str, given: Row) -> Row:
    """`given` with defaults filled in, uuids canonical, not-null checked: the row as Postgres stores it."""
    row: Row = {}
    for column in spec.columns:
        if column in given:
            row[column] = given[column]
        elif column in spec.defaults:
            row[column] = spec.defaults[column]()
        else:
            row[column] = None
    return _checked(spec, table, row)


def _checked(spec: TableSpec, table: str, row: Row) -> Row:
    for column in spec.columns:
        if row[column] is None:
            if column in spec.not_null:
                raise PostgrestError(
                    400,
                    "23502",
                    f'null value in column "{column}" of relation "{table}" violates not-null constraint',
                )
        elif column in spec.uuid_columns:
            row[column] = _canonical_uuid(row[column])
        elif column in spec.bytea_columns and not isinstance(row[column], bytes):
            row[column] = _bytea_input(row[column])
    return row


def _bytea_input(value: Any) -> bytes:
    """A JSON value as Postgres reads it into a bytea column: a string in hex or escape format."""
    if not isinstance(value, str):
        raise PostgrestError(400, "22P02", "invalid input syntax for type bytea")
    if value.startswith("\\x"):
        return _bytea_hex(value[2:])
    return _bytea_escape(value)


def _bytea_hex(digits: str) -> bytes:
    # Postgres's hex_decode (src/backend/utils/adt/encode.c): whitespace between digit pairs, never inside one.
    out = bytearray()
    position = 0
    while position < len(digits):
        if digits[position] in " \n\t\r":
            position += 1
            continue
        high = _hex_digit(digits[position])
        if position + 1 >= len(digits):
            raise PostgrestError(400, "22023", "invalid hexadecimal data: odd number of digits")
        out.append(high << 4 | _hex_digit(digits[position + 1]))
        position += 2
    return bytes(out)


def _hex_digit(char: str) -> int:
    if char not in "0123456789abcdefABCDEF":
        raise PostgrestError(400, "22023", f'invalid hexadecimal digit: "{char}"')
    return int(char, 16)


def _bytea_escape(text: str) -> bytes:
    # Postgres's byteain (src/backend/utils/adt/varlena.c): `\\` is one backslash, `\ooo` (first digit 0-3) an
    # octal byte, any other backslash an error; every other character stands for its own bytes.
    out = bytearray()
    position = 0
    while position < len(text):
        char = text[position]
        if char != "\\":
            out += char.encode()
            position += 1
        elif text[position + 1 : position + 2] == "\\":
            out.append(0x5C)
            position += 2
        elif _is_octal_escape(text[position + 1 : position + 4]):
            out.append(int(text[position + 1 : position + 4], 8))
            position += 4
        else:
            raise PostgrestError(400, "22P02", "invalid input syntax for type bytea")
    return bytes(out)


def _is_octal_escape(digits: str) -> bool:
    return len(digits) == 3 and digits[0] in "0123" and all(d in "01234567" for d in digits[1:])


def _output(value: Any) -> Any:
    """A stored value as PostgREST answers it: bytea in Postgres's hex output format, the rest as it is."""
    return "\\x" + value.hex() if isinstance(value, bytes) else value


def _unknown_columns(spec: TableSpec, table: str, payload: Row) -> None:
    for column in payload:
        if column not in spec.columns:
            raise PostgrestError(
                400, "PGRST204", f"Could not find the '{column}' column of '{table}' in the schema cache"
            )


def _key(spec: TableSpec, row: Row) -> tuple[Any, ...]:
    return tuple(row[column] for column in spec.primary_key)


def _duplicate(spec: TableSpec, table: str, row: Row) -> PostgrestError:
    columns, values = ", ".join(spec.primary_key), ", ".join(map(str, _key(spec, row)))
    return PostgrestError(
        409,
        "23505",
        f'duplicate key value violates unique constraint "{table}_pkey"',
        details=f"Key ({columns})=({values}) already exists.",
    )


def _insert(
    spec: TableSpec, table: str, rows: list[Row], payload: Any, params: _Params, prefer: Mapping[str, str]
) -> list[Row]:
    objects = payload if isinstance(payload, list) else [payload]
    if not objects or not all(isinstance(obj, dict) for obj in objects):
        raise PostgrestError(400, "PGRST102", "All object keys must match")
    resolution = prefer.get("resolution")
    if params.on_conflict is not None and set(params.on_conflict) != set(spec.primary_key):
        raise PostgrestError(
            400, "42P10", "there is no unique or exclusion constraint matching the ON CONFLICT specification"
        )
    # Work on a copy: a failing row must leave the table as it was, as the statement's transaction would.
    staged = [dict(row) for row in rows]
    index = {_key(spec, row): position for position, row in enumerate(staged)}
    written: list[Row] = []
    for obj in objects:
        _unknown_columns(spec, table, obj)
        new = _complete_row(spec, table, obj)
        position = index.get(_key(spec, new))
        if position is None:
            index[_key(spec, new)] = len(staged)
            staged.append(new)
            written.append(new)
        elif resolution == "merge-duplicates":
            merged = dict(staged[position])
            merged.update({column: new[column] for column in obj})
            merged.update({column: _now() for column in spec.touch_on_update})
            staged[position] = _checked(spec, table, merged)
            written.append(staged[position])
        elif resolution != "ignore-duplicates":
            raise _duplicate(spec, table, new)
    rows[:] = staged
    return written


def _update(spec: TableSpec, table: str, rows: list[Row], payload: Any, params: _Params) -> list[Row]:
    if not isinstance(payload, dict):
        raise PostgrestError(400, "PGRST102", "Empty or invalid json")
    if not params.filters:
        raise PostgrestError(400, "21000", "UPDATE requires a WHERE clause")
    _unknown_columns(spec, table, payload)
    staged = [dict(row) for row in rows]
    written = []
    for position, row in enumerate(staged):
        if params.matches(row):
            row.update(payload)
            row.update({column: _now() for column in spec.touch_on_update})
            staged[position] = _checked(spec, table, row)
            written.append(staged[position])
    keys = [_key(spec, row) for row in staged]
    for row in written:
        if keys.count(_key(spec, row)) > 1:
            raise _duplicate(spec, table, row)
    rows[:] = staged
    return written


def _delete(table: str, rows: list[Row], params: _Params) -> list[Row]:
    if not params.filters:
        raise PostgrestError(400, "21000", "DELETE requires a WHERE clause")
    gone = [row for row in rows if params.matches(row)]
    rows[:] = [row for row in rows if not params.matches(row)]
    return gone


@dataclass
class _Params:
    """The query string of one request, parsed and checked against the table."""

    select: list[str]
    filters: list[Predicate]
    order: list[tuple[str, bool]]
    limit: int | None
    offset: int
    on_conflict: list[str] | None

    @classmethod
    def parse(cls, query: list[tuple[str, str]], spec: TableSpec, table: str) -> _Params:
        def column(name: str) -> str:
            if name not in spec.columns:
                raise PostgrestError(400, "42703", f"column {table}.{name} does not exist")
            return name

        params = dict(query)
        select = params.get("select", "*")
        columns = list(spec.columns) if select == "*" else [column(c.strip()) for c in select.split(",")]
        filters: list[Predicate] = []
        for name, value in query:
            if name in ("or", "and"):
                filters.append(_logic(name, value, spec, column))
            elif name not in _RESERVED_PARAMS:
                filters.append(_condition(column(name), value, spec))
        order = []
        for term in filter(None, params.get("order", "").split(",")):
            name, *modifiers = term.split(".")
            order.append((column(name), "desc" in modifiers))
        on_conflict = params.get("on_conflict")
        return cls(
            select=columns,
            filters=filters,
            order=order,
            limit=_integer(params, "limit"),
            offset=_integer(params, "offset") or 0,
            on_conflict=[column(c.strip()) for c in on_conflict.split(",")] if on_conflict else None,
        )

    def matches(self, row: Row) -> bool:
        return all(predicate(row) for predicate in self.filters)

    def project(self, rows: list[Row]) -> list[Row]:
        return [{column: _output(row[column]) for column in self.select} for row in rows]

    def shape(self, rows: list[Row]) -> list[Row]:
        """GET's answer: filtered, ordered, sliced, projected."""
        found = [row for row in rows if self.matches(row)]
        for name, descending in reversed(self.order):
            # Stable sorts from the last key to the first give a multi-column order.
            found.sort(key=_sort_key(name), reverse=descending)
        end = None if self.limit is None else self.offset + self.limit
        return self.project(found[self.offset : end])


def _integer(params: Mapping[str, str], name: str) -> int | None:
    if name not in params:
        return None
    try:
        return int(params[name])
    except ValueError:
        raise PostgrestError(400, "PGRST100", f'"failed to parse {name} ({params[name]})"') from None


def _condition(column: str, expression: str, spec: TableSpec) -> Predicate:
    """`column=op.value`: the value is everything after the operator, taken verbatim."""
    negate = expression.startswith("not.")
    operator, dot, value = expression.removeprefix("not.").partition(".")
    if not dot or (operator not in _OPERATORS and operator != "is"):
        raise PostgrestError(400, "PGRST100", f'"failed to parse filter ({expression})"')
    if operator == "is":
        if value not in _IS_VALUES:
            raise PostgrestError(400, "PGRST100", f'"failed to parse filter ({expression})"')
        expected = _IS_VALUES[value]

        def test(row: Row) -> bool:
            return row[column] is expected if expected is None else row[column] == expected

    else:
        compare = _OPERATORS[operator]
        wanted = _canonical_uuid(value) if column in spec.uuid_columns else value

        def test(row: Row) -> bool:
            # SQL: a comparison with NULL is never true.
            return row[column] is not None and compare(str(row[column]), wanted)

    return _negated(test) if negate else test


def _negated(predicate: Predicate) -> Predicate:
    return lambda row: not predicate(row)


def _sort_key(column: str) -> Callable[[Row], tuple[bool, str]]:
    # NULLs sort last in ascending order, as in Postgres.
    return lambda row: (row[column] is None, str(row[column]))


def _logic(operator: str, text: str, spec: TableSpec, column: Callable[[str], str]) -> Predicate:
    """`or=(a.eq.1,and(b.gt.2,c.lt."x,y"))` as a predicate."""
    predicate, end = _parse_group(operator, text, 0, spec, column)
    if end != len(text):
        raise PostgrestError(400, "PGRST100", f'"failed to parse logic tree ({text})"')
    return predicate


def _parse_group(
    operator: str, text: str, start: int, spec: TableSpec, column: Callable[[str], str]
) -> tuple[Predicate, int]:
    if start >= len(text) or text[start] != "(":
        raise PostgrestError(400, "PGRST100", f'"failed to parse logic tree ({text})"')
    position = start + 1
    members: list[Predicate] = []
    combine = any if operator == "or" else all
    while True:
        for nested in ("and(", "or(", "not.and(", "not.or("):
            if text.startswith(nested, position):
                name = nested.removeprefix("not.")[:-1]
                inner, position = _parse_group(name, text, position + len(nested) - 1, spec, column)
                members.append(_negated(inner) if nested.startswith("not.") else inner)
                break
        else:
            token, position = _read_token(text, position)
            name, dot, expression = token.partition(".")
            if not dot:
                raise PostgrestError(400, "PGRST100", f'"failed to parse logic tree ({text})"')
            members.append(_condition(column(name), _unquote_value(expression), spec))
        if position >= len(text):
            raise PostgrestError(400, "PGRST100", f'"failed to parse logic tree ({text})"')
        if text[position] == ")":
            return (lambda row: combine(member(row) for member in members)), position + 1
        position += 1  # the comma between members


def _read_token(text: str, position: int) -> tuple[str, int]:
    """Characters up to the next comma or closing parenthesis outside double quotes."""
    chars = []
    quoted = escaped = False
    while position < len(text):
        char = text[position]
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif not quoted and char in ",)":
            break
        chars.append(char)
        position += 1
    return "".join(chars), position


def _unquote_value(expression: str) -> str:
    """`op."quoted \\"value\\""` -> `op.quoted "value"`; an unquoted value stays as it is."""
    operator, dot, value = expression.removeprefix("not.").partition(".")
    prefix = "not." if expression.startswith("not.") else ""
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = _unescape(value[1:-1])
    return f"{prefix}{operator}{dot}{value}"


def _unescape(value: str) -> str:
    chars: Iterator[str] = iter(value)
    return "".join(next(chars, "") if char == "\\" else char for char in chars)
