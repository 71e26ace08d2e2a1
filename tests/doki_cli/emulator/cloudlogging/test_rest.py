"""Cloud Logging over REST, as gcloud and any HTTP client call it: Google's JSON for every kind of payload, one store
and one read quota with gRPC, and the same refusals."""

from __future__ import annotations

from typing import Any

from google.api import monitored_resource_pb2
from google.cloud.audit import audit_log_pb2
from google.cloud.logging_v2.types import ListLogEntriesRequest, LogEntry, WriteLogEntriesRequest
from google.logging.type import http_request_pb2, log_severity_pb2
from google.protobuf import any_pb2, struct_pb2, timestamp_pb2

from doki_cli.emulator.server import Emulator
from tests.doki_cli.emulator.rest_client import call

GLOBAL = monitored_resource_pb2.MonitoredResource(type="global")
MAY_1 = 1_714_564_800  # 2024-05-01T12:00:00Z
LIST = {"resourceNames": ["projects/p"], "orderBy": "timestamp asc"}


def at(seconds: int) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=MAY_1 + seconds)


def audit_entry() -> LogEntry:
    payload = any_pb2.Any()
    payload.Pack(audit_log_pb2.AuditLog(service_name="run.googleapis.com", method_name="ReplaceService"))
    return LogEntry(timestamp=at(3), proto_payload=payload, severity=log_severity_pb2.NOTICE)


def test_entries_list_answers_google_s_json_for_text_json_and_proto_payloads(
    logging_client: Any, emulator: Emulator
) -> None:
    json_payload = struct_pb2.Struct()
    json_payload.update({"message": "hi", "count": 3, "ratio": 0.5})
    request = http_request_pb2.HttpRequest(request_method="GET", status=200, response_size=1234)
    entries = [
        LogEntry(timestamp=at(1), text_payload="plain", severity=log_severity_pb2.WARNING, insert_id="a"),
        LogEntry(timestamp=at(2), json_payload=json_payload, http_request=request, insert_id="b"),
        audit_entry(),
    ]
    logging_client.write_log_entries(
        request=WriteLogEntriesRequest(log_name="projects/p/logs/app", resource=GLOBAL, entries=entries)
    )

    status, body = call(emulator, "POST", "/v2/entries:list", LIST)

    assert status == 200
    text, structured, audit = body["entries"]
    assert (text["textPayload"], text["severity"], text["insertId"]) == ("plain", "WARNING", "a")
    assert (text["logName"], text["resource"], text["timestamp"]) == (
        "projects/p/logs/app",
        {"type": "global"},
        "2024-05-01T12:00:01Z",
    )
    # Whole numbers are written as Google writes them (3, not 3.0); int64 fields are strings, int32 numbers.
    assert structured["jsonPayload"] == {"message": "hi", "count": 3, "ratio": 0.5}
    assert structured["httpRequest"] == {"requestMethod": "GET", "status": 200, "responseSize": "1234"}
    assert audit["protoPayload"] == {
        "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
        "serviceName": "run.googleapis.com",
        "methodName": "ReplaceService",
    }
    assert audit["severity"] == "NOTICE"
    assert "nextPageToken" not in body


def test_pages_over_rest_follow_the_next_page_token(logging_client: Any, emulator: Emulator) -> None:
    entries = [LogEntry(timestamp=at(second), text_payload=str(second)) for second in range(5)]
    logging_client.write_log_entries(
        request=WriteLogEntriesRequest(log_name="projects/p/logs/app", resource=GLOBAL, entries=entries)
    )
    seen: list[str] = []
    token = ""
    while True:
        _, page = call(emulator, "POST", "/v2/entries:list", {**LIST, "pageSize": 2, "pageToken": token})
        seen += [entry["textPayload"] for entry in page["entries"]]
        token = page.get("nextPageToken", "")
        if not token:
            break
    assert seen == ["0", "1", "2", "3", "4"]


