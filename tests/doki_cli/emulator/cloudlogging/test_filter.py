"""The Logging query language subset: what each filter selects, and how a bad filter is refused."""

from __future__ import annotations

from typing import Any

import pytest

from doki_cli.emulator.cloudlogging.filter import parse, parse_timestamp
from doki_cli.emulator.errors import ApiError

# Three entries in their JSON form, as the store keeps them.
API_WARNING: dict[str, Any] = {
    "insertId": "a1",
    "logName": "projects/p/logs/run.googleapis.com%2Fstdout",
    "resource": {"type": "cloud_run_revision", "labels": {"service_name": "api", "revision_name": "api-00001"}},
    "severity": "WARNING",
    "timestamp": "2024-05-01T12:00:00.500Z",
    "jsonPayload": {
        "message": "Disk almost FULL",
        "http": {"status": 503.0, "path": "/v1/x"},
        "tags": ["a", "b"],
        "ok": False,
        "gone": None,
    },
    "labels": {"instanceId": "i-1", "k8s-pod/app": "web"},
    "trace": "projects/p/traces/abc",
}
BUILD_INFO: dict[str, Any] = {
    "insertId": "b2",
    "logName": "projects/p/logs/cloudbuild",
    "resource": {"type": "build", "labels": {"build_id": "1234"}},
    "severity": "INFO",
    "timestamp": "2024-05-01T12:00:01Z",
    "textPayload": "Step #1: docker build robot",
}
WEB_DEFAULT: dict[str, Any] = {  # severity DEFAULT is left out of the JSON form, as protojson leaves it out
    "insertId": "c3",
    "logName": "projects/p/logs/run.googleapis.com%2Fstderr",
    "resource": {"type": "cloud_run_revision", "labels": {"service_name": "web"}},
    "timestamp": "2024-05-01T11:59:59.999999999Z",
    "textPayload": "listening on 8080",
}
ENTRIES = [API_WARNING, BUILD_INFO, WEB_DEFAULT]


def selected(filter_text: str) -> list[str]:
    log_filter = parse(filter_text)
    return [entry["insertId"] for entry in ENTRIES if log_filter.matches(entry)]


@pytest.mark.parametrize(
    ("filter_text", "expected"),
    [
        ("", ["a1", "b2", "c3"]),
        ("   ", ["a1", "b2", "c3"]),
        # doki's own filters, for a Cloud Run service and for a build
        (
            'resource.type="cloud_run_revision" AND resource.labels.service_name="api" AND severity>=WARNING'
            ' AND timestamp>="2024-05-01T12:00:00Z"',
            ["a1"],
        ),
        ('logName="projects/p/logs/cloudbuild" AND resource.type="build" AND resource.labels.build_id="1234"', ["b2"]),
        # fields and operators
        ('resource.type="cloud_run_revision"', ["a1", "c3"]),
        ("resource.type=build", ["b2"]),
        ('resource.labels.service_name="API"', ["a1"]),
        ('resource.labels.service_name!="api"', ["b2", "c3"]),
        ('logName:"run.googleapis.com"', ["a1", "c3"]),
        ('log_id("run.googleapis.com/stderr")', ["c3"]),
        ('labels.instanceId="i-1"', ["a1"]),
        ('labels."k8s-pod/app"="web"', ["a1"]),
        ('insertId="b2"', ["b2"]),
        ('trace="projects/p/traces/abc"', ["a1"]),
        ("trace:*", ["a1"]),
        ("textPayload:robot", ["b2"]),
        ("textPayload:ROBOT", ["b2"]),
        ('textPayload="listening on 8080"', ["c3"]),
        ('textPayload=~"^Step #\\d+"', ["b2"]),
        ('resource.labels.service_name!~"^a"', ["b2", "c3"]),
        ("jsonPayload.message:full", ["a1"]),
        ("jsonPayload.http.status>=500", ["a1"]),
        ("jsonPayload.http.status=503", ["a1"]),
        ("jsonPayload.http.status<500", []),
        ('jsonPayload.http.path="/v1/x"', ["a1"]),
        ('jsonPayload.tags="b"', ["a1"]),
        ("jsonPayload.ok=false", ["a1"]),
        ("jsonPayload.gone=NULL_VALUE", ["a1"]),
        ("jsonPayload.http:*", ["a1"]),
        ("-jsonPayload:*", ["b2", "c3"]),
        # severity by name (any case) or number; a missing severity is DEFAULT
        ("severity>=INFO", ["a1", "b2"]),
        ("severity<INFO", ["c3"]),
        ("severity=DEFAULT", ["c3"]),
        ("severity=warning", ["a1"]),
        ('severity="INFO"', ["b2"]),
        ("severity>=300", ["a1"]),
        ("severity!=INFO", ["a1", "c3"]),
        # timestamps compare as times, to the nanosecond, whatever the offset
        ('timestamp>"2024-05-01T12:00:00Z"', ["a1", "b2"]),
        ('timestamp<"2024-05-01T14:00:00+02:00"', ["c3"]),
        ('timestamp="2024-05-01T12:00:01.000Z"', ["b2"]),
        ('timestamp>="2024-05-01T11:59:59.999999999Z" AND timestamp<"2024-05-01T12:00:00.5Z"', ["c3"]),
        # snake_case spellings
        ("text_payload:robot", ["b2"]),
        ('log_name="projects/p/logs/cloudbuild"', ["b2"]),
        ("json_payload.http.status=503", ["a1"]),
        ('insert_id="c3"', ["c3"]),
        # boolean logic: NOT binds tightest, then OR, then AND; adjacent terms are ANDed
        ('resource.type="build" OR severity=WARNING', ["a1", "b2"]),
        ('resource.type="cloud_run_revision" AND severity=DEFAULT OR severity=INFO', ["c3"]),
        ('resource.type="cloud_run_revision" severity=WARNING', ["a1"]),
        ('(resource.labels.service_name="web" OR severity=INFO) AND textPayload:"8080"', ["c3"]),
        ('NOT resource.type="build"', ["a1", "c3"]),
        ('-resource.type="build"', ["a1", "c3"]),
        ("-(severity>=INFO)", ["c3"]),
        ("- severity>=INFO", ["c3"]),
        ("NOT textPayload:robot", ["a1", "c3"]),
        ('resource.labels.service_name=("api" OR "web")', ["a1", "c3"]),
        # a bare value searches the payload, text or JSON
        ("robot", ["b2"]),
        ('"disk almost"', ["a1"]),
        ("503", ["a1"]),
        ("listening 8080", ["c3"]),
        ("cloudbuild", []),
    ],
)
def test_a_filter_selects_exactly_the_matching_entries(filter_text: str, expected: list[str]) -> None:
    assert selected(filter_text) == expected


