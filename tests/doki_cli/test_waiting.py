"""The waits' shared parts: --timeout's durations as gcloud writes them, and the heartbeat that keeps a long sleep or
push in sight."""

from __future__ import annotations

import pytest

from doki_cli.errors import Code, DokiError
from doki_cli.waiting import HEARTBEAT_SECONDS, duration_text, lines_in_sight, parse_duration, sleep_in_sight


def test_a_long_sleep_is_slept_in_heartbeat_slices_each_saying_the_wait_goes_on() -> None:
    slept: list[float] = []
    said: list[str] = []
    sleep_in_sight(25, doing="waiting with 10% on api-2", sleep=slept.append, on_progress=said.append)
    assert slept == [HEARTBEAT_SECONDS, HEARTBEAT_SECONDS, 5.0]
    # None once the sleep is over: what follows it says so.
    assert said == ["waiting with 10% on api-2 (10 s of 25 s)", "waiting with 10% on api-2 (20 s of 25 s)"]


@pytest.mark.parametrize(
    ("given", "seconds"),
    [("90s", 90), ("15m", 900), ("1h", 3600), ("1h30m", 5400), ("2m5s", 125), ("45", 45), (" 10M ", 600)],
)
def test_a_duration_reads_as_gcloud_writes_them(given: str, seconds: float) -> None:
    assert parse_duration(given) == seconds


@pytest.mark.parametrize("given", ["", "0s", "0", "-5m", "1.5h", "15 minutes", "m", "5m1h"])
def test_anything_else_is_a_bad_option_that_shows_the_forms_it_takes(given: str) -> None:
    with pytest.raises(DokiError) as refused:
        parse_duration(given)
    assert (refused.value.code, refused.value.message, refused.value.hint) == (
        Code.BAD_OPTION,
        f"--timeout {given!r} is not a duration doki can wait for",
        "give a positive duration as gcloud does: 90s, 15m, 1h or 1h30m (a bare number is seconds)",
    )


@pytest.mark.parametrize(("seconds", "text"), [(900, "15m"), (90, "1m30s"), (45, "45s"), (3600, "1h"), (0, "0s")])
def test_a_duration_is_written_back_as_it_is_given(seconds: float, text: str) -> None:
    assert duration_text(seconds) == text


def test_a_push_says_it_goes_on_at_the_first_line_a_heartbeat_after_it_last_did() -> None:
    now = [0.0]
    shown: list[str] = []
    said: list[str] = []
    sink = lines_in_sight(shown.append, doing="waiting for the push", clock=lambda: now[0], on_progress=said.append)
    for at in (1.0, 9.0, 10.5, 12.0, 25.0):
        now[0] = at
        sink(f"layer at {at}")
    assert shown == ["layer at 1.0", "layer at 9.0", "layer at 10.5", "layer at 12.0", "layer at 25.0"]  # -v's lines
    assert said == ["waiting for the push (10 s)", "waiting for the push (25 s)"]
