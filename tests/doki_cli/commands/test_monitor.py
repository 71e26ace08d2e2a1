"""`doki monitor`: the uptime check, alerts and email channels of doki.toml's [monitoring], planned and applied on
the emulator's Cloud Monitoring and read back through the official client."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from google.cloud import monitoring_v3
from typer.testing import Result

from doki_cli.emulator.server import Emulator
from doki_cli.gcp.clients import ClientFactory
from doki_cli.main import app
from tests.helpers import CliRunner
from tests.helpers.project import setup_project

runner = CliRunner()
PARENT = "projects/doki-e2e"
MONITORING = '[monitoring]\nemails = ["ops@example.com"]\n'
PLAN = [
    "Monitoring plan for doki-backend (us-central1) in project doki-e2e:",
    "  + email channel ops@example.com",
    "  + uptime check doki-backend health: GET / every 1m from every location, 10s timeout, expects "
    '$.message = "Doki Backend up"',
    "  + alert doki-backend: uptime check failing: / fails from more than 1 location for 1m, notify ops@example.com",
    "  + alert doki-backend: 5xx above 5%: 5xx answers above 5% of requests for 5m, notify ops@example.com",
    "  + alert doki-backend: p95 latency above 2000 ms: p95 latency above 2000 ms for 5m, notify ops@example.com",
    "5 changes.",
]


def doki(*args: str) -> Result:
    return runner.invoke(app, list(args))


def declare(tmp_path: Path, monitoring: str) -> None:
    toml = tmp_path / "doki.toml"
    text = toml.read_text().split("[monitoring]")[0]
    toml.write_text(text + monitoring)


def clients(factory: ClientFactory) -> Any:
    return factory.monitoring()


def test_monitor_plans_the_check_the_alerts_and_the_channel_then_makes_them_once(
    tmp_path: Path, failed_service: ClientFactory
) -> None:
    declare(tmp_path, MONITORING)
    planned = doki("monitor", "--dry-run")
    assert planned.exit_code == 2, planned.output
    assert planned.stdout.splitlines() == PLAN
    monitoring = clients(failed_service)
    assert list(monitoring.uptime.list_uptime_check_configs(parent=PARENT)) == []

    applied = doki("monitor", "--yes")
    assert applied.exit_code == 0, applied.output
    assert applied.stdout.splitlines() == [
        *PLAN,
        "Monitoring of doki-backend is as doki.toml declares it; `doki monitor status` shows what it says.",
    ]
    (check,) = monitoring.uptime.list_uptime_check_configs(parent=PARENT)
    assert check.monitored_resource.type == "cloud_run_revision"
    assert dict(check.monitored_resource.labels) == {
        "project_id": "doki-e2e",
        "service_name": "doki-backend",
        "location": "us-central1",
    }
    assert (check.http_check.path, check.http_check.port, check.http_check.use_ssl) == ("/", 443, True)
    assert check.period.total_seconds() == 60 and check.timeout.total_seconds() == 10
    (matcher,) = check.content_matchers
    assert (matcher.content, matcher.json_path_matcher.json_path) == ("Doki Backend up", "$.message")
    (channel,) = monitoring.channels.list_notification_channels(name=PARENT)
    assert (channel.type_, dict(channel.labels)) == ("email", {"email_address": "ops@example.com"})
    policies = {p.user_labels["doki-alert"]: p for p in monitoring.alerts.list_alert_policies(name=PARENT)}
    assert sorted(policies) == ["5xx", "latency", "uptime"]
    assert all(list(p.notification_channels) == [channel.name] for p in policies.values())
    check_id = check.name.rsplit("/", 1)[-1]
    uptime = policies["uptime"].conditions[0].condition_threshold
    assert f'metric.label.check_id="{check_id}"' in uptime.filter
    assert (uptime.aggregations[0].alignment_period.total_seconds(), uptime.threshold_value) == (1200, 1)
    errors = policies["5xx"].conditions[0].condition_threshold
    assert errors.filter.endswith('metric.label.response_code_class="5xx"')
    assert errors.denominator_filter == errors.filter.removesuffix(' AND metric.label.response_code_class="5xx"')
    assert (errors.threshold_value, errors.duration.total_seconds()) == (0.05, 300)

    again = doki("monitor", "--dry-run")
    assert again.exit_code == 0, again.output
    assert again.stdout.splitlines() == [
        PLAN[0],
        "  = email channel ops@example.com",
        f"  = uptime check doki-backend health ({check_id})",
        "  = alert doki-backend: uptime check failing",
        "  = alert doki-backend: 5xx above 5%",
        "  = alert doki-backend: p95 latency above 2000 ms",
        "No changes.",
    ]
    assert doki("monitor", "--yes").exit_code == 0
    assert len(list(monitoring.alerts.list_alert_policies(name=PARENT))) == 3


def test_a_changed_threshold_updates_its_alert_in_place_and_false_deletes_one(
    tmp_path: Path, failed_service: ClientFactory
) -> None:
    declare(tmp_path, MONITORING)
    assert doki("monitor", "--yes").exit_code == 0
    monitoring = clients(failed_service)
    before = {p.user_labels["doki-alert"]: p.name for p in monitoring.alerts.list_alert_policies(name=PARENT)}
    (check,) = monitoring.uptime.list_uptime_check_configs(parent=PARENT)

    declare(tmp_path, MONITORING + 'max_5xx_ratio = 0.1\nmax_p95_latency_ms = false\nuptime_period = "5m"\n')
    planned = doki("monitor", "--dry-run")
    assert planned.exit_code == 2, planned.output
    assert planned.stdout.splitlines() == [
        PLAN[0],
        "  ~ uptime check doki-backend health",
        "      every: 1m -> 5m",
        "  ~ alert doki-backend: 5xx above 10%",
        "      name: doki-backend: 5xx above 5% -> doki-backend: 5xx above 10%",
        "      when: 5xx answers above 5% of requests -> 5xx answers above 10% of requests",
        "  - alert doki-backend: p95 latency above 2000 ms",
        "  = email channel ops@example.com",
        "  = alert doki-backend: uptime check failing",
        "3 changes.",
    ]
    assert doki("monitor", "--yes").exit_code == 0
    after = {p.user_labels["doki-alert"]: p for p in monitoring.alerts.list_alert_policies(name=PARENT)}
    assert sorted(after) == ["5xx", "uptime"]
    # Updated, not replaced: the same policy (its incidents stay its own), the same check.
    assert after["5xx"].name == before["5xx"]
    assert after["5xx"].conditions[0].condition_threshold.threshold_value == 0.1
    (updated,) = monitoring.uptime.list_uptime_check_configs(parent=PARENT)
    assert (updated.name, updated.period.total_seconds()) == (check.name, 300)


def test_a_policy_changed_by_hand_is_written_back_as_declared(tmp_path: Path, failed_service: ClientFactory) -> None:
    declare(tmp_path, MONITORING)
    assert doki("monitor", "--yes").exit_code == 0
    monitoring = clients(failed_service)
    policy = next(p for p in monitoring.alerts.list_alert_policies(name=PARENT) if p.user_labels["doki-alert"] == "5xx")
    policy.conditions[0].condition_threshold.aggregations[0].alignment_period = {"seconds": 300}
    policy.conditions[0].condition_threshold.denominator_aggregations[0].alignment_period = {"seconds": 300}
    policy.enabled = False
    monitoring.alerts.update_alert_policy(alert_policy=policy)

    planned = doki("monitor", "--dry-run")
    assert planned.stdout.splitlines()[1:4] == [
        "  ~ alert doki-backend: 5xx above 5%",
        "      enabled: no -> yes",
        "      condition: changed by hand; doki.toml's is written back",
    ]
    assert doki("monitor", "--yes").exit_code == 0
    restored = monitoring.alerts.get_alert_policy(name=policy.name)
    assert restored.enabled is True
    assert restored.conditions[0].condition_threshold.aggregations[0].alignment_period.total_seconds() == 60


def test_an_address_that_has_a_channel_gets_no_second_one(tmp_path: Path, failed_service: ClientFactory) -> None:
    monitoring = clients(failed_service)
    made = monitoring.channels.create_notification_channel(
        name=PARENT,
        notification_channel=monitoring_v3.NotificationChannel(
            type_="email", display_name="on call", labels={"email_address": "ops@example.com"}
        ),
    )
    declare(tmp_path, MONITORING)
    planned = doki("monitor", "--dry-run")
    assert "  = email channel ops@example.com" in planned.stdout.splitlines()
    assert "+ email channel" not in planned.stdout
    assert doki("monitor", "--yes").exit_code == 0
    assert [c.name for c in monitoring.channels.list_notification_channels(name=PARENT)] == [made.name]
    assert all(list(p.notification_channels) == [made.name] for p in monitoring.alerts.list_alert_policies(name=PARENT))


def test_removing_the_monitoring_table_deletes_what_doki_made_and_keeps_the_channels(
    tmp_path: Path, failed_service: ClientFactory
) -> None:
    monitoring = clients(failed_service)
    # A policy made by hand in the same project is not doki's: it stays whatever doki does.
    hand_made = monitoring.alerts.create_alert_policy(
        name=PARENT,
        alert_policy=monitoring_v3.AlertPolicy(
            display_name="someone's",
            combiner="OR",
            conditions=[
                {
                    "display_name": "requests",
                    "condition_threshold": {
                        "filter": 'metric.type="run.googleapis.com/request_count" AND '
                        'resource.type="cloud_run_revision"',
                        "comparison": "COMPARISON_GT",
                        "threshold_value": 100,
                    },
                }
            ],
        ),
    )
    declare(tmp_path, MONITORING)
    assert doki("monitor", "--yes").exit_code == 0
    declare(tmp_path, "")

    planned = doki("monitor", "--dry-run")
    assert planned.exit_code == 2
    assert planned.stdout.splitlines() == [
        PLAN[0],
        "  - alert doki-backend: uptime check failing",
        "  - alert doki-backend: 5xx above 5%",
        "  - alert doki-backend: p95 latency above 2000 ms",
        "  - uptime check doki-backend health",
        "  ! doki.toml declares no [monitoring]: what doki made for the service is deleted",
        "4 changes.",
    ]
    assert doki("monitor", "--yes").exit_code == 0
    assert [p.name for p in monitoring.alerts.list_alert_policies(name=PARENT)] == [hand_made.name]
    assert list(monitoring.uptime.list_uptime_check_configs(parent=PARENT)) == []
    assert len(list(monitoring.channels.list_notification_channels(name=PARENT))) == 1

    nothing = doki("--json", "monitor", "--dry-run")
    assert nothing.exit_code == 1
    error = json.loads(nothing.stdout)["error"]
    assert error["code"] == "monitoring_not_declared"
    assert error["hint"] == (
        'add a [monitoring] table with emails = ["you@example.com"] (docs/configuration.md, "Monitoring")'
    )


def test_monitor_of_a_service_not_deployed_is_refused_before_any_write(
    tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup_project(tmp_path, emulator, monkeypatch)
    declare(tmp_path, MONITORING)
    result = doki("--json", "monitor", "--yes")
    assert result.exit_code == 1
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "service_not_found"
    assert error["message"] == (
        "doki-backend is not deployed in us-central1: an uptime check needs the service (Google confirms it exists)"
    )
    monitoring = clients(ClientFactory(emulator.grpc_address))
    assert list(monitoring.channels.list_notification_channels(name=PARENT)) == []


def test_a_change_under_json_without_yes_is_refused_with_the_plan(
    tmp_path: Path, failed_service: ClientFactory
) -> None:
    declare(tmp_path, MONITORING)
    result = doki("--json", "monitor")
    assert result.exit_code == 1
    body = json.loads(result.stdout)
    assert body["error"]["code"] == "confirmation_required"
    assert [(c["action"], c["kind"]) for c in body["plan"]["changes"]] == [
        ("create", "channel"),
        ("create", "check"),
        ("create", "alert"),
        ("create", "alert"),
        ("create", "alert"),
    ]
    assert list(clients(failed_service).uptime.list_uptime_check_configs(parent=PARENT)) == []


def test_status_before_anything_ran_says_so_and_names_no_value(tmp_path: Path, failed_service: ClientFactory) -> None:
    declare(tmp_path, MONITORING)
    assert doki("monitor", "--yes").exit_code == 0
    status = doki("monitor", "status")
    assert status.exit_code == 0, status.output
    assert status.stdout.splitlines() == [
        "Monitoring of doki-backend (us-central1) in project doki-e2e:",
        "  uptime check doki-backend health (GET / every 1m): no results yet",
        "  alert doki-backend: uptime check failing: no data, nothing measured in the last 20m",
        "  alert doki-backend: 5xx above 5%: no data, nothing measured in the last 10m",
        "  alert doki-backend: p95 latency above 2000 ms: no data, nothing measured in the last 10m",
        "  notifies ops@example.com (email, unverified)",
    ]
    other = doki("monitor", "status", "--service", "other-api")
    assert other.stdout.splitlines() == [
        "Monitoring of other-api (us-central1) in project doki-e2e:",
        "  no uptime check or alert: declare them in doki.toml's [monitoring] and run `doki monitor`",
    ]


def test_dry_run_belongs_to_monitor_itself_not_to_status(tmp_path: Path, failed_service: ClientFactory) -> None:
    result = doki("--json", "monitor", "--dry-run", "status")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["error"]["code"] == "bad_option"


def test_a_twin_alert_is_deleted_and_the_one_reading_the_check_kept(
    tmp_path: Path, failed_service: ClientFactory
) -> None:
    declare(tmp_path, MONITORING)
    assert doki("monitor", "--yes").exit_code == 0
    monitoring = clients(failed_service)
    errors = next(p for p in monitoring.alerts.list_alert_policies(name=PARENT) if p.user_labels["doki-alert"] == "5xx")
    # What a second `doki monitor` at the same moment leaves: the same alert, made twice.
    twin = monitoring_v3.AlertPolicy(errors)
    twin.name = ""
    for condition in twin.conditions:
        condition.name = ""
    made = monitoring.alerts.create_alert_policy(name=PARENT, alert_policy=twin)

    planned = doki("monitor", "--dry-run")
    assert planned.exit_code == 2
    assert "  - alert doki-backend: 5xx above 5%\n      a twin: one such alert is kept\n" in planned.stdout
    assert doki("monitor", "--yes").exit_code == 0
    left = [p.name for p in monitoring.alerts.list_alert_policies(name=PARENT) if p.user_labels["doki-alert"] == "5xx"]
    assert left == [min(errors.name, made.name)]  # the first by name, when both read the same check
    assert doki("monitor", "--dry-run").exit_code == 0


def test_a_check_changed_by_hand_is_written_back(tmp_path: Path, failed_service: ClientFactory) -> None:
    declare(tmp_path, MONITORING)
    assert doki("monitor", "--yes").exit_code == 0
    monitoring = clients(failed_service)
    (check,) = monitoring.uptime.list_uptime_check_configs(parent=PARENT)
    check.selected_regions = ["USA"]
    check.content_matchers[
        0
    ].matcher = monitoring_v3.UptimeCheckConfig.ContentMatcher.ContentMatcherOption.CONTAINS_STRING
    monitoring.uptime.update_uptime_check_config(uptime_check_config=check)

    planned = doki("monitor", "--dry-run")
    assert planned.exit_code == 2
    assert planned.stdout.splitlines()[1:3] == [
        "  ~ uptime check doki-backend health",
        "      changed by hand: content_matchers, selected_regions; doki's are written back",
    ]
    assert doki("monitor", "--yes").exit_code == 0
    restored = monitoring.uptime.get_uptime_check_config(name=check.name)
    assert list(restored.selected_regions) == []
    assert restored.content_matchers[0].matcher.name == "MATCHES_JSON_PATH"
    assert doki("monitor", "--dry-run").exit_code == 0


def test_a_check_a_hand_made_policy_reads_stops_the_removal_before_any_write(
    tmp_path: Path, failed_service: ClientFactory
) -> None:
    declare(tmp_path, MONITORING)
    assert doki("monitor", "--yes").exit_code == 0
    monitoring = clients(failed_service)
    (check,) = monitoring.uptime.list_uptime_check_configs(parent=PARENT)
    check_id = check.name.rsplit("/", 1)[-1]
    theirs = monitoring.alerts.create_alert_policy(
        name=PARENT,
        alert_policy={
            "display_name": "pager: api down",
            "conditions": [
                {
                    "display_name": "down",
                    "condition_threshold": {
                        "filter": 'metric.type="monitoring.googleapis.com/uptime_check/check_passed" AND '
                        f'metric.label.check_id="{check_id}" AND resource.type="cloud_run_revision"',
                        "comparison": "COMPARISON_GT",
                    },
                }
            ],
        },
    )
    declare(tmp_path, "")
    result = doki("--json", "monitor", "--yes")
    assert result.exit_code == 1
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "check_in_use"
    assert error["message"] == (
        f"the uptime check doki-backend health ({check_id}) is read by pager: api down ({theirs.name}), which this "
        "run does not delete; Google refuses to delete a check a policy reads"
    )
    assert len(list(monitoring.alerts.list_alert_policies(name=PARENT))) == 4  # nothing was deleted


def test_a_run_that_failed_midway_is_finished_by_the_next(
    tmp_path: Path, failed_service: ClientFactory, emulator: Emulator
) -> None:
    declare(tmp_path, MONITORING)
    emulator.faults.fail("/google.monitoring.v3.AlertPolicyService/CreateAlertPolicy", "PERMISSION_DENIED")
    failed = doki("--json", "monitor", "--yes")
    assert failed.exit_code == 1
    assert json.loads(failed.stdout)["error"]["code"] == "permission_denied"
    again = doki("monitor", "--dry-run")
    assert again.stdout.splitlines()[1:4] == PLAN[3:6]
    assert "  = email channel ops@example.com" in again.stdout
    assert doki("monitor", "--yes").exit_code == 0
    assert doki("monitor", "--dry-run").exit_code == 0


def test_googles_too_many_concurrent_edits_is_tried_again(
    tmp_path: Path, failed_service: ClientFactory, emulator: Emulator
) -> None:
    declare(tmp_path, MONITORING)
    emulator.faults.fail(
        "/google.monitoring.v3.AlertPolicyService/CreateAlertPolicy",
        "ABORTED",
        times=2,
        message="Too many concurrent edits to the project configuration. Please try again.",
    )
    applied = doki("monitor", "--yes")
    assert applied.exit_code == 0, applied.output
    assert len(list(clients(failed_service).alerts.list_alert_policies(name=PARENT))) == 3
