"""What the Cloud Monitoring suites share: an emulator on a clock the test moves, the official clients on it, and a
loopback HTTP server whose answer a test sets, for uptime checks to call."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from doki_cli.emulator.server import Emulator, EmulatorConfig
from doki_cli.gcp.clients import ClientFactory, MonitoringClients


class Later:
    """Now, plus what the test skipped ahead."""

    def __init__(self) -> None:
        self.skipped = 0.0

    def __call__(self) -> float:
        return time.time() + self.skipped


class Site:
    """A loopback HTTP server answering every request with `status` and `body`, counting the requests."""

    def __init__(self) -> None:
        self.status = 200
        self.body: bytes = json.dumps({"message": "Doki Backend up"}).encode()
        self.requests: list[dict[str, str]] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                site.requests.append({"path": self.path, "user-agent": self.headers.get("User-Agent", "")})
                self.send_response(site.status)
                self.send_header("Content-Length", str(len(site.body)))
                self.end_headers()
                self.wfile.write(site.body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def later() -> Later:
    return Later()


@pytest.fixture
def watched(later: Later) -> Iterator[Emulator]:
    with Emulator(EmulatorConfig(), wall_clock=later) as running:
        yield running


@pytest.fixture
def monitoring(watched: Emulator) -> MonitoringClients:
    return ClientFactory(watched.grpc_address).monitoring()


@pytest.fixture
def site() -> Iterator[Site]:
    served = Site()
    yield served
    served.close()
