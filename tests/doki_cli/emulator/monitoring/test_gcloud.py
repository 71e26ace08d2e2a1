"""`gcloud monitoring uptime` (GA in gcloud 528, over REST) against the emulator, gcloud unchanged but for its
documented endpoint override (CLOUDSDK_API_ENDPOINT_OVERRIDES_MONITORING, from `doki emulator env`), sharing one
state with the gRPC client doki uses; and a check the emulator then runs for real.

What gcloud sends (surface/monitoring/uptime, command_lib/monitoring/util.py): `create` POSTs the whole config to
/v3/projects/P/uptimeCheckConfigs, with an empty `authInfo` and `period` always set; `update` GETs the check and
PATCHes it whole, with no update mask; `list-configs` and `describe` GET; `delete` DELETEs; `list-ips` GETs
/v3/uptimeCheckIps.
"""

from __future__ import annotations

import pytest

from doki_cli.emulator.server import Emulator
from doki_cli.gcp.clients import ClientFactory
from tests.doki_cli.emulator.monitoring.conftest import Site
from tests.helpers.gcloud import Gcloud

pytestmark = pytest.mark.gcloud


def test_gcloud_makes_updates_lists_and_deletes_an_uptime_check_the_emulator_runs(
    gcloud: Gcloud, emulator: Emulator, clients: ClientFactory, site: Site
) -> None:
    made = gcloud.json(
        "monitoring",
        "uptime",
        "create",
        "Site health",
        "--resource-type=uptime-url",
        "--resource-labels=host=127.0.0.1,project_id=p",
        "--protocol=http",
        f"--port={site.port}",
        "--path=/health",
        "--period=5",
        "--timeout=10",
        "--matcher-type=matches-json-path",
        "--matcher-content=Doki Backend up",
        "--json-path=$.message",
        "--format=json",
    )
    name = made["name"]
    assert name.startswith("projects/p/uptimeCheckConfigs/site-health-")
    monitoring = clients.monitoring()
    check = monitoring.uptime.get_uptime_check_config(name=name)
    assert (check.period.total_seconds(), check.http_check.port) == (300, site.port)
    assert check.content_matchers[0].json_path_matcher.json_path == "$.message"

    ran = emulator.monitoring.run_now("p")["checks"]
    assert {(r["passed"], r["http_status"]) for r in ran} == {(True, 200)}

    gcloud("monitoring", "uptime", "update", name.rsplit("/", 1)[-1], "--timeout=20", "--period=1")
    updated = monitoring.uptime.get_uptime_check_config(name=name)
    assert (updated.timeout.total_seconds(), updated.period.total_seconds()) == (20, 60)
    listed = gcloud.json("monitoring", "uptime", "list-configs", "--format=json")
    assert [c["name"] for c in listed] == [name]
    ips = gcloud.json("monitoring", "uptime", "list-ips", "--format=json")
    assert len(ips) == 6

    gcloud("monitoring", "uptime", "delete", name.rsplit("/", 1)[-1])
    assert list(monitoring.uptime.list_uptime_check_configs(parent="projects/p")) == []


def test_gcloud_is_refused_a_check_of_a_cloud_run_service_that_does_not_exist(gcloud: Gcloud) -> None:
    error = gcloud.fails(
        "monitoring",
        "uptime",
        "create",
        "api",
        "--resource-type=cloud-run-revision",
        "--resource-labels=project_id=p,service_name=api,location=us-central1",
    )
    assert "Error confirming monitored resource" in error
