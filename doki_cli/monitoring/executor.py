"""The monitoring plan carried out, and shown: the only place `doki monitor` writes, and the display a dry run shows
instead.

The order makes each write name only what exists: channels first, then the uptime check (a new one's id goes into
its alert's filter), then the alert policies, and the deletions last, policies before the check they read. A
failure stops there: what was written stays, and the next `doki monitor` plans only what is left.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from doki_cli.monitoring.planner import Change, MonitoringPlan, MonitoringPort, check_fields, condition_text
from doki_cli.monitoring.spec import NEW_CHANNEL, NEW_CHECK_ID, CheckSpec, PolicySpec
from doki_cli.waiting import duration_text

_SYMBOLS = {"create": ("+", "green"), "update": ("~", "yellow"), "delete": ("-", "red")}
_KINDS = {"channel": "email channel", "check": "uptime check", "alert": "alert"}


def _what(change: Change, emails: dict[str, str]) -> str:
    """`change` as a plan line says it; `emails`: the address of each existing channel, by name."""
    if change.kind == "check" and change.action == "create":
        spec: CheckSpec = change.spec
        fields = check_fields(spec)
        return (
            f"uptime check {spec.display_name}: {fields['request']} every {fields['every']} from every location, "
            f"{fields['timeout']} timeout, expects {fields['expects']}"
        )
    if change.kind == "alert" and change.action == "create":
        policy: PolicySpec = change.spec
        notify = ", ".join(emails.get(c, c.removeprefix(NEW_CHANNEL)) for c in policy.channels) or "nobody"
        after = duration_text(policy.threshold.duration_seconds) or "0s"
        return f"alert {policy.display_name}: {condition_text(policy)} for {after}, notify {notify}"
    return f"{_KINDS[change.kind]} {change.title}"


def plan_lines(plan: MonitoringPlan) -> list[tuple[str, str | None]]:
    """The plan as people read it: + made, ~ changed (with each difference), - deleted, = as declared, ! warned."""
    lines: list[tuple[str, str | None]] = [
        (f"Monitoring plan for {plan.service} ({plan.location}) in project {plan.project}:", None)
    ]
    emails = {name: address for address, name in plan.channels.items()}
    for change in plan.changes:
        symbol, style = _SYMBOLS[change.action]
        lines.append((f"  {symbol} {_what(change, emails)}", style))
        lines += [(f"      {diff}", style) for diff in change.diffs]
    lines += [(f"  = {kept}", "dim") for kept in plan.kept]
    lines += [(f"  ! {warning}", "yellow") for warning in plan.warnings]
    count = len(plan.changes)
    lines.append(("No changes." if not count else f"{count} change{'s' if count != 1 else ''}.", None))
    return lines


def plan_data(plan: MonitoringPlan) -> dict[str, Any]:
    return {
        "service": plan.service,
        "location": plan.location,
        "project": plan.project,
        "changes": [
            {"action": c.action, "kind": c.kind, "name": c.title, "alert": c.alert or None, "diffs": list(c.diffs)}
            for c in plan.changes
        ],
        "kept": list(plan.kept),
        "warnings": list(plan.warnings),
    }


def apply_plan(
    monitoring: MonitoringPort, plan: MonitoringPlan, *, on_progress: Callable[[str], None]
) -> dict[str, str]:
    """Write `plan`; the names of what it made or changed, by what (`channel:ADDRESS`, `check`, `alert:KIND`)."""
    names = dict(plan.channels)
    made: dict[str, str] = {}
    for change in plan.changes:
        if change.kind == "channel":
            on_progress(f"making the email channel for {change.spec}")
            channel = monitoring.create_email_channel(change.spec)
            names[change.spec] = channel.name
            made[f"channel:{change.spec}"] = channel.name
    check_id = plan.check_id
    for change in plan.changes:
        if change.kind == "check" and change.action == "create":
            on_progress(f"making the uptime check {change.title}")
            check = monitoring.create_check(change.spec)
            check_id = check.check_id
            made["check"] = check.name
        elif change.kind == "check" and change.action == "update":
            on_progress(f"updating the uptime check {change.title}")
            made["check"] = monitoring.replace_check(change.live.name, change.spec).name

    def resolved(spec: PolicySpec) -> PolicySpec:
        channels = tuple(
            names[channel.removeprefix(NEW_CHANNEL)] if channel.startswith(NEW_CHANNEL) else channel
            for channel in spec.channels
        )
        threshold = replace(spec.threshold, filter=spec.threshold.filter.replace(NEW_CHECK_ID, check_id))
        return replace(spec, channels=channels, threshold=threshold)

    for change in plan.changes:
        if change.kind != "alert" or change.action == "delete":
            continue
        if change.action == "create":
            on_progress(f"making the alert {change.title}")
            made[f"alert:{change.alert}"] = monitoring.create_policy(resolved(change.spec)).name
        else:
            on_progress(f"updating the alert {change.title}")
            made[f"alert:{change.alert}"] = monitoring.replace_policy(change.live, resolved(change.spec)).name
    for change in plan.changes:
        if change.kind == "alert" and change.action == "delete":
            on_progress(f"deleting the alert {change.title}")
            monitoring.delete_policy(change.live.name)
    for change in plan.changes:
        if change.kind == "check" and change.action == "delete":
            on_progress(f"deleting the uptime check {change.title}")
            monitoring.delete_check(change.live.name)
    return made
