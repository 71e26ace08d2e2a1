"""`doki scale`: instances, memory, cpu and concurrency of the live service, validated as doki.toml is, planned and
confirmed as a deploy is.

The options are gcloud's words with gcloud's meanings (see `doki_cli.options`): `--min`/`--max` the service's own
minimum and maximum, `--min-instances`/`--max-instances` each new revision's. gcloud's `--timeout` (the request
timeout) is not taken here: `--timeout` is the wait's, on every command that waits."""

from __future__ import annotations

from typing import Annotated

import typer

from doki_cli.context import app_of
from doki_cli.errors import Code, DokiError
from doki_cli.options import (
    ConcurrencyOption,
    CpuOption,
    DryRunOption,
    MaxInstancesOption,
    MemoryOption,
    MinInstancesOption,
    NoWaitOption,
    ServiceMaxOption,
    ServiceMinOption,
    ServiceOption,
    TimeoutOption,
    YesOption,
)


def scale(
    ctx: typer.Context,
    service_min: ServiceMinOption = None,
    service_max: ServiceMaxOption = None,
    min_instances: MinInstancesOption = None,
    max_instances: MaxInstancesOption = None,
    memory: MemoryOption = None,
    cpu: CpuOption = None,
    concurrency: ConcurrencyOption = None,
    save: Annotated[bool, typer.Option("--save", help="Also write the revision's new values to doki.toml.")] = False,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    timeout: TimeoutOption = None,
    no_wait: NoWaitOption = False,
    service: ServiceOption = None,
) -> None:
    """Change scaling and resources on the live service: planned, then one write, nothing else changed."""
    from doki_cli.commands._plan import review
    from doki_cli.commands._wait import Waits, bounded, not_waited
    from doki_cli.deploy.executor import apply_edit, plan_data
    from doki_cli.deploy.planner import (
        SCALING_FIELDS,
        SERVICE_SCALING_FIELDS,
        edit_with_cost,
        plan_scaling,
        read_live,
        shown_value,
    )
    from doki_cli.model import Scaling

    app = app_of(ctx)
    app.use_service(service)
    app.check_save(save)
    out, config = app.output, app.config
    scaling = Scaling(min_instances, max_instances, memory, cpu, concurrency, service_min, service_max)
    keys = [*SCALING_FIELDS, *(key for key, _ in SERVICE_SCALING_FIELDS)]
    given = {key: getattr(scaling, key) for key in keys if getattr(scaling, key) is not None}
    if not given:
        raise DokiError(
            Code.NOTHING_TO_CHANGE,
            "no value given",
            "pass --min, --max, --min-instances, --max-instances, --memory, --cpu or --concurrency",
        )
    live = read_live(app.google.run, config.name)
    plan = edit_with_cost(
        plan_scaling(app.google.run, live, scaling), app.google.billing.cloud_run_prices, config.region
    )
    review(app, plan, dry_run=dry_run, yes=yes)
    before = {key: getattr(live, key) if key.startswith("service_") else getattr(live.spec, key) for key in given}
    changes = {key: value for key, value in given.items() if before[key] != value}
    waits = Waits.given(timeout, no_wait)
    if not plan.empty:
        with bounded(waits):
            applied = apply_edit(app.google.run, plan, on_progress=out.progress, timeout=waits.timeout, wait=waits.wait)
        if not waits.wait:
            not_waited(out, config.name, applied.latest_created)
        if not changes:
            out.note(f"{live.stuck} had not become Ready: made a new revision with the same values")
    to_save = {key: value for key, value in given.items() if key in SCALING_FIELDS}
    saved = None
    if save and to_save:
        from doki_cli.tomledit import save as save_toml

        saved = save_toml(config, to_save)
    out.data({"changed": changes, "saved_to": saved, "plan": plan_data(plan), **waits.data()})
    shown = ", ".join(
        f"{k.replace('_', ' ')} {shown_value(k, before[k])} -> {shown_value(k, v)}" for k, v in changes.items()
    )
    out.line(f"Scaled {config.name}: {shown}" if changes else f"{config.name} already has these values")
    revision_min = live.spec.min_instances if min_instances is None else min_instances
    if service_min is not None and revision_min > service_min:
        # Each revision that takes traffic keeps its own minimum whatever the service's says; Google advises one of
        # the two, the service's (https://cloud.google.com/run/docs/configuring/min-instances).
        out.note(
            f"each revision that takes traffic still keeps its own minimum of {revision_min}: `doki scale "
            "--min-instances 0` leaves the minimum to the service"
        )
    if saved:
        out.note(f"written to [{saved}] in {config.path}")
    elif to_save and changes.keys() & to_save.keys() and app.service is None:
        # Under --service there is no doki.toml of this service to go stale, and --save is refused.
        out.note("doki.toml still has the old values: the next `doki deploy` restores them (use --save)")
    if changes.keys() - to_save.keys() and app.service is None:
        out.note("the service's --min and --max are not in doki.toml: deploys keep them as they are")
