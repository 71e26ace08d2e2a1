"""Cloud Logging through the official LoggingServiceV2Client: write, list, tail, logs, persistence and faults."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from google.api import monitored_resource_pb2
from google.api_core import exceptions
from google.cloud.logging_v2.types import (
    ListLogEntriesRequest,
    LogEntry,
    TailLogEntriesRequest,
    WriteLogEntriesRequest,
)
from google.logging.type import log_severity_pb2
from google.protobuf import duration_pb2, json_format, timestamp_pb2

from doki_cli.emulator.cloudlogging import state
from doki_cli.emulator.cloudlogging.state import LogStore
from doki_cli.emulator.server import Emulator, EmulatorConfig
from doki_cli.gcp.clients import ClientFactory

GLOBAL = monitored_resource_pb2.MonitoredResource(type="global")
MAY_1 = 1_714_564_800  # 2024-05-01T12:00:00Z


def at(seconds: int) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=MAY_1 + seconds)


def write(client: Any, *entries: LogEntry, log_name: str = "projects/p/logs/app", **options: Any) -> None:
    request = WriteLogEntriesRequest(log_name=log_name, resource=GLOBAL, entries=list(entries), **options)
    client.write_log_entries(request=request)


def listed(client: Any, filter_text: str = "", order_by: str = "", projects: tuple[str, ...] = ("projects/p",)) -> Any:
    request = ListLogEntriesRequest(resource_names=list(projects), filter=filter_text, order_by=order_by)
    return list(client.list_log_entries(request=request))


def texts(client: Any, filter_text: str = "", order_by: str = "", projects: tuple[str, ...] = ("projects/p",)) -> Any:
    return [entry.text_payload for entry in listed(client, filter_text, order_by, projects)]


def as_json(entry: LogEntry) -> dict[str, Any]:
    result: dict[str, Any] = json_format.MessageToDict(LogEntry.pb(entry))
    return result


def severity(entry: LogEntry) -> str:
    name: str = log_severity_pb2.LogSeverity.Name(entry.severity)
    return name


def emit(emulator: Emulator, line: str, *, project: str = "p", severity: str | None = None) -> None:
    emulator.logs.emit(
        project=project,
        log_id="run.googleapis.com/stdout",
        resource_type="cloud_run_revision",
        labels={"service_name": "api", "location": "europe-west1"},
        line=line,
        severity=severity,
    )


def tail(
    client: Any, filter_text: str = "", *, window: duration_pb2.Duration | None = None, requests: Any = None
) -> Any:
    """A live tail; its request stream stays open until None is put on `requests` (the tail ends then)."""
    requests = requests or queue.Queue()
    requests.put(
        TailLogEntriesRequest(
            resource_names=["projects/p"], filter=filter_text, buffer_window=window or duration_pb2.Duration(seconds=0)
        )
    )
    # A deadline, so a test that waits for entries that never come fails instead of hanging.
    return client.tail_log_entries(requests=iter(requests.get, None), timeout=30)


def collect(stream: Any, count: int) -> list[LogEntry]:
    received: list[LogEntry] = []
    for response in stream:
        received.extend(response.entries)
        if len(received) >= count:
            break
    return received


def eventually(condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + 10
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


# Writing and listing


def test_written_entries_are_listed_oldest_first_with_the_request_defaults_filled_in(logging_client: Any) -> None:
    client = logging_client
    client.write_log_entries(
        log_name="projects/p/logs/app",
        resource=GLOBAL,
        labels={"env": "dev", "team": "core"},
        entries=[LogEntry(text_payload="one", labels={"env": "prod"}), LogEntry(json_payload={"msg": "two"})],
    )
    first, second = listed(client)
    assert (first.text_payload, as_json(second)["jsonPayload"]) == ("one", {"msg": "two"})
    assert [entry.log_name for entry in (first, second)] == ["projects/p/logs/app"] * 2
    assert [entry.resource.type for entry in (first, second)] == ["global"] * 2
    assert [dict(entry.labels) for entry in (first, second)] == [
        {"env": "prod", "team": "core"},
        {"env": "dev", "team": "core"},
    ]
    assert first.insert_id and second.insert_id and first.insert_id != second.insert_id
    assert LogEntry.pb(first).timestamp.ToNanoseconds() < LogEntry.pb(second).timestamp.ToNanoseconds()
    assert LogEntry.pb(first).HasField("receive_timestamp")


def test_entries_are_listed_in_timestamp_order_either_way(logging_client: Any) -> None:
    write(
        logging_client,
        LogEntry(text_payload="b", timestamp=at(2)),
        LogEntry(text_payload="c", timestamp=at(3)),
        LogEntry(text_payload="a", timestamp=at(1)),
    )
    assert texts(logging_client) == ["a", "b", "c"]
    assert texts(logging_client, order_by="timestamp asc") == ["a", "b", "c"]
    assert texts(logging_client, order_by="timestamp desc") == ["c", "b", "a"]


def test_entries_with_the_same_timestamp_are_ordered_by_insert_id(logging_client: Any) -> None:
    write(
        logging_client,
        LogEntry(text_payload="second", timestamp=at(0), insert_id="b"),
        LogEntry(text_payload="first", timestamp=at(0), insert_id="a"),
    )
    assert texts(logging_client) == ["first", "second"]


def test_an_unknown_order_is_refused(logging_client: Any) -> None:
    with pytest.raises(exceptions.InvalidArgument, match='Invalid orderBy "severity desc": use "timestamp asc" or'):
        texts(logging_client, order_by="severity desc")


def test_pages_follow_the_next_page_token_without_repeats_or_gaps(logging_client: Any) -> None:
    write(logging_client, *(LogEntry(text_payload=str(n), timestamp=at(n)) for n in range(7)))
    for order, expected in (("timestamp asc", list("0123456")), ("timestamp desc", list("6543210"))):
        request = ListLogEntriesRequest(resource_names=["projects/p"], order_by=order, page_size=3)
        pages = list(logging_client.list_log_entries(request=request).pages)
        assert [len(page.entries) for page in pages] == [3, 3, 1]
        assert [entry.text_payload for page in pages for entry in page.entries] == expected


def test_a_page_holds_50_entries_unless_asked_otherwise(logging_client: Any) -> None:
    write(logging_client, *(LogEntry(text_payload=str(n)) for n in range(51)))
    request = ListLogEntriesRequest(resource_names=["projects/p"])
    first = next(iter(logging_client.list_log_entries(request=request).pages))
    assert (len(first.entries), bool(first.next_page_token)) == (50, True)


def write_large_entries(client: Any, count: int) -> None:
    """`count` entries of 200 kB, numbered at their start, in requests under gRPC's 4 MB limit."""
    for first in range(0, count, 10):
        write(client, *(LogEntry(text_payload=f"{n:02d}" + "x" * 200_000) for n in range(first, first + 10)))


