"""Progress lines: indented on a terminal, stamped with the UTC time where stderr is a log or under --json (whose
stdout holds the data alone); a wait's heartbeat as one spinner line or as lines of their own; a build's steps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from rich.console import Console

from doki_cli.errors import Code, DokiError
from doki_cli.output import Output, stamp

AT = datetime(2026, 12, 6, 17, 40, 2, tzinfo=UTC)


def test_in_a_log_each_progress_line_starts_with_the_utc_time(capsys: pytest.CaptureFixture[str]) -> None:
    Output(clock=lambda: AT).progress("waiting for revision api-00002-abc: RoutesReady (12 s)")
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == (
        "",
        "2026-12-06T17:40:02Z waiting for revision api-00002-abc: RoutesReady (12 s)\n",
    )


def test_on_a_terminal_progress_is_indented_without_a_time(capsys: pytest.CaptureFixture[str]) -> None:
    out = Output(clock=lambda: AT)
    # The console rich makes for a terminal, without colours so the text compares as it reads.
    out.__dict__["err"] = Console(stderr=True, force_terminal=True, color_system=None, highlight=False)
    out.progress("deploying a new revision")
    assert capsys.readouterr().err == "  deploying a new revision\n"


def test_under_json_progress_is_stamped_on_stderr_even_on_a_terminal_and_stdout_stays_empty(
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = Output(json_mode=True, clock=lambda: AT)
    out.__dict__["err"] = Console(stderr=True, force_terminal=True, color_system=None, highlight=False)
    out.progress("deploying a new revision")
    assert capsys.readouterr() == ("", "2026-12-06T17:40:02Z deploying a new revision\n")


def test_a_stamp_is_utc_whatever_the_clocks_zone() -> None:
    assert stamp(datetime(2026, 12, 6, 18, 40, 2, tzinfo=timezone(timedelta(hours=1)))) == "2026-12-06T17:40:02Z"


def test_an_interrupt_error_starts_its_own_line_on_a_terminal_after_the_echoed_ctrl_c(
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = Output(clock=lambda: AT)
    out.__dict__["err"] = Console(stderr=True, force_terminal=True, color_system=None, highlight=False)
    out.error(DokiError(Code.INTERRUPTED, "interrupted while deploying", "run it again"))
    assert capsys.readouterr().err == "\nError [interrupted]: interrupted while deploying\n  Hint: run it again\n"
    Output(clock=lambda: AT).error(DokiError(Code.INTERRUPTED, "interrupted while deploying", "run it again"))
    assert capsys.readouterr().err.startswith("Error [interrupted]")  # a log has no ^C to leave behind


def test_on_a_terminal_a_waits_heartbeats_update_one_spinner_line_rather_than_adding_lines(
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = Output(clock=lambda: AT)
    out.__dict__["err"] = Console(stderr=True, force_terminal=True, color_system=None, highlight=False)
    out.progress("deploying a new revision")
    out.progress("waiting for revision api-00002-abc: RoutesReady (0 s)")
    out.progress("waiting for revision api-00002-abc: RoutesReady (10 s)")
    assert out._status is not None  # the spinner runs while the wait lasts
    out.progress("checking https://api.example/")
    assert out._status is None
    err = capsys.readouterr().err
    assert err.startswith("  deploying a new revision\n")
    assert err.endswith("  checking https://api.example/\n")
    assert "  waiting for" not in err  # never printed as lines of their own


def test_in_a_log_a_waits_heartbeats_are_lines_of_their_own(capsys: pytest.CaptureFixture[str]) -> None:
    out = Output(clock=lambda: AT)
    out.progress("waiting for revision api-00002-abc: RoutesReady (0 s)")
    out.progress("waiting for revision api-00002-abc: RoutesReady (10 s)")
    assert capsys.readouterr().err == (
        "2026-12-06T17:40:02Z waiting for revision api-00002-abc: RoutesReady (0 s)\n"
        "2026-12-06T17:40:02Z waiting for revision api-00002-abc: RoutesReady (10 s)\n"
    )


def test_no_color_turns_the_colours_of_both_streams_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    out = Output()
    assert (out.out.no_color, out.err.no_color) == (True, True)
    monkeypatch.delenv("NO_COLOR")
    assert Output().err.no_color is False


@pytest.mark.parametrize("json_mode", [False, True], ids=["log", "json"])
def test_a_build_in_a_log_or_under_json_says_each_dockerfile_step_on_a_stamped_line(
    capsys: pytest.CaptureFixture[str], json_mode: bool
) -> None:
    with Output(json_mode=json_mode, clock=lambda: AT).build_progress() as on_line:
        for line in ("Step 1/2 : FROM base", " ---> 0123456789ab", "Step 2/2 : COPY . /app", "Successfully built x"):
            on_line(line)
    assert capsys.readouterr() == (
        "",
        "2026-12-06T17:40:02Z building: Step 1/2 : FROM base\n2026-12-06T17:40:02Z building: Step 2/2 : COPY . /app\n",
    )
