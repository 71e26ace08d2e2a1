"""The health contract every deploy checks: `GET /` answers {"message": "Doki Backend up"}."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable

from doki_cli.errors import DokiError

EXPECTED = {"message": "Doki Backend up"}


def check_health(
    url: str,
    *,
    attempts: int = 10,
    sleep: Callable[[float], None] = time.sleep,
    fetch: Callable[[str], tuple[int, bytes]] | None = None,
) -> None:
    """Retry with growing waits (a cold start can take seconds); raise naming what came back instead."""
    get = fetch or _fetch
    delay = 0.5
    last = ""
    for attempt in range(attempts):
        try:
            status, body = get(url.rstrip("/") + "/")
        except OSError as exc:
            last = f"no answer ({exc})"
        else:
            try:
                if status == 200 and json.loads(body) == EXPECTED:
                    return
            except ValueError:
                pass
            last = f"HTTP {status}: {body[:200].decode(errors='replace')}"
        if attempt + 1 < attempts:
            sleep(delay)
            delay = min(delay * 2, 5.0)
    raise DokiError(
        "health_check_failed",
        f"{url}/ did not answer the health contract after {attempts} tries; last: {last}",
        "see `doki logs` for the container's output; `doki rollback` returns traffic to the previous revision",
    )


def _fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - the service's own http(s) URL
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
