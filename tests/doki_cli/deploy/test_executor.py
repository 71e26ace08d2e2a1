"""The executor against the emulator with real containers: a secret grant made by this deploy that has not reached
Cloud Run yet costs one failed revision and a wait, not the deploy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from doki_cli.config import load_config
from doki_cli.deploy.executor import GRANT_SETTLE_SECONDS, Executor
from doki_cli.deploy.planner import Planner
from doki_cli.emulator.server import Emulator, EmulatorConfig
from doki_cli.errors import DokiError
from doki_cli.gcp.clients import ClientFactory
from doki_cli.gcp.google import Google
from doki_cli.main import app
from doki_cli.waiting import HEARTBEAT_SECONDS
from tests.helpers import BACKEND_IMAGE, CliRunner
from tests.helpers.project import PATH, PROJECT, setup_project


class Clock:
    """The emulator's clock, moved on by the executor's waits alone."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cloud(tmp_path: Path, docker_client: Any, backend_image: str, clock: Clock) -> Iterator[Emulator]:
    from doki_cli.engine import DockerEngine

    with Emulator(EmulatorConfig(state_dir=tmp_path / "state"), engine=DockerEngine(docker_client), clock=clock) as emu:
        yield emu


def first_deploy(tmp_path: Path, cloud: Emulator, clock: Clock, monkeypatch: pytest.MonkeyPatch, delay: float) -> Any:
    setup_project(tmp_path, cloud, monkeypatch)
    monkeypatch.chdir(tmp_path)
    assert CliRunner().invoke(app, ["secrets", "push"]).exit_code == 0
    httpx.post(f"{cloud.rest_url}/_doki/policies", json={"project": PROJECT, "iam_propagation_seconds": delay})
    google = Google(ClientFactory(cloud.grpc_address), PROJECT)
    config = load_config(tmp_path / "doki.toml")
    plan = Planner(google.run, google.secrets).plan(config, BACKEND_IMAGE)
    assert plan.grants  # this deploy grants the runtime account its secrets
    seen: list[str] = []
    executor = Executor(google.run, google.secrets, health=lambda url: None, on_progress=seen.append, sleep=clock.sleep)
    return executor, plan, seen


def revisions(cloud: Emulator) -> list[tuple[str, str]]:
    """(Ready state, message start) of each revision, oldest first."""
    listed = ClientFactory(cloud.grpc_address).run_revisions().list_revisions(parent=PATH)
    found = sorted(listed, key=lambda r: r.create_time)
    return [(next(c.state.name for c in r.conditions if c.type_ == "Ready"), r.name.rsplit("/", 1)[1]) for r in found]


def test_a_grant_that_reaches_cloud_run_within_the_wait_costs_one_failed_revision(
    tmp_path: Path, cloud: Emulator, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    executor, plan, seen = first_deploy(tmp_path, cloud, clock, monkeypatch, delay=45)

    deployed = executor.execute(plan)

    # One wait of 60 s, slept in slices that each say the wait goes on.
    assert clock.slept == [HEARTBEAT_SECONDS] * 6 and sum(clock.slept) == GRANT_SETTLE_SECONDS
    assert "waiting for the access granted to reach Cloud Run (50 s of 60 s)" in seen
    assert (
        "the new revision could not read its secrets yet: the access granted a moment ago takes time to reach Cloud "
        "Run; trying a new revision in 60 s"
    ) in seen
    states = [state for state, _ in revisions(cloud)]
    assert states[0] == "CONDITION_FAILED" and states[-1] == "CONDITION_SUCCEEDED"
    assert deployed.revision == revisions(cloud)[-1][1]


def test_a_grant_still_not_in_effect_after_the_wait_fails_the_deploy_saying_so(
    tmp_path: Path, cloud: Emulator, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    executor, plan, _ = first_deploy(tmp_path, cloud, clock, monkeypatch, delay=600)

    with pytest.raises(DokiError) as failed:
        executor.execute(plan)

    assert failed.value.code == "revision_not_ready"
    assert "Permission denied on secret" in failed.value.message
    assert sum(clock.slept) == GRANT_SETTLE_SECONDS  # once: never a loop of failing revisions
