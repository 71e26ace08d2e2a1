"""`doki init`: the files it writes, never overwriting without --force, enabling the APIs, and the issue's "done
when": what it writes deploys with `doki deploy` as is."""

from __future__ import annotations

import io
import json
import re
import shlex
import tarfile
from pathlib import Path

import httpx
import pytest

from doki.settings import Settings
from doki_cli.config import load_config
from doki_cli.emulator.server import Emulator, EmulatorConfig
from doki_cli.engine import build_context
from doki_cli.gcp.clients import ClientFactory
from doki_cli.gcp.google import Google
from doki_cli.main import app
from tests.helpers import CliRunner
from tests.helpers.images import publish
from tests.helpers.new_project import FRONTEND, checkout_without_doki_files, fill_env

runner = CliRunner()
FILES = ["doki.toml", ".dockerignore", ".env.example", "cloudbuild.yaml", ".github/workflows/doki-release.yml"]
NEXT = (
    "Next:\n"
    "  create the runtime account: `doki doctor --create-account`, or gcloud iam service-accounts create "
    "my-api-runtime --project my-proj-123\n"
    "  cp .env.example .env, then set the secrets in it (`doki keys generate` makes ENCRYPTION_KEY and "
    "SESSION_SECRET_KEY)\n"
    "  doki secrets push && doki build --push && doki deploy\n"
    "  doki doctor: the required APIs and the deployment guide's security checklist\n"
)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "My_API"
    root.mkdir()
    monkeypatch.chdir(root)
    for name in ("GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT"):
        monkeypatch.delenv(name, raising=False)
    return root


def init(*args: str) -> object:
    return runner.invoke(app, ["init", "--project", "my-proj-123", *args])


def test_init_writes_every_file_and_says_what_comes_next(project: Path) -> None:
    result = init(*FRONTEND)
    assert result.exit_code == 0, result.output
    assert result.stdout == "".join(f"created    {path}\n" for path in FILES) + NEXT
    assert sorted(str(p.relative_to(project)) for p in project.rglob("*") if p.is_file()) == sorted(FILES)


def test_the_doki_toml_it_writes_loads_with_the_guides_defaults(project: Path) -> None:
    assert init(*FRONTEND, "--origin", "http://localhost:3000").exit_code == 0
    config = load_config(project / "doki.toml")
    assert (config.name, config.project, config.region, config.repository) == (
        "my-api",
        "my-proj-123",
        "us-central1",
        "cloud-run-source-deploy",
    )
    assert (config.port, config.memory, config.cpu, config.min_instances, config.max_instances) == (
        8080,
        "512Mi",
        "1",
        0,
        10,
    )
    assert (config.timeout_seconds, config.concurrency, config.ingress, config.allow_unauthenticated) == (
        300,
        80,
        "all",
        True,
    )
    assert config.service_account == "my-api-runtime@my-proj-123.iam.gserviceaccount.com"
    # Commented out: until the account exists, builds run as the project's default build account.
    assert config.build.service_account is None
    toml = (project / "doki.toml").read_text()
    assert '# [build]\n# service_account = "doki-builder@my-proj-123.iam.gserviceaccount.com"\n' in toml
    assert "on projects made since 2024 the Compute Engine default account" in toml
    assert config.env == {
        "ENVIRONMENT": "production",
        "SUPABASE_URL": "https://abcdefghijklmnop.supabase.co",
        "ALLOWED_ORIGINS": "https://one.example,http://localhost:3000",
        "GCP_PROJECT_ID": "my-proj-123",
    }
    assert {name: str(ref) for name, ref in config.secrets.items()} == {
        "SUPABASE_SECRET_KEY": "supabase-secret-key:latest",
        "GOOGLE_CLIENT_ID": "google-oauth-client-id:latest",
        "GOOGLE_CLIENT_SECRET": "google-oauth-client-secret:latest",
        "SESSION_SECRET_KEY": "session-secret-key:latest",
        "ENCRYPTION_KEY": "encryption-key:latest",
    }


