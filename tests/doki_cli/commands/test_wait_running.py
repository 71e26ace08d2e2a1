"""--timeout and --no-wait on a service that serves, against the emulator with real containers: a rollback that is
not waited for says traffic is moving, a deploy refuses --no-wait while a rollback pins traffic (only its wait ends
the pin), and a rollback whose wait outlasts --timeout exits 124 saying how to look and how to wait longer."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from doki_cli.emulator.server import Emulator
from doki_cli.gcp.clients import ClientFactory
from doki_cli.main import app
from tests.helpers import CliRunner
from tests.helpers.project import PATH, setup_project
from tests.helpers.waits import FakeTime

runner = CliRunner()


def wait_until_routed(services: Any, shares: dict[str, int]) -> bool:
    """Whether the service's traffic is routed as `shares` within 60 s (polled: Cloud Run routes it in its time)."""
    for _ in range(120):
        service = services.get_service(name=PATH)
        if {s.revision.rsplit("/", 1)[-1]: s.percent for s in service.traffic_statuses if s.percent} == shares:
            return True
        time.sleep(0.5)
    return False


def test_rollback_without_waiting_then_a_deploy_that_may_not_skip_the_wait_then_a_rollback_that_times_out(
    tmp_path: Path, engine_emulator: Emulator, backend_image: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup_project(tmp_path, engine_emulator, monkeypatch)
    assert runner.invoke(app, ["secrets", "push"]).exit_code == 0
    first = runner.invoke(app, ["--json", "deploy", "--image", backend_image, "--yes"])
    assert first.exit_code == 0, first.output
    older = json.loads(first.stdout)["revision"]
    scaled = runner.invoke(app, ["scale", "--max-instances", "3", "--yes"])  # a second Ready revision
    assert scaled.exit_code == 0, scaled.output

    unwaited = runner.invoke(app, ["--json", "rollback", "--yes", "--no-wait"])
    assert unwaited.exit_code == 0, unwaited.output
    data = json.loads(unwaited.stdout)
    assert (data["revision"], data["changed"], data["waited"]) == (older, True, False)
    services = ClientFactory(engine_emulator.grpc_address).run_services()
    assert [(t.revision.rsplit("/", 1)[-1], t.percent) for t in services.get_service(name=PATH).traffic] == [
        (older, 100)
    ]  # the pin is written: Cloud Run routes it as it goes on

    refused = runner.invoke(app, ["--json", "deploy", "--image", backend_image, "--yes", "--no-wait"])
    assert refused.exit_code == 1, refused.output
    assert json.loads(refused.stdout)["error"] == {
        "code": "bad_option",
        "message": "--no-wait cannot deploy doki-backend now: traffic is pinned (by `doki rollback`): only a deploy "
        "that sees the new revision Ready moves it; nothing was changed",
        "hint": "run it without --no-wait (--timeout bounds the wait)",
    }

    # Cloud Run routes the pin as it goes on, unwaited: the rollback back to the newer revision is planned once it has.
    routed = wait_until_routed(services, {older: 100})
    newer = services.get_service(name=PATH).latest_ready_revision.rsplit("/", 1)[-1]
    assert newer != older and routed
    engine_emulator.faults.lro_delay = 600.0  # every operation from here on outlasts the test
    fake = FakeTime()
    timed_out = runner.invoke(app, ["--json", "rollback", newer, "--yes", "--timeout", "1m"], obj=fake.factory())
    assert timed_out.exit_code == 124, timed_out.output
    error = json.loads(timed_out.stdout)["error"]
    assert error["code"] == "wait_timeout"
    assert error["message"].startswith(f"{PATH}: waiting for traffic (")
    assert error["message"].endswith(", still, after 1m")
    assert error["hint"] == (
        "the change goes on at Google: `doki status` shows where it is, `doki logs` the revision's output; to wait "
        "longer than 1m, pass a longer --timeout"
    )
    assert 60 < fake.now < 70
