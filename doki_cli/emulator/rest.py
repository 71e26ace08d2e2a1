"""HTTP/JSON plumbing: a router of Google-style REST routes on a threaded stdlib server.

Routes name the gRPC method they stand for, so faults, call counts and the disabled-API gate treat both transports
alike. Errors answer with Google's JSON error body (`{"error": {"code", "message", "status", "details"}}`).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import traceback
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from doki_cli.emulator.errors import ApiError, invalid_argument, not_found
from doki_cli.emulator.faults import Faults

log = logging.getLogger("doki.emulator")


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    params: dict[str, str] = field(default_factory=dict)

    @property
    def host_name(self) -> str:
        """The host the request was sent to, without its port (gcloud's proxied requests keep the API's host)."""
        host = self.headers.get("host", "")
        return host.rsplit(":", 1)[0] if not host.endswith("]") else host

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> dict[str, Any]:
        if not self.body:
            return {}
        try:
            data = json.loads(self.body)
        except ValueError as exc:
            raise invalid_argument(f"Invalid JSON payload received. {exc}") from None
        if not isinstance(data, dict):
            raise invalid_argument("Invalid JSON payload received. Expected an object.")
        return data


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, data: Any, status: int = 200) -> Response:
        return cls(status, json.dumps(data).encode(), {"Content-Type": "application/json; charset=UTF-8"})


Handler = Callable[[Request], Response]
ProjectOf = Callable[[Request], str | None]


class Gate(Protocol):
    """Refuses calls to an API the project has not enabled (doki_cli.emulator.serviceusage.gate.DisabledApiGate)."""

    def api_of(self, full_method: str) -> str | None:
        """The API `/package.Service/Method` belongs to, when its calls are gated."""

    def check(self, project: str, api: str) -> None:
        """Raise the ApiError Google answers when `project` has not enabled `api`."""


def path_project(request: Request) -> str | None:
    """The project a route's path names in its `project` parameter, e.g. `/v1/projects/(?P<project>[^/:]+)/...`."""
    return request.params.get("project")


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    rpc: str | None  # the gRPC method this route stands for, e.g. "google.cloud.secretmanager.v1.X/CreateSecret"
    project: ProjectOf  # the project whose API the call uses, for the gate
    host: re.Pattern[str] | None = None  # only requests sent to a matching host name (None: any)


class Router:
    def __init__(self, faults: Faults, gate: Gate | None = None) -> None:
        self._faults = faults
        self._gate = gate
        self._routes: list[Route] = []

    def add(
        self,
        method: str,
        pattern: str,
        handler: Handler,
        rpc: str | None = None,
        project: ProjectOf = path_project,
        host: str | None = None,
    ) -> None:
        """`pattern` is a regex over the path (no query), anchored at both ends; named groups become params.
        `project` finds the project the call acts on when the path does not name it as `project`; `host`, a regex
        over the host name, keeps a path two APIs share to the API whose endpoint the request was sent to."""
        compiled_host = re.compile(host + r"\Z") if host is not None else None
        self._routes.append(Route(method, re.compile(pattern + r"\Z"), handler, rpc, project, compiled_host))

    def _check_enabled(self, full_method: str, route: Route, request: Request) -> None:
        """Refuse a call to an API its project has not enabled, as the gRPC interceptor does: the consumer is the
        quota project the caller names (x-goog-user-project), else the project the request acts on."""
        api = self._gate.api_of(full_method) if self._gate is not None else None
        if self._gate is None or api is None:
            return
        project = request.headers.get("x-goog-user-project") or route.project(request)
        if project:
            self._gate.check(project, api)

    def dispatch(self, request: Request) -> Response:
        try:
            allowed = False
            for route in self._routes:
                match = route.pattern.match(request.path)
                if match is None or (route.host is not None and not route.host.match(request.host_name)):
                    continue
                allowed = True
                if route.method != request.method:
                    continue
                request.params = {k: urllib.parse.unquote(v) for k, v in match.groupdict().items() if v is not None}
                if route.rpc is None:
                    return route.handler(request)
                full_method = "/" + route.rpc
                self._check_enabled(full_method, route, request)
                self._faults.check(full_method)
                response = route.handler(request)
                self._faults.check_answer(full_method)
                return response
            if allowed:
                return Response.json(
                    {"error": {"code": 405, "message": f"{request.method} is not allowed here", "status": "UNKNOWN"}},
                    405,
                )
            raise not_found(f"The requested URL {request.path} was not found on this server.")
        except ApiError as err:
            return Response.json(err.rest_body(), err.http_status)
        except Exception:
            log.error("%s %s failed:\n%s", request.method, request.path, traceback.format_exc())
            return Response.json(
                {"error": {"code": 500, "message": "emulator error; see its log", "status": "INTERNAL"}}, 500
            )


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: RestServer

    def _serve(self) -> None:
        parsed = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(
            method=self.command,
            path=parsed.path,
            query=urllib.parse.parse_qs(parsed.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        response = self.server.router.dispatch(request)
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

    def do_CONNECT(self) -> None:
        # gcloud uses the emulator as its HTTP proxy (`doki emulator env`): a tunnel asked for is an HTTPS call to a
        # Google API it was not pointed at. Refused, so nothing reaches Google, in words the user sees
        # ("Tunnel connection failed: 403 …").
        self.send_error(
            403, f"the doki emulator does not serve {self.path}; only the APIs doki emulator env points gcloud at"
        )

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("rest: " + format, *args)


class RestServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str, port: int, router: Router) -> None:
        self.router = router
        super().__init__((host, port), _Handler)

    def start(self) -> None:
        # A short poll interval: stopping waits for the next poll, and tests stop an emulator each.
        threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, name="doki-emulator-rest", daemon=True
        ).start()
