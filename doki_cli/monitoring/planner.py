"""The monitoring plan: what doki.toml's [monitoring] asks for, against what Cloud Monitoring holds. Reads only.

For a service doki keeps one uptime check of its health contract (`/` answering {"message": "Doki Backend up"}), and
up to three alert policies: the check failing (Google's own policy for an uptime check: more than one location
failing in the latest checks, for a minute), the share of 5xx answers above `max_5xx_ratio`, and the 95th
percentile of latency above `max_p95_latency_ms`, each for `alert_after`. Each alert notifies every address of
`emails` through an email channel: one the project has for that address, or one doki makes. A declared value that
differs from the live one is an update; an alert turned off (false) or a [monitoring] table removed deletes what
doki made. Channels are never deleted: other policies may use them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from doki_cli.deploy.health import EXPECTED, HEALTH
from doki_cli.monitoring.spec import (
    ALERTS,
    ERRORS,
    LATENCY,
    NEW_CHANNEL,
    NEW_CHECK_ID,
    UPTIME,
    Channel,
    Check,
    CheckSpec,
    Policy,
    PolicySpec,
    Reading,
    Threshold,
)
from doki_cli.waiting import duration_text

if TYPE_CHECKING:
    from doki_cli.config import ServiceConfig

# Google's alert policy for an uptime check, as the console makes it ("Failure of uptime check_id …"): the newest
# result of each location within 20 minutes (ALIGN_NEXT_OLDER over 1200 s), the failing ones counted
# (REDUCE_COUNT_FALSE), more than one of them, for a minute.
UPTIME_ALIGNMENT_SECONDS = 1200
UPTIME_FAILING_LOCATIONS = 1
UPTIME_RETEST_SECONDS = 60
# Cloud Run samples its request metrics every minute: the alerts on them align to a minute.
REQUEST_ALIGNMENT_SECONDS = 60
CHECK_PASSED = "monitoring.googleapis.com/uptime_check/check_passed"
REQUEST_COUNT = "run.googleapis.com/request_count"
REQUEST_LATENCIES = "run.googleapis.com/request_latencies"
JSON_PATH = "$.message"


class MonitoringPort(Protocol):
    """What planning, applying and reading the monitoring need of Cloud Monitoring (the adapter,
    doki_cli.gcp.monitoring.Monitoring)."""

    project: str

    def checks(self, service: str, location: str) -> list[Check]: ...
    def create_check(self, spec: CheckSpec) -> Check: ...
    def replace_check(self, name: str, spec: CheckSpec) -> Check: ...
    def delete_check(self, name: str) -> None: ...
    def policies(self, service: str, location: str) -> list[Policy]: ...
    def create_policy(self, spec: PolicySpec) -> Policy: ...
    def replace_policy(self, live: Policy, spec: PolicySpec) -> Policy: ...
    def delete_policy(self, name: str) -> None: ...
    def email_channels(self) -> list[Channel]: ...
    def policies_reading(self, check_id: str) -> list[tuple[str, str]]: ...
    def create_email_channel(self, email: str) -> Channel: ...
    def newest(
        self, threshold: Threshold, *, window_seconds: int, now: float, denominator: bool = False
    ) -> list[Reading]: ...


@dataclass(frozen=True)
class Change:
    """One write: `action` (create, update, delete) of a `kind` (channel, check, alert), what it writes (`spec`: an
    address, a CheckSpec or a PolicySpec) over what is there (`live`), and the differences people read."""

    action: str
    kind: str
    title: str
    spec: Any = None
    live: Any = None
    diffs: tuple[str, ...] = ()
    alert: str = ""  # which alert, for a policy


@dataclass(frozen=True)
class MonitoringPlan:
    service: str
    location: str
    project: str
    changes: tuple[Change, ...]
    kept: tuple[str, ...] = ()  # what is already as declared, as plan lines
    warnings: tuple[str, ...] = ()
    channels: dict[str, str] = field(default_factory=dict)  # address -> channel name, for those that exist
    check_id: str = ""  # the live check's, kept by the plan

    @property
    def empty(self) -> bool:
        return not self.changes


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def check_spec(config: ServiceConfig) -> CheckSpec:
    settings = config.monitoring
    return CheckSpec(
        display_name=f"{config.name} health",
        project=config.project,
        service=config.name,
        location=config.region,
        path=HEALTH.path,
        period_seconds=settings.uptime_period_seconds,
        timeout_seconds=settings.uptime_timeout_seconds,
        json_path=JSON_PATH,
        expected=EXPECTED["message"],
    )


def _service_filter(metric: str, config: ServiceConfig) -> str:
    return (
        f'metric.type={_quoted(metric)} AND resource.type="cloud_run_revision" AND '
        f"resource.label.service_name={_quoted(config.name)} AND resource.label.location={_quoted(config.region)}"
    )


def policy_specs(config: ServiceConfig, check_id: str, channels: Sequence[str]) -> dict[str, PolicySpec]:
    """The alert policies doki.toml asks for, by alert; `check_id` the uptime check's (NEW_CHECK_ID until made)."""
    settings = config.monitoring
    name = config.name
    docs = (
        f"Raised by doki for the Cloud Run service {name} ({config.region}).\n\n"
        f"- `doki monitor status --service {name}` shows the uptime check and each alert's value now.\n"
        f"- `doki logs --service {name}` shows what the service logged.\n"
        "- The thresholds are doki.toml's `[monitoring]`; `doki monitor` applies them."
    )
    specs = {
        UPTIME: PolicySpec(
            alert=UPTIME,
            service=name,
            location=config.region,
            display_name=f"{name}: uptime check failing",
            condition_name=f"{name}: {HEALTH.path} fails from more than one location",
            threshold=Threshold(
                filter=(
                    f"metric.type={_quoted(CHECK_PASSED)} AND metric.label.check_id={_quoted(check_id)} AND "
                    'resource.type="cloud_run_revision"'
                ),
                aligner="ALIGN_NEXT_OLDER",
                reducer="REDUCE_COUNT_FALSE",
                group_by=("resource.label.*",),
                alignment_seconds=UPTIME_ALIGNMENT_SECONDS,
                comparison="COMPARISON_GT",
                value=UPTIME_FAILING_LOCATIONS,
                duration_seconds=UPTIME_RETEST_SECONDS,
            ),
            documentation=docs,
            channels=tuple(channels),
        )
    }
    if settings.max_5xx_ratio is not None:
        percent = f"{settings.max_5xx_ratio * 100:g}%"
        every = _service_filter(REQUEST_COUNT, config)
        specs[ERRORS] = PolicySpec(
            alert=ERRORS,
            service=name,
            location=config.region,
            display_name=f"{name}: 5xx above {percent}",
            condition_name=f"{name}: share of 5xx answers above {percent}",
            threshold=Threshold(
                filter=every + ' AND metric.label.response_code_class="5xx"',
                denominator_filter=every,
                aligner="ALIGN_RATE",
                reducer="REDUCE_SUM",
                group_by=("resource.label.service_name",),
                alignment_seconds=REQUEST_ALIGNMENT_SECONDS,
                comparison="COMPARISON_GT",
                value=settings.max_5xx_ratio,
                duration_seconds=settings.alert_after_seconds,
            ),
            documentation=docs,
            channels=tuple(channels),
        )
    if settings.max_p95_latency_ms is not None:
        specs[LATENCY] = PolicySpec(
            alert=LATENCY,
            service=name,
            location=config.region,
            display_name=f"{name}: p95 latency above {settings.max_p95_latency_ms} ms",
            condition_name=f"{name}: 95th percentile of request latency above {settings.max_p95_latency_ms} ms",
            threshold=Threshold(
                filter=_service_filter(REQUEST_LATENCIES, config),
                aligner="ALIGN_DELTA",
                reducer="REDUCE_PERCENTILE_95",
                group_by=("resource.label.service_name",),
                alignment_seconds=REQUEST_ALIGNMENT_SECONDS,
                comparison="COMPARISON_GT",
                value=float(settings.max_p95_latency_ms),
                duration_seconds=settings.alert_after_seconds,
            ),
            documentation=docs,
            channels=tuple(channels),
        )
    return specs