def test_a_page_of_large_entries_stops_before_it_outgrows_one_response(logging_client: Any) -> None:
    write_large_entries(logging_client, 20)
    request = ListLogEntriesRequest(resource_names=["projects/p"], page_size=1000)
    pages = list(logging_client.list_log_entries(request=request).pages)
    assert [len(page.entries) for page in pages] == [15, 5]
    assert [entry.text_payload[:2] for page in pages for entry in page.entries] == [f"{n:02d}" for n in range(20)]


def test_large_entries_reach_a_tail_in_responses_that_each_fit(logging_client: Any) -> None:
    stream = tail(logging_client, window=duration_pb2.Duration(seconds=1))
    write_large_entries(logging_client, 20)
    sizes: list[int] = []
    for response in stream:
        sizes.append(len(response.entries))
        if sum(sizes) == 20:
            break
    assert sizes == [0, 15, 5]
    stream.cancel()


@pytest.mark.parametrize(
    ("request_fields", "message"),
    [
        ({"page_size": 1001}, "pageSize must be between 0 and 1000, not 1001"),
        ({"page_size": -1}, "pageSize must be between 0 and 1000, not -1"),
        ({"page_token": "not-a-token"}, 'Invalid page token "not-a-token": pass nextPageToken from the previous'),
        ({"resource_names": []}, "resourceNames is required: name at least one parent, e.g. projects/my-project"),
        (
            {"resource_names": ["p"]},
            'Invalid resource name "p": the doki emulator holds projects/[PROJECT_ID] and its log views',
        ),
    ],
)
def test_a_bad_list_request_is_an_invalid_argument(
    logging_client: Any, request_fields: dict[str, Any], message: str
) -> None:
    request = ListLogEntriesRequest(**{"resource_names": ["projects/p"], **request_fields})
    with pytest.raises(exceptions.InvalidArgument) as raised:
        list(logging_client.list_log_entries(request=request))
    assert raised.value.message.startswith(message)


