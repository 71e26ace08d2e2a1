"""What the commands that wait for Cloud Run share: --timeout and --no-wait read as one `Waits` value, and what an
unwaited change says it left running (docs/cli.md, "Waits, progress and --timeout")."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from doki_cli.errors import Code, DokiError
from doki_cli.output import Output
from doki_cli.waiting import DEFAULT_TIMEOUT, duration_text


@dataclass(frozen=True)
class Waits:
    timeout: float = DEFAULT_TIMEOUT
    wait: bool = True

    @classmethod
    def given(cls, timeout: float | None, no_wait: bool) -> Waits:
        return cls(DEFAULT_TIMEOUT if timeout is None else timeout, not no_wait)

    def data(self) -> dict[str, bool]:
        """What the JSON result adds: `"waited": false` when --no-wait returned before Cloud Run finished; nothing
        when the command waited, as it always did."""
        return {} if self.wait else {"waited": False}


@contextmanager
def bounded(waits: Waits) -> Iterator[None]:
    """Runs the waiting part of a command: a wait that ran out says how long it waited and how to wait longer (the
    adapter that raises it knows neither the option nor the command)."""
    try:
        yield
    except DokiError as err:
        if err.code == Code.WAIT_TIMEOUT:
            err.hint = f"{err.hint}; to wait longer than {duration_text(waits.timeout)}, pass a longer --timeout"
        raise


def not_waited(out: Output, name: str, making: str | None) -> None:
    """Said on stderr after a change --no-wait did not wait for: what goes on, and where to follow it."""
    what = f"revision {making}" if making else "the change"
    out.note(f"Not waited for (--no-wait): Cloud Run goes on making {what} of {name}; `doki status` shows where it is")
