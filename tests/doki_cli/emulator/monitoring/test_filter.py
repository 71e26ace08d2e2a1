"""Monitoring filters: what each selects (OR binding tighter than AND, terms side by side ANDed), and how a filter
the emulator cannot read is refused."""

from __future__ import annotations

import pytest

from doki_cli.emulator.errors import ApiError
from doki_cli.emulator.monitoring.filter import fields_of, parse

PASSED = fields_of(
    "p",
    "monitoring.googleapis.com/uptime_check/check_passed",
    {"check_id": "api-health-abc", "checker_location": "usa-iowa"},
    "cloud_run_revision",
    {"service_name": "api", "location": "us-central1"},
)
COUNT = fields_of(
    "p",
    "run.googleapis.com/request_count",
    {"response_code_class": "5xx", "response_code": "503"},
    "cloud_run_revision",
    {"service_name": "web", "location": "europe-west1"},
)


def selects(text: str) -> list[str]:
    matches = parse(text).matches
    return [name for name, fields in (("passed", PASSED), ("count", COUNT)) if matches(fields)]


@pytest.mark.parametrize(
    ("text", "selected"),
    [
        ('metric.type="run.googleapis.com/request_count"', ["count"]),
        ('resource.type="cloud_run_revision"', ["passed", "count"]),
        ('resource.label.service_name="api" AND resource.type="cloud_run_revision"', ["passed"]),
        # Side by side is AND, as console exports write them, and a label key may be quoted.
        ('resource.type="cloud_run_revision" metric.label."check_id"="api-health-abc"', ["passed"]),
        ('resource.labels.service_name != "api"', ["count"]),
        ('metric.type = starts_with("run.googleapis.com/")', ["count"]),
        ('metric.type = ends_with("/check_passed")', ["passed"]),
        ('metric.type = has_substring("uptime")', ["passed"]),
        ('resource.label.location = one_of("europe-west1", "asia-east1")', ["count"]),
        ('metric.label.response_code = monitoring.regex.full_match("5[0-9]{2}")', ["count"]),
        ('NOT resource.label.service_name = "web"', ["passed"]),
        ('project = "p" AND metric.label.response_code_class = "5xx"', ["count"]),
        # OR binds tighter than AND: this is service "api" AND (class 5xx OR check api-health-abc).
        (
            'resource.label.service_name="api" AND metric.label.response_code_class="5xx" OR '
            'metric.label.check_id="api-health-abc"',
            ["passed"],
        ),
        ('(resource.label.service_name="web" AND metric.label.response_code="503") OR project="q"', ["count"]),
    ],
)
def test_a_filter_selects_the_series_its_terms_name(text: str, selected: list[str]) -> None:
    assert selects(text) == selected


def test_the_metric_types_and_the_resource_restriction_a_filter_names_are_known() -> None:
    parsed = parse('metric.type="a.googleapis.com/x" AND resource.type="gce_instance"')
    assert (parsed.metric_types, parsed.names_resource_type) == (["a.googleapis.com/x"], True)
    assert parse('metric.type=starts_with("a")').metric_types == []


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ('metric.type = "a" AND', "the filter ends too soon"),
        ('(metric.type = "a"', "the filter ends too soon"),
        ('metric.type > "a"', "metric.type must be followed by = or !="),
        ('group.id = "123"', "not group.id"),
        ('metric.type = starts_with("a", "b")', "starts_with takes one argument"),
        ('metric.type = nope("a")', "expected a quoted string or one of"),
    ],
)
def test_a_filter_the_emulator_cannot_read_is_refused_in_googles_words(text: str, why: str) -> None:
    with pytest.raises(ApiError) as refused:
        parse(text)
    assert refused.value.code.name == "INVALID_ARGUMENT"
    assert refused.value.message.startswith(f'Field filter had an invalid value of "{text}": Could not parse filter')
    assert why in refused.value.message
