"""`doki monitor` against a running backend: the emulator's uptime check probes the revision's container for real,
the request metrics come from the service's URL, and the uptime alert opens (and emails) once the container stops
answering for the policy's retest window."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import Result

from doki_cli.context import Factory
from doki_cli.emulator.server import Emulator, EmulatorConfig
from doki_cli.main import app
from tests.doki_cli.emulator.rest_client import call
from tests.helpers import CliRunner, record_stored_logs
from tests.helpers.project import setup_project

runner = CliRunner()
LOCATIONS = ["apac-singapore", "eur-belgium", "sa-brazil-sao_paulo", "usa-iowa", "usa-oregon", "usa-virginia"]


class Later:
    """The time Cloud Monitoring's emulation and doki both read: now, plus what the test has skipped ahead."""

    def __init__(self) -> None:
        self.skipped = 0.0

    def __call__(self) -> float:
        return time.time() + self.skipped

    def now(self) -> datetime:
        return datetime.fromtimestamp(self(), UTC)


@pytest.fixture
def later() -> Later:
    return Later()


@pytest.fixture
def watched(tmp_path: Path, docker_client: Any, later: Later) -> Iterator[Emulator]:
    """An emulator running revisions on the engine, its monitoring on the test's clock."""
    from doki_cli.engine import DockerEngine

    config = EmulatorConfig(state_dir=tmp_path / "emulator-state")
    with Emulator(config, engine=DockerEngine(docker_client), wall_clock=later) as running:
        yield running
    record_stored_logs(config.state_dir)


def control(emulator: Emulator, path: str, body: dict[str, Any] | None = None) -> Any:
    """A call of the emulator's control API, as a rehearsal script makes it."""
    status, answer = call(emulator, "GET" if body is None else "POST", f"/_doki/{path}", body)
    assert status == 200, answer
    return answer


def test_the_uptime_check_probes_the_running_service_and_its_alert_opens_when_the_service_stops_answering(
    tmp_path: Path,
    watched: Emulator,
    later: Later,
    backend_image: str,
    docker_client: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def doki(*args: str) -> Result:
        return runner.invoke(app, list(args), obj=Factory(now=later.now))

    setup_project(tmp_path, watched, monkeypatch)
    with (tmp_path / "doki.toml").open("a") as toml:
        toml.write('[monitoring]\nemails = ["ops@example.com"]\nmax_p95_latency_ms = 1500\n')
    assert doki("secrets", "push").exit_code == 0
    deployed = doki("deploy", "--image", backend_image, "--yes")
    assert deployed.exit_code == 0, deployed.output
    applied = doki("--json", "monitor", "--yes")
    assert applied.exit_code == 0, applied.output
    check_id = json.loads(applied.stdout)["applied"]["check"].rsplit("/", 1)[-1]

    ran = control(watched, "monitoring:run", {"project": "doki-e2e"})
    assert sorted(r["checker_location"] for r in ran["checks"]) == LOCATIONS
    assert {(r["passed"], r["http_status"]) for r in ran["checks"]} == {(True, 200)}
    url = json.loads(doki("--json", "status").stdout)["url"]
    for _ in range(5):
        with urllib.request.urlopen(f"{url}/", timeout=30) as answer:  # noqa: S310  # the loopback service URL
            assert answer.status == 200
    # Cloud Run's request metrics are whole minutes, read once the minute is over.
    later.skipped += 60
    status = doki("monitor", "status")
    assert status.exit_code == 0, status.output
    lines = status.stdout.splitlines()
    assert lines[0] == "Monitoring of doki-backend (us-central1) in project doki-e2e:"
    assert lines[1].startswith("  uptime check doki-backend health (GET / every 1m): passing at 6 of 6 locations, ")
    assert lines[2] == ("  alert doki-backend: uptime check failing: ok, 0 locations failing (threshold: more than 1)")
    # Every answer so far was a 200: the share of 5xx is measured, and nothing.
    assert lines[3] == "  alert doki-backend: 5xx above 5%: ok, 0% of answers 5xx (threshold 5%)"
    assert lines[4].startswith("  alert doki-backend: p95 latency above 1500 ms: ok, p95 ")
    assert lines[5:] == ["  notifies ops@example.com (email, unverified)"]

    # The revision's container goes away: the service's URL answers 503, and every location fails.
    for container in docker_client.containers.list(filters={"label": f"doki.emulator.state={watched.run.state_id}"}):
        container.stop(timeout=1)
    failed = control(watched, "monitoring:run", {"project": "doki-e2e"})
    assert {(r["passed"], r["http_status"]) for r in failed["checks"]} == {(False, 503)}
    # Google's policy for an uptime check waits out a minute's retest window before it opens an incident.
    assert failed["open_incidents"] == []
    assert control(watched, "monitoring/events")["notifications"] == []
    later.skipped += 60
    opened = control(watched, "monitoring:run", {"project": "doki-e2e"})
    assert [(i["policy_name"], i["state"], i["observed_value"]) for i in opened["open_incidents"]] == [
        ("doki-backend: uptime check failing", "open", "6 > 1")
    ]
    sent = control(watched, "monitoring/events")["notifications"]
    assert [(n["labels"]["email_address"], n["subject"]) for n in sent] == [
        ("ops@example.com", "[ALERT - Open] doki-backend: uptime check failing")
    ]
    # The incident is the policy doki made for this very check.
    policy = next(
        p for p in watched.monitoring.config.all_of("alertPolicies") if p.name == opened["open_incidents"][0]["policy"]
    )
    assert f'metric.label.check_id="{check_id}"' in policy.conditions[0].condition_threshold.filter

    down = doki("monitor", "status")
    lines = down.stdout.splitlines()
    assert lines[1] == "  uptime check doki-backend health (GET / every 1m): failing at 6 of 6 locations"
    assert lines[2] == "      failing at " + ", ".join(LOCATIONS)
    assert lines[3] == (
        "  alert doki-backend: uptime check failing: ABOVE THRESHOLD, 6 locations failing (threshold: more than 1)"
    )
    data = json.loads(doki("--json", "monitor", "status").stdout)
    assert data["uptime_checks"][0]["state"] == "failing"
    assert data["uptime_checks"][0]["locations"] == dict.fromkeys(LOCATIONS, False)
    assert (data["alerts"][0]["alert"], data["alerts"][0]["above_threshold"]) == ("uptime", True)
