"""The user's own Supabase project: its URL and keys checked, its tables read from PostgREST's OpenAPI description.

Nothing needs installing in the user's project. PostgREST serves a Swagger 2.0 description of each exposed
schema at `/rest/v1/`: every table and view under `definitions`, its non-null columns in `required`, each
column's Postgres type in `format` (and JSON type in `type`), keys noted in column descriptions
(`Note:\\nThis is a Primary Key.<pk/>`, `<fk table='t' column='c'/>`); `Accept-Profile` picks the schema.
Supabase's gateway serves that root only to the secret (service role) key, so one read proves the key and
yields the schema.

httpx (and the Supabase store module that brings it) is imported where a request needs it: a cold start
serves its first health check without it.

The URL is user input, and the user's key will be sent there, so it must be exactly a project's base URL:
https (plain http only to loopback, and only where the deployment itself runs against loopback services:
development, or a production build rehearsed against local fakes), no credentials, path, query or fragment, a
host name the HTTP client can use, and in production no address outside the public internet (see
doki.connectors.addresses): neither written as an IP nor resolved from the name. A name is resolved once per
connection, by an injected resolver (tests need no DNS), and the connection goes to the address that was judged,
its TLS still verified against the name (doki.connectors.checked_transport): a name cannot answer the check with a
public address and the connection with a private one. Redirects are never followed, so an answer cannot send the
key elsewhere. No message, log line or response here holds a key.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from pydantic import BaseModel, Field

from doki.connectors.addresses import address_refusal, parse_address
from doki.connectors.errors import ConnectorError
from doki.settings import is_loopback_host

if TYPE_CHECKING:
    import ssl

    import httpcore
    import httpx

    from doki.settings import Settings

PROVIDER = "supabase"
CONNECT = "POST /connectors/supabase/connect"
KEYS_PAGE = "Project Settings > API Keys"
DEFAULT_TIMEOUT_SECONDS = 10.0
# A schema description is a few kilobytes a table; this is thousands of tables. A bigger answer is not one.
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
MAX_URL_LENGTH = 2048
MAX_KEY_LENGTH = 4096
# Postgres names are at most 63 bytes; quoting allows more characters, but Supabase's exposed schemas use these.
_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_$-]{0,62}")
_KEY_CHARACTERS = re.compile(r"[\x21-\x7e]+")
_PROJECT_HOST = re.compile(r"([a-z0-9]{20})\.supabase\.(?:co|in)")
_FOREIGN_KEY = re.compile(r"<fk table='([^']*)' column='([^']*)'/>")
_ERROR_CODE = re.compile(r"[A-Z0-9]{1,12}")
_NOTE = "Note:\n"


class SupabaseProjectError(ConnectorError):
    """The user's project could not be used as asked; the body names what and the fix, never a key."""


class CredentialsRejectedError(SupabaseProjectError):
    """The project refused a key (401), or the key cannot read the schema (403)."""


def _invalid_url(message: str) -> SupabaseProjectError:
    return SupabaseProjectError(
        400,
        "supabase_invalid_url",
        message,
        hint="use the project URL from Project Settings > API, e.g. https://abcdefghijklmnopqrst.supabase.co",
    )


def _invalid_key(message: str, hint: str) -> SupabaseProjectError:
    return SupabaseProjectError(400, "supabase_invalid_key", message, hint=hint)


def not_connected(message: str = "no Supabase project is connected for this user") -> SupabaseProjectError:
    return SupabaseProjectError(
        409,
        "supabase_not_connected",
        message,
        hint=f"connect one: {CONNECT} with the project URL and its service role key",
        connect=CONNECT,
    )


@dataclass(frozen=True)
class ProjectURL:
    """A project's base URL, checked and normalised (`https://host[:port]`, lowercase, no trailing slash)."""

    url: str
    ref: str | None
    """The project ref for `<ref>.supabase.co` URLs; None for custom domains and self-hosted projects."""


