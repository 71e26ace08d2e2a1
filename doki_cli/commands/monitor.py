"""`doki monitor`: the uptime check and alerts of doki.toml's [monitoring], planned and applied like a deploy; and
`doki monitor status`, what they say now."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from doki_cli.context import app_of
from doki_cli.globaloptions import DokiTyper
from doki_cli.options import DryRunOption, ServiceOption, YesOption

if TYPE_CHECKING:
    from doki_cli.context import App

app = DokiTyper(
    help="Uptime check and alerts from doki.toml's [monitoring]: `doki monitor` applies them, `status` reads them.",
    invoke_without_command=True,
)


@app.callback()
def monitor(ctx: typer.Context, dry_run: DryRunOption = False, yes: YesOption = False) -> None:
    """Plan the uptime check of `/`, the alerts (uptime, 5xx ratio, p95 latency) and their email channels from
    doki.toml's [monitoring], then apply the plan; nothing that is already as declared is written again."""
    if ctx.invoked_subcommand is not None:
        if dry_run or yes:
            from doki_cli.errors import Code, DokiError

            raise DokiError(
                Code.BAD_OPTION,
                f"--dry-run and --yes belong to `doki monitor` itself, not to `doki monitor {ctx.invoked_subcommand}`",
                "drop them, or run `doki monitor --dry-run` to see the plan",
            )
        return
    from doki_cli.commands._plan import DRY_RUN_CHANGES, DRY_RUN_NO_CHANGES, confirm_plan
    from doki_cli.monitoring.executor import apply_plan, plan_data, plan_lines
    from doki_cli.monitoring.planner import plan_monitoring

    doki = app_of(ctx)
    out, config, google = doki.output, doki.config, doki.google
    out.progress(f"reading the monitoring of {config.name}")
    plan = plan_monitoring(google.monitoring, config, service_exists=lambda: google.run.get(config.name) is not None)
    for text, style in plan_lines(plan):
        out.line(text, style=style)
    if dry_run:
        out.data({"plan": plan_data(plan)})
        raise typer.Exit(DRY_RUN_NO_CHANGES if plan.empty else DRY_RUN_CHANGES)
    if plan.empty:
        out.data({"plan": plan_data(plan), "applied": {}})
        return
    if not yes:
        confirm_plan(doki, config.name, plan_data(plan))
    made = apply_plan(google.monitoring, plan, on_progress=out.progress)
    out.data({"plan": plan_data(plan), "applied": made})
    out.line(f"Monitoring of {config.name} is as doki.toml declares it; `doki monitor status` shows what it says.")


@app.command("status")
def status(ctx: typer.Context, service: ServiceOption = None) -> None:
    """The uptime check's newest result from each location, each alert's value now against its threshold, and
    where alerts go."""
    doki = app_of(ctx)
    doki.use_service(service)
    _status(doki)


def _status(doki: App) -> None:
    from doki_cli.monitoring.spec import ALERTS
    from doki_cli.monitoring.status import alert_state, alert_value_text, channel_text, check_state
    from doki_cli.waiting import duration_text

    out, config, google = doki.output, doki.config, doki.google
    monitoring = google.monitoring
    now = doki.factory.now().timestamp()
    checks = [check_state(monitoring, check, now) for check in monitoring.checks(config.name, config.region)]
    policies = sorted(
        monitoring.policies(config.name, config.region),
        key=lambda policy: ALERTS.index(policy.spec.alert) if policy.spec.alert in ALERTS else len(ALERTS),
    )
    alerts = [alert_state(monitoring, policy, now) for policy in policies]
    channels = {channel.name: channel for channel in monitoring.email_channels()}
    data: dict[str, Any] = {
        "service": config.name,
        "location": config.region,
        "project": config.project,
        "uptime_checks": [
            {
                "name": state.check.name,
                "display_name": state.check.spec.display_name,
                "state": state.state,
                "period_seconds": state.check.spec.period_seconds,
                "locations": state.results,
                "latency_ms": None if state.latency_ms is None else round(state.latency_ms, 1),
            }
            for state in checks
        ],
        "alerts": [
            {
                "name": state.policy.name,
                "display_name": state.policy.spec.display_name,
                "alert": state.policy.spec.alert,
                "enabled": state.policy.spec.enabled,
                "value": state.value,
                "threshold": state.policy.spec.threshold.value,
                "above_threshold": state.above,
                "notify": [channels[name].email if name in channels else name for name in state.policy.spec.channels],
            }
            for state in alerts
        ],
    }
    out.data(data)
    out.line(f"Monitoring of {config.name} ({config.region}) in project {config.project}:")
    if not checks and not alerts:
        out.line("  no uptime check or alert: declare them in doki.toml's [monitoring] and run `doki monitor`")
        return
    for check in checks:
        check_spec = check.check.spec
        failing = sorted(location for location, ok in check.results.items() if not ok)
        # How many locations say what the state says: passing at 6 of 6, failing at 4 of 6.
        agree = len(failing) if check.state == "failing" else len(check.results) - len(failing)
        where = f" at {agree} of {len(check.results)} locations" if check.results else ""
        # How fast it answers, when it does.
        latency = f", {check.latency_ms:.0f} ms" if check.latency_ms is not None and check.state == "passing" else ""
        style = {"passing": "green", "failing": "red"}.get(check.state)
        out.line(
            f"  uptime check {check_spec.display_name} (GET {check_spec.path} every "
            f"{duration_text(check_spec.period_seconds)}): "
            f"{check.state}{where}{latency}",
            style=style,
        )
        if failing:
            out.line(f"      failing at {', '.join(failing)}", style="red")
    for state in alerts:
        spec = state.policy.spec
        verdict = {True: "ABOVE THRESHOLD", False: "ok", None: "no data"}[state.above]
        if not spec.enabled:
            verdict = "disabled"
        style = {"ABOVE THRESHOLD": "red", "ok": "green"}.get(verdict)
        out.line(f"  alert {spec.display_name}: {verdict}, {alert_value_text(state)}", style=style)
    for name in sorted({name for state in alerts for name in state.policy.spec.channels}):
        out.line(f"  notifies {channel_text(channels[name]) if name in channels else name}")
