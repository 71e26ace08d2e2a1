"""The loopback URLs of Cloud Run services: one small reverse proxy per service URL and per traffic tag.

Each proxy checks the caller may invoke the service, picks the revision that answers by a deterministic smooth
weighted round-robin over the traffic split (so a 50/50 split alternates exactly), and forwards the request to that
revision's container on its loopback port. Requests and answers are read whole: simple and robust, not streaming.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from doki_cli.emulator.errors import ApiError

log = logging.getLogger("doki.emulator")

# Containers run on the engine's host network, which is this machine's loopback.
BACKEND_HOST = "127.0.0.1"
SHUTDOWN_POLL_SECONDS = 0.05
# Headers that describe one connection, never forwarded (RFC 9110 section 7.6.1).
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "transfer-encoding"}
    | {"upgrade", "proxy-connection"}
)
_FORBIDDEN_PAGE = (
    '<html><head>\n<meta http-equiv="content-type" content="text/html;charset=utf-8">\n'
    "<title>403 Forbidden</title>\n</head>\n<body text=#000000 bgcolor=#ffffff>\n<h1>Error: Forbidden</h1>\n"
    "<h2>Your client does not have permission to get URL <code>{path}</code> from this server.</h2>\n"
    "<h2></h2>\n</body></html>\n"
)

# What a request with a token Cloud Run does not accept gets (a bad signature, expired, another audience).
_UNAUTHORIZED_PAGE = (
    '<html><head>\n<meta http-equiv="content-type" content="text/html;charset=utf-8">\n'
    "<title>401 Unauthorized</title>\n</head>\n<body text=#000000 bgcolor=#ffffff>\n<h1>Error: Unauthorized</h1>\n"
    "<h2>Your client does not have permission to the requested URL <code>{path}</code>.</h2>\n"
    "<h2></h2>\n</body></html>\n"
)

# What a request the service's ingress does not admit gets: Google's front end "not found" page.
_NOT_FOUND_PAGE = (
    '<html><head>\n<meta http-equiv="content-type" content="text/html;charset=utf-8">\n'
    "<title>404 Page not found</title>\n</head>\n<body text=#000000 bgcolor=#ffffff>\n<h1>Error: Page not found</h1>\n"
    "<h2>The requested URL was not found on this server.</h2>\n<h2></h2>\n</body></html>\n"
)


@dataclass(frozen=True)
class Backend:
    """Where a revision's container listens, and how long it may take to answer (the revision's timeout)."""

    port: int
    timeout: float


class WeightedRoundRobin:
    """Smooth weighted round-robin (as nginx balances upstreams): exact proportions, evenly interleaved.

    With weights 50/50 the picks alternate A, B, A, B; with 75/25, A, A, B, A. Ties go to the earlier target.
    """

    def __init__(self, targets: Sequence[tuple[str, int]]) -> None:
        self._targets = [(name, weight) for name, weight in targets if weight > 0]
        self._current = [0] * len(self._targets)
        self._total = sum(weight for _, weight in self._targets)
        self._lock = threading.Lock()

    @property
    def targets(self) -> list[tuple[str, int]]:
        return list(self._targets)

    def pick(self) -> str | None:
        if not self._targets:
            return None
        with self._lock:
            for index, (_, weight) in enumerate(self._targets):
                self._current[index] += weight
            best = max(range(len(self._targets)), key=lambda i: (self._current[i], -i))
            self._current[best] -= self._total
            return self._targets[best][0]


class Proxy:
    """One URL: a threaded HTTP server on `host:port` forwarding to the revisions of a split."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        refuse: Callable[[str | None], int | None],
        backend: Callable[[str], Backend | None],
        reachable: Callable[[], bool] = lambda: True,
        observe: Callable[[str, int, float], None] | None = None,
    ) -> None:
        """`reachable()` says whether the service's ingress admits the caller (checked first); `refuse(authorization
        header)` the status a caller who may not invoke gets (None: it may); `backend(revision)` where the revision
        listens (None: it has no running container); `observe(revision, status, milliseconds)` hears of each answer a
        revision was chosen for (Cloud Run's request metrics). `port` is tried first; when taken, any port."""
        self._reachable = reachable
        self._observe = observe
        self._refuse = refuse
        self._backend = backend
        self._split = WeightedRoundRobin([])
        self._server = _bind(host, port, self)
        self.host = host
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            # Shutting down waits for the next poll: a short interval keeps closing a URL quick.
            kwargs={"poll_interval": SHUTDOWN_POLL_SECONDS},
            name=f"run-proxy-{self.port}",
            daemon=True,
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def targets(self) -> list[tuple[str, int]]:
        return self._split.targets

    def route(self, targets: Sequence[tuple[str, int]]) -> None:
        """Send requests to `targets` ((revision, percent), percent > 0) from now on; unchanged keeps the rotation."""
        if list(targets) != self._split.targets:
            self._split = WeightedRoundRobin(targets)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def handle(self, request: _Handler) -> None:
        # Read the body even when refusing: what is left unread would be taken for the next request on the connection.
        body = request.read_body()
        try:
            if not self._reachable():
                request.answer(404, [("Content-Type", "text/html; charset=UTF-8")], _NOT_FOUND_PAGE.encode())
                return
            refusal = self._refuse(request.headers.get("Authorization"))
        except ApiError as err:  # a failure the fault plan holds for this URL
            request.answer(err.http_status, [("Content-Type", "text/plain")], f"{err.message}\n".encode())
            return
        if refusal is not None:
            page = _UNAUTHORIZED_PAGE if refusal == 401 else _FORBIDDEN_PAGE
            request.answer(
                refusal, [("Content-Type", "text/html; charset=UTF-8")], page.format(path=request.path).encode()
            )
            return
        revision = self._split.pick()
        backend = self._backend(revision) if revision is not None else None
        if revision is None or backend is None:
            request.answer(503, [("Content-Type", "text/plain")], b"Service Unavailable: no revision is serving.\n")
            return
        started = time.monotonic()
        status = self._forward(request, body, revision, backend)
        if self._observe is not None:
            self._observe(revision, status, (time.monotonic() - started) * 1000)

    def _forward(self, request: _Handler, body: bytes, revision: str, backend: Backend) -> int:
        """Send the request to the revision and its answer back; the status the caller got."""
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP]
        client_ip = request.client_address[0]
        headers += [("X-Forwarded-For", client_ip), ("X-Forwarded-Proto", "http")]
        connection = http.client.HTTPConnection(BACKEND_HOST, backend.port, timeout=backend.timeout)
        try:
            connection.putrequest(request.command, request.path, skip_host=True, skip_accept_encoding=True)
            for key, value in headers:
                connection.putheader(key, value)
            if body or request.command in ("POST", "PUT", "PATCH"):
                connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body)
            response = connection.getresponse()
            content = response.read()
            answer_headers = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP]
            request.answer(response.status, answer_headers, content, reason=response.reason)
            return response.status
        except TimeoutError:
            request.answer(504, [("Content-Type", "text/plain")], b"upstream request timeout\n")
            return 504
        except OSError as exc:
            log.info("revision %s did not answer on port %s: %s", revision, backend.port, exc)
            request.answer(
                503, [("Content-Type", "text/plain")], f"Service Unavailable: {revision} did not answer.\n".encode()
            )
            return 503
        finally:
            connection.close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # A restarted emulator takes its old ports back even while the previous sockets linger in TIME_WAIT.
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], proxy: Proxy) -> None:
        self.proxy = proxy
        super().__init__(address, _Handler)


