"""Everything the CLI prints goes through `Output`: rich text for people, one JSON document for scripts."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from doki_cli.errors import Code, DokiError

if TYPE_CHECKING:
    from rich.console import Console


def _text(text: str = "", style: str | None = None) -> Any:
    from rich.text import Text

    return Text(text, style=style or "")


def _utc_now() -> datetime:
    return datetime.now(UTC)


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


def stamp(at: datetime) -> str:
    """A progress line's time: UTC, to the second, ISO 8601 (`2026-12-07T05:50:01Z`), as CI logs show their own."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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


class Output:
    def __init__(
        self, *, json_mode: bool = False, verbosity: int = 0, clock: Callable[[], datetime] = _utc_now
    ) -> None:
        self.json_mode = json_mode
        self.verbosity = verbosity
        self._clock = clock
        self._status: Any = None  # the spinner a wait shows on a terminal, while it lasts

    # Consoles are made on first use: importing rich costs more than `doki --help` as a whole should.
    # No markup or highlighting: messages hold URLs, brackets and user values that must print as they are.
    @cached_property
    def out(self) -> Console:
        from rich.console import Console

        return Console(highlight=False, markup=False, soft_wrap=True)

    @cached_property
    def err(self) -> Console:
        from rich.console import Console

        return Console(stderr=True, highlight=False, markup=False, soft_wrap=True)

    def line(self, text: str = "", *, style: str | None = None) -> None:
        """Human output; silent in JSON mode, where `data` carries the result."""
        if not self.json_mode:
            self.end_wait()
            self.out.print(_text(text, style))

    def note(self, text: str) -> None:
        """Side remarks go to stderr, so stdout stays clean for pipes (`doki keys generate >> .env`)."""
        if not self.json_mode:
            self.end_wait()
            self.err.print(_text(text, "dim"))

    def progress(self, text: str) -> None:
        """A step of a long change, or a wait's state, on stderr. In a log (CI, a pipe) and under --json, whose stdout
        holds only the data, each is a line starting with the UTC time (`2026-12-07T05:50:01Z waiting for ...`), so
        a reader can tell a slow step from a stuck one; the format is stable (docs/cli.md). On a terminal a step is
        an indented line, and a wait's state (WAITING, said again every heartbeat) a spinner updated in place, so a
        15-minute wait is one live line rather than ninety."""
        if not self.err.is_terminal or self.json_mode:
            self.err.print(_text(f"{stamp(self._clock())} {text}"))
        elif text.startswith(WAITING):
            if self._status is None:
                self._status = self.err.status(_text(text, "dim"))
                self._status.start()
            else:
                self._status.update(_text(text, "dim"))
        else:
            self.end_wait()
            self.err.print(_text(f"  {text}", "dim"))

    def end_wait(self) -> None:
        """The wait's spinner gone, before anything else prints (its last state is what the next line follows)."""
        if self._status is not None:
            self._status.stop()
            self._status = None

    def debug(self, text: str) -> None:
        if self.verbosity > 0:
            self.end_wait()
            self.err.print(_text(text, "dim"))

    @contextmanager
    def build_progress(self) -> Iterator[Callable[[str], None]]:
        """A line sink for a build's output: every line with -v; in a log or under --json a stamped progress line per
        Dockerfile step (`Step 3/9 : RUN ...`), so a CI log shows how far the build is; on a terminal a spinner on
        the step."""
        if self.verbosity:
            yield self.debug
            return
        if self.json_mode or not self.err.is_terminal:

            def step(line: str) -> None:
                if line.startswith("Step "):
                    self.progress(f"building: {line.strip()}")

            yield step
            return
        with self.err.status("starting the build") as status:

            def show(line: str) -> None:
                if line.startswith("Step "):
                    status.update(line.strip())

            yield show

    def data(self, payload: Any) -> None:
        self.end_wait()
        if self.json_mode:
            sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")
            sys.stdout.flush()

    def error(self, error: DokiError) -> None:
        self.end_wait()
        if self.json_mode:
            sys.stdout.write(json.dumps({"error": error.as_dict(), **error.details}, indent=2, default=str) + "\n")
            sys.stdout.flush()
            return
        if error.code == Code.INTERRUPTED and self.err.is_terminal:
            self.err.print()  # the terminal echoed ^C without a line break: the error starts a line of its own
        message = _text()
        message.append("Error", style="bold red")
        message.append(f" [{error.code}]: ", style="red")
        message.append(error.message)
        self.err.print(message)
        if error.hint:
            hint = _text("  Hint: ", "yellow")
            hint.append(error.hint)
            self.err.print(hint)