def parse_project_url(raw: str, *, allow_loopback: bool, production: bool) -> ProjectURL:
    """`raw` as a project URL, or SupabaseProjectError naming what is wrong with it."""
    text = raw.strip()
    if not text:
        raise _invalid_url("project_url is empty")
    if len(text) > MAX_URL_LENGTH or not text.isprintable() or any(c.isspace() for c in text):
        raise _invalid_url("project_url is not a URL (too long, or it holds spaces or control characters)")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise _invalid_url("project_url is not a valid URL (check the host and port)") from None
    scheme, host = parts.scheme.lower(), parts.hostname
    if scheme not in ("http", "https") or not host:
        raise _invalid_url(f"project_url {text!r} is not an https:// URL")
    if parts.username is not None or parts.password is not None:
        raise _invalid_url("project_url must not hold a user name or password")
    if parts.path not in ("", "/") or parts.query or parts.fragment or text.endswith(("?", "#")):
        raise _invalid_url(
            f"project_url {text!r} has a path, query or fragment: use the project's base URL alone "
            "(without /rest/v1 or anything after the host)"
        )
    host = _ascii_host(text, host)
    loopback = is_loopback_host(host)
    if loopback and not allow_loopback:
        raise _invalid_url(f"project_url {text!r} points at this server's own machine (loopback)")
    if scheme == "http" and not loopback:
        raise _invalid_url(f"project_url {text!r} is not https: the service role key must not travel in the clear")
    address = parse_address(host)
    refusal = address_refusal(address, allow_loopback=allow_loopback) if production and address else None
    if refusal is not None:
        raise _invalid_url(f"project_url {text!r} is a private or reserved address, not a Supabase project ({refusal})")
    shown_host = f"[{host}]" if ":" in host else host
    netloc = shown_host if port is None else f"{shown_host}:{port}"
    match = _PROJECT_HOST.fullmatch(host)
    return ProjectURL(url=f"{scheme}://{netloc}", ref=match.group(1) if match else None)


def _ascii_host(text: str, host: str) -> str:
    """`host` as the HTTP client will look it up (an international name in punycode), or SupabaseProjectError
    when the client could not use it at all (a malformed or invalid international name)."""
    import httpx

    try:
        url = httpx.URL(text)
        url.host  # noqa: B018 - decodes the name, raising on a malformed punycode label (xn--) as a request would
        raw = url.raw_host.decode("ascii")
    except (httpx.InvalidURL, ValueError, UnicodeError):  # the IDNA codec raises ValueError subclasses
        raise _invalid_url(f"project_url {text!r} has a host name that cannot be one: check its spelling") from None
    return host if ":" in host else raw.lower()


Resolve = Callable[[str], Awaitable[list[str]]]


