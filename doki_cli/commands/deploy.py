"""`doki deploy`: plan from doki.toml against the live service, show it, apply it, check the health contract."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from doki_cli.context import app_of
from doki_cli.errors import Code, DokiError
from doki_cli.options import DryRunOption, NoWaitOption, SkipChecksOption, TimeoutOption, YesOption

if TYPE_CHECKING:
    from doki_cli.context import App
    from doki_cli.deploy.planner import Plan


def deploy(
    ctx: typer.Context,
    image: Annotated[
        str | None,
        typer.Option("--image", envvar="DOKI_IMAGE", help="Image to deploy [default: this commit's `doki build`]."),
    ] = None,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    prune: Annotated[
        bool, typer.Option("--prune", help="Remove live variables that doki.toml does not declare.")
    ] = False,
    skip_checks: SkipChecksOption = False,
    timeout: TimeoutOption = None,
    no_wait: NoWaitOption = False,
) -> None:
    """Deploy the service as doki.toml describes it: plan, confirm, apply, wait until Ready, check `/`.

    Exit codes: 0 deployed (or up to date), 1 an error, 2 --dry-run would change something, 124 Cloud Run did not
    finish within --timeout (the deploy goes on at Google; traffic moves only to a Ready revision).
    """
    import time
    from dataclasses import replace

    from doki_cli.commands._plan import can_ask, confirm, review
    from doki_cli.commands._wait import Waits, bounded, not_waited
    from doki_cli.deploy import lock as locks
    from doki_cli.deploy.executor import Executor, plan_data, serving_now
    from doki_cli.deploy.health import check_health
    from doki_cli.deploy.images import tag_digests
    from doki_cli.deploy.planner import Planner, with_cost
    from doki_cli.deploy.preflight import account_check, image_check, preflight
    from doki_cli.gitinfo import head_commit, version_tag
    from doki_cli.imageref import IMAGE_REFERENCE
    from doki_cli.interrupts import is_interrupt
    from doki_cli.provenance import here

    app = app_of(ctx)
    out, config = app.output, app.config
    # The commit is known only of the commit's own image: another (--image) may have been built from anything.
    commit = ""
    if image is None:
        # Not a --tag of its own: gcloud's `run deploy --tag` names a traffic tag, and --image names any image.
        hint = (
            "commit your work (git init && git commit), or name the image to deploy with --image IMAGE "
            "(`doki build --tag VERSION` tags one without git)"
        )
        version = version_tag(config.root, hint=hint)
        image = f"{config.image}:{version}"
        commit = (head_commit(config.root) or "") + ("-dirty" if version.endswith("-dirty") else "")
    if not IMAGE_REFERENCE.fullmatch(image):
        raise DokiError(
            Code.BAD_IMAGE,
            f"{image!r} is not an image reference",
            "name it REGISTRY/PATH:TAG or REGISTRY/PATH@sha256:DIGEST, e.g. "
            "us-central1-docker.pkg.dev/PROJECT/REPOSITORY/NAME:v1",
        )
    skipped = preflight(config, skip=skip_checks)  # before any call: what the revision could not start with
    google = app.google
    google.run.provenance = here("deploy", commit)
    skipped += account_check(google.accounts, config, skip=skip_checks)
    plan = Planner(google.run, google.secrets, tag_digests(google.artifact_registry)).plan(config, image, prune=prune)
    if plan.live is not None and not plan.empty and not dry_run:
        # First: a release may not have pushed the image it is deploying yet, and waiting is the answer anyway.
        blocked = locks.blocked_by_release(plan.live, time.time(), "a deploy")
        if blocked is not None:
            raise blocked
    if plan.makes_revision:  # which pulls the image
        skipped += image_check(google.artifact_registry, image, skip=skip_checks)
    plan = replace(plan, skipped_checks=skipped)
    if not plan.empty:
        plan = with_cost(plan, google.billing.cloud_run_prices, config.region)
    # A known-broken image deployed again fails again: asked about even where other changes are not.
    review(app, plan, dry_run=dry_run, yes=yes or plan.repeats_failure)
    if plan.empty:
        assert plan.live is not None
        out.data({"plan": plan_data(plan), "url": plan.live.uri, "revision": plan.live.latest_ready, "changed": False})
        out.line(f"{config.name} is up to date: {plan.live.uri}")
        return
    if plan.repeats_failure and not yes:
        # Never without a yes, whoever runs it.
        if not can_ask(app):
            raise DokiError(
                Code.REPEATS_FAILED_REVISION,
                f"{config.name} would serve the image that failed again, with the same settings; nothing was changed",
                "deploy a fixed image with --image, change what made it fail, or pass --yes to try it again",
            )
        confirm(app, "Deploy the image that failed again?")
    waits = Waits.given(timeout, no_wait)
    if not waits.wait:
        _refuse_unwaited(plan)
    doing = ["starting"]

    def progress(message: str) -> None:
        doing.append(message)
        out.progress(message)

    executor = Executor(
        google.run,
        google.secrets,
        health=lambda url: check_health(url, sleep=app.factory.sleep, on_progress=out.progress),
        on_progress=progress,
        sleep=app.factory.sleep,
        timeout=waits.timeout,
        wait=waits.wait,
    )
    try:
        with bounded(waits):
            deployed = executor.execute(plan)
    except DokiError as err:
        if err.code == Code.REVISION_NOT_READY:
            _show_last_lines(app)
        raise
    except (KeyboardInterrupt, Exception) as exc:
        if not is_interrupt(exc):
            raise
        # Each write finished before the interrupt took effect, and the plan is recomputed from what is live.
        not_run = f"; not run: {', '.join(executor.pending)}" if executor.pending else ""
        raise DokiError(
            Code.INTERRUPTED,
            f"interrupted while {doing[-1]}; what Google was sent stays (a deploy Cloud Run has started goes on)"
            f"{not_run}. Serving now: {serving_now(google.run, config.name)}",
            "`doki deploy --dry-run` shows what remains; `doki deploy` finishes it",
        ) from None
    out.data(
        {
            "plan": plan_data(plan),
            "url": deployed.url,
            "revision": deployed.revision,
            "changed": True,
            "health_checked": deployed.checked,
            **waits.data(),
        }
    )
    if not waits.wait:
        not_waited(out, config.name, deployed.revision)
        out.line(f"Deploying {config.name} (--no-wait): {deployed.url or 'its URL once Cloud Run assigns it'}")
        return
    out.line(f"Deployed {config.name} ({deployed.revision}): {deployed.url}")


def _refuse_unwaited(plan: Plan) -> None:
    """--no-wait where only the wait's end finishes the deploy; refused before anything is written."""
    from doki_cli.deploy.planner import REDIRECT_ENV

    why = None
    if plan.set_redirect:
        why = f"a first deploy sets {REDIRECT_ENV} from the URL Cloud Run assigns once the service exists"
    elif plan.live is not None and any(t.percent and t.revision for t in plan.live.traffic):
        why = "traffic is pinned (by `doki rollback`): only a deploy that sees the new revision Ready moves it"
    if why is not None:
        raise DokiError(
            Code.BAD_OPTION,
            f"--no-wait cannot deploy {plan.service} now: {why}; nothing was changed",
            "run it without --no-wait (--timeout bounds the wait)",
        )


def _show_last_lines(app: App) -> None:
    """The failed revision's last log lines: usually the reason it never listened on $PORT."""
    service = app.google.run.get(app.config.name)
    revision = service.latest_created if service is not None else None
    if revision:
        app.show_last_lines(revision, app.last_lines(revision))
