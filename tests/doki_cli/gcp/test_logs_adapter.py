"""The Cloud Logging adapter: filters, entries as lines, and a follow that survives a lost stream, against the
emulator's Logging service through the official client."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from google.cloud.logging_v2.types import LogEntry
from google.protobuf.timestamp_pb2 import Timestamp

from doki_cli.emulator.server import Emulator, EmulatorConfig
from doki_cli.errors import DokiError
from doki_cli.gcp import logs as logs_module
from doki_cli.gcp.clients import ClientFactory
from doki_cli.gcp.logs import Follow, LogLine, LogQuery, Logs, log_line
from doki_cli.gcp.retry import Retrier
from tests.helpers import restarted
from tests.helpers.logs import BASE_FILTER, NOW

LABELS = {
    "service_name": "api",
    "revision_name": "api-00002-abc",
    "location": "us-central1",
    "configuration_name": "api",
    "project_id": "proj-1",
}
SECOND = 1_000_000_000  # in nanoseconds
QUERY = LogQuery("api", "us-central1")


def emit(emulator: Emulator, line: str, **labels: str) -> None:
    emulator.logs.emit(
        project="proj-1",
        log_id="run.googleapis.com/stdout",
        resource_type="cloud_run_revision",
        labels={**LABELS, **labels},
        line=line,
    )


def stamped(text: str, nanos: int) -> LogEntry:
    """An entry of the service its writer stamped at `nanos`, maybe before entries already written."""
    timestamp = Timestamp()
    timestamp.FromNanoseconds(nanos)
    return LogEntry(
        log_name="projects/proj-1/logs/run.googleapis.com%2Fstdout",
        resource={"type": "cloud_run_revision", "labels": LABELS},
        timestamp=timestamp,
        text_payload=text,
    )


def write_stamped(clients: ClientFactory, text: str, nanos: int) -> None:
    clients.logging().write_log_entries(entries=[stamped(text, nanos)])


def stamped_in_the_emulator(emulator: Emulator, text: str, nanos: int) -> None:
    """`write_stamped` from inside the emulator, for a fault hook that runs in the thread serving a call."""
    emulator.logs.write(entries=[LogEntry.pb(stamped(text, nanos))])


def fast_retrier(sleeps: list[float] | None = None) -> Retrier:
    """Backoff without waiting, recording each wait; jitter fixed at its top so waits are exact."""
    record = sleeps if sleeps is not None else []
    return Retrier(initial=0.25, maximum=8.0, sleep=record.append, jitter=lambda: 1.0)


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def messages(lines: list[LogLine]) -> list[str]:
    return [line.message for line in lines]


class Collector:
    """Iterates a follow on a thread, as the CLI's main thread would, so the test can act meanwhile."""

    def __init__(self, follow: Follow) -> None:
        self.follow = follow
        self.lines: queue.Queue[LogLine | BaseException] = queue.Queue()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for line in self.follow:
                self.lines.put(line)
        except BaseException as exc:  # handed to the test, which raises it
            self.lines.put(exc)

    def take(self, count: int) -> list[str]:
        taken = []
        for _ in range(count):
            item = self.lines.get(timeout=20)
            if isinstance(item, BaseException):
                raise item
            taken.append(item.message)
        return taken

    def close(self) -> None:
        self.follow.close()
        self.thread.join(timeout=10)
        assert not self.thread.is_alive()


Collect = Callable[[Follow], Collector]


@pytest.fixture
def collect() -> Iterator[Collect]:
    """Collectors for a test's follows, closed after it."""
    made: list[Collector] = []

    def start(follow: Follow) -> Collector:
        made.append(Collector(follow))
        return made[-1]

    yield start
    for collector in made:
        collector.close()


# Filters


def test_the_filter_names_the_service_and_region_only_by_default() -> None:
    assert QUERY.filter(NOW) == BASE_FILTER


def test_quotes_in_a_revision_cannot_end_the_filter_string() -> None:
    query = LogQuery("api", "us-central1", revision='x" OR "y')
    assert query.filter(None).endswith('resource.labels.revision_name="x\\" OR \\"y"')


