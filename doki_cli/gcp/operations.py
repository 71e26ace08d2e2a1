"""Waiting for a long-running operation, polled by doki rather than by the client library.

`operation.result()` polls GetOperation itself: with real sleeps, retrying UNAVAILABLE for up to 600 s on its own
(the libraries' default polling retry), outside the Retrier's deadline and out of sight of a test's fake clock.
Here each poll is one `done()` without the library's retry, put through the Retrier, and the waits between polls
use the Retrier's sleep and clock, so an operation is waited for as every other call is retried: bounded, and
testable without waiting. (Cloud Run's deploys have a wait of their own, with progress: `CloudRun._wait`.)
"""

from __future__ import annotations

from functools import partial
from typing import Any

from doki_cli.errors import DokiError
from doki_cli.gcp.retry import Retrier, no_library_retry

# Most operations doki starts end within seconds; a poll every few seconds at most is plenty for the slow ones.
FIRST_POLL_DELAY = 0.5
MAX_POLL_DELAY = 5.0


class OperationTimeout(Exception):
    """The operation was still running when the wait's time was up; it goes on at Google."""


class PollFailed(Exception):
    """Asking how the operation is doing failed for good (`cause`, a client library error): Google accepted the
    change and goes on with it whatever the caller says, which is what its message must tell."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


def accepted(error: DokiError) -> DokiError:
    """`error`, about a wait that failed, saying that the change goes on at Google: otherwise a user reads it as
    "nothing happened", when a rerun may well find the change made."""
    error.message += "; the change was accepted and goes on at Google"
    return error


def wait_for(operation: Any, retrier: Retrier, *, timeout: float) -> Any:
    """The result of `operation` once done; its error raised as the client library's exception.

    Polls through `retrier` (a poll that fails transiently is tried again; one that fails for good is PollFailed).
    OperationTimeout after `timeout` seconds."""
    from google.api_core import exceptions

    deadline = retrier.clock() + timeout
    delay = FIRST_POLL_DELAY
    while True:
        try:
            if retrier.call(partial(operation.done, retry=no_library_retry())):
                break
        except exceptions.GoogleAPICallError as exc:
            raise PollFailed(exc) from None
        if retrier.clock() + delay > deadline:
            raise OperationTimeout(f"{operation.operation.name} was still running after {timeout:.0f} s")
        retrier.sleep(delay)
        delay = min(delay * 1.5, MAX_POLL_DELAY)
    # Done: the result (or the error) is already here, so this makes no further call.
    return operation.result()
