"""The release core against the emulator with real containers: staging with no traffic, smoke checks, traffic
steps, the release lock, and traffic put back on every failure. The image comes from a fake source (the session's
backend image, retagged), so these tests are about what happens on the service;
`tests/doki_cli/commands/test_release.py` runs the whole command with real builds and pushes."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from doki_cli.config import ReleaseConfig, ServiceConfig, SmokeCheck, load_config
from doki_cli.deploy.executor import GRANT_SETTLE_SECONDS
from doki_cli.deploy.lock import LOCK, Lock
from doki_cli.deploy.release import ProvidedImage, Release, Summary, release_tag
from doki_cli.emulator.server import Emulator
from doki_cli.errors import DokiError
from doki_cli.gcp.clients import ClientFactory
from doki_cli.gcp.google import Google
from doki_cli.gitinfo import Commit
from doki_cli.main import app
from doki_cli.model import Edit, Scaling
from doki_cli.waiting import HEARTBEAT_SECONDS
from tests.helpers import CliRunner
from tests.helpers.images import publish
from tests.helpers.project import PATH, setup_project

runner = CliRunner()
GOOD = "1111111aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
OTHER = "2222222bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"


class RetaggedImages:
    """Stands in for a build and push: the image a release asks for is the session's backend image, retagged, and
    recorded in the emulator's Artifact Registry."""

    def __init__(self, docker_client: Any, source: str, emulator: Emulator) -> None:
        self._client = docker_client
        self._source = source
        self._emulator = emulator
        self.asked: list[str] = []

    def provide(self, image: str, *, reuse: bool) -> ProvidedImage:
        self.asked.append(image)
        repository, _, tag = image.rpartition(":")
        self._client.images.get(self._source).tag(repository, tag)
        publish(self._emulator, image)
        return ProvidedImage("sha256:" + "0" * 64, "reused")


class Clock:
    def __init__(self, on_sleep: Callable[[float], None] | None = None) -> None:
        self.now = 1_800_000_000.0
        self.sleeps: list[float] = []
        self._on_sleep = on_sleep

    def sleep(self, seconds: float) -> None:
        if self._on_sleep is not None:
            self._on_sleep(seconds)
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def live(
    tmp_path: Path, engine_emulator: Emulator, backend_image: str, monkeypatch: pytest.MonkeyPatch
) -> ServiceConfig:
    """The backend deployed once with `doki deploy`: one revision serves 100%, following latest."""
    setup_project(tmp_path, engine_emulator, monkeypatch)
    assert runner.invoke(app, ["secrets", "push"]).exit_code == 0
    deployed = runner.invoke(app, ["deploy", "--image", backend_image, "--yes"])
    assert deployed.exit_code == 0, deployed.output
    return load_config(tmp_path / "doki.toml")


def make_release(
    google: Google,
    images: RetaggedImages,
    clock: Clock,
    *,
    progress: list[str] | None = None,
    fetch: Callable[[str, Mapping[str, str]], tuple[int, bytes]] | None = None,
    owner: str = "owner-one",
) -> Release:
    return Release(
        google.run,
        google.secrets,
        images=images,
        push_secrets=None,
        last_lines=lambda revision: [f"last line of {revision}"],
        identity_token=lambda url: "token",
        on_progress=(progress if progress is not None else []).append,
        owner=owner,
        host="ci-runner",
        now=lambda: clock.now,
        sleep=clock.sleep,
        fetch=fetch,
    )


def google_for(emulator: Emulator, config: ServiceConfig) -> Google:
    from doki_cli.gcp.clients import ClientFactory

    return Google(ClientFactory(emulator.grpc_address), config.project, config.region)


def traffic(google: Google) -> list[tuple[str, int, str]]:
    service = google.run.get("doki-backend")
    assert service is not None
    return sorted((s.revision, s.percent, s.tag) for s in service.routed)


@pytest.fixture
def images(docker_client: Any, backend_image: str, engine_emulator: Emulator) -> RetaggedImages:
    return RetaggedImages(docker_client, backend_image, engine_emulator)