def test_resource_names_keep_projects_apart(logging_client: Any) -> None:
    write(logging_client, LogEntry(text_payload="in p"), log_name="projects/p/logs/app")
    write(logging_client, LogEntry(text_payload="in q"), log_name="projects/q/logs/app")
    assert texts(logging_client, projects=("projects/p",)) == ["in p"]
    assert texts(logging_client, projects=("projects/q/locations/global/buckets/_Default/views/_AllLogs",)) == ["in q"]
    assert texts(logging_client, projects=("projects/p", "projects/q")) == ["in p", "in q"]
    assert texts(logging_client, projects=("projects/r",)) == []


def test_doki_s_filters_select_a_service_s_and_a_build_s_entries(emulator: Emulator, logging_client: Any) -> None:
    emit(emulator, '{"severity": "INFO", "message": "ready"}')
    emit(emulator, '{"severity": "WARNING", "message": "slow"}')
    emulator.logs.emit(
        project="p", log_id="cloudbuild", resource_type="build", labels={"build_id": "b-1"}, line="Step #0: ok"
    )
    emulator.logs.emit(
        project="p", log_id="cloudbuild", resource_type="build", labels={"build_id": "b-2"}, line="Step #0: other"
    )
    service = (
        'resource.type="cloud_run_revision" AND resource.labels.service_name="api" AND severity>=WARNING'
        ' AND timestamp>="2024-05-01T00:00:00Z"'
    )
    assert [as_json(entry)["jsonPayload"]["message"] for entry in listed(logging_client, service)] == ["slow"]
    build = 'logName="projects/p/logs/cloudbuild" AND resource.type="build" AND resource.labels.build_id="b-1"'
    assert texts(logging_client, build) == ["Step #0: ok"]


def test_a_bad_filter_is_an_invalid_argument_naming_the_problem(logging_client: Any) -> None:
    with pytest.raises(exceptions.InvalidArgument) as raised:
        texts(logging_client, "httpRequest.status>=500")
    assert raised.value.message.startswith('Unsupported filter field "httpRequest.status"')


@pytest.mark.parametrize(
    ("log_name", "message"),
    [
        ("projects/p/logs/has%20space", 'Log name contains illegal character " "'),
        ("projects/p/logs/has space", 'Log name contains illegal character " "'),
        (
            "p/logs/app",
            'Invalid log name "p/logs/app": expected "projects/[PROJECT_ID]/logs/[LOG_ID]" with [LOG_ID] URL-encoded',
        ),
        ("projects/p/logs/" + "a" * 512, "Log name is too long: [LOG_ID] must be less than 512 characters, not 512"),
        ("", "logName is required: set it on the request or on every entry"),
    ],
)
def test_a_bad_log_name_is_refused_and_nothing_is_written(logging_client: Any, log_name: str, message: str) -> None:
    with pytest.raises(exceptions.InvalidArgument) as raised:
        write(logging_client, LogEntry(text_payload="x"), log_name=log_name)
    assert raised.value.message == message
    assert texts(logging_client) == []


def test_a_log_id_of_511_characters_is_accepted(logging_client: Any) -> None:
    write(logging_client, LogEntry(text_payload="x"), log_name="projects/p/logs/" + "a" * 511)
    assert texts(logging_client) == ["x"]


def test_a_log_id_is_stored_url_encoded(logging_client: Any) -> None:
    write(logging_client, LogEntry(text_payload="x"), log_name="/projects/p/logs/run.googleapis.com/requests")
    write(logging_client, LogEntry(text_payload="y"), log_name="projects/p/logs/run.googleapis.com%2Frequests")
    assert [entry.log_name for entry in listed(logging_client)] == ["projects/p/logs/run.googleapis.com%2Frequests"] * 2


def test_an_entry_without_a_monitored_resource_is_refused(logging_client: Any) -> None:
    request = WriteLogEntriesRequest(log_name="projects/p/logs/app", entries=[LogEntry(text_payload="x")])
    with pytest.raises(exceptions.InvalidArgument, match="resource is required: set it on the request or on every"):
        logging_client.write_log_entries(request=request)


def test_an_oversized_entry_is_refused(logging_client: Any) -> None:
    entry = LogEntry(log_name="projects/p/logs/app", resource=GLOBAL, text_payload="x" * 300_000)
    size = LogEntry.pb(entry).ByteSize()
    with pytest.raises(exceptions.InvalidArgument) as raised:
        write(logging_client, entry)
    assert raised.value.message == f"Log entry with size {size / 1024:.1f}K exceeds maximum size of 256.0K"


