"""Cloud Monitoring, through google-cloud-monitoring: the only module that imports it.

Uptime checks, alert policies and email channels go in and out as doki's own types (doki_cli.monitoring.spec), and
time series come back as the newest reading of each. Every call is retried on transient failures; a create that is
retried first looks whether the try before made it (Monitoring's names are the server's, so a lost answer would
otherwise leave a twin). Google errors become DokiErrors with a hint.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from doki_cli.gcp.errors import call_google
from doki_cli.gcp.retry import Retrier, is_transient, knowing_retries
from doki_cli.monitoring.spec import (
    ALERT_LABEL,
    DOKI,
    LOCATION_LABEL,
    MANAGED_BY,
    SERVICE_LABEL,
    Channel,
    Check,
    CheckSpec,
    Policy,
    PolicySpec,
    Reading,
    Threshold,
)

if TYPE_CHECKING:
    from doki_cli.gcp.clients import MonitoringClients

EDITOR_ROLE = "roles/monitoring.editor"
EMAIL = "email"
EMAIL_LABEL = "email_address"


# Monitoring answers overlapping configuration writes ABORTED "Too many concurrent edits to the project
# configuration. Please try again." (terraform-provider-google retries exactly that: IsMonitoringConcurrentEditError
# in transport/error_retry_predicates.go).
_CONCURRENT_EDITS = "Too many concurrent edits"


def _transient_or_concurrent(exc: BaseException) -> bool:
    from google.api_core import exceptions

    return is_transient(exc) or (isinstance(exc, exceptions.Aborted) and _CONCURRENT_EDITS in str(exc))


def _labels(service: str, location: str, alert: str | None = None) -> dict[str, str]:
    labels = {MANAGED_BY: DOKI, SERVICE_LABEL: service, LOCATION_LABEL: location}
    if alert is not None:
        labels[ALERT_LABEL] = alert
    return labels


def _ours(labels: Any, service: str, location: str) -> bool:
    return bool(
        labels.get(MANAGED_BY) == DOKI
        and labels.get(SERVICE_LABEL) == service
        and labels.get(LOCATION_LABEL) == location
    )


class Monitoring:
    def __init__(self, clients: MonitoringClients, project: str, retrier: Retrier) -> None:
        self._clients = clients
        self.project = project
        self._retrier = retrier

    @property
    def parent(self) -> str:
        return f"projects/{self.project}"

    def _call(self, fn: Any, *, action: str, resource: str) -> Any:
        return call_google(
            self._retrier,
            fn,
            action=action,
            resource=resource,
            api="monitoring",
            role=EDITOR_ROLE,
            retry_if=_transient_or_concurrent,
        )

    # -- uptime checks ------------------------------------------------------------------------------------------

    def checks(self, service: str, location: str) -> list[Check]:
        """doki's uptime checks of `service` in `location`."""
        configs = self._call(
            lambda: list(self._clients.uptime.list_uptime_check_configs(parent=self.parent)),
            action="listing the uptime checks of",
            resource=self.parent,
        )
        return [_check(config) for config in configs if _ours(config.user_labels, service, location)]

    def create_check(self, spec: CheckSpec) -> Check:
        def create(retried: bool) -> Any:
            if retried and (made := self._same_check(spec)) is not None:
                return made
            return self._clients.uptime.create_uptime_check_config(
                parent=self.parent, uptime_check_config=_check_message(spec)
            )

        made = self._call(knowing_retries(create), action="creating an uptime check in", resource=self.parent)
        return made if isinstance(made, Check) else _check(made)

    def _same_check(self, spec: CheckSpec) -> Check | None:
        return next((check for check in self.checks(spec.service, spec.location) if check.spec == spec), None)

    def replace_check(self, name: str, spec: CheckSpec) -> Check:
        """The check `name` made to say `spec`: a whole replace, as gcloud's `uptime update` sends (no mask), so the
        period changes too (a masked update may not change it: UpdateUptimeCheckConfigRequest)."""
        message = _check_message(spec)
        message.name = name
        updated = self._call(
            lambda: self._clients.uptime.update_uptime_check_config(uptime_check_config=message),
            action="updating the uptime check",
            resource=name,
        )
        return _check(updated)

    def delete_check(self, name: str) -> None:
        self._call(
            lambda: self._clients.uptime.delete_uptime_check_config(name=name),
            action="deleting the uptime check",
            resource=name,
        )

    # -- alert policies -----------------------------------------------------------------------------------------

    def policies(self, service: str, location: str) -> list[Policy]:
        """doki's alert policies of `service` in `location`."""
        found = self._call(
            lambda: list(self._clients.alerts.list_alert_policies(name=self.parent)),
            action="listing the alert policies of",
            resource=self.parent,
        )
        return [
            policy
            for message in found
            if _ours(message.user_labels, service, location) and (policy := _policy(message)) is not None
        ]

    def create_policy(self, spec: PolicySpec) -> Policy:
        def create(retried: bool) -> Any:
            if retried and (made := self._same_policy(spec)) is not None:
                return made
            return self._clients.alerts.create_alert_policy(name=self.parent, alert_policy=_policy_message(spec))

        made = self._call(knowing_retries(create), action="creating an alert policy in", resource=self.parent)
        if isinstance(made, Policy):
            return made
        policy = _policy(made)
        assert policy is not None  # what doki wrote reads back as doki's
        return policy

    def _same_policy(self, spec: PolicySpec) -> Policy | None:
        return next((policy for policy in self.policies(spec.service, spec.location) if policy.spec == spec), None)

    def replace_policy(self, live: Policy, spec: PolicySpec) -> Policy:
        """`live` made to say `spec`, keeping its name and its condition's (Google keeps a condition that carries
        its former name: UpdateAlertPolicyRequest), so its incidents stay its own."""
        message = _policy_message(spec)
        message.name = live.name
        if live.condition:
            message.conditions[0].name = live.condition
        updated = self._call(
            lambda: self._clients.alerts.update_alert_policy(alert_policy=message),
            action="updating the alert policy",
            resource=live.name,
        )
        policy = _policy(updated)
        assert policy is not None
        return policy

    def policies_reading(self, check_id: str) -> list[tuple[str, str]]:
        """(name, display name) of every policy of the project, whoever made it, whose conditions read the uptime
        check `check_id` (name it in a filter)."""
        import re

        term = re.compile(r'check_id"?\s*=\s*"' + re.escape(check_id) + '"')
        found = self._call(
            lambda: list(self._clients.alerts.list_alert_policies(name=self.parent)),
            action="listing the alert policies of",
            resource=self.parent,
        )
        return [
            (message.name, message.display_name)
            for message in found
            if any(term.search(c.condition_threshold.filter) for c in message.conditions if "condition_threshold" in c)
        ]

    def delete_policy(self, name: str) -> None:
        self._call(
            lambda: self._clients.alerts.delete_alert_policy(name=name),
            action="deleting the alert policy",
            resource=name,
        )

    # -- notification channels ----------------------------------------------------------------------------------

    def email_channels(self) -> list[Channel]:
        """Every email channel of the project, whoever made it: an address with a channel gets no second one."""
        found = self._call(
            lambda: list(self._clients.channels.list_notification_channels(name=self.parent)),
            action="listing the notification channels of",
            resource=self.parent,
        )
        return [_channel(message) for message in found if message.type_ == EMAIL]

    def create_email_channel(self, email: str) -> Channel:
        from google.cloud.monitoring_v3 import types

        def create(retried: bool) -> Any:
            if retried and (made := next((c for c in self.email_channels() if c.email == email), None)) is not None:
                return made
            channel = types.NotificationChannel(
                type_=EMAIL, display_name=email, labels={EMAIL_LABEL: email}, user_labels={MANAGED_BY: DOKI}
            )
            return self._clients.channels.create_notification_channel(name=self.parent, notification_channel=channel)

        made = self._call(knowing_retries(create), action="creating an email channel in", resource=self.parent)
        return made if isinstance(made, Channel) else _channel(made)

    # -- time series --------------------------------------------------------------------------------------------

    def newest(
        self, threshold: Threshold, *, window_seconds: int, now: float, denominator: bool = False
    ) -> list[Reading]:
        """The newest aligned (and reduced) point of each series `threshold`'s filter (or its denominator's) and
        aggregation make over the last `window_seconds`."""
        from google.cloud.monitoring_v3 import types

        text = threshold.denominator_filter if denominator else threshold.filter
        request = types.ListTimeSeriesRequest(
            name=self.parent,
            filter=text,
            interval=types.TimeInterval(start_time=_stamp(now - window_seconds), end_time=_stamp(now)),
            aggregation=_aggregation(threshold),
        )
        series = self._call(
            lambda: list(self._clients.metrics.list_time_series(request=request)),
            action="reading the time series of",
            resource=self.parent,
        )
        readings = []
        for one in series:
            if not one.points:
                continue
            newest = one.points[0]  # newest first
            labels = {**dict(one.resource.labels), **dict(one.metric.labels)}
            readings.append(Reading(labels, _number(newest.value), newest.interval.end_time.timestamp()))
        return readings


