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
    result = runner.invoke(app, ["--json", "scale", "--min-instances", "1", "--memory", "1Gi", "--dry-run"])
    assert result.exit_code == 2
    plan = json.loads(result.stdout)["plan"]
    assert (plan["service"], plan["empty"]) == (PATH, False)
    assert plan["changes"] == [
        {"what": "min instances", "before": "0", "after": "1"},
        {"what": "memory", "before": "512Mi", "after": "1Gi"},
    ]


def test_min_and_max_plan_the_services_own_scaling(failed_service: ClientFactory) -> None:
    # Applied in the ops loop (test_ops_loop.py), on a service that serves: no new revision.
    planned = runner.invoke(app, ["--json", "scale", "--min", "1", "--max", "4", "--dry-run"])
    assert planned.exit_code == 2, planned.output
    assert json.loads(planned.stdout)["plan"]["changes"] == [
        {"what": "service min instances", "before": "0", "after": "1"},
        {"what": "service max instances", "before": "none", "after": "4"},
    ]


def test_min_instances_and_max_instances_set_each_new_revisions_scaling(failed_service: ClientFactory) -> None:
    result = runner.invoke(app, ["--json", "scale", "--min-instances", "1", "--max-instances", "5", "--dry-run"])
    assert result.exit_code == 2, result.output
    assert json.loads(result.stdout)["plan"]["changes"] == [
        {"what": "min instances", "before": "0", "after": "1"},
        {"what": "max instances", "before": "10", "after": "5"},
    ]


def test_a_service_maximum_below_its_minimum_is_refused_before_any_write(failed_service: ClientFactory) -> None:
    before = failed_service.run_services().get_service(name=PATH)
    result = doki("scale", "--min", "3", "--max", "2", "--yes")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error [bad_scale]: service max instances 2 is below service min instances 3; nothing was changed\n"
        "  Hint: pick values Cloud Run accepts\n"
    )
    assert failed_service.run_services().get_service(name=PATH).etag == before.etag


def test_a_near_miss_of_gclouds_spelling_is_answered_with_the_option_meant() -> None:
    result = doki("scale", "--min-instance", "1")
    assert result.exit_code == 2
    assert result.stderr.endswith(
        "Error: No such option: --min-instance (Possible options: --max-instances, --min-instances)\n"
    )