@pytest.mark.parametrize(
    ("filter_text", "message"),
    [
        (
            "severity>=",
            "Unparseable filter: syntax error at line 1, column 11, token '<end of filter>': "
            "expected a value after severity >=",
        ),
        (
            '(resource.type="build"',
            "Unparseable filter: syntax error at line 1, column 23, token '<end of filter>': expected ')'",
        ),
        (
            'resource.type="build")',
            "Unparseable filter: syntax error at line 1, column 22, token ')': unbalanced parentheses",
        ),
        (
            'textPayload="abc',
            "Unparseable filter: syntax error at line 1, column 13, token '\"': the quoted string is never closed",
        ),
        ("severity ! ERROR", "Unparseable filter: syntax error at line 1, column 10, token '!'"),
        (
            'resource.type="build"\n  AND AND severity=INFO',
            "Unparseable filter: syntax error at line 2, column 7, token 'AND': expected a term",
        ),
        (
            '"textPayload"="x"',
            "Unparseable filter: syntax error at line 1, column 14, token '=': a field name cannot be quoted",
        ),
        (
            "labels..x=1",
            "Unparseable filter: syntax error at line 1, column 1, token 'labels..x': a field name has an empty part",
        ),
        (
            "httpRequest.status=500",
            'Unsupported filter field "httpRequest.status": the doki emulator filters on logName, resource.type, '
            "resource.labels.KEY, labels.KEY, severity, timestamp, receiveTimestamp, textPayload, "
            "jsonPayload.PATH, insertId, trace, spanId only",
        ),
        (
            "sample(insertId, 0.1)",
            "Unsupported filter function sample(): the doki emulator supports log_id() only",
        ),
        (
            "severity>=LOUD",
            'Invalid severity "LOUD" in filter: use one of DEFAULT, DEBUG, INFO, NOTICE, WARNING, ERROR, CRITICAL, '
            "ALERT, EMERGENCY, or a number",
        ),
        (
            'timestamp>="yesterday"',
            'Invalid timestamp "yesterday" in filter: use RFC 3339, e.g. "2024-05-01T12:00:00Z"',
        ),
        (
            'timestamp>="2024-02-30T00:00:00Z"',
            'Invalid timestamp "2024-02-30T00:00:00Z" in filter: use RFC 3339, e.g. "2024-05-01T12:00:00Z"',
        ),
        ('timestamp:"2024"', "Unsupported filter: timestamp takes =, !=, <, <=, > or >=, not ':'"),
        (
            'textPayload=~"("',
            'Invalid regular expression "(" in filter: missing ), unterminated subpattern at position 0',
        ),
        ("x" * 20_001, "Filter is 20001 characters long; the maximum is 20000 characters"),
    ],
)
def test_a_bad_filter_is_an_invalid_argument_naming_the_problem(filter_text: str, message: str) -> None:
    with pytest.raises(ApiError) as raised:
        parse(filter_text)
    assert (raised.value.code.name, raised.value.message) == ("INVALID_ARGUMENT", message)


@pytest.mark.parametrize(
    ("text", "nanos"),
    [
        ("1970-01-01T00:00:00Z", 0),
        ("1970-01-01T00:00:01.5Z", 1_500_000_000),
        ("1970-01-01T01:00:00+01:00", 0),
        ("1970-01-01T00:00:00.123456789123Z", 123_456_789),
        ("1970-01-01t00:00:00z", 0),
        ("1970-01-01", None),
        ("1970-13-01T00:00:00Z", None),
    ],
)
def test_rfc3339_times_parse_to_nanoseconds(text: str, nanos: int | None) -> None:
    assert parse_timestamp(text) == nanos