# Entries as lines


def entry(**fields: Any) -> Any:
    base: dict[str, Any] = {
        "timestamp": NOW,
        "insert_id": "id-1",
        "resource": {"type": "cloud_run_revision", "labels": LABELS},
    }
    return LogEntry(**{**base, **fields})


@pytest.mark.parametrize(
    ("fields", "message", "payload"),
    [
        ({"json_payload": {"message": "saved", "user": 7}}, "saved", {"message": "saved", "user": 7}),
        ({"json_payload": {"msg": "from msg", "level": "info"}}, "from msg", {"level": "info", "msg": "from msg"}),
        ({"json_payload": {"message": {"code": 3}}}, '{"code":3}', {"message": {"code": 3}}),
        ({"json_payload": {"z": 1.5, "a": [1, "b"]}}, '{"a":[1,"b"],"z":1.5}', {"a": [1, "b"], "z": 1.5}),
        ({"text_payload": "plain text"}, "plain text", "plain text"),
        (
            {"http_request": {"request_method": "GET", "status": 503, "request_url": "https://api.run.app/x"}},
            "GET 503 https://api.run.app/x",
            None,
        ),
        ({}, "", None),
    ],
)
def test_the_message_comes_from_the_json_payload_then_the_text_then_the_request(
    fields: dict[str, Any], message: str, payload: Any
) -> None:
    line = log_line(entry(**fields))
    assert (line.message, line.payload) == (message, payload)


def test_a_line_carries_time_severity_revision_trace_and_insert_id() -> None:
    line = log_line(
        entry(severity="WARNING", text_payload="slow", trace="projects/proj-1/traces/4bf92f3577b34da6a3ce929d0e0e4736")
    )
    assert line.as_dict() == {
        "timestamp": "2026-11-27T03:10:05.123Z",
        "severity": "WARNING",
        "revision": "api-00002-abc",
        "message": "slow",
        "payload": "slow",
        "trace": "4bf92f3577b34da6a3ce929d0e0e4736",
        "insert_id": "id-1",
    }
    assert line.time == "2026-11-27T03:10:05.123Z"


def test_a_severity_between_the_named_levels_is_shown_as_its_number() -> None:
    pb = LogEntry.pb(entry(text_payload="x"))
    pb.severity = 250
    assert log_line(pb).severity == "250"


# Listing


def test_recent_gives_the_newest_entries_of_the_service_oldest_first(
    emulator: Emulator, clients: ClientFactory
) -> None:
    for number in range(5):
        emit(emulator, f"line {number}")
    emit(emulator, "another service", service_name="web")
    emit(emulator, "another region", location="europe-west1")
    logs = Logs(clients.logging(), "proj-1", fast_retrier())
    assert messages(logs.recent(QUERY, 3)) == ["line 2", "line 3", "line 4"]


def test_recent_reads_more_than_one_page_when_the_limit_asks_for_it(emulator: Emulator, clients: ClientFactory) -> None:
    for number in range(1205):
        emit(emulator, f"line {number}")
    logs = Logs(clients.logging(), "proj-1", fast_retrier())
    lines = logs.recent(QUERY, 1200)
    assert messages(lines) == [f"line {number}" for number in range(5, 1205)]
    assert emulator.faults.calls["/google.logging.v2.LoggingServiceV2/ListLogEntries"] == 2


def test_a_transient_list_failure_is_retried_with_backoff(emulator: Emulator, clients: ClientFactory) -> None:
    emit(emulator, "hello")
    emulator.faults.fail("ListLogEntries", "UNAVAILABLE", times=2)
    sleeps: list[float] = []
    logs = Logs(clients.logging(), "proj-1", fast_retrier(sleeps))
    assert messages(logs.recent(QUERY, 10)) == ["hello"]
    assert sleeps == [0.25, 0.5]


