"""The Supabase project connector on its own: URL and key rules, and reading tables from a PostgREST over HTTP."""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import json
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import anyio
import httpcore
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from doki.connectors.addresses import address_refusal, parse_address
from doki.connectors.supabase_project import (
    CredentialsRejectedError,
    ForeignKey,
    ProjectCredentials,
    SupabaseProjectError,
    SupabaseProjects,
    check_schema_name,
    parse_project_url,
    resolve_host,
    tables_from_openapi,
)
from tests.doki.conftest import development_settings, production_settings
from tests.fakes.postgrest import FakePostgrest, TableSpec
from tests.helpers import secret

T = TypeVar("T")

SECRET = secret("the user's Supabase secret key", "sb_secret_ProjectOnly0123456789abcdefghijkl")
ANON = "sb_publishable_ProjectOnly0123456789abcdefgh"

CUSTOMERS = TableSpec(
    columns=("id", "email", "plan", "tags", "profile", "created_at"),
    primary_key=("id",),
    not_null=frozenset({"id", "email", "plan", "created_at"}),
    types={
        "id": "bigint",
        "email": "character varying",
        "plan": "plan_kind",
        "tags": "text[]",
        "profile": "jsonb",
        "created_at": "timestamp with time zone",
    },
    sql_defaults={"plan": "'free'::plan_kind", "profile": "'{}'::jsonb", "created_at": "now()"},
    comment="Paying and trial customers",
    column_comments={"id": "Customer number", "email": "Where invoices go"},
    enums={"plan": ("free", "pro")},
)
ORDERS = TableSpec(
    columns=("id", "customer_id", "total", "paid"),
    primary_key=("id",),
    not_null=frozenset({"id", "customer_id", "total"}),
    types={"id": "uuid", "customer_id": "bigint", "total": "numeric", "paid": "boolean"},
    sql_defaults={"paid": "false"},
    foreign_keys={"customer_id": ("customers", "id")},
)
MONTHLY_REVENUE = TableSpec(
    columns=("month", "total"), primary_key=(), types={"month": "date", "total": "numeric"}, writable=False
)
LEADS = TableSpec(columns=("id", "source"), primary_key=("id",), not_null=frozenset({"id"}), types={"id": "integer"})


def legacy_key(role: str) -> str:
    """A legacy Supabase API key: an HS256 JWT whose payload names its role."""

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    claims = {"iss": "supabase", "ref": "abcdefghijklmnopqrst", "role": role, "iat": 1, "exp": 2**31}
    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJlLW5vdC1jaGVja2Vk"


@pytest.fixture
def project() -> Iterator[FakePostgrest]:
    tables = {"customers": CUSTOMERS, "orders": ORDERS, "monthly_revenue": MONTHLY_REVENUE}
    with FakePostgrest(SECRET, tables, schemas={"sales": {"leads": LEADS}}, anon_key=ANON) as server:
        yield server


def with_projects(use: Callable[[SupabaseProjects], Awaitable[T]], **options: Any) -> T:
    """Run `use` with a connector that may reach loopback (the fakes), closing its client afterwards."""

    async def main() -> T:
        projects = SupabaseProjects(allow_loopback=True, production=False, **options)
        try:
            return await use(projects)
        finally:
            await projects.aclose()

    return asyncio.run(main())


def credentials(project: FakePostgrest, key: str = SECRET, anon: str | None = None) -> ProjectCredentials:
    return ProjectCredentials.checked(project.url, key, anon)


def failure(use: Callable[[SupabaseProjects], Awaitable[object]], **options: Any) -> SupabaseProjectError:
    with pytest.raises(SupabaseProjectError) as caught:
        with_projects(use, **options)
    return caught.value


# Project URLs


@pytest.mark.parametrize(
    ("raw", "url", "ref"),
    [
        (
            "https://abcdefghijklmnopqrst.supabase.co",
            "https://abcdefghijklmnopqrst.supabase.co",
            "abcdefghijklmnopqrst",
        ),
        (
            " HTTPS://ABCDEFGHIJKLMNOPQRST.Supabase.co/ ",
            "https://abcdefghijklmnopqrst.supabase.co",
            "abcdefghijklmnopqrst",
        ),
        ("https://db.example.com:8443", "https://db.example.com:8443", None),
        ("http://127.0.0.1:54321", "http://127.0.0.1:54321", None),
        ("http://localhost:54321/", "http://localhost:54321", None),
        ("http://[::1]:54321", "http://[::1]:54321", None),
        ("https://b\u00fccher.example", "https://xn--bcher-kva.example", None),  # as the client looks it up
    ],
)
def test_a_project_url_is_normalised_to_its_base_and_ref(raw: str, url: str, ref: str | None) -> None:
    project = parse_project_url(raw, allow_loopback=True, production=False)
    assert (project.url, project.ref) == (url, ref)


