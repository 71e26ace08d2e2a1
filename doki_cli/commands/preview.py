"""`doki preview`: a branch's or pull request's commit on its own URL, with no traffic; `list` and `delete`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from doki_cli.context import app_of
from doki_cli.errors import Code, DokiError
from doki_cli.globaloptions import DokiTyper
from doki_cli.options import (
    AllowDirtyOption,
    BaseImageOption,
    DryRunOption,
    RemoteOption,
    ServiceOption,
    ShaOption,
    SkipChecksOption,
    TimeoutOption,
    YesOption,
)

if TYPE_CHECKING:
    from doki_cli.context import App

app = DokiTyper(
    help="Preview deploys: `doki preview` puts a branch or pull request on a URL of its own, with no traffic; "
    "`list` and `delete` them.",
    invoke_without_command=True,
)

PrOption = Annotated[
    int | None,
    typer.Option("--pr", min=1, metavar="N", help="The pull request's number: the preview is tagged pr-N."),
]
BranchOption = Annotated[
    str | None,
    typer.Option("--branch", help="The branch: the preview is tagged with its name [default: git's branch]."),
]


@app.callback()
def preview(
    ctx: typer.Context,
    pr: PrOption = None,
    branch: BranchOption = None,
    sha: ShaOption = None,
    allow_dirty: AllowDirtyOption = False,
    image: Annotated[
        str | None, typer.Option("--image", help="Preview this image instead of building the commit's.")
    ] = None,
    remote: RemoteOption = None,
    base_image: BaseImageOption = None,
    skip_checks: SkipChecksOption = False,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    timeout: TimeoutOption = None,
) -> None:
    """Deploy the current commit as a revision with no traffic, tagged pr-N or with the branch's name; print its URL
    once the health contract and [release] checks pass there. Traffic stays where it is."""
    if ctx.invoked_subcommand is not None:
        from typer._click.core import ParameterSource

        # Typed on the command line: an option read from its variable (DOKI_TIMEOUT, say) is the environment's.
        typed = {
            param.name: f"--{(param.name or '').replace('_', '-')}"
            for param in ctx.command.params
            if param.name and ctx.get_parameter_source(param.name) is ParameterSource.COMMANDLINE
        }
        given = [flag for name, flag in typed.items() if name not in ("pr", "branch")]
        if given:
            raise DokiError(
                Code.BAD_OPTION,
                f"{', '.join(given)} belong{'s' if len(given) == 1 else ''} to `doki preview` itself, not to "
                f"`doki preview {ctx.invoked_subcommand}`",
                f"put them after `doki preview {ctx.invoked_subcommand}` where it takes them, or drop them",
            )
        if "pr" in typed or "branch" in typed:
            raise DokiError(
                Code.BAD_OPTION,
                f"--pr and --branch go after `doki preview {ctx.invoked_subcommand}`",
                f"run `doki preview {ctx.invoked_subcommand} --pr N` (or --branch B)",
            )
        return
    _deploy(
        app_of(ctx),
        pr,
        branch,
        sha,
        allow_dirty,
        image,
        remote,
        base_image,
        skip_checks=skip_checks,
        dry_run=dry_run,
        yes=yes,
        timeout=timeout,
    )


def _deploy(
    app: App,
    pr: int | None,
    branch: str | None,
    sha: str | None,
    allow_dirty: bool,
    image: str | None,
    remote: bool | None,
    base_image: str | None,
    *,
    skip_checks: bool,
    dry_run: bool,
    yes: bool,
    timeout: float | None,
) -> None:
    import os
    import time

    from doki_cli.commands._plan import DRY_RUN_CHANGES, confirm_plan
    from doki_cli.commands._wait import Waits, bounded
    from doki_cli.deploy import preview as previews
    from doki_cli.deploy.images import Images, tag_digests
    from doki_cli.deploy.planner import Planner
    from doki_cli.deploy.preflight import account_check, preflight, token_check
    from doki_cli.gitinfo import resolve_commit
    from doki_cli.imageref import IMAGE_REFERENCE
    from doki_cli.provenance import here

    out, config, google = app.output, app.config, app.google
    if image is not None and sha is not None:
        raise DokiError(
            Code.BAD_OPTION, "--sha names a commit to build, and --image an image built already", "give one of them"
        )
    tag, source, fields = _which(app, pr, branch)
    commit = ""
    reuse = True
    if image is None:
        resolved = resolve_commit(config.root, sha, os.environ, allow_dirty=allow_dirty)
        image, commit, reuse = f"{config.image}:{resolved.version}", resolved.sha, not resolved.dirty
    elif not IMAGE_REFERENCE.fullmatch(image):
        raise DokiError(
            Code.BAD_IMAGE,
            f"{image!r} is not an image reference",
            "name it REGISTRY/PATH:TAG or REGISTRY/PATH@sha256:DIGEST",
        )
    live = google.run.get(config.name)
    if live is None or not live.shares:
        raise DokiError(
            Code.NOTHING_SERVES,
            f"nothing serves on {config.service_path} yet: a preview is a revision beside what serves",
            "deploy first (`doki deploy` or `doki release`), then preview",
        )
    shares = live.shares
    serving_name = max(shares, key=lambda revision: shares[revision])
    serving = next((r for r in google.run.revisions(config.name) if r.name == serving_name), None)
    allowed = serving.env.get(previews.ALLOWED_ORIGINS, "") if serving is not None else ""
    try:
        shown = previews.with_origins(config, fields, allowed)
    except KeyError as missing:
        raise DokiError(
            Code.BAD_OPTION,
            f"[preview] origins in doki.toml name {{{missing.args[0]}}}, and this preview is of {source}",
            "preview a pull request with --pr N, or write the origins with {tag} or {branch}",
        ) from None
    skipped = preflight(shown, skip=skip_checks)
    google.run.provenance = here("preview", commit)
    skipped += account_check(google.accounts, shown, skip=skip_checks)
    for problem in skipped:
        out.note(f"  ! --skip-checks: the preview's revision may not start: {problem}")
    plan = Planner(google.run, google.secrets, tag_digests(google.artifact_registry)).plan(shown, image)
    live = plan.live
    assert live is not None
    serving_text = ", ".join(f"{revision} {share}%" for revision, share in live.shares.items())
    origins = shown.env.get(previews.ALLOWED_ORIGINS, "")
    out.line(f"Preview {tag} of {config.service_path} ({source})")
    lines = [
        f"revision from {image}, with no traffic, tagged {tag}",
        f"ALLOWED_ORIGINS on it: {origins.replace(',', ', ') or 'none'}",
        f"traffic stays: {serving_text}",
        "then on the tag's URL: GET / (the health contract)" + "".join(f", {check}" for check in config.release.checks),
    ]
    for line in lines:
        out.line(f"  {line}")
    data: dict[str, object] = {
        "service": config.service_path,
        "tag": tag,
        "source": source,
        "image": image,
        "steps": lines,
    }
    if dry_run:
        out.data({"plan": data})
        raise typer.Exit(DRY_RUN_CHANGES)
    if not yes:
        confirm_plan(app, config.name, data)

    def identity_token(audience: str) -> str:
        return google.identity.token(audience, config.release.invoker_account)

    token_check(identity_token, config)  # a private service's checks need one: known now, not after the build
    if commit:
        build_remote = remote if remote is not None else bool(os.environ.get("CI"))
        images = Images(
            google,
            config,
            remote=build_remote,
            base_image=base_image,
            on_line=out.debug,
            on_progress=out.progress,
            clock=app.factory.monotonic,
        )
        images.provide(image, reuse=reuse)
    waits = Waits.given(timeout, no_wait=False)
    previewer = previews.Previewer(
        google.run,
        on_progress=out.progress,
        check=lambda url: _checks(
            app, url, live.uri, identity_token, live.spec.ingress, google.run.is_public(config.name)
        ),
        timeout=waits.timeout,
    )
    with bounded(waits):
        previews.await_release(
            google.run,
            config.name,
            now=time.time,
            sleep=app.factory.sleep,
            timeout=waits.timeout,
            on_progress=out.progress,
        )
        made = previewer.deploy(plan, tag, source, commit)
    out.data(
        {
            "tag": tag,
            "url": made.url,
            "revision": made.preview.revision,
            "source": source,
            "commit": commit or None,
            "image": image,
            "checks": made.checks,
        }
    )
    out.line(f"Preview {tag} ({made.preview.revision}): {made.url}")


def _which(app: App, pr: int | None, branch: str | None) -> tuple[str, str, dict[str, str]]:
    """The preview's tag, where it comes from (as people read it) and the fields its origins are filled in with."""
    import os

    from doki_cli.deploy.preview import preview_tag
    from doki_cli.gitinfo import current_branch

    config = app.config
    if pr is not None and branch is not None:
        raise DokiError(Code.BAD_OPTION, "--pr and --branch name the preview twice", "give one of them")
    if pr is None and branch is None:
        # GitHub Actions names the branch of a pull request's run here; git, a checkout's.
        branch = os.environ.get("GITHUB_HEAD_REF") or current_branch(config.root)
        if not branch:
            raise DokiError(
                Code.BAD_OPTION,
                "no branch to name the preview after: git is on no branch here (a detached HEAD, or no checkout)",
                "pass --pr N for a pull request, or --branch NAME",
            )
    tag = preview_tag(config.name, pr=pr, branch=branch)
    if pr is not None:
        return tag, f"pull request {pr}", {"pr": str(pr), "branch": tag, "tag": tag}
    return tag, f"branch {branch}", {"branch": tag, "tag": tag}