def test_a_refused_list_is_a_doki_error_naming_the_role(emulator: Emulator, clients: ClientFactory) -> None:
    emulator.faults.fail("ListLogEntries", "PERMISSION_DENIED", message="logging.logEntries.list denied")
    logs = Logs(clients.logging(), "proj-1", fast_retrier())
    with pytest.raises(DokiError) as caught:
        logs.recent(QUERY, 10)
    assert caught.value.code == "permission_denied"
    assert caught.value.message == (
        "reading the logs of projects/proj-1: permission denied (logging.logEntries.list denied)"
    )
    assert caught.value.hint is not None and "roles/logging.viewer" in caught.value.hint


# Following


def test_a_follow_gives_the_recent_entries_then_new_ones_once_each(
    emulator: Emulator, clients: ClientFactory, collect: Collect
) -> None:
    emit(emulator, "old 1")
    emit(emulator, "old 2")
    logs = Logs(clients.logging(), "proj-1", fast_retrier())
    follow = logs.follow(QUERY, 10, buffer_window=0.05)
    collector = collect(follow)
    assert collector.take(2) == ["old 1", "old 2"]
    emit(emulator, "new 1")
    emit(emulator, "new 2", service_name="web")
    emit(emulator, "new 3")
    assert collector.take(2) == ["new 1", "new 3"]
    assert collector.lines.empty()


def test_a_follow_reconnects_after_the_tail_fails_and_fetches_what_it_missed(
    emulator: Emulator, clients: ClientFactory, collect: Collect
) -> None:
    emit(emulator, "old")
    emulator.faults.fail("TailLogEntries", "UNAVAILABLE", times=2, message="connection reset")
    sleeps: list[float] = []
    notices: list[str] = []

    def sleep(seconds: float) -> None:
        if not sleeps:
            emit(emulator, "written while the tail was down")
        sleeps.append(seconds)

    retrier = Retrier(sleep=sleep, jitter=lambda: 1.0)
    follow = Logs(clients.logging(), "proj-1", retrier).follow(QUERY, 10, buffer_window=0.05, on_notice=notices.append)
    collector = collect(follow)
    assert collector.take(2) == ["old", "written while the tail was down"]
    assert sleeps == [0.25, 0.5]
    assert notices == ["Could not open the log stream (connection reset); retrying", "Connected to the log stream"]
    emit(emulator, "live")
    assert collector.take(1) == ["live"]
    assert collector.lines.empty()
    assert emulator.faults.calls["/google.logging.v2.LoggingServiceV2/TailLogEntries"] == 3


@pytest.mark.parametrize("code", ["CANCELLED", "UNKNOWN", "INTERNAL", "DEADLINE_EXCEEDED"])
def test_a_stream_cut_off_for_no_given_reason_is_opened_again(
    emulator: Emulator, clients: ClientFactory, collect: Collect, code: str
) -> None:
    emulator.faults.fail("TailLogEntries", code)
    follow = Logs(clients.logging(), "proj-1", fast_retrier()).follow(QUERY, 10, buffer_window=0.05)
    collector = collect(follow)
    assert wait_until(lambda: emulator.logs.tail_count == 1)
    emit(emulator, "live")
    assert collector.take(1) == ["live"]


def test_a_catch_up_cut_off_as_the_server_goes_is_a_lost_stream_not_the_end(
    emulator: Emulator, clients: ClientFactory, collect: Collect
) -> None:
    # The first listing is call 1; the catch-up after the tail opens is call 2, answered CANCELLED as a server that
    # stops mid-call answers it (grpc's stop): the follow opens the stream again and catches up then.
    listing = "/google.logging.v2.LoggingServiceV2/ListLogEntries"
    emulator.faults.on_call(listing, lambda method: emulator.faults.fail(method, "CANCELLED"), call=2)
    emit(emulator, "old")
    follow = Logs(clients.logging(), "proj-1", fast_retrier()).follow(QUERY, 10, buffer_window=0.05)
    collector = collect(follow)
    assert collector.take(1) == ["old"]
    assert wait_until(lambda: emulator.logs.tail_count == 2)
    emit(emulator, "live")
    assert collector.take(1) == ["live"]
    assert emulator.faults.calls[listing] >= 3


