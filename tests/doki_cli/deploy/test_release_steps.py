"""A release's steps on the in-memory double of Cloud Run and Secret Manager (tests/fakes/deploy.py), with a fake
image source, fake smoke-check answers and a fake clock: what each kind of release writes, in which order, what its
checks saw of the traffic while they ran, and where a failure leaves the traffic. No emulator, no containers, no
waiting: each test takes milliseconds. `test_release.py` runs the same release against the emulator with real
containers: the contract these tests rely on."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest

from doki_cli.config import ReleaseConfig, ServiceConfig, SmokeCheck
from doki_cli.deploy.lock import LOCK, Lock
from doki_cli.deploy.planner import read_live
from doki_cli.deploy.release import ProvidedImage, Release
from doki_cli.errors import DokiError
from doki_cli.gitinfo import Commit
from doki_cli.model import CHECKS_FAILED, Edit, LiveService, Target
from tests.fakes.deploy import FakeCloudRun, FakeSecretManager
from tests.helpers.deploy_core import IMAGE, MEMBER, deployed, doki_toml, quiet

GOOD = "1111111aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
OTHER = "2222222bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
SERVICE_URL = "https://api-h4sh-uc.a.run.app"
TAG = "sha-1111111"
TAG_URL = f"https://{TAG}---api-h4sh-uc.a.run.app"
HEALTHY = (200, b'{"message": "Doki Backend up"}')


class Images:
    """Stands in for the build and push: every image asked for is there already."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def provide(self, image: str, *, reuse: bool) -> ProvidedImage:
        self.asked.append(image)
        return ProvidedImage("sha256:" + "0" * 64, "reused")


class Clock:
    """Time that moves only when the release sleeps; `on_sleep` lets a test act during a wait."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0
        self.sleeps: list[float] = []
        self.on_sleep: Callable[[float], None] = lambda seconds: None

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.on_sleep(seconds)
        self.sleeps.append(seconds)
        self.now += seconds


class Site:
    """What the smoke checks reach: every URL answers the health contract, except those a test breaks. Each request
    is recorded with the traffic the service routed as it came."""

    def __init__(self, run: FakeCloudRun) -> None:
        self._run = run
        self._broken: dict[str, tuple[int, bytes]] = {}
        self.requests: list[tuple[str, dict[str, int]]] = []

    def break_url(self, prefix: str, answer: tuple[int, bytes]) -> None:
        self._broken[prefix] = answer

    def __call__(self, url: str, headers: Mapping[str, str]) -> tuple[int, bytes]:
        live = self._run.get("api")
        self.requests.append((url, live.shares if live is not None else {}))
        return next((answer for prefix, answer in self._broken.items() if url.startswith(prefix)), HEALTHY)


@pytest.fixture
def run() -> FakeCloudRun:
    return FakeCloudRun()


@pytest.fixture
def secrets() -> FakeSecretManager:
    secrets = FakeSecretManager()
    secrets.add("api-key", "enabled", readers=[MEMBER])
    return secrets


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def site(run: FakeCloudRun) -> Site:
    return Site(run)


@pytest.fixture
def images() -> Images:
    return Images()


@pytest.fixture
def release(
    run: FakeCloudRun, secrets: FakeSecretManager, images: Images, clock: Clock, site: Site
) -> Callable[[ServiceConfig], Release]:
    """A release by owner-one on ci-runner, its time and its checks' answers the test's."""

    def make(config: ServiceConfig) -> Release:
        return Release(
            run,
            secrets,
            images=images,
            push_secrets=None,
            last_lines=lambda revision: [f"last line of {revision}"],
            identity_token=lambda url: "token",
            fetch=site,
            on_progress=quiet,
            owner="owner-one",
            host="ci-runner",
            clock=clock.time,
            now=clock.time,
            sleep=clock.sleep,
        )

    return make


def stepped(**release: Any) -> ServiceConfig:
    """doki.toml with a [release] section."""
    return doki_toml(release=ReleaseConfig(**release))


def commit(sha: str = GOOD) -> Commit:
    return Commit(sha, False, "--sha")


def last_step(error: DokiError) -> tuple[object, object]:
    """The step a failed release stopped in, and how, as its JSON details report them."""
    steps = error.details["steps"]
    assert isinstance(steps, list)
    return steps[-1]["step"], steps[-1]["result"]


def locked(lock: Lock) -> Edit:
    """The write another release makes to take the service's lock."""
    return Edit(annotations={LOCK: lock.render()})


