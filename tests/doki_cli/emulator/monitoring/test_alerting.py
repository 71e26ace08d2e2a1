"""Alert policies and notification channels on the emulator: refused as Cloud Monitoring refuses them, evaluated
against the recorded Cloud Run metrics, incidents opened only after the retest window and closed when the condition
stops holding, each time "emailing" the policy's channels."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from google.api_core import exceptions
from google.cloud import monitoring_v3

from doki_cli.emulator.server import Emulator, EmulatorConfig
from doki_cli.gcp.clients import ClientFactory, MonitoringClients
from tests.doki_cli.emulator.monitoring.conftest import Later, Site

PARENT = "projects/p"
REVISION = "projects/p/locations/us-central1/services/api/revisions/api-00001-abc"
COUNT = (
    'metric.type="run.googleapis.com/request_count" AND resource.type="cloud_run_revision" AND '
    'resource.label.service_name="api"'
)


def aggregation(**fields: Any) -> dict[str, Any]:
    return {
        "alignment_period": {"seconds": 60},
        "per_series_aligner": "ALIGN_RATE",
        "cross_series_reducer": "REDUCE_SUM",
        "group_by_fields": ["resource.label.service_name"],
        **fields,
    }


def ratio_policy(channels: list[str], **threshold: Any) -> monitoring_v3.AlertPolicy:
    return monitoring_v3.AlertPolicy(
        display_name="api 5xx",
        combiner="OR",
        notification_channels=channels,
        conditions=[
            {
                "display_name": "5xx share",
                "condition_threshold": {
                    "filter": COUNT + ' AND metric.label.response_code_class="5xx"',
                    "denominator_filter": COUNT,
                    "aggregations": [aggregation()],
                    "denominator_aggregations": [aggregation()],
                    "comparison": "COMPARISON_GT",
                    "threshold_value": 0.1,
                    "duration": {"seconds": 120},
                    **threshold,
                },
            }
        ],
    )


def email(monitoring: MonitoringClients, address: str = "ops@example.com") -> monitoring_v3.NotificationChannel:
    return monitoring.channels.create_notification_channel(
        name=PARENT,
        notification_channel={"type_": "email", "display_name": address, "labels": {"email_address": address}},
    )


def answers(watched: Emulator, *statuses: int, milliseconds: float = 20.0) -> None:
    for status in statuses:
        watched.monitoring.observe_request(REVISION, status, milliseconds)


def test_an_email_channel_is_made_unverified_and_listed(monitoring: MonitoringClients) -> None:
    channel = email(monitoring)
    assert channel.name.startswith("projects/p/notificationChannels/")
    assert channel.verification_status == monitoring_v3.NotificationChannel.VerificationStatus.UNVERIFIED
    assert channel.enabled is True
    assert [c.name for c in monitoring.channels.list_notification_channels(name=PARENT)] == [channel.name]
    (descriptor,) = monitoring.channels.list_notification_channel_descriptors(name=PARENT)
    assert (descriptor.type_, [label.key for label in descriptor.labels]) == ("email", ["email_address"])
    with pytest.raises(exceptions.InvalidArgument, match="Missing required label email_address"):
        monitoring.channels.create_notification_channel(name=PARENT, notification_channel={"type_": "email"})


def test_a_ratio_alert_opens_after_its_retest_window_and_closes_when_the_ratio_falls(
    watched: Emulator, monitoring: MonitoringClients, later: Later
) -> None:
    channel = email(monitoring)
    policy = monitoring.alerts.create_alert_policy(name=PARENT, alert_policy=ratio_policy([channel.name]))
    assert policy.enabled is True
    assert policy.conditions[0].name.startswith(f"{policy.name}/conditions/")

    answers(watched, 500, 503, 200, 200)  # half the answers of this minute are 5xx
    later.skipped += 60  # the minute is over: its point is readable
    assert watched.monitoring.alerting.evaluate() == []  # violating, not yet for the whole retest window
    later.skipped += 60
    answers(watched, 500, 200)
    later.skipped += 60
    (opened,) = watched.monitoring.alerting.evaluate()
    assert (opened["policy"], opened["state"], opened["observed_value"]) == (policy.name, "open", "0.5 > 0.1")
    answers(watched, *[200] * 20)
    later.skipped += 60
    assert watched.monitoring.alerting.evaluate() == []
    events = watched.monitoring.config.events()
    assert [i["state"] for i in events["incidents"]] == ["open", "closed"]
    assert [(n["labels"], n["subject"]) for n in events["notifications"]] == [
        ({"email_address": "ops@example.com"}, "[ALERT - Open] api 5xx"),
        ({"email_address": "ops@example.com"}, "[ALERT - Closed] api 5xx"),
    ]


def test_a_disabled_policy_opens_nothing(watched: Emulator, monitoring: MonitoringClients, later: Later) -> None:
    policy = ratio_policy([], duration={"seconds": 0})
    policy.enabled = False
    monitoring.alerts.create_alert_policy(name=PARENT, alert_policy=policy)
    answers(watched, 500, 500)
    later.skipped += 60
    assert watched.monitoring.alerting.evaluate() == []
    assert watched.monitoring.config.events()["incidents"] == []


def test_time_series_are_read_raw_aligned_and_reduced_as_list_time_series_reads_them(
    watched: Emulator, monitoring: MonitoringClients, later: Later
) -> None:
    answers(watched, 200, 200, 500, milliseconds=10)
    answers(watched, 200, milliseconds=1000)
    later.skipped += 60
    now = int(later())
    interval = {"start_time": {"seconds": now - 300}, "end_time": {"seconds": now}}
    raw = list(monitoring.metrics.list_time_series(request={"name": PARENT, "filter": COUNT, "interval": interval}))
    assert sorted((s.metric.labels["response_code"], s.points[0].value.int64_value) for s in raw) == [
        ("200", 3),
        ("500", 1),
    ]
    assert raw[0].resource.labels["revision_name"] == "api-00001-abc"
    rate = list(
        monitoring.metrics.list_time_series(
            request={"name": PARENT, "filter": COUNT, "interval": interval, "aggregation": aggregation()}
        )
    )
    assert [(dict(s.resource.labels), round(s.points[0].value.double_value, 4)) for s in rate] == [
        ({"service_name": "api"}, round(4 / 60, 4))
    ]
    p95 = list(
        monitoring.metrics.list_time_series(
            request={
                "name": PARENT,
                "filter": COUNT.replace("request_count", "request_latencies"),
                "interval": interval,
                "aggregation": aggregation(
                    per_series_aligner="ALIGN_DELTA", cross_series_reducer="REDUCE_PERCENTILE_95"
                ),
            }
        )
    )
    assert [round(s.points[0].value.double_value, 1) for s in p95] == [851.5]


@pytest.mark.parametrize(
    ("filter_text", "given", "error", "message"),
    [
        (
            COUNT.replace("request_count", "request_latencies"),
            {"per_series_aligner": "ALIGN_MEAN"},
            exceptions.InvalidArgument,
            'Field aggregation.perSeriesAligner had an invalid value of "ALIGN_MEAN": The aligner cannot be applied '
            "to metrics with kind DELTA and value type DISTRIBUTION.",
        ),
        (
            COUNT,
            {"cross_series_reducer": "REDUCE_NONE"},
            exceptions.InvalidArgument,
            "An aggregation cannot have group-by fields without a reducer.",
        ),
        (
            COUNT,
            {"alignment_period": {"seconds": 90}},
            exceptions.InvalidArgument,
            "alignment period must be in multiples of one minute",
        ),
        (
            'metric.type="custom.googleapis.com/nothing" AND resource.type="global"',
            {},
            exceptions.NotFound,
            'Cannot find metric(s) that match type = "custom.googleapis.com/nothing".',
        ),
        ('resource.type="cloud_run_revision"', {}, exceptions.InvalidArgument, "it must name exactly one metric type"),
    ],
)
def test_a_time_series_request_google_would_refuse_is_refused(
    monitoring: MonitoringClients, later: Later, filter_text: str, given: dict[str, Any], error: type, message: str
) -> None:
    now = int(later())
    with pytest.raises(error) as refused:
        list(
            monitoring.metrics.list_time_series(
                request={
                    "name": PARENT,
                    "filter": filter_text,
                    "interval": {"start_time": {"seconds": now - 300}, "end_time": {"seconds": now}},
                    "aggregation": aggregation(**given),
                }
            )
        )
    assert message in refused.value.message


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        (
            {"filter": 'metric.type="run.googleapis.com/request_count"'},
            exceptions.InvalidArgument,
            'must specify a restriction on "resource.type" in the filter',
        ),
        (
            {"duration": {"seconds": 30}},
            exceptions.InvalidArgument,
            'condition_threshold.duration had an invalid value of "30s": only multiples of 1 minute are supported',
        ),
        ({"comparison": "COMPARISON_GE"}, exceptions.InvalidArgument, "must be COMPARISON_GT or COMPARISON_LT"),
        (
            {"duration": {"seconds": 0}, "evaluation_missing_data": "EVALUATION_MISSING_DATA_NO_OP"},
            exceptions.InvalidArgument,
            "Conditions setting evaluation_missing_data must have a non-zero duration.",
        ),
    ],
)
def test_a_condition_google_would_refuse_is_refused_in_its_words(
    monitoring: MonitoringClients, change: dict[str, Any], error: type, message: str
) -> None:
    with pytest.raises(error) as refused:
        monitoring.alerts.create_alert_policy(name=PARENT, alert_policy=ratio_policy([], **change))
    assert message in refused.value.message


def test_a_policy_must_name_channels_that_exist_and_a_kind_of_condition(monitoring: MonitoringClients) -> None:
    with pytest.raises(exceptions.NotFound, match="Notification channel not found"):
        monitoring.alerts.create_alert_policy(
            name=PARENT, alert_policy=ratio_policy(["projects/p/notificationChannels/123"])
        )
    with pytest.raises(exceptions.InvalidArgument, match=re.escape("Name must begin with 'projects/{project_id}/")):
        monitoring.alerts.create_alert_policy(name=PARENT, alert_policy=ratio_policy(["ops-email"]))
    with pytest.raises(exceptions.InvalidArgument) as refused:
        monitoring.alerts.create_alert_policy(
            name=PARENT, alert_policy={"display_name": "empty", "conditions": [{"display_name": "nothing"}]}
        )
    assert refused.value.message == (
        'Field alert_policy.conditions[0].condition_case had an invalid value of "0": Condition subtype (e.g. '
        '"condition_absent","condition_threshold", etc.) is absent or unknown.'
    )


def test_a_channel_a_policy_names_is_deleted_only_with_force_which_takes_it_off_the_policy(
    monitoring: MonitoringClients,
) -> None:
    channel = email(monitoring)
    policy = monitoring.alerts.create_alert_policy(name=PARENT, alert_policy=ratio_policy([channel.name]))
    with pytest.raises(exceptions.FailedPrecondition):
        monitoring.channels.delete_notification_channel(name=channel.name)
    monitoring.channels.delete_notification_channel(name=channel.name, force=True)
    assert list(monitoring.alerts.get_alert_policy(name=policy.name).notification_channels) == []


def test_a_replace_keeps_the_policy_and_the_conditions_that_carry_their_names(monitoring: MonitoringClients) -> None:
    policy = monitoring.alerts.create_alert_policy(name=PARENT, alert_policy=ratio_policy([]))
    policy.conditions[0].condition_threshold.threshold_value = 0.2
    policy.display_name = "api 5xx (20%)"
    updated = monitoring.alerts.update_alert_policy(alert_policy=policy)
    assert (updated.name, updated.conditions[0].name) == (policy.name, policy.conditions[0].name)
    assert updated.conditions[0].condition_threshold.threshold_value == 0.2
    monitoring.alerts.delete_alert_policy(name=policy.name)
    assert list(monitoring.alerts.list_alert_policies(name=PARENT)) == []


def test_an_uptime_check_a_policy_reads_cannot_be_deleted_until_the_policy_goes(
    monitoring: MonitoringClients, site: Site
) -> None:
    check = monitoring.uptime.create_uptime_check_config(
        parent=PARENT,
        uptime_check_config={
            "display_name": "site",
            "monitored_resource": {"type": "uptime_url", "labels": {"host": "127.0.0.1"}},
            "http_check": {"port": site.port},
            "timeout": {"seconds": 5},
        },
    )
    check_id = check.name.rsplit("/", 1)[-1]
    policy = monitoring.alerts.create_alert_policy(
        name=PARENT,
        alert_policy={
            "display_name": "site down",
            "conditions": [
                {
                    "display_name": "failing",
                    "condition_threshold": {
                        "filter": 'metric.type="monitoring.googleapis.com/uptime_check/check_passed" AND '
                        f'metric.label."check_id"="{check_id}" AND resource.type="uptime_url"',
                        "comparison": "COMPARISON_GT",
                    },
                }
            ],
        },
    )
    with pytest.raises(exceptions.InvalidArgument, match=r"Request contains an invalid argument\."):
        monitoring.uptime.delete_uptime_check_config(name=check.name)
    monitoring.alerts.delete_alert_policy(name=policy.name)
    monitoring.uptime.delete_uptime_check_config(name=check.name)


def test_a_deleted_policys_incident_closes_and_an_open_one_survives_a_restart(tmp_path: Path, later: Later) -> None:
    config = EmulatorConfig(state_dir=tmp_path / "state")
    with Emulator(config, wall_clock=later) as first:
        monitoring = ClientFactory(first.grpc_address).monitoring()
        kept = monitoring.alerts.create_alert_policy(
            name=PARENT, alert_policy=ratio_policy([], duration={"seconds": 0})
        )
        gone = monitoring.alerts.create_alert_policy(
            name=PARENT, alert_policy=ratio_policy([], duration={"seconds": 0})
        )
        answers(first, 500)
        later.skipped += 60
        assert sorted(i["policy"] for i in first.monitoring.alerting.evaluate()) == sorted([kept.name, gone.name])
        monitoring.alerts.delete_alert_policy(name=gone.name)
        assert [i["policy"] for i in first.monitoring.alerting.evaluate()] == [kept.name]
        assert [(i["policy"], i["state"]) for i in first.monitoring.config.events()["incidents"]][-1] == (
            gone.name,
            "closed",
        )
    with Emulator(config, wall_clock=later) as second:
        # Still open after the restart (no data since: nothing changes), and not opened a second time.
        assert [i["policy"] for i in second.monitoring.alerting.evaluate()] == [kept.name]
        assert [i["state"] for i in second.monitoring.config.events()["incidents"] if i["policy"] == kept.name] == [
            "open"
        ]


def test_a_policy_that_asks_for_openings_only_is_not_emailed_when_its_incident_closes(
    watched: Emulator, monitoring: MonitoringClients, later: Later
) -> None:
    channel = email(monitoring)
    policy = ratio_policy([channel.name], duration={"seconds": 0})
    policy.alert_strategy.notification_prompts = ["OPENED"]
    monitoring.alerts.create_alert_policy(name=PARENT, alert_policy=policy)
    answers(watched, 500)
    later.skipped += 60
    watched.monitoring.alerting.evaluate()
    answers(watched, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200)
    later.skipped += 60
    watched.monitoring.alerting.evaluate()
    events = watched.monitoring.config.events()
    assert [i["state"] for i in events["incidents"]] == ["open", "closed"]
    assert [n["subject"] for n in events["notifications"]] == ["[ALERT - Open] api 5xx"]


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        (
            {"conditions": [{"condition_absent": {"filter": COUNT, "duration": {"seconds": 120}}}]},
            "The doki emulator evaluates metric-threshold conditions only, not condition_absent.",
        ),
        (
            {"alert_strategy": {"notification_prompts": ["CLOSED"]}},
            "alert_strategy.notification_prompts must be [OPENED] or [OPENED, CLOSED].",
        ),
        ({"alert_strategy": {"auto_close": {"seconds": 1800}}}, "does not apply alert_strategy.auto_close"),
    ],
)
def test_what_the_emulator_would_not_honour_is_refused_naming_it(
    monitoring: MonitoringClients, policy: dict[str, Any], message: str
) -> None:
    given = ratio_policy([])
    for key, value in policy.items():
        setattr(given, key, value)
    with pytest.raises(exceptions.InvalidArgument) as refused:
        monitoring.alerts.create_alert_policy(name=PARENT, alert_policy=given)
    assert message in refused.value.message


def test_a_channel_is_updated_whole_or_by_mask_and_its_type_stays(monitoring: MonitoringClients) -> None:
    channel = email(monitoring)
    channel.display_name = "on call"
    channel.labels["email_address"] = "oncall@example.com"
    whole = monitoring.channels.update_notification_channel(notification_channel=channel)
    assert (whole.display_name, whole.labels["email_address"], whole.type_) == (
        "on call",
        "oncall@example.com",
        "email",
    )
    whole.display_name = "ignored"
    whole.enabled = False
    masked = monitoring.channels.update_notification_channel(
        request={"notification_channel": whole, "update_mask": {"paths": ["enabled"]}}
    )
    assert (masked.display_name, masked.enabled) == ("on call", False)
    assert len(masked.mutation_records) == 2