def test_a_good_commit_is_staged_untouched_checked_on_its_own_url_then_gets_all_traffic(
    live: ServiceConfig, engine_emulator: Emulator, images: RetaggedImages
) -> None:
    google = google_for(engine_emulator, live)
    before = traffic(google)
    [(old, _, _)] = before
    seen_during_smoke: list[list[tuple[str, int, str]]] = []

    def fetch(url: str, headers: Mapping[str, str]) -> tuple[int, bytes]:
        seen_during_smoke.append(traffic(google))
        answer = httpx.get(url, headers=dict(headers), timeout=10)
        return answer.status_code, answer.content

    clock = Clock()
    summary = make_release(google, images, clock, fetch=fetch).release(live, Commit(GOOD, False, "--sha"))

    assert summary.result == "released"
    assert summary.revision is not None and summary.revision.startswith("doki-backend-1111111-")
    assert summary.tag == "sha-1111111"
    assert images.asked == [f"{live.image}:1111111"]
    # While the new revision was checked, it served nothing: only its tag reached it.
    assert seen_during_smoke[0] == sorted([(old, 100, ""), (summary.revision, 0, "sha-1111111")])
    assert traffic(google) == sorted([(summary.revision, 100, ""), (summary.revision, 0, "sha-1111111")])
    assert summary.traffic == {summary.revision: 100}
    assert summary.tag_url and summary.tag_url != summary.service_url
    assert httpx.get(summary.tag_url + "/", timeout=10).json() == {"message": "Doki Backend up"}
    assert [s.name for s in summary.steps] == ["image", "plan", "deploy", "smoke", "traffic"]
    service = google.run.get("doki-backend")
    assert service is not None and LOCK not in service.annotations  # released with the last traffic write
    # As `doki deploy` leaves it: all traffic follows latest, so a dry run finds nothing to change.
    dry_run = runner.invoke(app, ["deploy", "--image", f"{live.image}:1111111", "--dry-run"])
    assert dry_run.exit_code == 0, dry_run.output


def test_releasing_the_live_commit_again_changes_nothing(
    live: ServiceConfig, engine_emulator: Emulator, images: RetaggedImages
) -> None:
    google = google_for(engine_emulator, live)
    first = make_release(google, images, Clock()).release(live, Commit(GOOD, False, "--sha"))
    etag = google.run.get("doki-backend").etag  # type: ignore[union-attr]
    again = make_release(google, images, Clock()).release(live, Commit(GOOD, False, "--sha"))
    assert again.result == "unchanged"
    assert again.revision == first.revision
    assert google.run.get("doki-backend").etag == etag  # type: ignore[union-attr]


def test_a_failed_smoke_check_leaves_traffic_exactly_where_it_was(
    live: ServiceConfig, engine_emulator: Emulator, images: RetaggedImages
) -> None:
    google = google_for(engine_emulator, live)
    before = traffic(google)
    config = replace(live, release=ReleaseConfig(checks=(SmokeCheck("/nowhere", 200),), attempts=2))
    clock = Clock()
    with pytest.raises(DokiError) as failed:
        make_release(google, images, clock).release(config, Commit(GOOD, False, "--sha"))

    error = failed.value
    assert (error.code, error.exit_code) == ("smoke_check_failed", 3)
    assert "/nowhere failed GET /nowhere -> 200 after 2 tries; last: HTTP 404" in error.message
    assert traffic(google) == before  # the tag is gone too
    assert error.details["result"] == "failed"
    assert error.details["last_log_lines"] == [f"last line of {error.details['revision']}"]
    assert [(s["step"], s["result"]) for s in error.details["steps"]][-1] == ("smoke", "failed")  # type: ignore[index]
    service = google.run.get("doki-backend")
    assert service is not None and LOCK not in service.annotations
    assert clock.sleeps == [0.5]  # one wait between the two tries, through the injected sleep


def test_a_revision_that_never_becomes_ready_leaves_traffic_where_it_was(
    live: ServiceConfig, engine_emulator: Emulator, images: RetaggedImages
) -> None:
    google = google_for(engine_emulator, live)
    before = traffic(google)
    engine_emulator.faults.fail_revisions("doki-backend", message="container exited with code 78")
    with pytest.raises(DokiError) as failed:
        make_release(google, images, Clock()).release(live, Commit(GOOD, False, "--sha"))
    assert (failed.value.code, failed.value.exit_code) == ("revision_not_ready", 3)
    assert "container exited with code 78" in failed.value.message
    assert traffic(google) == before
    service = google.run.get("doki-backend")
    assert service is not None and LOCK not in service.annotations


