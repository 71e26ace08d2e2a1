"""--timeout and --no-wait through the commands, against the emulator: a wait that outlasts --timeout ends with
wait_timeout (exit 124) and says what goes on at Google; --no-wait returns once Cloud Run accepted the change; a
duration doki cannot read is a bad_option before anything is written. Time is the test's: the emulator holds its
operations open (its lro_delay fault) while a fake clock runs the wait out at once."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from doki_cli.emulator.server import Emulator
from doki_cli.gcp.clients import ClientFactory
from doki_cli.main import app
from tests.helpers import BACKEND_IMAGE, CliRunner
from tests.helpers.project import PATH, setup_project
from tests.helpers.waits import STAMP, FakeTime

runner = CliRunner()


@pytest.fixture
def slow_cloud(tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    """A project whose service exists (its revision never became Ready), on an emulator that from now on keeps every
    operation running for ten minutes: longer than the test, shorter than its teardown waits."""
    setup_project(tmp_path, emulator, monkeypatch)
    assert runner.invoke(app, ["secrets", "push"]).exit_code == 0
    assert runner.invoke(app, ["deploy", "--image", BACKEND_IMAGE, "--yes"]).exit_code == 1  # no engine: not Ready
    emulator.faults.lro_delay = 600.0
    return emulator


def test_a_deploy_that_outlasts_its_timeout_exits_124_saying_the_change_goes_on(slow_cloud: Emulator) -> None:
    time = FakeTime()
    result = runner.invoke(
        app, ["deploy", "--image", BACKEND_IMAGE, "--yes", "--json", "--timeout", "20s"], obj=time.factory()
    )

    assert result.exit_code == 124, result.output
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "wait_timeout"
    assert re.fullmatch(
        rf"{PATH}: waiting for revision doki-backend-00002-[a-z0-9]+: ConfigurationsReady, the configuration is "
        r"being applied, still, after 20s",
        error["message"],
    ), error["message"]
    assert error["hint"] == (
        "the change goes on at Google: `doki status` shows where it is, `doki logs` the revision's output; to wait "
        "longer than 20s, pass a longer --timeout"
    )
    lines = result.stderr.splitlines()
    # A CI log of it: every line stamped, the wait's own lines among them, the last past the timeout.
    assert lines and all(line.startswith(STAMP) for line in lines)
    assert f"{STAMP}deploying a new revision" in lines
    waits = [line for line in lines if line.startswith(f"{STAMP}waiting for")]
    assert waits and waits[-1].endswith(" s)")
    assert 20 < time.now < 30  # the wait stopped at the first poll past 20 s


def test_a_duration_doki_cannot_read_is_a_bad_option_and_nothing_is_written(slow_cloud: Emulator) -> None:
    before = ClientFactory(slow_cloud.grpc_address).run_services().get_service(name=PATH).etag
    result = runner.invoke(app, ["--json", "scale", "--min", "1", "--yes", "--timeout", "soon"])
    assert result.exit_code == 1, result.output
    assert json.loads(result.stdout)["error"] == {
        "code": "bad_option",
        "message": "--timeout 'soon' is not a duration doki can wait for",
        "hint": "give a positive duration as gcloud does: 90s, 15m, 1h or 1h30m (a bare number is seconds)",
    }
    assert ClientFactory(slow_cloud.grpc_address).run_services().get_service(name=PATH).etag == before


def test_no_wait_returns_once_cloud_run_accepted_the_change_and_names_what_goes_on(slow_cloud: Emulator) -> None:
    time = FakeTime()
    result = runner.invoke(app, ["scale", "--min-instances", "1", "--yes", "--no-wait"], obj=time.factory())

    assert result.exit_code == 0, result.output
    assert time.now == 0  # not one poll
    operation = ClientFactory(slow_cloud.grpc_address).run_services().get_service(name=PATH)
    made = operation.latest_created_revision.rsplit("/", 1)[1]
    assert result.stderr.splitlines()[-2:] == [
        f"Not waited for (--no-wait): Cloud Run goes on making revision {made} of doki-backend; `doki status` shows "
        "where it is",
        "doki.toml still has the old values: the next `doki deploy` restores them (use --save)",
    ]
    assert result.stdout.endswith(
        "  $ Cloud Billing Catalog list prices for us-central1, USD, before the free tier\n1 change.\n"
        "Scaled doki-backend: min instances 0 -> 1\n"
    )


def test_no_wait_under_json_says_the_change_was_not_waited_for(slow_cloud: Emulator) -> None:
    result = runner.invoke(
        app, ["--json", "cors", "add", "https://two.example", "--yes", "--async"], obj=FakeTime().factory()
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["origins"], data["changed"], data["waited"]) == (
        ["https://one.example", "https://two.example"],
        True,
        False,
    )
    assert any(
        line.startswith(f"{STAMP}accepted by Cloud Run (operation ") and line.endswith("); not waiting for it")
        for line in result.stderr.splitlines()
    )


def test_a_first_deploy_refuses_no_wait_before_anything_is_written(
    tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup_project(tmp_path, emulator, monkeypatch)
    assert runner.invoke(app, ["secrets", "push"]).exit_code == 0

    result = runner.invoke(app, ["--json", "deploy", "--image", BACKEND_IMAGE, "--yes", "--no-wait"])

    assert result.exit_code == 1, result.output
    assert json.loads(result.stdout)["error"] == {
        "code": "bad_option",
        "message": "--no-wait cannot deploy doki-backend now: a first deploy sets GOOGLE_REDIRECT_URI from the URL "
        "Cloud Run assigns once the service exists; nothing was changed",
        "hint": "run it without --no-wait (--timeout bounds the wait)",
    }
    services = ClientFactory(emulator.grpc_address).run_services()
    assert list(services.list_services(parent="projects/doki-e2e/locations/us-central1")) == []