# -- what people read ----------------------------------------------------------------------------------------------


def check_fields(spec: CheckSpec) -> dict[str, str]:
    return {
        "name": spec.display_name,
        "request": f"GET {spec.path}",
        "every": duration_text(spec.period_seconds),
        "timeout": duration_text(spec.timeout_seconds),
        "expects": f"{spec.json_path} = {_quoted(spec.expected)}",
    }


def condition_text(spec: PolicySpec) -> str:
    threshold = spec.threshold
    if spec.alert == UPTIME:
        return f"{HEALTH.path} fails from more than {threshold.value:g} location"
    if spec.alert == ERRORS:
        return f"5xx answers above {threshold.value * 100:g}% of requests"
    if spec.alert == LATENCY:
        return f"p95 latency above {threshold.value:g} ms"
    return f"{threshold.filter} {threshold.comparison} {threshold.value:g}"


def policy_fields(spec: PolicySpec, emails: Callable[[str], str]) -> dict[str, str]:
    return {
        "name": spec.display_name,
        "when": condition_text(spec),
        "for": duration_text(spec.threshold.duration_seconds) or "0s",
        "notify": ", ".join(emails(channel) for channel in spec.channels) or "nobody",
        "enabled": "yes" if spec.enabled else "no",
        # What none of the above says (a filter or aggregation changed by hand): still a difference.
        "condition": _shape(spec.threshold),
    }