def test_entries_written_over_rest_are_read_over_grpc(logging_client: Any, emulator: Emulator) -> None:
    status, body = call(
        emulator,
        "POST",
        "/v2/entries:write",
        {
            "logName": "projects/p/logs/my-log",
            "resource": {"type": "global"},
            "labels": {"source": "rest"},
            "entries": [
                {"textPayload": "hello", "severity": "ERROR", "timestamp": "2024-05-01T12:00:00Z"},
                {"jsonPayload": {"n": 1}, "timestamp": "2024-05-01T12:00:01Z"},
            ],
        },
    )
    assert (status, body) == (200, {})

    read = list(logging_client.list_log_entries(request=ListLogEntriesRequest(resource_names=["projects/p"])))
    assert [(entry.text_payload, entry.severity, dict(entry.labels)) for entry in read] == [
        ("hello", log_severity_pb2.ERROR, {"source": "rest"}),
        ("", log_severity_pb2.DEFAULT, {"source": "rest"}),
    ]
    assert dict(read[1].json_payload) == {"n": 1}


def test_a_bad_request_over_rest_is_refused_with_the_grpc_method_s_invalid_argument(emulator: Emulator) -> None:
    status, body = call(emulator, "POST", "/v2/entries:list", {"resourceNames": ["projects/p"], "orderBy": "severity"})
    assert (status, body) == (
        400,
        {
            "error": {
                "code": 400,
                "message": 'Invalid orderBy "severity": use "timestamp asc" or "timestamp desc"',
                "status": "INVALID_ARGUMENT",
            }
        },
    )
    status, body = call(emulator, "POST", "/v2/entries:write", {"logName": "projects/p/logs/x", "entries": []})
    assert (status, body["error"]["message"]) == (400, "entries is required: send at least one log entry")
    status, body = call(emulator, "POST", "/v2/entries:list", {"resourceNames": "projects/p", "pageSize": "many"})
    assert (status, body["error"]["status"]) == (400, "INVALID_ARGUMENT")
    assert body["error"]["message"].startswith("Invalid JSON payload received.")


def test_logs_are_listed_and_deleted_over_rest(emulator: Emulator) -> None:
    emulator.logs.emit(project="p", log_id="run.googleapis.com/stdout", resource_type="global", labels={}, line="x")
    emulator.logs.emit(project="p", log_id="app", resource_type="global", labels={}, line="y")

    assert call(emulator, "GET", "/v2/projects/p/logs") == (
        200,
        {"logNames": ["projects/p/logs/app", "projects/p/logs/run.googleapis.com%2Fstdout"]},
    )
    assert call(emulator, "GET", "/v2/projects/p/logs?pageSize=1")[1]["logNames"] == ["projects/p/logs/app"]
    assert call(emulator, "DELETE", "/v2/projects/p/logs/run.googleapis.com%2Fstdout") == (200, {})
    assert call(emulator, "GET", "/v2/projects/p/logs") == (200, {"logNames": ["projects/p/logs/app"]})
    assert call(emulator, "DELETE", "/v2/projects/p/logs/run.googleapis.com%2Fstdout")[0] == 404


def test_reads_over_rest_and_grpc_share_the_read_quota(logging_client: Any, emulator: Emulator) -> None:
    emulator.log_reads.set_limit("p", 2)
    list(logging_client.list_log_entries(request=ListLogEntriesRequest(resource_names=["projects/p"])))
    assert call(emulator, "POST", "/v2/entries:list", LIST)[0] == 200

    status, body = call(emulator, "POST", "/v2/entries:list", LIST)

    assert status == 429
    error = body["error"]
    assert (error["code"], error["status"]) == (429, "RESOURCE_EXHAUSTED")
    assert error["message"].startswith("Quota exceeded for quota metric 'Read requests'")
    info, help_link = error["details"]
    assert info["@type"] == "type.googleapis.com/google.rpc.ErrorInfo"
    assert (info["reason"], info["metadata"]["quota_limit"]) == (
        "RATE_LIMIT_EXCEEDED",
        "ReadRequestsPerMinutePerProject",
    )
    assert help_link["@type"] == "type.googleapis.com/google.rpc.Help"


def test_faults_planned_for_a_grpc_method_fail_its_rest_route_too(emulator: Emulator) -> None:
    emulator.faults.fail("ListLogEntries", "UNAVAILABLE", message="try again")
    assert call(emulator, "POST", "/v2/entries:list", LIST) == (
        503,
        {"error": {"code": 503, "message": "try again", "status": "UNAVAILABLE"}},
    )
    assert call(emulator, "POST", "/v2/entries:list", LIST)[0] == 200
    assert emulator.faults.calls["/google.logging.v2.LoggingServiceV2/ListLogEntries"] == 2
