"""Retries: transient failures again with capped, jittered backoff inside a deadline; the rest at once."""

from __future__ import annotations

import pytest
from google.api_core import exceptions

from doki_cli.gcp.retry import Retrier, knowing_retries


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def flaky(failures: list[Exception]) -> object:
    def call() -> str:
        if failures:
            raise failures.pop(0)
        return "done"

    return call


def retrier(clock: Clock, deadline: float = 60.0) -> Retrier:
    return Retrier(deadline=deadline, sleep=clock.sleep, clock=lambda: clock.now, jitter=lambda: 1.0)


@pytest.mark.parametrize(
    "error", [exceptions.ServiceUnavailable("x"), exceptions.TooManyRequests("x"), exceptions.InternalServerError("x")]
)
def test_a_transient_failure_is_retried_until_the_call_succeeds(error: Exception) -> None:
    clock = Clock()
    assert retrier(clock).call(flaky([error, error, error])) == "done"  # type: ignore[arg-type]
    assert clock.sleeps == [0.25, 0.5, 1.0]


def test_the_backoff_is_capped() -> None:
    clock = Clock()
    retrier(clock, deadline=1000).call(flaky([exceptions.ServiceUnavailable("x")] * 9))  # type: ignore[arg-type]
    assert clock.sleeps[-3:] == [8.0, 8.0, 8.0]


def test_the_jitter_spreads_each_wait_between_half_and_all_of_it() -> None:
    clock = Clock()
    jittered = Retrier(sleep=clock.sleep, clock=lambda: clock.now, jitter=lambda: 0.0)
    jittered.call(flaky([exceptions.ServiceUnavailable("x")] * 2))  # type: ignore[arg-type]
    assert clock.sleeps == [0.125, 0.25]


@pytest.mark.parametrize(
    "error",
    [exceptions.PermissionDenied("x"), exceptions.InvalidArgument("x"), exceptions.NotFound("x"), ValueError("x")],
)
def test_other_failures_are_raised_at_once(error: Exception) -> None:
    clock = Clock()
    with pytest.raises(type(error)):
        retrier(clock).call(flaky([error]))  # type: ignore[arg-type]
    assert clock.sleeps == []


def test_past_the_deadline_the_last_failure_is_raised() -> None:
    clock = Clock()
    with pytest.raises(exceptions.ServiceUnavailable):
        retrier(clock, deadline=2.0).call(flaky([exceptions.ServiceUnavailable("x")] * 50))  # type: ignore[arg-type]
    assert sum(clock.sleeps) <= 2.0


def test_a_write_knowing_retries_is_told_which_tries_are_retries() -> None:
    clock = Clock()
    seen: list[bool] = []

    def write(retried: bool) -> str:
        seen.append(retried)
        if len(seen) < 3:
            raise exceptions.ServiceUnavailable("answer lost")
        return "made"

    assert retrier(clock).call(knowing_retries(write)) == "made"
    assert seen == [False, True, True]
