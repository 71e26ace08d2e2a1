"""`doki logs`: the Cloud Run service's recent log entries, and with --follow its new ones live until Ctrl-C."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from doki_cli.context import App, app_of
from doki_cli.errors import Code, DokiError

if TYPE_CHECKING:
    from rich.text import Text

    from doki_cli.gcp.logs import LogLine
    from doki_cli.output import Output

FollowOption = Annotated[
    bool, typer.Option("--follow", "-f", help="After the recent entries, print new ones as they arrive, until Ctrl-C.")
]
SinceOption = Annotated[
    str | None, typer.Option("--since", help="Only entries from this long ago on: 30s, 10m, 2h or 1d.")
]
SeverityOption = Annotated[
    str | None,
    typer.Option("--severity", help="Only entries at this severity or above: DEBUG, INFO, WARNING, ERROR, ..."),
]
RevisionOption = Annotated[
    str | None, typer.Option("--revision", help="Only this revision's entries (e.g. api-00002-abc).")
]
LimitOption = Annotated[int, typer.Option("--limit", min=1, help="How many of the newest entries to show.")]

# The severity column is as wide as WARNING, the widest name that is common.
SEVERITY_WIDTH = 7
SEVERITY_STYLES = {
    "DEBUG": "dim",
    "WARNING": "yellow",
    "ERROR": "red",
    "CRITICAL": "red",
    "ALERT": "red",
    "EMERGENCY": "red",
}


def _human(line: LogLine) -> Text:
    """`2026-11-27T03:10:05.123Z  WARNING  api-00002-abc  message  trace=<id>`, the severity coloured."""
    from rich.text import Text

    text = Text(f"{line.time}  ")
    text.append(line.severity, style=SEVERITY_STYLES.get(line.severity, ""))
    text.append(" " * (SEVERITY_WIDTH - len(line.severity)) + f"  {line.revision or '-'}  {line.message}")
    if line.trace:
        text.append(f"  trace={line.trace}")
    return text


def _json_line(entry: dict[str, Any]) -> None:
    """One entry as one JSON line, flushed at once so a pipe reads it as it happens."""
    import json
    import sys

    sys.stdout.write(json.dumps(entry, default=str) + "\n")
    sys.stdout.flush()


def _print(out: Output, line: LogLine) -> None:
    if out.json_mode:
        _json_line(line.as_dict())
    else:
        out.out.print(_human(line))


def logs(
    ctx: typer.Context,
    follow: FollowOption = False,
    since: SinceOption = None,
    severity: SeverityOption = None,
    revision: RevisionOption = None,
    limit: LimitOption = 50,
) -> None:
    """Show the service's newest log entries, oldest first; --follow keeps printing new ones."""
    import os
    import sys

    from doki_cli.gcp.logs import LogQuery

    app = app_of(ctx)
    out, config = app.output, app.config
    query = LogQuery.from_options(config.name, config.region, since=since, severity=severity, revision=revision)
    adapter = app.google.logs

    if not follow:
        lines = adapter.recent(query, limit)
        out.data([line.as_dict() for line in lines])
        if not out.json_mode:
            for line in lines:
                out.out.print(_human(line))
        if not lines:
            _require_service(app)
            out.note(f"No log entries for {config.name} in {config.region} match.")
        return

    out.note(f"Following the logs of {config.name} in {config.region}; Ctrl-C stops.")
    try:
        with adapter.follow(query, limit, on_notice=out.note) as entries:
            for line in entries:
                _print(out, line)
    except BrokenPipeError:
        # The reader left (`doki logs -f | head`): stop quietly, and point stdout at nothing so the flush at exit
        # does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except BaseException as exc:
        from doki_cli.interrupts import is_interrupt

        if is_interrupt(exc):
            return  # Ctrl-C is how a follow ends: not a failure
        raise


def _require_service(app: App) -> None:
    """No entries at all may mean no such service (a wrong project, region or name): say that instead.

    Only then is Cloud Run asked, and a caller who may read logs but not services gets the plain answer."""
    from doki_cli.gcp.run import service_not_found

    config, run = app.config, app.google.run
    try:
        exists = run.get(config.name) is not None
    except DokiError as err:
        if err.code == Code.PERMISSION_DENIED:
            return
        raise
    if not exists:
        raise service_not_found(run.path(config.name))
