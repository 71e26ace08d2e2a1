"""An httpx transport that connects only to an address it has checked: the name is resolved once, by the injected
resolver, every address is judged, and the TCP connection is made to an address that passed, never to a second
lookup's answer.

Why: checking a name's addresses and then letting the HTTP client connect by name resolves it twice. A name that
answers a public address to the check and a private one to the client (DNS rebinding) would reach internal hosts.

How: httpcore's connection pool asks its *network backend* to `connect_tcp(host, port, ...)` with the URL's host,
then upgrades the stream with `start_tls(server_hostname=<the URL's host>)`
(httpcore `_async/connection.py`, `AsyncHTTPConnection._connect`). Custom network backends are httpcore's documented
extension point (httpcore docs, "Network Backends": `AsyncConnectionPool(network_backend=...)`). `CheckedBackend`
resolves and judges in `connect_tcp`, then opens the socket to the checked address itself; TLS is still negotiated
and verified against the *name* (SNI and certificate check), because httpcore passes the origin's host to
`start_tls`. The pool keys connections by the URL's origin (the name), and a kept-alive connection was checked
when it was opened. httpx 0.28's `AsyncHTTPTransport` takes no network backend, so `CheckedTransport` is a small
custom transport over `httpcore.AsyncConnectionPool` (httpx docs, "Transports": custom transports implement
`handle_async_request`), mapping httpcore's exceptions to httpx's as httpx's own transport does.

A refused address raises `AddressRefusedError` before any packet is sent to any address: the answer cannot tell an
open internal port from a closed one, by content or by time, since no port was tried.

The request's connect timeout is one deadline for the lookup and every address tried, not a timeout per address: a
name answering many addresses that never answer back would otherwise hold a request for one timeout each.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager

import anyio
import httpcore
import httpx

from doki.connectors.addresses import address_refusal, parse_address

Resolve = Callable[[str], Awaitable[list[str]]]


class AddressRefusedError(Exception):
    """A host that is, or resolves to, an address this server must not connect to. Nothing was connected."""

    def __init__(self, host: str, address: str, reason: str) -> None:
        super().__init__(f"{host} resolves to {address}: {reason}")
        self.host = host
        self.address = address
        self.reason = reason


class NameNotResolvedError(Exception):
    """A host name the resolver found no address for (or failed on). Nothing was connected."""

    def __init__(self, host: str) -> None:
        super().__init__(f"{host} does not resolve")
        self.host = host


class CheckedBackend(httpcore.AsyncNetworkBackend):
    """Connects to `host` only through addresses that passed `address_refusal`, resolved once per connection.

    `check=False` (development) still resolves once and connects to that answer, refusing nothing.
    `inner` opens the sockets (httpcore's anyio backend; tests record what it is asked to connect to).
    """

    def __init__(
        self,
        resolve: Resolve,
        *,
        allow_loopback: bool,
        check: bool = True,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.resolve = resolve
        self.allow_loopback = allow_loopback
        self.check = check
        self.inner = inner if inner is not None else httpcore.AnyIOBackend()

    async def addresses(self, host: str, timeout: float | None = None) -> list[str]:
        """The addresses a connection to `host` may use, in the resolver's order; raises when any is refused."""
        literal = parse_address(host)
        if literal is not None:
            found = [str(literal)]
        else:
            try:
                with anyio.fail_after(timeout):
                    found = list(await self.resolve(host))
            except TimeoutError:
                raise httpcore.ConnectTimeout(f"resolving {host} took longer than {timeout}s") from None
            except OSError:
                raise NameNotResolvedError(host) from None
        if not found:
            raise NameNotResolvedError(host)
        for text in found:
            address = parse_address(text)
            if address is None:
                raise AddressRefusedError(host, text, "not an IP address")
            reason = address_refusal(address, allow_loopback=self.allow_loopback) if self.check else None
            if reason is not None:
                # One bad answer refuses the name: which answer a later lookup would give is anyone's guess.
                raise AddressRefusedError(host, text, reason)
        return found  # as the resolver wrote them: an IPv6 zone index is kept for the connection

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """A connection to the first checked address of `host` that answers, the lookup and every attempt within the
        one `timeout` (the request's connect timeout). Each address is given an equal share of the time left, so a
        name with many addresses that never answer holds a request no longer than a name with one, and each of them is
        still tried; an attempt that outlives its share (a backend that ignores its timeout) is cancelled."""
        deadline = None if timeout is None else anyio.current_time() + timeout
        try:
            with anyio.fail_after(timeout):
                found = await self.addresses(host, timeout)
                failure: Exception | None = None
                for index, address in enumerate(found):
                    share = None if deadline is None else (deadline - anyio.current_time()) / (len(found) - index)
                    try:
                        with anyio.fail_after(share):
                            return await self.inner.connect_tcp(
                                address, port, timeout=share, local_address=local_address, socket_options=socket_options
                            )
                    except TimeoutError:
                        failure = httpcore.ConnectTimeout(f"{address} did not answer in time")
                    except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                        failure = exc  # the next checked address, as a client tries each address of a name
                assert failure is not None  # addresses() returns at least one
                raise failure
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"no connection to {host} within {timeout}s") from None

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("this transport connects to checked TCP addresses only")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


# httpcore's exceptions as httpx raises them (httpx `_transports/default.py`, `map_httpcore_exceptions`), most
# specific first. Anything else (our own refusals) passes through unchanged.
_EXCEPTIONS: tuple[tuple[type[Exception], type[httpx.HTTPError]], ...] = (
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.ProtocolError, httpx.ProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
)


@contextmanager
def _httpx_exceptions() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        mapped: type[httpx.HTTPError] | None = None
        for source, target in _EXCEPTIONS:
            # The most derived httpcore class that matches decides (ConnectTimeout over TimeoutException).
            if isinstance(exc, source) and (mapped is None or issubclass(target, mapped)):
                mapped = target
        if mapped is None:
            raise
        raise mapped(str(exc)) from exc


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, stream: AsyncIterable[bytes]) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _httpx_exceptions():
            async for part in self._stream:
                yield part

    async def aclose(self) -> None:
        close = getattr(self._stream, "aclose", None)
        if close is not None:
            with _httpx_exceptions():
                await close()


class CheckedTransport(httpx.AsyncBaseTransport):
    """httpx's `AsyncHTTPTransport`, minus proxies and Unix sockets, over a pool that connects through `backend`.

    `ssl_context` verifies the server against the URL's host name (httpx's default context when None).
    """

    def __init__(
        self,
        backend: CheckedBackend,
        *,
        ssl_context: ssl.SSLContext | None = None,
        limits: httpx.Limits | None = None,
    ) -> None:
        limits = limits if limits is not None else httpx.Limits()
        self.backend = backend
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context if ssl_context is not None else httpx.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=backend,
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _httpx_exceptions():
            response = await self._pool.handle_async_request(core)
        assert isinstance(response.stream, AsyncIterable)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseStream(response.stream),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()
