"""The Cloud Run settings doki.toml declares (probes, CPU allocation and boost, execution environment, VPC egress, Cloud
SQL, volumes, session affinity, labels) through `doki deploy` against the emulator: planned and diffed like the rest,
written where gcloud's flags write them, read back as declared (a second deploy plans nothing), changed and removed;
a setting left out is kept and said to be kept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from google.cloud import run_v2

from doki_cli.emulator.server import Emulator
from doki_cli.gcp.clients import ClientFactory
from doki_cli.main import app
from tests.helpers import BACKEND_IMAGE, CliRunner
from tests.helpers.project import PATH, PROJECT, TOML, setup_project

runner = CliRunner()
CONNECTOR = f"projects/{PROJECT}/locations/us-central1/connectors/egress"
SETTINGS = """cpu_idle = false
startup_cpu_boost = false
execution_environment = "gen2"
session_affinity = true
labels = { team = "core" }
cloudsql_instances = ["main-db"]

[service.vpc]
connector = "egress"
egress = "all-traffic"

[[service.volumes]]
name = "cache"
type = "in-memory"
mount_path = "/cache"
size_limit = "64Mi"

[[service.volumes]]
name = "assets"
type = "cloud-storage"
bucket = "doki-assets"
mount_path = "/assets"
read_only = true

[service.startup_probe]
type = "http"
path = "/"
period_seconds = 2
failure_threshold = 60

