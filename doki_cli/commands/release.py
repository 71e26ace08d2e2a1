"""`doki release`: what CI runs. One commit from image to traffic; traffic moves only to a revision that passed.

Exit codes: 0 released (or already live), 1 a Google or other error, 2 a usage error, 3 the new revision failed to
become Ready or failed a smoke check (traffic untouched), 4 the image could not be built or pushed, 5 another release
holds the service's release lock, 78 configuration (doki.toml, the commit, a dirty tree).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from doki_cli.commands._plan import ask, can_ask
from doki_cli.context import app_of
from doki_cli.options import AllowDirtyOption, BaseImageOption, RemoteOption, ShaOption, SkipChecksOption, TimeoutOption

if TYPE_CHECKING:
    from doki_cli.context import App
    from doki_cli.deploy.release import Summary
    from doki_cli.gitinfo import Commit
    from doki_cli.output import Output


def release(
    ctx: typer.Context,
    sha: ShaOption = None,
    remote: RemoteOption = None,
    base_image: BaseImageOption = None,
    allow_dirty: AllowDirtyOption = False,
    secrets_from: Annotated[
        str | None,
        typer.Option(
            "--secrets-from", envvar="DOKI_SECRETS_FROM", help="Push changed secrets from this .env file first."
        ),
    ] = None,
    skip_checks: SkipChecksOption = False,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Release even the image a failed revision ran, with the same settings.")
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Only show the plan and the steps that would follow; exit 0 when this commit is live, 2 when not.",
        ),
    ] = False,
    # No --no-wait: traffic moves only after the checks a release waits for, so an unwaited release would move none.
    timeout: TimeoutOption = None,
) -> None:
    """Build or reuse the commit's image, deploy it with no traffic, smoke-test it, then move traffic to it.

    Exit codes: 0 released, 1 Google or other error, 3 failed readiness or smoke check (traffic untouched),
    4 build failed, 5 another release holds the lock, 78 configuration error, 124 Cloud Run did not finish a change
    within --timeout (traffic stays where it was unless the new revision had already passed its checks).
    """
    import os
    import socket
    import sys
    import uuid

    from doki_cli.commands._wait import Waits
    from doki_cli.deploy.images import Images
    from doki_cli.deploy.preflight import account_check, preflight, token_check
    from doki_cli.deploy.release import Release, release_tag
    from doki_cli.deploy.secrets import push, read_values
    from doki_cli.errors import EXIT_CONFIG, DokiError
    from doki_cli.gitinfo import resolve_commit
    from doki_cli.provenance import here

    app = app_of(ctx)
    out = app.output
    waits = Waits.given(timeout, no_wait=False)
    try:
        config = app.config
    except DokiError as err:
        err.exit_code = EXIT_CONFIG
        raise
    commit = resolve_commit(config.root, sha, os.environ, allow_dirty=allow_dirty)
    release_tag(config.name, commit)  # a name too long for a release tag stops here, before any build
    skipped = preflight(config, skip=skip_checks)  # and settings the revision could not start with
    # A missing file stops us before anything.
    hint = "pass --secrets-from PATH to your .env file, or --secrets-from - to read NAME=value lines from stdin"
    values = read_values(secrets_from, sys.stdin, hint=hint) if secrets_from else None
    google = app.google
    google.run.provenance = here("release", commit.sha + ("-dirty" if commit.dirty else ""))
    skipped += account_check(google.accounts, config, skip=skip_checks)  # before any build
    build_remote = remote if remote is not None else bool(os.environ.get("CI"))
    if dry_run:
        _dry_run(app, commit, skipped, remote=build_remote, secrets_from=secrets_from)

    def identity_token(audience: str) -> str:
        return google.identity.token(audience, config.release.invoker_account)

    token_check(identity_token, config)  # a private service's checks need one: known now, not after the build
    for problem in skipped:
        out.note(f"  ! --skip-checks: the new revision may not start: {problem}")

    def push_secrets() -> list[dict[str, object]]:
        assert values is not None
        return [
            {"secret": r.secret, "outcome": r.outcome, "version": r.version}
            for r in push(google.secrets, config, values, [])
        ]

    runner = Release(
        google.run,
        google.secrets,
        images=Images(
            google,
            config,
            remote=build_remote,
            base_image=base_image,
            on_line=out.debug,
            on_progress=out.progress,
            clock=app.factory.monotonic,
        ),
        push_secrets=push_secrets if values is not None else None,
        last_lines=app.last_lines,
        identity_token=identity_token,
        on_progress=out.progress,
        owner=uuid.uuid4().hex[:12],
        host=socket.gethostname(),
        timeout=waits.timeout,
        sleep=app.factory.sleep,
        clock=app.factory.monotonic,
    )
    out.note(f"Releasing {commit.sha[:12]} (from {commit.source}) to {config.service_path}")
    try:
        summary = runner.release(
            config,
            commit,
            skipped_checks=skipped,
            # Asked only where someone can answer; CI says --yes or stops.
            again=lambda: yes or (can_ask(app) and ask("Release the image that failed again?")),
        )
    except DokiError as err:
        lines = err.details.get("last_log_lines")
        revision = err.details.get("revision")
        app.show_last_lines(revision if isinstance(revision, str) else None, lines if isinstance(lines, list) else [])
        raise
    out.data(summary.as_dict())
    _print_summary(out, summary)


def _dry_run(app: App, commit: Commit, skipped: list[str], *, remote: bool, secrets_from: str | None) -> None:
    """The release's plan against the live service and the steps that would follow it; nothing built or written.
    Ends the command: exit 0 when this commit is live already, 2 when a release would change the service."""
    from dataclasses import replace

    from doki_cli.commands._plan import review
    from doki_cli.deploy.images import tag_digests
    from doki_cli.deploy.planner import Planner
    from doki_cli.deploy.release import outline

    config, google = app.config, app.google
    image = f"{config.image}:{commit.version}"
    planner = Planner(google.run, google.secrets, tag_digests(google.artifact_registry))
    plan = planner.plan(config, image, pushes_secrets=secrets_from is not None)
    plan = replace(plan, skipped_checks=skipped)
    steps = outline(config, plan, commit, remote=remote, secrets_from=secrets_from)
    review(app, plan, dry_run=True, yes=False, then=steps)


def _print_summary(out: Output, summary: Summary) -> None:
    if summary.result == "unchanged":
        out.line(f"{summary.commit[:12]} is already live: {summary.revision} serves {summary.service_url}")
    else:
        out.line(f"Released {summary.commit[:12]}: {summary.revision} serves {summary.service_url}")
    out.line(f"  image    {summary.image}" + (f"@{summary.digest}" if summary.digest else ""))
    if summary.tag_url and summary.tag_url != summary.service_url:
        out.line(f"  tag      {summary.tag} {summary.tag_url}")
    out.line("  traffic  " + ", ".join(f"{p}% {r}" for r, p in sorted(summary.traffic.items())))
    out.line("  steps    " + ", ".join(f"{s.name} {s.seconds:.1f}s ({s.result})" for s in summary.steps))