async def resolve_host(host: str) -> list[str]:
    """The addresses `host` resolves to, by the system resolver, each once and in the resolver's order: getaddrinfo
    sorts them by RFC 6724's destination address selection (an address this host can reach, and of the family it
    prefers, first), and connections are tried in that order, as a client connecting by name would."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def check_schema_name(schema: str) -> str:
    """`schema` if it can be a schema name PostgREST exposes; SupabaseProjectError otherwise."""
    if not _SCHEMA_NAME.fullmatch(schema):
        raise SupabaseProjectError(
            400,
            "supabase_invalid_schema",
            f"{schema[:80]!r} is not a schema name",
            hint="use a schema the project exposes in Project Settings > Data API, e.g. schema=public",
        )
    return schema


@dataclass(frozen=True)
class ProjectCredentials:
    """What is stored, encrypted and bound to its user, for one connected project. The keys never print."""

    project_url: str
    service_role_key: str = field(repr=False)
    anon_key: str | None = field(default=None, repr=False)

    _VERSION: ClassVar[int] = 1

    @classmethod
    def checked(cls, project_url: str, service_role_key: str, anon_key: str | None) -> ProjectCredentials:
        """Credentials whose keys have the right shape for their role; SupabaseProjectError otherwise."""
        service = service_role_key.strip()
        anon = anon_key.strip() if anon_key is not None else None
        _check_key_text(service, "service_role_key")
        role = _key_role(service)
        if role not in (None, "service_role"):
            raise _invalid_key(
                f"service_role_key is a key for the {role!r} role, not the service role: it cannot read the schema",
                hint=f"use a secret key (sb_secret_...) or the legacy service_role key, from {KEYS_PAGE}",
            )
        if anon:
            _check_key_text(anon, "anon_key")
            if _key_role(anon) not in (None, "anon"):
                # A secret in the anon slot could one day be handed to a browser as "the public key".
                raise _invalid_key(
                    "anon_key is a secret key: it must never be used as the public (anon) key",
                    hint=f"use the publishable key (sb_publishable_...) or the legacy anon key, from {KEYS_PAGE}",
                )
        return cls(project_url=project_url, service_role_key=service, anon_key=anon or None)

    def to_json(self) -> str:
        return json.dumps(
            {
                "v": self._VERSION,
                "project_url": self.project_url,
                "service_role_key": self.service_role_key,
                "anon_key": self.anon_key,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> ProjectCredentials:
        """The credentials `to_json` wrote; ValueError (holding no key) when the text is not that."""
        try:
            data = json.loads(text)
            if data.get("v") != cls._VERSION:
                raise ValueError("unknown version")
            anon = data.get("anon_key")
            return cls(
                project_url=str(data["project_url"]),
                service_role_key=str(data["service_role_key"]),
                anon_key=str(anon) if anon is not None else None,
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            raise ValueError("the stored Supabase connection is not in a format this version of Doki reads") from None


def _check_key_text(key: str, name: str) -> None:
    if not key:
        raise _invalid_key(f"{name} is empty", hint=f"copy it from {KEYS_PAGE}")
    if len(key) > MAX_KEY_LENGTH or not _KEY_CHARACTERS.fullmatch(key):
        raise _invalid_key(
            f"{name} is not an API key (too long, or it holds spaces or other characters keys never have)",
            hint=f"copy it again from {KEYS_PAGE}, without quotes or line breaks",
        )


def _key_role(key: str) -> str | None:
    """The role a key is for, when its shape says: new keys by prefix, legacy keys by their JWT `role`."""
    if key.startswith("sb_publishable_"):
        return "anon"
    if key.startswith("sb_secret_"):
        return "service_role"
    from doki.storage.supabase import looks_like_jwt

    if not looks_like_jwt(key):
        return None
    payload = key.split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (binascii.Error, ValueError):
        return None
    role = claims.get("role") if isinstance(claims, dict) else None
    return role if isinstance(role, str) else None


class ForeignKey(BaseModel):
    table: str
    column: str


class Column(BaseModel):
    """One column as PostgREST describes it."""

    name: str
    type: str | None = Field(description="the Postgres type, e.g. text, bigint, timestamp with time zone, uuid")
    json_type: str | None = Field(
        description="string, integer, number, boolean or array; none for json and jsonb columns"
    )
    nullable: bool
    primary_key: bool
    foreign_key: ForeignKey | None = None
    default: Any = Field(default=None, description="the default as PostgREST shows it, when it shows one")
    enum: list[str] | None = None
    max_length: int | None = None
    description: str | None = Field(default=None, description="the column's SQL comment")


class Table(BaseModel):
    """A table or view of the schema."""

    name: str
    description: str | None = Field(default=None, description="the table's SQL comment")
    writable: bool = Field(description="whether rows can be inserted, updated or deleted through the API")
    columns: list[Column]


def tables_from_openapi(document: object) -> list[Table]:
    """The tables of a PostgREST OpenAPI (Swagger 2.0) description, sorted by name, columns in table order.

    The document comes from the user's project: anything of the wrong type is skipped, never trusted.
    """
    if not isinstance(document, dict) or not isinstance(document.get("definitions", {}), dict):
        raise ValueError("not a PostgREST OpenAPI description")
    definitions = _mapping(document.get("definitions"))
    paths = _mapping(document.get("paths"))
    tables = []
    for name, value in definitions.items():
        definition = _mapping(value)
        required = definition.get("required")
        path = _mapping(paths.get(f"/{name}"))
        tables.append(
            Table(
                name=str(name),
                description=_text(definition.get("description")),
                writable=any(method in path for method in ("post", "patch", "delete")),
                columns=[
                    _column(str(column), _mapping(spec), required if isinstance(required, list) else [])
                    for column, spec in _mapping(definition.get("properties")).items()
                ],
            )
        )
    return sorted(tables, key=lambda table: table.name)


def _mapping(value: object) -> dict[Any, Any]:
    return value if isinstance(value, dict) else {}


def _column(name: str, spec: dict[Any, Any], required: list[Any]) -> Column:
    comment, primary_key, foreign_key = _parse_description(_text(spec.get("description")))
    enum = spec.get("enum")
    max_length = spec.get("maxLength")
    return Column(
        name=name,
        type=_text(spec.get("format")),
        json_type=_text(spec.get("type")),
        nullable=name not in required,
        primary_key=primary_key,
        foreign_key=foreign_key,
        default=spec.get("default"),
        enum=[str(value) for value in enum] if isinstance(enum, list) else None,
        max_length=max_length if isinstance(max_length, int) and not isinstance(max_length, bool) else None,
        description=comment,
    )


def _parse_description(description: str | None) -> tuple[str | None, bool, ForeignKey | None]:
    """(the SQL comment, primary key?, foreign key) from a column description PostgREST annotated.

    PostgREST appends `Note:` and one line per key to the comment (after a blank line when there is one).
    """
    if description is None:
        return None, False, None
    if description.startswith(_NOTE):
        comment, notes = "", description.removeprefix(_NOTE)
    elif f"\n\n{_NOTE}" in description:
        comment, notes = description.rsplit(f"\n\n{_NOTE}", 1)
    else:
        return description, False, None
    primary_key = "<pk/>" in notes
    match = _FOREIGN_KEY.search(notes)
    if not primary_key and match is None:
        return description, False, None  # the comment itself says "Note:"; nothing of PostgREST's
    foreign_key = ForeignKey(table=match.group(1), column=match.group(2)) if match else None
    return comment or None, primary_key, foreign_key


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


class SupabaseProjects:
    """Talks to users' Supabase projects, all through one connection pool opened on first use.

    The app's lifespan makes one and closes it; the client is made on first use.
    """

    def __init__(
        self,
        *,
        allow_loopback: bool,
        production: bool,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        max_document_bytes: int = MAX_DOCUMENT_BYTES,
        resolve: Resolve = resolve_host,
        ssl_context: ssl.SSLContext | None = None,
        sockets: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.allow_loopback = allow_loopback
        self.production = production
        self.timeout = timeout
        self.max_document_bytes = max_document_bytes
        self.resolve = resolve
        """How a project's name is resolved, once per connection, the connection made to that answer; tests give
        their own. Read at each connection: replacing it takes effect for the next one."""
        self.ssl_context = ssl_context
        """What verifies a project's certificate (against its name); httpx's default (certifi's roots) when None."""
        self.sockets = sockets
        """What opens a TCP connection to a checked address (httpcore's anyio backend when None)."""
        self._http: httpx.AsyncClient | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> SupabaseProjects:
        # Loopback projects only where the deployment's own Supabase is local too: development, or a
        # production build rehearsed against local fakes. A real deployment has an https SUPABASE_URL.
        own = urlsplit(settings.supabase_url).hostname if settings.supabase_url else None
        return cls(
            allow_loopback=not settings.is_production or is_loopback_host(own),
            production=settings.is_production,
        )

    def parse_url(self, raw: str) -> ProjectURL:
        return parse_project_url(raw, allow_loopback=self.allow_loopback, production=self.production)

    async def verify(self, credentials: ProjectCredentials) -> None:
        """Raise unless the project accepts the service role key (and the anon key, when there is one).

        A rejected key raises CredentialsRejectedError with status 400: the keys being checked are the request's.
        """
        url = credentials.project_url
        await self._openapi(url, credentials.service_role_key, schema=None, rejected_status=400)
        if credentials.anon_key:
            # The gateway answers a valid anon key 403 on the schema description, and an unknown key 401.
            status, body = await self._get(url, credentials.anon_key, schema=None)
            if status == 401:
                raise _rejected(url, "anon key", status, status_code=400)
            if status not in (200, 403):
                raise _unexpected(url, status, body)

    async def tables(self, credentials: ProjectCredentials, schema: str) -> list[Table]:
        """The tables and views of `schema`, as the project's PostgREST describes them.

        A rejected key raises CredentialsRejectedError with status 409: the stored connection needs renewing.
        """
        url = credentials.project_url
        document = await self._openapi(url, credentials.service_role_key, schema=schema, rejected_status=409)
        try:
            return tables_from_openapi(document)
        except ValueError:
            raise _unexpected(url, 200, b"") from None

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def _openapi(self, url: str, key: str, *, schema: str | None, rejected_status: int) -> dict[str, Any]:
        status, body = await self._get(url, key, schema=schema)
        if status == 200:
            try:
                document = json.loads(body)
            except ValueError:
                document = None
            if isinstance(document, dict) and document.get("swagger") == "2.0":
                return document
            raise _unexpected(url, status, body)
        if status in (401, 403):
            raise _rejected(url, "service role key", status, status_code=rejected_status)
        error = _error_body(body)
        if error.get("code") == "PGRST106" and schema is not None:
            raise _schema_not_exposed(schema, error, secrets=(key,))
        raise _unexpected(url, status, body)

    async def _get(self, url: str, key: str, *, schema: str | None) -> tuple[int, bytes]:
        """(status, body) of `GET url/rest/v1/` with `key`; SupabaseProjectError when there is no answer."""
        import httpx

        from doki.connectors.checked_transport import AddressRefusedError, NameNotResolvedError
        from doki.storage.supabase import looks_like_jwt

        headers = {"apikey": key, "Accept": "application/openapi+json, application/json"}
        if looks_like_jwt(key):
            # PostgREST verifies any bearer token as a JWT: the new sb_secret_ keys go in `apikey` only.
            headers["Authorization"] = f"Bearer {key}"
        if schema is not None:
            headers["Accept-Profile"] = schema
        try:
            async with self._client().stream("GET", f"{url}/rest/v1/", headers=headers) as response:
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > self.max_document_bytes:
                        raise _too_large(url, self.max_document_bytes)
                return response.status_code, bytes(body)
        except httpx.TimeoutException:
            raise _unreachable(url, f"it did not answer within {self.timeout:g}s") from None
        except httpx.TransportError as exc:
            raise _unreachable(url, f"{type(exc).__name__}") from None
        except httpx.InvalidURL:
            # Checked when connecting; a URL stored by an older version may have escaped that check.
            raise _invalid_url(f"project_url {url!r} is not a URL the HTTP client can use") from None
        except AddressRefusedError as exc:
            # Raised before any socket is opened: neither this answer nor its timing depends on what listens there.
            raise _invalid_url(
                f"project_url {url!r} resolves to {exc.address}, a private or reserved address ({exc.reason})"
            ) from None
        except NameNotResolvedError:
            raise _unreachable(url, "its host name does not resolve") from None

    def _client(self) -> httpx.AsyncClient:
        # No await between the check and the assignment: two first requests cannot build two clients.
        if self._http is None:
            import httpx

            from doki.connectors.checked_transport import CheckedBackend, CheckedTransport

            # In production every address is judged; in development the name is still resolved once, by the same
            # resolver, and the connection made to that answer.
            backend = CheckedBackend(
                self._resolve, allow_loopback=self.allow_loopback, check=self.production, inner=self.sockets
            )
            self._http = httpx.AsyncClient(
                transport=CheckedTransport(backend, ssl_context=self.ssl_context),
                timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 5.0)),
                follow_redirects=False,
            )
        return self._http

    async def _resolve(self, host: str) -> list[str]:
        return await self.resolve(host)


