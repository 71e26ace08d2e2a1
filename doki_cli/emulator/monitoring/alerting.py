"""The alerting: each enabled policy's threshold conditions evaluated against the recorded time series, incidents
opened and closed, and a notification "sent" to each of the policy's channels when they do.

As Google evaluates a metric-threshold condition (https://cloud.google.com/monitoring/alerts/concepts-indepth): the
condition's filter and aggregation make one or more time series over the last alignment period; each series' newest
value is compared with the threshold (a ratio condition divides the series by the denominator's series with the same
labels); a series that violates the condition for the whole `duration` (the retest window) violates it; the `trigger`
says how many violating series the condition needs (one when unset). A policy's conditions combine by its `combiner`.
An incident opens when the policy is met, and closes when it no longer is, each time notifying the channels (Google
notifies of openings and closings by default: AlertStrategy.notification_prompts).

Only threshold conditions are evaluated; the others are stored as Google stores them, and never open an incident
here (docs/emulator.md says so).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from google.cloud.monitoring_v3 import types

from doki_cli.emulator.monitoring.metrics import Interval, TimeSeriesStore
from doki_cli.emulator.monitoring.state import MonitoringConfig

Comparison = types.ComparisonType
# The comparisons a condition may make (validation: "Only COMPARISON_LT and COMPARISON_GT are supported").
_COMPARE: dict[int, tuple[str, Callable[[float, float], bool]]] = {
    Comparison.COMPARISON_GT: (">", lambda value, threshold: value > threshold),
    Comparison.COMPARISON_LT: ("<", lambda value, threshold: value < threshold),
}
Prompt = types.AlertPolicy.AlertStrategy.NotificationPrompt


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def _number(point: types.Point) -> float:
    value = point.value
    kind = types.TypedValue.pb(value).WhichOneof("value")
    if kind == "bool_value":
        return 1.0 if value.bool_value else 0.0
    if kind == "int64_value":
        return float(value.int64_value)
    if kind == "double_value":
        return float(value.double_value)
    return float(value.distribution_value.mean)


def _labels(series: types.TimeSeries) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(dict(series.metric.labels).items())) + tuple(sorted(dict(series.resource.labels).items()))


class Alerting:
    """Evaluates every project's enabled policies; `evaluate()` is called after each uptime run and on a tick."""

    def __init__(self, config: MonitoringConfig, metrics: TimeSeriesStore, clock: Callable[[], float]) -> None:
        self._config = config
        self._metrics = metrics
        self._clock = clock
        self._lock = threading.Lock()
        # (condition name, series labels) -> when the series began violating the condition
        self._since: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self._open: dict[str, dict[str, Any]] = {}  # policy name -> its open incident

    def restore(self) -> None:
        """The incidents still open when the state was saved are open again (the alerting's memory is the
        store's), so a restart neither forgets nor reopens them."""
        with self._lock:
            latest: dict[str, dict[str, Any]] = {}
            for incident in self._config.events()["incidents"]:
                latest[incident["policy"]] = incident
            self._open = {policy: incident for policy, incident in latest.items() if incident["state"] == "open"}

    def evaluate(self) -> list[dict[str, Any]]:
        """Evaluate now; the incidents open afterwards. A policy deleted or disabled has its incident closed: it
        evaluates nothing any more."""
        now = self._clock()
        with self._lock:
            judged = set()
            for policy in self._config.all_of("alertPolicies"):
                if policy.enabled:
                    judged.add(policy.name)
                    self._judge(policy, now)
            for name in [name for name in self._open if name not in judged]:
                self._close(name, None, now)
            conditions = {
                condition.name for policy in self._config.all_of("alertPolicies") for condition in policy.conditions
            }
            for slot in [slot for slot in self._since if slot[0] not in conditions]:
                del self._since[slot]
            return [dict(incident) for incident in self._open.values()]

    def _close(self, name: str, policy: types.AlertPolicy | None, now: float) -> None:
        incident = {**self._open.pop(name), "state": "closed", "ended_at": _iso(now)}
        self._config.record(incident=dict(incident))
        if policy is not None:
            self._notify(policy, incident, now)

    def _judge(self, policy: types.AlertPolicy, now: float) -> None:
        verdicts: list[tuple[bool, str, str] | None] = []
        for condition in policy.conditions:
            verdicts.append(self._condition(policy, condition, now))
        judged = [verdict for verdict in verdicts if verdict is not None]
        if not judged:
            return
        met_by = [verdict for verdict in judged if verdict[0]]
        combiner = policy.combiner
        met = bool(met_by) if combiner != types.AlertPolicy.ConditionCombinerType.AND else len(met_by) == len(verdicts)
        incident = self._open.get(policy.name)
        if met and incident is None:
            _, condition_name, observed = met_by[0]
            incident = {
                "incident_id": uuid.uuid4().hex[:16],
                "policy": policy.name,
                "policy_name": policy.display_name,
                "condition": condition_name,
                "state": "open",
                "started_at": _iso(now),
                "ended_at": None,
                "observed_value": observed,
                "summary": f"{policy.display_name}: {observed}",
            }
            self._open[policy.name] = incident
            self._config.record(incident=dict(incident))
            self._notify(policy, incident, now)
        elif not met and incident is not None:
            self._close(policy.name, policy, now)

    def _condition(
        self, policy: types.AlertPolicy, condition: types.AlertPolicy.Condition, now: float
    ) -> tuple[bool, str, str] | None:
        """(met, condition, observed value), or None when no series has data: then nothing changes, as Google
        leaves an incident open while data is missing until auto-close (concepts-indepth, "missing data")."""
        threshold = condition.condition_threshold
        project = policy.name.split("/")[1]
        aggregation = threshold.aggregations[0] if threshold.aggregations else None
        period = aggregation.alignment_period.total_seconds() if aggregation is not None else 60.0
        interval = Interval(now - period, now)
        numerator = self._metrics.query(project, threshold.filter, interval, aggregation)
        values = {_labels(series): _number(series.points[0]) for series in numerator if series.points}
        if threshold.denominator_filter:
            denominator_aggregation = (
                threshold.denominator_aggregations[0] if threshold.denominator_aggregations else None
            )
            denominators = {
                _labels(series): _number(series.points[0])
                for series in self._metrics.query(
                    project, threshold.denominator_filter, interval, denominator_aggregation
                )
                if series.points
            }
            # A group with answers and no 5xx series had none of them: a ratio of 0.
            values = {key: values.get(key, 0.0) / total for key, total in denominators.items() if total}
        if not values:
            return None
        symbol, compare = _COMPARE[threshold.comparison]
        duration = threshold.duration.total_seconds()
        violating: list[tuple[tuple[tuple[str, str], ...], float]] = []
        for key, value in values.items():
            slot = (condition.name, key)
            if not compare(value, threshold.threshold_value):
                self._since.pop(slot, None)
                continue
            since = self._since.setdefault(slot, now)
            if now - since >= duration:
                violating.append((key, value))
        for slot in [slot for slot in self._since if slot[0] == condition.name and slot[1] not in values]:
            self._since.pop(slot)  # a series with no point now no longer violates
        trigger = threshold.trigger
        if "percent" in trigger and trigger.percent:
            needed = max(1, -(-len(values) * trigger.percent // 100))
        else:
            needed = trigger.count or 1
        met = len(violating) >= needed and bool(violating)
        observed = ""
        if violating:
            worst = violating[0][1]
            observed = f"{worst:g} {symbol} {threshold.threshold_value:g}"
        return met, condition.name, observed

    def _notify(self, policy: types.AlertPolicy, incident: dict[str, Any], now: float) -> None:
        # AlertStrategy.notification_prompts: when to notify; unset, "OPENED and CLOSED".
        prompts: set[int] = {int(p) for p in policy.alert_strategy.notification_prompts} or {
            Prompt.OPENED,
            Prompt.CLOSED,
        }
        if (Prompt.OPENED if incident["state"] == "open" else Prompt.CLOSED) not in prompts:
            return
        for channel_name in policy.notification_channels:
            channel = self._config.find(channel_name)
            if channel is None or not channel.enabled:  # deleted since, or turned off: nothing is sent
                continue
            self._config.record(
                notification={
                    "channel": channel.name,
                    "type": channel.type,
                    "labels": dict(channel.labels),
                    "sent_at": _iso(now),
                    "subject": f"[ALERT - {incident['state'].capitalize()}] {policy.display_name}",
                    "incident": dict(incident),
                }
            )
