"""`doki secrets`: push values from .env into Secret Manager, list what exists, grant the runtime access."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from doki_cli.context import app_of
from doki_cli.globaloptions import DokiTyper

if TYPE_CHECKING:
    pass

app = DokiTyper(help="Secret Manager: push values, list them (never their values), grant access.", no_args_is_help=True)


@app.command("push")
def push(
    ctx: typer.Context,
    names: Annotated[
        list[str] | None, typer.Argument(help="Only these secrets (secret or variable names) [default: all declared].")
    ] = None,
    source: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="The .env file with the values, or - for NAME=value lines on stdin [default: .env beside doki.toml].",
        ),
    ] = None,
) -> None:
    """Create missing secrets and add a version where the value changed; unchanged values add nothing."""
    import sys

    from doki_cli.deploy.secrets import push as push_secrets
    from doki_cli.deploy.secrets import read_values

    app = app_of(ctx)
    out, config, google = app.output, app.config, app.google
    # The default .env is the project's, beside doki.toml (found from a subdirectory too); a path given is the user's
    # typing, relative to where they typed it. Named relative to the current directory when it is below it.
    source = source or _shown(config.root / ".env")
    values = read_values(
        source, sys.stdin, hint="pass --from PATH to your .env file, or --from - to read NAME=value lines from stdin"
    )
    results = push_secrets(google.secrets, config, values, names or [], source="stdin" if source == "-" else source)
    out.data(
        [
            {"secret": r.secret, "env": list(r.env_names), "outcome": r.outcome, "version": r.version, "note": r.note}
            for r in results
        ]
    )
    width = max(len(r.secret) for r in results)
    for r in results:
        version = f"version {r.version}" if r.version else ""
        out.line(f"{r.secret:<{width}}  {r.outcome:<9}  {version}".rstrip())
        if r.note:
            out.note(f"  {r.secret}: {r.note}")


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """Each declared secret: whether it exists, its latest version and when it was made, which variable uses it."""
    from doki_cli.deploy.secrets import status

    app = app_of(ctx)
    out, config, google = app.output, app.config, app.google
    rows = status(google.secrets, config)
    out.data(
        [
            {
                "secret": r.secret,
                "env": list(r.env_names),
                "exists": r.exists,
                "latest": r.latest,
                "created": r.created,
                "state": r.state,
            }
            for r in rows
        ]
    )
    width = max(len(r.secret) for r in rows)
    for r in rows:
        if not r.exists:
            detail = "missing (doki secrets push creates it)"
        elif r.latest is None:
            detail = "no versions"
        else:
            detail = f"version {r.latest} {r.state.lower() if r.state else ''} {r.created or ''}".rstrip()
        out.line(f"{r.secret:<{width}}  {', '.join(r.env_names):<24}  {detail}")


@app.command("grant")
def grant(ctx: typer.Context) -> None:
    """Give the runtime service account roles/secretmanager.secretAccessor on each declared secret."""
    from doki_cli.deploy.secrets import grant as grant_secrets

    app = app_of(ctx)
    out, config, google = app.output, app.config, app.google
    results = grant_secrets(google.secrets, config)
    out.data([{"secret": r.secret, "member": r.member, "changed": r.changed} for r in results])
    for r in results:
        out.line(f"{r.secret}: {'granted to' if r.changed else 'already granted to'} {r.member}")


def _shown(path: Path) -> str:
    """`path` as the user would type it from here: `.env` in the project's root, `../.env` from a subdirectory."""
    import os

    return os.path.relpath(path)
