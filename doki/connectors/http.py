"""One HTTP client for the upstream APIs (Google OAuth, Drive, Sheets), with their retry policy.

Google asks clients to retry 429 and 5xx answers with exponential backoff. Retries here are capped (a request
is tried `attempts` times, waits double from `base_delay` up to `max_delay`, and a `Retry-After` is honoured up
to the same cap) so a failing Google costs a request seconds, not minutes. `sleep` is injected: tests record the
waits instead of waiting. A request that still fails becomes a 503 (or 429) `ConnectorError`, never a 500.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from doki.connectors.errors import ConnectorError, google_error, google_unavailable

logger = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
Sleep = Callable[[float], Awaitable[None]]


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
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self._http = http
        self._sleep = sleep
        self.attempts = attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.timeout = timeout

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """The first answer that is not 429/5xx; raises ConnectorError when every attempt failed."""
        what = f"{method} {url.split('?', 1)[0]}"
        for attempt in range(1, self.attempts + 1):
            last = attempt == self.attempts
            try:
                response = await self._http.request(method, url, timeout=self.timeout, follow_redirects=False, **kwargs)
            except httpx.TransportError as error:
                logger.warning("%s failed (%s), attempt %d of %d", what, type(error).__name__, attempt, self.attempts)
                if last:
                    raise google_unavailable(f"cannot reach Google ({type(error).__name__}) for {what}") from None
                await self._sleep(self._delay(attempt, None))
                continue
            if response.status_code not in RETRYABLE_STATUS:
                return response
            logger.warning("%s answered %d, attempt %d of %d", what, response.status_code, attempt, self.attempts)
            if last:
                raise _exhausted(response, what, self.attempts)
            await self._sleep(self._delay(attempt, response.headers.get("retry-after")))
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        delay = self.base_delay * 2 ** (attempt - 1)
        if retry_after and retry_after.strip().isdigit():
            delay = max(delay, float(retry_after.strip()))
        return float(min(delay, self.max_delay))


def _exhausted(response: httpx.Response, what: str, attempts: int) -> ConnectorError:
    reason = google_error(response)[1] or response.reason_phrase
    message = f"Google answered {response.status_code} ({reason}) to {what}, {attempts} times"
    if response.status_code == 429:
        return ConnectorError(
            429,
            "google_rate_limited",
            message,
            hint="Google's quota for this app is exhausted for now: retry in a minute",
            headers={"Retry-After": "60"},
        )
    return google_unavailable(message)
