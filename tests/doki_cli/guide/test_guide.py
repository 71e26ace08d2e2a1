"""The deployment guide, executed: its own commands, through gcloud 528 and the Docker CLI, against the emulator,
with the real backend image in real containers, to a service that answers the health contract.

What the guide says and what happens differ in places; each is asserted here, so it stays known:
- `gcloud builds submit` is not run: the emulator serves Cloud Build to the client libraries (gRPC) only. The guide's
  other path, `docker build` then `docker push`, is.
- Pushes to gcr.io stopped on 2025-03-18; IMAGE_TAG names an Artifact Registry repository instead, which (unlike
  gcr.io) must exist first: the test makes it, as `gcloud artifacts repositories create` would.
- `docker build` gets the stand-in base image and host networking (no registry is reachable here); `docker push`
  pushes to the emulator's registry on loopback, under the image's real name, after a `docker login` that stands
  for the credentials `gcloud auth configure-docker` gives Docker (which the guide takes as done).
- The first `gcloud run deploy` fails: the Compute Engine default account the revision runs as may not read the
  secrets. The guide's troubleshooting grant ("Secret Manager Access Denied"), made for each secret, fixes it.
- The CORS update's `--set-env-vars` replaces every plain variable: ENVIRONMENT and SUPABASE_URL are gone
  afterwards, so the backend runs in development mode from then on.
- Three commands omit `--region`; with prompts off (as in CI) gcloud refuses them. They are run again with it.
- `gcloud run services logs tail` is not a command of gcloud 528 (alpha and beta only).
- The autoscaling command's comment after a `\\` ends the command there: gcloud gets a stray " " argument, and the
  second line is a command of its own. It is run again as meant.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from google.cloud import artifactregistry_v1 as ar

from doki_cli.emulator.projects import compute_default_account, project_number
from doki_cli.emulator.server import Emulator
from doki_cli.gcp.clients import ClientFactory
from doki_cli.main import app
from tests.doki_cli.guide.script import Shell, in_section
from tests.helpers import BASE_IMAGE, CliRunner, copy_checkout, run
from tests.helpers.gcloud import Gcloud

pytestmark = [pytest.mark.docker, pytest.mark.gcloud]

runner = CliRunner()
# One project per test session: its image names are then this session's alone on a shared Docker engine.
PROJECT = f"doki-guide-{os.getpid()}"
REGION = "us-central1"
# The placeholders the guide asks its reader to replace, and this test's values (production refuses placeholders).
VALUES = {
    "your-gcp-project-id": PROJECT,
    '"your-supabase-secret-key"': '"service-role-key-for-tests"',
    '"your-google-client-id"': '"client-id.apps.googleusercontent.com"',
    '"your-google-client-secret"': '"google-client-secret-for-tests"',
    '"your-session-secret"': '"' + "s" * 48 + '"',
    '"your-fernet-key"': '"' + Fernet.generate_key().decode() + '"',
    '"your-jwt-secret"': '"' + "j" * 48 + '"',
    "https://your-project.supabase.co": "https://abcdefghijklmnop.supabase.co",
    "https://your-frontend-domain.com": "https://app.doki.com",
    "https://your-frontend.com": "https://www.doki.com",
}
# Commands this machine cannot run as written, and what runs instead (see the module docstring for why).
DEVIATIONS = {
    "export IMAGE_TAG=gcr.io/$PROJECT_ID/$SERVICE_NAME:latest": (
        "export IMAGE_TAG=$REGION-docker.pkg.dev/$PROJECT_ID/doki/$SERVICE_NAME:latest"
    ),
    "docker build -t $IMAGE_TAG .": f"docker build --network host --build-arg BASE_IMAGE={BASE_IMAGE} -t $IMAGE_TAG .",
    "docker push $IMAGE_TAG": (
        "echo emulator-token | docker login -u oauth2accesstoken --password-stdin $DOKI_EMULATOR_REGISTRY"
        " && docker tag $IMAGE_TAG $DOKI_EMULATOR_REGISTRY/$IMAGE_TAG && docker push $DOKI_EMULATOR_REGISTRY/$IMAGE_TAG"
    ),
}
SECRETS = [
    "supabase-secret-key",
    "google-oauth-client-id",
    "google-oauth-client-secret",
    "session-secret-key",
    "encryption-key",
    "supabase-jwt-secret",
]


def as_run_here(command: str) -> str:
    for placeholder, value in VALUES.items():
        command = command.replace(placeholder, value)
    return DEVIATIONS.get(command, command)


@pytest.fixture
def shell(gcloud_binary: str, engine_emulator: Emulator, docker_client: Any, tmp_path: Path) -> Any:
    project = copy_checkout(tmp_path / "doki-backend")
    gcloud = Gcloud.for_emulator(gcloud_binary, engine_emulator, tmp_path / "gcloud-config", PROJECT)
    # The project comes from gcloud's configuration, as in a reader's shell after `gcloud init`.
    env = {k: v for k, v in gcloud.env.items() if k != "CLOUDSDK_CORE_PROJECT"}
    yield Shell(project, {**env, "DOCKER_CONFIG": str(tmp_path / "docker-config")})
    engine_emulator.stop()  # its containers first: an image a container uses cannot go
    # By name, never by id: the same build under another name (the suite's backend image) is not this test's.
    ours = (
        f"{REGION}-docker.pkg.dev/{PROJECT}/",
        f"{engine_emulator.registry_address}/{REGION}-docker.pkg.dev/{PROJECT}/",
    )
    for image in docker_client.images.list():
        for tag in image.tags:
            if tag.startswith(ours):
                docker_client.images.remove(tag)


def run_section(shell: Shell, section: str) -> list[Any]:
    return [shell.ok(as_run_here(command.text)) for command in in_section(section)]


def push_image_and_secrets(shell: Shell, clients: ClientFactory, *, enable_apis: bool = False) -> None:
    """The guide up to its deploy: (its APIs enabled,) its variables, the image built and pushed (the docker path),
    the secrets made."""
    # The guide sets the project through PROJECT_ID only in its own variables; gcloud reads its configuration.
    shell.ok(f"gcloud config set project {PROJECT}")
    if enable_apis:
        run_section(shell, "### Required Services Enabled")
    run_section(shell, "### 1. Set Up Environment Variables")
    clients.artifact_registry().create_repository(
        parent=f"projects/{PROJECT}/locations/{REGION}",
        repository_id="doki",
        repository=ar.Repository(format_=ar.Repository.Format.DOCKER),
    ).result(timeout=30)
    for command in in_section("### 2. Build and Push to Google Container Registry")[1:]:
        shell.ok(as_run_here(command.text))
    run_section(shell, "### 3. Create Secrets in Secret Manager")


def test_the_guides_commands_deploy_the_backend_and_its_updates_with_the_differences_known(
    shell: Shell, engine_emulator: Emulator, engine_clients: ClientFactory
) -> None:
    push_image_and_secrets(shell, engine_clients, enable_apis=True)

    (deploy,) = in_section("### 4. Deploy to Cloud Run")
    refused = shell(as_run_here(deploy.text))
    account = compute_default_account(PROJECT)
    assert refused.returncode == 1
    assert (
        f"Permission denied on secret: projects/{PROJECT}/secrets/supabase-secret-key/versions/latest for Revision "
        f"service account {account}."
    ) in refused.stderr

    (grant,) = in_section("### Secret Manager Access Denied")
    for secret in SECRETS:
        shell.ok(grant.text.replace("SECRET_NAME", secret).replace("PROJECT_NUMBER", str(project_number(PROJECT))))
    deployed = shell.ok(as_run_here(deploy.text))
    assert "Service URL: http" in deployed.stderr

    url_line, curl, _open = in_section("### 5. Verify Deployment")
    shell.ok(url_line.text)
    assert json.loads(shell.ok(curl.text).stdout) == {"message": "Doki Backend up"}
    services = engine_clients.run_services()
    name = f"projects/{PROJECT}/locations/{REGION}/services/doki-backend"
    service = services.get_service(name=name)
    env = {
        e.name: e.value or f"{e.value_source.secret_key_ref.secret}:latest" for e in service.template.containers[0].env
    }
    assert env == {
        "ENVIRONMENT": "production",
        "SUPABASE_URL": "https://abcdefghijklmnop.supabase.co",
        "ALLOWED_ORIGINS": "https://app.doki.com",
        "SUPABASE_SECRET_KEY": "supabase-secret-key:latest",
        "GOOGLE_CLIENT_ID_NAME": "google-oauth-client-id:latest",
        "GOOGLE_CLIENT_SECRET_NAME": "google-oauth-client-secret:latest",
        "SESSION_SECRET_KEY_NAME": "session-secret-key:latest",
        "ENCRYPTION_KEY": "encryption-key:latest",
        "SUPABASE_JWT_SECRET": "supabase-jwt-secret:latest",
    }
    first = service.latest_ready_revision

    (cors,) = [c for c in in_section("## CORS Configuration") if c.text.startswith("gcloud")]
    shell.ok(as_run_here(cors.text))
    service = services.get_service(name=name)
    assert service.latest_ready_revision != first
    plain = {e.name for e in service.template.containers[0].env if e.value}
    assert plain == {"ALLOWED_ORIGINS"}  # --set-env-vars dropped ENVIRONMENT and SUPABASE_URL
    preflight = httpx.options(
        service.uri + "/auth/me",
        headers={"Origin": "https://app.doki.com", "Access-Control-Request-Method": "GET"},
        timeout=30,
    )
    assert preflight.headers.get("access-control-allow-origin") == "https://app.doki.com"

    for section in ("### CORS Errors", "### 4. Set Resource Limits"):
        (command,) = in_section(section)
        missing_region = shell(as_run_here(command.text))
        assert missing_region.returncode == 1
        assert missing_region.stderr.endswith(
            "You must specify a region. Either use the `--region` flag or set the run/region property.\n"
        )
        shell.ok(as_run_here(command.text) + " --region $REGION")
    service = services.get_service(name=name)
    assert dict(service.template.containers[0].resources.limits) == {"cpu": "2", "memory": "1Gi"}
    plain = {e.name: e.value for e in service.template.containers[0].env if e.value}
    assert plain == {"ALLOWED_ORIGINS": "https://www.doki.com"}

    tail, describe = in_section("### 3. Monitor Logs")
    absent = shell(tail.text)
    assert absent.returncode == 2
    assert absent.stderr.startswith("ERROR: (gcloud.run.services.logs) Invalid choice: 'tail'.")
    assert "Revision doki-backend-" in shell.ok(describe.text).stdout

    broken, stray = in_section("### 5. Enable Cloud Run Autoscaling")
    cut_short = shell(broken.text)
    assert cut_short.returncode == 2
    assert "unrecognized arguments:" in cut_short.stderr  # the escaped space
    assert shell(stray.text).stderr.endswith("--max-instances: command not found\n")
    shell.ok("gcloud run services update $SERVICE_NAME --region $REGION --min-instances 1 --max-instances 100")
    service = services.get_service(name=name)
    assert (service.template.scaling.min_instance_count, service.template.scaling.max_instance_count) == (1, 100)
    assert json.loads(shell.ok(curl.text).stdout) == {"message": "Doki Backend up"}


def deploy_as_the_guide_does(shell: Shell, clients: ClientFactory) -> None:
    """The guide's way to a running service, its secrets readable first (its troubleshooting grant)."""
    push_image_and_secrets(shell, clients)
    (grant,) = in_section("### Secret Manager Access Denied")
    for secret in SECRETS:
        shell.ok(grant.text.replace("SECRET_NAME", secret).replace("PROJECT_NUMBER", str(project_number(PROJECT))))
    run_section(shell, "### 4. Deploy to Cloud Run")


