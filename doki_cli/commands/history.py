"""`doki history`: the service's revisions, newest first, with what doki recorded of each when it made it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from doki_cli.context import app_of
from doki_cli.options import ServiceOption

if TYPE_CHECKING:
    from doki_cli.model import LiveService, RevisionInfo

LimitOption = Annotated[int, typer.Option("--limit", min=1, help="How many of the newest revisions to show.")]
# What a column shows when doki recorded nothing there: a revision made by gcloud, the console or Terraform.
UNKNOWN = "-"
COLUMNS = ("REVISION", "CREATED", "RESULT", "TRAFFIC", "COMMAND", "COMMIT", "BY", "FROM", "IMAGE")


def history(ctx: typer.Context, limit: LimitOption = 20, service: ServiceOption = None) -> None:
    """Each revision, newest first: when, by which command, of which commit and image, who and from where, how it
    went, and the traffic it serves now (* marks what serves)."""
    app = app_of(ctx)
    app.use_service(service)
    out, config, google = app.output, app.config, app.google
    from doki_cli.deploy.planner import read_live

    live = read_live(google.run, config.name)
    entries = [_entry(revision, live) for revision in google.run.revisions(config.name, limit, live=live)]
    out.data(entries)
    rows = [COLUMNS, *(_row(entry) for entry in entries)]
    widths = [max(len(row[column]) for row in rows) for column in range(len(COLUMNS))]
    for index, row in enumerate(rows):
        mark = "*" if index and entries[index - 1]["traffic"] else " "
        out.line((mark + " " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))).rstrip())
    # Why each failed, below the table: a message too long for a column.
    for entry in entries:
        if entry["message"]:
            out.line(f"  {entry['revision']}: {entry['message']}")


def _entry(revision: RevisionInfo, live: LiveService) -> dict[str, Any]:
    """One revision as `--json` reports it (docs/cli.md lists the fields)."""
    from doki_cli.model import CHECKS_FAILED

    result, reason, message = _result(revision)
    # A release whose checks failed put the traffic back and left a note on the service: the revision is Ready, yet
    # it failed.
    noted, _, why = live.annotations.get(CHECKS_FAILED, "").partition(" ")
    if noted == revision.name and not revision.percent:
        result, reason, message = "failed", "CHECKS_FAILED", why
    known = revision.provenance
    return {
        "revision": revision.name,
        "created": revision.created_at,
        "result": result,
        "reason": reason or None,
        "message": message or None,
        "image": revision.image,
        "traffic": revision.percent,
        "tags": list(revision.tags),
        "by_doki": known is not None,
        "command": (known.command or None) if known else None,
        "commit": (known.commit or None) if known else None,
        "by": (known.by or None) if known else None,
        "from": (known.source or None) if known else None,
    }


def _result(revision: RevisionInfo) -> tuple[str, str, str]:
    """What became of it, why it failed (Cloud Run's reason) and Cloud Run's message, on one line."""
    if revision.failed:
        return "failed", revision.reason, " ".join(revision.message.split())
    if revision.ready:
        return ("serving" if revision.percent else "retired"), "", ""
    return "starting", "", ""


def _row(entry: dict[str, Any]) -> tuple[str, ...]:
    result = entry["result"] + (f" ({entry['reason']})" if entry["reason"] else "")
    traffic = f"{entry['traffic']}%" + "".join(f" tag {tag}" for tag in entry["tags"])
    command = entry["command"] or ("doki" if entry["by_doki"] else UNKNOWN)
    commit = entry["commit"]
    # The short commit doki tags images with, and -dirty: a commit names itself by its first 12 hex digits.
    short = (commit[:12] + ("-dirty" if commit.endswith("-dirty") else "")) if commit else UNKNOWN
    return (
        entry["revision"],
        entry["created"] or UNKNOWN,
        result,
        traffic,
        command,
        short,
        entry["by"] or UNKNOWN,
        entry["from"] or UNKNOWN,
        entry["image"] or UNKNOWN,
    )
