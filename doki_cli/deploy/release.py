"""A release: one commit from image to traffic, safe to run unattended.

The order is what makes it safe. The image and the secrets come first (nothing on the service changes yet). Then one
etag-guarded write takes the service's release lock, pins today's traffic where it already goes, and adds the new
revision under a name and tag of its own at 0%. Only once that revision is Ready and its own URL passes the smoke
checks does traffic move: at once, or in the steps of doki.toml with the checks again after each. Any failure, and an
interrupt, puts the traffic spec back as it was (pinned to the revisions that served) and releases the lock.

Two releases racing on one service meet at the lock: both read, both write with the etag they read, one write wins,
and the other re-reads, finds the winner's lock and stops before it changed anything, naming the winning commit.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, Protocol

from doki_cli.config import ServiceConfig
from doki_cli.deploy import lock as locks
from doki_cli.deploy import traffic
from doki_cli.deploy.executor import (
    GRANT_SETTLE_SECONDS,
    Executor,
    apply_edit,
    grant_access,
    grant_not_yet_in_effect,
    invoker_progress,
    plan_data,
    plan_lines,
    serving_now,
    unreachable,
)
from doki_cli.deploy.health import Fetch, SmokeCheckFailed, smoke_test
from doki_cli.deploy.lock import LOCK, Lock
from doki_cli.deploy.planner import Plan, Planner, TrafficStep, plan_traffic_step, refuse_what_cloud_run_would
from doki_cli.deploy.ports import RunPort, SecretsPort
from doki_cli.deploy.traffic import TAG_PREFIX
from doki_cli.errors import EXIT_BUILD_FAILED, EXIT_CHECK_FAILED, Code, DokiError
from doki_cli.gitinfo import Commit
from doki_cli.interrupts import deferred_interrupt, is_interrupt
from doki_cli.model import CHECKS_FAILED, Edit, LiveService, Staged, Target
from doki_cli.waiting import DEFAULT_TIMEOUT, sleep_in_sight

# Cloud Run refuses a traffic tag and service name longer than this together (firebase/firebase-tools#6137); a
# long name gets a shorter sha in its tag, down to this many hex digits.
TAG_AND_SERVICE_LIMIT = 46
MIN_TAG_SHA = 4


@dataclass(frozen=True)
class ProvidedImage:
    digest: str | None
    how: str  # reused, built, built-remote


class ImageSource(Protocol):
    def provide(self, image: str, *, reuse: bool) -> ProvidedImage:
        """The image `image` (name:tag) in Artifact Registry: the existing one when `reuse`, else built and pushed."""
        ...


@dataclass
class Step:
    name: str
    seconds: float = 0.0
    result: str = "ok"


@dataclass
class Summary:
    commit: str
    image: str
    service: str
    digest: str | None = None
    revision: str | None = None
    tag: str | None = None
    tag_url: str | None = None
    service_url: str | None = None
    traffic: dict[str, int] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)
    result: str = "running"
    checks: list[str] = field(default_factory=list)
    secrets: list[dict[str, Any]] = field(default_factory=list)
    last_log_lines: list[str] = field(default_factory=list)
    # What may keep the new revision from starting: the plan's warnings, and what --skip-checks let through.
    warnings: list[str] = field(default_factory=list)
    plan: dict[str, Any] | None = None  # what the release changes on the live service, as `deploy --json` shows it

    def as_dict(self) -> dict[str, Any]:
        return {
            "result": self.result,
            "commit": self.commit,
            "image": self.image,
            "digest": self.digest,
            "service": self.service,
            "revision": self.revision,
            "tag": self.tag,
            "tag_url": self.tag_url,
            "service_url": self.service_url,
            "traffic": self.traffic,
            "checks": self.checks,
            "secrets": self.secrets,
            "steps": [{"step": s.name, "seconds": round(s.seconds, 3), "result": s.result} for s in self.steps],
            "duration_seconds": round(sum(s.seconds for s in self.steps), 3),
            **({"last_log_lines": self.last_log_lines} if self.last_log_lines else {}),
            **({"warnings": self.warnings} if self.warnings else {}),
            **({"plan": self.plan} if self.plan is not None else {}),
        }


def release_tag(service: str, commit: Commit) -> str:
    """The tag a release of `commit` gives its revision, `sha-` and the commit's first 7 hex digits (fewer where the
    service name is long); DokiError when the name leaves no room for one."""
    dirty = "-dirty" if commit.dirty else ""
    room = TAG_AND_SERVICE_LIMIT - len(service) - len(TAG_PREFIX) - len(dirty)
    if room < MIN_TAG_SHA:
        longest = TAG_AND_SERVICE_LIMIT - len(TAG_PREFIX) - len(dirty) - MIN_TAG_SHA
        raise DokiError(
            Code.SERVICE_NAME_TOO_LONG,
            f"a release tags its revision {TAG_PREFIX}<commit>{dirty} to check it on its own URL, and Cloud Run "
            f"refuses a tag and service name of more than {TAG_AND_SERVICE_LIMIT} characters together: {service!r} "
            f"({len(service)} characters) leaves no room for it; nothing was built or changed",
            f"name the service at most {longest} characters in doki.toml, or deploy it with `doki deploy`, which "
            "needs no tag",
        )
    return f"{TAG_PREFIX}{commit.short[:room]}{dirty}"


def outline(config: ServiceConfig, plan: Plan, commit: Commit, *, remote: bool, secrets_from: str | None) -> list[str]:
    """What a release of `commit` would do after its plan, step by step, as `doki release --dry-run` shows it."""
    if plan.empty:
        return []
    image = f"{config.image}:{commit.version}"
    built = "on Cloud Build" if remote else "with the local engine"
    lines = [
        f"image {image}: the one in Artifact Registry if there"
        + (", " if not commit.dirty else " (never for a dirty tree), ")
        + f"else built {built} and pushed"
    ]
    if secrets_from:
        lines.append(f"secrets: values from {secrets_from} that changed pushed as new versions, then pinned")
    checks = "; ".join(["GET / -> the health contract", *(str(check) for check in config.release.checks)])
    if plan.live is None or not plan.live.shares:
        lines.append("deploy: nothing serves yet, so the first revision gets all traffic at once")
        lines.append(f"smoke: {checks} on the service's URL")
        return lines
    tag = release_tag(config.name, commit)
    lines.append(f"deploy: {config.name}-{commit.short}-XXXX with no traffic, tagged {tag}, under the release lock")
    lines.append(f"smoke: {checks} on the tag's URL; a failure puts traffic back")
    wait = f", checked again {config.release.step_wait_seconds} s after each" if len(config.release.steps) > 1 else ""
    lines.append(f"traffic: {traffic.steps_text(config.release.steps)}{wait}; the last step drops the lock")
    return lines


@dataclass
class Staging:
    """What a staged release holds while it runs: the names it chose, its lock, and the traffic it puts back."""

    name: str
    revision: str
    tag: str
    lock: Lock
    # Today's traffic, "latest" resolved (once the new revision is Ready it would be the latest), as read by the
    # write that stages the revision: what a failure puts back.
    before: list[Target] = field(default_factory=list)
    # The staging write was sent. From here on a failure or an interrupt puts traffic back; whether or not the write
    # landed is safe, as the put-back only touches a service whose lock is still this release's.
    sent: bool = False


class Release:
    """Runs one release; every collaborator comes in through the constructor, time included, so waits are testable."""

    def __init__(
        self,
        run: RunPort,
        secret_manager: SecretsPort,
        *,
        images: ImageSource,
        push_secrets: Callable[[], list[dict[str, Any]]] | None,
        last_lines: Callable[[str], list[str]],
        identity_token: Callable[[str], str],
        fetch: Fetch | None = None,
        on_progress: Callable[[str], None],
        owner: str,
        host: str,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        # How long each write is waited for (--timeout). A put-back is not bounded by it: it is what keeps traffic
        # off an unchecked revision, so it gets the default wait even after a shorter one ran out.
        self._timeout = timeout
        self._run = run
        self._secrets = secret_manager
        self._images = images
        self._fetch = fetch
        self._push_secrets = push_secrets
        self._last_lines = last_lines
        self._identity_token = identity_token
        self._progress = on_progress
        self._owner = owner
        self._host = host
        self._clock = clock
        self._now = now
        self._sleep = sleep
        # What an interrupt leaves on the service, for its message; None while nothing was sent to it.
        self._left: str | None = None
        self._first = False  # nothing serves yet: known once the service is read
        self._again: Callable[[], bool] = lambda: False
        self._checks_failed: str | None = None  # the failed checks' note, for the put-back to leave on the service

    # The steps, timed

    @contextmanager
    def _step(self, summary: Summary, name: str) -> Iterator[Step]:
        step = Step(name)
        summary.steps.append(step)
        start = self._clock()
        try:
            yield step
        except BaseException as exc:
            if step.result == "ok":
                step.result = "interrupted" if is_interrupt(exc) else "failed"
            raise
        finally:
            step.seconds = self._clock() - start

    def release(
        self,
        config: ServiceConfig,
        commit: Commit,
        *,
        skipped_checks: Sequence[str] = (),
        again: Callable[[], bool] = lambda: False,
    ) -> Summary:
        """Release `commit`; `skipped_checks`: what the preflight found and --skip-checks let through; `again`: whether
        to go on when the new revision would be the one that failed (same image, same settings)."""
        self._again = again
        image = f"{config.image}:{commit.version}"
        summary = Summary(commit.sha, image, config.service_path)
        summary.warnings = [f"--skip-checks: the new revision may not start: {problem}" for problem in skipped_checks]
        try:
            self._release(config, commit, summary)
        except DokiError as err:
            summary.result = "failed"
            if err.code == Code.WAIT_TIMEOUT:
                err.hint = f"{err.hint}; {self._where_traffic_is(config.name)}"
            err.details = summary.as_dict()
            raise
        except (KeyboardInterrupt, Exception) as exc:
            if not is_interrupt(exc):
                raise
            summary.result = "interrupted"
            step = summary.steps[-1].name if summary.steps else None
            names = self._steps()
            later = names[names.index(step) + 1 :] if step in names else names
            listed = ", ".join(later[:-1]) + (" and " if len(later) > 1 else "") + (later[-1] if later else "")
            not_run = f"; the {listed} step{'s' if len(later) > 1 else ''} did not run" if later else ""
            interrupted = DokiError(
                Code.INTERRUPTED,
                (f"interrupted during the {step} step" if step else "interrupted before the release's first step")
                + (self._left or f"; nothing on {config.name} was changed")
                + f"{not_run}. Serving now: {serving_now(self._run, config.name)}",
                "`doki deploy --dry-run` shows what remains; `doki release` again finishes it",
            )
            interrupted.details = summary.as_dict()
            raise interrupted from None
        return summary

    def _where_traffic_is(self, name: str) -> str:
        """Where a release that ran out of time left the traffic: never on a revision it did not check."""
        serving = f"serving now: {serving_now(self._run, name)}"
        if self._first:
            # Nothing served to protect: Cloud Run gives the first revision all traffic once it is Ready.
            return f"nothing served before, so the first revision serves once Ready, unchecked; {serving}"
        again = "`doki release` again, with a longer --timeout, releases it"
        if self._left:
            return f"{self._left.removeprefix('; ').removeprefix(', ')}; {serving}; {again}"
        return f"traffic was not moved; {serving}; {again}"

    def _steps(self) -> list[str]:
        """The steps of this release, in order (a first release moves no traffic: it has all of it at once)."""
        names = ["image", "secrets", "plan", "deploy", "smoke", "traffic"]
        return [n for n in names if (n != "secrets" or self._push_secrets) and (n != "traffic" or not self._first)]

    def _release(self, config: ServiceConfig, commit: Commit, summary: Summary) -> None:
        live = self._run.get(config.name)
        self._first = live is None or not live.shares
        if live is not None:
            # Before anything is built: CPU or memory Cloud Run would refuse with what the live service keeps.
            refuse_what_cloud_run_would(config, live)
        with self._step(summary, "image") as step:
            self._progress(f"image {summary.image}")
            try:
                provided = self._images.provide(summary.image, reuse=not commit.dirty)
            except DokiError as err:
                err.exit_code = EXIT_BUILD_FAILED
                raise
            summary.digest = provided.digest
            step.result = provided.how
        if self._push_secrets is not None:
            with self._step(summary, "secrets") as step:
                summary.secrets = self._push_secrets()
                changed = [s for s in summary.secrets if s["outcome"] in ("created", "updated")]
                step.result = f"{len(changed)} changed" if changed else "unchanged"
        with self._step(summary, "plan") as step:
            # The image's digest is known once provided: a live service pinned to it (by gcloud) runs this image.
            provided_digest = summary.digest
            plan = Planner(
                self._run, self._secrets, lambda image: provided_digest if image == summary.image else None
            ).plan(config, summary.image)
            step.result = "no changes" if plan.empty else f"{len(plan.changes) + len(plan.grants)} changes"
            summary.warnings += plan.warnings
            # What the release will change on the live service, a reverted `doki scale` or `cors` included.
            summary.plan = plan_data(plan)
            for text, _ in plan_lines(plan):
                self._progress(text)
            if plan.repeats_failure and not self._again():
                # The same image with the same settings fails the same way: a rerun of a failed CI job, say.
                failed = plan.live.failed if plan.live is not None else None
                raise DokiError(
                    Code.REPEATS_FAILED_REVISION,
                    f"{summary.image} is the image {failed[0] if failed else 'the newest revision'} of {config.name} "
                    "failed with, and nothing else changed: the new revision would fail the same way; nothing was "
                    "changed",
                    "release a commit that fixes it, change in doki.toml what made it fail, or pass --yes to try it "
                    "again",
                )
        if config.ingress != "all" and not plan.empty:
            unchecked = unreachable(config.ingress)
            summary.warnings.append(f"smoke checks not run: {unchecked}; traffic moves once the revision is Ready")
            self._progress(summary.warnings[-1])
        if plan.empty:
            # This commit, with this configuration, already serves all traffic: a rerun of the CI job.
            assert plan.live is not None
            summary.result = "unchanged"
            summary.revision = plan.live.latest_ready
            summary.service_url = plan.live.uri
            summary.traffic = self._shares(config.name)
            return
        if plan.live is None or not plan.live.shares:
            self._first_release(config, plan, summary)
            return
        self._staged_release(config, commit, plan, summary)

    def _first_release(self, config: ServiceConfig, plan: Plan, summary: Summary) -> None:
        """Nothing serves yet, so there is no traffic to protect: deploy, then check the service's own URL."""
        self._left = "; what Cloud Run was sent stays (a deploy it has started goes on)"
        with self._step(summary, "deploy") as step:
            self._progress("nothing serves yet: deploying the first revision")
            executor = Executor(
                self._run,
                self._secrets,
                health=lambda _: None,
                on_progress=self._progress,
                sleep=self._sleep,
                timeout=self._timeout,
            )
            deployed = executor.execute(plan)
            step.result = "created" if plan.creates else "deployed"
        summary.revision = deployed.revision
        summary.service_url = summary.tag_url = deployed.url
        with self._step(summary, "smoke") as step:
            self._progress(f"checking {deployed.url}")
            try:
                summary.checks = self._smoke(config, deployed.url, audience=deployed.url, first=True)
            except SmokeCheckFailed:
                step.result = "failed"
                self._attach_logs(summary, deployed.revision)
                raise
        summary.traffic = self._shares(config.name)
        summary.result = "released"

    def _staged_release(self, config: ServiceConfig, commit: Commit, plan: Plan, summary: Summary) -> None:
        """Stage the new revision with no traffic under the release lock, check it on its own URL, move traffic in
        doki.toml's steps; any failure or interrupt after the staging write puts the traffic back."""
        now = self._now()
        staging = Staging(
            config.name,
            f"{config.name}-{commit.short}-{secrets.token_hex(2)}",
            release_tag(config.name, commit),
            Lock(commit.sha, self._owner, self._host, now, now + config.release.lock_timeout_minutes * 60),
        )
        summary.revision, summary.tag = staging.revision, staging.tag
        # allUsers goes on before the staged write when that write turns the invoker check back on (the service is
        # public either way, never private in between); access that doki.toml opens otherwise is opened once the
        # release holds the lock, before the checks, so they run as callers will.
        binding_first = plan.invoker_changes and plan.binding and plan.writes_invoker_check
        opens = plan.invoker_changes and plan.binding
        try:
            with self._step(summary, "deploy") as step:
                if plan.member is not None and plan.grants:
                    # A grant lets the new revision read a secret; it serves nothing, and stays if we stop here.
                    self._left = f"; the secret access granted so far stays, nothing else on {config.name} was changed"
                    grant_access(self._secrets, plan, on_progress=self._progress)
                if binding_first:
                    self._set_invoker(plan)
                service = self._stage(plan, staging, summary, step)
            summary.tag_url = service.tag_url(staging.tag)
            summary.service_url = service.uri
            if not summary.tag_url:
                raise DokiError(
                    Code.NO_TAG_URL,
                    f"Cloud Run gave the tag {staging.tag} of {config.name} no URL, so {staging.revision} cannot be "
                    "checked on its own",
                    "check the service's ingress and `doki status`; nothing was moved",
                )
            if opens and not binding_first:
                self._set_invoker(plan)
            with self._step(summary, "smoke"):
                summary.checks = self._check(config, summary.tag_url, summary, staging.revision)
            with self._step(summary, "traffic") as step:
                self._move_traffic(config, staging, service, summary)
                step.result = traffic.steps_text(config.release.steps)
        except BaseException:
            if staging.sent:
                self._put_back(staging)
            raise
        if plan.invoker_changes and not opens:
            # allUsers comes off once the new revision serves (the staged write already set the invoker check as
            # doki.toml says, in either direction: what doki.toml asks of access stays if the release stops).
            self._set_invoker(plan)
        summary.traffic = self._shares(config.name)
        summary.result = "released"

    # The staged release's steps

    def _stage(self, plan: Plan, staging: Staging, summary: Summary, step: Step) -> LiveService:
        """The new revision, made with no traffic under its own name and tag, in the write that takes the lock."""
        self._progress(f"deploying {staging.revision} with no traffic, tagged {staging.tag}")

        def stage(service: LiveService) -> Edit:
            locks.take(service, staging.lock, self._now())
            staging.before[:] = traffic.pinned_now(service.traffic, service.latest_ready, staging.tag)
            return Edit(
                staged=Staged(plan.desired, plan.keep_env, staging.revision),
                traffic=traffic.staged(staging.before, staging.revision, staging.tag),
                annotations={LOCK: staging.lock.render()},
            )

        staging.sent = True
        try:
            try:
                return self._run.update(staging.name, stage, on_progress=self._progress, timeout=self._timeout)
            except DokiError as err:
                if not grant_not_yet_in_effect(err, plan):
                    raise
                # As a deploy does (Executor): the grant reads back at once but reaches Cloud Run later. One more
                # revision under a name of its own, once it has; the failed one never had traffic.
                self._progress(
                    f"{staging.revision} could not read its secrets yet: the access granted a moment ago takes time "
                    f"to reach Cloud Run; trying a new revision in {GRANT_SETTLE_SECONDS:.0f} s"
                )
                sleep_in_sight(
                    GRANT_SETTLE_SECONDS,
                    doing="waiting for the access granted to reach Cloud Run",
                    sleep=self._sleep,
                    on_progress=self._progress,
                )
                # The same NAME-SHA prefix, another random suffix (hex: the prefix is what precedes the last dash).
                prefix = staging.revision.rsplit("-", 1)[0]
                staging.revision = summary.revision = f"{prefix}-{secrets.token_hex(2)}"
                return self._run.update(staging.name, stage, on_progress=self._progress, timeout=self._timeout)
        except DokiError as err:
            if err.code == Code.REVISION_NOT_READY:
                step.result = "not ready"
                self._attach_logs(summary, staging.revision)
                err.exit_code = EXIT_CHECK_FAILED
            raise

    def _move_traffic(self, config: ServiceConfig, staging: Staging, service: LiveService, summary: Summary) -> None:
        """Traffic to the new revision in doki.toml's steps, each planned and written while the release holds the
        lock, the checks again between them; the last one drops the lock."""
        for percent in config.release.steps:
            step = TrafficStep(
                tuple(staging.before),
                staging.revision,
                staging.tag,
                percent,
                staging.lock,
                renew_for=config.release.lock_timeout_minutes * 60,
            )
            self._progress(f"moving {percent}% of the traffic to {staging.revision}")
            move = plan_traffic_step(self._run, service, step)
            service = apply_edit(self._run, move, on_progress=self._progress, now=self._now, timeout=self._timeout)
            if not step.last:
                assert summary.tag_url is not None
                wait = config.release.step_wait_seconds
                self._progress(f"{percent}% on {staging.revision}: checking again in {wait} s")
                sleep_in_sight(
                    wait,
                    doing=f"waiting with {percent}% on {staging.revision}",
                    sleep=self._sleep,
                    on_progress=self._progress,
                )
                self._check(config, summary.tag_url, summary, staging.revision)

    def _put_back(self, staging: Staging) -> None:
        """Traffic back to where it was, the new tag gone, the lock released; only while the lock is still ours.

        A Ctrl-C waits until it is done: interrupted, it would leave the lock to block every release until it expires.
        """
        with deferred_interrupt():
            self._restore(staging)

    def _restore(self, staging: Staging) -> None:
        name, revision = staging.name, staging.revision
        self._progress("putting the traffic back as it was")
        landed: list[bool] = []

        def restore(service: LiveService) -> Edit:
            # The traffic spec (not its status, which follows once routed) says whether our last step landed.
            main = service.traffic[:1]
            landed.append(
                bool(main) and main[0].percent == 100 and (main[0].revision or service.latest_ready) == revision
            )
            locks.ensure_ours(service, staging.lock, self._now())
            # A revision that failed the checks is Ready: only this note tells the next release or deploy.
            return Edit(traffic=tuple(staging.before), annotations={LOCK: None, CHECKS_FAILED: self._checks_failed})

        restored = f"; {name}'s traffic is back as it was and its release lock released"
        try:
            self._run.update(name, restore, on_progress=self._progress)
            self._left = restored
        except DokiError as err:
            if err.code == Code.RELEASE_LOCK_LOST:
                # Our last step landed (it released the lock), our first write never did, or another release
                # owns the service now: either way its traffic is not ours to touch.
                if landed and landed[-1]:
                    self._left = f", after it had landed: {revision} serves all of {name}'s traffic"
                return
            raise DokiError(
                Code.RELEASE_CLEANUP_FAILED,
                f"the release failed, and putting {name}'s traffic back failed too: {err.message}",
                f"run `doki status`; `doki rollback` pins traffic to a revision; the lock {LOCK} expires by itself",
            ) from None

    # Pieces

    def _set_invoker(self, plan: Plan) -> None:
        self._progress(invoker_progress(plan))
        self._run.set_public(plan.service, plan.binding)

    def _check(self, config: ServiceConfig, url: str, summary: Summary, revision: str) -> list[str]:
        self._progress(f"checking {url}")
        try:
            return self._smoke(config, url, audience=summary.service_url or url)
        except SmokeCheckFailed as failed:
            self._checks_failed = f"{revision} {failed.message}"[:500]
            self._attach_logs(summary, revision)
            raise

    def _smoke(self, config: ServiceConfig, url: str, *, audience: str, first: bool = False) -> list[str]:
        if config.ingress != "all":
            return []  # unreachable from here: `_release` said so, once
        headers: dict[str, str] = {}
        if not config.allow_unauthenticated:
            # A private service answers only callers with an ID token whose audience is one of its URLs: the
            # service's own, which the tag URL accepts too (GoogleCloudPlatform/cloud-networking-solutions#78: the
            # run.app URLs by default), rather than the tag URL, which no reference says it accepts.
            headers["Authorization"] = f"Bearer {self._identity_token(audience)}"
        try:
            return smoke_test(
                url,
                config.release.checks,
                attempts=config.release.attempts,
                sleep=self._sleep,
                fetch=self._fetch,
                headers=headers,
                on_progress=self._progress,
            )
        except SmokeCheckFailed as failed:
            # Cloud Run's own refusal (its front end's page), not the application's 401 or 403 on a checked path.
            if headers and _FRONT_END_REFUSAL.match(failed.last):
                failed.hint = _refused_token_hint(config, failed.last[5:8], first=first)
            elif first:
                failed.hint = f"{FIRST_SERVES}: fix the revision (`doki logs` has its output), then release again"
            raise

    def _attach_logs(self, summary: Summary, revision: str | None) -> None:
        if revision is None:
            return
        # The logs are a courtesy: the failure itself follows regardless.
        with suppress(DokiError):
            summary.last_log_lines = self._last_lines(revision)

    def _shares(self, name: str) -> dict[str, int]:
        service = self._run.get(name)
        return service.shares if service is not None else {}


