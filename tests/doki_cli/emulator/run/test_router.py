"""The loopback proxies behind service URLs, against a stdlib HTTP server standing in for a revision's container."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from doki_cli.emulator.run.router import Backend, HeldPorts, Proxy, WeightedRoundRobin


class _Echo(BaseHTTPRequestHandler):
    """Answers with what it received, and a header and status of its own."""

    protocol_version = "HTTP/1.1"

    def _echo(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.dumps(
            {
                "method": self.command,
                "path": self.path,
                "body": self.rfile.read(length).decode(),
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "server": self.server.server_address[1],
            }
        ).encode()
        self.send_response(201 if self.command == "POST" else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Revision", str(self.server.server_address[1]))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_DELETE = _echo

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def upstreams() -> Iterator[dict[str, int]]:
    """Two stand-in revisions, "a" and "b", each on its own loopback port."""
    servers = {name: ThreadingHTTPServer(("127.0.0.1", 0), _Echo) for name in ("a", "b")}
    for server in servers.values():
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield {name: int(server.server_address[1]) for name, server in servers.items()}
    for server in servers.values():
        server.shutdown()
        server.server_close()


def _proxy(upstreams: dict[str, int], *, open_to_all: bool = True) -> Proxy:
    return Proxy(
        "127.0.0.1",
        0,
        refuse=lambda header: None if open_to_all or header else 403,
        backend=lambda revision: Backend(upstreams[revision], 5) if revision in upstreams else None,
    )


def test_a_fifty_fifty_split_alternates() -> None:
    split = WeightedRoundRobin([("a", 50), ("b", 50)])

    assert [split.pick() for _ in range(6)] == ["a", "b", "a", "b", "a", "b"]


def test_an_uneven_split_keeps_its_proportions_evenly_interleaved() -> None:
    split = WeightedRoundRobin([("a", 75), ("b", 25)])

    assert [split.pick() for _ in range(8)] == ["a", "a", "b", "a", "a", "a", "b", "a"]


def test_targets_without_percent_get_nothing_and_an_empty_split_picks_none() -> None:
    assert [WeightedRoundRobin([("a", 0), ("b", 100)]).pick() for _ in range(2)] == ["b", "b"]
    assert WeightedRoundRobin([]).pick() is None


def test_a_request_is_forwarded_whole_and_the_answer_comes_back_whole(upstreams: dict[str, int]) -> None:
    proxy = _proxy(upstreams)
    proxy.route([("a", 100)])
    try:
        answer = httpx.post(proxy.url + "/items?x=1&y=2", content=b"payload", headers={"X-Custom": "kept"})
    finally:
        proxy.close()

    assert (answer.status_code, answer.headers["x-revision"]) == (201, str(upstreams["a"]))
    seen = answer.json()
    assert (seen["method"], seen["path"], seen["body"]) == ("POST", "/items?x=1&y=2", "payload")
    assert seen["headers"]["x-custom"] == "kept"
    assert seen["headers"]["host"] == f"127.0.0.1:{proxy.port}"
    assert seen["headers"]["x-forwarded-for"] == "127.0.0.1"


def test_a_chunked_request_body_reaches_the_revision(upstreams: dict[str, int]) -> None:
    proxy = _proxy(upstreams)
    proxy.route([("a", 100)])
    try:
        answer = httpx.post(proxy.url + "/", content=iter([b"one-", b"two"]))
    finally:
        proxy.close()

    assert answer.json()["body"] == "one-two"


def test_requests_follow_the_split_in_order(upstreams: dict[str, int]) -> None:
    proxy = _proxy(upstreams)
    proxy.route([("a", 50), ("b", 50)])
    try:
        with httpx.Client() as client:
            served = [client.get(proxy.url + "/").json()["server"] for _ in range(4)]
    finally:
        proxy.close()

    assert served == [upstreams["a"], upstreams["b"], upstreams["a"], upstreams["b"]]


def test_a_caller_without_credentials_is_forbidden_unless_the_service_is_public(upstreams: dict[str, int]) -> None:
    proxy = _proxy(upstreams, open_to_all=False)
    proxy.route([("a", 100)])
    try:
        refused = httpx.get(proxy.url + "/secret")
        allowed = httpx.get(proxy.url + "/secret", headers={"Authorization": "Bearer token"})
    finally:
        proxy.close()

    assert refused.status_code == 403
    assert "Your client does not have permission to get URL <code>/secret</code> from this server." in refused.text
    assert allowed.status_code == 200


def test_no_serving_revision_or_one_that_does_not_answer_is_a_503(upstreams: dict[str, int]) -> None:
    proxy = _proxy(upstreams)
    try:
        idle = httpx.get(proxy.url + "/")
        proxy.route([("gone", 100)])
        gone = httpx.get(proxy.url + "/")
    finally:
        proxy.close()

    assert (idle.status_code, idle.text) == (503, "Service Unavailable: no revision is serving.\n")
    assert gone.status_code == 503


def test_a_proxy_takes_the_port_it_asks_for_and_another_when_that_one_is_taken(upstreams: dict[str, int]) -> None:
    first = _proxy(upstreams)
    try:
        second = Proxy("127.0.0.1", first.port, refuse=lambda header: None, backend=lambda revision: None)
        second.close()
    finally:
        first.close()
    reused = Proxy("127.0.0.1", first.port, refuse=lambda header: None, backend=lambda revision: None)
    reused.close()

    assert second.port != first.port
    assert reused.port == first.port


# The ports handed to revisions' containers


def _binds(port: int, *, reuse: bool) -> bool:
    """Whether another process's socket could bind `port` now (with SO_REUSEADDR, as servers do, or without)."""
    with socket.socket() as other:
        if reuse:
            other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            other.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def test_a_port_handed_to_a_container_is_held_for_it_and_only_its_server_can_listen_there() -> None:
    ports = HeldPorts()
    port = ports.new()
    assert not _binds(port, reuse=False)  # anything else, or a port found by binding port 0, is kept off
    # The container's server binds with SO_REUSEADDR and answers there.
    server = ThreadingHTTPServer(("127.0.0.1", port), _Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert httpx.get(f"http://127.0.0.1:{port}/ready").json()["path"] == "/ready"
        assert not ports.keep(port)  # a revision started again waits for another port while its old server listens
    finally:
        server.shutdown()
        server.server_close()
    assert ports.keep(port)  # gone: the revision may have its port again
    assert not _binds(port, reuse=False)
    ports.close()
    assert _binds(port, reuse=False)  # the emulator stopped: let go


def test_ports_no_other_revision_has_are_let_go_when_the_next_one_is_handed_out() -> None:
    ports = HeldPorts()
    kept = ports.new()
    dropped = ports.new(taken=frozenset({kept}))  # its revision is then deleted: no revision has it any more
    assert ports.new(taken=frozenset({kept})) not in (kept, dropped)
    assert not _binds(kept, reuse=False)
    assert _binds(dropped, reuse=False)
    ports.close()


def test_one_emulators_ports_are_never_let_go_by_another() -> None:
    mine, theirs = HeldPorts(), HeldPorts()
    held = mine.new()
    theirs.new()  # the other emulator's revisions have none of mine: it lets go only of its own
    assert not _binds(held, reuse=False)
    mine.close()
    theirs.close()