def _checks(app: App, url: str, audience: str, identity_token: object, ingress: str, public: bool) -> list[str]:
    """The health contract and [release] checks on the preview's URL, which the service's own ingress and access
    govern (a preview leaves them as they are)."""
    from doki_cli.deploy.health import SmokeCheckFailed, smoke_test

    config = app.config
    if ingress != "all":
        return []  # unreachable from here, as for a release's checks
    headers: dict[str, str] = {}
    if not public:
        headers["Authorization"] = f"Bearer {identity_token(audience)}"  # type: ignore[operator]
    try:
        return smoke_test(
            url,
            config.release.checks,
            attempts=config.release.attempts,
            sleep=app.factory.sleep,
            headers=headers,
            on_progress=app.output.progress,
        )
    except SmokeCheckFailed as failed:
        failed.hint = (
            "the preview stays at its URL for a look, with no traffic (`doki logs` has its output); push a fix and "
            "preview again, or `doki preview delete` removes it"
        )
        raise


@app.command("list")
def list_(ctx: typer.Context, service: ServiceOption = None) -> None:
    """Each preview doki made: its tag, URL, where it came from, its revision and when."""
    from doki_cli.deploy.planner import read_live
    from doki_cli.deploy.preview import recorded

    doki = app_of(ctx)
    doki.use_service(service)
    out, config = doki.output, doki.config
    live = read_live(doki.google.run, config.name)
    found = sorted(recorded(live).values(), key=lambda p: p.created, reverse=True)
    out.data(
        [
            {
                "tag": p.tag,
                "url": live.tag_url(p.tag),
                "source": p.source,
                "commit": p.commit or None,
                "revision": p.revision,
                "created": p.created,
            }
            for p in found
        ]
    )
    if not found:
        out.line(f"{config.name} has no previews (`doki preview` makes one)")
        return
    width = max(len(p.tag) for p in found)
    for p in found:
        out.line(f"{p.tag:<{width}}  {live.tag_url(p.tag) or '(no URL)'}  {p.source}, {p.revision}, {p.created}")


