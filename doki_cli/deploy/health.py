"""What a revision must answer before doki calls it healthy.

Every deploy checks the health contract: `GET /` answers {"message": "Doki Backend up"}. A release also runs the
extra checks of doki.toml's `[release]` against the new revision's own URL. Each check is retried with growing
waits, because a revision that has just become Ready may still be cold.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence

from doki_cli.config import SmokeCheck
from doki_cli.errors import Code, DokiError

EXPECTED = {"message": "Doki Backend up"}
HEALTH = SmokeCheck("/", 200)

Fetch = Callable[[str, Mapping[str, str]], tuple[int, bytes]]


def check_health(
    url: str,
    *,
    attempts: int = 10,
    sleep: Callable[[float], None] = time.sleep,
    fetch: Fetch | None = None,
    on_progress: Callable[[str], None] = lambda _: None,
) -> None:
    """Retry with growing waits (a cold start can take seconds); raise naming what came back instead."""
    last = probe(url, HEALTH, attempts=attempts, sleep=sleep, fetch=fetch or fetch_url, on_progress=on_progress)
    if last is not None:
        raise DokiError(
            Code.HEALTH_CHECK_FAILED,
            f"{url}/ did not answer the health contract after {attempts} tries; last: {last}",
            "see `doki logs` for the container's output; `doki rollback` returns traffic to the previous revision",
        )


def smoke_test(
    url: str,
    checks: Sequence[SmokeCheck],
    *,
    attempts: int,
    sleep: Callable[[float], None] = time.sleep,
    fetch: Fetch | None = None,
    headers: Mapping[str, str] | None = None,
    on_progress: Callable[[str], None] = lambda _: None,
) -> list[str]:
    """The health contract, then each check, against `url`; the checks that passed, or SmokeCheckFailed."""
    passed = []
    for check in (HEALTH, *checks):
        last = probe(
            url,
            check,
            attempts=attempts,
            sleep=sleep,
            fetch=fetch or fetch_url,
            headers=headers,
            on_progress=on_progress,
        )
        if last is not None:
            raise SmokeCheckFailed(url, check, attempts, last)
        passed.append(str(check))
    return passed


class SmokeCheckFailed(DokiError):
    def __init__(self, url: str, check: SmokeCheck, attempts: int, last: str) -> None:
        what = "the health contract" if check == HEALTH else str(check)
        super().__init__(
            Code.SMOKE_CHECK_FAILED,
            f"{url.rstrip('/')}{check.path} failed {what} after {attempts} tries; last: {last}",
            "traffic was not moved; fix the revision (its last log lines are above, `doki logs` has more) "
            "and release again",
        )
        self.check = check
        self.last = last


def probe(
    url: str,
    check: SmokeCheck,
    *,
    attempts: int,
    sleep: Callable[[float], None],
    fetch: Fetch,
    headers: Mapping[str, str] | None = None,
    on_progress: Callable[[str], None] = lambda _: None,
) -> str | None:
    """None once `check` passes; what came back the last time when it never did in `attempts` tries. Each failed
    try is said with the wait before the next, so a cold revision's retries show in a log rather than a silence."""
    delay = 0.5
    last = ""
    for attempt in range(attempts):
        try:
            status, body = fetch(url.rstrip("/") + check.path, headers or {})
        except OSError as exc:
            last = f"no answer ({exc})"
        else:
            problem = _judge(check, status, body)
            if problem is None:
                return None
            last = problem
        if attempt + 1 < attempts:
            seen = last.splitlines()[0][:120] if last else ""
            on_progress(f"{check}: {seen} (try {attempt + 1} of {attempts}); trying again in {delay:g} s")
            sleep(delay)
            delay = min(delay * 2, 5.0)
    return last


def _judge(check: SmokeCheck, status: int, body: bytes) -> str | None:
    shown = f"HTTP {status}: {body[:200].decode(errors='replace')}"
    if status != check.status:
        return shown
    if check == HEALTH:
        try:
            return None if json.loads(body) == EXPECTED else shown
        except ValueError:
            return shown
    if check.contains is not None and check.contains not in body.decode(errors="replace"):
        return f"{shown} (no {check.contains!r} in the body)"
    return None


def fetch_url(url: str, headers: Mapping[str, str]) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=dict(headers))  # noqa: S310 - the service's own http(s) URL
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
