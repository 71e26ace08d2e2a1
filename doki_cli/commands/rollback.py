"""`doki rollback [REVISION]`: all traffic back to an earlier Ready revision, planned, then one traffic-only update."""

from __future__ import annotations

from typing import Annotated

import typer

from doki_cli.context import app_of
from doki_cli.errors import Code, DokiError
from doki_cli.options import DryRunOption, NoWaitOption, ServiceOption, TimeoutOption


def rollback(
    ctx: typer.Context,
    revision: Annotated[str | None, typer.Argument(help="Revision to serve [default: the previous Ready one].")] = None,
    dry_run: DryRunOption = False,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Apply without asking (and pick the previous Ready revision).")
    ] = False,
    timeout: TimeoutOption = None,
    no_wait: NoWaitOption = False,
    service: ServiceOption = None,
) -> None:
    """Pin 100% of traffic to REVISION (or the previous Ready revision). `doki deploy` later returns it to latest."""
    from doki_cli.commands._plan import can_ask, no_answer, review
    from doki_cli.commands._wait import Waits, bounded
    from doki_cli.deploy.executor import apply_edit, plan_data
    from doki_cli.deploy.planner import earlier_ready, named_revision, plan_pin, read_live

    app = app_of(ctx)
    app.use_service(service)
    out, config, run = app.output, app.config, app.google.run
    live = read_live(run, config.name)
    revisions = run.revisions(config.name)
    serving = max(revisions, key=lambda r: r.percent, default=None)
    before = ", ".join(f"{r.percent}% {r.name}" for r in revisions if r.percent) or "nothing"
    picked = False  # from a list just shown: the pick is the confirmation
    if revision is None:
        older = earlier_ready(revisions)
        if not older:
            raise DokiError(
                Code.NO_EARLIER_REVISION,
                f"{config.name} has no Ready revision older than {serving.name if serving else 'the current one'}",
                "name one with `doki rollback REVISION` (see `doki status`)",
            )
        if yes or dry_run or not can_ask(app):  # a dry run asks nothing: it plans the previous one
            target = older[0]
        else:
            for index, candidate in enumerate(older, start=1):
                out.line(f"  {index}. {candidate.name}  {candidate.deployed}  {candidate.image}")
            try:
                choice = typer.prompt("Serve which revision?", default=1, type=int)
            except typer.Abort:
                raise no_answer() from None
            if not 1 <= choice <= len(older):
                raise DokiError(
                    Code.BAD_CHOICE,
                    f"{choice} is not in the list; nothing was changed",
                    "run again and pick a listed number",
                )
            target, picked = older[choice - 1], True
    else:
        target = named_revision(live, revisions, revision)
    plan = plan_pin(run, live, revisions, target.name)
    review(app, plan, dry_run=dry_run, yes=yes or picked)
    if plan.empty:
        out.data({"revision": target.name, "changed": False, "plan": plan_data(plan)})
        out.line(f"{target.name} already serves all traffic")
        return
    waits = Waits.given(timeout, no_wait)
    with bounded(waits):
        live = apply_edit(run, plan, on_progress=out.progress, timeout=waits.timeout, wait=waits.wait)
    out.data(
        {
            "revision": target.name,
            "changed": True,
            "image": target.image,
            "created": target.created_at,
            "previous": serving.name if serving else None,
            "newest_not_ready": live.stuck,
            "plan": plan_data(plan),
            **waits.data(),
        }
    )
    if not waits.wait:
        # Cloud Run routes the pinned traffic once the operation ends: what serves now is not yet the pin.
        out.line(f"Traffic is moving to {target.name} (--no-wait): `doki status` shows when it serves all of it")
        return
    # Said from where Cloud Run routes traffic now, as the update read it back after its wait.
    now = ", ".join(f"{percent}% {name}" for name, percent in live.shares.items()) or "nothing"
    where = f"All traffic now goes to {target.name}" if live.shares == {target.name: 100} else f"Traffic now: {now}"
    out.line(f"{where} (image {target.image}, deployed {target.deployed}); before: {before}.")
    if live.stuck:
        reason = " ".join(live.message.split())  # Cloud Run's message may hold line breaks
        out.note(f"The newest revision, {live.stuck}, is not Ready ({reason}): what serves is unaffected.")
    out.note("The next `doki deploy` returns traffic to the latest revision.")
