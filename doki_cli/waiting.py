"""What every wait shares, below the output and the adapters alike: how long a wait lasts (--timeout's durations, the
default), how often it says it goes on (the heartbeat), and the helpers that keep a long push, build or pause in
sight. Printing is `doki_cli.output`'s; this module prints nothing itself."""

from __future__ import annotations

import re
from collections.abc import Callable

from doki_cli.errors import Code, DokiError

# How often a wait that has not changed says it is still waiting: often enough that a CI log never looks stuck,
# seldom enough that a 15-minute wait stays readable (90 lines at most).
HEARTBEAT_SECONDS = 10.0


# How every wait's state line starts ("waiting for revision …", "waiting with 10% on …"): what a terminal shows as
# one live spinner line rather than a line per heartbeat.
WAITING = "waiting "
# How long a command waits for Cloud Run to make a change when --timeout does not say.
DEFAULT_TIMEOUT = 900.0
_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


def parse_duration(text: str) -> float:
    """Seconds in a duration as gcloud writes them: `90s`, `15m`, `1h`, `1h30m`, or a bare number of seconds; a
    DokiError (bad_option) for anything else, or none at all."""
    value = text.strip().lower()
    match = _DURATION.fullmatch(value)
    seconds = 0
    if value.isdigit():
        seconds = int(value)
    elif value and match is not None:
        hours, minutes, secs = (int(part or 0) for part in match.groups())
        seconds = hours * 3600 + minutes * 60 + secs
    if seconds <= 0:
        raise DokiError(
            Code.BAD_OPTION,
            f"--timeout {text!r} is not a duration doki can wait for",
            "give a positive duration as gcloud does: 90s, 15m, 1h or 1h30m (a bare number is seconds)",
        )
    return float(seconds)


def duration_text(seconds: float) -> str:
    """`seconds` as parse_duration reads it back: 900 -> 15m, 90 -> 1m30s, 45 -> 45s."""
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "") + (f"{secs}s" if secs else "")
    return text or "0s"


def lines_in_sight(
    on_line: Callable[[str], None], *, doing: str, clock: Callable[[], float], on_progress: Callable[[str], None]
) -> Callable[[str], None]:
    """`on_line` (a push's or a build's output, shown only with -v) that also says, at the first line HEARTBEAT_SECONDS
    after it last did, that `doing` goes on and for how long: a long push reads in a CI log as progress."""
    started = said = clock()

    def sink(line: str) -> None:
        nonlocal said
        on_line(line)
        now = clock()
        if now - said >= HEARTBEAT_SECONDS:
            on_progress(f"{doing} ({now - started:.0f} s)")
            said = now

    return sink


def sleep_in_sight(
    seconds: float, *, doing: str, sleep: Callable[[float], None], on_progress: Callable[[str], None]
) -> None:
    """`sleep(seconds)` in slices of HEARTBEAT_SECONDS, saying after each that `doing` (a wait's state: it starts with
    WAITING) goes on: a long pause between a release's traffic steps reads in a log as a wait, not a hang."""
    slept = 0.0
    while slept < seconds:
        piece = min(HEARTBEAT_SECONDS, seconds - slept)
        sleep(piece)
        slept += piece
        if slept < seconds:
            on_progress(f"{doing} ({slept:.0f} s of {seconds:.0f} s)")
