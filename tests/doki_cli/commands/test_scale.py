"""`doki scale` on its own: what it refuses before any write, and its plan as JSON. The ops loop
(test_ops_loop.py) scales a running service; test_plan.py holds what it shares with the other writing commands."""

from __future__ import annotations

import json

from doki_cli.gcp.clients import ClientFactory
from doki_cli.main import app
from tests.helpers import CliRunner
from tests.helpers.project import PATH

runner = CliRunner()


def doki(*args: str) -> object:
    return runner.invoke(app, list(args))


def test_scale_refuses_what_cloud_run_would_and_changes_nothing(failed_service: ClientFactory) -> None:
    before = failed_service.run_services().get_service(name=PATH)
    result = doki("scale", "--cpu", "4")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error [bad_scale]: cpu 4 needs more memory: at least 2Gi; nothing was changed\n"
        "  Hint: pick values Cloud Run accepts\n"
    )
    assert doki("scale").stderr.startswith("Error [nothing_to_change]: no value given")
    assert failed_service.run_services().get_service(name=PATH).etag == before.etag


def test_a_dry_run_with_json_gives_the_plan_as_data(failed_service: ClientFactory) -> None:
    result = runner.invoke(app, ["--json", "scale", "--min", "1", "--memory", "1Gi", "--dry-run"])
    assert result.exit_code == 2
    plan = json.loads(result.stdout)["plan"]
    assert (plan["service"], plan["empty"]) == (PATH, False)
    assert plan["changes"] == [
        {"what": "min instances", "before": "0", "after": "1"},
        {"what": "memory", "before": "512Mi", "after": "1Gi"},
    ]