@pytest.mark.parametrize(
    ("raw", "complaint"),
    [
        ("", "is empty"),
        ("abcdefghijklmnopqrst.supabase.co", "is not an https:// URL"),
        ("ftp://abcdefghijklmnopqrst.supabase.co", "is not an https:// URL"),
        ("http://abcdefghijklmnopqrst.supabase.co", "is not https"),
        ("https://abcdefghijklmnopqrst.supabase.co/rest/v1", "has a path, query or fragment"),
        ("https://abcdefghijklmnopqrst.supabase.co/?apikey=x", "has a path, query or fragment"),
        ("https://abcdefghijklmnopqrst.supabase.co?", "has a path, query or fragment"),
        ("https://abcdefghijklmnopqrst.supabase.co#top", "has a path, query or fragment"),
        ("https://user:pw@abcdefghijklmnopqrst.supabase.co", "must not hold a user name or password"),
        ("https://evil.example@abcdefghijklmnopqrst.supabase.co", "must not hold a user name or password"),
        ("https://abc def.supabase.co", "holds spaces or control characters"),
        ("https://abcdefghijklmnopqrst.supabase.co:99999", "is not a valid URL"),
        ("https://xn--.com", "has a host name that cannot be one"),
        ("https://exa\u2603mple.com", "has a host name that cannot be one"),
    ],
)
def test_a_project_url_that_is_not_a_bare_https_base_is_refused_saying_why(raw: str, complaint: str) -> None:
    with pytest.raises(SupabaseProjectError) as caught:
        parse_project_url(raw, allow_loopback=True, production=False)
    error = caught.value
    assert (error.status_code, error.code) == (400, "supabase_invalid_url")
    assert complaint in error.message
    assert error.hint.startswith("use the project URL from Project Settings > API")


@pytest.mark.parametrize("raw", ["http://127.0.0.1:54321", "https://localhost", "https://[::1]:8443"])
def test_a_loopback_project_is_refused_where_loopback_is_not_allowed(raw: str) -> None:
    with pytest.raises(SupabaseProjectError, match="loopback"):
        parse_project_url(raw, allow_loopback=False, production=True)


@pytest.mark.parametrize("raw", ["https://10.0.0.7", "https://169.254.169.254", "https://192.168.1.2:8000"])
def test_production_refuses_private_and_link_local_addresses_that_development_accepts(raw: str) -> None:
    with pytest.raises(SupabaseProjectError, match="private or reserved address"):
        parse_project_url(raw, allow_loopback=False, production=True)
    assert parse_project_url(raw, allow_loopback=True, production=False).url == raw


def test_loopback_is_allowed_in_development_and_in_a_production_rehearsed_against_local_fakes() -> None:
    assert SupabaseProjects.from_settings(development_settings()).allow_loopback
    assert SupabaseProjects.from_settings(production_settings("http://127.0.0.1:9")).allow_loopback
    real = SupabaseProjects.from_settings(production_settings("https://abcdefghijklmnopqrst.supabase.co"))
    assert not real.allow_loopback
    assert real.production


class Resolver:
    """Stands in for DNS: answers every name with `addresses` (or raises `error`), and records the names."""

    def __init__(self, *addresses: str, error: OSError | None = None) -> None:
        self.addresses = list(addresses)
        self.error = error
        self.names: list[str] = []

    async def __call__(self, host: str) -> list[str]:
        self.names.append(host)
        if self.error is not None:
            raise self.error
        return self.addresses


def production_failure(url: str, resolver: Resolver, *, allow_loopback: bool = False) -> SupabaseProjectError:
    async def main() -> None:
        projects = SupabaseProjects(allow_loopback=allow_loopback, production=True, resolve=resolver)
        try:
            await projects.verify(ProjectCredentials.checked(url, SECRET, None))
        finally:
            await projects.aclose()

    with pytest.raises(SupabaseProjectError) as caught:
        asyncio.run(main())
    return caught.value


@pytest.mark.parametrize(
    "addresses",
    [("10.0.0.7",), ("169.254.169.254",), ("104.18.2.3", "192.168.1.2"), ("127.0.0.1",), ("fd00::1",)],
)
def test_production_refuses_a_project_whose_name_resolves_to_a_private_address(addresses: tuple[str, ...]) -> None:
    resolver = Resolver(*addresses)

    error = production_failure("https://abcdefghijklmnopqrst.supabase.co", resolver)

    assert (error.status_code, error.code) == (400, "supabase_invalid_url")
    assert "a private or reserved address" in error.message
    assert resolver.names == ["abcdefghijklmnopqrst.supabase.co"]


@pytest.mark.parametrize(
    "resolver",
    [Resolver(error=socket.gaierror(socket.EAI_NONAME, "Name or service not known")), Resolver()],
    ids=["error", "no-address"],
)
def test_a_production_project_name_that_does_not_resolve_is_unreachable(resolver: Resolver) -> None:

    error = production_failure("https://abcdefghijklmnopqrst.supabase.co", resolver)

    assert (error.status_code, error.code) == (503, "supabase_unreachable")
    assert "does not resolve" in error.message


def test_a_rehearsal_on_loopback_reaches_a_name_that_resolves_to_loopback_and_nothing_private(
    project: FakePostgrest,
) -> None:
    url = project.url.replace("127.0.0.1", "localhost")

    async def main(resolver: Resolver) -> None:
        projects = SupabaseProjects(allow_loopback=True, production=True, resolve=resolver)
        try:
            await projects.verify(ProjectCredentials.checked(url, SECRET, None))
        finally:
            await projects.aclose()

    asyncio.run(main(Resolver("127.0.0.1")))
    assert len(project.requests) == 1
    with pytest.raises(SupabaseProjectError, match=r"resolves to 10\.0\.0\.7"):
        asyncio.run(main(Resolver("127.0.0.1", "10.0.0.7")))
    assert len(project.requests) == 1


