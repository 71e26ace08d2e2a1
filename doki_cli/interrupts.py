"""Ctrl-C while doki writes to Google: the write in flight finishes first, then the interrupt takes effect.

A write abandoned mid-call may still land at Google after doki has moved on, and after the clean-up that undoes it
has read the state it restores: a release's lock and staged revision would then outlive the release, and no run
could take them back until the lock expired. So a write runs with SIGINT deferred: the first Ctrl-C is noted and
raised as KeyboardInterrupt once the write has returned; a second one interrupts at once, for a user who would
rather not wait. Waiting for an operation is not a write, and stays interruptible.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TypeVar

T = TypeVar("T")
EXIT_TERMINATED = 143  # 128 + SIGTERM
NOTE = "Interrupted: finishing the change in progress first (Ctrl-C again to stop at once)"


@contextmanager
def deferred_interrupt() -> Iterator[None]:
    """Hold back the first Ctrl-C until the block ends, then raise it; a no-op off the main thread or when nested."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread receives signals
        return
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield  # an enclosing block already defers it (or the program handles SIGINT itself)
        return
    pending = False

    def note(signum: int, frame: FrameType | None) -> None:
        nonlocal pending
        if pending:
            raise KeyboardInterrupt
        pending = True
        sys.stderr.write(NOTE + "\n")
        sys.stderr.flush()

    signal.signal(signal.SIGINT, note)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if pending:
        raise KeyboardInterrupt


def uninterrupted(fn: Callable[[], T]) -> T:
    """`fn()` (one write) with Ctrl-C deferred until it returns."""
    with deferred_interrupt():
        return fn()


def is_interrupt(exc: BaseException) -> bool:
    """Whether `exc` is Ctrl-C, or was raised while Ctrl-C unwound the stack.

    The KeyboardInterrupt can land between a lock's release and its re-acquisition inside gRPC's waits, and the
    RuntimeError that follows then stands in for it: it is still the user's Ctrl-C.
    """
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, KeyboardInterrupt):
            return True
        cause = cause.__context__
    return False


class Terminated(Exception):
    """SIGTERM arrived while `terminate_as_interrupt` was in effect."""


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (a process manager, `kill`, an editor's stop button) raises Terminated in the block, so its clean-up
    runs as it does for Ctrl-C: Python's default ends the process at once, leaving what it started behind."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread receives signals
        return

    def stop(signum: int, frame: FrameType | None) -> None:
        raise Terminated

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
