"""`doki logs` against the emulator's Cloud Logging, as a user runs it: recent entries, options, --json, and
--follow as a real process that a container's output reaches live and Ctrl-C ends cleanly."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from google.cloud import run_v2
from google.cloud.logging_v2.types import LogEntry

from doki_cli.commands.logs import parse_severity, parse_since, query_from_options
from doki_cli.emulator.server import Emulator
from doki_cli.errors import DokiError
from doki_cli.gcp.clients import ClientFactory
from doki_cli.interrupts import is_interrupt
from doki_cli.main import app
from tests.helpers import CliRunner
from tests.helpers.logs import BASE_FILTER, NOW, TOML, Follower, labels, wait_for_tail

runner = CliRunner()
T0 = datetime(2026, 11, 27, 3, 10, 5, 123000, tzinfo=UTC)
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@pytest.fixture(autouse=True)
def project(tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DOKI_EMULATOR", emulator.grpc_address)
    (tmp_path / "doki.toml").write_text(TOML)
    return tmp_path


def emit(emulator: Emulator, line: str, **where: str) -> None:
    """A line the service's container printed, as Cloud Run's logging agent turns it into an entry."""
    emulator.logs.emit(
        project="proj-1",
        log_id="run.googleapis.com/stdout",
        resource_type="cloud_run_revision",
        labels=labels(**where),
        line=line,
    )


def write(clients: ClientFactory, at: datetime, insert_id: str, severity: str = "DEFAULT", **fields: Any) -> None:
    """An entry with a known timestamp and insertId, written through the official client."""
    where = {key: fields.pop(key) for key in ("revision", "service", "location") if key in fields}
    entry = LogEntry(
        log_name="projects/proj-1/logs/run.googleapis.com%2Fstdout",
        resource={"type": "cloud_run_revision", "labels": labels(**where)},
        timestamp=at,
        insert_id=insert_id,
        severity=severity,
        **fields,
    )
    clients.logging().write_log_entries(entries=[entry])


def without_times(stdout: str) -> list[str]:
    """Each line after its timestamp column, once that column is checked to be a timestamp."""
    lines = stdout.splitlines()
    assert all(TIME.fullmatch(line[:24]) and line[24:26] == "  " for line in lines), stdout
    return [line[26:] for line in lines]


def test_logs_prints_the_newest_entries_oldest_first_one_line_each(clients: ClientFactory) -> None:
    write(clients, T0 + timedelta(seconds=2), "c", "ERROR", text_payload="third", revision="api-00002-xyz")
    write(clients, T0, "a", "INFO", text_payload="first")
    write(clients, T0 + timedelta(seconds=1), "b", "WARNING", json_payload={"message": "second", "user": 7})
    result = runner.invoke(app, ["logs"])
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "2026-11-27T03:10:05.123Z  INFO     api-00001-abc  first\n"
        "2026-11-27T03:10:06.123Z  WARNING  api-00001-abc  second\n"
        "2026-11-27T03:10:07.123Z  ERROR    api-00002-xyz  third\n"
    )
    assert result.stderr == ""


def test_limit_keeps_only_the_newest_entries(clients: ClientFactory) -> None:
    for second in range(5):
        write(clients, T0 + timedelta(seconds=second), f"id-{second}", text_payload=f"line {second}")
    result = runner.invoke(app, ["logs", "--limit", "2"])
    assert result.stdout == (
        "2026-11-27T03:10:08.123Z  DEFAULT  api-00001-abc  line 3\n"
        "2026-11-27T03:10:09.123Z  DEFAULT  api-00001-abc  line 4\n"
    )


def test_a_container_lines_message_comes_from_its_json_then_its_text_with_the_trace_appended(
    emulator: Emulator,
) -> None:
    emit(
        emulator,
        '{"severity": "ERROR", "message": "boom", "logging.googleapis.com/trace": "projects/proj-1/traces/abc"}',
    )
    emit(emulator, '{"level": "info", "msg": "from msg"}')
    emit(emulator, '{"event": "signup", "count": 2}')
    emit(emulator, "plain text")
    result = runner.invoke(app, ["logs"])
    assert without_times(result.stdout) == [
        "ERROR    api-00001-abc  boom  trace=abc",
        "INFO     api-00001-abc  from msg",
        'DEFAULT  api-00001-abc  {"count":2,"event":"signup"}',
        "DEFAULT  api-00001-abc  plain text",
    ]


def test_only_the_services_entries_in_its_region_are_shown(emulator: Emulator) -> None:
    emit(emulator, "ours")
    emit(emulator, "another service", service="web")
    emit(emulator, "another region", location="europe-west1")
    assert without_times(runner.invoke(app, ["logs"]).stdout) == ["DEFAULT  api-00001-abc  ours"]
    other = runner.invoke(app, ["--region", "europe-west1", "logs"])
    assert without_times(other.stdout) == ["DEFAULT  api-00001-abc  another region"]


def test_severity_keeps_entries_at_that_level_or_above(emulator: Emulator) -> None:
    for severity in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        emit(emulator, json.dumps({"severity": severity, "message": severity.lower()}))
    result = runner.invoke(app, ["logs", "--severity", "warning"])
    assert without_times(result.stdout) == [
        "WARNING  api-00001-abc  warning",
        "ERROR    api-00001-abc  error",
        "CRITICAL  api-00001-abc  critical",
    ]


@pytest.mark.parametrize(
    "revision", ["api-00002-xyz", "projects/proj-1/locations/us-central1/services/api/revisions/api-00002-xyz"]
)
def test_revision_keeps_that_revisions_entries_by_short_or_full_name(emulator: Emulator, revision: str) -> None:
    emit(emulator, "from the first", revision="api-00001-abc")
    emit(emulator, "from the second", revision="api-00002-xyz")
    result = runner.invoke(app, ["logs", "--revision", revision])
    assert without_times(result.stdout) == ["DEFAULT  api-00002-xyz  from the second"]


def test_since_leaves_out_older_entries(clients: ClientFactory) -> None:
    now = datetime.now(UTC)
    write(clients, now - timedelta(hours=2), "old", text_payload="two hours ago")
    write(clients, now - timedelta(minutes=50), "recent", text_payload="fifty minutes ago")
    result = runner.invoke(app, ["logs", "--since", "1h"])
    assert without_times(result.stdout) == ["DEFAULT  api-00001-abc  fifty minutes ago"]
    assert without_times(runner.invoke(app, ["logs", "--since", "1d"]).stdout) == [
        "DEFAULT  api-00001-abc  two hours ago",
        "DEFAULT  api-00001-abc  fifty minutes ago",
    ]


def test_json_prints_one_array_of_entries(clients: ClientFactory) -> None:
    write(
        clients,
        T0,
        "a",
        "WARNING",
        json_payload={"message": "slow", "ms": 1200},
        trace="projects/proj-1/traces/4bf92f3577b34da6",
    )
    write(clients, T0 + timedelta(microseconds=456), "b", text_payload="plain")
    result = runner.invoke(app, ["--json", "logs"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == [
        {
            "timestamp": "2026-11-27T03:10:05.123Z",
            "severity": "WARNING",
            "revision": "api-00001-abc",
            "message": "slow",
            "payload": {"message": "slow", "ms": 1200},
            "trace": "4bf92f3577b34da6",
            "insert_id": "a",
        },
        {
            "timestamp": "2026-11-27T03:10:05.123456Z",
            "severity": "DEFAULT",
            "revision": "api-00001-abc",
            "message": "plain",
            "payload": "plain",
            "trace": None,
            "insert_id": "b",
        },
    ]


def test_no_entries_prints_nothing_and_says_so_on_stderr(emulator: Emulator) -> None:
    spec = run_v2.Service(template=run_v2.RevisionTemplate(containers=[run_v2.Container(image="example.com/api:v1")]))
    ClientFactory(emulator.grpc_address).run_services().create_service(
        parent="projects/proj-1/locations/us-central1", service_id="api", service=spec
    )
    result = runner.invoke(app, ["logs"])
    assert result.exit_code == 0
    assert (result.stdout, result.stderr) == ("", "No log entries for api in us-central1 match.\n")
    as_json = runner.invoke(app, ["--json", "logs"])
    assert (as_json.stdout, as_json.stderr) == ("[]\n", "")


def test_no_entries_of_a_service_that_does_not_exist_says_so_and_how_to_check() -> None:
    result = runner.invoke(app, ["--project", "nope-project", "logs"])
    assert result.exit_code == 1
    assert result.stderr == (
        "Error [service_not_found]: projects/nope-project/locations/us-central1/services/api does not exist\n"
        "  Hint: deploy it with `doki deploy` (or check --project/--region/--env)\n"
    )


def test_severities_are_coloured_when_the_terminal_takes_colour(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("NO_COLOR", raising=False)
    for severity in ("DEBUG", "INFO", "WARNING", "ERROR", "ALERT"):
        emit(emulator, json.dumps({"severity": severity, "message": "m"}))
    lines = [line[26:] for line in runner.invoke(app, ["logs"]).stdout.splitlines()]
    assert lines == [
        "\x1b[2mDEBUG\x1b[0m    api-00001-abc  m",
        "INFO     api-00001-abc  m",
        "\x1b[33mWARNING\x1b[0m  api-00001-abc  m",
        "\x1b[31mERROR\x1b[0m    api-00001-abc  m",
        "\x1b[31mALERT\x1b[0m    api-00001-abc  m",
    ]


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (
            ["--since", "10x"],
            "Error [bad_option]: --since 10x is not a duration\n"
            "  Hint: use a whole number and a unit: 30s, 10m, 2h or 1d\n",
        ),
        (
            ["--severity", "loud"],
            "Error [bad_option]: --severity loud is not a severity\n"
            "  Hint: use one of: DEFAULT, DEBUG, INFO, NOTICE, WARNING, ERROR, CRITICAL, ALERT, EMERGENCY\n",
        ),
    ],
)
def test_a_bad_option_is_refused_with_the_values_it_takes(emulator: Emulator, args: list[str], error: str) -> None:
    result = runner.invoke(app, ["logs", *args])
    assert result.exit_code == 1
    assert (result.stdout, result.stderr) == ("", error)
    assert emulator.faults.calls["/google.logging.v2.LoggingServiceV2/ListLogEntries"] == 0


def test_a_transient_failure_is_retried(emulator: Emulator) -> None:
    emit(emulator, "hello")
    emulator.faults.fail("ListLogEntries", "UNAVAILABLE", times=2)
    result = runner.invoke(app, ["logs"])
    assert result.exit_code == 0, result.output
    assert without_times(result.stdout) == ["DEFAULT  api-00001-abc  hello"]
    assert emulator.faults.calls["/google.logging.v2.LoggingServiceV2/ListLogEntries"] == 3


def test_permission_denied_names_the_role_to_grant(emulator: Emulator) -> None:
    emulator.faults.fail("ListLogEntries", "PERMISSION_DENIED", message="caller lacks logging.logEntries.list")
    result = runner.invoke(app, ["logs"])
    assert result.exit_code == 1
    assert result.stderr == (
        "Error [permission_denied]: reading the logs of projects/proj-1: permission denied "
        "(caller lacks logging.logEntries.list)\n"
        "  Hint: grant your account the roles/logging.viewer role on projects/proj-1 or its project, "
        "or run as an identity that has it\n"
    )
    assert emulator.faults.calls["/google.logging.v2.LoggingServiceV2/ListLogEntries"] == 1


# --follow, as a real process


def test_follow_prints_the_recent_entries_then_new_ones_until_ctrl_c(
    emulator: Emulator, follower: Callable[..., Follower]
) -> None:
    emit(emulator, "before the follow")
    proc = follower("logs", "--follow")
    assert [line[26:] for line in proc.lines(1)] == ["DEFAULT  api-00001-abc  before the follow"]
    wait_for_tail(emulator)
    emit(emulator, '{"severity": "WARNING", "message": "live"}')
    emit(emulator, "another service", service="web")
    emit(emulator, "live text", revision="api-00002-xyz")
    assert [line[26:] for line in proc.lines(2)] == [
        "WARNING  api-00001-abc  live",
        "DEFAULT  api-00002-xyz  live text",
    ]
    code, rest, stderr = proc.interrupt()
    assert (code, rest, stderr) == (0, "", "Following the logs of api in us-central1; Ctrl-C stops.\n")
    wait_for_tail(emulator, count=0)  # the emulator's side of the stream closed too


def test_a_burst_of_a_thousand_lines_arrives_complete_and_in_order_as_json_lines(
    emulator: Emulator, follower: Callable[..., Follower]
) -> None:
    proc = follower("--json", "logs", "-f")
    wait_for_tail(emulator)
    for number in range(1000):
        emit(emulator, f"line {number}")
    entries = [json.loads(line) for line in proc.lines(1000)]
    assert [entry["message"] for entry in entries] == [f"line {number}" for number in range(1000)]
    assert len({entry["insert_id"] for entry in entries}) == 1000
    assert set(entries[0]) == {"timestamp", "severity", "revision", "message", "payload", "trace", "insert_id"}
    assert (entries[0]["revision"], entries[0]["payload"]) == ("api-00001-abc", "line 0")
    assert proc.interrupt() == (0, "", "")


def test_an_error_raised_while_ctrl_c_unwinds_still_counts_as_ctrl_c() -> None:
    def release_after_interrupt() -> None:
        try:
            raise KeyboardInterrupt
        finally:
            raise RuntimeError("cannot release un-acquired lock")

    with pytest.raises(RuntimeError) as caught:
        release_after_interrupt()
    assert is_interrupt(caught.value)
    assert is_interrupt(KeyboardInterrupt())
    assert not is_interrupt(RuntimeError("a real failure"))


# The options, read into a query


def test_each_option_adds_its_restriction_and_since_counts_back_from_now() -> None:
    query = query_from_options("api", "us-central1", since="10m", severity="warning", revision="api-00002-abc")
    assert query.filter(NOW) == (
        f'{BASE_FILTER} AND severity>=WARNING AND timestamp>="2026-11-27T03:00:05.123000000Z" '
        'AND resource.labels.revision_name="api-00002-abc"'
    )
    # The live tail has no time bound: everything it sees is new.
    assert query.filter(None) == (
        f'{BASE_FILTER} AND severity>=WARNING AND resource.labels.revision_name="api-00002-abc"'
    )


def test_a_revision_given_by_its_full_resource_name_is_matched_by_its_short_name() -> None:
    full = "projects/proj-1/locations/us-central1/services/api/revisions/api-00002-abc"
    query = query_from_options("api", "us-central1", since=None, severity=None, revision=full)
    assert query.revision == "api-00002-abc"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("30s", timedelta(seconds=30)), ("10m", timedelta(minutes=10)), ("2h", timedelta(hours=2)), ("1d", timedelta(1))],
)
def test_since_reads_seconds_minutes_hours_and_days(text: str, expected: timedelta) -> None:
    assert parse_since(text) == expected


@pytest.mark.parametrize("text", ["10", "10x", "1.5h", "-5m", "0m", "m", "10 minutes"])
def test_since_refuses_anything_else_and_shows_the_format(text: str) -> None:
    with pytest.raises(DokiError) as caught:
        parse_since(text)
    assert (caught.value.code, caught.value.message, caught.value.hint) == (
        "bad_option",
        f"--since {text} is not a duration",
        "use a whole number and a unit: 30s, 10m, 2h or 1d",
    )


def test_severity_names_are_read_in_any_case_and_others_are_refused_with_the_list() -> None:
    assert parse_severity("Warning") == "WARNING"
    with pytest.raises(DokiError) as caught:
        parse_severity("WARN")
    assert caught.value.message == "--severity WARN is not a severity"
    assert caught.value.hint == "use one of: DEFAULT, DEBUG, INFO, NOTICE, WARNING, ERROR, CRITICAL, ALERT, EMERGENCY"
