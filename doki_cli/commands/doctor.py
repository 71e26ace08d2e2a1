"""`doki doctor`: the security checklist and common deploy problems, checked; exit 1 when any check fails."""

from __future__ import annotations

from typing import Annotated

import typer

from doki_cli.context import app_of


def doctor(
    ctx: typer.Context,
    offline: Annotated[bool, typer.Option("--offline", help="Only the checks that read the project itself.")] = False,
    create_account: Annotated[
        bool, typer.Option("--create-account", help="Create the runtime account doki.toml names when it is missing.")
    ] = False,
) -> None:
    """Check secrets, runtime account, CORS, Dockerfile, build context, and (online) the required APIs, secret
    access and invoker."""
    from doki_cli.doctor import FAIL, live_checks, local_checks

    app = app_of(ctx)
    out = app.output
    config = app.config
    checks = local_checks(config)
    where = "offline: doki.toml and this checkout only"
    if offline and create_account:
        from doki_cli.errors import Code, DokiError

        raise DokiError(
            Code.BAD_OPTION, "--create-account needs the project: it cannot run --offline", "drop --offline"
        )
    if not offline:
        google = app.google
        where = f"on {google.factory.endpoint}"
        checks += live_checks(config, google, create_account=create_account)
    # Which project, region and endpoint the checks read, before any verdict about them.
    out.line(f"Checks of {config.name} (project {config.project}, region {config.region}), {where}:")
    out.data([{"check": c.name, "status": c.status, "message": c.message, "fix": c.fix} for c in checks])
    styles = {"pass": "green", "warn": "yellow", "fail": "red", "skip": "dim"}
    for check in checks:
        out.line(f"{check.status.upper():<4}  {check.name}: {check.message}", style=styles[check.status])
        if check.fix and check.status in ("warn", "fail"):
            out.line(f"      fix: {check.fix}")
    failed = [c for c in checks if c.status == FAIL]
    if failed:
        raise typer.Exit(1)