def test_its_commented_examples_load_once_uncommented(project: Path) -> None:
    assert init().exit_code == 0
    toml = (project / "doki.toml").read_text()
    (project / "doki.toml").write_text(re.sub(r"(?m)^# (\[.*\]|[a-z_A-Z]+ = .*)$", r"\1", toml))
    staging = load_config(project / "doki.toml", env="staging")
    assert (staging.name, staging.max_instances) == ("my-api-staging", 2)
    assert [str(check) for check in staging.release.checks] == ["GET /docs -> 200 containing 'Swagger UI'"]
    assert staging.release.steps == (10, 50, 100)
    assert staging.secrets["SUPABASE_JWT_SECRET"].secret == "supabase-jwt-secret"
    assert staging.build.service_account == "doki-builder@my-proj-123.iam.gserviceaccount.com"
    settings = staging.settings
    assert (settings.cpu_idle, settings.startup_cpu_boost, settings.execution_environment) == (False, True, "gen2")
    assert (settings.session_affinity, settings.labels) == (True, {"team": "backend"})
    assert settings.cloudsql_instances == (f"my-proj-123:{staging.region}:my-db",)
    assert str(settings.vpc) == (
        f"connector projects/my-proj-123/locations/{staging.region}/connectors/my-connector, egress private-ranges-only"
    )
    assert str(settings.liveness_probe) == "http GET /, every 30s, timeout 1s, 3 failures"
    monitoring = staging.monitoring
    assert (monitoring.declared, monitoring.emails, monitoring.max_5xx_ratio) == (True, ("ops@example.com",), 0.05)
    assert (monitoring.max_p95_latency_ms, monitoring.alert_after_seconds) == (2000, 300)


def test_without_the_frontend_values_it_writes_placeholders_and_says_to_set_them(project: Path) -> None:
    result = init()
    assert result.exit_code == 0
    placeholders = "set SUPABASE_URL and ALLOWED_ORIGINS in doki.toml [service.env] (doki init wrote placeholders)"
    assert f"Next:\n  {placeholders}\n" in result.stdout
    config = load_config(project / "doki.toml")
    assert config.env["SUPABASE_URL"] == "https://your-project-ref.supabase.co"  # the backend refuses "your-"


def test_the_project_passes_the_offline_doctor_and_its_secrets_stay_out_of_the_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = checkout_without_doki_files(tmp_path / "doki-backend")
    monkeypatch.chdir(root)
    assert init(*FRONTEND).exit_code == 0
    for leftover in (".env", ".env.local", "gha-creds-0123456789abcdef.json", ".doki/dev-keys.json", ".venv/x.py"):
        (root / leftover).parent.mkdir(parents=True, exist_ok=True)
        (root / leftover).write_text("x\n")
    result = runner.invoke(app, ["--json", "doctor", "--offline"])
    assert result.exit_code == 0, result.output
    assert {check["status"] for check in json.loads(result.stdout)} == {"pass"}
    with tarfile.open(fileobj=io.BytesIO(build_context(root)), mode="r:gz") as archive:
        sent = archive.getnames()
    assert "Dockerfile" in sent and "doki/settings.py" in sent
    assert not [name for name in sent if name.startswith((".env", "gha-creds", ".doki", ".venv", ".git", ".github"))]


def test_existing_files_are_listed_and_nothing_is_written_without_force(project: Path) -> None:
    (project / "doki.toml").write_text("# mine\n")
    (project / "cloudbuild.yaml").write_text("steps: []\n")
    result = init()
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"Error [files_exist]: doki init would overwrite doki.toml, cloudbuild.yaml in {project}\n"
        "  Hint: nothing was written: move them away, or run doki init --force to overwrite them\n"
    )
    assert sorted(p.name for p in project.iterdir()) == ["cloudbuild.yaml", "doki.toml"]
    assert (project / "doki.toml").read_text() == "# mine\n"


def test_force_overwrites_them_and_says_which(project: Path) -> None:
    (project / "doki.toml").write_text("# mine\n")
    result = init("--force", *FRONTEND)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("overwrote  doki.toml\ncreated    .dockerignore\n")
    assert load_config(project / "doki.toml").name == "my-api"


def test_json_names_every_file_and_what_happened_to_it(project: Path) -> None:
    (project / ".dockerignore").write_text("*\n")
    result = runner.invoke(
        app, ["--json", "init", "--project", "my-proj-123", "--region", "europe-west1", "--force", *FRONTEND]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "directory": str(project),
        "service": "my-api",
        "project": "my-proj-123",
        "region": "europe-west1",
        "files": [{"path": path, "action": "overwritten" if path == ".dockerignore" else "created"} for path in FILES],
        "apis": None,
        "account": None,
        "adopted": None,
        "next": [line.strip() for line in NEXT.splitlines()[1:]],
    }


