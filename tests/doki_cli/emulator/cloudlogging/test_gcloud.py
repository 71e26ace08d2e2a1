"""`gcloud logging` against the emulator, gcloud unchanged but for its documented endpoint override: what doki's
services and the Python client write over gRPC, `gcloud logging read` reads back over REST, and the other way.

What `gcloud logging read FILTER --limit N` sends (googlecloudsdk/api_lib/logging/common.py, FetchLogs):
`POST /v2/entries:list?alt=json` with `{"filter": "timestamp>=\"<now - freshness>\" AND FILTER", "orderBy":
"timestamp desc", "pageSize": N, "resourceNames": ["projects/PROJECT"]}`, pageSize 1000 without --limit, following
nextPageToken. The freshness (default 1d) is added only in descending order and to a filter that names no timestamp
(googlecloudsdk/command_lib/logs/read.py, MakeTimestampFilters).
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from google.api import monitored_resource_pb2
from google.cloud.audit import audit_log_pb2
from google.cloud.logging_v2.types import ListLogEntriesRequest, LogEntry, WriteLogEntriesRequest
from google.logging.type import log_severity_pb2
from google.protobuf import any_pb2, struct_pb2, timestamp_pb2

from doki_cli.emulator.server import Emulator
from tests.helpers.gcloud import Gcloud

pytestmark = pytest.mark.gcloud

REVISION = monitored_resource_pb2.MonitoredResource(
    type="cloud_run_revision", labels={"service_name": "api", "location": "europe-west1"}
)
LOG = "projects/p/logs/run.googleapis.com%2Fstdout"


def minutes_ago(minutes: float) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(time.time_ns() - int(minutes * 60e9))
    return stamp


def write(client: Any, *entries: LogEntry) -> None:
    client.write_log_entries(request=WriteLogEntriesRequest(log_name=LOG, resource=REVISION, entries=list(entries)))


def read(gcloud: Gcloud, *args: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = json.loads(gcloud("logging", "read", *args, "--format=json"))
    return entries


def test_gcloud_reads_back_newest_first_what_was_written_over_grpc_with_each_payload(
    gcloud: Gcloud, logging_client: Any, emulator: Emulator
) -> None:
    audit = any_pb2.Any()
    audit.Pack(audit_log_pb2.AuditLog(service_name="run.googleapis.com", method_name="ReplaceService"))
    fields = struct_pb2.Struct()
    fields.update({"message": "request served", "status": 200})
    write(
        logging_client,
        LogEntry(timestamp=minutes_ago(5), text_payload="starting", severity=log_severity_pb2.INFO),
        LogEntry(timestamp=minutes_ago(4), json_payload=fields, severity=log_severity_pb2.WARNING),
        LogEntry(timestamp=minutes_ago(3), proto_payload=audit, severity=log_severity_pb2.NOTICE),
    )
    # A line of a container's output, as Cloud Run's logging agent makes it an entry, written last.
    emulator.logs.emit(
        project="p",
        log_id="run.googleapis.com/stdout",
        resource_type="cloud_run_revision",
        labels={"service_name": "api"},
        line='{"severity": "ERROR", "message": "boom"}',
    )
    emulator.logs.emit(project="p", log_id="other", resource_type="global", labels={}, line="elsewhere")

    entries = read(gcloud, 'resource.type="cloud_run_revision"', "--limit", "5")

    assert [entry["severity"] for entry in entries] == ["ERROR", "NOTICE", "WARNING", "INFO"]
    assert entries[0]["jsonPayload"] == {"message": "boom"}
    assert entries[1]["protoPayload"] == {
        "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
        "methodName": "ReplaceService",
        "serviceName": "run.googleapis.com",
    }
    assert entries[2]["jsonPayload"] == {"message": "request served", "status": 200}
    assert entries[3]["textPayload"] == "starting"
    assert {entry["logName"] for entry in entries} == {LOG}
    assert entries[3]["resource"] == {"type": "cloud_run_revision", "labels": dict(REVISION.labels)}
    assert [entry["timestamp"] for entry in entries] == sorted((entry["timestamp"] for entry in entries), reverse=True)

    assert [entry["textPayload"] for entry in read(gcloud, 'logName="projects/p/logs/other"')] == ["elsewhere"]


def test_limit_and_order_choose_which_entries_gcloud_shows(gcloud: Gcloud, logging_client: Any) -> None:
    write(logging_client, *(LogEntry(timestamp=minutes_ago(10 - n), text_payload=f"line {n}") for n in range(7)))

    newest = read(gcloud, 'resource.type="cloud_run_revision"', "--limit", "3")
    oldest = read(gcloud, 'resource.type="cloud_run_revision"', "--limit", "3", "--order", "asc")

    assert [entry["textPayload"] for entry in newest] == ["line 6", "line 5", "line 4"]
    assert [entry["textPayload"] for entry in oldest] == ["line 0", "line 1", "line 2"]
    assert len(read(gcloud, 'resource.type="cloud_run_revision"')) == 7


def test_freshness_leaves_out_entries_older_than_it(gcloud: Gcloud, logging_client: Any) -> None:
    write(
        logging_client,
        LogEntry(timestamp=minutes_ago(2 * 24 * 60), text_payload="two days ago"),
        LogEntry(timestamp=minutes_ago(3 * 60), text_payload="three hours ago"),
        LogEntry(timestamp=minutes_ago(10), text_payload="ten minutes ago"),
    )

    def texts(*args: str) -> list[str]:
        return [entry["textPayload"] for entry in read(gcloud, 'resource.type="cloud_run_revision"', *args)]

    assert texts("--freshness=1h") == ["ten minutes ago"]
    assert texts() == ["ten minutes ago", "three hours ago"]  # gcloud's default freshness is one day
    assert texts("--freshness=3d") == ["ten minutes ago", "three hours ago", "two days ago"]


def test_gcloud_writes_entries_that_the_python_client_reads_over_grpc(gcloud: Gcloud, logging_client: Any) -> None:
    gcloud("logging", "write", "my-log", "hello from gcloud", "--severity=WARNING")
    gcloud("logging", "write", "my-log", '{"event": "deploy", "revision": 3}', "--payload-type=json")

    request = ListLogEntriesRequest(resource_names=["projects/p"], filter='logName="projects/p/logs/my-log"')
    entries = list(logging_client.list_log_entries(request=request))

    assert [(entry.text_payload, entry.severity) for entry in entries] == [
        ("hello from gcloud", log_severity_pb2.WARNING),
        ("", log_severity_pb2.DEFAULT),
    ]
    assert dict(entries[1].json_payload) == {"event": "deploy", "revision": 3}
    assert {entry.resource.type for entry in entries} == {"global"}  # what gcloud logging write names


def test_gcloud_lists_logs_and_deletes_one_with_its_entries(gcloud: Gcloud, emulator: Emulator) -> None:
    for log_id in ("run.googleapis.com/stdout", "app"):
        emulator.logs.emit(project="p", log_id=log_id, resource_type="global", labels={}, line="x")

    listed = gcloud("logging", "logs", "list", "--format=value(.)").decode().split()
    assert listed == ["projects/p/logs/app", LOG]
    gcloud("logging", "logs", "delete", "run.googleapis.com/stdout")
    assert gcloud("logging", "logs", "list", "--format=value(.)").decode().split() == ["projects/p/logs/app"]
    assert read(gcloud, f'logName="{LOG}"') == []


def test_gcloud_s_reads_spend_the_read_quota_grpc_readers_spend(
    gcloud: Gcloud, logging_client: Any, emulator: Emulator
) -> None:
    emulator.log_reads.set_limit("p", 1)
    list(logging_client.list_log_entries(request=ListLogEntriesRequest(resource_names=["projects/p"])))

    refused = gcloud.fails("logging", "read", 'resource.type="cloud_run_revision"')

    assert (
        "RESOURCE_EXHAUSTED: Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute' "
        "of service 'logging.googleapis.com'" in refused
    )