def _shape(threshold: Threshold) -> str:
    """A condition without what the other fields say (its value, its duration, which check it reads)."""
    plain = replace(threshold, value=0.0, duration_seconds=0, filter=_CHECK_ID.sub("check_id=…", threshold.filter))
    return repr(plain)


_CHECK_ID = re.compile(r'check_id="[^"]*"')


def _diffs(before: dict[str, str], after: dict[str, str]) -> tuple[str, ...]:
    diffs = []
    for key, value in after.items():
        if before.get(key) != value:
            diffs.append(
                f"{key}: changed by hand; doki.toml's is written back"
                if key == "condition"
                else f"{key}: {before.get(key, '-')} -> {value}"
            )
    return tuple(diffs)


# -- planning --------------------------------------------------------------------------------------------------------


def plan_monitoring(
    monitoring: MonitoringPort, config: ServiceConfig, *, service_exists: Callable[[], bool]
) -> MonitoringPlan:
    """The plan for `config`'s service: writes only what differs from what doki made before. `service_exists()` is
    asked only when a check is to be made (Google confirms the service exists)."""
    from doki_cli.errors import Code, DokiError

    settings = config.monitoring
    service, location = config.name, config.region
    checks = monitoring.checks(service, location)
    found = monitoring.policies(service, location)
    # A policy labelled as an alert this doki does not know (a newer doki's) is left alone.
    unknown = [policy for policy in found if policy.spec.alert not in ALERTS]
    warnings = [
        f"alert {policy.spec.display_name} is labelled doki-alert={policy.spec.alert or '(none)'}, which this doki "
        "does not know: left as it is"
        for policy in unknown
    ]
    changes: list[Change] = []
    kept: list[str] = []
    if not settings.declared:
        if not checks and not [policy for policy in found if policy.spec.alert in ALERTS]:
            raise DokiError(
                Code.MONITORING_NOT_DECLARED,
                f"doki.toml declares no [monitoring] for {service}, and doki keeps no uptime check or alert for it",
                'add a [monitoring] table with emails = ["you@example.com"] (docs/configuration.md, "Monitoring")',
            )
        doomed = [policy for alert in ALERTS for policy in found if policy.spec.alert == alert]
        changes += [Change("delete", "alert", p.spec.display_name, live=p, alert=p.spec.alert) for p in doomed]
        changes += [Change("delete", "check", check.spec.display_name, live=check) for check in checks]
        _check_deletable(monitoring, changes)
        warnings.append("doki.toml declares no [monitoring]: what doki made for the service is deleted")
        return MonitoringPlan(service, location, config.project, tuple(changes), (), tuple(warnings))
    channels_by_email: dict[str, list[Channel]] = {}
    for channel in monitoring.email_channels():
        channels_by_email.setdefault(channel.email.lower(), []).append(channel)
    emails_of = {c.name: c.email for listed in channels_by_email.values() for c in listed}
    names: dict[str, str] = {}
    wanted_channels = []
    for address in settings.emails:
        # An address's enabled channel is used, whoever made it; a disabled one only when there is no other (said).
        listed = sorted(channels_by_email.get(address.lower(), []), key=lambda c: (not c.enabled, c.name))
        if listed:
            names[address] = listed[0].name
            wanted_channels.append(listed[0].name)
            kept.append(f"email channel {address}")
            if not listed[0].enabled:
                warnings.append(f"the email channel of {address} is disabled: alerts reach nobody there until it is on")
        else:
            wanted_channels.append(NEW_CHANNEL + address)
            changes.append(Change("create", "channel", address, spec=address))

    def email(channel: str) -> str:
        return channel[len(NEW_CHANNEL) :] if channel.startswith(NEW_CHANNEL) else emails_of.get(channel, channel)

    wanted_check = check_spec(config)
    live_check = checks[0] if checks else None
    extra_checks = checks[1:]
    check_id = NEW_CHECK_ID
    if live_check is None:
        if not service_exists():
            raise DokiError(
                Code.SERVICE_NOT_FOUND,
                f"{service} is not deployed in {location}: an uptime check needs the service (Google confirms it "
                "exists)",
                "deploy it first with `doki deploy` (or check --project, --region and --env)",
            )
        changes.append(Change("create", "check", wanted_check.display_name, spec=wanted_check))
    else:
        check_id = live_check.check_id
        if live_check.spec == wanted_check and not live_check.drift:
            kept.append(f"uptime check {wanted_check.display_name} ({check_id})")
        else:
            diffs = _diffs(check_fields(live_check.spec), check_fields(wanted_check)) + _drifted(live_check.drift)
            changes.append(
                Change("update", "check", wanted_check.display_name, spec=wanted_check, live=live_check, diffs=diffs)
            )
    wanted = policy_specs(config, check_id, wanted_channels)
    for alert in ALERTS:
        spec = wanted.get(alert)
        # Twins (two runs at once, or a create retried after its answer was lost) all but one go: the one that
        # reads the kept check, else the first.
        same = sorted(
            (policy for policy in found if policy.spec.alert == alert),
            key=lambda policy: (check_id not in policy.spec.threshold.filter, policy.name),
        )
        live, twins = (same[0], same[1:]) if same else (None, [])
        if spec is None:
            twins = same
        elif live is None:
            changes.append(Change("create", "alert", spec.display_name, spec=spec, alert=alert))
        elif live.spec == spec and not live.drift:
            kept.append(f"alert {spec.display_name}")
        else:
            diffs = _diffs(policy_fields(live.spec, email), policy_fields(spec, email)) + _drifted(live.drift)
            if check_id == NEW_CHECK_ID and alert == UPTIME:
                diffs = (*diffs, "check: the new uptime check")
            changes.append(Change("update", "alert", spec.display_name, spec=spec, live=live, diffs=diffs, alert=alert))
        changes += [
            Change("delete", "alert", twin.spec.display_name, live=twin, alert=alert, diffs=_twin(spec))
            for twin in twins
        ]
    changes += [
        Change("delete", "check", check.spec.display_name, live=check, diffs=("a twin",)) for check in extra_checks
    ]
    _check_deletable(monitoring, changes)
    if not settings.emails:
        warnings.append("monitoring.emails is empty: alerts open incidents, and notify nobody")
    if config.ingress != "all":
        warnings.append(
            f"ingress is {config.ingress}: Google's uptime checkers call from the internet, so the check will fail "
            "(Cloud Run answers them 404)"
        )
    if not config.allow_unauthenticated:
        warnings.append(
            "the service does not allow unauthenticated calls: the uptime check calls without a token, so it will "
            "fail (403)"
        )
    return MonitoringPlan(
        service,
        location,
        config.project,
        tuple(changes),
        tuple(kept),
        tuple(warnings),
        channels=names,
        check_id="" if check_id == NEW_CHECK_ID else check_id,
    )


