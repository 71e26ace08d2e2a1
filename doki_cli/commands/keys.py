"""`doki keys`: make the secrets the backend needs, and rotate them on a deployed service."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Annotated

import typer

from doki_cli.context import app_of
from doki_cli.errors import Code, DokiError
from doki_cli.globaloptions import DokiTyper
from doki_cli.options import DryRunOption, ServiceOption, TimeoutOption, YesOption

if TYPE_CHECKING:
    from pathlib import Path

    from doki_cli.deploy.rotation import Outcome, Rotation, Step
    from doki_cli.output import Output

app = DokiTyper(help="Make encryption keys and session secrets; rotate them on the service.", no_args_is_help=True)


@app.command("generate")
def generate(ctx: typer.Context) -> None:
    """Print a new Fernet ENCRYPTION_KEY and SESSION_SECRET_KEY, as .env lines (or JSON with --json).

    To rotate, put the new key first and keep the old one after it: ENCRYPTION_KEY=new,old.
    """
    import secrets

    from doki.crypto import generate_key

    out = app_of(ctx).output
    values = {
        "ENCRYPTION_KEY": generate_key(),
        "SESSION_SECRET_KEY": secrets.token_urlsafe(48),
    }
    out.data(values)
    for name, value in values.items():
        out.line(f"{name}={value}")
    out.note("Keep these in Secret Manager or a git-ignored .env; never commit them.")


@app.command("rotate")
def rotate(
    ctx: typer.Context,
    which: Annotated[
        str,
        typer.Argument(
            metavar="KEY", help="encryption (ENCRYPTION_KEY: stored credentials) or session (SESSION_SECRET_KEY)."
        ),
    ],
    now: Annotated[
        bool,
        typer.Option(
            "--now",
            help="session: drop the old secret without waiting the 15 minutes its sessions live (they end).",
        ),
    ] = False,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    timeout: TimeoutOption = None,
    service: ServiceOption = None,
) -> None:
    """Bring in a new key with nothing unreadable at any step: a new version in Secret Manager, deploys that serve with
    both keys, stored credentials re-encrypted, then the old key dropped and its versions disabled.

    Where a rotation stands is read from Secret Manager and Cloud Run each time: run it again after a failure or
    Ctrl-C and it goes on from where it stopped; --dry-run says what it would do next.
    """
    import shlex

    from doki_cli.commands._plan import DRY_RUN_CHANGES, confirm_plan
    from doki_cli.commands._wait import Waits, bounded
    from doki_cli.deploy import rotation as rotations
    from doki_cli.deploy.health import check_health
    from doki_cli.interrupts import is_interrupt
    from doki_cli.provenance import here

    kind = rotations.KINDS.get(which.lower())
    if kind is None:
        raise DokiError(
            Code.BAD_OPTION,
            f"{which!r} is not a key doki rotates",
            "name one: `doki keys rotate encryption` (ENCRYPTION_KEY) or `doki keys rotate session` "
            "(SESSION_SECRET_KEY)",
        )
    if now and kind.reencrypts:
        raise DokiError(
            Code.BAD_OPTION,
            "--now is for the session secret: ENCRYPTION_KEY's old key is dropped once every credential is "
            "re-encrypted",
            "drop --now",
        )
    app = app_of(ctx)
    app.use_service(service)
    out, config, google = app.output, app.config, app.google
    google.run.provenance = here(f"keys rotate {kind.name}", "")
    store = partial(rotations.service_store, google.run, google.secrets, config.name)
    declared = {name: str(ref) for name, ref in config.secrets.items()} if app.service is None else {}
    rotation = rotations.read(
        kind,
        google.run,
        google.secrets,
        config.name,
        declared=declared,
        open_store=store if kind.reencrypts else None,
        now=app.factory.now(),
    )
    plan = rotations.steps(rotation, now=app.factory.now(), skip_grace=now)
    data = rotations.plan_data(rotation, plan)
    _show_plan(out, rotation, plan, now=now)
    if dry_run:
        out.data({"plan": data})
        raise typer.Exit(DRY_RUN_CHANGES)
    if not yes:
        confirm_plan(app, rotation.service, data)
    waits = Waits.given(timeout, False)
    rotator = rotations.Rotator(
        google.run,
        google.secrets,
        open_store=store,
        health=lambda url: check_health(url, sleep=app.factory.sleep, on_progress=out.progress),
        on_progress=out.progress,
        clock=lambda: app.factory.now().timestamp(),
        sleep=app.factory.sleep,
        timeout=waits.timeout,
    )
    # As it was typed, with every option it was given (--service, --env, --project...), minus what makes it a dry
    # run: the same command. The root keeps its arguments (doki_cli.main.ARGS).
    given = [arg for arg in ctx.meta.get("doki.args", []) if arg not in ("--dry-run",)]
    again = "`" + " ".join(["doki", *(shlex.quote(arg) for arg in given)]) + "`"
    try:
        with bounded(waits):
            outcome = rotator.execute(rotation, plan, skip_grace=now)
    except DokiError as err:
        err.hint = f"{err.hint}; then run {again} again: it goes on from where it stopped"
        raise
    except (KeyboardInterrupt, Exception) as exc:
        if not is_interrupt(exc):
            raise
        raise DokiError(
            Code.INTERRUPTED,
            f"interrupted; what was done stays ({'; '.join(rotator.outcome.done) or 'nothing'}), and every "
            "credential and session the service holds is still readable",
            f"run {again} again: it goes on from where it stopped (--dry-run shows what remains)",
        ) from None
    out.data({"plan": data, **rotations.outcome_data(outcome)})
    for line in outcome.done:
        out.line(line)
    for user, provider in rotations.unreadable_rows(outcome.reencrypted):
        out.note(f"  not readable before the rotation either (left as it was): user {user}, {provider}")
    if outcome.resume_after is not None:
        when = rotations.clock_text(outcome.resume_after)
        if kind.reencrypts:
            # A request timeout longer than a wait in the run: the store is moved once it has passed.
            out.line(
                f"{kind.variable} of {config.name}: the new key encrypts; run {again} again after {when} to "
                "re-encrypt the stored credentials and drop the old key"
            )
            return
        out.line(
            f"{kind.variable} of {config.name}: the new secret signs; run {again} again after {when} to drop the old "
            "one"
        )
        out.note(
            "  --now drops it at once: whoever began a Google sign-in in the last 15 minutes starts it again (a "
            "connect from a signed-in account waits for their confirmation instead); nobody is signed out"
        )
        return
    out.line(f"Rotated {kind.variable} of {config.name}: the new key alone is in use, the old one dropped")
    stale = _stale_dotenv(config.root / ".env", rotation.readers, outcome)
    if stale is not None:
        out.note(
            f"  {config.root / '.env'} still holds the old {stale}: the next `doki secrets push` would push it back "
            f"and the next deploy would serve with it; delete the {stale} line (Secret Manager holds the key now)"
        )


def _stale_dotenv(path: Path, readers: tuple[str, ...], outcome: Outcome) -> str | None:
    """The variable a local .env still gives the old key list under, when it does: pushed, it would undo the
    rotation."""
    import sys

    from doki_cli.deploy.rotation import fingerprint
    from doki_cli.deploy.secrets import read_values

    if not path.is_file() or not outcome.complete:
        return None
    try:
        values = read_values(str(path), sys.stdin, hint="")
    except (DokiError, OSError, ValueError):  # unreadable, or not UTF-8: nothing to say of it after a rotation
        return None
    for name in readers:
        keys = [key.strip() for key in values.get(name, "").split(",") if key.strip()]
        if keys and fingerprint(keys[0]) != outcome.new_key:
            return name
    return None


def _show_plan(out: Output, rotation: Rotation, plan: list[Step], *, now: bool) -> None:
    from doki_cli.deploy.rotation import describe, notice

    out.line(f"Rotate {rotation.kind.variable} of {rotation.service}")
    out.line(f"  {describe(rotation)}", style="dim")
    for number, step in enumerate(plan, start=1):
        out.line(f"  {number}. {step.text}")
    out.note(notice(rotation.kind, now=now))
