"""`doki status`: the live service at a glance, or as JSON."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import typer

from doki_cli.context import app_of
from doki_cli.options import ServiceOption

if TYPE_CHECKING:
    from doki_cli.gcp.google import Google
    from doki_cli.model import LiveService, RevisionInfo
    from doki_cli.output import Output


def status(ctx: typer.Context, service: ServiceOption = None) -> None:
    """URL, Ready state, traffic with tags, what each serving revision runs, the newest one if it serves nothing."""
    app = app_of(ctx)
    app.use_service(service)
    out, config, google = app.output, app.config, app.google
    from doki_cli.deploy.planner import read_live

    live = read_live(google.run, config.name)
    binding = google.run.is_public(config.name)
    public = binding or not live.spec.invoker_iam_check
    revisions = google.run.revisions(config.name, live=live)
    serving = [r for r in revisions if r.percent]
    tagged = [r for r in revisions if r.percent or r.tags]
    newest = next((r for r in revisions if r.name == live.latest_created), None)
    # The newest revision when it serves nothing: failed, or left without traffic by a rollback or a staged release.
    idle = newest if newest is not None and not newest.percent else None
    failed = live.failed  # never Ready, or a release's checks failed on it (doki's note)
    spec = live.spec
    data = {
        "service": google.run.path(config.name),
        "url": live.uri,
        "ready": live.ready,
        "message": live.message,
        "serving": bool(live.shares),
        "latest_created": live.latest_created or "",
        "latest_ready": live.latest_ready,
        "traffic": [{**_revision_data(r), "percent": r.percent, "tags": list(r.tags)} for r in tagged],
        "traffic_follows_latest": live.traffic_to_latest,
        "newest": {**_revision_data(idle), "ready": idle.ready, "failed": _state(idle, failed) == "failed"}
        if idle is not None
        else None,
        # The template: what the next revision starts from.
        "image": spec.image,
        "resources": {"cpu": spec.cpu, "memory": spec.memory, "concurrency": spec.concurrency},
        "timeout_seconds": spec.timeout_seconds,
        "scaling": {"min": spec.min_instances, "max": spec.max_instances},
        # The service's own (doki scale --min/--max, gcloud's --min): shared by the revisions that take traffic.
        "service_scaling": {"min": live.service_min_instances, "max": live.service_max_instances or None},
        "public": public,
        "invoker_iam_check": live.spec.invoker_iam_check,
        "updated": live.updated.isoformat(timespec="seconds") if live.updated else None,
    }
    floor_text, data["floor_cost"] = _floor(google, config.region, live, revisions)
    out.data(data)
    out.line(f"{config.name}  {live.uri}")
    message = " ".join(live.message.split())  # Cloud Run's messages may carry line breaks
    if failed is not None and live.shares:
        # The service's Ready condition follows its newest revision; what serves is another one, and unaffected.
        out.line(f"  ready        serving normally; the newest revision, {failed[0]}, failed: {failed[1]}")
    else:
        out.line(f"  ready        {'yes' if live.ready else 'no'}" + (f" ({message})" if message else ""))
    out.line(f"  revisions    latest created {data['latest_created']}, latest ready {live.latest_ready or '-'}")
    follows = " (follows the latest)" if live.traffic_to_latest else " (pinned: `doki deploy` moves it to the latest)"
    out.line(f"  traffic      {live.traffic_text}{follows}")
    for revision in tagged:
        if revision.tags:
            out.line(f"    tag        {', '.join(revision.tags)} -> {revision.name}")
    # What serves is described by its revisions: the template is only the next revision's starting point, and
    # after a failed deploy or a rollback it is not what answers requests.
    for revision in serving:
        _show(out, "serving", f"{revision.name} ({revision.percent}%, deployed {revision.deployed})", revision)
    if not serving:
        out.line("  serving      nothing")
    if live.service_min_instances or live.service_max_instances:
        most = live.service_max_instances or "no limit"
        out.line(
            f"  scaling      the service's own: at least {live.service_min_instances}, at most {most} instances, "
            "shared by the revisions that take traffic"
        )
    if idle is not None:
        _show(out, "newest", f"{idle.name} ({_state(idle, failed)}, deployed {idle.deployed})", idle)
    if not live.spec.invoker_iam_check:
        invokers = "anyone (invoker IAM check off)"
    else:
        invokers = "anyone (allUsers)" if binding else "authenticated callers only"
    out.line(f"  invokers     {invokers}")
    out.line(f"  floor cost   {floor_text}")
    if data["updated"]:
        out.line(f"  last change  {data['updated']}")


def _floor(google: Google, region: str, live: LiveService, revisions: list[RevisionInfo]) -> tuple[str, dict[str, Any]]:
    """The monthly cost of the instances the service keeps running: each revision that serves or carries a tag keeps
    its own minimum, or its share of the service's (doki_cli.deploy.cost), priced from the Cloud Billing Catalog;
    with none kept, none, and no prices read."""
    from doki_cli.deploy.cost import Sizing, Unpriced, money, revision_floor
    from doki_cli.errors import DokiError

    kept = [
        (revision, revision_floor(revision.settings.min_instances, live.service_min_instances, revision.percent))
        for revision in revisions
        if revision.percent or revision.tags
    ]
    total = sum(floor for _, floor in kept)
    nothing = {"per_month": 0.0, "currency": None, "min_instances": 0, "priced": True}
    if not total:
        return "none: no minimum instances are kept", nothing
    try:
        prices = google.billing.cloud_run_prices(region)
        cost = 0.0
        for revision, floor in kept:
            spec = replace(live.spec, cpu=revision.settings.cpu, memory=revision.settings.memory, min_instances=floor)
            cost += Sizing.of(spec, instance_based=live.cpu_always_allocated, service_min=0).floor_cost(prices)
    except (DokiError, Unpriced) as err:
        problem = err.message if isinstance(err, DokiError) else str(err)
        return f"not priced ({problem})", {
            "per_month": None,
            "currency": None,
            "min_instances": total,
            "priced": False,
            "problem": problem,
        }
    billing = "instance-based" if live.cpu_always_allocated else "request-based"
    revisions_kept = f" across {len(kept)} revisions" if len(kept) > 1 else ""
    return (
        f"{money(cost, prices.currency)} a month ({total} min instance{'s' if total != 1 else ''}{revisions_kept}, "
        f"{billing} billing; list prices, before the free tier)",
        {"per_month": round(cost, 4), "currency": prices.currency, "min_instances": total, "priced": True},
    )


def _state(revision: RevisionInfo, failed: tuple[str, str] | None) -> str:
    if revision.failed or (failed is not None and failed[0] == revision.name):
        return "failed"
    return "Ready, no traffic" if revision.ready else "starting"


def _show(out: Output, label: str, title: str, revision: RevisionInfo) -> None:
    out.line(f"  {label:<12} {title}")
    out.line(f"    image      {revision.image}")
    out.line(f"    resources  {revision.settings.resources_text}")
    out.line(f"    scaling    {revision.settings.scaling_text}")


def _revision_data(revision: RevisionInfo) -> dict[str, Any]:
    settings = revision.settings
    return {
        "revision": revision.name,
        "image": revision.image,
        "created": revision.created_at,
        "resources": {"cpu": settings.cpu, "memory": settings.memory, "concurrency": settings.concurrency},
        "timeout_seconds": settings.timeout_seconds,
        "scaling": {"min": settings.min_instances, "max": settings.max_instances},
    }
