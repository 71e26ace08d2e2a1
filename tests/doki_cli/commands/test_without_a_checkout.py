"""doki from anywhere: a subdirectory of the project (doki.toml found above, its paths read beside it), and the read
and operate commands with `--service NAME` and no doki.toml at all, the project from the options, the environment or
gcloud's configuration."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import Result

from doki_cli.emulator.server import Emulator
from doki_cli.main import app
from tests.helpers import CliRunner
from tests.helpers.project import setup_project

runner = CliRunner()


def doki(*args: str) -> Result:
    return runner.invoke(app, list(args))


@pytest.fixture
def deployed(tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Path:
    """doki-backend in the emulator's project doki-e2e (its revision never Ready: no engine), and an empty directory
    to run doki from, with no doki.toml anywhere above it."""
    project = tmp_path / "project"
    project.mkdir()
    setup_project(project, emulator, monkeypatch)
    monkeypatch.chdir(project)
    assert doki("secrets", "push").exit_code == 0
    assert doki("deploy", "--image", "img:1", "--yes").exit_code == 1  # the service exists; nothing is Ready
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    return project


def test_secrets_push_from_a_subdirectory_reads_the_env_file_beside_doki_toml(
    tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup_project(tmp_path, emulator, monkeypatch)
    (tmp_path / "app" / "routes").mkdir(parents=True)
    (tmp_path / "app" / "routes" / ".env").write_text("SESSION_SECRET_KEY=not-this-one\n")  # not the project's
    monkeypatch.chdir(tmp_path / "app" / "routes")
    result = doki("secrets", "push")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "session-secret-key          created    version 1\n"
        "encryption-key              created    version 1\n"
        "supabase-secret-key         created    version 1\n"
        "google-oauth-client-secret  created    version 1\n"
    )
    missing = doki("secrets", "push", "--from", "missing.env")
    assert "missing.env" in missing.stderr  # a path typed is relative to where it is typed


def test_cors_list_with_service_needs_no_doki_toml(deployed: Path) -> None:
    result = doki("cors", "list", "--service", "doki-backend", "--project", "doki-e2e")
    assert result.exit_code == 0, result.output
    assert result.stdout == "https://one.example\n"


def test_service_takes_its_project_and_region_from_gcloud_when_nothing_else_names_them(
    deployed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gcloud = tmp_path / "gcloud"
    (gcloud / "configurations").mkdir(parents=True)
    (gcloud / "configurations" / "config_default").write_text(
        "[core]\nproject = doki-e2e\n[run]\nregion = us-central1\n"
    )
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(gcloud))
    result = doki("--json", "cors", "list", "--service", "doki-backend")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"origins": ["https://one.example"]}


def test_service_takes_its_project_from_gclouds_variable(deployed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDSDK_CORE_PROJECT", "doki-e2e")
    result = doki("status", "--service", "doki-backend", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["service"] == "projects/doki-e2e/locations/us-central1/services/doki-backend"


def test_service_without_any_project_says_how_to_name_one(deployed: Path) -> None:
    result = doki("status", "--service", "doki-backend")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error [project_required]: no doki.toml, option or gcloud configuration names the Google Cloud project "
        "doki-backend runs in\n"
        "  Hint: pass --project YOUR_PROJECT_ID (or set DOKI_PROJECT, or `gcloud config set project`)\n"
    )


def test_service_with_a_name_cloud_run_refuses_is_a_bad_option(deployed: Path) -> None:
    result = doki("logs", "--service", "Not_A_Service", "--project", "doki-e2e")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error [bad_option]: --service 'Not_A_Service' is not a Cloud Run service name\n"
        "  Hint: use lowercase letters, digits and hyphens, starting with a letter, at most 49 (`gcloud run services "
        "list` shows yours)\n"
    )


def test_service_inside_a_project_acts_on_that_service_in_doki_tomls_project(
    deployed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (deployed / "doki.toml").write_text(
        (deployed / "doki.toml").read_text().replace('name = "doki-backend"', 'name = "another"')
    )
    (deployed / "sub").mkdir()
    monkeypatch.chdir(deployed / "sub")
    result = doki("cors", "list", "--service", "doki-backend")
    assert result.exit_code == 0, result.output
    assert result.stdout == "https://one.example\n"


def test_save_is_refused_with_service_before_anything_changes(deployed: Path) -> None:
    result = doki("scale", "--max", "3", "--save", "--yes", "--service", "doki-backend", "--project", "doki-e2e")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error [bad_option]: --save writes doki.toml, and --service acts on a service apart from it; nothing was "
        "changed\n"
        "  Hint: drop --service to act on doki.toml's service and save, or drop --save\n"
    )


def test_init_takes_the_project_and_region_gcloud_holds_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gcloud = tmp_path / "gcloud"
    (gcloud / "configurations").mkdir(parents=True)
    (gcloud / "configurations" / "config_work").write_text(
        "[core]\nproject = gcloud-proj\n[run]\nregion = europe-west1\n"
    )
    (gcloud / "active_config").write_text("work")
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(gcloud))
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    (tmp_path / "api").mkdir()
    monkeypatch.chdir(tmp_path / "api")
    result = doki("init")
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith(
        "project gcloud-proj (from gcloud configuration 'work' (core/project))\n"
        "region europe-west1 (from gcloud configuration 'work' (run/region))\n"
    )
    toml = (tmp_path / "api" / "doki.toml").read_text()
    assert 'project = "gcloud-proj"' in toml and 'region = "europe-west1"' in toml


def test_logs_rollback_and_scale_take_service_too(deployed: Path) -> None:
    where = ("--service", "doki-backend", "--project", "doki-e2e")
    logs = doki("logs", *where)
    assert logs.exit_code == 0, logs.output
    assert logs.stderr == "No log entries for doki-backend in us-central1 match.\n"
    rollback = doki("rollback", *where)
    assert rollback.exit_code == 1
    assert rollback.stderr.startswith("Error [no_earlier_revision]: doki-backend has no Ready revision older than ")
    scale = doki("--json", "scale", "--max", "3", "--dry-run", *where)
    assert scale.exit_code == 2, scale.output
    assert json.loads(scale.stdout)["plan"]["service"].endswith("/services/doki-backend")
