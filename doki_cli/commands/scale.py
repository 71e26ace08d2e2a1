"""`doki scale`: instances, memory, cpu and concurrency of the live service, validated as doki.toml is, planned and
confirmed as a deploy is."""

from __future__ import annotations

from typing import Annotated

import typer

from doki_cli.context import app_of
from doki_cli.errors import Code, DokiError
from doki_cli.options import DryRunOption, ServiceOption, YesOption


def scale(
    ctx: typer.Context,
    min_instances: Annotated[int | None, typer.Option("--min", help="Minimum instances (1+ keeps one warm).")] = None,
    max_instances: Annotated[int | None, typer.Option("--max", help="Maximum instances.")] = None,
    memory: Annotated[str | None, typer.Option("--memory", help="Memory per instance, e.g. 1Gi.")] = None,
    cpu: Annotated[str | None, typer.Option("--cpu", help="CPUs per instance: 1, 2, 4, 6, 8 or below 1.")] = None,
    concurrency: Annotated[int | None, typer.Option("--concurrency", help="Requests per instance.")] = None,
    save: Annotated[bool, typer.Option("--save", help="Also write the new values to doki.toml.")] = False,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    service: ServiceOption = None,
) -> None:
    """Change scaling and resources on the live service: planned, then one new revision, nothing else changed."""
    from doki_cli.commands._plan import review
    from doki_cli.deploy.executor import apply_edit, plan_data
    from doki_cli.deploy.planner import SCALING_FIELDS, plan_scaling, read_live
    from doki_cli.model import Scaling

    app = app_of(ctx)
    app.use_service(service)
    app.check_save(save)
    out, config = app.output, app.config
    scaling = Scaling(min_instances, max_instances, memory, cpu, concurrency)
    given = {key: getattr(scaling, key) for key in SCALING_FIELDS if getattr(scaling, key) is not None}
    if not given:
        raise DokiError(Code.NOTHING_TO_CHANGE, "no value given", "pass --min, --max, --memory, --cpu or --concurrency")
    live = read_live(app.google.run, config.name)
    plan = plan_scaling(app.google.run, live, scaling)
    review(app, plan, dry_run=dry_run, yes=yes)
    changes = {key: value for key, value in given.items() if getattr(live.spec, key) != value}
    if not plan.empty:
        apply_edit(app.google.run, plan, on_progress=out.progress)
        if not changes:
            out.note(f"{live.stuck} had not become Ready: made a new revision with the same values")
    saved = None
    if save:
        from doki_cli.tomledit import save as save_toml

        saved = save_toml(config, given)
    out.data({"changed": changes, "saved_to": saved, "plan": plan_data(plan)})
    shown = ", ".join(f"{k.replace('_', ' ')} {getattr(live.spec, k)} -> {v}" for k, v in changes.items())
    out.line(f"Scaled {config.name}: {shown}" if changes else f"{config.name} already has these values")
    if saved:
        out.note(f"written to [{saved}] in {config.path}")
    elif changes:
        out.note("doki.toml still has the old values: the next `doki deploy` restores them (use --save)")