def serving(live: LiveService | None) -> str:
    assert live is not None and live.latest_ready is not None
    return live.latest_ready


def test_a_first_release_deploys_the_service_and_checks_its_own_url(
    run: FakeCloudRun, release: Callable[[ServiceConfig], Release], images: Images, site: Site
) -> None:
    summary = release(doki_toml()).release(doki_toml(), commit())

    live = run.get("api")
    assert summary.result == "released"
    assert [s.name for s in summary.steps] == ["image", "plan", "deploy", "smoke"]
    assert images.asked == [IMAGE]
    assert summary.service_url == summary.tag_url == SERVICE_URL
    assert site.requests == [(f"{SERVICE_URL}/", {serving(live): 100})]
    assert summary.revision == serving(live) and summary.traffic == {serving(live): 100}
    # Created, then GOOGLE_REDIRECT_URI from the URL Cloud Run gave it, then open to allUsers.
    assert [w.call for w in run.writes] == ["apply", "apply", "set_public"]
    assert run.is_public("api")


def test_a_staged_release_checks_the_revision_at_0_percent_then_moves_traffic_in_steps_under_its_lock(
    run: FakeCloudRun,
    secrets: FakeSecretManager,
    release: Callable[[ServiceConfig], Release],
    clock: Clock,
    site: Site,
) -> None:
    old = serving(deployed(run, secrets, doki_toml(), "us-central1-docker.pkg.dev/doki-test/doki/api:0000000"))
    config = stepped(steps=(10, 50, 100), step_wait_seconds=60)

    summary = release(config).release(config, commit())

    new = summary.revision
    assert summary.result == "released"
    assert new is not None and new.startswith("api-1111111-")
    assert (summary.tag, summary.tag_url, summary.service_url) == (TAG, TAG_URL, SERVICE_URL)
    # Checked on its tag's URL while it served nothing, then again after 10% and after 50%.
    assert site.requests == [
        (f"{TAG_URL}/", {old: 100}),
        (f"{TAG_URL}/", {old: 90, new: 10}),
        (f"{TAG_URL}/", {old: 50, new: 50}),
    ]
    # 60 s after 10% and after 50%, each slept in heartbeat slices so a log shows the wait going on.
    assert clock.sleeps == [10.0] * 12
    edits = [w.edit for w in run.writes]
    assert [w.call for w in run.writes] == ["update"] * 4
    assert [e.traffic for e in edits if e is not None] == [
        (Target(old, 100), Target(new, 0, TAG)),
        (Target(old, 90), Target(new, 10, TAG)),
        (Target(old, 50), Target(new, 50, TAG)),
        (Target(None, 100), Target(new, 0, TAG)),
    ]
    staged = edits[0]
    assert staged is not None and staged.staged is not None and staged.staged.revision == new
    locks = [Lock.parse(str(e.annotations[LOCK])) for e in edits[:3] if e is not None]
    assert [(lock.commit, lock.owner) for lock in locks if lock is not None] == [(GOOD, "owner-one")] * 3
    last = edits[3]
    assert last is not None and last.annotations == {LOCK: None, CHECKS_FAILED: None}  # the last step drops it
    live = run.get("api")
    assert live is not None and LOCK not in live.annotations
    assert live.traffic_to_latest and summary.traffic == {new: 100}
    assert [(s.name, s.result) for s in summary.steps][-1] == ("traffic", "10% -> 50% -> 100%")