def test_gradual_steps_split_traffic_and_check_again_after_each(
    live: ServiceConfig, engine_emulator: Emulator, images: RetaggedImages
) -> None:
    google = google_for(engine_emulator, live)
    [(old, _, _)] = traffic(google)
    config = replace(live, release=ReleaseConfig(steps=(25, 100), step_wait_seconds=43))
    shares: list[dict[str, int]] = []
    checked: list[str] = []

    def between_steps(seconds: float) -> None:
        # The last slice of the 43 s pause (four 10 s heartbeats, then 3 s: never a smoke check's retry delay).
        if seconds == 3:
            service = google.run.get("doki-backend")
            assert service is not None
            shares.append({s.revision: s.percent for s in service.routed if s.percent})
            checked.append(json.loads(service.annotations[LOCK])["commit"])  # the lock is held all along

    summary = make_release(google, images, Clock(between_steps)).release(config, Commit(GOOD, False, "--sha"))
    assert summary.revision is not None
    assert shares == [{old: 75, summary.revision: 25}]
    assert checked == [GOOD]
    assert summary.traffic == {summary.revision: 100}


def test_a_release_stops_while_another_holds_the_lock_and_names_it(
    live: ServiceConfig, engine_emulator: Emulator, images: RetaggedImages
) -> None:
    google = google_for(engine_emulator, live)
    clock = Clock()
    held = Lock(OTHER, "owner-two", "other-runner", clock.now - 60, clock.now + 600)
    google.run.update("doki-backend", lambda _: Edit(annotations={LOCK: held.render()}), on_progress=lambda m: None)
    revisions = len(google.run.revisions("doki-backend"))
    with pytest.raises(DokiError) as failed:
        make_release(google, images, clock).release(live, Commit(GOOD, False, "--sha"))
    assert (failed.value.code, failed.value.exit_code) == ("release_locked", 5)
    assert failed.value.message.startswith(
        "a release of 2222222bbbbb (started 2027-01-15T07:59:00+00:00 on other-runner) holds doki-backend's "
        "release lock until 2027-01-15T08:10:00+00:00; this release of 1111111aaaaa changed nothing"
    )
    assert len(google.run.revisions("doki-backend")) == revisions

    clock.now += 601  # the other release died: its lock expires and the next release goes ahead
    assert make_release(google, images, clock).release(live, Commit(GOOD, False, "--sha")).result == "released"