# -- messages and doki's types, both ways -------------------------------------------------------------------------


def _stamp(seconds: float) -> Any:
    from google.protobuf import timestamp_pb2

    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


def _check_message(spec: CheckSpec) -> Any:
    from google.cloud.monitoring_v3 import types

    matcher = types.UptimeCheckConfig.ContentMatcher
    return types.UptimeCheckConfig(
        display_name=spec.display_name,
        # A Cloud Run service's uptime check, as the console and gcloud make one (--resource-type=cloud-run-revision
        # with project_id, service_name and location): Google reaches the service's own URL.
        monitored_resource={
            "type": "cloud_run_revision",
            "labels": {"project_id": spec.project, "service_name": spec.service, "location": spec.location},
        },
        http_check=types.UptimeCheckConfig.HttpCheck(
            request_method=types.UptimeCheckConfig.HttpCheck.RequestMethod.GET,
            path=spec.path,
            port=443,
            use_ssl=True,
            accepted_response_status_codes=[{"status_class": "STATUS_CLASS_2XX"}],
        ),
        period={"seconds": spec.period_seconds},
        timeout={"seconds": spec.timeout_seconds},
        content_matchers=[
            matcher(
                content=spec.expected,
                matcher=matcher.ContentMatcherOption.MATCHES_JSON_PATH,
                json_path_matcher=matcher.JsonPathMatcher(
                    json_path=spec.json_path, json_matcher=matcher.JsonPathMatcher.JsonPathMatcherOption.EXACT_MATCH
                ),
            )
        ],
        user_labels=_labels(spec.service, spec.location),
    )