def git(root: Path, *args: str) -> None:
    run(["git", "-c", "user.name=doki", "-c", "user.email=doki@example.com", *args], cwd=root, check=True)


def doki_json(*args: str) -> Any:
    result = runner.invoke(app, ["--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_doki_adopts_the_guides_service_changing_only_what_doki_adds_and_gcloud_still_reads_it(
    shell: Shell,
    engine_emulator: Emulator,
    engine_clients: ClientFactory,
    gcloud_binary: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    deploy_as_the_guide_does(shell, engine_clients)
    (cors,) = [c for c in in_section("## CORS Configuration") if c.text.startswith("gcloud")]
    shell.ok(as_run_here(cors.text))  # gcloud now pins the image by digest, as on Google
    services = engine_clients.run_services()
    name = f"projects/{PROJECT}/locations/{REGION}/services/doki-backend"
    guide_made = services.get_service(name=name)
    assert "@sha256:" in guide_made.template.containers[0].image
    for variable in ("DOKI_EMULATOR", "STORAGE_EMULATOR_HOST", "DOKI_EMULATOR_REGISTRY"):
        monkeypatch.setenv(variable, shell.env[variable])
    monkeypatch.chdir(shell.cwd)

    adopted = runner.invoke(app, ["init", "--from-service", "doki-backend", "--project", PROJECT, "--force"])
    assert adopted.exit_code == 0, adopted.output
    assert adopted.stdout.startswith(
        f"read       doki-backend ({PROJECT}, {REGION}): {guide_made.template.containers[0].image}\n"
    )
    toml = (shell.cwd / "doki.toml").read_text()
    assert 'repository = "doki"\n' in toml
    assert 'ALLOWED_ORIGINS = "https://app.doki.com"\n' in toml
    assert 'GOOGLE_CLIENT_ID_NAME = "google-oauth-client-id"\n' in toml
    git(shell.cwd, "init", "-q")
    git(shell.cwd, "add", "-A")
    git(shell.cwd, "commit", "-qm", "adopted with doki init --from-service")

    # The guide's image, by its tag: the digest gcloud pinned is that tag, so no image change.
    image = f"{REGION}-docker.pkg.dev/{PROJECT}/doki/doki-backend:latest"
    planned = runner.invoke(app, ["--json", "deploy", "--dry-run", "--image", image])
    assert planned.exit_code == 2, planned.output
    plan = json.loads(planned.stdout)["plan"]
    assert [(c["what"], c["before"], c["after"]) for c in plan["changes"]] == [
        ("env GOOGLE_REDIRECT_URI", None, guide_made.uri + "/auth/google/callback"),
        *[
            (f"secret {env}", f"{secret}:latest", f"{secret}:1")
            for env, secret in (
                ("SUPABASE_SECRET_KEY", "supabase-secret-key"),
                ("GOOGLE_CLIENT_ID_NAME", "google-oauth-client-id"),
                ("GOOGLE_CLIENT_SECRET_NAME", "google-oauth-client-secret"),
                ("SESSION_SECRET_KEY_NAME", "session-secret-key"),
                ("ENCRYPTION_KEY", "encryption-key"),
                ("SUPABASE_JWT_SECRET", "supabase-jwt-secret"),
            )
        ],
    ]

    deployed = doki_json("deploy", "--image", image, "--yes")
    assert deployed["changed"] is True
    service = services.get_service(name=name)
    container = service.template.containers[0]
    assert container.image == guide_made.template.containers[0].image  # the pin stays
    assert container.resources.startup_cpu_boost is True  # gcloud's, kept
    assert service.client == guide_made.client == "gcloud"
    assert {e.name: e.value for e in container.env if e.value} == {
        "ALLOWED_ORIGINS": "https://app.doki.com",
        "GOOGLE_REDIRECT_URI": guide_made.uri + "/auth/google/callback",
    }
    assert (
        json.loads(runner.invoke(app, ["--json", "deploy", "--dry-run", "--image", image]).stdout)["plan"]["changes"]
        == []
    )

    status = doki_json("status")
    assert status["url"] == guide_made.uri
    assert httpx.get(status["url"] + "/", timeout=30).json() == {"message": "Doki Backend up"}
    assert doki_json("cors", "add", "https://www.doki.com", "--yes")["origins"] == [
        "https://app.doki.com",
        "https://www.doki.com",
    ]
    logged = [line["message"] for line in doki_json("logs", "--limit", "200")]
    assert any("Doki backend ready" in message for message in logged)
    rolled = doki_json("rollback", "--yes")
    assert rolled["revision"] != services.get_service(name=name).latest_created_revision.rsplit("/", 1)[-1]

    released = doki_json("release", "--local", "--base-image", BASE_IMAGE, "--yes")
    assert released["result"] == "released"
    service = services.get_service(name=name)
    # The commit's build is the guide's image again (same context, same layers): the digest gcloud pinned stays.
    assert released["digest"] == guide_made.template.containers[0].image.rpartition("@")[2]
    assert service.template.containers[0].image == guide_made.template.containers[0].image
    assert [(t.revision, t.percent) for t in service.traffic_statuses if t.percent] == [
        (service.latest_ready_revision.rsplit("/", 1)[-1], 100)
    ]
    assert httpx.get(service.uri + "/", timeout=30).json() == {"message": "Doki Backend up"}

    gcloud = Gcloud.for_emulator(gcloud_binary, engine_emulator, shell.cwd.parent / "gcloud-config", PROJECT)
    described = gcloud.json("run", "services", "describe", "doki-backend", "--region", REGION)
    assert {c["type"]: c["status"] for c in described["status"]["conditions"]}["Ready"] == "True"
    assert described["status"]["url"] == guide_made.uri

    # The reverse: the service doki now runs, changed with gcloud as the guide changes it, is planned correctly:
    # gcloud's new variable is kept (doki.toml does not declare it), its memory is a change back, the digest gcloud
    # pins again is no change.
    gcloud("run", "services", "update", "doki-backend", "--region", REGION, "--update-env-vars", "FEATURE=1")
    gcloud("run", "services", "update", "doki-backend", "--region", REGION, "--memory", "1Gi")
    assert "@sha256:" in services.get_service(name=name).template.containers[0].image
    planned = runner.invoke(app, ["--json", "deploy", "--dry-run", "--image", released["image"]])
    assert planned.exit_code == 2, planned.output
    plan = json.loads(planned.stdout)["plan"]
    assert [(c["what"], c["before"], c["after"]) for c in plan["changes"]] == [("memory", "1Gi", "512Mi")]
    assert plan["unmanaged"] == ["FEATURE"]