def test_development_and_address_literals_are_not_resolved(project: FakePostgrest) -> None:
    resolver = Resolver("10.0.0.7")

    with_projects(lambda projects: projects.verify(credentials(project)), resolve=resolver)

    assert resolver.names == []


# Addresses: judged by what a connection to them reaches


TEREDO = "a Teredo tunnel address (RFC 4380), which no Supabase project is served from"
SIX_TO_FOUR = (
    "a 6to4 tunnel address (RFC 3056; RFC 7526 deprecates its relays), which no Supabase project is served from"
)
SIX_TO_FOUR_RELAY = "a 6to4 relay anycast address (RFC 3068, deprecated by RFC 7526)"


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("10.0.0.7", "a private address"),
        ("169.254.169.254", "a link-local address"),
        ("100.64.0.1", "an address outside the public internet"),  # carrier-grade NAT
        ("127.0.0.1", "a loopback address"),
        ("0.0.0.0", "the unspecified address"),
        ("224.0.0.1", "a multicast address"),  # ipaddress calls it global
        ("239.1.2.3", "a multicast address"),
        ("240.0.0.1", "a reserved address"),
        ("255.255.255.255", "a reserved address"),
        ("::", "the unspecified address"),
        ("::1", "a loopback address"),
        ("ff02::1", "a multicast address"),
        ("ff0e::1", "a multicast address"),  # global scope, and "global" to ipaddress
        ("fe80::1", "a link-local address"),
        ("fd00::1", "a private address"),
        ("::10.0.0.1", "the IPv4-compatible form of 10.0.0.1, a private address"),
        ("::ffff:10.0.0.1", "the IPv4-mapped form of 10.0.0.1, a private address"),
        ("::ffff:169.254.169.254", "the IPv4-mapped form of 169.254.169.254, a link-local address"),
        ("::ffff:224.0.0.1", "the IPv4-mapped form of 224.0.0.1, a multicast address"),
        ("::ffff:0:10.0.0.1", "the IPv4-translated form of 10.0.0.1, a private address"),
        ("192.88.99.1", SIX_TO_FOUR_RELAY),  # ipaddress calls it global
        ("::ffff:192.88.99.1", f"the IPv4-mapped form of 192.88.99.1, {SIX_TO_FOUR_RELAY}"),
        ("64:ff9b::a00:1", "the NAT64 form of 10.0.0.1, a private address"),
        ("64:ff9b::a9fe:a9fe", "the NAT64 form of 169.254.169.254, a link-local address"),
        ("64:ff9b:1::808:808", "a local-use NAT64 address (RFC 8215), translated inside the network"),
    ],
)
def test_an_address_is_judged_by_the_address_a_connection_to_it_reaches(address: str, reason: str) -> None:
    parsed = parse_address(address)
    assert parsed is not None
    assert address_refusal(parsed, allow_loopback=False) == reason


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "104.18.2.3",
        "2606:4700::1111",
        "::ffff:8.8.8.8",  # "reserved" to ipaddress, yet it reaches 8.8.8.8
        "::8.8.8.8",
        "64:ff9b::808:808",
    ],
)
def test_a_public_address_or_a_form_carrying_one_is_allowed(address: str) -> None:
    parsed = parse_address(address)
    assert parsed is not None
    assert address_refusal(parsed, allow_loopback=False) is None


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("2001:0:4136:e378:8000:63bf:f7f7:f7f7", TEREDO),  # a public server (65.54.227.120) and client (8.8.8.8)
        ("2001:0:4136:e378:8000:63bf:f5ff:fffe", TEREDO),  # a public server, the client 10.0.0.1
        ("2001:0:a00:1:8000:63bf:f7f7:f7f7", TEREDO),  # the server 10.0.0.1
        ("2001::", TEREDO),
        ("2001:0:ffff:ffff:ffff:ffff:ffff:ffff", TEREDO),
        ("2002:808:808::1", SIX_TO_FOUR),  # the 6to4 form of 8.8.8.8
        ("2002:a00:1::1", SIX_TO_FOUR),  # of 10.0.0.1
        ("2002:a9fe:a9fe::", SIX_TO_FOUR),  # of 169.254.169.254
        ("2002::", SIX_TO_FOUR),
        ("2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff", SIX_TO_FOUR),
    ],
)
def test_teredo_and_6to4_are_refused_whatever_address_they_carry(address: str, reason: str) -> None:
    # ipaddress calls 2002::/16 global, and 2001::/32 not global only as part of 2001::/23 (IETF protocol
    # assignments): neither flag says why these are refused, nor would keep refusing them if the tables changed.
    parsed = parse_address(address)
    assert parsed is not None
    assert address_refusal(parsed, allow_loopback=False) == reason
    assert address_refusal(parsed, allow_loopback=True) == reason


@pytest.mark.parametrize("address", ["2001:1::1", "2001:4860:4860::8888", "2003::1", "2001:1:0:0:8000:63bf:f7f7:f7f7"])
def test_the_addresses_beside_teredo_and_6to4_are_not_taken_for_them(address: str) -> None:
    parsed = parse_address(address)
    assert parsed is not None
    reason = address_refusal(parsed, allow_loopback=False)
    assert reason not in (TEREDO, SIX_TO_FOUR)