def test_a_failed_smoke_check_puts_traffic_back_exactly_as_before_and_leaves_a_note(
    run: FakeCloudRun,
    secrets: FakeSecretManager,
    release: Callable[[ServiceConfig], Release],
    clock: Clock,
    site: Site,
) -> None:
    before = deployed(run, secrets, doki_toml(), "us-central1-docker.pkg.dev/doki-test/doki/api:0000000")
    site.break_url(TAG_URL, (500, b"boom"))
    config = stepped(checks=(SmokeCheck("/ready", 200),), attempts=2)

    with pytest.raises(DokiError) as failed:
        release(config).release(config, commit())

    error = failed.value
    new = error.details["revision"]
    assert (error.code, error.exit_code) == ("smoke_check_failed", 3)
    assert error.message == f"{TAG_URL}/ failed the health contract after 2 tries; last: HTTP 500: boom"
    assert error.details["result"] == "failed"
    assert error.details["last_log_lines"] == [f"last line of {new}"]
    assert last_step(error) == ("smoke", "failed")
    live = run.get("api")
    assert live is not None
    assert live.routed == before.routed  # the tag gone too
    # Pinned where it went: "latest" would now mean the revision that failed its checks.
    assert live.traffic == (Target(before.latest_ready, 100),)
    assert LOCK not in live.annotations
    assert live.annotations[CHECKS_FAILED] == f"{new} {error.message}"
    assert live.failed == (new, error.message)  # what the next release or deploy of this image is told
    assert clock.sleeps == [0.5]  # one wait between the two tries


def test_a_revision_that_never_becomes_ready_leaves_traffic_where_it_was(
    run: FakeCloudRun, secrets: FakeSecretManager, release: Callable[[ServiceConfig], Release], site: Site
) -> None:
    before = deployed(run, secrets, doki_toml(), "us-central1-docker.pkg.dev/doki-test/doki/api:0000000")
    run.fail_next_revision("container exited with code 78")

    with pytest.raises(DokiError) as failed:
        release(doki_toml()).release(doki_toml(), commit())

    assert (failed.value.code, failed.value.exit_code) == ("revision_not_ready", 3)
    assert failed.value.message.endswith("is not ready and cannot serve traffic. container exited with code 78")
    assert last_step(failed.value) == ("deploy", "not ready")
    live = run.get("api")
    assert live is not None and live.routed == before.routed and LOCK not in live.annotations
    assert site.requests == []  # nothing to check


def test_another_releases_lock_refuses_the_release_before_it_writes_anything(
    run: FakeCloudRun, secrets: FakeSecretManager, release: Callable[[ServiceConfig], Release], clock: Clock
) -> None:
    deployed(run, secrets, doki_toml(), "us-central1-docker.pkg.dev/doki-test/doki/api:0000000")
    held = Lock(OTHER, "owner-two", "other-runner", clock.now - 60, clock.now + 600)
    with run.by_someone_else():
        run.update("api", lambda _: locked(held), on_progress=quiet)
    revisions = run.revisions("api")

    with pytest.raises(DokiError) as refused:
        release(doki_toml()).release(doki_toml(), commit())

    assert (refused.value.code, refused.value.exit_code) == ("release_locked", 5)
    assert refused.value.message == (
        "a release of 2222222bbbbb (started 2027-01-15T07:59:00+00:00 on other-runner) holds api's release lock "
        "until 2027-01-15T08:10:00+00:00; this release of 1111111aaaaa changed nothing"
    )
    assert run.writes == [] and secrets.granted == []
    assert run.revisions("api") == revisions


def test_a_lock_another_release_takes_between_the_read_and_the_write_refuses_the_staging_write(
    run: FakeCloudRun, secrets: FakeSecretManager, release: Callable[[ServiceConfig], Release], clock: Clock
) -> None:
    deployed(run, secrets, doki_toml(), "us-central1-docker.pkg.dev/doki-test/doki/api:0000000")
    theirs = Lock(OTHER, "owner-two", "other-runner", clock.now, clock.now + 600)

    def their_write_lands_first() -> None:
        run.update("api", lambda _: locked(theirs), on_progress=quiet)

    # Both read the service; the other release's write lands first, so this one's carries a stale etag.
    run.meanwhile(their_write_lands_first)

    with pytest.raises(DokiError) as refused:
        release(doki_toml()).release(doki_toml(), commit())

    assert refused.value.code == "release_locked"
    assert refused.value.message.startswith("a release of 2222222bbbbb")
    assert run.writes == []