def _error_body(body: bytes) -> dict[str, Any]:
    try:
        error = json.loads(body)
    except ValueError:
        return {}
    return error if isinstance(error, dict) else {}


def _rejected(url: str, what: str, status: int, *, status_code: int) -> CredentialsRejectedError:
    if status == 403:
        message = (
            f"the project at {url} knows the {what} but it cannot read the schema (403): "
            "it is not the secret (service role) key"
        )
    else:
        message = f"the project at {url} rejected the {what} (401)"
    return CredentialsRejectedError(
        status_code,
        "supabase_credentials_rejected",
        message,
        hint=f"reconnect with the project's secret key (sb_secret_...) or legacy service_role key, from {KEYS_PAGE}",
        connect=CONNECT,
    )


def _schema_not_exposed(schema: str, error: dict[str, Any], *, secrets: tuple[str, ...]) -> SupabaseProjectError:
    # "Invalid schema: x" with "Only the following schemas are exposed: a, b" in the hint (PostgREST 13), or
    # "The schema must be one of the following: a, b" in the message (earlier versions).
    listed = ""
    for text in (error.get("hint"), error.get("message")):
        if not isinstance(text, str) or not ("are exposed:" in text or "one of the following:" in text):
            continue
        # Upstream text is the project's, not ours: keep only what can be a schema name.
        names = [n.strip() for n in text.split(":", 1)[1].split(",")]
        names = [n for n in names if _SCHEMA_NAME.fullmatch(n) and n not in secrets]
        listed = f" (it exposes {', '.join(names)})" if names else ""
        break
    return SupabaseProjectError(
        404,
        "supabase_schema_not_exposed",
        f"the schema {schema!r} is not exposed by the project's API{listed}",
        hint="pick an exposed schema, or add it under Project Settings > Data API > Exposed schemas",
    )


