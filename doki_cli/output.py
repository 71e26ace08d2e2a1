"""Everything the CLI prints goes through `Output`: rich text for people, one JSON document for scripts."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from doki_cli.errors import Code, DokiError
from doki_cli.waiting import WAITING

if TYPE_CHECKING:
    from rich.console import Console


def _text(text: str = "", style: str | None = None) -> Any:
    from rich.text import Text

    return Text(text, style=style or "")


def _utc_now() -> datetime:
    return datetime.now(UTC)


def stamp(at: datetime) -> str:
    """A progress line's time: UTC, to the second, ISO 8601 (`2026-12-07T05:50:01Z`), as CI logs show their own."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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