# What doki writes of a check or policy that its spec does not say, by field path: a live value that differs was
# changed by hand, and the next `doki monitor` writes doki's back.
_CHECK_FIELDS = (
    "monitored_resource.type",
    "http_check.request_method",
    "http_check.use_ssl",
    "http_check.port",
    "http_check.accepted_response_status_codes",
    "http_check.headers",
    "http_check.body",
    "http_check.content_type",
    "http_check.auth_info",
    "http_check.service_agent_authentication",
    "content_matchers",
    "selected_regions",
    "is_internal",
)
_POLICY_FIELDS = (
    "combiner",
    "conditions.condition_threshold.aggregations",
    "conditions.condition_threshold.denominator_aggregations",
    "conditions.condition_threshold.trigger",
    "conditions.condition_threshold.evaluation_missing_data",
    "conditions.condition_threshold.forecast_options",
    # Not alert_strategy as a whole: Google may fill in its own defaults (an auto-close), which no plan should undo.
    "alert_strategy.notification_prompts",
    "alert_strategy.notification_rate_limit",
    "documentation.mime_type",
    "severity",
)


def _field(pb: Any, path: str) -> Any:
    """The protobuf value at the dotted `path` (through the first of a repeated message, as doki writes one)."""
    value = pb
    for part in path.split("."):
        if hasattr(value, "__len__") and not hasattr(value, "DESCRIPTOR") and not isinstance(value, (str, bytes)):
            value = value[0] if len(value) else None
            if value is None:
                return None
        value = getattr(value, part)
    if hasattr(value, "DESCRIPTOR"):
        return value.SerializeToString(deterministic=True)
    if hasattr(value, "__len__") and not isinstance(value, (str, bytes)):
        items = list(value.items()) if hasattr(value, "items") else list(value)
        return [item.SerializeToString(deterministic=True) if hasattr(item, "DESCRIPTOR") else item for item in items]
    return value


def _drift(live: Any, written: Any, paths: tuple[str, ...]) -> tuple[str, ...]:
    live_pb, written_pb = type(live).pb(live), type(written).pb(written)
    return tuple(path for path in paths if _field(live_pb, path) != _field(written_pb, path))