def _bind(host: str, port: int, proxy: Proxy) -> _Server:
    if port:
        with contextlib.suppress(OSError):
            return _Server((host, port), proxy)
    return _Server((host, 0), proxy)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def _serve(self) -> None:
        self.server.proxy.handle(self)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

    def read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunks()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunks(self) -> bytes:
        body = bytearray()
        while True:
            size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                # Trailers end with an empty line.
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return bytes(body)
            body += self.rfile.read(size)
            self.rfile.readline()

    def answer(self, status: int, headers: list[tuple[str, str]], body: bytes, reason: str | None = None) -> None:
        self.send_response(status, reason)
        for key, value in headers:
            if key.lower() not in ("content-length", "date", "server"):
                self.send_header(key, value)
        length = len(body)
        if self.command == "HEAD":
            # A HEAD answer has no body but tells the length a GET would get.
            length = int(dict((k.lower(), v) for k, v in headers).get("content-length", 0))
        self.send_header("Content-Length", str(length))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("run proxy %s: " + format, self.server.server_address[1], *args)


class HeldPorts:
    """The ports handed to one emulator's revisions' containers, each held by a socket bound to it (never listening)
    until no revision has it, and all let go when the emulator stops.

    A container takes its port as a number (PORT), not a socket: Docker starts it as a process of its own, which binds
    a socket of its own, so no listening socket can be handed over. A port found free, let go and handed on could be
    taken meanwhile (by another emulator, a test's server, an outgoing connection), and the revision's readiness probe
    would then find that process instead. Held, the port goes to no bind to port 0, no outgoing connection and no bind
    without SO_REUSEADDR; the holder sets SO_REUSEADDR once bound, so the container's server, binding with
    SO_REUSEADDR as uvicorn, gunicorn, Python's HTTP servers, Node and Go do, may still listen on it beside the
    holder. Each emulator holds its own: one never lets go of another's."""

    def __init__(self, host: str = BACKEND_HOST) -> None:
        self._host = host
        self._held: dict[int, socket.socket] = {}
        self._lock = threading.Lock()

    def new(self, taken: frozenset[int] = frozenset()) -> int:
        """A port for a container to listen on, held for it and not in `taken`: the ports of the other revisions. A
        port held for none of them is let go."""
        with self._lock:
            for unused in [port for port in self._held if port not in taken]:
                self._held.pop(unused).close()
            refused = []  # held until a port is found, so that the kernel does not offer them again
            while True:
                held = self._hold(0)
                if held is None:
                    raise OSError(f"no port is free on {self._host}")
                if held not in taken:
                    break
                refused.append(self._held.pop(held))
            for holder in refused:
                holder.close()
            return held

    def keep(self, port: int) -> bool:
        """Whether `port` (recorded before a restart, or the revision's already) can be its container's: held for it
        with nothing listening there (an earlier container of the revision may still be), or free and held now."""
        with self._lock:
            if port in self._held:
                return not _listened_on(self._host, port)
            return self._hold(port) is not None

    def close(self) -> None:
        """Let every port go: the emulator stops."""
        with self._lock:
            for holder in self._held.values():
                holder.close()
            self._held.clear()

    def _hold(self, port: int) -> int | None:
        """Hold `port` (0: any); the port held, or None when it is in use or held already."""
        holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            # Bound before SO_REUSEADDR is set: the bind fails where anything at all has the port (a listener,
            # another holder, connections still in TIME_WAIT), as a port found in use should be left alone.
            holder.bind((self._host, port))
        except OSError:
            holder.close()
            return None
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        held = int(holder.getsockname()[1])
        self._held[held] = holder
        return held


def _listened_on(host: str, port: int) -> bool:
    """Whether something listens on a port held here: beside its holder, a bind with SO_REUSEADDR fails only then."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False
