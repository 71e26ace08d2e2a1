"""`doki status`: the live service at a glance, or as JSON."""

from __future__ import annotations

import typer

from doki_cli.commands._service import setup


def status(ctx: typer.Context) -> None:
    """URL, Ready state, revisions, traffic split with tags, image, resources, scaling and last deploy time."""
    options, config, google = setup(ctx)
    out = options.output
    live = google.run.get(config.name)
    if live is None:
        from doki_cli.gcp.run import service_not_found

        raise service_not_found(google.run.path(config.name))
    public = google.run.is_public(config.name)
    revisions = google.run.revisions(config.name)
    serving = [r for r in revisions if r.percent or r.tags]
    spec = live.spec
    data = {
        "service": google.run.path(config.name),
        "url": live.uri,
        "ready": live.ready,
        "message": live.message,
        "serving": bool(live.shares),
        "latest_created": live.latest_created or "",
        "latest_ready": live.latest_ready,
        "traffic": [
            {"revision": r.name, "percent": r.percent, "tags": list(r.tags), "image": r.image} for r in serving
        ],
        "traffic_follows_latest": live.traffic_to_latest,
        "image": spec.image,
        "resources": {"cpu": spec.cpu, "memory": spec.memory, "concurrency": spec.concurrency},
        "timeout_seconds": spec.timeout_seconds,
        "scaling": {"min": spec.min_instances, "max": spec.max_instances},
        "public": public,
        "updated": live.updated.isoformat(timespec="seconds") if live.updated else None,
    }
    out.data(data)
    out.line(f"{config.name}  {live.uri}")
    message = " ".join(live.message.split())  # Cloud Run's messages may carry line breaks
    if not live.ready and live.stuck and live.shares:
        # The service's Ready condition follows its newest revision; what serves is another one, and unaffected.
        out.line(f"  ready        serving normally; the newest revision, {live.stuck}, failed: {message}")
    else:
        out.line(f"  ready        {'yes' if live.ready else 'no'}" + (f" ({message})" if message else ""))
    out.line(f"  revisions    latest created {data['latest_created']}, latest ready {live.latest_ready or '-'}")
    follows = " (follows the latest)" if live.traffic_to_latest else " (pinned: `doki deploy` moves it to the latest)"
    out.line(f"  traffic      {live.traffic_text}{follows}")
    for revision in serving:
        if revision.tags:
            out.line(f"    tag        {', '.join(revision.tags)} -> {revision.name}")
    out.line(f"  image        {spec.image}")
    # The template's image is the next revision's: after a failed release or a rollback, traffic serves another.
    for revision in serving:
        if revision.percent and revision.image != spec.image:
            out.line(f"    serving    {revision.image} on {revision.name} ({revision.percent}%)")
    out.line(
        f"  resources    cpu {spec.cpu}, memory {spec.memory}, concurrency {spec.concurrency}, "
        f"timeout {spec.timeout_seconds}s"
    )
    out.line(f"  scaling      {spec.min_instances} to {spec.max_instances} instances")
    out.line(f"  invokers     {'anyone (allUsers)' if public else 'authenticated callers only'}")
    if data["updated"]:
        out.line(f"  last change  {data['updated']}")