def test_two_releases_racing_end_with_one_winner_and_traffic_intact(
    live: ServiceConfig, engine_emulator: Emulator, images: RetaggedImages, docker_client: Any
) -> None:
    google_one = google_for(engine_emulator, live)
    google_two = google_for(engine_emulator, live)
    results: dict[str, Summary | DokiError] = {}
    start = threading.Barrier(2)

    def run(owner: str, google: Google, sha: str) -> None:
        start.wait()
        try:
            results[owner] = make_release(google, images, Clock(), owner=owner).release(live, Commit(sha, False, "x"))
        except DokiError as err:
            results[owner] = err

    threads = [
        threading.Thread(target=run, args=("one", google_one, GOOD)),
        threading.Thread(target=run, args=("two", google_two, OTHER)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    outcomes = sorted(type(r).__name__ for r in results.values())
    assert outcomes == ["DokiError", "Summary"], results
    [winner] = [r for r in results.values() if isinstance(r, Summary)]
    [loser] = [r for r in results.values() if isinstance(r, DokiError)]
    assert loser.code == "release_locked"
    assert winner.commit[:12] in loser.message
    assert {s[0] for s in traffic(google_one) if s[1]} == {winner.revision}


def test_the_summary_names_every_step_with_its_duration() -> None:
    summary = Summary("c" * 40, "img:c", PATH)
    data = summary.as_dict()
    assert set(data) >= {"result", "commit", "image", "digest", "revision", "tag_url", "service_url", "traffic"}


def test_a_deploy_waits_for_a_release_in_progress_instead_of_moving_traffic_under_it(
    live: ServiceConfig, engine_emulator: Emulator, backend_image: str
) -> None:
    google = google_for(engine_emulator, live)
    now = time.time()
    held = Lock(OTHER, "owner-two", "other-runner", now, now + 600)
    google.run.update("doki-backend", lambda _: Edit(annotations={LOCK: held.render()}), on_progress=lambda m: None)
    etag = google.run.get("doki-backend").etag  # type: ignore[union-attr]
    publish(engine_emulator, backend_image + "-other")
    result = runner.invoke(app, ["deploy", "--image", backend_image + "-other", "--yes"])
    assert result.exit_code == 5
    assert result.stderr.startswith(
        "Error [release_locked]: a release of 2222222bbbbb (on other-runner) is in progress on doki-backend until "
    )
    assert google.run.get("doki-backend").etag == etag  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("length", "dirty", "tag"),
    [
        (12, False, "sha-1111111"),
        (35, False, "sha-1111111"),  # 46 together, Cloud Run's limit
        (36, False, "sha-111111"),
        (38, False, "sha-1111"),
        (29, True, "sha-1111111-dirty"),
        (32, True, "sha-1111-dirty"),
    ],
)
def test_a_long_service_name_gets_a_shorter_sha_in_its_release_tag(length: int, dirty: bool, tag: str) -> None:
    name = "s" * length

    assert release_tag(name, Commit(GOOD, dirty, "--sha")) == tag
    assert len(tag) + length <= 46


@pytest.mark.parametrize(("length", "dirty", "longest"), [(39, False, 38), (49, False, 38), (33, True, 32)])
def test_a_service_name_that_leaves_no_room_for_a_release_tag_is_refused_naming_the_limit(
    length: int, dirty: bool, longest: int
) -> None:
    name = "s" * length

    with pytest.raises(DokiError) as refused:
        release_tag(name, Commit(GOOD, dirty, "--sha"))

    assert (refused.value.code, refused.value.exit_code) == ("service_name_too_long", 78)
    assert f"refuses a tag and service name of more than 46 characters together: '{name}' ({length} characters)" in (
        refused.value.message
    )
    assert refused.value.hint == (
        f"name the service at most {longest} characters in doki.toml, or deploy it with `doki deploy`, which needs "
        "no tag"
    )


def test_a_service_with_a_38_character_name_is_released_under_a_tag_cloud_run_accepts(
    tmp_path: Path,
    engine_emulator: Emulator,
    backend_image: str,
    images: RetaggedImages,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = "doki-backend-" + "x" * 25
    setup_project(tmp_path, engine_emulator, monkeypatch)
    (tmp_path / "doki.toml").write_text((tmp_path / "doki.toml").read_text().replace('"doki-backend"', f'"{name}"'))
    assert runner.invoke(app, ["secrets", "push"]).exit_code == 0
    assert runner.invoke(app, ["deploy", "--image", backend_image, "--yes"]).exit_code == 0
    config = load_config(tmp_path / "doki.toml")

    summary = make_release(google_for(engine_emulator, config), images, Clock()).release(
        config, Commit(GOOD, False, "--sha")
    )

    assert (len(name), summary.result, summary.tag) == (38, "released", "sha-1111")
    assert summary.tag_url and httpx.get(summary.tag_url + "/", timeout=10).status_code == 200


def test_a_release_reports_what_may_keep_its_revision_from_starting(
    live: ServiceConfig, engine_emulator: Emulator, images: RetaggedImages
) -> None:
    # No runtime account: the revision runs as the default one, which no secret lets read it, and so fails.
    no_account = replace(live, service_account=None)

    with pytest.raises(DokiError) as failed:
        make_release(google_for(engine_emulator, live), images, Clock()).release(
            no_account, Commit(GOOD, False, "--sha"), skipped_checks=["ALLOWED_ORIGINS contains '*'"]
        )

    first, second = failed.value.details["warnings"]
    assert first == "--skip-checks: the new revision may not start: ALLOWED_ORIGINS contains '*'"
    assert second.startswith(
        "service_account is not set, so the revisions run as the project's Compute Engine default account"
    )
    assert failed.value.code == "revision_not_ready"


def test_a_release_shows_its_plan_first_a_live_change_it_reverts_included(
    live: ServiceConfig, engine_emulator: Emulator, images: RetaggedImages
) -> None:
    google = google_for(engine_emulator, live)
    google.run.update("doki-backend", lambda _: Edit(scaling=Scaling(min_instances=1)), on_progress=lambda m: None)
    progress: list[str] = []

    summary = make_release(google, images, Clock(), progress=progress).release(live, Commit(GOOD, False, "--sha"))

    header = f"Plan for doki-backend ({PATH}) on the emulator at {engine_emulator.grpc_address}:"
    assert progress.index(header) < progress.index("  ~ min instances: 1 -> 0") < progress.index("2 changes.")
    assert progress.index("2 changes.") < next(i for i, line in enumerate(progress) if line.startswith("deploying"))
    assert {"what": "min instances", "before": "1", "after": "0"} in summary.as_dict()["plan"]["changes"]


def test_a_secret_granted_by_the_release_that_has_not_reached_cloud_run_costs_one_revision_and_a_wait(
    live: ServiceConfig, engine_emulator: Emulator, images: RetaggedImages, tmp_path: Path
) -> None:
    # A new secret in doki.toml: the release grants the runtime account access to it, and Cloud Run sees that
    # grant only after the project's propagation delay (real seconds here: the emulator's clock is real).
    secrets_client = ClientFactory(engine_emulator.grpc_address).secret_manager()
    secrets_client.create_secret(
        parent="projects/doki-e2e", secret_id="new-key", secret={"replication": {"automatic": {}}}
    )
    secrets_client.add_secret_version(parent="projects/doki-e2e/secrets/new-key", payload={"data": b"v"})
    toml = (
        (tmp_path / "doki.toml").read_text().replace("[service.secrets]\n", '[service.secrets]\nNEW_KEY = "new-key"\n')
    )
    (tmp_path / "doki.toml").write_text(toml)
    config = load_config(tmp_path / "doki.toml")
    httpx.post(f"{engine_emulator.rest_url}/_doki/policies", json={"project": "doki-e2e", "iam_propagation_seconds": 2})
    google = google_for(engine_emulator, config)
    [(old, _, _)] = traffic(google)

    def real_wait(seconds: float) -> None:
        if seconds == HEARTBEAT_SECONDS and HEARTBEAT_SECONDS not in clock.sleeps:
            time.sleep(2.5)  # what the release waits, in the emulator's time: once, in its first 10 s slice

    progress: list[str] = []
    clock = Clock(on_sleep=real_wait)
    summary = make_release(google, images, clock, progress=progress).release(config, Commit(GOOD, False, "--sha"))

    assert summary.result == "released"
    assert clock.sleeps.count(HEARTBEAT_SECONDS) * HEARTBEAT_SECONDS == GRANT_SETTLE_SECONDS  # the one wait
    [retried] = [line for line in progress if "could not read its secrets yet" in line]
    assert retried.startswith("doki-backend-1111111-") and retried.endswith("trying a new revision in 60 s")
    first_try = retried.split(" ", 1)[0]
    assert summary.revision != first_try
    assert traffic(google) == sorted([(summary.revision, 100, ""), (summary.revision, 0, "sha-1111111")])
    assert old != summary.revision


def test_a_release_of_an_internal_service_says_its_smoke_checks_could_not_run_from_here_and_releases(
    live: ServiceConfig, engine_emulator: Emulator, images: RetaggedImages
) -> None:
    internal = replace(live, ingress="internal")
    google = google_for(engine_emulator, internal)
    progress: list[str] = []

    summary = make_release(google, images, Clock(), progress=progress).release(internal, Commit(GOOD, False, "--sha"))

    assert summary.result == "released"
    assert summary.checks == []
    note = (
        "smoke checks not run: ingress is internal, so its URL answers only requests from the project's VPC networks "
        "(Cloud Run answers others 404); check it from there; traffic moves once the revision is Ready"
    )
    assert summary.warnings == [note]
    assert note in progress
    assert traffic(google) == sorted([(summary.revision, 100, ""), (summary.revision, 0, "sha-1111111")])
    assert httpx.get(str(summary.service_url) + "/", timeout=10).status_code == 404  # not from here, indeed
