"""A release's traffic moves as plans: shown as a change, decided on the service as read, only under the lock."""

from __future__ import annotations

from dataclasses import replace

import pytest

from doki_cli.deploy.executor import apply_edit
from doki_cli.deploy.lock import LOCK, Lock, active_lock
from doki_cli.deploy.planner import Change, TrafficStep, plan_traffic_step
from doki_cli.errors import Code, DokiError
from doki_cli.model import Edit, ServiceSpec, Target
from tests.fakes.deploy import FakeCloudRun

NOW = 1_800_000_000.0
OURS = Lock("a" * 40, "release-1", "ci", NOW - 60, NOW + 600)
SPEC = ServiceSpec("img:1", 8080, "512Mi", "1", 80, 300, 0, 10, "all", None)


def _silent(message: str) -> None:
    """Progress the tests do not read."""


def _staged(run: FakeCloudRun) -> tuple[str, str]:
    """A service whose first revision serves all traffic and a second waits at 0% under a tag, locked by OURS."""
    run.add_service("api", SPEC)
    first = run.get("api").latest_ready  # type: ignore[union-attr]
    with run.by_someone_else():
        run.update(
            "api",
            lambda live: Edit(
                env={"NEW": "1"},
                traffic=(Target(first, 100), Target(None, 0, "sha-1")),
                annotations={LOCK: OURS.render()},
            ),
            on_progress=_silent,
        )
    new = run.get("api").latest_created  # type: ignore[union-attr]
    assert first is not None and new is not None
    return first, new


def _step(first: str, new: str, percent: int) -> TrafficStep:
    return TrafficStep((Target(first, 100),), new, "sha-1", percent, OURS, renew_for=1800)


def test_a_step_is_planned_as_one_traffic_change_and_moves_that_share_while_renewing_the_lock() -> None:
    run = FakeCloudRun()
    first, new = _staged(run)
    plan = plan_traffic_step(run, run.get("api"), _step(first, new, 10))  # type: ignore[arg-type]
    assert plan.changes == [Change("traffic", f"100% {first}", f"90% {first}, 10% {new}")]

    live = apply_edit(run, plan, on_progress=_silent, now=lambda: NOW + 100)
    assert live.shares == {first: 90, new: 10}
    held = active_lock(live, NOW + 100)
    assert held == replace(OURS, expires=NOW + 100 + 1800)  # the expiry counts from this step


def test_the_last_step_gives_all_traffic_and_drops_the_lock() -> None:
    run = FakeCloudRun()
    first, new = _staged(run)
    plan = plan_traffic_step(run, run.get("api"), _step(first, new, 100))  # type: ignore[arg-type]
    assert plan.changes == [Change("traffic", f"100% {first}", f"100% {new}")]
    live = apply_edit(run, plan, on_progress=_silent, now=lambda: NOW)
    assert live.shares == {new: 100}
    assert LOCK not in live.annotations


def test_a_step_is_refused_once_another_release_holds_the_lock_and_nothing_moves() -> None:
    run = FakeCloudRun()
    first, new = _staged(run)
    plan = plan_traffic_step(run, run.get("api"), _step(first, new, 50))  # type: ignore[arg-type]
    theirs = Lock("b" * 40, "release-2", "laptop", NOW, NOW + 600)
    with run.by_someone_else():
        run.update("api", lambda live: Edit(annotations={LOCK: theirs.render()}), on_progress=_silent)
    with pytest.raises(DokiError) as lost:
        apply_edit(run, plan, on_progress=_silent, now=lambda: NOW)
    assert lost.value.code == Code.RELEASE_LOCK_LOST
    assert run.get("api").shares == {first: 100}  # type: ignore[union-attr]
