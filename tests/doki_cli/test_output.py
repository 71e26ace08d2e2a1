"""Progress lines: indented on a terminal, stamped with the time where stderr is a log, absent under --json."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from rich.console import Console

from doki_cli.errors import Code, DokiError
from doki_cli.output import Output

AT = datetime(2026, 12, 6, 17, 40, 2, tzinfo=UTC)


def test_in_a_log_each_progress_line_starts_with_the_utc_time(capsys: pytest.CaptureFixture[str]) -> None:
    Output(clock=lambda: AT).progress("waiting for revision api-00002-abc: RoutesReady (12 s)")
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", "17:40:02  waiting for revision api-00002-abc: RoutesReady (12 s)\n")


def test_on_a_terminal_progress_is_indented_without_a_time(capsys: pytest.CaptureFixture[str]) -> None:
    out = Output(clock=lambda: AT)
    # The console rich makes for a terminal, without colours so the text compares as it reads.
    out.__dict__["err"] = Console(stderr=True, force_terminal=True, color_system=None, highlight=False)
    out.progress("deploying a new revision")
    assert capsys.readouterr().err == "  deploying a new revision\n"


def test_under_json_progress_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    Output(json_mode=True, clock=lambda: AT).progress("deploying a new revision")
    assert capsys.readouterr() == ("", "")


def test_an_interrupt_error_starts_its_own_line_on_a_terminal_after_the_echoed_ctrl_c(
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = Output(clock=lambda: AT)
    out.__dict__["err"] = Console(stderr=True, force_terminal=True, color_system=None, highlight=False)
    out.error(DokiError(Code.INTERRUPTED, "interrupted while deploying", "run it again"))
    assert capsys.readouterr().err == "\nError [interrupted]: interrupted while deploying\n  Hint: run it again\n"
    Output(clock=lambda: AT).error(DokiError(Code.INTERRUPTED, "interrupted while deploying", "run it again"))
    assert capsys.readouterr().err.startswith("Error [interrupted]")  # a log has no ^C to leave behind