def test_a_rehearsal_on_loopback_allows_loopback_itself_but_not_a_tunnel_to_it() -> None:
    def refusal(address: str) -> str | None:
        parsed = parse_address(address)
        assert parsed is not None
        return address_refusal(parsed, allow_loopback=True)

    assert [refusal(a) for a in ("127.0.0.1", "::1", "::ffff:127.0.0.1")] == [None, None, None]
    assert refusal("2002:7f00:1::") == SIX_TO_FOUR
    assert refusal("64:ff9b::7f00:1") == "the NAT64 form of 127.0.0.1, a loopback address"
    assert refusal("10.0.0.7") == "a private address"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("https://[::ffff:10.0.0.1]", "IPv4-mapped form of 10.0.0.1"),
        ("https://224.0.0.1", "a multicast address"),
        ("https://[2001:0:4136:e378:8000:63bf:f7f7:f7f7]", TEREDO),
    ],
)
def test_production_judges_an_address_literal_by_what_it_reaches(raw: str, reason: str) -> None:
    with pytest.raises(SupabaseProjectError, match="private or reserved address") as caught:
        parse_project_url(raw, allow_loopback=False, production=True)
    assert reason in caught.value.message


# Connections go to the address that was checked


class ChangingResolver:
    """DNS that changes its answer between lookups (rebinding): each lookup gets the next answer."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)
        self.names: list[str] = []

    async def __call__(self, host: str) -> list[str]:
        self.names.append(host)
        return self.answers.pop(0)


class Sockets(httpcore.AsyncNetworkBackend):
    """Stands in for the internet: records the address each TCP connection is opened to, and opens it to the fake
    on loopback instead (or fails, for the addresses in `down`), so a "public" address can answer in a test."""

    def __init__(self, *down: str) -> None:
        self.asked: list[str] = []
        self.down = set(down)
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.asked.append(host)
        if host in self.down:
            raise httpcore.ConnectError(f"{host} is down")
        return await self.inner.connect_tcp("127.0.0.1", port, timeout=timeout)

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


def test_a_name_answering_public_then_private_is_connected_to_the_checked_public_address_only(
    project: FakePostgrest,
) -> None:
    # .invalid never resolves (RFC 6761): only the injected resolver's answer can be what was connected to.
    url = f"http://project.invalid:{project.port}"
    resolver = ChangingResolver(["93.184.216.34"], ["10.0.0.7"])
    sockets = Sockets()

    async def main() -> SupabaseProjectError:
        projects = SupabaseProjects(allow_loopback=False, production=True, resolve=resolver, sockets=sockets)
        try:
            await projects.verify(ProjectCredentials.checked(url, SECRET, None))
            await projects.verify(ProjectCredentials.checked(url, SECRET, None))  # the kept-alive, checked connection
            await projects.aclose()  # the next request needs a new connection, hence a new lookup
            with pytest.raises(SupabaseProjectError) as caught:
                await projects.verify(ProjectCredentials.checked(url, SECRET, None))
            return caught.value
        finally:
            await projects.aclose()

    error = asyncio.run(main())

    assert resolver.names == ["project.invalid", "project.invalid"]  # one lookup per connection, never two
    assert sockets.asked == ["93.184.216.34"]  # never 10.0.0.7
    assert len(project.requests) == 2
    assert (error.status_code, error.code) == (400, "supabase_invalid_url")
    assert error.message == (
        f"project_url {url!r} resolves to 10.0.0.7, a private or reserved address (a private address)"
    )


def test_a_refused_name_is_refused_before_any_connection_is_opened(project: FakePostgrest) -> None:
    # Nothing is sent anywhere, so neither the answer nor the time it takes depends on what listens at the address:
    # an open internal port and a closed one look the same.
    sockets = Sockets()

    async def main(answer: list[str]) -> SupabaseProjectError:
        projects = SupabaseProjects(
            allow_loopback=False, production=True, resolve=ChangingResolver(answer), sockets=sockets
        )
        try:
            with pytest.raises(SupabaseProjectError) as caught:
                await projects.verify(
                    ProjectCredentials.checked(f"https://project.invalid:{project.port}", SECRET, None)
                )
            return caught.value
        finally:
            await projects.aclose()

    answers = (["93.184.216.34", "10.0.0.7"], ["64:ff9b::a00:1"], ["2606:4700::1111", "2002:808:808::1"])
    errors = [asyncio.run(main(answer)) for answer in answers]

    assert [e.code for e in errors] == ["supabase_invalid_url"] * 3
    assert "the NAT64 form of 10.0.0.1" in errors[1].message
    assert f"resolves to 2002:808:808::1, a private or reserved address ({SIX_TO_FOUR})" in errors[2].message
    assert sockets.asked == []
    assert project.requests == []


def test_a_checked_address_that_does_not_answer_gives_way_to_the_next_checked_one(project: FakePostgrest) -> None:
    url = f"http://project.invalid:{project.port}"
    sockets = Sockets("93.184.216.34")
    resolver = ChangingResolver(["93.184.216.34", "93.184.216.35"])

    with_projects(
        lambda projects: projects.verify(ProjectCredentials.checked(url, SECRET, None)),
        resolve=resolver,
        sockets=sockets,
    )

    assert sockets.asked == ["93.184.216.34", "93.184.216.35"]
    assert len(project.requests) == 1


class Blackholes(httpcore.AsyncNetworkBackend):
    """Addresses that never answer a connection (a SYN no one answers): each attempt is recorded with the timeout it
    was given and waits that long. With `deaf`, an attempt waits `cap` seconds whatever it was given, then fails the
    test: an attempt the deadline did not cut short. Addresses in `up` connect to the fake on loopback."""

    def __init__(self, *up: str, deaf: bool = False, cap: float = 2.0) -> None:
        self.attempts: list[tuple[str, float | None]] = []
        self.up = set(up)
        self.deaf = deaf
        self.cap = cap
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.attempts.append((host, timeout))
        if host in self.up:
            return await self.inner.connect_tcp("127.0.0.1", port, timeout=timeout)
        if self.deaf:
            await anyio.sleep(self.cap)
            raise AssertionError(f"the attempt to connect to {host} outlived its deadline")
        await anyio.sleep(timeout if timeout is not None else self.cap)
        raise httpcore.ConnectTimeout(f"{host} did not answer")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class SlowResolver(ChangingResolver):
    """DNS that takes `seconds` to answer."""

    def __init__(self, seconds: float, *answers: list[str]) -> None:
        super().__init__(*answers)
        self.seconds = seconds

    async def __call__(self, host: str) -> list[str]:
        await anyio.sleep(self.seconds)
        return await super().__call__(host)


def test_a_name_whose_addresses_never_answer_fails_within_one_connect_timeout_having_tried_each() -> None:
    # Public addresses (TEST-NET ones would be refused before any attempt), none answering; a lookup that takes a
    # third of the time. The request's connect timeout is the whole lookup's and every attempt's, not each one's.
    public = ["93.184.216.34", "93.184.216.35", "2606:2800:220:1:248:1893:25c8:1946"]
    sockets = Blackholes()

    async def main() -> SupabaseProjectError:
        projects = SupabaseProjects(
            allow_loopback=False, production=True, timeout=0.3, resolve=SlowResolver(0.1, public), sockets=sockets
        )
        try:
            with pytest.raises(SupabaseProjectError) as caught:
                await projects.verify(ProjectCredentials.checked("https://project.invalid", SECRET, None))
            return caught.value
        finally:
            await projects.aclose()

    error = asyncio.run(main())

    assert (error.status_code, error.code) == (503, "supabase_unreachable")
    assert (
        error.message == "cannot reach the Supabase project at https://project.invalid (it did not answer within 0.3s)"
    )
    assert [address for address, _ in sockets.attempts] == public  # each address still tried, in order
    given = [timeout for _, timeout in sockets.attempts]
    assert all(timeout is not None for timeout in given)
    # What the attempts were given adds up to what the lookup left of the one deadline, not a timeout each.
    assert sum(timeout or 0.0 for timeout in given) < 0.25


def test_an_attempt_that_ignores_its_timeout_is_cut_at_its_share_and_the_next_address_answers(
    project: FakePostgrest,
) -> None:
    sockets = Blackholes("93.184.216.35", deaf=True)

    async def main() -> None:
        projects = SupabaseProjects(
            allow_loopback=False,
            production=True,
            timeout=1.0,
            resolve=ChangingResolver(["93.184.216.34", "93.184.216.35"]),
            sockets=sockets,
        )
        try:
            await projects.verify(ProjectCredentials.checked(f"http://project.invalid:{project.port}", SECRET, None))
        finally:
            await projects.aclose()

    asyncio.run(main())

    assert [address for address, _ in sockets.attempts] == ["93.184.216.34", "93.184.216.35"]
    assert len(project.requests) == 1


def certificate(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for `name` and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@pytest.mark.parametrize(("served", "verified"), [("project.doki.test", True), ("other.doki.test", False)])
def test_tls_is_verified_against_the_name_while_the_connection_goes_to_the_checked_address(
    tmp_path: Path, served: str, verified: bool
) -> None:
    # The server holds a certificate for `served`; the client trusts exactly that certificate and asks for the
    # name project.doki.test, resolved (by the injected resolver alone) to the fake's loopback address.
    cert_path, key_path = certificate(tmp_path, served)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert_path, key_path)
    asked_for: list[str | None] = []
    server_context.sni_callback = lambda _socket, name, _context: asked_for.append(name)
    client_context = ssl.create_default_context(cafile=str(cert_path))
    resolver = ChangingResolver(["127.0.0.1"])

    with FakePostgrest(SECRET, {}, ssl_context=server_context) as server:
        url = f"https://project.doki.test:{server.port}"

        def use(projects: SupabaseProjects) -> Awaitable[None]:
            return projects.verify(ProjectCredentials.checked(url, SECRET, None))

        options: dict[str, Any] = {"resolve": resolver, "ssl_context": client_context}
        if verified:
            with_projects(use, **options)
        else:
            error = failure(use, **options)
            assert (error.status_code, error.code) == (503, "supabase_unreachable")
            assert error.message == f"cannot reach the Supabase project at {url} (ConnectError)"
        requests = list(server.requests)

    assert asked_for == ["project.doki.test"]  # SNI: the name, not the address connected to
    assert resolver.names == ["project.doki.test"]
    assert len(requests) == (1 if verified else 0)  # no key is sent to a server that is not the name's


def test_the_system_resolver_keeps_getaddrinfos_order_listing_each_address_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # getaddrinfo's order is RFC 6724's (reachable and preferred first); sorting as text would put 104.18.2.3 first.
    answers = ["2606:4700::6812:303", "104.18.3.3", "2606:4700::6812:303", "104.18.2.3", "104.18.3.3"]
    asked: list[tuple[object, ...]] = []

    def getaddrinfo(*args: object) -> list[tuple[Any, ...]]:
        asked.append(args)
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, 0)) for a in answers]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)

    assert asyncio.run(resolve_host("project.example")) == ["2606:4700::6812:303", "104.18.3.3", "104.18.2.3"]
    assert [args[0] for args in asked] == ["project.example"]


def test_the_system_resolver_finds_localhost_on_loopback() -> None:
    addresses = asyncio.run(resolve_host("localhost"))
    assert addresses and all(ipaddress.ip_address(a).is_loopback for a in addresses)


# Keys


@pytest.mark.parametrize(
    ("service", "anon", "complaint"),
    [
        (ANON, None, "service_role_key is a key for the 'anon' role"),
        (legacy_key("anon"), None, "service_role_key is a key for the 'anon' role"),
        (legacy_key("authenticated"), None, "service_role_key is a key for the 'authenticated' role"),
        (SECRET, SECRET, "anon_key is a secret key"),
        (SECRET, legacy_key("service_role"), "anon_key is a secret key"),
        ("", None, "service_role_key is empty"),
        ("sb_secret_with a space", None, "service_role_key is not an API key"),
        ("sb_secret_\u00e9t\u00e9", None, "service_role_key is not an API key"),
        (SECRET, "line\nbreak", "anon_key is not an API key"),
    ],
)
def test_a_key_of_the_wrong_kind_or_shape_is_refused_before_anything_is_sent(
    service: str, anon: str | None, complaint: str
) -> None:
    with pytest.raises(SupabaseProjectError) as caught:
        ProjectCredentials.checked("https://abcdefghijklmnopqrst.supabase.co", service, anon)
    error = caught.value
    assert (error.status_code, error.code) == (400, "supabase_invalid_key")
    assert error.message.startswith(complaint)
    for key in (service, anon):
        if key:
            assert key not in json.dumps(error.body())


def test_keys_are_trimmed_kept_out_of_the_repr_and_survive_the_stored_form() -> None:
    stored = ProjectCredentials.checked("https://abcdefghijklmnopqrst.supabase.co", f" {SECRET}\n", f"{ANON} ")
    assert (stored.service_role_key, stored.anon_key) == (SECRET, ANON)
    assert SECRET not in repr(stored) and ANON not in repr(stored)
    assert ProjectCredentials.from_json(stored.to_json()) == stored


@pytest.mark.parametrize("text", ["", "[]", '{"v": 2, "project_url": "x", "service_role_key": "k"}', '{"v": 1}'])
def test_a_stored_form_this_version_cannot_read_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="not in a format this version of Doki reads"):
        ProjectCredentials.from_json(text)


# Trying the keys against the project


def test_a_secret_key_is_tried_at_the_rest_root_in_apikey_only(project: FakePostgrest) -> None:
    with_projects(lambda projects: projects.verify(credentials(project)))

    (request,) = project.requests
    assert (request.method, request.path) == ("GET", "/rest/v1/")
    assert request.headers["apikey"] == SECRET
    assert "authorization" not in request.headers  # PostgREST would reject a bearer that is not a JWT


def test_a_legacy_service_role_key_also_goes_as_a_bearer_token() -> None:
    key = legacy_key("service_role")
    with FakePostgrest(key, {}) as server:
        with_projects(lambda projects: projects.verify(ProjectCredentials.checked(server.url, key, None)))
        (request,) = server.requests
        assert request.headers["authorization"] == f"Bearer {key}"


def test_a_key_the_project_does_not_know_is_rejected_with_401(project: FakePostgrest) -> None:
    wrong = "sb_secret_NotThisProject0123456789abcdefghij"
    error = failure(lambda projects: projects.verify(credentials(project, wrong)))
    assert isinstance(error, CredentialsRejectedError)
    assert (error.status_code, error.code) == (400, "supabase_credentials_rejected")
    assert error.message == f"the project at {project.url} rejected the service role key (401)"
    assert wrong not in json.dumps(error.body())


def test_the_anon_key_given_as_service_key_is_rejected_because_it_cannot_read_the_schema(
    project: FakePostgrest,
) -> None:
    # Shaped like no known key, so only the project can tell: its gateway answers 403 on the root.
    with FakePostgrest(SECRET, {}, anon_key="anon-key-of-unknown-shape") as server:
        error = failure(lambda projects: projects.verify(credentials(server, "anon-key-of-unknown-shape")))
    assert isinstance(error, CredentialsRejectedError)
    assert "(403): it is not the secret (service role) key" in error.message


def test_an_anon_key_is_accepted_when_the_project_knows_it_and_rejected_when_not(project: FakePostgrest) -> None:
    with_projects(lambda projects: projects.verify(credentials(project, anon=ANON)))
    assert [r.headers["apikey"] for r in project.requests] == [SECRET, ANON]

    other = "sb_publishable_SomeOtherProject0123456789ab"
    error = failure(lambda projects: projects.verify(credentials(project, anon=other)))
    assert isinstance(error, CredentialsRejectedError)
    assert error.message == f"the project at {project.url} rejected the anon key (401)"


def test_an_unreachable_project_is_a_503_saying_to_check_and_retry(project: FakePostgrest) -> None:
    project.stop()
    error = failure(lambda projects: projects.verify(credentials(project)))
    assert (error.status_code, error.code) == (503, "supabase_unreachable")
    assert error.message == f"cannot reach the Supabase project at {project.url} (ConnectError)"
    assert "not paused" in error.hint
    assert error.headers == {"Retry-After": "30"}


def test_a_project_slower_than_the_timeout_is_unreachable(project: FakePostgrest) -> None:
    project.delay_next(1, seconds=5)
    error = failure(lambda projects: projects.verify(credentials(project)), timeout=0.2)
    assert error.message.endswith("(it did not answer within 0.2s)")


@pytest.mark.parametrize("status", [500, 503, 429])
def test_a_failing_or_overloaded_project_is_a_503(project: FakePostgrest, status: int) -> None:
    project.fail_next(1, status=status)
    error = failure(lambda projects: projects.verify(credentials(project)))
    assert (error.status_code, error.code) == (503, "supabase_unavailable")
    assert f"answered {status}" in error.message


@pytest.mark.parametrize(
    ("status", "body", "what"),
    [
        (404, '{"message":"no Route matched with those values"}', "answered 404"),
        (302, "", "answered 302 (a redirect, which is never followed with a key)"),
        (200, "<html>a website</html>", "answered with something that is not PostgREST's OpenAPI description"),
        (200, '{"openapi": "3.0.0"}', "answered with something that is not PostgREST's OpenAPI description"),
    ],
)
def test_an_answer_that_is_not_postgrest_is_a_502_pointing_at_the_url(
    project: FakePostgrest, status: int, body: str, what: str
) -> None:
    project.fail_next(1, status=status, body=body)
    error = failure(lambda projects: projects.verify(credentials(project)))
    assert (error.status_code, error.code) == (502, "supabase_bad_answer")
    assert error.message == f"{project.url}/rest/v1/ {what}: there is no Supabase API there"


def test_a_description_larger_than_the_limit_is_not_read_whole(project: FakePostgrest) -> None:
    error = failure(lambda projects: projects.tables(credentials(project), "public"), max_document_bytes=2048)
    assert (error.status_code, error.code) == (502, "supabase_bad_answer")
    assert "is larger than" in error.message


# Reading tables


def test_tables_come_from_the_openapi_description_with_types_nullability_and_keys(project: FakePostgrest) -> None:
    tables = with_projects(lambda projects: projects.tables(credentials(project), "public"))

    assert [t.name for t in tables] == ["customers", "monthly_revenue", "orders"]
    customers, revenue, orders = tables
    assert (customers.description, customers.writable, revenue.writable) == ("Paying and trial customers", True, False)
    columns = {c.name: c.model_dump(exclude_none=True) for c in customers.columns}
    assert list(columns) == ["id", "email", "plan", "tags", "profile", "created_at"]
    assert columns["id"] == {
        "name": "id",
        "type": "bigint",
        "json_type": "integer",
        "nullable": False,
        "primary_key": True,
        "description": "Customer number",
    }
    assert columns["email"] == {
        "name": "email",
        "type": "character varying",
        "json_type": "string",
        "nullable": False,
        "primary_key": False,
        "description": "Where invoices go",
    }
    assert columns["plan"] == {
        "name": "plan",
        "type": "plan_kind",
        "json_type": "string",
        "nullable": False,
        "primary_key": False,
        "default": "free",
        "enum": ["free", "pro"],
    }
    assert (columns["tags"]["type"], columns["tags"]["json_type"], columns["tags"]["nullable"]) == (
        "text[]",
        "array",
        True,
    )
    # PostgREST gives json columns no JSON type, and drops a default it cannot show as JSON.
    assert columns["profile"] == {"name": "profile", "type": "jsonb", "nullable": True, "primary_key": False}
    assert columns["created_at"]["default"] == "now()"
    customer_id = orders.columns[1]
    assert (customer_id.name, customer_id.foreign_key, customer_id.primary_key) == (
        "customer_id",
        ForeignKey(table="customers", column="id"),
        False,
    )
    assert orders.columns[3].default is False


def test_the_schema_is_chosen_with_accept_profile(project: FakePostgrest) -> None:
    tables = with_projects(lambda projects: projects.tables(credentials(project), "sales"))

    assert [t.name for t in tables] == ["leads"]
    assert project.requests[-1].headers["accept-profile"] == "sales"


def test_a_schema_the_project_does_not_expose_is_a_404_listing_the_exposed_ones(project: FakePostgrest) -> None:
    error = failure(lambda projects: projects.tables(credentials(project), "private"))
    assert (error.status_code, error.code) == (404, "supabase_schema_not_exposed")
    assert error.message == "the schema 'private' is not exposed by the project's API (it exposes public, sales)"
    assert "Exposed schemas" in error.hint


def test_the_older_pgrst106_wording_lists_the_schemas_too(project: FakePostgrest) -> None:
    body = '{"code":"PGRST106","message":"The schema must be one of the following: public, api","details":null}'
    project.fail_next(1, status=406, body=body)
    error = failure(lambda projects: projects.tables(credentials(project), "private"))
    assert error.message.endswith("(it exposes public, api)")


def test_a_stored_key_the_project_no_longer_accepts_is_a_409_asking_to_reconnect(project: FakePostgrest) -> None:
    project.apikey = "sb_secret_RotatedRotatedRotatedRotated0123"
    error = failure(lambda projects: projects.tables(credentials(project), "public"))
    assert isinstance(error, CredentialsRejectedError)
    assert error.status_code == 409
    assert error.body()["connect"] == "POST /connectors/supabase/connect"


@pytest.mark.parametrize("schema", ["public", "my_schema", "tenant-42", "_x$"])
def test_ordinary_schema_names_pass(schema: str) -> None:
    assert check_schema_name(schema) == schema


@pytest.mark.parametrize("schema", ["", "a,b", "public\r\nX-Injected: 1", "1abc", "x" * 64, 'a"b'])
def test_a_schema_name_that_cannot_be_one_is_refused_before_anything_is_sent(schema: str) -> None:
    with pytest.raises(SupabaseProjectError) as caught:
        check_schema_name(schema)
    assert (caught.value.status_code, caught.value.code) == (400, "supabase_invalid_schema")


def test_postgrest_notes_are_parsed_and_a_comment_that_only_looks_like_one_is_kept() -> None:
    document = {
        "swagger": "2.0",
        "definitions": {
            "t": {
                "type": "object",
                "properties": {
                    "a": {"format": "integer", "type": "integer", "description": "Note:\nThis is a Primary Key.<pk/>"},
                    "b": {
                        "format": "uuid",
                        "type": "string",
                        "description": "Owner\n\nNote:\nThis is a Primary Key.<pk/>\n"
                        "This is a Foreign Key to `users.id`.<fk table='users' column='id'/>",
                    },
                    "c": {"format": "text", "type": "string", "description": "Note:\nremember to fill this"},
                    "d": {"format": "character varying", "type": "string", "maxLength": 12},
                },
                "required": ["a", "b"],
            }
        },
    }
    (table,) = tables_from_openapi(document)
    a, b, c, d = table.columns
    assert (a.primary_key, a.description, a.nullable) == (True, None, False)
    assert (b.primary_key, b.description, b.foreign_key) == (True, "Owner", ForeignKey(table="users", column="id"))
    assert (c.primary_key, c.description) == (False, "Note:\nremember to fill this")
    assert (d.max_length, d.nullable) == (12, True)
    assert table.writable is False  # no path item for it: nothing says it can be written


def test_a_hostile_or_odd_description_is_read_as_far_as_it_makes_sense() -> None:
    document = {
        "definitions": {
            "ok": {"properties": {"x": {"format": 5, "type": ["string"], "enum": "no", "maxLength": True}}},
            "junk": "not an object",
        },
        "paths": {"/ok": {"post": {}}},
    }
    ok, junk = sorted(tables_from_openapi(document), key=lambda t: t.name != "ok")
    assert ok.writable and ok.columns[0].model_dump(exclude_none=True) == {
        "name": "x",
        "nullable": True,
        "primary_key": False,
    }
    assert (junk.name, junk.columns) == ("junk", [])
    with pytest.raises(ValueError, match="not a PostgREST OpenAPI description"):
        tables_from_openapi(["definitions"])


# The fake: the tests above mean something only if it answers as Supabase does


def test_the_fake_root_answers_only_the_secret_key(project: FakePostgrest) -> None:
    root = f"{project.url}/rest/v1/"
    assert httpx.get(root).status_code == 401
    assert httpx.get(root, headers={"apikey": "nope"}).json()["message"] == "Invalid API key"
    assert httpx.get(root, headers={"apikey": ANON}).status_code == 403
    answer = httpx.get(root, headers={"apikey": SECRET})
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/openapi+json; charset=utf-8"
    document = answer.json()
    assert document["swagger"] == "2.0"
    assert set(document["paths"]) == {"/", "/customers", "/orders", "/monthly_revenue"}
    assert set(document["paths"]["/monthly_revenue"]) == {"get"}
    assert document["definitions"]["orders"]["required"] == ["id", "customer_id", "total"]
    assert "required" not in document["definitions"]["monthly_revenue"]


def test_the_fake_refuses_an_unexposed_schema_with_pgrst106_and_writes_to_the_content_profile(
    project: FakePostgrest,
) -> None:
    headers = {"apikey": SECRET}
    refused = httpx.get(f"{project.url}/rest/v1/leads", headers={**headers, "Accept-Profile": "nope"})
    assert (refused.status_code, refused.json()["code"]) == (406, "PGRST106")
    assert refused.json()["hint"] == "Only the following schemas are exposed: public, sales"

    written = httpx.post(
        f"{project.url}/rest/v1/leads", json={"id": 1, "source": "ad"}, headers={**headers, "Content-Profile": "sales"}
    )
    assert written.status_code == 201
    assert project.rows("leads", schema="sales") == [{"id": 1, "source": "ad"}]
    missing = httpx.get(f"{project.url}/rest/v1/leads", headers=headers)
    assert (missing.status_code, missing.json()["code"]) == (404, "PGRST205")


def test_the_fake_gives_the_anon_key_no_table_access(project: FakePostgrest) -> None:
    answer = httpx.get(f"{project.url}/rest/v1/customers", headers={"apikey": ANON})
    assert (answer.status_code, answer.json()["code"]) == (401, "42501")