@app.command("delete")
def delete(
    ctx: typer.Context,
    tag: Annotated[str | None, typer.Argument(help="The preview's tag, as `doki preview list` shows it.")] = None,
    pr: PrOption = None,
    branch: BranchOption = None,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    timeout: TimeoutOption = None,
    service: ServiceOption = None,
) -> None:
    """Remove a preview's tag; then delete the revisions of deleted previews that nothing routes to, beyond
    [preview] keep."""
    import time

    from doki_cli.commands._plan import DRY_RUN_CHANGES, confirm_plan
    from doki_cli.commands._wait import Waits, bounded
    from doki_cli.deploy.planner import read_live
    from doki_cli.deploy.preview import Previewer, await_release, holding_template, preview_tag, prunable, recorded

    doki = app_of(ctx)
    doki.use_service(service)
    out, config, google = doki.output, doki.config, doki.google
    if sum(given is not None for given in (tag, pr, branch)) != 1:
        raise DokiError(
            Code.BAD_OPTION,
            "name the preview to delete once: TAG, --pr N or --branch B",
            "`doki preview list` shows the previews and their tags",
        )
    if tag is None:
        tag = preview_tag(config.name, pr=pr, branch=branch)
    live = read_live(google.run, config.name)
    previews = recorded(live)
    if tag not in previews:
        if any(t.tag == tag for t in live.traffic):
            raise DokiError(
                Code.UNKNOWN_PREVIEW,
                f"the tag {tag} of {config.name} is not a preview doki made, so doki leaves it",
                f"remove it with gcloud if it should go: gcloud run services update-traffic {config.name} "
                f"--remove-tags {tag} --region {config.region}",
            )
        if pr is not None:
            # A closed pull request's job may run where no preview was made (a fork's), or twice: nothing to do.
            out.data({"tag": tag, "deleted": [], "removed": False})
            out.line(f"{config.name} has no preview tagged {tag}: nothing to delete")
            return
        raise DokiError(
            Code.UNKNOWN_PREVIEW,
            f"{config.name} has no preview tagged {tag} (previews: {', '.join(sorted(previews)) or 'none'})",
            "`doki preview list` shows them",
        )
    held = holding_template(live)
    pruned = prunable(google.run.revisions(config.name), live, keep=config.preview.keep, dropping=tag)
    out.line(f"Delete preview {tag} of {config.service_path}")
    out.line(f"  - tag {tag} ({previews[tag].revision}, {previews[tag].source})")
    for revision in pruned:
        out.line(f"  - revision {revision}")
    if held is not None and held.tag == tag:
        out.note(
            f"  {held.revision} stays: the service's template is it (the next `doki deploy` replaces the template; a "
            "later `doki preview delete` deletes it)"
        )
    data: dict[str, object] = {"service": config.service_path, "tag": tag, "revisions": pruned}
    if dry_run:
        out.data({"plan": data})
        raise typer.Exit(DRY_RUN_CHANGES)
    if not yes:
        confirm_plan(doki, config.name, data)
    waits = Waits.given(timeout, no_wait=False)
    previewer = Previewer(google.run, on_progress=out.progress, check=lambda url: [], timeout=waits.timeout)
    with bounded(waits):
        await_release(
            google.run,
            config.name,
            now=time.time,
            sleep=doki.factory.sleep,
            timeout=waits.timeout,
            on_progress=out.progress,
        )
        removed = previewer.delete(config.name, tag, keep=config.preview.keep)
    out.data({"tag": tag, "deleted": removed.deleted, "removed": True})
    deleted = f"; deleted {', '.join(removed.deleted)}" if removed.deleted else ""
    out.line(f"Deleted preview {tag} of {config.name}{deleted}")