def _unreachable(url: str, reason: str) -> SupabaseProjectError:
    return SupabaseProjectError(
        503,
        "supabase_unreachable",
        f"cannot reach the Supabase project at {url} ({reason})",
        hint="check the project URL and that the project is not paused (supabase.com/dashboard), then retry",
        headers={"Retry-After": "30"},
    )


def _too_large(url: str, limit: int) -> SupabaseProjectError:
    return SupabaseProjectError(
        502,
        "supabase_bad_answer",
        f"the schema description from {url} is larger than {limit // (1024 * 1024)} MiB",
        hint="pick a schema with fewer tables, or expose fewer schemas in Project Settings > Data API",
    )


def _unexpected(url: str, status: int, body: bytes) -> SupabaseProjectError:
    if status == 429 or status >= 500:
        return SupabaseProjectError(
            503,
            "supabase_unavailable",
            f"the Supabase project at {url} answered {status}: it is failing or overloaded",
            hint="retry in a minute; if it persists, check the project's status at supabase.com/dashboard",
            headers={"Retry-After": "30"},
        )
    code = _error_body(body).get("code")
    shown = f" {code}" if isinstance(code, str) and _ERROR_CODE.fullmatch(code) else ""
    if 300 <= status < 400:
        what = f"answered {status} (a redirect, which is never followed with a key)"
    elif status == 200:
        what = "answered with something that is not PostgREST's OpenAPI description"
    else:
        what = f"answered {status}{shown}"
    return SupabaseProjectError(
        502,
        "supabase_bad_answer",
        f"{url}/rest/v1/ {what}: there is no Supabase API there",
        hint="check the project URL: it is https://<project ref>.supabase.co, or your own domain for the project",
    )
