"""The Registry HTTP API v2 on its own threaded server: what `docker push` and `docker pull` send.

A server of its own rather than a route on the REST port: blob bodies are hundreds of MB and the engine sends them
with chunked transfer encoding, so they stream from the socket into the registry's files here, never whole in
memory. Authentication is Artifact Registry's: HTTP Basic with the username `oauth2accesstoken` and an access token
as the password (any non-empty one here). The engine tries HTTPS first and, as 127.0.0.0/8 registries are insecure
by default, falls back to this plain HTTP server.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import threading
import traceback
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from doki_cli.emulator.registry import errors
from doki_cli.emulator.registry.errors import RegistryError
from doki_cli.emulator.registry.state import MAX_MANIFEST_BYTES, DockerRegistry

log = logging.getLogger("doki.emulator")

USERNAME = "oauth2accesstoken"
REALM = "doki emulator registry"
CHUNK = 1 << 20
MAX_CHUNK_LINE = 1024


@dataclass
class Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    file: Path | None = None  # streamed instead of `body`
    length: int | None = None  # Content-Length when it is not the body's (a HEAD, a file)

    @classmethod
    def json(cls, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
        return cls(status, json.dumps(data).encode(), {"Content-Type": "application/json", **(headers or {})})


@dataclass
class Call:
    """One request, as the route handlers see it."""

    method: str
    name: str
    params: dict[str, str]
    query: dict[str, str]
    headers: Any  # the request's message headers
    body: Callable[[], Iterator[bytes]]  # the body as it arrives; reading it is what consumes it


Route = Callable[[DockerRegistry, Call], Reply]


def _blob(registry: DockerRegistry, call: Call) -> Reply:
    digest = call.params["digest"]
    path = registry.blob(digest)
    headers = {"Docker-Content-Digest": digest, "Content-Type": "application/octet-stream"}
    size = path.stat().st_size
    return Reply(200, headers=headers, file=path if call.method == "GET" else None, length=size)


def _uploading(name: str, upload_id: str, size: int) -> dict[str, str]:
    # Range is inclusive: "0-0" before the first byte too, as registries answer it.
    return {
        "Location": f"/v2/{name}/blobs/uploads/{upload_id}",
        "Range": f"0-{max(size - 1, 0)}",
        "Docker-Upload-UUID": upload_id,
    }


def _created_blob(name: str, digest: str) -> Reply:
    return Reply(201, headers={"Location": f"/v2/{name}/blobs/{digest}", "Docker-Content-Digest": digest})


def _start_upload(registry: DockerRegistry, call: Call) -> Reply:
    mount = call.query.get("mount")
    if mount is not None and registry.has_blob(mount):
        # Blobs are stored once for every repository, so a mount just links what is there.
        return _created_blob(call.name, mount)
    upload_id = registry.start_upload(call.name)
    digest = call.query.get("digest")
    if digest is not None:  # a monolithic upload: the whole blob in this request
        registry.finish_upload(call.name, upload_id, digest, call.body())
        return _created_blob(call.name, digest)
    return Reply(202, headers=_uploading(call.name, upload_id, 0))


def _upload_status(registry: DockerRegistry, call: Call) -> Reply:
    upload_id = call.params["upload"]
    return Reply(204, headers=_uploading(call.name, upload_id, registry.upload_size(call.name, upload_id)))


def _patch_upload(registry: DockerRegistry, call: Call) -> Reply:
    upload_id = call.params["upload"]
    start = None
    content_range = call.headers.get("Content-Range")
    if content_range:
        match = re.fullmatch(r"(?:bytes[ =])?(\d+)-(\d+)", content_range.strip())
        if match is None:
            raise errors.range_invalid(f"Content-Range {content_range!r} is not START-END")
        start = int(match[1])
    size = registry.write(call.name, upload_id, call.body(), start)
    return Reply(202, headers=_uploading(call.name, upload_id, size))


def _finish_upload(registry: DockerRegistry, call: Call) -> Reply:
    digest = call.query.get("digest")
    if not digest:
        raise errors.digest_invalid("the upload is completed with ?digest=", "")
    registry.finish_upload(call.name, call.params["upload"], digest, call.body())
    return _created_blob(call.name, digest)


def _cancel_upload(registry: DockerRegistry, call: Call) -> Reply:
    registry.cancel_upload(call.name, call.params["upload"])
    return Reply(204)


def _manifest(registry: DockerRegistry, call: Call) -> Reply:
    body, media_type, digest = registry.get_manifest(call.name, call.params["reference"])
    headers = {"Content-Type": media_type, "Docker-Content-Digest": digest}
    return Reply(200, body if call.method == "GET" else b"", headers, length=len(body))


def _put_manifest(registry: DockerRegistry, call: Call) -> Reply:
    if int(call.headers.get("Content-Length") or 0) > MAX_MANIFEST_BYTES:
        raise errors.manifest_invalid(f"the manifest is larger than {MAX_MANIFEST_BYTES} bytes")
    body = bytearray()
    for chunk in call.body():
        body += chunk
        if len(body) > MAX_MANIFEST_BYTES:
            raise errors.manifest_invalid(f"the manifest is larger than {MAX_MANIFEST_BYTES} bytes")
    content_type = call.headers.get("Content-Type") or ""
    digest = registry.put_manifest(call.name, call.params["reference"], bytes(body), content_type)
    return Reply(201, headers={"Location": f"/v2/{call.name}/manifests/{digest}", "Docker-Content-Digest": digest})


def _tags(registry: DockerRegistry, call: Call) -> Reply:
    tags = registry.tags(call.name)
    last = call.query.get("last")
    if last:
        tags = [tag for tag in tags if tag > last]
    headers = {}
    count = call.query.get("n")
    if count is not None and count.isdigit() and len(tags) > int(count):
        tags = tags[: int(count)]
        query = urllib.parse.urlencode({"n": count, "last": tags[-1]})
        headers["Link"] = f'</v2/{call.name}/tags/list?{query}>; rel="next"'
    return Reply.json({"name": call.name, "tags": tags}, headers=headers)


# Names hold slashes: each pattern's greedy name group takes all but the route's own tail.
ROUTES: list[tuple[re.Pattern[str], dict[str, Route]]] = [
    (re.compile(r"/v2/(?P<name>.+)/blobs/uploads/?"), {"POST": _start_upload}),
    (
        re.compile(r"/v2/(?P<name>.+)/blobs/uploads/(?P<upload>[0-9a-f-]+)"),
        {"GET": _upload_status, "PATCH": _patch_upload, "PUT": _finish_upload, "DELETE": _cancel_upload},
    ),
    (re.compile(r"/v2/(?P<name>.+)/blobs/(?P<digest>[^/]+)"), {"GET": _blob, "HEAD": _blob}),
    (
        re.compile(r"/v2/(?P<name>.+)/manifests/(?P<reference>[^/]+)"),
        {"GET": _manifest, "HEAD": _manifest, "PUT": _put_manifest},
    ),
    (re.compile(r"/v2/(?P<name>.+)/tags/list"), {"GET": _tags}),
]


def authenticate(authorization: str) -> None:
    """UNAUTHORIZED unless `authorization` is Basic oauth2accesstoken with a non-empty token."""
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "basic":
        raise errors.unauthorized("authentication required")
    try:
        username, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise errors.unauthorized("malformed Basic credentials") from None
    if username != USERNAME or not password:
        raise errors.unauthorized(
            f"authentication failed for user {username!r}: log in as {USERNAME} with an access token as the password"
        )


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: RegistryServer

    def _serve(self) -> None:
        self._consumed = not self._has_body()
        try:
            reply = self._dispatch()
        except RegistryError as err:
            reply = Reply(err.status, err.body(), {"Content-Type": "application/json"})
            if err.status == 401:
                reply.headers["WWW-Authenticate"] = f'Basic realm="{REALM}"'
        except (ConnectionError, TimeoutError):
            self.close_connection = True  # the client went away mid-body: nobody to answer
            return
        except Exception:
            log.error("registry: %s %s failed:\n%s", self.command, self.path, traceback.format_exc())
            body = {"errors": [{"code": "UNKNOWN", "message": "emulator error; see its log"}]}
            reply = Reply.json(body, 500)
        if not self._consumed:
            # Answered before reading the whole body (an error): the rest cannot be told from the next request.
            self.close_connection = True
            reply.headers["Connection"] = "close"
        self._send(reply)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def _dispatch(self) -> Reply:
        parsed = urllib.parse.urlsplit(self.path)
        path = parsed.path
        if path != "/v2" and not path.startswith("/v2/"):
            raise RegistryError(404, "NOT_FOUND", f"{path} is not part of the registry API (/v2/)")
        authenticate(self.headers.get("Authorization", ""))
        if path in ("/v2", "/v2/"):
            return Reply.json({})
        for pattern, methods in ROUTES:
            match = pattern.fullmatch(path)
            if match is None:
                continue
            route = methods.get(self.command)
            if route is None:
                raise errors.unsupported(f"{self.command} is not supported on {path}")
            params = match.groupdict()
            name = params.pop("name")
            self.server.registry.check_name(name)
            query = {key: values[0] for key, values in urllib.parse.parse_qs(parsed.query).items()}
            return route(self.server.registry, Call(self.command, name, params, query, self.headers, self._body))
        raise RegistryError(404, "NOT_FOUND", f"{path} is not a registry API route")

    def _has_body(self) -> bool:
        chunked = self.headers.get("Transfer-Encoding", "").lower() == "chunked"
        return chunked or int(self.headers.get("Content-Length") or 0) > 0

    def _body(self) -> Iterator[bytes]:
        """The request body in pieces of at most CHUNK bytes, from Content-Length or chunked transfer encoding."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                line = self.rfile.readline(MAX_CHUNK_LINE)
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise errors.blob_upload_invalid("malformed chunked encoding") from None
                if size == 0:
                    while self.rfile.readline(MAX_CHUNK_LINE) not in (b"\r\n", b"\n", b""):
                        pass  # trailers: none matter here
                    break
                yield from self._read(size)
                self.rfile.readline(MAX_CHUNK_LINE)  # the CRLF ending the chunk
        else:
            yield from self._read(int(self.headers.get("Content-Length") or 0))
        self._consumed = True

    def _read(self, size: int) -> Iterator[bytes]:
        while size > 0:
            data = self.rfile.read(min(size, CHUNK))
            if not data:
                raise ConnectionError("the client closed the connection mid-body")
            size -= len(data)
            yield data

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status)
        self.send_header("Docker-Distribution-API-Version", "registry/2.0")
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(reply.length if reply.length is not None else len(reply.body)))
        self.end_headers()
        if self.command == "HEAD":
            return
        if reply.file is not None:
            with reply.file.open("rb") as file:
                while data := file.read(CHUNK):
                    self.wfile.write(data)
        else:
            self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("registry: " + format, *args)


class RegistryServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str, port: int, registry: DockerRegistry) -> None:
        self.registry = registry
        super().__init__((host, port), _Handler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start(self) -> None:
        # A short poll interval: stopping waits for the next poll, and tests stop an emulator each.
        threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, name="doki-emulator-registry", daemon=True
        ).start()
