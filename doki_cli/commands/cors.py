"""`doki cors`: the live service's ALLOWED_ORIGINS, listed or changed: planned, then one new revision, nothing else
changed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from doki_cli.commands._wait import Waits
from doki_cli.context import app_of
from doki_cli.errors import Code, DokiError
from doki_cli.globaloptions import DokiTyper
from doki_cli.options import DryRunOption, NoWaitOption, ServiceOption, TimeoutOption, YesOption

if TYPE_CHECKING:
    from doki_cli.model import LiveService

app = DokiTyper(help="The origins browsers may call the backend from (ALLOWED_ORIGINS).", no_args_is_help=True)
ENV = "ALLOWED_ORIGINS"
OriginsArgument = Annotated[
    list[str],
    typer.Argument(metavar="ORIGIN", help="Origins as scheme://host[:port], e.g. https://app.example.com."),
]
SaveOption = Annotated[bool, typer.Option("--save", help="Also write the new list to doki.toml.")]


def _current(live: LiveService) -> list[str]:
    return [o for o in (part.strip() for part in live.spec.env.get(ENV, "").split(",")) if o]


def _live(ctx: typer.Context) -> LiveService:
    from doki_cli.deploy.planner import read_live

    app = app_of(ctx)
    return read_live(app.google.run, app.config.name)


def _check(origins: list[str]) -> None:
    from doki.origins import origin_problem

    problems = []
    for origin in origins:
        if origin == "*":
            problems.append("'*' is refused: with credentials on, browsers need exact origins")
        elif (problem := origin_problem(origin)) is not None:
            problems.append(problem)
    if problems:
        raise DokiError(
            Code.BAD_ORIGIN,
            "; ".join(problems),
            "write each origin as scheme://host[:port], e.g. https://app.example.com",
        )


def _apply(
    ctx: typer.Context, live: LiveService, origins: list[str], save: bool, dry_run: bool, yes: bool, waits: Waits
) -> None:
    from doki_cli.commands._plan import review
    from doki_cli.commands._wait import bounded, not_waited
    from doki_cli.deploy.executor import apply_edit, plan_data
    from doki_cli.deploy.planner import plan_env

    app = app_of(ctx)
    out, config = app.output, app.config
    changed = origins != _current(live)
    # The same origins written as they are live: spelled differently ("a, b"), they are no change.
    value = ",".join(origins) if changed else live.spec.env.get(ENV, "")
    plan = plan_env(app.google.run, live, ENV, value)
    review(app, plan, dry_run=dry_run, yes=yes)
    if not plan.empty:
        with bounded(waits):
            applied = apply_edit(app.google.run, plan, on_progress=out.progress, timeout=waits.timeout, wait=waits.wait)
        if not waits.wait:
            not_waited(out, config.name, applied.latest_created)
        if not changed:
            out.note(f"{live.stuck} had not become Ready: made a new revision with the same origins")
    saved = None
    if save:
        from doki_cli.tomledit import save as save_toml

        saved = save_toml(config, {ENV: origins}, table="env")
    out.data({"origins": origins, "changed": changed, "saved_to": saved, "plan": plan_data(plan), **waits.data()})
    out.line(("Allowed origins now: " if changed else "Allowed origins unchanged: ") + (", ".join(origins) or "none"))
    if saved:
        out.note(f"written to [{saved}] in {config.path}")
    elif changed and app.service is None:
        # Under --service there is no doki.toml of this service to go stale, and --save is refused.
        out.note("doki.toml still lists the old origins: the next `doki deploy` restores them (use --save)")


@app.command("list")
def list_(ctx: typer.Context, service: ServiceOption = None) -> None:
    """The origins the live service allows."""
    app_of(ctx).use_service(service)
    out = app_of(ctx).output
    origins = _current(_live(ctx))
    out.data({"origins": origins})
    for origin in origins:
        out.line(origin)


@app.command("add")
def add(
    ctx: typer.Context,
    origins: OriginsArgument,
    save: SaveOption = False,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    timeout: TimeoutOption = None,
    no_wait: NoWaitOption = False,
    service: ServiceOption = None,
) -> None:
    """Allow more origins."""
    app_of(ctx).use_service(service)
    app_of(ctx).check_save(save)
    _check(origins)
    live = _live(ctx)
    before = _current(live)
    added = before + [o for o in origins if o not in before]
    _apply(ctx, live, added, save, dry_run, yes, Waits.given(timeout, no_wait))


@app.command("remove")
def remove(
    ctx: typer.Context,
    origins: OriginsArgument,
    save: SaveOption = False,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    timeout: TimeoutOption = None,
    no_wait: NoWaitOption = False,
    service: ServiceOption = None,
) -> None:
    """Stop allowing origins."""
    app_of(ctx).use_service(service)
    app_of(ctx).check_save(save)
    live = _live(ctx)
    before = _current(live)
    unknown = [o for o in origins if o not in before]
    if unknown:
        raise DokiError(
            Code.UNKNOWN_ORIGIN,
            f"{', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'} not allowed now; nothing was changed",
            f"allowed now: {', '.join(before) or 'none'}",
        )
    remaining = [o for o in before if o not in origins]
    if not remaining:
        # An empty list stops the backend in production and means the localhost defaults in development:
        # either way a revision nobody asked for.
        raise DokiError(
            Code.NO_ORIGINS_LEFT,
            "that would leave ALLOWED_ORIGINS empty, which the backend refuses in production; nothing was changed",
            "keep at least one origin, or replace them all with `doki cors set ORIGIN...`",
        )
    _apply(ctx, live, remaining, save, dry_run, yes, Waits.given(timeout, no_wait))


@app.command("set")
def set_(
    ctx: typer.Context,
    origins: OriginsArgument,
    save: SaveOption = False,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    timeout: TimeoutOption = None,
    no_wait: NoWaitOption = False,
    service: ServiceOption = None,
) -> None:
    """Allow exactly these origins."""
    app_of(ctx).use_service(service)
    app_of(ctx).check_save(save)
    _check(origins)
    _apply(ctx, _live(ctx), list(dict.fromkeys(origins)), save, dry_run, yes, Waits.given(timeout, no_wait))
