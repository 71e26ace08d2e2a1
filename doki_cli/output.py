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

if TYPE_CHECKING:
    from rich.console import Console


def _text(text: str = "", style: str | None = None) -> Any:
    from rich.text import Text

    return Text(text, style=style or "")


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Output:
    def __init__(
        self, *, json_mode: bool = False, verbosity: int = 0, clock: Callable[[], datetime] = _utc_now
    ) -> None:
        self.json_mode = json_mode
        self.verbosity = verbosity
        self._clock = clock

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
            self.out.print(_text(text, style))

    def note(self, text: str) -> None:
        """Side remarks go to stderr, so stdout stays clean for pipes (`doki keys generate >> .env`)."""
        if not self.json_mode:
            self.err.print(_text(text, "dim"))

    def progress(self, text: str) -> None:
        """A step of a long change, on stderr: indented on a terminal; in a log (CI, a pipe) each line starts with
        the UTC time, so a reader can tell a slow step from a stuck one."""
        if self.json_mode:
            return
        if self.err.is_terminal:
            self.err.print(_text(f"  {text}", "dim"))
        else:
            self.err.print(_text(f"{self._clock():%H:%M:%S}  {text}"))

    def debug(self, text: str) -> None:
        if self.verbosity > 0:
            self.err.print(_text(text, "dim"))

    @contextmanager
    def build_progress(self) -> Iterator[Callable[[str], None]]:
        """A line sink for a build's output: every line with -v, silence with --json, else a spinner on the step."""
        if self.verbosity or self.json_mode:
            yield self.debug
            return
        with self.err.status("starting the build") as status:

            def show(line: str) -> None:
                if line.startswith("Step "):
                    status.update(line.strip())

            yield show

    def data(self, payload: Any) -> None:
        if self.json_mode:
            sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")
            sys.stdout.flush()

    def error(self, error: DokiError) -> None:
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
