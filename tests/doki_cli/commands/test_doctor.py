"""`doki doctor`: the guide's checklist as checks, offline and against the emulator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from doki_cli.emulator.server import Emulator, EmulatorConfig
from doki_cli.gcp.clients import ClientFactory
from doki_cli.main import app
from tests.helpers import CliRunner, copy_checkout

runner = CliRunner()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = copy_checkout(tmp_path / "project")
    monkeypatch.chdir(root)
    return root


def checks(*args: str) -> tuple[int, dict[str, dict[str, str]]]:
    result = runner.invoke(app, ["--json", "doctor", *args])
    return result.exit_code, {c["check"]: c for c in json.loads(result.stdout)}


def test_this_repository_passes_every_local_check_but_its_supabase_url_stand_in(project: Path) -> None:
    code, found = checks("--offline")
    assert code == 1
    assert set(found) == {
        "secrets",
        "runtime account",
        "cors",
        "environment",
        "placeholders",
        "dockerfile user",
        "dockerignore",
        "credential files",
    }
    assert {name for name, c in found.items() if c["status"] != "pass"} == {"placeholders"}
    assert found["placeholders"]["message"] == (
        "SUPABASE_URL still holds a placeholder: production would refuse to start"
    )
    assert found["placeholders"]["fix"] == "set the real values in doki.toml [service.env]"


def test_with_its_supabase_url_set_this_repository_passes_every_local_check(project: Path) -> None:
    toml = project / "doki.toml"
    toml.write_text(
        toml.read_text().replace("https://your-project.supabase.co", "https://abcdefghijklmnop.supabase.co")
    )
    code, found = checks("--offline")
    assert code == 0
    assert {c["status"] for c in found.values()} == {"pass"}


def test_from_a_subdirectory_it_checks_the_project_beside_doki_toml(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project / "doki_cli" / "commands")
    _, found = checks("--offline")
    assert found["dockerfile user"] == {
        "check": "dockerfile user",
        "status": "pass",
        "message": "the image runs as 1000",
        "fix": None,
    }
    assert found["dockerignore"]["status"] == "pass"


def test_a_wildcard_origin_a_plain_secret_and_a_root_dockerfile_fail(project: Path) -> None:
    toml = (project / "doki.toml").read_text()
    toml = toml.replace('ALLOWED_ORIGINS = ["https://app.doki.com", "https://www.doki.com"]', 'ALLOWED_ORIGINS = "*"')
    toml = toml.replace('GCP_PROJECT_ID = "doki-prod"', 'GCP_PROJECT_ID = "doki-prod"\nSTRIPE_SECRET = "sk_live_abc"')
    (project / "doki.toml").write_text(toml)
    dockerfile = (project / "Dockerfile").read_text().replace("USER 1000", "USER root")
    (project / "Dockerfile").write_text(dockerfile)
    code, found = checks("--offline")
    assert code == 1
    assert (found["cors"]["status"], found["cors"]["message"]) == ("fail", "ALLOWED_ORIGINS contains '*'")
    assert found["secrets"]["message"] == "plain env vars that look secret: STRIPE_SECRET"
    assert found["dockerfile user"]["status"] == "fail"
    human = runner.invoke(app, ["doctor", "--offline"]).stdout
    assert "FAIL  cors: ALLOWED_ORIGINS contains '*'\n      fix: list your frontend origins exactly\n" in human


def test_dotenv_and_key_files_in_the_build_context_fail(project: Path) -> None:
    (project / ".dockerignore").write_text("tests\n")
    (project / ".env").write_text("A=1\n")
    (project / "deploy.pem").write_text("-----BEGIN PRIVATE KEY-----\n")
    code, found = checks("--offline")
    assert code == 1
    assert found["dockerignore"]["status"] == "fail"
    assert found["credential files"]["message"] == "the build context would send .env, deploy.pem"


def test_many_credential_files_are_named_five_then_counted(project: Path) -> None:
    (project / ".dockerignore").write_text(".env*\n")
    for number in range(8):
        (project / f"key-{number}.pem").write_text("-----BEGIN PRIVATE KEY-----\n")
    code, found = checks("--offline")
    assert code == 1
    assert found["credential files"]["message"] == (
        "the build context would send key-0.pem, key-1.pem, key-2.pem, key-3.pem, key-4.pem and 3 more"
    )


def test_online_it_finds_secrets_the_runtime_account_cannot_read(
    project: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOKI_EMULATOR", emulator.grpc_address)
    for name in ("SUPABASE_SECRET_KEY", "SUPABASE_JWT_SECRET", "GOOGLE_CLIENT_ID", "GOOGLE_CLIENT_SECRET"):
        (project / ".env").open("a").write(f"{name}=value-of-{name.lower()}\n")
    (project / ".env").open("a").write("SESSION_SECRET_KEY=" + "s" * 48 + "\nENCRYPTION_KEY=k\n")
    assert runner.invoke(app, ["--project", "doki-prod", "secrets", "push"]).exit_code == 0
    code, found = checks("--create-account")
    assert code == 1
    assert found["secret access"]["message"].startswith("doki-runtime@doki-prod.iam.gserviceaccount.com cannot read ")
    assert found["service"]["status"] == "warn"
    assert runner.invoke(app, ["secrets", "grant"]).exit_code == 0
    assert checks()[1]["secret access"]["status"] == "pass"


def test_online_a_runtime_account_that_does_not_exist_fails_and_create_account_makes_it_once(
    project: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOKI_EMULATOR", emulator.grpc_address)
    account = "doki-runtime@doki-prod.iam.gserviceaccount.com"
    code, found = checks()
    assert code == 1
    assert found["runtime account exists"] == {
        "check": "runtime account exists",
        "status": "fail",
        "message": f"{account} does not exist: deploys and releases stop until it does",
        "fix": "`doki doctor --create-account` creates it (or gcloud iam service-accounts create doki-runtime "
        "--project doki-prod)",
    }
    assert checks("--create-account")[1]["runtime account exists"]["message"] == f"{account} created"
    assert checks("--create-account")[1]["runtime account exists"]["message"] == f"{account} exists"
    made = (
        ClientFactory(emulator.grpc_address)
        .iam_admin()
        .get_service_account(request={"name": f"projects/doki-prod/serviceAccounts/{account}"})
    )
    assert (made.display_name, made.description) == ("doki runtime", "Runs the Cloud Run revisions doki deploys")


def test_online_create_account_without_a_runtime_account_in_doki_toml_says_there_is_nothing_to_create(
    project: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOKI_EMULATOR", emulator.grpc_address)
    toml = project / "doki.toml"
    toml.write_text(
        "".join(line for line in toml.read_text().splitlines(keepends=True) if not line.startswith("service_account"))
    )
    assert checks("--create-account")[1]["runtime account exists"] == {
        "check": "runtime account exists",
        "status": "skip",
        "message": "doki.toml names no service_account: nothing to look up or create",
        "fix": None,
    }


def test_create_account_needs_the_project_so_it_is_refused_offline(project: Path) -> None:
    result = runner.invoke(app, ["doctor", "--offline", "--create-account"])
    assert result.exit_code == 1
    assert result.stderr == (
        "Error [bad_option]: --create-account needs the project: it cannot run --offline\n  Hint: drop --offline\n"
    )


def test_online_secrets_that_do_not_exist_yet_fail_with_the_push_command_instead_of_stopping_doctor(
    project: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOKI_EMULATOR", emulator.grpc_address)
    (project / ".env").write_text("SESSION_SECRET_KEY=" + "s" * 48 + "\n")
    assert runner.invoke(app, ["secrets", "push", "SESSION_SECRET_KEY"]).exit_code == 0
    (project / ".env").unlink()
    code, found = checks()
    assert code == 1
    assert found["secrets exist"] == {
        "check": "secrets exist",
        "status": "fail",
        "message": "doki.toml references secrets that do not exist: encryption-key, google-oauth-client-id, "
        "google-oauth-client-secret, supabase-jwt-secret, supabase-secret-key",
        "fix": "run `doki secrets push` (values from .env)",
    }
    assert found["secret access"]["message"] == (
        "doki-runtime@doki-prod.iam.gserviceaccount.com cannot read session-secret-key"
    )


def test_online_a_secret_version_a_deploy_would_stop_at_fails_with_its_fix(
    project: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOKI_EMULATOR", emulator.grpc_address)
    (project / ".env").write_text("SESSION_SECRET_KEY=" + "s" * 48 + "\n")
    assert runner.invoke(app, ["secrets", "push", "SESSION_SECRET_KEY"]).exit_code == 0
    client = ClientFactory(emulator.grpc_address).secret_manager()
    client.disable_secret_version(name="projects/doki-prod/secrets/session-secret-key/versions/1")
    code, found = checks()
    assert code == 1
    assert found["secret versions"] == {
        "check": "secret versions",
        "status": "fail",
        "message": "SESSION_SECRET_KEY uses the secret session-secret-key, whose latest version 1 is disabled: the "
        "new revision could not read it",
        "fix": "enable it (gcloud secrets versions enable 1 --secret session-secret-key), or push a new value with "
        "`doki secrets push`",
    }


def push_secrets(project: Path) -> None:
    """Every secret doki.toml names, in the emulator: the secret access check reads their policies."""
    values = {name: f"value-of-{name.lower()}" for name in ("SUPABASE_SECRET_KEY", "GOOGLE_CLIENT_ID")}
    values |= {"SUPABASE_JWT_SECRET": "j" * 40, "GOOGLE_CLIENT_SECRET": "g", "SESSION_SECRET_KEY": "s" * 48}
    values["ENCRYPTION_KEY"] = "k"
    (project / ".env").write_text("".join(f"{name}={value}\n" for name, value in values.items()))
    result = runner.invoke(app, ["secrets", "push"])
    assert result.exit_code == 0, result.output
    (project / ".env").unlink()


def test_online_the_required_apis_pass_when_all_five_are_enabled(
    project: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOKI_EMULATOR", emulator.grpc_address)
    push_secrets(project)
    found = checks()[1]
    assert found["required APIs"] == {
        "check": "required APIs",
        "status": "pass",
        "message": "run, secretmanager, cloudbuild, artifactregistry, iam are enabled",
        "fix": None,
    }


def test_online_a_required_api_that_is_off_fails_with_the_command_that_enables_it(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = EmulatorConfig(state_dir=tmp_path / "apis-off", disabled_apis=("cloudbuild.googleapis.com",))
    with Emulator(config) as emulator:
        monkeypatch.setenv("DOKI_EMULATOR", emulator.grpc_address)
        push_secrets(project)
        code, found = checks()
        human = runner.invoke(app, ["doctor"]).stdout
    assert code == 1
    assert found["required APIs"] == {
        "check": "required APIs",
        "status": "fail",
        "message": "not enabled in doki-prod: cloudbuild.googleapis.com",
        "fix": "gcloud services enable cloudbuild.googleapis.com --project doki-prod",
    }
    assert (
        "FAIL  required APIs: not enabled in doki-prod: cloudbuild.googleapis.com\n"
        "      fix: gcloud services enable cloudbuild.googleapis.com --project doki-prod\n"
    ) in human


def test_online_the_checks_of_an_api_that_is_off_are_left_out_rather_than_failing_doctor(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    off = ("run.googleapis.com", "secretmanager.googleapis.com")
    with Emulator(EmulatorConfig(state_dir=tmp_path / "apis-off", disabled_apis=off)) as emulator:
        monkeypatch.setenv("DOKI_EMULATOR", emulator.grpc_address)
        code, found = checks()
    assert code == 1
    assert found["required APIs"]["message"] == (
        "not enabled in doki-prod: run.googleapis.com, secretmanager.googleapis.com"
    )
    assert not {"secret access", "service", "ingress and invoker"} & set(found)


def test_online_no_permission_to_read_the_apis_is_a_warning_with_the_role_to_grant(
    project: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOKI_EMULATOR", emulator.grpc_address)
    push_secrets(project)
    emulator.faults.fail("BatchGetServices", "PERMISSION_DENIED", message="Permission denied on projects/doki-prod")
    found = checks()[1]
    assert found["required APIs"]["status"] == "warn"
    assert found["required APIs"]["fix"] == (
        "grant your account the roles/serviceusage.serviceUsageViewer role on projects/doki-prod or its project, "
        "or run as an identity that has it"
    )


def test_doctor_says_first_which_project_region_and_endpoint_its_checks_read(
    project: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    offline = runner.invoke(app, ["doctor", "--offline"]).stdout
    assert offline.startswith(
        "Checks of doki-backend (project doki-prod, region us-central1), offline: doki.toml and this checkout only:\n"
    )
    monkeypatch.setenv("DOKI_EMULATOR", emulator.grpc_address)
    online = runner.invoke(app, ["--project", "other-proj", "doctor"]).stdout
    assert online.startswith(
        "Checks of doki-backend (project other-proj, region us-central1), "
        f"on the emulator at {emulator.grpc_address}:\n"
    )


def test_a_runtime_account_of_another_project_fails_as_when_project_points_elsewhere(project: Path) -> None:
    result = runner.invoke(app, ["--json", "--project", "doki-staging", "doctor", "--offline"])
    assert result.exit_code == 1
    found = {c["check"]: c for c in json.loads(result.stdout)}
    assert found["runtime account"] == {
        "check": "runtime account",
        "status": "fail",
        "message": "revisions would run as doki-runtime@doki-prod.iam.gserviceaccount.com, an account of project "
        "doki-prod, while doki-backend is in doki-staging",
        "fix": "create the account in doki-staging and name it in doki.toml ([environments.NAME] for a project of its "
        "own), or allow this project's Cloud Run to use it: see "
        "https://cloud.google.com/run/docs/configuring/services/service-identity",
    }
    assert checks("--offline")[1]["runtime account"]["status"] == "pass"  # doki.toml's own project


def test_online_secret_access_with_no_secrets_to_read_is_skipped_not_passed(
    project: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOKI_EMULATOR", emulator.grpc_address)
    assert checks()[1]["secret access"]["message"] == "none of the referenced secrets exists yet: nothing to check"
    toml = (project / "doki.toml").read_text()
    before, _, after = toml.partition("[service.secrets]")
    (project / "doki.toml").write_text(before + after[after.index("\n[") :])  # the section and its refs gone
    _, found = checks()
    assert found["secret access"] == {
        "check": "secret access",
        "status": "skip",
        "message": "doki.toml references no secrets: nothing to check",
        "fix": None,
    }
    human = runner.invoke(app, ["doctor"]).stdout
    assert "SKIP  secret access: doki.toml references no secrets: nothing to check\n" in human
