"""`doki logs`: the Cloud Run service's recent log entries, and with --follow its new ones live until Ctrl-C."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer

from doki_cli.context import App, app_of
from doki_cli.errors import Code, DokiError
from doki_cli.options import ServiceOption

if TYPE_CHECKING:
    from rich.text import Text

    from doki_cli.gcp.logs import LogLine, LogQuery
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

_SINCE = re.compile(r"(\d+)([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}

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


def parse_since(text: str) -> timedelta:
    """`30s`, `10m`, `2h` or `1d` as a duration; anything else is a DokiError that shows the format."""
    match = _SINCE.fullmatch(text.strip())
    if match is None or int(match.group(1)) == 0:
        raise DokiError(
            Code.BAD_OPTION, f"--since {text} is not a duration", "use a whole number and a unit: 30s, 10m, 2h or 1d"
        )
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def parse_severity(text: str) -> str:
    """A LogSeverity name in any case, upper-cased; anything else is a DokiError listing the names."""
    from doki_cli.gcp.logs import SEVERITIES

    name = text.strip().upper()
    if name not in SEVERITIES:
        raise DokiError(Code.BAD_OPTION, f"--severity {text} is not a severity", f"use one of: {', '.join(SEVERITIES)}")
    return name


def query_from_options(
    service: str, region: str, *, since: str | None, severity: str | None, revision: str | None
) -> LogQuery:
    """The query `doki logs`'s options describe, checked; a bad option is a DokiError saying the fix."""
    from doki_cli.gcp.logs import LogQuery

    short_revision = None
    if revision is not None:
        # A full resource name (projects/.../revisions/api-00002-abc) names the same revision as its last part.
        short_revision = revision.strip().rstrip("/").rsplit("/", 1)[-1]
        if not short_revision:
            raise DokiError(Code.BAD_OPTION, "--revision is empty", "name a revision, e.g. --revision api-00002-abc")
    return LogQuery(
        service,
        region,
        severity=parse_severity(severity) if severity is not None else None,
        since=parse_since(since) if since is not None else None,
        revision=short_revision,
    )


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
    service: ServiceOption = None,
) -> None:
    """Show the service's newest log entries, oldest first; --follow keeps printing new ones."""
    import os
    import sys

    app = app_of(ctx)
    app.use_service(service)
    out, config = app.output, app.config
    query = query_from_options(config.name, config.region, since=since, severity=severity, revision=revision)
    # No credentials found is a DokiError from the client factory; an expired login is one from doki_cli.main.
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
    from doki_cli.errors import service_not_found

    config, run = app.config, app.google.run
    try:
        exists = run.get(config.name) is not None
    except DokiError as err:
        if err.code == Code.PERMISSION_DENIED:
            return
        raise
    if not exists:
        raise service_not_found(run.path(config.name))
