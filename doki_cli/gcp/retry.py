"""Retries for Google calls: transient failures are retried with capped, jittered exponential backoff inside an
overall deadline; everything else fails at once. Sleep and clock are passed in, so waits are testable."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any, TypeVar

T = TypeVar("T")


def is_transient(exc: BaseException) -> bool:
    """UNAVAILABLE, RESOURCE_EXHAUSTED, INTERNAL and DEADLINE_EXCEEDED: worth another try; not an expired login
    that gRPC's auth plugin reports as UNAVAILABLE, which no wait renews."""
    from google.api_core import exceptions

    from doki_cli.gcp.errors import is_expired_login

    if is_expired_login(exc):
        return False
    return isinstance(
        exc,
        (
            exceptions.ServiceUnavailable,
            exceptions.TooManyRequests,  # RESOURCE_EXHAUSTED over gRPC maps here too
            exceptions.InternalServerError,
            exceptions.DeadlineExceeded,
        ),
    )


@cache
def no_library_retry() -> Any:
    """A client-library retry policy that never retries, for the calls whose library would retry on its own.

    The libraries retry a few methods themselves: GetService, AccessSecretVersion and every operation poll
    (GetOperation, for up to 600 s) on UNAVAILABLE, with real sleeps of their own. Under the Retrier that doubles the
    layers: its deadline no longer bounds the call, retries multiply, and a fake clock cannot see the waits. Passed as
    `retry=` (to a method, or to an operation's `done`, where None would mean the library's default), it leaves the
    Retrier the only one that retries."""
    from google.api_core import retry as retries

    return retries.Retry(predicate=lambda exc: False)


def knowing_retries(fn: Callable[[bool], T]) -> Callable[[], T]:
    """`fn(retried)` as a call for `Retrier.call`: `retried` is False on the first try and True on the others.

    For writes that are not idempotent: a try that failed may have been made by Google all the same, only its answer
    lost on the way, so a retry first finds out whether the change is there (or reads "already exists" as its own)."""
    tried = False

    def call() -> T:
        nonlocal tried
        retried, tried = tried, True
        return fn(retried)

    return call


@dataclass
class Retrier:
    deadline: float = 60.0
    initial: float = 0.25
    maximum: float = 8.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    jitter: Callable[[], float] = field(default=random.random)

    def call(self, fn: Callable[[], T], *, retry_if: Callable[[BaseException], bool] = is_transient) -> T:
        """`fn()`, again after each transient failure until the deadline; the last failure is raised."""
        start = self.clock()
        delay = self.initial
        while True:
            try:
                return fn()
            except Exception as exc:
                if not retry_if(exc):
                    raise
                # Full jitter: concurrent clients that failed together do not retry together.
                wait = delay * (0.5 + self.jitter() / 2)
                if self.clock() + wait - start > self.deadline:
                    raise
                self.sleep(wait)
                delay = min(delay * 2, self.maximum)
