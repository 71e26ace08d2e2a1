"""`doki status` for people: the live service line by line, as the emulator holds it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from google.cloud import run_v2
from typer.testing import Result

from doki_cli.emulator.server import Emulator
from doki_cli.gcp.clients import ClientFactory
from doki_cli.main import app
from tests.helpers import CliRunner
from tests.helpers.project import setup_project

runner = CliRunner()
SERVICE = "projects/doki-e2e/locations/us-central1/services/doki-backend"
GET_SERVICE = "/google.cloud.run.v2.Services/GetService"
FLOOR = "  floor cost   none: no minimum instances are kept"


def doki(*args: str) -> Result:
    return runner.invoke(app, list(args))


def short(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def test_status_of_a_serving_service_shows_every_line_and_the_tags(
    tmp_path: Path, engine_emulator: Emulator, backend_image: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup_project(tmp_path, engine_emulator, monkeypatch)
    assert doki("secrets", "push").exit_code == 0
    assert doki("deploy", "--image", backend_image, "--yes").exit_code == 0
    services = ClientFactory(engine_emulator.grpc_address).run_services()
    first = short(services.get_service(name=SERVICE).latest_ready_revision)
    assert doki("scale", "--max-instances", "3", "--memory", "1Gi", "--yes").exit_code == 0
    # A tag on the earlier revision, as `gcloud run services update-traffic --set-tags` leaves one.
    live = services.get_service(name=SERVICE)
    revision_type = run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION
    live.traffic.append(run_v2.TrafficTarget(type_=revision_type, revision=first, tag="canary", percent=0))
    services.update_service(service=live).result(timeout=120)
    live = services.get_service(name=SERVICE)
    latest = short(live.latest_ready_revision)
    revisions = ClientFactory(engine_emulator.grpc_address).run_revisions()
    made = {
        short(r.name): r.create_time.isoformat(timespec="seconds") for r in revisions.list_revisions(parent=SERVICE)
    }

    result = doki("status")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f"doki-backend  {live.uri}\n"
        "  ready        yes\n"
        f"  revisions    latest created {latest}, latest ready {latest}\n"
        "  traffic      100% latest (follows the latest)\n"
        f"    tag        canary -> {first}\n"
        f"  serving      {latest} (100%, deployed {made[latest]})\n"
        f"    image      {backend_image}\n"
        "    resources  cpu 1, memory 1Gi, concurrency 80, timeout 300s\n"
        "    scaling    0 to 3 instances\n"
        "  invokers     anyone (allUsers)\n"
        f"{FLOOR}\n"
        f"  last change  {live.update_time.isoformat(timespec='seconds')}\n"
    )
    assert result.stderr == ""

    assert doki("rollback", first, "--yes").exit_code == 0
    pinned = doki("status")
    updated = services.get_service(name=SERVICE).update_time.isoformat(timespec="seconds")
    # What serves now is the first revision, with the settings it was made with; the newest one waits, unused.
    assert pinned.stdout.splitlines()[3:15] == [
        f"  traffic      100% {first} (pinned: `doki deploy` moves it to the latest)",
        f"    tag        canary -> {first}",
        f"  serving      {first} (100%, deployed {made[first]})",
        f"    image      {backend_image}",
        "    resources  cpu 1, memory 512Mi, concurrency 80, timeout 300s",
        "    scaling    0 to 10 instances",
        f"  newest       {latest} (Ready, no traffic, deployed {made[latest]})",
        f"    image      {backend_image}",
        "    resources  cpu 1, memory 1Gi, concurrency 80, timeout 300s",
        "    scaling    0 to 3 instances",
        "  invokers     anyone (allUsers)",
        FLOOR,
    ]
    assert pinned.stdout.endswith(f"  last change  {updated}\n")


def test_status_of_a_service_whose_revision_never_became_ready_says_why(
    tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup_project(tmp_path, emulator, monkeypatch)
    doki("secrets", "push")
    assert doki("deploy", "--image", "img:1", "--yes").exit_code == 1  # no engine: the revision cannot start
    live = ClientFactory(emulator.grpc_address).run_services().get_service(name=SERVICE)
    created = short(live.latest_created_revision)
    made = ClientFactory(emulator.grpc_address).run_revisions().get_revision(name=live.latest_created_revision)
    reads = emulator.faults.calls[GET_SERVICE]

    result = doki("status")
    assert result.exit_code == 0, result.output
    assert emulator.faults.calls[GET_SERVICE] - reads == 1  # the service read once, for every line
    assert result.stdout == (
        f"doki-backend  {live.uri}\n"
        f"  ready        no (Revision '{created}' is not ready and cannot serve traffic. The emulator has no Docker "
        "engine, so it cannot run the revision's containers. Start Docker, then restart `doki emulator`.)\n"
        f"  revisions    latest created {created}, latest ready -\n"
        "  traffic      100% latest (follows the latest)\n"
        "  serving      nothing\n"
        f"  newest       {created} (failed, deployed {made.create_time.isoformat(timespec='seconds')})\n"
        "    image      img:1\n"
        "    resources  cpu 1, memory 512Mi, concurrency 80, timeout 300s\n"
        "    scaling    0 to 10 instances\n"
        "  invokers     authenticated callers only\n"
        f"{FLOOR}\n"
        f"  last change  {live.update_time.isoformat(timespec='seconds')}\n"
    )


def test_after_a_failed_deploy_status_says_the_service_serves_normally_and_which_revision_failed(
    tmp_path: Path, engine_emulator: Emulator, backend_image: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup_project(tmp_path, engine_emulator, monkeypatch)
    assert doki("secrets", "push").exit_code == 0
    assert doki("deploy", "--image", backend_image, "--yes").exit_code == 0
    engine_emulator.faults.fail_revisions("doki-backend", message="Container called exit(3).\n")
    assert doki("scale", "--max-instances", "4", "--yes").exit_code == 1
    live = ClientFactory(engine_emulator.grpc_address).run_services().get_service(name=SERVICE)
    failed, serving = short(live.latest_created_revision), short(live.latest_ready_revision)
    revisions = ClientFactory(engine_emulator.grpc_address).run_revisions()
    made = revisions.get_revision(name=live.latest_created_revision).create_time.isoformat(timespec="seconds")

    result = doki("status")

    assert result.exit_code == 0, result.output
    assert (
        f"  ready        serving normally; the newest revision, {failed}, failed: Revision '{failed}' is not ready "
        "and cannot serve traffic. Container called exit(3).\n"
    ) in result.stdout
    # The scaling shown for what serves is the serving revision's, not the failed one's.
    lines = result.stdout.splitlines()
    assert [line.split("(")[0] for line in lines[4:6]] == [
        f"  serving      {serving} ",
        f"    image      {backend_image}",
    ]
    assert lines[7:10] == [
        "    scaling    0 to 10 instances",
        f"  newest       {failed} (failed, deployed {made})",
        f"    image      {backend_image}",
    ]
    assert lines[11] == "    scaling    0 to 4 instances"
    report = json.loads(doki("--json", "status").stdout)
    assert [(t["revision"], t["scaling"]) for t in report["traffic"]] == [(serving, {"min": 0, "max": 10})]
    assert (report["newest"]["revision"], report["newest"]["ready"], report["newest"]["scaling"]) == (
        failed,
        False,
        {"min": 0, "max": 4},
    )
