"""`doki init --from-service`: doki.toml written from a live service, so adopting a service gcloud made is one
command; refusals name the problem and write nothing. (The guide-made service, end to end with real containers, is
tests/doki_cli/guide/test_guide.py.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from google.cloud import run_v2
from google.iam.v1 import policy_pb2

from doki_cli.config import load_config
from doki_cli.emulator.server import Emulator
from doki_cli.gcp.clients import ClientFactory
from doki_cli.main import app
from tests.helpers import CliRunner

runner = CliRunner()
PROJECT = "my-proj-123"
REGION = "europe-west1"
ACCOUNT = f"api-runtime@{PROJECT}.iam.gserviceaccount.com"


@pytest.fixture
def project(tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "api"
    root.mkdir()
    monkeypatch.chdir(root)
    monkeypatch.setenv("DOKI_EMULATOR", emulator.grpc_address)
    return root


def secret(env: str, name: str, version: str) -> run_v2.EnvVar:
    ref = run_v2.SecretKeySelector(secret=name, version=version)
    return run_v2.EnvVar(name=env, value_source=run_v2.EnvVarSource(secret_key_ref=ref))


def make_service(emulator: Emulator, **service: Any) -> run_v2.Service:
    """A service as gcloud would have made it (the emulator has no engine here: it never becomes Ready, which
    adoption does not need)."""
    clients = ClientFactory(emulator.grpc_address)
    clients.iam_admin().create_service_account(request={"name": f"projects/{PROJECT}", "account_id": "api-runtime"})
    container = run_v2.Container(
        image=f"{REGION}-docker.pkg.dev/{PROJECT}/apps/api@sha256:{'a' * 64}",
        ports=[run_v2.ContainerPort(name="http1", container_port=8000)],
        resources=run_v2.ResourceRequirements(
            limits={"cpu": "2", "memory": "1Gi"}, cpu_idle=True, startup_cpu_boost=True
        ),
        env=[
            run_v2.EnvVar(name="ENVIRONMENT", value="production"),
            run_v2.EnvVar(name="ALLOWED_ORIGINS", value="https://app.doki.com,https://www.doki.com"),
            secret("SESSION_SECRET_KEY_NAME", "session-secret-key", "latest"),
            secret("ENCRYPTION_KEY", "encryption-key", "3"),
        ],
    )
    template = run_v2.RevisionTemplate(
        containers=[container],
        service_account=ACCOUNT,
        scaling=run_v2.RevisionScaling(min_instance_count=1, max_instance_count=20),
        max_instance_request_concurrency=40,
        timeout={"seconds": 120},
    )
    services = clients.run_services()
    services.create_service(
        parent=f"projects/{PROJECT}/locations/{REGION}",
        service_id="api",
        service=run_v2.Service(template=template, **service),
    )
    name = f"projects/{PROJECT}/locations/{REGION}/services/api"
    policy = services.get_iam_policy(request={"resource": name})
    policy.bindings.append(policy_pb2.Binding(role="roles/run.invoker", members=["allUsers"]))
    services.set_iam_policy(request={"resource": name, "policy": policy})
    return services.get_service(name=name)


def from_service(*args: str) -> Any:
    return runner.invoke(app, ["init", "--from-service", "api", "--project", PROJECT, "--region", REGION, *args])


def test_doki_toml_is_the_live_services_settings_and_loads_as_doki_reads_it(project: Path, emulator: Emulator) -> None:
    live = make_service(emulator, ingress=run_v2.IngressTraffic.INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER)
    result = from_service()
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == f"read       api ({PROJECT}, {REGION}): {live.template.containers[0].image}"
    assert (project / "doki.toml").read_text() == (
        "# Written by `doki init --from-service api` from the live service: its settings, as doki.toml. doki\n"
        "# deploy changes only what differs from here, and keeps what this file does not manage (listed at the end).\n"
        "\n"
        "[service]\n"
        'name = "api"\n'
        f'project = "{PROJECT}"\n'
        f'region = "{REGION}"\n'
        'repository = "apps"\n'
        "port = 8000\n"
        'memory = "1Gi"\n'
        'cpu = "2"\n'
        "min_instances = 1\n"
        "max_instances = 20\n"
        "timeout_seconds = 120\n"
        "concurrency = 40\n"
        'ingress = "internal-and-cloud-load-balancing"\n'
        "allow_unauthenticated = true\n"
        f'service_account = "{ACCOUNT}"\n'
        "\n"
        "[service.env]\n"
        'ENVIRONMENT = "production"\n'
        'ALLOWED_ORIGINS = ["https://app.doki.com", "https://www.doki.com"]\n'
        "\n"
        "# Environment variable = Secret Manager secret (latest version unless `name:version`).\n"
        "[service.secrets]\n"
        'SESSION_SECRET_KEY_NAME = "session-secret-key"\n'
        'ENCRYPTION_KEY = "encryption-key:3"\n'
    )
    config = load_config(project / "doki.toml")
    assert config.env["ALLOWED_ORIGINS"] == "https://app.doki.com,https://www.doki.com"
    assert (config.cpu, config.memory, config.concurrency, config.timeout_seconds) == ("2", "1Gi", 40, 120)


def test_what_doki_does_not_manage_is_listed_as_kept_and_the_invoker_check_is_carried(
    project: Path, emulator: Emulator
) -> None:
    make_service(emulator, invoker_iam_disabled=True, labels={"team": "web"})
    result = runner.invoke(app, ["--json", "init", "--from-service", "api", "--project", PROJECT, "--region", REGION])
    assert result.exit_code == 0, result.output
    adopted = json.loads(result.stdout)["adopted"]
    assert adopted["kept"] == ["labels team"]
    assert adopted["public"] is True
    toml = (project / "doki.toml").read_text()
    assert "invoker_iam_check = false  # anyone may call it, without an allUsers binding\n" in toml
    assert toml.endswith(
        "# Kept as they are by every deploy while this file does not declare them (docs/configuration.md, Cloud Run "
        "settings): labels team.\n"
    )
    assert load_config(project / "doki.toml").invoker_iam_check is False


def test_a_service_that_does_not_exist_is_refused_and_nothing_is_written(project: Path) -> None:
    result = runner.invoke(app, ["--json", "init", "--from-service", "api", "--project", PROJECT, "--region", REGION])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["error"] == {
        "code": "service_not_found",
        "message": f"there is no Cloud Run service api in project {PROJECT}, region {REGION}",
        "hint": f"list them with `gcloud run services list --project {PROJECT}`, or pass --region",
    }
    assert list(project.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--service", "web"], "--service web and --from-service api name two services"),
        (
            ["--origin", "https://one.example"],
            "--origin cannot be combined with --from-service: doki.toml takes the live service's env",
        ),
        (
            ["--create-account"],
            "--create-account cannot be combined with --from-service: the service keeps the account it runs as",
        ),
    ],
)
def test_options_that_would_contradict_the_service_are_refused_before_any_call(
    project: Path, args: list[str], message: str
) -> None:
    result = runner.invoke(app, ["--json", "init", "--from-service", "api", "--project", PROJECT, *args])
    assert result.exit_code == 1
    error = json.loads(result.stdout)["error"]
    assert (error["code"], error["message"]) == ("bad_option", message)
    assert list(project.iterdir()) == []


def test_what_doki_toml_cannot_name_is_left_to_the_service_and_said_so(project: Path, emulator: Emulator) -> None:
    clients = ClientFactory(emulator.grpc_address)
    container = run_v2.Container(
        image="nginx:1",
        env=[
            run_v2.EnvVar(name="GREETING", value="héllo 🚀"),
            run_v2.EnvVar(name="dotted.name", value="x"),
            secret("SHARED_KEY", "projects/other-proj-456/secrets/shared-key", "latest"),
        ],
    )
    clients.run_services().create_service(
        parent=f"projects/{PROJECT}/locations/{REGION}",
        service_id="api",
        service=run_v2.Service(template=run_v2.RevisionTemplate(containers=[container])),
    )
    result = from_service()
    assert result.exit_code == 0, result.output
    toml = (project / "doki.toml").read_text()
    assert 'GREETING = "héllo 🚀"\n' in toml
    assert "# Kept as they are: variables doki.toml cannot name, dotted.name.\n" in toml
    assert (
        "# Kept as they are: secrets of another project, SHARED_KEY (projects/other-proj-456/secrets/shared-key).\n"
        in toml
    )
    assert "SHARED_KEY =" not in toml
    assert load_config(project / "doki.toml").env == {"GREETING": "héllo 🚀"}