def _drifted(drift: tuple[str, ...]) -> tuple[str, ...]:
    return (f"changed by hand: {', '.join(drift)}; doki's are written back",) if drift else ()


def _twin(spec: PolicySpec | None) -> tuple[str, ...]:
    return ("a twin: one such alert is kept",) if spec is not None else ()


def _check_deletable(monitoring: MonitoringPort, changes: list[Change]) -> None:
    """Google refuses to delete an uptime check an alert policy reads: a policy doki does not delete in the same
    run (one made by hand on doki's check) stops the plan before any write, naming it."""
    from doki_cli.errors import Code, DokiError

    going = {change.live.name for change in changes if change.kind == "alert" and change.action == "delete"}
    for change in changes:
        if change.kind != "check" or change.action != "delete":
            continue
        readers = [
            (name, display) for name, display in monitoring.policies_reading(change.live.check_id) if name not in going
        ]
        if readers:
            raise DokiError(
                Code.CHECK_IN_USE,
                f"the uptime check {change.title} ({change.live.check_id}) is read by "
                + ", ".join(f"{display or name} ({name})" for name, display in readers)
                + ", which this run does not delete; Google refuses to delete a check a policy reads",
                "delete or change those policies first (in the console, or gcloud alpha monitoring policies delete), "
                "then run `doki monitor` again; nothing was changed",
            )