def test_without_partial_success_one_bad_entry_fails_the_whole_write(logging_client: Any) -> None:
    with pytest.raises(exceptions.InvalidArgument, match="Log name contains illegal character"):
        write(
            logging_client, LogEntry(text_payload="good"), LogEntry(text_payload="bad", log_name="projects/p/logs/a b")
        )
    assert texts(logging_client) == []


def test_with_partial_success_the_valid_entries_are_written(logging_client: Any) -> None:
    with pytest.raises(exceptions.InvalidArgument) as raised:
        write(
            logging_client,
            LogEntry(text_payload="good"),
            LogEntry(text_payload="bad", log_name="projects/p/logs/a b"),
            LogEntry(text_payload="also good"),
            partial_success=True,
        )
    assert raised.value.message == (
        'Log name contains illegal character " " (partial success: the entries at index 1 were not written)'
    )
    assert texts(logging_client) == ["good", "also good"]


def test_a_dry_run_validates_but_writes_nothing(logging_client: Any) -> None:
    write(logging_client, LogEntry(text_payload="checked"), dry_run=True)
    assert texts(logging_client) == []
    with pytest.raises(exceptions.InvalidArgument):
        write(logging_client, LogEntry(text_payload="bad", log_name="projects/p/logs/a b"), dry_run=True)


def test_an_entry_sent_twice_with_the_same_insert_id_and_timestamp_is_kept_once(logging_client: Any) -> None:
    entry = LogEntry(text_payload="once", insert_id="retry-1", timestamp=at(0))
    write(logging_client, entry)
    write(logging_client, entry)
    write(logging_client, LogEntry(text_payload="again later", insert_id="retry-1", timestamp=at(1)))
    assert texts(logging_client) == ["once", "again later"]


# Program output, as Cloud Run and Cloud Build emit it


def test_a_json_line_becomes_a_json_payload_with_the_agent_s_special_fields(
    emulator: Emulator, logging_client: Any
) -> None:
    emit(
        emulator,
        '{"severity": "error", "message": "boom", "n": 3, "logging.googleapis.com/trace": "projects/p/traces/t1",'
        ' "logging.googleapis.com/spanId": "000000000000004a", "logging.googleapis.com/labels": {"user": "u1"}}\n',
    )
    (entry,) = listed(logging_client)
    assert as_json(entry)["jsonPayload"] == {"message": "boom", "n": 3.0}
    assert (severity(entry), entry.trace, entry.span_id, dict(entry.labels)) == (
        "ERROR",
        "projects/p/traces/t1",
        "000000000000004a",
        {"user": "u1"},
    )
    assert entry.log_name == "projects/p/logs/run.googleapis.com%2Fstdout"
    assert (entry.resource.type, dict(entry.resource.labels)) == (
        "cloud_run_revision",
        {"service_name": "api", "location": "europe-west1"},
    )


@pytest.mark.parametrize(
    ("line", "expected_severity", "payload"),
    [
        ('{"SEVERITY": "Info", "m": 1}', "INFO", {"m": 1.0}),
        ('{"severity": 500}', "ERROR", {}),
        ('{"severity": "fatal"}', "CRITICAL", {}),
        ('{"level": "warn", "msg": "x"}', "WARNING", {"level": "warn", "msg": "x"}),
        ('{"severity": "verbose"}', "NOTICE", {"severity": "verbose"}),
    ],
)
def test_the_severity_of_a_json_line_comes_from_its_severity_or_level_field(
    emulator: Emulator, logging_client: Any, line: str, expected_severity: str, payload: dict[str, Any]
) -> None:
    emit(emulator, line, severity="NOTICE")
    (entry,) = listed(logging_client)
    assert (severity(entry), as_json(entry).get("jsonPayload", {})) == (expected_severity, payload)


def test_a_text_line_becomes_a_text_payload_with_the_given_severity(emulator: Emulator, logging_client: Any) -> None:
    emit(emulator, "Traceback (most recent call last):\r\n", severity="ERROR")
    emit(emulator, "[1, 2]")
    first, second = listed(logging_client)
    assert (first.text_payload, severity(first)) == ("Traceback (most recent call last):", "ERROR")
    assert (second.text_payload, severity(second)) == ("[1, 2]", "DEFAULT")


# Logs


