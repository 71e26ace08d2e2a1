"""Preview deploys: a branch's or pull request's commit as a revision of the service with no traffic, under a tag of
its own (pr-12, or the branch's slug), reachable on the tag's URL while every request to the service's URL goes where
it went.

It is what `gcloud run deploy --no-traffic --tag pr-12` does, with a release's care: one etag-guarded write makes the
revision under a name of its own, pins today's traffic where it already goes (Cloud Run would otherwise send it to the
newest revision), tags the new one at 0% and records the preview on the service (annotation PREVIEWS: tag -> where it
came from, which commit, which revision, when), so `doki preview list` and `delete` read what doki made, nothing else.
A revision that does not become Ready is untagged again; the checks then run on the tag's URL.

The service's template is the preview's afterwards, as after gcloud's: the next `doki deploy` or `doki release` makes
it doki.toml's again and sends traffic to the newest revision. Until then a change that makes a revision of the
template (`doki cors`, `doki scale`, `doki keys rotate`) is refused (`preview_holds_template`): it would run the
preview's code, and no traffic would reach it.

Each preview's revision may allow its own frontend's origins ([preview] origins in doki.toml, filled in per preview):
on that revision only, so what serves never allows a preview's site, and `*` is never among them.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Protocol

from doki_cli.config import ServiceConfig, preview_origin
from doki_cli.deploy import traffic
from doki_cli.deploy.lock import blocked_by_release
from doki_cli.deploy.planner import Plan
from doki_cli.deploy.ports import ServiceUpdater
from doki_cli.deploy.release import TAG_AND_SERVICE_LIMIT
from doki_cli.errors import Code, DokiError
from doki_cli.model import Edit, LiveService, RevisionInfo, ServiceSpec, Staged, Target
from doki_cli.waiting import DEFAULT_TIMEOUT

PREVIEWS = "doki.dev/previews"
ALLOWED_ORIGINS = "ALLOWED_ORIGINS"
# Cloud Run's traffic tags: lowercase letters, digits and dashes, starting with a letter (TrafficTarget.tag, "must
# be a valid DNS label"); a tag and the service's name together at most TAG_AND_SERVICE_LIMIT.
_TAG = re.compile(r"[a-z][a-z0-9-]*[a-z0-9]|[a-z]")
# A branch slug that would read as a pull request's or a release's tag gets this prefix, so the three never meet.
BRANCH_PREFIX = "br-"
LOCK_POLL_SECONDS = 10.0


@dataclass(frozen=True)
class Preview:
    """One preview doki made, as recorded on the service."""

    tag: str
    source: str  # "pull request 12" or "branch feature/x"
    commit: str
    revision: str
    created: str  # ISO 8601, UTC

    def as_record(self) -> dict[str, str]:
        return {"source": self.source, "commit": self.commit, "revision": self.revision, "created": self.created}


def preview_tag(service: str, *, pr: int | None = None, branch: str | None = None) -> str:
    """The tag of a pull request's preview (pr-N) or a branch's (its name as a DNS label, shortened with a hash of the
    name to fit beside the service's name); DokiError when the name leaves no room."""
    if pr is not None:
        tag = f"pr-{pr}"
    else:
        assert branch is not None
        slug = re.sub(r"[^a-z0-9]+", "-", branch.lower()).strip("-")
        if not slug or not slug[0].isalpha() or re.match(r"(pr|sha)-", slug):
            slug = BRANCH_PREFIX + slug
        tag = slug
    room = TAG_AND_SERVICE_LIMIT - len(service)
    if len(tag) > room:
        if pr is not None or room < len(BRANCH_PREFIX) + 6:
            shortest = len(tag) if pr is not None else len(BRANCH_PREFIX) + 6
            raise DokiError(
                Code.SERVICE_NAME_TOO_LONG,
                f"a preview tags its revision {tag!r}, and Cloud Run refuses a tag and service name of more than "
                f"{TAG_AND_SERVICE_LIMIT} characters together: {service!r} leaves {room}; nothing was changed",
                f"name the service at most {TAG_AND_SERVICE_LIMIT - shortest} characters in doki.toml"
                + ("" if pr is not None else ", or preview the pull request (--pr N), whose tag is short"),
            )
        digest = hashlib.sha256((branch or "").encode()).hexdigest()[:4]
        tag = f"{tag[: room - 5].rstrip('-')}-{digest}"
    if not _TAG.fullmatch(tag):
        raise DokiError(Code.BAD_OPTION, f"{tag!r} is not a tag Cloud Run takes", "name another branch with --branch")
    return tag


def _annotation(live: LiveService) -> dict[str, object]:
    """The record doki keeps on the service ({} when there is none); DokiError when it is there and unreadable, as
    a write would otherwise drop every preview it holds."""
    text = live.annotations.get(PREVIEWS)
    if text is None:
        return {}
    try:
        data = json.loads(text)
        if isinstance(data, dict) and isinstance(data.get("previews"), dict) and isinstance(data.get("retired"), list):
            return data
    except ValueError:
        pass
    raise DokiError(
        Code.CONFIG_INVALID,
        f"the annotation {PREVIEWS} on {live.name}, where doki records its previews, is not what doki writes",
        f"remove it (gcloud run services update {live.name} --remove-annotations {PREVIEWS}) and preview again; "
        "`gcloud run services describe` shows the tags it named",
    )


def recorded(live: LiveService) -> dict[str, Preview]:
    """The previews doki recorded on the service, by tag."""
    previews = _annotation(live).get("previews", {})
    assert isinstance(previews, dict)
    try:
        return {
            str(tag): Preview(str(tag), str(r["source"]), str(r["commit"]), str(r["revision"]), str(r["created"]))
            for tag, r in previews.items()
        }
    except (TypeError, KeyError):
        raise DokiError(
            Code.CONFIG_INVALID,
            f"the annotation {PREVIEWS} on {live.name} holds a preview doki cannot read",
            f"remove it (gcloud run services update {live.name} --remove-annotations {PREVIEWS}) and preview again",
        ) from None


def retired(live: LiveService) -> list[str]:
    """The revisions of previews deleted or deployed again, oldest first: what `doki preview delete` may delete."""
    names = _annotation(live).get("retired", [])
    assert isinstance(names, list)
    return [str(name) for name in names]


def _record(previews: dict[str, Preview], retiring: Sequence[str]) -> str | None:
    """The annotation's value; None (the annotation removed) when there is nothing to keep."""
    if not previews and not retiring:
        return None
    data = {"previews": {tag: p.as_record() for tag, p in sorted(previews.items())}, "retired": list(retiring)}
    return json.dumps(data, separators=(",", ":"))


def holding_template(live: LiveService) -> Preview | None:
    """The preview whose revision the service's template is, when it is one (a retired preview's too, such as one
    that never became Ready): a change that makes a revision now would run the preview's code. An unreadable record
    says nothing: only the preview commands refuse it."""
    try:
        previews, gone = recorded(live), retired(live)
    except DokiError:
        return None
    held = next((p for p in previews.values() if p.revision == live.latest_created), None)
    if held is None and live.latest_created in gone:
        return Preview("", "a preview since deleted or replaced", "", live.latest_created or "", "")
    return held


def preview_revisions(live: LiveService) -> set[str]:
    """Every revision doki made for a preview that the record still names (tagged, or retired)."""
    try:
        return {p.revision for p in recorded(live).values()} | set(retired(live))
    except DokiError:
        return set()


def preview_holds_template(live: LiveService, change: str) -> DokiError | None:
    """The error `change` stops with while a preview holds the template; None when none does."""
    held = holding_template(live)
    if held is None:
        return None
    whose = f"the preview {held.tag}'s" if held.tag else "a preview's"
    return DokiError(
        Code.PREVIEW_HOLDS_TEMPLATE,
        f"the service's template is {whose} ({held.revision}, {held.source}), which `doki preview` made after the "
        f"revision that serves: {change} now would make a revision of the preview's code, and no traffic would reach "
        "it; nothing was changed",
        "deploy first (`doki deploy` or `doki release`): it makes the template doki.toml's again and sends traffic "
        "to it; the previews stay",
    )


def with_origins(config: ServiceConfig, fields: dict[str, str], serving: str) -> ServiceConfig:
    """doki.toml's service as the preview's revision runs it: [preview] origins filled in, after the origins allowed
    already (doki.toml's ALLOWED_ORIGINS, else `serving`'s, the revision that serves: what `doki cors` set)."""
    if not config.preview.origins:
        return config
    base = config.env.get(ALLOWED_ORIGINS, serving)
    allowed = [o for o in base.split(",") if o]
    extra = [preview_origin(origin, fields) for origin in config.preview.origins]
    merged = ",".join(dict.fromkeys([*allowed, *extra]))
    return replace(config, env={**config.env, ALLOWED_ORIGINS: merged})


def preview_spec(desired: ServiceSpec, live: LiveService) -> ServiceSpec:
    """What a preview's revision runs: doki.toml's revision with no instance kept warm (a tag's revision would keep
    them, billed, for as long as the preview lives), and the service's own settings as they are: its ingress, who may
    invoke it and its labels belong to what serves."""
    return replace(
        desired,
        min_instances=0,
        ingress=live.spec.ingress,
        invoker_iam_check=live.spec.invoker_iam_check,
        settings=replace(desired.settings, labels=None),
    )


def await_release(
    run: PreviewRun,
    name: str,
    *,
    now: Callable[[], float],
    sleep: Callable[[float], None],
    timeout: float,
    on_progress: Callable[[str], None],
) -> None:
    """Wait while a release holds the service (it rewrites the traffic it read, tags included, at each step); give
    up after `timeout` seconds with the release's own error."""
    from doki_cli.deploy.lock import active_lock

    waited = 0.0
    while True:
        live = run.get(name)
        lock = active_lock(live, now()) if live is not None else None
        if lock is None or live is None:
            return
        if waited >= timeout:
            blocked = blocked_by_release(live, now(), "a preview")
            if blocked is not None:
                raise blocked
            return
        on_progress(f"waiting for the release of {lock.commit[:12]} on {name} to finish ({waited:.0f} s)")
        sleep(LOCK_POLL_SECONDS)
        waited += LOCK_POLL_SECONDS


@dataclass
class Deployed:
    """What `Previewer.deploy` made: the preview, its URL and the checks it passed (or why it did not run them)."""

    preview: Preview
    url: str
    checks: list[str]


class Previewer:
    """Deploys and deletes previews; every collaborator comes in through the constructor, time included."""

    def __init__(
        self,
        run: PreviewRun,
        *,
        on_progress: Callable[[str], None],
        check: Callable[[str], list[str]],
        now: Callable[[], float] = time.time,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._run = run
        self._progress = on_progress
        self._check = check
        self._now = now
        self._timeout = timeout

    def deploy(self, plan: Plan, tag: str, source: str, commit: str) -> Deployed:
        """The plan's revision under `tag` with no traffic, recorded, then checked on the tag's URL (a failed check
        raises SmokeCheckFailed and leaves the preview up, for a look)."""
        assert plan.live is not None, "a preview needs a service that serves"
        name = plan.service.rsplit("/", 1)[-1]
        short = commit[:7] or "image"
        revision = f"{name}-{tag}-{short}-{secrets.token_hex(2)}"[:63].rstrip("-")
        before: dict[str, Target | Preview | None] = {}
        created = datetime.fromtimestamp(self._now(), UTC).isoformat(timespec="seconds")
        made = Preview(tag, source, commit, revision, created)

        def stage(live: LiveService) -> Edit:
            blocked = blocked_by_release(live, self._now(), "a preview")
            if blocked is not None:
                raise blocked
            targets = traffic.pinned_now(live.traffic, live.latest_ready, tag)
            before["target"] = next((t for t in live.traffic if t.tag == tag), None)
            previews = recorded(live)
            if before["target"] is not None and tag not in previews:
                raise DokiError(
                    Code.UNKNOWN_PREVIEW,
                    f"the tag {tag} of {name} is not a preview doki made: a preview would take it over",
                    "preview under another tag (--pr N, or --branch NAME), or remove that tag first",
                )
            before["preview"] = previous = previews.get(tag)
            # The revision this preview had is retired: nothing routes to it once the tag moves.
            retiring = [*retired(live), *([previous.revision] if previous is not None else [])]
            return Edit(
                staged=Staged(preview_spec(plan.desired, live), plan.keep_env, revision),
                traffic=(*targets, Target(revision, 0, tag)),
                annotations={PREVIEWS: _record(previews | {tag: made}, retiring)},
            )

        self._progress(f"deploying {revision} with no traffic, tagged {tag}")
        try:
            live = self._run.update(name, stage, on_progress=self._progress, timeout=self._timeout)
        except DokiError as err:
            if err.code == Code.REVISION_NOT_READY:
                target, previous = before.get("target"), before.get("preview")
                assert not isinstance(target, Preview) and not isinstance(previous, Target)
                self._untag(name, tag, target, previous, revision)
            raise
        url = live.tag_url(tag)
        if not url:
            raise DokiError(
                Code.NO_TAG_URL,
                f"Cloud Run gave the tag {tag} of {name} no URL, so the preview cannot be reached",
                "check the service's ingress and `doki status`; `doki preview delete` removes the preview",
            )
        self._progress(f"checking {url}")
        return Deployed(made, url, self._check(url))

    def _untag(self, name: str, tag: str, target: Target | None, previous: Preview | None, revision: str) -> None:
        """After a revision that did not become Ready: the tag and its record back as they were (or gone); the failed
        revision retired."""

        def untag(live: LiveService) -> Edit:
            # No lock check: the tag this run just added must go, and the staging write refused a held lock.
            kept = tuple(t for t in live.traffic if t.tag != tag and t.revision != revision)
            previews = recorded(live)
            previews.pop(tag, None)
            retiring = [r for r in retired(live) if previous is None or r != previous.revision] + [revision]
            if previous is not None:
                previews[tag] = previous
            again = (target,) if target is not None else ()
            return Edit(traffic=(*kept, *again), annotations={PREVIEWS: _record(previews, retiring)})

        self._progress(f"{revision} did not become Ready: its tag {tag} goes back")
        self._run.update(name, untag, on_progress=self._progress, timeout=DEFAULT_TIMEOUT)

    def delete(self, name: str, tag: str, *, keep: int) -> Removed:
        """The preview's tag and record removed in one traffic-only write, its revision retired; then the retired
        revisions nothing routes to, beyond the `keep` newest, deleted, and dropped from the record."""

        def untag(live: LiveService) -> Edit:
            # A release rewrites the traffic it read, this tag included, at each step: not under it.
            blocked = blocked_by_release(live, self._now(), "deleting a preview")
            if blocked is not None:
                raise blocked
            previews = recorded(live)
            gone = previews.pop(tag, None)
            retiring = [*retired(live), *([gone.revision] if gone is not None else [])]
            kept = tuple(t for t in live.traffic if t.tag != tag)
            return Edit(traffic=kept, annotations={PREVIEWS: _record(previews, retiring)})

        self._progress(f"removing the tag {tag}")
        live = self._run.update(name, untag, on_progress=self._progress, timeout=self._timeout)
        revisions = self._run.revisions(name)
        deleted = []
        for revision in prunable(revisions, live, keep=keep):
            self._progress(f"deleting {revision}")
            self._run.delete_revision(name, revision)
            deleted.append(revision)
        existing = {r.name for r in revisions} - set(deleted)
        if any(r not in existing for r in retired(live)):

            def forget(now: LiveService) -> Edit:
                # Only what is gone: a preview made meanwhile keeps its record and its retired revisions.
                return Edit(annotations={PREVIEWS: _record(recorded(now), [r for r in retired(now) if r in existing])})

            self._run.update(name, forget, on_progress=self._progress, timeout=self._timeout)
        return Removed(tag, deleted)


@dataclass
class Removed:
    tag: str
    deleted: list[str]


def prunable(revisions: Sequence[RevisionInfo], live: LiveService, *, keep: int, dropping: str = "") -> list[str]:
    """The retired revisions of previews (and, with `dropping`, the revision of the preview of that tag, as if it
    were deleted) that nothing routes to, newest first, the `keep` newest and the template's own aside (Cloud Run
    makes the next revision from it)."""
    previews = recorded(live)
    candidates = retired(live)
    if dropping in previews:
        candidates.append(previews.pop(dropping).revision)
    routed = {t.revision for t in live.traffic if t.revision and t.tag != dropping}
    routed |= {p.revision for p in previews.values()}
    idle = {r.name for r in revisions if not r.percent and not set(r.tags) - {dropping}}
    deletable = [name for name in reversed(candidates) if name in idle and name not in routed]
    return [name for name in deletable[keep:] if name != live.latest_created]


class PreviewRun(ServiceUpdater, Protocol):
    def get(self, name: str) -> LiveService | None: ...

    def revisions(self, name: str) -> list[RevisionInfo]: ...

    def delete_revision(self, name: str, revision: str) -> None: ...
