"""`doki deploy` against the emulator: plan, apply with real containers, health contract, idempotence."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.api_core import exceptions
from google.cloud import run_v2

from doki_cli.emulator.projects import compute_default_account
from doki_cli.emulator.server import Emulator
from doki_cli.gcp.clients import ClientFactory
from doki_cli.main import app
from tests.helpers import BACKEND_IMAGE, REPO, CliRunner
from tests.helpers.accounts import make_accounts
from tests.helpers.images import publish
from tests.helpers.project import ENV, PATH, PROJECT, SA, TOML, setup_project

runner = CliRunner()


def deployed(tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The project's service deployed once with `doki deploy`; the official Cloud Run client, to change it by hand."""
    setup_project(tmp_path, emulator, monkeypatch)
    assert runner.invoke(app, ["secrets", "push"]).exit_code == 0
    first = deploy("--yes")
    assert first.exit_code == 0, first.output
    return ClientFactory(emulator.grpc_address).run_services()


def deploy(*args: str) -> object:
    return runner.invoke(app, ["deploy", "--image", BACKEND_IMAGE, *args])


def test_outside_a_git_checkout_it_says_to_name_the_image_with_its_own_option(tmp_path: Path) -> None:
    # Its default image is this commit's `doki build`: without a commit, --image (deploy has no --tag: gcloud's
    # `run deploy --tag` names a traffic tag).
    (tmp_path / "doki.toml").write_text(TOML)
    result = runner.invoke(app, ["deploy", "--dry-run"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"Error [no_git_version]: {tmp_path} is not a git checkout with a commit, so no commit names the image\n"
        "  Hint: commit your work (git init && git commit), or name the image to deploy with --image IMAGE "
        "(`doki build --tag VERSION` tags one without git)\n"
    )


def test_a_first_dry_run_shows_the_whole_service_and_exits_2(
    tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup_project(tmp_path, emulator, monkeypatch)
    assert runner.invoke(app, ["secrets", "push"]).exit_code == 0
    result = deploy("--dry-run")
    assert result.exit_code == 2, result.output
    assert result.stdout == (
        f"Plan for doki-backend ({PATH}) on the emulator at {emulator.grpc_address}:\n"
        "  + create the service\n"
        f"  + image: {BACKEND_IMAGE}\n"
        "  + port: 8080\n"
        "  + memory: 512Mi\n"
        "  + cpu: 1\n"
        "  + concurrency: 80\n"
        "  + timeout: 300\n"
        "  + min instances: 0\n"
        "  + max instances: 10\n"
        "  + ingress: all\n"
        f"  + service account: {SA}\n"
        "  + env ENVIRONMENT: production\n"
        "  + env SUPABASE_URL: https://abcdefghijklmnop.supabase.co\n"
        "  + env GOOGLE_CLIENT_ID: client-id.apps.googleusercontent.com\n"
        "  + env ALLOWED_ORIGINS: https://one.example\n"
        "  + secret SESSION_SECRET_KEY: session-secret-key:1\n"
        "  + secret ENCRYPTION_KEY: encryption-key:1\n"
        "  + secret SUPABASE_SECRET_KEY: supabase-secret-key:1\n"
        "  + secret GOOGLE_CLIENT_SECRET: google-oauth-client-secret:1\n"
        "  + invoker: allUsers (public)\n"
        f"  + grant serviceAccount:{SA} access to secret encryption-key\n"
        f"  + grant serviceAccount:{SA} access to secret google-oauth-client-secret\n"
        f"  + grant serviceAccount:{SA} access to secret session-secret-key\n"
        f"  + grant serviceAccount:{SA} access to secret supabase-secret-key\n"
        "  + env GOOGLE_REDIRECT_URI: <service URL>/auth/google/callback (once Cloud Run assigns the URL)\n"
        # A new service's cost at the emulated catalog's list prices: no floor, $25.65 for a million 1-second requests.
        "  $ always-on floor: $0.00 a month (0 min instances of 1 vCPU and 0.5 GiB, request-based billing)\n"
        "  $ a million 1-second requests: $25.65\n"
        "  $ Cloud Billing Catalog list prices for us-central1, USD, before the free tier\n"
        "23 changes.\n"
    )
    assert list(ClientFactory(emulator.grpc_address).run_services().list_services(parent=PATH.rsplit("/", 2)[0])) == []


def test_a_secret_that_does_not_exist_stops_the_plan_with_the_fix(
    tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup_project(tmp_path, emulator, monkeypatch)
    result = deploy("--dry-run")
    assert result.exit_code == 78
    assert result.stderr == (
        "Error [secret_missing]: SESSION_SECRET_KEY uses the secret session-secret-key, which does not exist in "
        "project doki-e2e\n  Hint: create it with `doki secrets push` (values from .env), then deploy again\n"
    )


def test_a_secret_whose_version_is_disabled_stops_the_deploy_before_any_write(
    tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup_project(tmp_path, emulator, monkeypatch)
    assert runner.invoke(app, ["secrets", "push"]).exit_code == 0
    secrets = ClientFactory(emulator.grpc_address).secret_manager()
    secrets.disable_secret_version(name="projects/doki-e2e/secrets/session-secret-key/versions/1")

    result = deploy("--yes")

    assert result.exit_code == 78
    assert result.stderr == (
        "Error [secret_version_unusable]: SESSION_SECRET_KEY uses the secret session-secret-key, whose latest "
        "version 1 is disabled: the new revision could not read it, so nothing was changed\n"
        "  Hint: enable it (gcloud secrets versions enable 1 --secret session-secret-key), or push a new value with "
        "`doki secrets push`\n"
    )
    assert list(ClientFactory(emulator.grpc_address).run_services().list_services(parent=PATH.rsplit("/", 2)[0])) == []


def test_a_revision_that_cannot_become_ready_fails_the_deploy_with_its_reason(
    tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup_project(tmp_path, emulator, monkeypatch)
    runner.invoke(app, ["secrets", "push"])
    result = deploy("--yes")
    assert result.exit_code == 1
    error = result.stderr[result.stderr.index("Error [") :]
    assert error.startswith("Error [revision_not_ready]: the new revision of doki-backend did not become ready")
    assert "no Docker engine" in error
    assert result.stderr.endswith(
        "  Hint: nothing serves yet: the service has no Ready revision; `doki logs` shows the container's output\n"
    )


def test_a_first_deploy_of_an_image_never_pushed_stops_before_any_write_and_says_to_build_and_push_it(
    tmp_path: Path, engine_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup_project(tmp_path, engine_emulator, monkeypatch)
    runner.invoke(app, ["secrets", "push"])
    never = "us-central1-docker.pkg.dev/doki-e2e/doki/never-built:1"
    services = ClientFactory(engine_emulator.grpc_address).run_services()

    refused = deploy("--image", never, "--dry-run")

    assert refused.exit_code == 78
    assert refused.stderr == (
        f"Error [image_not_pushed]: the image {never} is not in Artifact Registry, so Cloud Run could not pull it; "
        "nothing was changed\n  Hint: build and push it with `doki build --push`, or pass --image with one that is "
        "there; --skip-checks deploys anyway\n"
    )
    assert list(services.list_services(parent=PATH.rsplit("/", 2)[0])) == []
    # Told to go on, Cloud Run fails the revision for the same reason.
    result = deploy("--image", never, "--yes", "--skip-checks")
    assert result.exit_code == 1
    assert f"Image '{never}' not found." in result.stderr
    assert result.stderr.endswith(
        "  Hint: build and push the image first (`doki build --push`), or deploy one that is there "
        "(`doki deploy --image IMAGE`); nothing serves yet: the service has no Ready revision\n"
    )


def test_deploy_applies_serves_and_then_plans_nothing(
    tmp_path: Path, engine_emulator: Emulator, backend_image: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup_project(tmp_path, engine_emulator, monkeypatch)
    assert runner.invoke(app, ["secrets", "push"]).exit_code == 0
    result = runner.invoke(app, ["--json", "deploy", "--image", backend_image, "--yes"])
    assert result.exit_code == 0, result.output
    outcome = json.loads(result.stdout)
    url = outcome["url"]
    assert outcome["changed"] is True
    assert httpx.get(url + "/", timeout=10).json() == {"message": "Doki Backend up"}

    services = ClientFactory(engine_emulator.grpc_address).run_services()
    live = services.get_service(name=PATH)
    env = {e.name: e for e in live.template.containers[0].env}
    assert env["GOOGLE_REDIRECT_URI"].value == url + "/auth/google/callback"
    assert env["ENCRYPTION_KEY"].value_source.secret_key_ref.version == "1"  # pinned, not "latest"

    calls_before = dict(engine_emulator.faults.calls)
    again = deploy("--dry-run")
    assert again.exit_code == 0, again.output
    assert again.stdout.endswith("No changes.\n")
    assert deploy("--yes").stdout.endswith(f"doki-backend is up to date: {url}\n")
    mutating = [m for m in engine_emulator.faults.calls if engine_emulator.faults.calls[m] != calls_before.get(m, 0)]
    assert not [m for m in mutating if any(v in m for v in ("Update", "Create", "Set", "Add", "Delete"))]


def test_a_changed_value_and_an_unmanaged_variable_show_in_the_plan(
    tmp_path: Path, engine_emulator: Emulator, backend_image: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = deployed(tmp_path, engine_emulator, monkeypatch)
    live = services.get_service(name=PATH)
    live.template.containers[0].env.append(run_v2.EnvVar(name="ADDED_BY_HAND", value="1"))
    services.update_service(service=live).result(timeout=120)
    (tmp_path / "doki.toml").write_text(TOML.replace("https://one.example", "https://two.example"))

    plan = deploy("--dry-run")
    assert plan.exit_code == 2
    assert "  ~ env ALLOWED_ORIGINS: https://one.example -> https://two.example\n" in plan.stdout
    assert "  = not managed by doki.toml, kept: ADDED_BY_HAND (`doki deploy --prune` removes them)\n" in plan.stdout
    assert plan.stdout.endswith("1 change.\n")
    pruned = deploy("--dry-run", "--prune")
    assert "  - env ADDED_BY_HAND (was 1)\n" in pruned.stdout

    assert deploy("--yes").exit_code == 0
    env = {e.name: e.value for e in services.get_service(name=PATH).template.containers[0].env}
    assert env["ADDED_BY_HAND"] == "1"
    assert env["ALLOWED_ORIGINS"] == "https://two.example"
    assert deploy("--dry-run").exit_code == 0


def test_cpu_and_memory_cloud_run_would_refuse_with_settings_made_outside_doki_toml_stop_before_any_write(
    tmp_path: Path, engine_emulator: Emulator, backend_image: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = deployed(tmp_path, engine_emulator, monkeypatch)
    live = services.get_service(name=PATH)
    live.template.containers[0].resources.cpu_idle = False  # CPU always allocated, and gen2, set by hand
    live.template.execution_environment = run_v2.ExecutionEnvironment.EXECUTION_ENVIRONMENT_GEN2
    services.update_service(service=live).result(timeout=120)
    before = services.get_service(name=PATH)
    small = TOML.replace('service_account = "', 'cpu = "0.5"\nconcurrency = 1\nmemory = "256Mi"\nservice_account = "')
    (tmp_path / "doki.toml").write_text(small)

    result = deploy("--yes")

    assert result.exit_code == 78
    assert result.stderr == (
        "Error [refused_by_cloud_run]: Cloud Run would refuse the new revision of doki-backend: cpu 0.5 is below 1, "
        "which Cloud Run refuses while the service has CPU always allocated: use cpu 1 or more, or allocate CPU only "
        "during requests (gcloud run services update doki-backend --cpu-throttling); cpu 0.5 is below 1, which Cloud "
        "Run refuses in the second generation execution environment the service runs in: use cpu 1 or more, or the "
        "first generation (gcloud run services update doki-backend --execution-environment gen1); memory 256Mi is "
        "below 512Mi, the least the second generation execution environment the service runs in allows: use 512Mi or "
        "more, or the first generation (gcloud run services update doki-backend --execution-environment gen1); "
        "nothing was changed\n"
        "  Hint: change cpu or memory in doki.toml, or the setting named\n"
    )
    scaled = runner.invoke(app, ["scale", "--memory", "256Mi"])
    assert scaled.exit_code == 1
    assert scaled.stderr.startswith("Error [bad_scale]: memory 256Mi is below 512Mi, the least the second generation")
    assert services.get_service(name=PATH) == before


def test_deploying_again_exactly_what_failed_says_so_and_needs_yes(
    tmp_path: Path, engine_emulator: Emulator, backend_image: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = deployed(tmp_path, engine_emulator, monkeypatch)
    (tmp_path / "doki.toml").write_text(TOML.replace("https://one.example", "https://two.example"))
    engine_emulator.faults.fail_revisions("doki-backend", message="Container called exit(3).")
    assert deploy("--yes").exit_code == 1
    failed = services.get_service(name=PATH).latest_created_revision.rsplit("/", 1)[1]

    again = deploy()

    assert again.exit_code == 1
    assert (
        f"  ! {BACKEND_IMAGE} is the image {failed} failed with (Revision '{failed}' is not ready and cannot serve "
        "traffic. Container called exit(3).)\n"
    ) in again.stdout
    assert again.stderr == (
        "Error [repeats_failed_revision]: doki-backend would serve the image that failed again, with the same "
        "settings; nothing was changed\n"
        "  Hint: deploy a fixed image with --image, change what made it fail, or pass --yes to try it again\n"
    )
    assert services.get_service(name=PATH).latest_created_revision.rsplit("/", 1)[1] == failed
    retried = deploy("--yes")  # the injected failure is spent: this time it starts
    assert retried.exit_code == 0, retried.output


def test_a_container_that_exits_fails_the_deploy_with_its_last_log_lines(
    tmp_path: Path, engine_emulator: Emulator, backend_image: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup_project(tmp_path, engine_emulator, monkeypatch)
    (tmp_path / ".env").write_text(ENV.replace("ENCRYPTION_KEY=", "ENCRYPTION_KEY=not-a-fernet-key-"))
    runner.invoke(app, ["secrets", "push"])
    result = deploy("--yes")
    assert result.exit_code == 1
    assert "Last log lines of doki-backend-00001-" in result.stderr
    assert "ENCRYPTION_KEY key #1 is not a valid Fernet key" in result.stderr
    assert "Error [revision_not_ready]: the new revision of doki-backend did not become ready" in result.stderr


@pytest.mark.parametrize("image", ["not an image", "Upper/Case:v1", "repo:bad tag", "repo@sha256:short"])
def test_an_image_that_is_not_a_reference_is_refused_before_any_call(
    image: str, tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup_project(tmp_path, emulator, monkeypatch)
    emulator.faults.calls.clear()
    result = deploy("--image", image, "--yes")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error [bad_image]: {image!r} is not an image reference\n"
        "  Hint: name it REGISTRY/PATH:TAG or REGISTRY/PATH@sha256:DIGEST, e.g. "
        "us-central1-docker.pkg.dev/PROJECT/REPOSITORY/NAME:v1\n"
    )
    assert not emulator.faults.calls  # not even a read


def test_a_deploy_that_only_returns_traffic_to_latest_makes_no_revision_of_a_named_template(
    tmp_path: Path, engine_emulator: Emulator, backend_image: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # gcloud --tag, the console and doki release name their revisions, and the name stays in the template: written
    # back without it, an unchanged template would be a change, and Cloud Run would make a revision of it.
    services = deployed(tmp_path, engine_emulator, monkeypatch)
    factory = ClientFactory(engine_emulator.grpc_address)
    live = services.get_service(name=PATH)
    earlier = live.latest_ready_revision.rsplit("/", 1)[-1]
    live.template.revision = "doki-backend-named"
    services.update_service(service=live).result(timeout=120)
    assert runner.invoke(app, ["rollback", earlier, "--yes"]).exit_code == 0
    made = sorted(r.name for r in factory.run_revisions().list_revisions(parent=PATH))

    plan = deploy("--dry-run")
    applied = deploy("--yes")

    assert plan.stdout == (
        f"Plan for doki-backend ({PATH}) on the emulator at {engine_emulator.grpc_address}:\n"
        f"  ~ traffic: 100% {earlier} -> 100% latest\n1 change.\n"
    ), plan.output
    assert applied.exit_code == 0, applied.output
    assert sorted(r.name for r in factory.run_revisions().list_revisions(parent=PATH)) == made
    status = json.loads(runner.invoke(app, ["--json", "status"]).stdout)
    assert (status["latest_ready"], status["traffic_follows_latest"]) == ("doki-backend-named", True)


REPOSITORY_TOML = (
    (REPO / "doki.toml")
    .read_text()
    .replace("https://your-project.supabase.co", "https://abcdefghijklmnopqrst.supabase.co")
)
REPOSITORY_ENV = ENV + (
    "SUPABASE_JWT_SECRET=legacy-jwt-secret-for-tests-0123456789\nGOOGLE_CLIENT_ID=1234-abc.apps.googleusercontent.com\n"
)
SHAPES = {
    "a named runtime account, secrets at latest": (TOML, ()),
    "no runtime account: Cloud Run's default": (TOML.replace(f'service_account = "{SA}"\n', ""), ()),
    "secrets pinned to a version": (TOML.replace('"encryption-key"', '"encryption-key:1"'), ()),
    "the repository's doki.toml": (REPOSITORY_TOML, ()),
    "the repository's doki.toml, staging": (REPOSITORY_TOML, ("--env", "staging")),
}


@pytest.mark.parametrize("shape", SHAPES)
def test_after_a_deploy_the_plan_is_empty_for_every_documented_shape(
    shape: str, tmp_path: Path, engine_emulator: Emulator, backend_image: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Cloud Run fills in what doki.toml leaves out (the default account, the port's name, ...): a plan must not
    # show those as changes forever, and a release would otherwise stage a revision on every run.
    toml, env = SHAPES[shape]
    monkeypatch.setenv("DOKI_EMULATOR", engine_emulator.grpc_address)
    publish(engine_emulator, backend_image)
    (tmp_path / "doki.toml").write_text(toml)
    (tmp_path / ".env").write_text(REPOSITORY_ENV)
    make_accounts(engine_emulator, toml)
    assert runner.invoke(app, [*env, "secrets", "push"]).exit_code == 0
    if "service_account" not in toml:
        grant_the_default_account(engine_emulator, "doki-e2e")

    applied = runner.invoke(app, [*env, "deploy", "--image", backend_image, "--yes"])
    planned = runner.invoke(app, [*env, "deploy", "--image", backend_image, "--dry-run"])

    assert applied.exit_code == 0, applied.output
    assert planned.exit_code == 0, planned.output
    assert planned.stdout.endswith("No changes.\n")


def grant_the_default_account(emulator: Emulator, project: str) -> None:
    """What the deployment guide's troubleshooting does by hand: the Compute Engine default account may read every
    secret (gcloud secrets add-iam-policy-binding --member=serviceAccount:PROJECT_NUMBER-compute@...)."""
    client = ClientFactory(emulator.grpc_address).secret_manager()
    member = f"serviceAccount:{compute_default_account(project)}"
    for secret in client.list_secrets(parent=f"projects/{project}"):
        policy = client.get_iam_policy(request={"resource": secret.name})
        policy.bindings.add(role="roles/secretmanager.secretAccessor", members=[member])
        client.set_iam_policy(request={"resource": secret.name, "policy": policy})


def test_without_a_runtime_account_the_plan_warns_when_no_secret_lets_the_default_account_read_it(
    tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # doki cannot name the default account to grant it (it does not know the project's number), nor see a grant
    # on the project: it warns, where such a revision would otherwise fail to start without a word before.
    setup_project(tmp_path, emulator, monkeypatch)
    (tmp_path / "doki.toml").write_text(TOML.replace(f'service_account = "{SA}"\n', ""))
    assert runner.invoke(app, ["secrets", "push"]).exit_code == 0

    warned = deploy("--dry-run")
    grant_the_default_account(emulator, "doki-e2e")
    granted = runner.invoke(app, ["--json", "deploy", "--image", BACKEND_IMAGE, "--dry-run"])

    assert warned.exit_code == 2
    assert (
        "  ! service_account is not set, so the revisions run as the project's Compute Engine default account, and no "
        "grant on encryption-key, google-oauth-client-secret, session-secret-key, supabase-secret-key lets it read "
        "them: unless the project grants it, the new revision will not start; set service_account = "
        '"NAME@PROJECT.iam.gserviceaccount.com" in doki.toml, and deploy grants it access\n'
    ) in warned.stdout
    assert json.loads(granted.stdout)["plan"]["warnings"] == []


def test_the_repositorys_own_doki_toml_stops_before_any_call_naming_supabase_url(
    tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its SUPABASE_URL is a stand-in, which production refuses at start: found here, not after a whole deploy.
    monkeypatch.setenv("DOKI_EMULATOR", emulator.grpc_address)
    (tmp_path / "doki.toml").write_text((REPO / "doki.toml").read_text())
    emulator.faults.calls.clear()

    result = deploy("--yes")

    assert result.exit_code == 78
    assert result.stderr == (
        "Error [would_not_start]: the new revision of doki-backend would not start, the backend would refuse its "
        "settings: SUPABASE_URL holds a development placeholder: set the real value; nothing was changed\n"
        "  Hint: fix the env and secrets of [service] in doki.toml; --skip-checks deploys anyway\n"
    )
    assert not emulator.faults.calls  # not even a read


def test_skip_checks_plans_what_would_not_start_and_says_so(
    tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup_project(tmp_path, emulator, monkeypatch)
    (tmp_path / "doki.toml").write_text(TOML.replace('["https://one.example"]', '["*"]'))
    assert runner.invoke(app, ["secrets", "push"]).exit_code == 0

    refused = deploy("--dry-run")
    skipped = runner.invoke(app, ["--json", "deploy", "--image", BACKEND_IMAGE, "--dry-run", "--skip-checks"])

    assert refused.exit_code == 78
    assert "ALLOWED_ORIGINS contains '*'" in refused.stderr
    assert skipped.exit_code == 2, skipped.output
    [problem] = json.loads(skipped.stdout)["plan"]["skipped_checks"]
    assert problem.startswith("ALLOWED_ORIGINS contains '*'")
    human = runner.invoke(app, ["deploy", "--image", BACKEND_IMAGE, "--dry-run", "--skip-checks"]).stdout
    assert f"  ! --skip-checks: the new revision may not start: {problem}\n" in human


def test_a_port_change_moves_a_tcp_startup_probe_that_checked_the_old_port(
    tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup_project(tmp_path, emulator, monkeypatch)
    (tmp_path / "doki.toml").write_text(TOML.replace('repository = "doki"\n', 'repository = "doki"\nport = 9090\n'))
    assert runner.invoke(app, ["secrets", "push"]).exit_code == 0
    services = ClientFactory(emulator.grpc_address).run_services()
    probe = run_v2.Probe(tcp_socket=run_v2.TCPSocketAction(port=8080), period_seconds=5)
    container = run_v2.Container(
        image=BACKEND_IMAGE, ports=[run_v2.ContainerPort(name="h2c", container_port=8080)], startup_probe=probe
    )
    made = services.create_service(
        parent=PATH.rsplit("/", 2)[0],
        service_id="doki-backend",
        service=run_v2.Service(template=run_v2.RevisionTemplate(containers=[container])),
    )
    with pytest.raises(exceptions.FailedPrecondition, match="no Docker engine"):
        made.result(timeout=30)

    deploy("--yes")  # its revision cannot start here (no engine): what it wrote is what matters

    [serving] = services.get_service(name=PATH).template.containers
    assert [(p.name, p.container_port) for p in serving.ports] == [("h2c", 9090)]
    assert (serving.startup_probe.tcp_socket.port, serving.startup_probe.period_seconds) == (9090, 5)


def test_a_deploy_after_a_named_revision_failed_makes_a_new_one_under_a_new_name(
    tmp_path: Path, engine_emulator: Emulator, backend_image: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A release names its revision; when it fails for a cause outside the template (fixed since), the template is
    # what doki.toml asks for, and the deploy that retries it must not send it under the failed revision's name.
    services = deployed(tmp_path, engine_emulator, monkeypatch)
    live = services.get_service(name=PATH)
    live.template.revision = "doki-backend-named"
    live.template.annotations["ops.example.com/ticket"] = "42"
    engine_emulator.faults.fail_revisions("doki-backend")
    with pytest.raises(exceptions.FailedPrecondition):
        services.update_service(service=live).result(timeout=120)

    plan = deploy("--dry-run")
    retried = deploy("--yes")

    assert "  ~ revision: doki-backend-named (not ready) -> a new revision\n" in plan.stdout
    assert retried.exit_code == 0, retried.output
    after = services.get_service(name=PATH)
    assert after.latest_ready_revision == after.latest_created_revision != f"{PATH}/revisions/doki-backend-named"
    assert deploy("--dry-run").exit_code == 0


def test_an_internal_service_deploys_and_says_its_health_contract_could_not_be_checked_from_here(
    tmp_path: Path, engine_emulator: Emulator, backend_image: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup_project(tmp_path, engine_emulator, monkeypatch)
    (tmp_path / "doki.toml").write_text(
        TOML.replace('repository = "doki"\n', 'repository = "doki"\ningress = "internal"\n')
    )
    assert runner.invoke(app, ["secrets", "push"]).exit_code == 0

    result = runner.invoke(app, ["--json", "deploy", "--image", BACKEND_IMAGE, "--yes"])

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["health_checked"] is False
    assert httpx.get(report["url"] + "/", timeout=10).status_code == 404  # from outside its VPC, as on Google
    human = runner.invoke(app, ["deploy", "--image", BACKEND_IMAGE, "--yes"])  # up to date: nothing to check again
    assert human.exit_code == 0
    (tmp_path / "doki.toml").write_text(
        TOML.replace('repository = "doki"\n', 'repository = "doki"\ningress = "internal"\nmax_instances = 3\n')
    )
    again = runner.invoke(app, ["deploy", "--image", BACKEND_IMAGE, "--yes"])
    assert again.exit_code == 0, again.output
    assert (
        "health contract not checked: ingress is internal, so its URL answers only requests from the project's VPC "
        "networks (Cloud Run answers others 404); check it from there"
    ) in again.stderr


def test_where_the_organisation_refuses_allusers_the_deploy_says_so_and_invoker_iam_check_off_makes_it_public(
    tmp_path: Path, engine_emulator: Emulator, backend_image: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup_project(tmp_path, engine_emulator, monkeypatch)
    assert runner.invoke(app, ["secrets", "push"]).exit_code == 0
    httpx.post(
        f"{engine_emulator.rest_url}/_doki/policies", json={"project": PROJECT, "domain_restricted_sharing": True}
    )

    refused = deploy("--yes")

    assert refused.exit_code == 1
    assert refused.stderr.endswith(
        "Error [public_access_refused]: doki-backend is deployed but not public: the organisation refused allUsers "
        "as its invoker (One or more users named in the policy do not belong to a permitted customer,  perhaps due "
        "to an organization policy.)\n"
        "  Hint: set invoker_iam_check = false in doki.toml: doki then makes it public by turning off Cloud Run's "
        "invoker IAM check (as gcloud run services update --no-invoker-iam-check does), which that policy allows; "
        "or set allow_unauthenticated = false to keep it private\n"
    )
    url = ClientFactory(engine_emulator.grpc_address).run_services().get_service(name=PATH).uri
    assert httpx.get(url + "/", timeout=10).status_code == 403  # private: nothing was opened half-way

    (tmp_path / "doki.toml").write_text(
        TOML.replace('repository = "doki"\n', 'repository = "doki"\ninvoker_iam_check = false\n')
    )
    plan = deploy("--dry-run")
    assert plan.exit_code == 2
    assert "  ~ invoker: authenticated callers only -> anyone (invoker IAM check off)\n" in plan.stdout
    assert "= image" not in plan.stdout  # a field of the service: no new revision

    opened = deploy("--yes")
    assert opened.exit_code == 0, opened.output
    assert httpx.get(url + "/", timeout=10).json() == {"message": "Doki Backend up"}
    assert "  invokers     anyone (invoker IAM check off)\n" in runner.invoke(app, ["status"]).stdout
    assert deploy("--dry-run").exit_code == 0
    (tmp_path / "doki.toml").write_text(TOML)  # the key dropped: the check stays as it is live (gcloud may have set it)
    assert deploy("--dry-run").exit_code == 0

    # The organisation allows allUsers again, and doki.toml turns the check back on: allUsers is bound before the
    # check is, so the service never turns private in between.
    httpx.post(
        f"{engine_emulator.rest_url}/_doki/policies", json={"project": PROJECT, "domain_restricted_sharing": False}
    )
    (tmp_path / "doki.toml").write_text(
        TOML.replace('repository = "doki"\n', 'repository = "doki"\ninvoker_iam_check = true\n')
    )
    back = deploy("--yes")
    assert back.exit_code == 0, back.output
    assert back.stderr.index("allowing unauthenticated calls") < back.stderr.index("updating the service")
    assert httpx.get(url + "/", timeout=10).json() == {"message": "Doki Backend up"}
    assert "  invokers     anyone (allUsers)\n" in runner.invoke(app, ["status"]).stdout


def test_a_runtime_account_that_does_not_exist_stops_the_deploy_before_any_write_and_says_how_to_create_it(
    tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOKI_EMULATOR", emulator.grpc_address)
    (tmp_path / "doki.toml").write_text(TOML)
    (tmp_path / ".env").write_text(ENV)
    assert runner.invoke(app, ["secrets", "push"]).exit_code == 0

    for attempt in (deploy("--dry-run"), deploy("--yes")):
        assert attempt.exit_code == 78
        assert attempt.stderr == (
            f"Error [service_account_missing]: the runtime account {SA} (service_account in doki.toml) does not "
            "exist, and Cloud Run runs no revision as an account that does not; nothing was changed\n"
            "  Hint: create it: `doki doctor --create-account` (or gcloud iam service-accounts create doki-runtime "
            "--project doki-e2e), or name another in doki.toml\n"
        )
    forced = deploy("--yes", "--skip-checks")
    assert forced.exit_code == 78  # refused by Google now, and still the same missing account
    assert f"  ! --skip-checks: the new revision may not start: the runtime account {SA} does not exist\n" in (
        forced.stdout
    )
    assert forced.stderr.endswith(
        "Error [service_account_missing]: changing the IAM policy of projects/doki-e2e/secrets/encryption-key: the "
        f"service account {SA} does not exist\n"
        "  Hint: create it: gcloud iam service-accounts create doki-runtime --project doki-e2e (`doki doctor "
        "--create-account` creates the runtime account doki.toml names); or name an account that exists in "
        "doki.toml\n"
    )
    services = ClientFactory(emulator.grpc_address).run_services()
    assert list(services.list_services(parent=PATH.rsplit("/", 2)[0])) == []  # nothing half-done

    doctor = runner.invoke(app, ["doctor", "--create-account"])
    assert f"PASS  runtime account exists: {SA} created\n" in doctor.stdout
    # The plan goes on once it exists, to the next thing missing: the image was never pushed in this test.
    assert deploy("--dry-run").stderr.startswith("Error [image_not_pushed]: ")


def test_cloud_run_refusing_to_deploy_as_the_runtime_account_names_the_role_that_allows_it(
    tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup_project(tmp_path, emulator, monkeypatch)
    assert runner.invoke(app, ["secrets", "push"]).exit_code == 0
    denial = f"Permission 'iam.serviceaccounts.actAs' denied on service account {SA} (or it may not exist)."
    emulator.faults.fail("Services/UpdateService", "PERMISSION_DENIED", message=denial)
    result = deploy("--yes")
    assert result.exit_code == 1
    assert result.stderr.endswith(
        f"Error [act_as_denied]: deploying {PATH}: you may not deploy as {SA}, or it does not exist ({denial})\n"
        "  Hint: if it exists, grant your account roles/iam.serviceAccountUser on it: gcloud iam service-accounts "
        f"add-iam-policy-binding {SA} --member=user:YOU (or serviceAccount:DEPLOYER) "
        "--role=roles/iam.serviceAccountUser; if it does not, create it: gcloud iam service-accounts create "
        "doki-runtime --project doki-e2e (`doki doctor --create-account` creates the runtime account doki.toml "
        "names)\n"
    )