def test_a_directory_argument_scaffolds_there_and_names_the_service_after_it(tmp_path: Path) -> None:
    (tmp_path / "Billing Service 2").mkdir()
    result = init("Billing Service 2", "--region", "europe-west1")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("created    Billing Service 2/doki.toml\n")
    config = load_config(tmp_path / "Billing Service 2" / "doki.toml")
    assert (config.name, config.region) == ("billing-service-2", "europe-west1")


def test_the_project_comes_from_googles_own_variable_when_no_option_names_it(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "from-the-env-1")
    assert runner.invoke(app, ["init"]).exit_code == 0
    assert load_config(project / "doki.toml").project == "from-the-env-1"


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (
            ["init"],
            "Error [project_required]: doki init needs the Google Cloud project the service will run in\n"
            "  Hint: pass --project YOUR_PROJECT_ID (`gcloud projects list` shows yours), or set one with "
            "`gcloud config set project`\n",
        ),
        (
            ["init", "--project", "my-proj-123", "--service", "My_Service"],
            "Error [bad_option]: the doki.toml doki init would write [service] has 1 problem:\n"
            "  - name = 'My_Service' is not valid: lowercase letters, digits and hyphens, starting with a letter, "
            "at most 49\n"
            "  Hint: fix --service, --project or --region (see `doki init --help`)\n",
        ),
        (
            ["init", "--project", "my-proj-123", "--origin", "*"],
            "Error [bad_option]: --origin: '*' allows any site: list your frontends\n"
            "  Hint: pass each origin as scheme://host[:port]\n",
        ),
        (
            ["init", "--project", "my-proj-123", "--supabase-url", "http://abc.supabase.co/rest"],
            "Error [bad_option]: --supabase-url 'http://abc.supabase.co/rest' is not a project URL\n"
            "  Hint: pass it as Supabase shows it (Settings > API): https://<ref>.supabase.co\n",
        ),
    ],
)
def test_bad_input_names_the_problem_and_writes_nothing(project: Path, args: list[str], error: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert result.stderr == error
    assert list(project.iterdir()) == []


def test_every_setting_the_backend_reads_is_in_env_example(project: Path) -> None:
    assert init().exit_code == 0
    example = (project / ".env.example").read_text()
    listed = re.findall(r"(?m)^# ([A-Z][A-Z0-9_]*)=", example)
    expected = []
    for name, field in Settings.model_fields.items():
        choices = getattr(field.validation_alias, "choices", None)
        names = [str(choice) for choice in choices] if choices else [name.upper()]
        expected.append(names[0])
        for legacy in names[1:]:
            assert f"# Also read as {legacy} (the deployment guide's name).\n" in example
    assert sorted(listed) == sorted(expected)


def test_the_values_env_example_shows_are_ones_the_backend_accepts(project: Path) -> None:
    assert init().exit_code == 0
    uncommented = re.sub(r"(?m)^# ([A-Z][A-Z0-9_]*=)", r"\1", (project / ".env.example").read_text())
    (project / ".env").write_text(uncommented)
    settings = Settings(_env_file=project / ".env")  # type: ignore[call-arg]
    assert (settings.port, settings.credential_store, settings.environment) == (8080, "auto", "development")
    assert settings.problems() == []


def test_the_ci_templates_release_with_doki_and_hold_no_key(project: Path) -> None:
    assert init().exit_code == 0
    cloudbuild = (project / "cloudbuild.yaml").read_text()
    workflow = (project / ".github/workflows/doki-release.yml").read_text()
    for text in (cloudbuild, workflow):
        assert "\t" not in text
        assert "%" not in text  # every placeholder was filled
        assert "credentials_json" not in text and "GOOGLE_APPLICATION_CREDENTIALS" not in text
    top = [line for line in cloudbuild.splitlines() if line and not line.startswith((" ", "#"))]
    assert top == ["steps:", "timeout: 1800s", "options:"]
    assert "    name: python:3.11-slim\n" in cloudbuild
    assert '        doki --json release --remote --sha "$COMMIT_SHA"\n' in cloudbuild
    # Projects made since 2024 need their triggers to name the account the build runs as, and such a build must keep
    # its log in Cloud Logging only.
    assert (
        "#        gcloud builds triggers create github --name my-api-release --repo-owner OWNER --repo-name NAME \\\n"
        "#          --branch-pattern '^main$' --build-config cloudbuild.yaml --project my-proj-123 \\\n"
        "#          --service-account=projects/my-proj-123/serviceAccounts/"
        "doki-deployer@my-proj-123.iam.gserviceaccount.com\n"
    ) in cloudbuild
    assert (
        "#   2. The account this build runs as. Projects made since 2024 build as the Compute Engine default"
        in cloudbuild
    )
    assert cloudbuild.endswith("options:\n  logging: CLOUD_LOGGING_ONLY\n")
    # Both install doki at the versions poetry.lock holds, as the README's commands do: a release elsewhere must
    # not change what a release pipeline runs.
    install = "pip install --quiet --disable-pip-version-check -c constraints.txt '.[cli]'\n"
    assert f"        {install}" in cloudbuild and f"        run: {install}" in workflow
    top = [line for line in workflow.splitlines() if line and not line.startswith((" ", "#"))]
    assert top == ["name: doki release", "on:", "permissions:", "concurrency:", "jobs:"]
    assert "  id-token: write" in workflow
    assert "      - uses: google-github-actions/auth@v2\n" in workflow
    assert (
        "          workload_identity_provider: "
        "projects/PROJECT_NUMBER/locations/global/workloadIdentityPools/github/providers/github\n"
        "          service_account: doki-deployer@my-proj-123.iam.gserviceaccount.com\n"
    ) in workflow
    assert "        run: echo 'gha-creds-*.json' >> .git/info/exclude\n" in workflow
    assert '        run: doki --json release --remote --sha "$GITHUB_SHA"\n' in workflow


def test_the_workflow_previews_each_pull_request_posts_its_url_and_deletes_it_when_closed(project: Path) -> None:
    import yaml

    assert init().exit_code == 0
    workflow = yaml.safe_load((project / ".github/workflows/doki-release.yml").read_text())
    # PyYAML reads the key `on` as True (YAML 1.1); GitHub reads it as `on`.
    assert workflow[True]["pull_request"] == {"types": ["opened", "synchronize", "reopened", "closed"]}
    jobs = workflow["jobs"]
    assert jobs["release"]["if"] == "github.event_name != 'pull_request'"
    # A fork's pull request gets no OIDC token: neither job runs for one.
    same_repository = "github.event.pull_request.head.repo.full_name == github.repository"
    assert "github.event.action != 'closed'" in jobs["preview"]["if"] and same_repository in jobs["preview"]["if"]
    assert "github.event.action == 'closed'" in jobs["preview-cleanup"]["if"]
    assert same_repository in jobs["preview-cleanup"]["if"]
    # Only the job that comments may write to pull requests.
    assert jobs["preview"]["permissions"]["pull-requests"] == "write" and "permissions" not in jobs["release"]
    assert "pull-requests" not in workflow["permissions"]
    steps = {step.get("name"): step for step in jobs["preview"]["steps"]}
    # Its output goes outside the checkout: a file in it would make the image's tree dirty.
    preview = 'doki --json preview --pr "$PR" --remote --sha "$GITHUB_SHA" --yes > "$RUNNER_TEMP/preview.json"'
    assert preview in steps["Preview"]["run"]
    assert steps["Post the preview's URL"]["run"].startswith('gh pr comment "$PR" --edit-last --create-if-none')
    assert steps["Post the preview's URL"]["env"]["URL"] == "${{ steps.preview.outputs.url }}"
    # A closed pull request's merge ref may be gone: the cleanup reads the base's doki.toml.
    assert jobs["preview-cleanup"]["steps"][0]["with"]["ref"] == "${{ github.event.pull_request.base.sha }}"
    cleanup = {step.get("name"): step for step in jobs["preview-cleanup"]["steps"]}
    assert cleanup["Delete the preview"]["run"] == 'doki --json preview delete --pr "$PR" --yes'
    assert workflow["concurrency"]["cancel-in-progress"] is False


def test_the_ci_templates_run_no_command_that_waits_for_a_yes(project: Path) -> None:
    # CI has no terminal: a command that confirms its change (deploy, cors, scale, rollback) is refused there without
    # --yes, and --json does not imply it. The templates run `doki release`, which confirms nothing by design.
    assert init().exit_code == 0
    commands = [
        shlex.split(line.strip().removeprefix("run: "))
        for path in ("cloudbuild.yaml", ".github/workflows/doki-release.yml")
        for line in (project / path).read_text().splitlines()
        if re.match(r"\s*(run: )?doki ", line)
    ]
    assert [args[:4] for args in commands] == [
        ["doki", "--json", "release", "--remote"],
        ["doki", "--json", "release", "--remote"],
        ["doki", "--json", "preview", "--pr"],
        ["doki", "--json", "preview", "delete"],
    ]
    confirming = {"deploy", "scale", "rollback", "cors", "preview"}
    assert [args for args in commands if confirming & set(args) and "--yes" not in args] == []


def test_enable_apis_enables_the_disabled_ones_and_reports_them(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    off = ("cloudbuild.googleapis.com", "artifactregistry.googleapis.com")
    with Emulator(EmulatorConfig(state_dir=tmp_path / "state", disabled_apis=off)) as emulator:
        monkeypatch.setenv("DOKI_EMULATOR", emulator.grpc_address)
        result = init("--enable-apis", *FRONTEND)
        assert result.exit_code == 0, result.output
        assert result.stdout == (
            "".join(f"created    {path}\n" for path in FILES)
            + "enabled    cloudbuild.googleapis.com, artifactregistry.googleapis.com "
            "(run.googleapis.com, secretmanager.googleapis.com, iam.googleapis.com already were)\n" + NEXT
        )
        usage = Google(ClientFactory(emulator.grpc_address), "my-proj-123").service_usage
        assert usage.disabled() == []
        (project / "doki.toml").unlink()
        again = runner.invoke(app, ["--json", "init", "--project", "my-proj-123", "--force", "--enable-apis"])
    assert json.loads(again.stdout)["apis"] == {
        "enabled": [],
        "already_enabled": [
            "run.googleapis.com",
            "secretmanager.googleapis.com",
            "cloudbuild.googleapis.com",
            "artifactregistry.googleapis.com",
            "iam.googleapis.com",
        ],
    }


def test_create_account_creates_the_runtime_account_doki_toml_names_and_drops_that_next_step(
    project: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOKI_EMULATOR", emulator.grpc_address)
    result = init("--create-account", *FRONTEND)
    assert result.exit_code == 0, result.output
    account = "my-api-runtime@my-proj-123.iam.gserviceaccount.com"
    assert result.stdout == (
        "".join(f"created    {path}\n" for path in FILES)
        + f"created    {account}\n"
        + "Next:\n"
        + "".join(line + "\n" for line in NEXT.splitlines()[2:])
    )
    made = (
        ClientFactory(emulator.grpc_address)
        .iam_admin()
        .get_service_account(request={"name": f"projects/my-proj-123/serviceAccounts/{account}"})
    )
    assert (made.display_name, made.description) == ("doki runtime", "Runs the Cloud Run service my-api")
    again = runner.invoke(app, ["--json", "init", "--project", "my-proj-123", "--force", "--create-account"])
    assert json.loads(again.stdout)["account"] == {"email": account, "outcome": "exists"}


def test_enable_apis_enables_nothing_when_the_files_stop_init(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "doki.toml").write_text("# mine\n")
    with Emulator(EmulatorConfig(disabled_apis=("cloudbuild.googleapis.com",))) as emulator:
        monkeypatch.setenv("DOKI_EMULATOR", emulator.grpc_address)
        assert init("--enable-apis").exit_code == 1
        usage = Google(ClientFactory(emulator.grpc_address), "my-proj-123").service_usage
        assert usage.disabled() == ["cloudbuild.googleapis.com"]


def test_what_init_writes_deploys_as_is(
    tmp_path: Path, engine_emulator: Emulator, backend_image: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = checkout_without_doki_files(tmp_path / "doki-backend")
    monkeypatch.chdir(root)
    monkeypatch.setenv("DOKI_EMULATOR", engine_emulator.grpc_address)
    scaffolded = runner.invoke(app, ["init", "--project", "doki-e2e", "--enable-apis", "--create-account", *FRONTEND])
    assert scaffolded.exit_code == 0, scaffolded.output

    fill_env(root)
    pushed = runner.invoke(app, ["secrets", "push"])
    assert pushed.exit_code == 0, pushed.output
    assert pushed.stdout.count("created") == 5

    publish(engine_emulator, backend_image)
    deployed = runner.invoke(app, ["--json", "deploy", "--yes", "--image", backend_image])
    assert deployed.exit_code == 0, deployed.output
    url = json.loads(deployed.stdout)["url"]
    assert httpx.get(url + "/", timeout=10).json() == {"message": "Doki Backend up"}
    service = (
        ClientFactory(engine_emulator.grpc_address)
        .run_services()
        .get_service(name="projects/doki-e2e/locations/us-central1/services/doki-backend")
    )
    assert service.terminal_condition.state.name == "CONDITION_SUCCEEDED"
    assert service.template.service_account == "doki-backend-runtime@doki-e2e.iam.gserviceaccount.com"
