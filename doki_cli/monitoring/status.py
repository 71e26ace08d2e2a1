"""What `doki monitor status` reads: the uptime check's newest result from each location, and each alert's value
now, measured as its policy measures it (its filter and aggregation, through ListTimeSeries).

Cloud Monitoring's API says nothing of incidents (they are the console's), so an alert's state here is its
condition's now: above its threshold or not, without the retest window that opens an incident. The time series
arrive a few minutes late on Google ("after sampling, data is not visible for up to 180 seconds"): no data is said
as such, not as a pass.
"""

from __future__ import annotations

from dataclasses import dataclass

from doki_cli.monitoring.planner import CHECK_PASSED, MonitoringPort
from doki_cli.monitoring.spec import ERRORS, LATENCY, UPTIME, Channel, Check, Policy, Threshold
from doki_cli.waiting import duration_text

UPTIME_LATENCY = "monitoring.googleapis.com/uptime_check/request_latency"
# How far back a check's newest result is looked for: the alert's window (Google keeps results longer).
RESULT_WINDOW_SECONDS = 1200
# How far back an alert's newest aligned value is looked for: Cloud Run's points are whole minutes, visible only once
# the minute is over and then "up to 180 seconds" later, so the last minute alone is mostly empty.
VALUE_WINDOW_SECONDS = 600


@dataclass(frozen=True)
class CheckState:
    check: Check
    results: dict[str, bool]  # checker location -> passed, in its newest result
    latency_ms: float | None  # the mean of the locations' newest answers

    @property
    def state(self) -> str:
        if not self.results:
            return "no results yet"
        failing = [location for location, passed in self.results.items() if not passed]
        return "failing" if len(failing) > 1 else "passing"


@dataclass(frozen=True)
class AlertState:
    policy: Policy
    value: float | None  # None: no data in its window

    @property
    def above(self) -> bool | None:
        if self.value is None:
            return None
        threshold = self.policy.spec.threshold
        if threshold.comparison == "COMPARISON_LT":
            return self.value < threshold.value
        return self.value > threshold.value


def check_state(monitoring: MonitoringPort, check: Check, now: float) -> CheckState:
    def newest(metric: str) -> dict[str, float]:
        threshold = Threshold(
            filter=f'metric.type="{metric}" AND metric.label.check_id="{check.check_id}"',
            aligner="ALIGN_NEXT_OLDER",
            reducer="REDUCE_NONE",
            group_by=(),
            alignment_seconds=RESULT_WINDOW_SECONDS,
            comparison="COMPARISON_GT",
            value=0,
            duration_seconds=0,
        )
        readings = monitoring.newest(threshold, window_seconds=RESULT_WINDOW_SECONDS, now=now)
        return {reading.labels.get("checker_location", ""): reading.value for reading in readings}

    passed = {location: value >= 1 for location, value in sorted(newest(CHECK_PASSED).items())}
    latencies = list(newest(UPTIME_LATENCY).values()) if passed else []
    return CheckState(check, passed, sum(latencies) / len(latencies) if latencies else None)


def alert_state(monitoring: MonitoringPort, policy: Policy, now: float) -> AlertState:
    """The policy's value in its newest aligned period that has data: the highest of its series (the uptime alert
    has one per resource, the others one per service)."""
    threshold = policy.spec.threshold
    window = max(threshold.alignment_seconds, VALUE_WINDOW_SECONDS)
    readings = monitoring.newest(threshold, window_seconds=window, now=now)
    if not threshold.denominator_filter:
        values = [reading.value for reading in readings]
        return AlertState(policy, max(values) if values else None)
    # A ratio: the numerator's series over the denominator's with the same labels, in the same period; a period
    # without a numerator had none of them (no 5xx answers: no 5xx series).
    denominators = monitoring.newest(threshold, window_seconds=window, now=now, denominator=True)
    numerators = {(tuple(sorted(r.labels.items())), r.at): r.value for r in readings}
    ratios = [
        numerators.get((tuple(sorted(reading.labels.items())), reading.at), 0.0) / reading.value
        for reading in denominators
        if reading.value
    ]
    return AlertState(policy, max(ratios) if ratios else None)


def alert_value_text(state: AlertState) -> str:
    spec = state.policy.spec
    if state.value is None:
        window = max(spec.threshold.alignment_seconds, VALUE_WINDOW_SECONDS)
        return f"nothing measured in the last {duration_text(window)}"
    if spec.alert == UPTIME:
        plural = "s" if state.value != 1 else ""
        return f"{state.value:g} location{plural} failing (threshold: more than {spec.threshold.value:g})"
    if spec.alert == ERRORS:
        return f"{state.value * 100:.3g}% of answers 5xx (threshold {spec.threshold.value * 100:g}%)"
    if spec.alert == LATENCY:
        return f"p95 {state.value:.0f} ms (threshold {spec.threshold.value:g} ms)"
    return f"{state.value:g}"


def channel_text(channel: Channel) -> str:
    status = {"VERIFIED": "verified", "UNVERIFIED": "unverified"}.get(channel.verification, "")
    return f"{channel.email} ({'email' + (', ' + status if status else '')}{'' if channel.enabled else ', disabled'})"
