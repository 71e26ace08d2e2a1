"""One HTTP client for the upstream APIs (Google OAuth, Drive, Sheets), with their retry policy.

Google asks clients to retry 429 and 5xx answers (and Drive's rate-limit 403s) with exponential backoff. Retries
here are capped (a request is tried `attempts` times, waits double from `base_delay` up to `max_delay`, and a
`Retry-After` is honoured up to the same cap) and bounded in time: every Google call made for one API request
(a refresh, the call, and both again after a refused token) shares one deadline, set with `deadline()`, so a
failing Google costs a request seconds, not minutes. Each try's timeout shrinks to what remains, and no wait
runs past the deadline. `sleep` and `clock` are injected: tests record the waits and move the clock instead of
waiting. A request that still fails becomes a 503 (or 429) `ConnectorError`, never a 500.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import httpx

from doki.connectors import REQUEST_BUDGET_SECONDS
from doki.connectors.errors import (
    ConnectorError,
    google_error,
    google_rate_limited,
    google_unavailable,
    rate_limit_reason,
)

logger = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})  # and a 403 that names a rate limit (Drive's way)
Sleep = Callable[[float], Awaitable[None]]
_deadline: ContextVar[float | None] = ContextVar("doki_upstream_deadline", default=None)


@contextmanager
def deadline(at: float) -> Iterator[None]:
    """Within the block, every `Upstream` request gives up at `at` (on the Upstream's clock). An enclosing
    deadline stands: nested calls share the request's one deadline."""
    if _deadline.get() is not None:
        yield
        return
    token = _deadline.set(at)
    try:
        yield
    finally:
        _deadline.reset(token)


class Upstream:
    """Sends requests with retries; does not own `http` (the app's lifespan closes it)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        sleep: Sleep = asyncio.sleep,
        attempts: int = 4,
        base_delay: float = 0.5,
        max_delay: float = 8.0,
        timeout: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self._http = http
        self._sleep = sleep
        self._clock = clock
        self.attempts = attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.timeout = timeout

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """The first answer that is not 429/5xx; raises ConnectorError when every attempt failed, or when the
        deadline left no time for another."""
        what = f"{method} {url.split('?', 1)[0]}"
        at = _deadline.get()
        if at is None:  # a request outside any deadline() gets a budget of its own
            at = self._clock() + REQUEST_BUDGET_SECONDS
        for attempt in range(1, self.attempts + 1):
            last = attempt == self.attempts
            remaining = at - self._clock()
            if remaining <= 0:
                raise google_unavailable(f"no time was left for {what}: Google was too slow earlier in this request")
            try:
                response = await self._http.request(
                    method, url, timeout=min(self.timeout, remaining), follow_redirects=False, **kwargs
                )
            except httpx.TransportError as error:
                logger.warning("%s failed (%s), attempt %d of %d", what, type(error).__name__, attempt, self.attempts)
                failure = google_unavailable(f"cannot reach Google ({type(error).__name__}) for {what}")
                if last:
                    raise failure from None
                await self._wait(self._delay(attempt, None), at, failure)
                continue
            if response.status_code not in RETRYABLE_STATUS and not (
                response.status_code == 403 and rate_limit_reason(response)
            ):
                return response
            logger.warning("%s answered %d, attempt %d of %d", what, response.status_code, attempt, self.attempts)
            if last:
                raise _exhausted(response, what, f"{self.attempts} times")
            delay = self._delay(attempt, response.headers.get("retry-after"))
            await self._wait(delay, at, _exhausted(response, what, f"{attempt} times, out of time for more"))
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _wait(self, delay: float, at: float, failure: ConnectorError) -> None:
        """Wait `delay` before the next try; raise `failure` at once when the try would start past `at`."""
        if self._clock() + delay >= at:
            raise failure
        await self._sleep(delay)

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        delay = self.base_delay * 2 ** (attempt - 1)
        if retry_after and retry_after.strip().isdigit():
            delay = max(delay, float(retry_after.strip()))
        return float(min(delay, self.max_delay))


def _exhausted(response: httpx.Response, what: str, times: str) -> ConnectorError:
    reason = google_error(response)[1] or response.reason_phrase
    message = f"Google answered {response.status_code} ({reason}) to {what}, {times}"
    if response.status_code in (403, 429):  # a 403 is retried only when it is a rate limit
        return google_rate_limited(message)
    return google_unavailable(message)