def _check(message: Any) -> Check:
    labels = message.monitored_resource.labels
    matchers = list(message.content_matchers)
    first = matchers[0] if matchers else None
    spec = CheckSpec(
        display_name=message.display_name,
        project=labels.get("project_id", ""),
        service=labels.get("service_name", ""),
        location=labels.get("location", ""),
        path=message.http_check.path,
        period_seconds=int(message.period.total_seconds()),
        timeout_seconds=int(message.timeout.total_seconds()),
        json_path=first.json_path_matcher.json_path if first is not None else "",
        expected=first.content if first is not None else "",
    )
    return Check(message.name, spec, _drift(message, _check_message(spec), _CHECK_FIELDS))


def _aggregation(threshold: Threshold) -> Any:
    from google.cloud.monitoring_v3 import types

    return types.Aggregation(
        alignment_period={"seconds": threshold.alignment_seconds},
        per_series_aligner=threshold.aligner,  # proto-plus takes an enum by its name
        cross_series_reducer=threshold.reducer,
        group_by_fields=list(threshold.group_by),
    )


def _policy_message(spec: PolicySpec) -> Any:
    from google.cloud.monitoring_v3 import types

    threshold = spec.threshold
    condition = types.AlertPolicy.Condition.MetricThreshold(
        filter=threshold.filter,
        aggregations=[_aggregation(threshold)],
        comparison=threshold.comparison,
        threshold_value=threshold.value,
        duration={"seconds": threshold.duration_seconds},
        trigger={"count": 1},
    )
    if threshold.denominator_filter:
        condition.denominator_filter = threshold.denominator_filter
        condition.denominator_aggregations = [_aggregation(threshold)]
    return types.AlertPolicy(
        display_name=spec.display_name,
        documentation={"content": spec.documentation, "mime_type": "text/markdown"},
        user_labels=_labels(spec.service, spec.location, spec.alert),
        conditions=[{"display_name": spec.condition_name, "condition_threshold": condition}],
        combiner=types.AlertPolicy.ConditionCombinerType.OR,
        notification_channels=list(spec.channels),
        enabled=spec.enabled,
    )


def _policy(message: Any) -> Policy | None:
    """A policy doki made, as doki's type; None when it is not one doki can read (one condition, a threshold)."""
    from google.cloud.monitoring_v3 import types

    conditions = list(message.conditions)
    if len(conditions) != 1 or "condition_threshold" not in conditions[0]:
        return None
    condition = conditions[0]
    threshold = condition.condition_threshold
    aggregation = threshold.aggregations[0] if threshold.aggregations else types.Aggregation()
    labels = message.user_labels
    spec = PolicySpec(
        alert=labels.get(ALERT_LABEL, ""),
        service=labels.get(SERVICE_LABEL, ""),
        location=labels.get(LOCATION_LABEL, ""),
        display_name=message.display_name,
        condition_name=condition.display_name,
        threshold=Threshold(
            filter=threshold.filter,
            aligner=types.Aggregation.Aligner(aggregation.per_series_aligner).name,
            reducer=types.Aggregation.Reducer(aggregation.cross_series_reducer).name,
            group_by=tuple(aggregation.group_by_fields),
            alignment_seconds=int(aggregation.alignment_period.total_seconds()) if aggregation.alignment_period else 0,
            comparison=types.ComparisonType(threshold.comparison).name,
            value=threshold.threshold_value,
            duration_seconds=int(threshold.duration.total_seconds()) if threshold.duration else 0,
            denominator_filter=threshold.denominator_filter,
        ),
        documentation=message.documentation.content,
        channels=tuple(message.notification_channels),
        enabled=bool(message.enabled),
    )
    return Policy(message.name, spec, condition.name, _drift(message, _policy_message(spec), _POLICY_FIELDS))


def _channel(message: Any) -> Channel:
    from google.cloud.monitoring_v3 import types

    return Channel(
        name=message.name,
        email=message.labels.get(EMAIL_LABEL, ""),
        display_name=message.display_name,
        verification=types.NotificationChannel.VerificationStatus(message.verification_status).name,
        enabled=bool(message.enabled) if "enabled" in message else True,
    )


def _number(value: Any) -> float:
    kind = type(value).pb(value).WhichOneof("value")
    if kind == "bool_value":
        return 1.0 if value.bool_value else 0.0
    if kind == "distribution_value":
        return float(value.distribution_value.mean)
    return float(getattr(value, kind)) if kind else 0.0
