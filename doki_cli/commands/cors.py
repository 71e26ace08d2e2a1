"""`doki cors`: the live service's ALLOWED_ORIGINS, listed or changed (one new revision, nothing else changed)."""

from __future__ import annotations

from typing import Annotated

import typer

from doki_cli.commands._service import setup
from doki_cli.errors import DokiError

app = typer.Typer(help="The origins browsers may call the backend from (ALLOWED_ORIGINS).", no_args_is_help=True)
ENV = "ALLOWED_ORIGINS"
OriginsArgument = Annotated[
    list[str],
    typer.Argument(metavar="ORIGIN", help="Origins as scheme://host[:port], e.g. https://app.example.com."),
]
SaveOption = Annotated[bool, typer.Option("--save", help="Also write the new list to doki.toml.")]


def _current(ctx: typer.Context) -> list[str]:
    from doki_cli.gcp.run import service_not_found

    _, config, google = setup(ctx)
    service = google.run.get(config.name)
    if service is None:
        raise service_not_found(google.run.path(config.name))
    value = service.spec.env.get(ENV, "")
    return [o for o in (part.strip() for part in value.split(",")) if o]


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
            "bad_origin", "; ".join(problems), "write each origin as scheme://host[:port], e.g. https://app.example.com"
        )


def _apply(ctx: typer.Context, origins: list[str], before: list[str], save: bool) -> None:
    from doki_cli.model import Edit

    options, config, google = setup(ctx)
    out = options.output
    changed = origins != before
    live = google.run.get(config.name)
    failed = live.stuck if live is not None else None
    if changed or failed:
        # Unchanged, the value is in the template already, and its revision never came up: a new one, then.
        edit = Edit(env={ENV: ",".join(origins)}, new_revision=not changed)
        google.run.update(config.name, lambda _: edit, on_progress=out.progress)
        if failed and not changed:
            out.note(f"{failed} had not become Ready: made a new revision with the same origins")
    saved = None
    if save:
        from doki_cli.tomledit import save as save_toml

        saved = save_toml(config, {ENV: origins}, table="env")
    out.data({"origins": origins, "changed": changed, "saved_to": saved})
    out.line(("Allowed origins now: " if changed else "Allowed origins unchanged: ") + (", ".join(origins) or "none"))
    if saved:
        out.note(f"written to [{saved}] in {config.path}")
    elif changed:
        out.note("doki.toml still lists the old origins: the next `doki deploy` restores them (use --save)")


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """The origins the live service allows."""
    out = setup(ctx)[0].output
    origins = _current(ctx)
    out.data({"origins": origins})
    for origin in origins:
        out.line(origin)


@app.command("add")
def add(ctx: typer.Context, origins: OriginsArgument, save: SaveOption = False) -> None:
    """Allow more origins."""
    _check(origins)
    before = _current(ctx)
    _apply(ctx, before + [o for o in origins if o not in before], before, save)


@app.command("remove")
def remove(ctx: typer.Context, origins: OriginsArgument, save: SaveOption = False) -> None:
    """Stop allowing origins."""
    before = _current(ctx)
    unknown = [o for o in origins if o not in before]
    if unknown:
        raise DokiError(
            "unknown_origin",
            f"{', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'} not allowed now; nothing was changed",
            f"allowed now: {', '.join(before) or 'none'}",
        )
    remaining = [o for o in before if o not in origins]
    if not remaining:
        # An empty list stops the backend in production and means the localhost defaults in development:
        # either way a revision nobody asked for.
        raise DokiError(
            "no_origins_left",
            "that would leave ALLOWED_ORIGINS empty, which the backend refuses in production; nothing was changed",
            "keep at least one origin, or replace them all with `doki cors set ORIGIN...`",
        )
    _apply(ctx, remaining, before, save)


@app.command("set")
def set_(ctx: typer.Context, origins: OriginsArgument, save: SaveOption = False) -> None:
    """Allow exactly these origins."""
    _check(origins)
    _apply(ctx, list(dict.fromkeys(origins)), _current(ctx), save)
