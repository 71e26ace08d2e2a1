"""The time the waits' tests give a command: a fixed wall clock for the progress stamps, and a sleep that moves a fake
monotonic clock on without sleeping, so a 15-minute --timeout runs out at once and deterministically."""

from __future__ import annotations

from datetime import UTC, datetime

from doki_cli.context import Factory

AT = datetime(2026, 12, 7, 5, 50, 1, tzinfo=UTC)
STAMP = "2026-12-07T05:50:01Z "  # how every progress line at AT starts in a log


class FakeTime:
    """The waits' time: each sleep moves it on, nothing is slept."""

    def __init__(self) -> None:
        self.now = 0.0

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def factory(self) -> Factory:
        return Factory(now=lambda: AT, sleep=self.sleep, monotonic=lambda: self.now)