def test_a_release_whose_lock_is_taken_over_mid_rollout_stops_and_leaves_the_traffic_to_the_new_holder(
    run: FakeCloudRun,
    secrets: FakeSecretManager,
    release: Callable[[ServiceConfig], Release],
    clock: Clock,
) -> None:
    old = serving(deployed(run, secrets, doki_toml(), "us-central1-docker.pkg.dev/doki-test/doki/api:0000000"))
    theirs = Lock(OTHER, "owner-two", "other-runner", clock.now, clock.now + 3600)

    def taken_over(seconds: float) -> None:
        with run.by_someone_else():
            run.update("api", lambda _: locked(theirs), on_progress=quiet)

    clock.on_sleep = taken_over  # during the wait after the 10% step
    config = stepped(steps=(10, 50, 100), step_wait_seconds=60)

    with pytest.raises(DokiError) as lost:
        release(config).release(config, commit())

    new = lost.value.details["revision"]
    assert (lost.value.code, lost.value.exit_code) == ("release_lock_lost", 5)
    assert lost.value.message == (
        "api's release lock was taken over by a release of 2222222bbbbb while this release of 1111111aaaaa ran"
    )
    assert len(run.writes) == 2  # staged, then 10%: no 50% step, and no put-back of traffic no longer ours
    live = run.get("api")
    assert live is not None and live.shares == {old: 90, new: 10}
    assert Lock.parse(live.annotations[LOCK]) == theirs


def test_releasing_the_commit_that_serves_already_is_unchanged_and_writes_nothing(
    run: FakeCloudRun, secrets: FakeSecretManager, release: Callable[[ServiceConfig], Release]
) -> None:
    deployed(run, secrets, doki_toml(), "us-central1-docker.pkg.dev/doki-test/doki/api:0000000")
    with run.by_someone_else():
        first = release(doki_toml()).release(doki_toml(), commit())
    etag = read_live(run, "api").etag

    again = release(doki_toml()).release(doki_toml(), commit())

    assert (first.result, again.result) == ("released", "unchanged")
    assert again.revision == first.revision and again.traffic == {str(first.revision): 100}
    assert [s.name for s in again.steps] == ["image", "plan"]
    assert run.writes == []
    assert read_live(run, "api").etag == etag


def test_a_release_whose_wait_runs_out_before_traffic_moves_leaves_traffic_where_it_was_and_says_so(
    run: FakeCloudRun, secrets: FakeSecretManager, clock: Clock, site: Site, images: Images
) -> None:
    before = deployed(run, secrets, doki_toml(), "us-central1-docker.pkg.dev/doki-test/doki/api:0000000")
    old = serving(before)
    run.time_out_next_write()  # the staging write lands, but Cloud Run does not finish it within --timeout
    seen: list[str] = []
    timed = Release(
        run,
        secrets,
        images=images,
        push_secrets=None,
        last_lines=lambda revision: [],
        identity_token=lambda url: "token",
        fetch=site,
        on_progress=seen.append,
        owner="owner-one",
        host="ci-runner",
        clock=clock.time,
        now=clock.time,
        sleep=clock.sleep,
        timeout=120,
    )

    with pytest.raises(DokiError) as failed:
        timed.release(doki_toml(), commit())

    error = failed.value
    assert (error.code, error.exit_code) == ("wait_timeout", 124)
    assert error.hint == (
        "the change goes on at Google: `doki status` shows where it is; "
        f"api's traffic is back as it was and its release lock released; serving now: 100% {old} (image "
        "us-central1-docker.pkg.dev/doki-test/doki/api:0000000); `doki release` again, with a longer --timeout, "
        "releases it"
    )
    assert last_step(error) == ("deploy", "failed")
    assert site.requests == []  # never checked, so never given traffic
    live = run.get("api")
    assert live is not None and live.traffic == (Target(old, 100),) and LOCK not in live.annotations
    # The staging write waited as long as --timeout said; the put-back, which keeps traffic safe, the default.
    assert run.timeouts[-2:] == [120, 900]  # after the setup's deploy
    assert seen[-1] == "putting the traffic back as it was"


def test_a_first_release_whose_wait_runs_out_says_the_revision_will_serve_unchecked(
    run: FakeCloudRun, release: Callable[[ServiceConfig], Release]
) -> None:
    run.time_out_next_write()

    with pytest.raises(DokiError) as failed:
        release(doki_toml()).release(doki_toml(), commit())

    assert failed.value.code == "wait_timeout"
    assert failed.value.hint.endswith(
        "; nothing served before, so the first revision serves once Ready, unchecked; serving now: "
        f"100% {serving(run.get('api'))} (image {IMAGE})"
    )