# "HTTP 403: <html>…<h1>Error: Forbidden</h1>…": what the checks saw of Cloud Run's front end refusing the caller (its
# page, as the emulator's run/router.py serves it), not the application's own 401 or 403.
_FRONT_END_REFUSAL = re.compile(r"HTTP 40[13]: .*<h1>Error: (Forbidden|Unauthorized)</h1>", re.S)


FIRST_SERVES = "the first revision serves already (there was nothing to fall back to)"


def _refused_token_hint(config: ServiceConfig, status: str, *, first: bool) -> str:
    """What to fix when a private service refused the release's ID token: its audience (401), or the account's right
    to invoke the service (403). A first release has nothing to fall back to: its revision serves already."""
    after = (
        f"{FIRST_SERVES}; once fixed, the next commit's release checks again (this commit's finds it live and "
        "changes nothing)"
        if first
        else "traffic was not moved"
    )
    if status == "401":
        return f"Cloud Run did not accept the ID token (its audience must be the service's URL, unexpired); {after}"
    account = config.release.invoker_account or "the account your credentials act as"
    member = f"serviceAccount:{config.release.invoker_account}" if config.release.invoker_account else "ACCOUNT"
    return (
        f"{account} may not invoke {config.name}: grant it roles/run.invoker (gcloud run services "
        f"add-iam-policy-binding {config.name} --member={member} --role=roles/run.invoker --region {config.region} "
        f"--project {config.project}, or the same role on the whole project, which works before the service exists); "
        f"{after}"
    )
