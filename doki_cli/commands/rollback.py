"""`doki rollback [REVISION]`: all traffic back to an earlier Ready revision, in one traffic-only update."""

from __future__ import annotations

from typing import Annotated

import typer

from doki_cli.commands._service import setup
from doki_cli.errors import DokiError


def rollback(
    ctx: typer.Context,
    revision: Annotated[str | None, typer.Argument(help="Revision to serve [default: the previous Ready one].")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Pick the previous Ready revision without asking.")] = False,
) -> None:
    """Pin 100% of traffic to REVISION (or the previous Ready revision). `doki deploy` later returns it to latest."""
    import sys

    from doki_cli.model import Edit, pinned

    options, config, google = setup(ctx)
    out = options.output
    revisions = google.run.revisions(config.name)
    ready = [r for r in revisions if r.ready]
    serving = max(revisions, key=lambda r: r.percent, default=None)
    before = ", ".join(f"{r.percent}% {r.name}" for r in revisions if r.percent) or "nothing"
    if revision is None:
        # The previous Ready revision: the newest one older than what serves now.
        older = [r for r in ready if serving is None or (r.created and serving.created and r.created < serving.created)]
        if not older:
            raise DokiError(
                "no_earlier_revision",
                f"{config.name} has no Ready revision older than {serving.name if serving else 'the current one'}",
                "name one with `doki rollback REVISION` (see `doki status`)",
            )
        if yes or out.json_mode or not sys.stdin.isatty():
            target = older[0]
        else:
            for index, candidate in enumerate(older, start=1):
                out.line(f"  {index}. {candidate.name}  {candidate.deployed}  {candidate.image}")
            choice = typer.prompt("Serve which revision?", default=1, type=int)
            if not 1 <= choice <= len(older):
                raise DokiError(
                    "bad_choice",
                    f"{choice} is not in the list; nothing was changed",
                    "run again and pick a listed number",
                )
            target = older[choice - 1]
    else:
        named = next((r for r in revisions if r.name == revision), None)
        if named is None:
            names = ", ".join(r.name for r in ready) or "none"
            raise DokiError(
                "unknown_revision",
                f"{config.name} has no revision {revision!r}; nothing was changed",
                f"pick a Ready one: {names}",
            )
        if not named.ready:
            raise DokiError(
                "revision_not_ready",
                f"{named.name} is not Ready ({named.message or 'no reason given'}); nothing was changed",
                "pick a Ready revision (see `doki status`)",
            )
        target = named
    if serving is not None and serving.name == target.name and serving.percent == 100:
        out.data({"revision": target.name, "changed": False})
        out.line(f"{target.name} already serves all traffic")
        return
    live = google.run.update(
        config.name,
        lambda service: Edit(traffic=pinned(service.traffic, target.name)),
        on_progress=out.progress,
    )
    out.data(
        {
            "revision": target.name,
            "changed": True,
            "image": target.image,
            "created": target.created_at,
            "previous": serving.name if serving else None,
            "newest_not_ready": live.stuck,
        }
    )
    # Said from where Cloud Run routes traffic now, as the update read it back after its wait.
    now = ", ".join(f"{percent}% {name}" for name, percent in live.shares.items()) or "nothing"
    where = f"All traffic now goes to {target.name}" if live.shares == {target.name: 100} else f"Traffic now: {now}"
    out.line(f"{where} (image {target.image}, deployed {target.deployed}); before: {before}.")
    if live.stuck:
        reason = " ".join(live.message.split())  # Cloud Run's message may hold line breaks
        out.note(f"The newest revision, {live.stuck}, is not Ready ({reason}): what serves is unaffected.")
    out.note("The next `doki deploy` returns traffic to the latest revision.")