def test_logs_are_listed_by_name_and_a_deleted_log_loses_its_entries(emulator: Emulator, logging_client: Any) -> None:
    emit(emulator, "from the service")
    write(logging_client, LogEntry(text_payload="mine"), log_name="projects/p/logs/app")
    write(logging_client, LogEntry(text_payload="theirs"), log_name="projects/q/logs/other")
    assert list(logging_client.list_logs(parent="projects/p")) == [
        "projects/p/logs/app",
        "projects/p/logs/run.googleapis.com%2Fstdout",
    ]
    logging_client.delete_log(log_name="projects/p/logs/app")
    assert texts(logging_client) == ["from the service"]
    assert list(logging_client.list_logs(parent="projects/p")) == ["projects/p/logs/run.googleapis.com%2Fstdout"]
    with pytest.raises(exceptions.NotFound) as raised:
        logging_client.delete_log(log_name="projects/p/logs/app")
    assert raised.value.message == "Requested entity was not found."


def test_log_names_come_in_pages(logging_client: Any) -> None:
    for name in ("a", "b", "c"):
        write(logging_client, LogEntry(text_payload=name), log_name=f"projects/p/logs/{name}")
    pages = list(logging_client.list_logs(request={"parent": "projects/p", "page_size": 2}).pages)
    assert [list(page.log_names) for page in pages] == [
        ["projects/p/logs/a", "projects/p/logs/b"],
        ["projects/p/logs/c"],
    ]


# Tailing


def test_a_tail_receives_the_matching_entries_written_after_it_started_in_order(
    emulator: Emulator, logging_client: Any
) -> None:
    write(logging_client, LogEntry(text_payload="before"))
    stream = tail(logging_client, 'resource.type="global"')
    write(logging_client, LogEntry(text_payload="first"), LogEntry(text_payload="second"))
    emit(emulator, "not global")
    write(logging_client, LogEntry(text_payload="third"))
    write(logging_client, LogEntry(text_payload="elsewhere"), log_name="projects/q/logs/app")
    write(logging_client, LogEntry(text_payload="fourth"))
    assert [entry.text_payload for entry in collect(stream, 4)] == ["first", "second", "third", "fourth"]
    stream.cancel()


def test_a_tail_holds_entries_for_its_buffer_window_to_release_them_in_timestamp_order(
    logging_client: Any,
) -> None:
    stream = tail(logging_client, window=duration_pb2.Duration(seconds=1))
    write(logging_client, LogEntry(text_payload="late", timestamp=at(1)))
    write(logging_client, LogEntry(text_payload="early", timestamp=at(0)))
    assert [entry.text_payload for entry in collect(stream, 2)] == ["early", "late"]
    stream.cancel()


def test_a_burst_of_2000_lines_reaches_a_tail_complete_and_in_order(emulator: Emulator, logging_client: Any) -> None:
    stream = tail(logging_client)
    for number in range(2000):
        emit(emulator, f"line {number}")
    received = collect(stream, 2000)
    assert [entry.text_payload for entry in received] == [f"line {number}" for number in range(2000)]
    stream.cancel()


def test_a_tail_ends_when_the_client_cancels_it(emulator: Emulator, logging_client: Any) -> None:
    stream = tail(logging_client)
    assert emulator.logs.tail_count == 1
    stream.cancel()
    assert eventually(lambda: emulator.logs.tail_count == 0)
    with pytest.raises(exceptions.Cancelled):
        collect(stream, 1)


def test_a_tail_ends_when_the_client_closes_its_request_stream(emulator: Emulator, logging_client: Any) -> None:
    requests: queue.Queue[TailLogEntriesRequest | None] = queue.Queue()
    stream = tail(logging_client, requests=requests)
    requests.put(None)
    assert [response.entries for response in stream] == [[]]
    assert eventually(lambda: emulator.logs.tail_count == 0)


def test_a_tail_ends_when_the_emulator_stops() -> None:
    emulator = Emulator(EmulatorConfig()).start()
    stream = tail(ClientFactory(emulator.grpc_address).logging())
    emulator.stop()
    assert eventually(lambda: emulator.logs.tail_count == 0)
    with pytest.raises(exceptions.GoogleAPICallError):
        collect(stream, 1)


def test_a_dropped_tail_fails_with_the_status_given_and_the_entries_it_held_are_gone(
    emulator: Emulator, logging_client: Any
) -> None:
    stream = tail(logging_client, window=duration_pb2.Duration(seconds=30))
    write(logging_client, LogEntry(text_payload="held in the buffer window"))
    assert emulator.logs.drop_tails(message="connection reset by peer") == 1
    assert emulator.logs.tail_count == 0
    responses = []
    with pytest.raises(exceptions.ServiceUnavailable, match="connection reset by peer"):
        for response in stream:
            responses.append(response)
    assert [list(response.entries) for response in responses] == [[]]  # only the first, empty response came
    assert emulator.logs.drop_tails() == 0


