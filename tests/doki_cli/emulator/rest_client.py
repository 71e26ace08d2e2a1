"""Plain HTTP calls to the emulator's REST port, as any client sends them, for tests of the REST surfaces' answers."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from doki_cli.emulator.server import Emulator


def call(
    emulator: Emulator, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    """`method path` (with its query) on the emulator's REST port, a JSON `body` when given; (status, parsed JSON)."""
    data = json.dumps(body).encode() if body is not None else None
    url = emulator.rest_url + path  # always http://127.0.0.1:PORT/...
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})  # noqa: S310
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
