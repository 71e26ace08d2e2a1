"""Uptime checks on the emulator: made and refused as Cloud Monitoring makes and refuses them, then run for real from
each checker location against a loopback server, their results read back with ListTimeSeries."""

from __future__ import annotations

import re
from typing import Any

import pytest
from google.api_core import exceptions
from google.cloud import monitoring_v3

from doki_cli.emulator.projects import project_number
from doki_cli.emulator.server import Emulator
from doki_cli.gcp.clients import MonitoringClients
from tests.doki_cli.emulator.monitoring.conftest import Site

PARENT = "projects/p"
LOCATIONS = ["usa-oregon", "usa-iowa", "usa-virginia", "eur-belgium", "sa-brazil-sao_paulo", "apac-singapore"]


def url_check(site: Site, **fields: Any) -> monitoring_v3.UptimeCheckConfig:
    config: dict[str, Any] = {
        "display_name": "Site health",
        "monitored_resource": {"type": "uptime_url", "labels": {"host": "127.0.0.1", "project_id": "p"}},
        "http_check": {"port": site.port, "path": "health"},
        "timeout": {"seconds": 5},
        "content_matchers": [
            {
                "content": "Doki Backend up",
                "matcher": "MATCHES_JSON_PATH",
                "json_path_matcher": {"json_path": "$.message", "json_matcher": "EXACT_MATCH"},
            }
        ],
    }
    config.update(fields)
    return monitoring_v3.UptimeCheckConfig(config)


def passed(monitoring: MonitoringClients, check: monitoring_v3.UptimeCheckConfig, now: float) -> dict[str, list[bool]]:
    check_id = check.name.rsplit("/", 1)[-1]
    series = monitoring.metrics.list_time_series(
        request={
            "name": PARENT,
            "filter": 'metric.type="monitoring.googleapis.com/uptime_check/check_passed" AND '
            f'metric.label.check_id="{check_id}"',
            "interval": {"start_time": {"seconds": int(now) - 3600}, "end_time": {"seconds": int(now) + 1}},
        }
    )
    return {s.metric.labels["checker_location"]: [p.value.bool_value for p in s.points] for s in series}


def test_a_check_is_made_with_googles_defaults_and_an_id_shaped_as_googles(
    monitoring: MonitoringClients, site: Site
) -> None:
    made = monitoring.uptime.create_uptime_check_config(parent=PARENT, uptime_check_config=url_check(site))
    assert re.fullmatch(r"projects/p/uptimeCheckConfigs/site-health-[A-Za-z0-9_-]{11}", made.name)
    assert made.period.total_seconds() == 60
    assert made.checker_type == monitoring_v3.UptimeCheckConfig.CheckerType.STATIC_IP_CHECKERS
    assert (made.http_check.path, made.http_check.request_method.name) == ("/health", "GET")
    assert monitoring.uptime.get_uptime_check_config(name=made.name) == made
    ips = list(monitoring.uptime.list_uptime_check_ips(request={}))
    assert [ip.location for ip in ips] == LOCATIONS


def test_a_check_runs_from_every_location_and_records_each_result(
    watched: Emulator, monitoring: MonitoringClients, site: Site, later: Any
) -> None:
    check = monitoring.uptime.create_uptime_check_config(parent=PARENT, uptime_check_config=url_check(site))
    first = watched.monitoring.run_now("p")["checks"]
    assert [(r["checker_location"], r["passed"], r["http_status"]) for r in first] == [
        (location, True, 200) for location in LOCATIONS
    ]
    assert [r["path"] for r in site.requests] == ["/health"] * 6
    assert site.requests[0]["user-agent"].startswith("GoogleStackdriverMonitoring-UptimeChecks")

    site.body = b'{"message": "down for maintenance"}'
    later.skipped += 60
    second = watched.monitoring.run_now("p")["checks"]
    assert {(r["passed"], r["why"]) for r in second} == {(False, "content did not match")}
    site.status = 500
    later.skipped += 60
    third = watched.monitoring.run_now("p")["checks"]
    assert {(r["passed"], r["http_status"], r["why"]) for r in third} == {(False, 500, "status 500")}
    # Newest first, as ListTimeSeries answers.
    assert passed(monitoring, check, later()) == {location: [False, False, True] for location in LOCATIONS}


