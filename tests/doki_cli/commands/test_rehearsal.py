"""The done-when of "the emulator as strict as Google": `doki init` → `doki secrets push` → `doki release`, run as a new
user runs them, on a project made today: none of doki's required APIs enabled, no runtime account yet, an organisation
that restricts policy members to its domains (secure by default since 2024), Cloud Logging's read quota, callers
outside the project's VPC networks, builds that run as the Compute Engine default account. IAM propagation is left at
none: a delayed grant's retry has a test of its own (tests/doki_cli/deploy/test_release.py)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from doki_cli.emulator.projects import compute_default_account
from doki_cli.emulator.server import Emulator, EmulatorConfig
from doki_cli.engine import DockerEngine
from doki_cli.gcp.clients import ClientFactory
from doki_cli.gcp.serviceusage import REQUIRED_APIS
from doki_cli.main import app
from tests.helpers import BASE_IMAGE, CliRunner, run
from tests.helpers.new_project import FRONTEND, checkout_without_doki_files, fill_env

pytestmark = pytest.mark.docker

runner = CliRunner()
PROJECT = "doki-new-2026"
ACCOUNT = f"doki-backend-runtime@{PROJECT}.iam.gserviceaccount.com"


def git(root: Path, *args: str) -> None:
    run(["git", "-c", "user.name=doki", "-c", "user.email=doki@example.com", *args], cwd=root, check=True)


def test_a_project_made_today_goes_from_init_to_a_public_release_with_every_switch_on(
    tmp_path: Path, docker_client: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = EmulatorConfig(state_dir=tmp_path / "state", disabled_apis=REQUIRED_APIS)
    with Emulator(config, engine=DockerEngine(docker_client)) as emulator:
        policies = {"project": PROJECT, "domain_restricted_sharing": True, "logging_read_requests_per_minute": 60}
        assert httpx.post(f"{emulator.rest_url}/_doki/policies", json=policies).status_code == 200
        for name, value in (
            ("DOKI_EMULATOR", emulator.grpc_address),
            ("STORAGE_EMULATOR_HOST", emulator.rest_url),
            ("DOKI_EMULATOR_REGISTRY", emulator.registry_address),
        ):
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("CI", raising=False)
        root = checkout_without_doki_files(tmp_path / "doki-backend")
        monkeypatch.chdir(root)

        init = runner.invoke(app, ["init", "--project", PROJECT, "--enable-apis", "--create-account", *FRONTEND])
        assert init.exit_code == 0, init.output
        assert f"enabled    {', '.join(REQUIRED_APIS)}\n" in init.stdout
        assert f"created    {ACCOUNT}\n" in init.stdout

        fill_env(root)
        git(root, "init", "-q")
        git(root, "add", "-A")
        git(root, "commit", "-qm", "doki init")

        pushed = runner.invoke(app, ["secrets", "push"])
        assert pushed.exit_code == 0, pushed.output
        # Built on Cloud Build, as CI builds: a project made today builds as its Compute Engine default account.
        release = ["--json", "release", "--remote", "--base-image", BASE_IMAGE]

        # The organisation refuses allUsers: the release says so, and the service stays private (nothing half-open).
        refused = runner.invoke(app, release)
        assert refused.exit_code == 1, refused.output
        error = json.loads(refused.stdout)["error"]
        assert error["code"] == "public_access_refused"
        assert "set invoker_iam_check = false in doki.toml" in error["hint"]
        status = json.loads(runner.invoke(app, ["--json", "status"]).stdout)
        assert httpx.get(status["url"] + "/", timeout=10).status_code == 403

        # What the hint says: public through Cloud Run's invoker check, which that policy allows.
        toml = (root / "doki.toml").read_text()
        (root / "doki.toml").write_text(
            toml.replace("allow_unauthenticated = true\n", "allow_unauthenticated = true\ninvoker_iam_check = false\n")
        )
        git(root, "commit", "-qam", "public without allUsers")
        released = runner.invoke(app, release)
        assert released.exit_code == 0, released.output
        summary = json.loads(released.stdout)
        assert (summary["result"], summary["steps"][0]["result"]) == ("released", "built-remote")
        builds = list(ClientFactory(emulator.grpc_address).cloud_build().list_builds(project_id=PROJECT))
        assert {b.service_account for b in builds} == {
            f"projects/{PROJECT}/serviceAccounts/{compute_default_account(PROJECT)}"
        }
        assert httpx.get(summary["service_url"] + "/", timeout=10).json() == {"message": "Doki Backend up"}

        doctor = json.loads(runner.invoke(app, ["--json", "doctor"]).stdout)
        checks = {check["check"]: check for check in doctor}
        assert checks["required APIs"]["status"] == "pass"
        assert checks["runtime account exists"] == {
            "check": "runtime account exists",
            "status": "pass",
            "message": f"{ACCOUNT} exists",
            "fix": None,
        }
        assert checks["secret access"]["status"] == "pass"
        assert checks["ingress and invoker"]["status"] == "pass"
