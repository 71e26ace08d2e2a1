"""`doki deploy`: plan from doki.toml against the live service, show it, apply it, check the health contract."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from doki_cli.errors import DokiError
from doki_cli.options import SkipChecksOption
from doki_cli.state import global_options

if TYPE_CHECKING:
    from collections.abc import Callable

    from doki_cli.gcp.google import Google
    from doki_cli.output import Output

# `--dry-run` exit codes, as terraform's detailed exit code: scripts can tell "up to date" from "would change".
DRY_RUN_NO_CHANGES = 0
DRY_RUN_CHANGES = 2
LAST_LINES = 20


def deploy(
    ctx: typer.Context,
    image: Annotated[
        str | None,
        typer.Option("--image", envvar="DOKI_IMAGE", help="Image to deploy [default: this commit's `doki build`]."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only show the plan; exit 0 when up to date, 2 when it would change.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Apply without asking.")] = False,
    prune: Annotated[
        bool, typer.Option("--prune", help="Remove live variables that doki.toml does not declare.")
    ] = False,
    skip_checks: SkipChecksOption = False,
) -> None:
    """Deploy the service as doki.toml describes it: plan, confirm, apply, wait until Ready, check `/`."""
    import sys
    import time
    from dataclasses import replace
    from datetime import UTC, datetime

    from doki_cli.config import load_config
    from doki_cli.deploy.executor import Executor, plan_data, render_plan, serving_now
    from doki_cli.deploy.health import check_health
    from doki_cli.deploy.planner import Planner
    from doki_cli.deploy.preflight import account_check, image_check, preflight
    from doki_cli.deploy.release import EXIT_LOCKED, active_lock
    from doki_cli.gcp.google import Google
    from doki_cli.gitinfo import version_tag
    from doki_cli.imageref import IMAGE_REFERENCE
    from doki_cli.interrupts import EXIT_INTERRUPTED, is_interrupt

    options = global_options(ctx)
    out = options.output
    config = load_config(options.config, env=options.env, project=options.project, region=options.region)
    image = image or f"{config.image}:{version_tag(config.root)}"
    if not IMAGE_REFERENCE.fullmatch(image):
        raise DokiError(
            "bad_image",
            f"{image!r} is not an image reference",
            "name it REGISTRY/PATH:TAG or REGISTRY/PATH@sha256:DIGEST, e.g. "
            "us-central1-docker.pkg.dev/PROJECT/REPOSITORY/NAME:v1",
        )
    skipped = preflight(config, skip=skip_checks)  # before any call: what the revision could not start with
    google = Google.from_env(config.project, config.region)
    skipped += account_check(google.accounts, config, skip=skip_checks)
    plan = Planner(google.run, google.secrets, _tag_digests(google)).plan(config, image, prune=prune)
    lock = active_lock(plan.live, time.time()) if plan.live is not None and not dry_run and not plan.empty else None
    if lock is not None:
        # First: a release may not have pushed the image it is deploying yet, and waiting is the answer anyway.
        raise DokiError(
            "release_locked",
            f"a release of {lock.commit[:12]} (on {lock.host or 'an unknown host'}) is in progress on {config.name} "
            f"until {datetime.fromtimestamp(lock.expires, UTC).isoformat(timespec='seconds')}; nothing was changed",
            "wait for it to finish: a deploy now would move traffic under it",
            exit_code=EXIT_LOCKED,
        )
    if plan.makes_revision:  # which pulls the image
        skipped += image_check(google.artifact_registry, image, skip=skip_checks)
    plan = replace(plan, skipped_checks=skipped)
    render_plan(out, plan)
    if dry_run:
        out.data({"plan": plan_data(plan)})
        raise typer.Exit(DRY_RUN_NO_CHANGES if plan.empty else DRY_RUN_CHANGES)
    if plan.empty:
        assert plan.live is not None
        out.data({"plan": plan_data(plan), "url": plan.live.uri, "revision": plan.live.latest_ready, "changed": False})
        out.line(f"{config.name} is up to date: {plan.live.uri}")
        return
    if plan.repeats_failure and not yes:
        # A known-broken image deployed again fails again: never without a yes, whoever runs it.
        if out.json_mode or not sys.stdin.isatty():
            raise DokiError(
                "repeats_failed_revision",
                f"{config.name} would serve the image that failed again, with the same settings; nothing was changed",
                "deploy a fixed image with --image, change what made it fail, or pass --yes to try it again",
            )
        if not typer.confirm("Deploy the image that failed again?"):
            raise DokiError("aborted", "nothing was changed", "run again and answer y, or pass --yes")
    elif not yes and not out.json_mode and sys.stdin.isatty() and not typer.confirm("Apply these changes?"):
        raise DokiError("aborted", "nothing was changed", "run again and answer y, or pass --yes")
    doing = ["starting"]

    def progress(message: str) -> None:
        doing.append(message)
        out.progress(message)

    executor = Executor(google.run, google.secrets, health=check_health, on_progress=progress)
    try:
        deployed = executor.execute(plan)
    except DokiError as err:
        if err.code == "revision_not_ready":
            _show_last_lines(out, google, config.name, config.region)
        raise
    except (KeyboardInterrupt, Exception) as exc:
        if not is_interrupt(exc):
            raise
        # Each write finished before the interrupt took effect, and the plan is recomputed from what is live.
        not_run = f"; not run: {', '.join(executor.pending)}" if executor.pending else ""
        raise DokiError(
            "interrupted",
            f"interrupted while {doing[-1]}; what Google was sent stays (a deploy Cloud Run has started goes on)"
            f"{not_run}. Serving now: {serving_now(google.run, config.name)}",
            "`doki deploy --dry-run` shows what remains; `doki deploy` finishes it",
            exit_code=EXIT_INTERRUPTED,
        ) from None
    out.data(
        {
            "plan": plan_data(plan),
            "url": deployed.url,
            "revision": deployed.revision,
            "changed": True,
            "health_checked": deployed.checked,
        }
    )
    out.line(f"Deployed {config.name} ({deployed.revision}): {deployed.url}")


def _tag_digests(google: Google) -> Callable[[str], str | None]:
    """What an Artifact Registry tag points at, for the planner: asked only when the live image is pinned by digest
    to the image doki.toml's tag names."""

    def digest_of(image: str) -> str | None:
        registry = google.artifact_registry
        if not registry.is_tagged_reference(image):
            return None
        try:
            return registry.digest_of(image)
        except DokiError:
            # Unknown is a change, as without the lookup: the plan shows the image, nothing is hidden.
            return None

    return digest_of


def _show_last_lines(out: Output, google: Google, name: str, region: str) -> None:
    """The failed revision's last log lines: usually the reason it never listened on $PORT."""
    from doki_cli.gcp.logs import LogQuery

    service = google.run.get(name)
    revision = service.latest_created if service is not None else None
    if not revision:
        return
    try:
        lines = google.logs.recent(LogQuery(name, region, revision=revision), LAST_LINES)
    except DokiError:
        return  # the logs are a courtesy here: the deploy's own error follows regardless
    if lines:
        out.note(f"Last log lines of {revision}:")
        for line in lines:
            out.note(f"  {line.time}  {line.severity:<8} {line.message}")