def test_a_tail_with_a_bad_request_fails_at_once(logging_client: Any) -> None:
    with pytest.raises(exceptions.InvalidArgument, match='Invalid severity "LOUD" in filter'):
        tail(logging_client, "severity>=LOUD")
    with pytest.raises(exceptions.InvalidArgument, match="bufferWindow must be between 0 and 60000 milliseconds"):
        tail(logging_client, window=duration_pb2.Duration(seconds=61))


def test_a_tail_that_is_not_read_drops_entries_beyond_its_queue_and_counts_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(state, "TAIL_QUEUE_LIMIT", 3)
    store = LogStore(persist=lambda: None)
    with store.tail(resource_names=["projects/p"], buffer_window=0) as live:
        for number in range(5):
            store.emit(project="p", log_id="app", resource_type="global", labels={}, line=str(number))
        batch = next(live.batches(lambda: True))
    assert ([entry.text_payload for entry in batch.entries], batch.suppressed) == (["0", "1", "2"], 2)
    assert store.tail_count == 0


# Persistence and bounds


def test_entries_survive_an_emulator_restart(tmp_path: Path) -> None:
    config = EmulatorConfig(state_dir=tmp_path / "state")
    with Emulator(config) as first:
        client = ClientFactory(first.grpc_address).logging()
        write(client, LogEntry(text_payload="written", labels={"k": "v"}))
        emit(first, '{"severity": "ERROR", "message": "emitted"}')
        before = [as_json(entry) for entry in listed(client)]
    with Emulator(config) as second:
        client = ClientFactory(second.grpc_address).logging()
        assert [as_json(entry) for entry in listed(client)] == before
        write(client, LogEntry(text_payload="after the restart"))
        entries = listed(client)
    assert [entry.text_payload for entry in entries] == ["written", "", "after the restart"]
    assert len({entry.insert_id for entry in entries}) == 3


def test_the_store_keeps_the_newest_entries_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(state, "MAX_ENTRIES", 3)
    store = LogStore(persist=lambda: None)
    for number in range(5):
        store.emit(project="p", log_id="app", resource_type="global", labels={}, line=str(number))
    entries, _ = store.list_entries(resource_names=["projects/p"])
    assert [entry.text_payload for entry in entries] == ["2", "3", "4"]
    assert [doc["textPayload"] for doc in store.snapshot()["entries"]] == ["2", "3", "4"]


def test_a_burst_of_writes_is_saved_once_not_once_per_line() -> None:
    saved: list[int] = []
    store = LogStore(persist=lambda: saved.append(len(store.snapshot()["entries"])))
    for number in range(200):
        store.emit(project="p", log_id="app", resource_type="global", labels={}, line=str(number))
    assert eventually(lambda: saved == [200])


def test_a_save_scheduled_before_the_final_snapshot_writes_nothing() -> None:
    saved: list[int] = []
    store = LogStore(persist=lambda: saved.append(len(store.snapshot()["entries"])))
    store.emit(project="p", log_id="app", resource_type="global", labels={}, line="last words")  # schedules a save
    store.snapshot()  # the emulator's own final save, when it stops
    store._save()  # the scheduled save, firing after the emulator stopped
    assert saved == []


# Faults


def test_an_unavailable_write_is_retried_by_the_client(emulator: Emulator, logging_client: Any) -> None:
    emulator.faults.fail("WriteLogEntries", "UNAVAILABLE", times=2)
    write(logging_client, LogEntry(text_payload="eventually"))
    assert emulator.faults.calls["/google.logging.v2.LoggingServiceV2/WriteLogEntries"] == 3
    assert texts(logging_client) == ["eventually"]


def test_a_permission_denied_write_surfaces_at_once(emulator: Emulator, logging_client: Any) -> None:
    emulator.faults.fail("WriteLogEntries", "PERMISSION_DENIED")
    with pytest.raises(exceptions.PermissionDenied, match="injected PERMISSION_DENIED for WriteLogEntries"):
        write(logging_client, LogEntry(text_payload="refused"))
    assert emulator.faults.calls["/google.logging.v2.LoggingServiceV2/WriteLogEntries"] == 1
    assert texts(logging_client) == []
