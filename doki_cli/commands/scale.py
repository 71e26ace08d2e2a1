"""`doki scale`: instances, memory, cpu and concurrency of the live service, validated as doki.toml is."""

from __future__ import annotations

from typing import Annotated

import typer

from doki_cli.commands._service import setup
from doki_cli.errors import DokiError


def scale(
    ctx: typer.Context,
    min_instances: Annotated[int | None, typer.Option("--min", help="Minimum instances (1+ keeps one warm).")] = None,
    max_instances: Annotated[int | None, typer.Option("--max", help="Maximum instances.")] = None,
    memory: Annotated[str | None, typer.Option("--memory", help="Memory per instance, e.g. 1Gi.")] = None,
    cpu: Annotated[str | None, typer.Option("--cpu", help="CPUs per instance: 1, 2, 4, 6, 8 or below 1.")] = None,
    concurrency: Annotated[int | None, typer.Option("--concurrency", help="Requests per instance.")] = None,
    save: Annotated[bool, typer.Option("--save", help="Also write the new values to doki.toml.")] = False,
) -> None:
    """Change scaling and resources on the live service (one new revision, nothing else changed)."""
    from doki_cli.config import kept_setting_problems, resource_problems
    from doki_cli.gcp.run import service_not_found
    from doki_cli.model import Edit, Scaling

    options, config, google = setup(ctx)
    out = options.output
    asked = {"min_instances": min_instances, "max_instances": max_instances, "memory": memory, "cpu": cpu}
    asked["concurrency"] = concurrency
    given = {k: v for k, v in asked.items() if v is not None}
    if not given:
        raise DokiError("nothing_to_change", "no value given", "pass --min, --max, --memory, --cpu or --concurrency")
    live = google.run.get(config.name)
    if live is None:
        raise service_not_found(google.run.path(config.name))
    spec = live.spec
    problems = resource_problems(
        memory=memory or spec.memory,
        cpu=cpu or spec.cpu,
        concurrency=spec.concurrency if concurrency is None else concurrency,
        min_instances=spec.min_instances if min_instances is None else min_instances,
        max_instances=spec.max_instances if max_instances is None else max_instances,
    )
    problems += kept_setting_problems(
        cpu=cpu if cpu is not None and cpu != spec.cpu else None,
        memory=memory if memory is not None and memory != spec.memory else None,
        cpu_always_allocated=live.cpu_always_allocated,
        gen2=live.gen2,
        sidecar_cpus=live.sidecar_cpus,
        service=config.name,
    )
    if problems:
        raise DokiError("bad_scale", "; ".join(problems) + "; nothing was changed", "pick values Cloud Run accepts")
    changes = {k: v for k, v in given.items() if getattr(live.spec, k) != v}
    failed = live.stuck
    if changes or failed:
        scaling = Scaling(min_instances, max_instances, memory, cpu, concurrency)
        # Unchanged, the values are in the template already, and its revision never came up: a new one, then.
        edit = Edit(scaling=scaling, new_revision=not changes)
        google.run.update(config.name, lambda _: edit, on_progress=out.progress)
        if failed and not changes:
            out.note(f"{failed} had not become Ready: made a new revision with the same values")
    saved = None
    if save:
        from doki_cli.tomledit import save as save_toml

        saved = save_toml(config, given)
    out.data({"changed": changes, "saved_to": saved})
    shown = ", ".join(f"{k.replace('_', ' ')} {getattr(live.spec, k)} -> {v}" for k, v in changes.items())
    out.line(f"Scaled {config.name}: {shown}" if changes else f"{config.name} already has these values")
    if saved:
        out.note(f"written to [{saved}] in {config.path}")
    elif changes:
        out.note("doki.toml still has the old values: the next `doki deploy` restores them (use --save)")