def test_selected_regions_run_from_their_locations_only_and_need_three(
    watched: Emulator, monitoring: MonitoringClients, site: Site
) -> None:
    with pytest.raises(exceptions.InvalidArgument, match="at least 3 locations"):
        monitoring.uptime.create_uptime_check_config(
            parent=PARENT, uptime_check_config=url_check(site, selected_regions=["EUROPE", "ASIA_PACIFIC"])
        )
    monitoring.uptime.create_uptime_check_config(
        parent=PARENT, uptime_check_config=url_check(site, selected_regions=["USA"])
    )
    ran = watched.monitoring.run_now("p")["checks"]
    assert [r["checker_location"] for r in ran] == ["usa-oregon", "usa-iowa", "usa-virginia"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"period": {"seconds": 120}}, "Invalid period 120s: the supported values are 60s, 300s, 600s and 900s."),
        ({"timeout": {"seconds": 61}}, "The timeout must be between 1 and 60 seconds; got 61s."),
        ({"timeout": None}, "The timeout must be between 1 and 60 seconds; got 0s."),
        ({"display_name": ""}, "Field uptime_check_config.display_name is required."),
        (
            {"monitored_resource": {"type": "uptime_url", "labels": {"project_id": "p"}}},
            "Missing required label host for monitored resource type uptime_url.",
        ),
        (
            {"content_matchers": [{"content": "x", "matcher": "MATCHES_JSON_PATH", "json_path_matcher": {}}]},
            "A JSONPath content matcher needs json_path_matcher.json_path.",
        ),
        ({"user_labels": {"Team": "x"}}, "uptime_check_config.user_labels has an invalid label Team=x"),
        (
            {"tcp_check": {"port": 443}},
            "The doki emulator runs HTTP uptime checks only, not TCP ones.",
        ),
    ],
)
def test_a_check_cloud_monitoring_would_refuse_is_refused(
    monitoring: MonitoringClients, site: Site, fields: dict[str, Any], message: str
) -> None:
    config = url_check(site)
    for key, value in fields.items():
        if value is None:
            delattr(config, key)
        else:
            setattr(config, key, value)
    with pytest.raises(exceptions.InvalidArgument) as refused:
        monitoring.uptime.create_uptime_check_config(parent=PARENT, uptime_check_config=config)
    assert message in refused.value.message


def test_a_check_of_a_cloud_run_service_that_does_not_exist_is_refused_as_google_refuses_it(
    monitoring: MonitoringClients,
) -> None:
    config = monitoring_v3.UptimeCheckConfig(
        display_name="api",
        monitored_resource={
            "type": "cloud_run_revision",
            "labels": {"project_id": "p", "service_name": "api", "location": "us-central1"},
        },
        http_check={"use_ssl": True, "port": 443},
        timeout={"seconds": 10},
    )
    with pytest.raises(exceptions.NotFound) as refused:
        monitoring.uptime.create_uptime_check_config(parent=PARENT, uptime_check_config=config)
    assert refused.value.message.startswith('Error confirming monitored resource: type: "cloud_run_revision" labels {')
    assert refused.value.message.endswith(f"is in project: {project_number('p')}")


def test_an_update_replaces_the_check_but_never_its_resource_and_a_mask_names_only_updatable_fields(
    monitoring: MonitoringClients, site: Site
) -> None:
    made = monitoring.uptime.create_uptime_check_config(parent=PARENT, uptime_check_config=url_check(site))
    made.period = {"seconds": 300}
    made.timeout = {"seconds": 20}
    updated = monitoring.uptime.update_uptime_check_config(uptime_check_config=made)
    assert (updated.period.total_seconds(), updated.timeout.total_seconds()) == (300, 20)
    made.monitored_resource = {"type": "uptime_url", "labels": {"host": "example.com", "project_id": "p"}}
    with pytest.raises(exceptions.InvalidArgument, match="monitored resource of an uptime check cannot be changed"):
        monitoring.uptime.update_uptime_check_config(uptime_check_config=made)
    with pytest.raises(exceptions.InvalidArgument, match="The field period of an uptime check cannot be updated"):
        monitoring.uptime.update_uptime_check_config(
            request={"uptime_check_config": updated, "update_mask": {"paths": ["period"]}}
        )
    monitoring.uptime.delete_uptime_check_config(name=made.name)
    with pytest.raises(exceptions.NotFound):
        monitoring.uptime.get_uptime_check_config(name=made.name)


def test_a_project_holds_at_most_a_hundred_checks(watched: Emulator, monitoring: MonitoringClients, site: Site) -> None:
    for _ in range(100):
        monitoring.uptime.create_uptime_check_config(parent=PARENT, uptime_check_config=url_check(site))
    with pytest.raises(exceptions.TooManyRequests) as refused:
        monitoring.uptime.create_uptime_check_config(parent=PARENT, uptime_check_config=url_check(site))
    assert refused.value.message == "Error creating uptime check config: too many configs in project"
    assert len(list(monitoring.uptime.list_uptime_check_configs(parent=PARENT))) == 100
