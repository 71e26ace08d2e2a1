"""Every command that writes the service changes only what doki manages: a service set up with gcloud, the console
or Terraform (a sidecar, probes, volumes, always-on CPU, a command, VPC access, labels, annotations) keeps all of it
through deploy, cors, scale, rollback and release, and no plan names any of it as a change."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from google.cloud import run_v2

from doki_cli.emulator.server import Emulator
from doki_cli.gcp.clients import ClientFactory
from doki_cli.main import app
from tests.helpers import CliRunner
from tests.helpers.project import PATH
from tests.helpers.release import IMAGE, commit, git, release

runner = CliRunner()
# What a doki write may change: the serving container's image, port number, cpu, memory and environment; the
# template's scaling, timeout, concurrency, account and revision name; the traffic, the ingress and the invoker IAM
# check. The rest of a Service's spec must come through every command as it was.
SPEC = ("description", "labels", "annotations", "launch_stage", "binary_authorization", "template", "scaling")
SPEC += ("default_uri_disabled", "custom_audiences")
DOKI_TEMPLATE_FIELDS = ("scaling", "timeout", "max_instance_request_concurrency", "service_account", "revision")
KEPT_LINE = (
    "  = set outside doki.toml, kept as it is: sidecar collector, command, working dir, startup probe, liveness "
    "probe, CPU always allocated, depends on collector, volumes scratch, VPC access, execution "
    "environment GEN2, session affinity, revision labels, labels team, annotations ops.example.com/runbook, "
    "service-level scaling, binary authorization\n"
)


LISTEN = "import socket; s = socket.create_server(('127.0.0.1', 9090), reuse_port=True)"


def doki(*args: str) -> Any:
    return runner.invoke(app, list(args))


def not_dokis(service: run_v2.Service) -> dict[str, Any]:
    """The service's spec without the fields doki manages (and without doki's own annotations)."""
    data = run_v2.Service.to_dict(service)
    spec = {key: data.get(key) for key in SPEC}
    template = spec["template"]
    for key in DOKI_TEMPLATE_FIELDS:
        template.pop(key)
    for holder in (spec, template):
        holder["annotations"] = {k: v for k, v in holder["annotations"].items() if not k.startswith("doki.dev/")}
    [serving] = [container for container in template["containers"] if container["ports"]]
    serving.pop("image")
    serving.pop("env")
    serving["ports"] = [{"name": port["name"]} for port in serving["ports"]]
    limits = serving["resources"]["limits"]
    serving["resources"]["limits"] = {k: v for k, v in limits.items() if k not in ("cpu", "memory")}
    return spec


def set_up_by_hand(service: run_v2.Service, image: str) -> None:
    """What an ops team adds with gcloud or Terraform to the service doki released."""
    template = service.template
    serving = template.containers[0]
    serving.name = "app"
    serving.command = ["python"]
    serving.args = ["-m", "doki"]
    serving.working_dir = "/app"
    serving.startup_probe = run_v2.Probe(
        tcp_socket=run_v2.TCPSocketAction(port=8080), period_seconds=2, failure_threshold=30, timeout_seconds=2
    )
    serving.liveness_probe = run_v2.Probe(http_get=run_v2.HTTPGetAction(path="/"), period_seconds=30)
    serving.volume_mounts = [run_v2.VolumeMount(name="scratch", mount_path="/scratch")]
    serving.depends_on = ["collector"]
    serving.resources.cpu_idle = False
    serving.resources.startup_cpu_boost = True
    collector = run_v2.Container(
        name="collector",
        image=image,
        # Listening where its startup probe looks; the port is shared with the collector of the revision before.
        command=["python", "-c", f"{LISTEN}; import time; time.sleep(10**6)"],
        resources=run_v2.ResourceRequirements(limits={"cpu": "1", "memory": "512Mi"}),  # gen2: 512Mi at least
        # Cloud Run starts the serving container once the containers it depends on pass their startup probes, so
        # each must have one.
        startup_probe=run_v2.Probe(
            tcp_socket=run_v2.TCPSocketAction(port=9090), period_seconds=1, failure_threshold=30
        ),
    )
    # Before the serving container: doki finds the one with the port, wherever it stands.
    template.containers.insert(0, collector)
    template.volumes = [
        run_v2.Volume(name="scratch", empty_dir=run_v2.EmptyDirVolumeSource(medium="MEMORY", size_limit="64Mi"))
    ]
    template.vpc_access = run_v2.VpcAccess(
        connector=f"projects/{PATH.split('/')[1]}/locations/us-central1/connectors/ops", egress="PRIVATE_RANGES_ONLY"
    )
    template.execution_environment = run_v2.ExecutionEnvironment.EXECUTION_ENVIRONMENT_GEN2
    template.session_affinity = True
    template.labels = {"revision-owner": "ops"}
    service.labels = {"team": "data"}
    service.annotations = {"ops.example.com/runbook": "https://runbooks.example.com/doki"}
    service.binary_authorization = run_v2.BinaryAuthorization(use_default=True)
    service.scaling = run_v2.ServiceScaling(min_instance_count=0, max_instance_count=20)
    service.launch_stage = "BETA"  # as gcloud beta's --max declares it: Cloud Run refuses it at GA


def test_every_command_keeps_what_doki_does_not_manage_and_no_plan_names_it(
    project: Path,
    engine_emulator: Emulator,
) -> None:
    first_sha = git(project, "rev-parse", "HEAD")
    first = release("--secrets-from", ".env")
    assert first.exit_code == 0, first.output
    image = f"{IMAGE}:{first_sha[:7]}"
    services = ClientFactory(engine_emulator.grpc_address).run_services()
    service = services.get_service(name=PATH)
    set_up_by_hand(service, image)
    services.update_service(service=service).result(timeout=300)
    before = not_dokis(services.get_service(name=PATH))
    assert len(before["template"]["containers"]) == 2

    unchanged = doki("deploy", "--image", image, "--dry-run")
    assert unchanged.exit_code == 0, unchanged.output
    header = f"Plan for doki-backend ({PATH}) on the emulator at {engine_emulator.grpc_address}:"
    assert unchanged.stdout == f"{header}\n{KEPT_LINE}No changes.\n"

    (project / "doki.toml").write_text(
        (project / "doki.toml").read_text().replace('repository = "doki"\n', 'repository = "doki"\nmemory = "1Gi"\n')
    )
    commit(project, "more memory")
    plan = doki("--json", "deploy", "--image", image, "--dry-run")
    assert plan.exit_code == 2, plan.output
    planned = json.loads(plan.stdout)["plan"]
    assert planned["changes"] == [{"what": "memory", "before": "512Mi", "after": "1Gi"}]
    assert planned["kept"] == KEPT_LINE.split(": ", 1)[1].rstrip("\n").split(", ")

    steps: list[tuple[str, ...]] = [
        ("deploy", "--image", image, "--yes"),
        ("cors", "add", "https://two.example", "--yes"),
        ("scale", "--max-instances", "3", "--yes"),
        ("rollback", "--yes"),
    ]
    for step in steps:
        result = doki(*step)
        assert result.exit_code == 0, (step, result.output)
        assert not_dokis(services.get_service(name=PATH)) == before, step

    (project / "doki" / "release_marker.py").write_text('"""A code change: the next release."""\n')
    released_sha = commit(project, "next release")
    released = release()
    assert released.exit_code == 0, released.output
    assert json.loads(released.stdout)["result"] == "released"
    assert not_dokis(services.get_service(name=PATH)) == before, "release"

    again = doki("deploy", "--image", f"{IMAGE}:{released_sha[:7]}", "--yes")
    assert again.exit_code == 0, again.output
    live = services.get_service(name=PATH)
    assert not_dokis(live) == before, "second deploy"
    assert [c.name for c in live.template.containers] == ["collector", "app"]
    assert live.template.containers[1].resources.limits["memory"] == "1Gi"
    assert doki("deploy", "--image", f"{IMAGE}:{released_sha[:7]}", "--dry-run").exit_code == 0