def test_a_follow_that_cannot_tail_at_all_fails_with_the_reason(emulator: Emulator, clients: ClientFactory) -> None:
    emulator.faults.fail("TailLogEntries", "PERMISSION_DENIED", message="logging.logEntries.list denied")
    follow = Logs(clients.logging(), "proj-1", fast_retrier()).follow(QUERY, 10)
    with pytest.raises(DokiError) as caught:
        list(follow)
    assert caught.value.code == "permission_denied"
    assert emulator.logs.tail_count == 0


def test_a_follow_gives_up_when_the_tail_stays_unavailable_past_the_deadline(
    emulator: Emulator, clients: ClientFactory
) -> None:
    emulator.faults.fail("TailLogEntries", "UNAVAILABLE", times=100, message="down")
    clock = [0.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock[0] += seconds

    retrier = Retrier(deadline=10.0, sleep=sleep, clock=lambda: clock[0], jitter=lambda: 1.0)
    with pytest.raises(DokiError) as caught:
        list(Logs(clients.logging(), "proj-1", retrier).follow(QUERY, 10))
    assert caught.value.code == "google_unavailable"
    assert sleeps == [0.25, 0.5, 1.0, 2.0, 4.0]  # the next wait would end past the deadline


def test_a_follow_survives_an_emulator_restart_without_gaps_or_repeats(tmp_path: Path, collect: Collect) -> None:
    first = Emulator(EmulatorConfig(state_dir=tmp_path / "state")).start()
    try:
        emit(first, "before")
        factory = ClientFactory(first.grpc_address)
        retrier = Retrier(initial=0.05, maximum=0.2)
        notices: list[str] = []
        follow = Logs(factory.logging(), "proj-1", retrier).follow(
            QUERY, 10, buffer_window=0.05, on_notice=notices.append
        )
        collector = collect(follow)
        assert collector.take(1) == ["before"]
        emit(first, "live")
        assert collector.take(1) == ["live"]
    finally:
        first.stop()
    with restarted(first) as second:
        emit(second, "after the restart")
        assert collector.take(1) == ["after the restart"]
        emit(second, "live again")
        assert collector.take(1) == ["live again"]
        assert collector.lines.empty()
        # One notice when the stream went, one when it was back, however many attempts it took.
        assert len(notices) == 2
        assert notices[0].startswith("Lost the log stream (")
        assert notices[1] == "Reconnected to the log stream"
        collector.close()


def test_closing_a_follow_ends_it_and_its_tail(emulator: Emulator, clients: ClientFactory, collect: Collect) -> None:
    emit(emulator, "only")
    follow = Logs(clients.logging(), "proj-1", fast_retrier()).follow(QUERY, 10)
    collector = Collector(follow)
    assert collector.take(1) == ["only"]
    assert wait_until(lambda: emulator.logs.tail_count == 1)
    collector.close()
    assert wait_until(lambda: emulator.logs.tail_count == 0)
    assert collector.lines.empty()


# Late entries: stamped before entries already shown, arriving when only a listing can find them


def follow_with_outages(
    clients: ClientFactory,
    outages: list[Callable[[], None]],
    *,
    notices: list[str] | None = None,
    query: LogQuery = QUERY,
    clock: Callable[[], datetime] | None = None,
) -> Follow:
    """A follow that, each time it waits to open its lost stream again, runs the next of `outages` first: what
    happens while its stream is down."""
    pending = list(outages)

    def sleep(_seconds: float) -> None:
        if pending:
            pending.pop(0)()

    retrier = Retrier(sleep=sleep, jitter=lambda: 1.0)
    on_notice = notices.append if notices is not None else None
    logs = Logs(clients.logging(), "proj-1", retrier, **({"clock": clock} if clock else {}))
    return logs.follow(query, 10, buffer_window=0.05, on_notice=on_notice)


def drop_the_stream(emulator: Emulator) -> None:
    assert wait_until(lambda: emulator.logs.tail_count == 1)
    assert emulator.logs.drop_tails(message="connection reset") == 1


def test_an_entry_stamped_before_the_last_shown_one_written_while_the_stream_was_down_is_printed_after_the_reconnect(
    emulator: Emulator, clients: ClientFactory, collect: Collect
) -> None:
    now = time.time_ns()
    write_stamped(clients, "shown", now - SECOND)
    notices: list[str] = []
    follow = follow_with_outages(
        clients, [lambda: write_stamped(clients, "stamped earlier, arrived late", now - 2 * SECOND)], notices=notices
    )
    collector = collect(follow)
    assert collector.take(1) == ["shown"]
    drop_the_stream(emulator)
    assert collector.take(1) == ["stamped earlier, arrived late"]
    emit(emulator, "live")
    assert collector.take(1) == ["live"]
    assert collector.lines.empty()
    assert notices == ["Lost the log stream (connection reset); reconnecting", "Reconnected to the log stream"]


def test_entries_already_shown_are_not_printed_again_when_the_catch_up_reaches_back_over_them(
    emulator: Emulator, clients: ClientFactory, collect: Collect
) -> None:
    now = time.time_ns()
    for number, text in enumerate(["first", "second", "third"]):
        write_stamped(clients, text, now - (3 - number) * SECOND)

    def outage() -> None:
        # Written newest first: late entries still come out in timestamp order among themselves.
        write_stamped(clients, "between second and third", now - 3 * SECOND // 2)
        write_stamped(clients, "between first and second", now - 5 * SECOND // 2)
        emit(emulator, "new")

    follow = follow_with_outages(clients, [outage])
    collector = collect(follow)
    assert collector.take(3) == ["first", "second", "third"]
    drop_the_stream(emulator)
    assert collector.take(3) == ["between first and second", "between second and third", "new"]
    emit(emulator, "live")
    assert collector.take(1) == ["live"]
    assert collector.lines.empty()


def test_an_entry_stamped_before_the_newest_listed_one_arriving_before_the_first_tail_opens_is_printed(
    emulator: Emulator, clients: ClientFactory, collect: Collect
) -> None:
    now = time.time_ns()
    write_stamped(clients, "listed", now - SECOND)
    # After the first listing, before the tail is live: neither the listing nor the tail has it.
    emulator.faults.on_call(
        "TailLogEntries", lambda _method: stamped_in_the_emulator(emulator, "arrived late", now - 2 * SECOND)
    )
    follow = Logs(clients.logging(), "proj-1", fast_retrier()).follow(QUERY, 10, buffer_window=0.05)
    collector = collect(follow)
    assert collector.take(2) == ["listed", "arrived late"]
    emit(emulator, "live")
    assert collector.take(1) == ["live"]
    assert collector.lines.empty()


def test_the_catch_up_brings_back_no_entry_the_limit_left_out(
    emulator: Emulator, clients: ClientFactory, collect: Collect
) -> None:
    now = time.time_ns()
    for number in range(5):
        write_stamped(clients, f"old {number}", now - (5 - number) * SECOND)
    emulator.faults.on_call(
        "TailLogEntries", lambda _method: stamped_in_the_emulator(emulator, "arrived late", now - 3 * SECOND // 2)
    )
    follow = Logs(clients.logging(), "proj-1", fast_retrier()).follow(QUERY, 2, buffer_window=0.05)
    collector = collect(follow)
    assert collector.take(3) == ["old 3", "old 4", "arrived late"]
    emit(emulator, "live")
    assert collector.take(1) == ["live"]
    assert collector.lines.empty()


def test_the_catch_up_reaches_back_no_further_than_the_insert_ids_still_remembered_so_none_prints_twice(
    emulator: Emulator, clients: ClientFactory, collect: Collect, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logs_module, "SEEN_LIMIT", 3)
    now = time.time_ns()
    for number in range(5):
        write_stamped(clients, f"shown {number}", now - (5 - number) * SECOND)
    follow = follow_with_outages(clients, [lambda: write_stamped(clients, "between 2 and 3", now - 5 * SECOND // 2)])
    collector = collect(follow)
    assert collector.take(5) == [f"shown {number}" for number in range(5)]
    # Only shown 2, 3 and 4 are remembered now: a catch-up reaching back a minute would print 0 and 1 again.
    drop_the_stream(emulator)
    assert collector.take(1) == ["between 2 and 3"]
    emit(emulator, "live")
    assert collector.take(1) == ["live"]
    assert collector.lines.empty()


def test_a_late_entry_forgotten_last_does_not_let_the_catch_up_reach_back_over_younger_forgotten_ones(
    emulator: Emulator, clients: ClientFactory, collect: Collect, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logs_module, "SEEN_LIMIT", 3)
    now = time.time_ns()
    for number in range(3):
        write_stamped(clients, f"shown {number}", now - (5 - number) * SECOND)
    follow = follow_with_outages(
        clients,
        [
            lambda: write_stamped(clients, "late, between 0 and 1", now - 9 * SECOND // 2),
            lambda: write_stamped(clients, "late, between 2 and now", now - 5 * SECOND // 2),
        ],
    )
    collector = collect(follow)
    assert collector.take(3) == ["shown 0", "shown 1", "shown 2"]
    drop_the_stream(emulator)
    assert collector.take(1) == ["late, between 0 and 1"]
    emit(emulator, "live 1")
    emit(emulator, "live 2")
    assert collector.take(2) == ["live 1", "live 2"]
    # Remembered now: the late entry (the oldest timestamp, though handed out after shown 1 and 2) and the two live
    # ones. Reaching back to the oldest remembered timestamp would print shown 1 and 2 again.
    drop_the_stream(emulator)
    assert collector.take(1) == ["late, between 2 and now"]
    emit(emulator, "live 3")
    assert collector.take(1) == ["live 3"]
    assert collector.lines.empty()


def test_remembering_a_late_entry_does_not_make_the_follow_forget_shown_ones_listed_after_it(
    emulator: Emulator, clients: ClientFactory, collect: Collect, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logs_module, "SEEN_LIMIT", 3)
    now = time.time_ns()
    for number in range(3):
        write_stamped(clients, f"shown {number}", now - (3 - number) * SECOND)
    follow = follow_with_outages(clients, [lambda: write_stamped(clients, "late, before them all", now - 4 * SECOND)])
    collector = collect(follow)
    assert collector.take(3) == ["shown 0", "shown 1", "shown 2"]
    # The catch-up lists the late entry first, then the three shown ones; remembering it forgets shown 0.
    drop_the_stream(emulator)
    assert collector.take(1) == ["late, before them all"]
    emit(emulator, "live")
    assert collector.take(1) == ["live"]
    assert collector.lines.empty()


def test_an_outage_longer_than_since_loses_nothing_written_during_it(
    emulator: Emulator, clients: ClientFactory, collect: Collect
) -> None:
    # --since bounds what the follow starts with, counted from its start: not what a later catch-up may list.
    start = datetime.now(UTC)
    now = [start]
    write_stamped(clients, "shown", _nanos(start) - SECOND)

    def two_minute_outage() -> None:
        write_stamped(clients, "written during the outage", _nanos(start) + SECOND)
        now[0] = start + timedelta(minutes=2)

    query = LogQuery("api", "us-central1", since=timedelta(seconds=30))
    follow = follow_with_outages(clients, [two_minute_outage], query=query, clock=lambda: now[0])
    collector = collect(follow)
    assert collector.take(1) == ["shown"]
    drop_the_stream(emulator)
    assert collector.take(1) == ["written during the outage"]
    assert collector.lines.empty()


def test_an_entry_stamped_in_the_future_does_not_move_the_catch_up_past_entries_written_now(
    emulator: Emulator, clients: ClientFactory, collect: Collect
) -> None:
    # A writer whose clock runs a day ahead: Cloud Logging takes its entries, and the follow shows them.
    now = time.time_ns()
    write_stamped(clients, "from a clock a day ahead", now + 86_400 * SECOND)
    follow = follow_with_outages(clients, [lambda: write_stamped(clients, "written during the outage", now)])
    collector = collect(follow)
    assert collector.take(1) == ["from a clock a day ahead"]
    drop_the_stream(emulator)
    assert collector.take(1) == ["written during the outage"]
    assert collector.lines.empty()


def _nanos(moment: datetime) -> int:
    return int(moment.timestamp()) * SECOND + moment.microsecond * 1000