[service.liveness_probe]
type = "http"
path = "/"
period_seconds = 30
"""
# What a plan says of each, in doki.toml's order of the keys.
PLANNED = [
    "  + cpu_idle: false",
    "  + startup_cpu_boost: false",
    "  + execution_environment: gen2",
    "  + session_affinity: true",
    "  + labels: team=core",
    f"  + vpc: connector {CONNECTOR}, egress all-traffic",
    f"  + cloudsql_instances: {PROJECT}:us-central1:main-db",
    # By name, whatever their order in doki.toml.
    "  + volumes: assets (gs://doki-assets, read-only) at /assets; cache (in-memory 64Mi) at /cache",
    "  + startup_probe: http GET /, every 2s, timeout 1s, 60 failures",
    "  + liveness_probe: http GET /, every 30s, timeout 1s, 3 failures",
]
KEYS = ("cpu_idle", "startup_cpu_boost", "execution_environment", "session_affinity", "labels", "vpc")
KEYS += ("cloudsql_instances", "volumes", "startup_probe", "liveness_probe")


def with_settings(settings: str) -> str:
    return TOML.replace("[service.env]", settings + "[service.env]")


def deploy(*args: str) -> object:
    return runner.invoke(app, ["deploy", "--image", BACKEND_IMAGE, *args])


def setting_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line[4:].split(":")[0] in KEYS]


def test_a_first_plan_shows_each_declared_setting_as_it_will_be_written(
    tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup_project(tmp_path, emulator, monkeypatch)
    (tmp_path / "doki.toml").write_text(with_settings(SETTINGS))
    assert runner.invoke(app, ["secrets", "push"]).exit_code == 0

    result = deploy("--dry-run")

    assert result.exit_code == 2, result.output
    assert setting_lines(result.stdout) == PLANNED
    planned = json.loads(runner.invoke(app, ["deploy", "--image", BACKEND_IMAGE, "--dry-run", "--json"]).stdout)
    assert [c["what"] for c in planned["plan"]["changes"] if c["what"] in KEYS] == list(KEYS)


def test_a_mistake_in_a_setting_stops_the_deploy_before_any_call_naming_the_key(
    tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup_project(tmp_path, emulator, monkeypatch)
    (tmp_path / "doki.toml").write_text(with_settings('[service.liveness_probe]\ntype = "tcp"\n'))

    result = deploy("--dry-run")

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        "Error [config_invalid]: doki.toml [service] has 1 problem:\n"
        "  - liveness_probe.type = 'tcp' is not valid: use http or grpc (Cloud Run's liveness probes are not TCP)\n"
        "  Hint: fix doki.toml (its keys are described in docs/configuration.md)\n"
    )


def test_declared_settings_are_written_where_gcloud_writes_them_then_plan_nothing_then_change_and_go(
    tmp_path: Path, engine_emulator: Emulator, backend_image: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup_project(tmp_path, engine_emulator, monkeypatch)
    (tmp_path / "doki.toml").write_text(with_settings(SETTINGS))
    assert runner.invoke(app, ["secrets", "push"]).exit_code == 0

    first = deploy("--yes")

    assert first.exit_code == 0, first.output
    services = ClientFactory(engine_emulator.grpc_address).run_services()
    service = services.get_service(name=PATH)
    template = service.template
    [serving] = template.containers
    assert (serving.resources.cpu_idle, serving.resources.startup_cpu_boost) == (False, False)
    assert template.execution_environment == run_v2.ExecutionEnvironment.EXECUTION_ENVIRONMENT_GEN2
    assert template.session_affinity is True
    # gcloud --labels: the service's, copied onto the template.
    assert dict(service.labels) == dict(template.labels) == {"team": "core"}
    assert template.vpc_access == run_v2.VpcAccess(connector=CONNECTOR, egress=run_v2.VpcAccess.VpcEgress.ALL_TRAFFIC)
    assert [run_v2.Volume.to_dict(v) for v in template.volumes] == [
        run_v2.Volume.to_dict(v)
        for v in (
            run_v2.Volume(name="cloudsql", cloud_sql_instance={"instances": [f"{PROJECT}:us-central1:main-db"]}),
            run_v2.Volume(name="assets", gcs={"bucket": "doki-assets", "read_only": True}),
            run_v2.Volume(name="cache", empty_dir={"medium": "MEMORY", "size_limit": "64Mi"}),
        )
    ]
    assert [(m.name, m.mount_path) for m in serving.volume_mounts] == [
        ("cloudsql", "/cloudsql"),
        ("assets", "/assets"),
        ("cache", "/cache"),
    ]
    assert serving.startup_probe == run_v2.Probe(
        http_get=run_v2.HTTPGetAction(path="/"), timeout_seconds=1, period_seconds=2, failure_threshold=60
    )
    assert serving.liveness_probe.http_get.path == "/"

    again = deploy("--dry-run")
    assert again.exit_code == 0, again.output
    assert again.stdout.endswith("No changes.\n")
    assert "kept as it is" not in again.stdout

    # A changed label, no liveness probe, no VPC access; the startup probe, volumes and Cloud SQL left out of doki.toml
    # are kept.
    changed = SETTINGS.replace('team = "core"', 'team = "edge"').split("cloudsql_instances")[0]
    changed += "vpc = {}\nliveness_probe = false\n"
    (tmp_path / "doki.toml").write_text(with_settings(changed))

    plan = deploy("--dry-run")

    assert plan.exit_code == 2, plan.output
    assert setting_lines(plan.stdout) == [
        "  ~ labels: team=core -> team=edge",
        f"  ~ vpc: connector {CONNECTOR}, egress all-traffic -> none",
        "  ~ liveness_probe: http GET /, every 30s, timeout 1s, 3 failures -> none",
    ]
    assert (
        "  = set outside doki.toml, kept as it is: startup probe, volumes assets, cache, Cloud SQL "
        f"{PROJECT}:us-central1:main-db\n" in plan.stdout
    )
    applied = deploy("--yes")
    assert applied.exit_code == 0, applied.output
    after = services.get_service(name=PATH)
    assert "liveness_probe" not in after.template.containers[0]
    assert "vpc_access" not in after.template
    assert dict(after.labels) == dict(after.template.labels) == {"team": "edge"}
    assert [v.name for v in after.template.volumes] == ["cloudsql", "assets", "cache"]
    assert deploy("--dry-run").stdout.endswith("No changes.\n")
