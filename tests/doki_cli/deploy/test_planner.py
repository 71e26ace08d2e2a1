"""The planner's secret check against the emulator's Secret Manager: each version doki.toml names must exist and be
enabled, or the deploy stops with exit 78 before it writes, naming the variable, the version and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from doki_cli.config import SecretRef, load_config
from doki_cli.deploy.planner import Change, Plan, Planner, secret_version
from doki_cli.emulator.server import Emulator
from doki_cli.errors import DokiError
from doki_cli.gcp.clients import ClientFactory
from doki_cli.gcp.google import Google
from doki_cli.gcp.secretmanager import SecretManager
from doki_cli.model import LiveService, ServiceSpec

PROJECT = "doki-secrets"
SECRET = f"projects/{PROJECT}/secrets/api-key"


@pytest.fixture
def secrets(emulator: Emulator) -> SecretManager:
    """api-key with version 1 disabled, 2 destroyed, 3 enabled; empty-key with no versions."""
    client = ClientFactory(emulator.grpc_address).secret_manager()
    for secret_id in ("api-key", "empty-key"):
        client.create_secret(
            parent=f"projects/{PROJECT}", secret_id=secret_id, secret={"replication": {"automatic": {}}}
        )
    for value in (b"one", b"two", b"three"):
        client.add_secret_version(parent=SECRET, payload={"data": value})
    client.disable_secret_version(name=f"{SECRET}/versions/1")
    client.destroy_secret_version(name=f"{SECRET}/versions/2")
    return Google(ClientFactory(emulator.grpc_address), PROJECT).secrets


def refusal(secrets: SecretManager, ref: SecretRef) -> tuple[str, str]:
    with pytest.raises(DokiError) as refused:
        secret_version(secrets, "API_KEY", ref)
    assert refused.value.exit_code == 78
    return refused.value.message, refused.value.hint


def test_an_enabled_version_resolves_to_its_number(secrets: SecretManager) -> None:
    assert secret_version(secrets, "API_KEY", SecretRef("api-key")) == 3
    assert secret_version(secrets, "API_KEY", SecretRef("api-key", "3")) == 3


@pytest.mark.parametrize(
    ("ref", "problem", "hint"),
    [
        (
            SecretRef("api-key", "1"),
            "whose version 1 is disabled",
            "enable it (gcloud secrets versions enable 1 --secret api-key), or pin an enabled version in doki.toml "
            "(or use latest)",
        ),
        (
            SecretRef("api-key", "2"),
            "whose version 2 is destroyed",
            "pin an enabled version in doki.toml (or use latest)",
        ),
        (
            SecretRef("api-key", "7"),
            "whose version 7 does not exist",
            "pin an enabled version in doki.toml (or use latest)",
        ),
        (SecretRef("empty-key"), "which has no versions yet", "push a value with `doki secrets push`"),
    ],
)
def test_a_version_no_revision_could_read_stops_with_the_fix_for_its_case(
    secrets: SecretManager, ref: SecretRef, problem: str, hint: str
) -> None:
    assert refusal(secrets, ref) == (
        f"API_KEY uses the secret {ref.secret}, {problem}: the new revision could not read it, so nothing was changed",
        hint,
    )


def test_a_latest_version_that_is_disabled_or_destroyed_says_to_push_a_new_one(
    emulator: Emulator, secrets: SecretManager
) -> None:
    client = ClientFactory(emulator.grpc_address).secret_manager()
    client.disable_secret_version(name=f"{SECRET}/versions/3")
    assert refusal(secrets, SecretRef("api-key"))[1] == (
        "enable it (gcloud secrets versions enable 3 --secret api-key), or push a new value with `doki secrets push`"
    )
    client.destroy_secret_version(name=f"{SECRET}/versions/3")
    assert refusal(secrets, SecretRef("api-key")) == (
        "API_KEY uses the secret api-key, whose latest version 3 is destroyed: the new revision could not read it, "
        "so nothing was changed",
        "push a new value with `doki secrets push`",
    )


def test_one_secret_named_at_two_versions_has_each_version_checked_and_pinned(
    tmp_path: Path, emulator: Emulator, secrets: SecretManager
) -> None:
    toml = f'[service]\nname = "api"\nproject = "{PROJECT}"\nrepository = "doki"\n[service.secrets]\n'
    google = Google(ClientFactory(emulator.grpc_address), PROJECT)
    planner = Planner(google.run, google.secrets)
    (tmp_path / "doki.toml").write_text(toml + 'API_KEY = "api-key"\nOLD_API_KEY = "api-key:2"\n')
    with pytest.raises(DokiError) as refused:
        planner.plan(load_config(tmp_path / "doki.toml"), "us-docker.pkg.dev/p/r/api:1")
    assert refused.value.message.startswith("OLD_API_KEY uses the secret api-key, whose version 2 is destroyed")

    (tmp_path / "doki.toml").write_text(toml + 'API_KEY = "api-key"\nPINNED_API_KEY = "api-key:3"\n')
    planned = planner.plan(load_config(tmp_path / "doki.toml"), "us-docker.pkg.dev/p/r/api:1").desired.secrets
    assert (planned["API_KEY"], planned["PINNED_API_KEY"]) == ("api-key:3", "api-key:3")


def test_only_a_plan_that_writes_a_new_template_makes_a_revision_and_so_pulls_the_image() -> None:
    spec = ServiceSpec("img:1", 8080, "512Mi", "1", 80, 300, 0, 10, "all", None)
    live = LiveService("api", spec, "https://api", "e", 1, None, (), (), {}, "api-1", "api-1", True, "")

    def plan(*changes: Change, live_service: LiveService | None = live) -> Plan:
        return Plan("api", "projects/p/locations/l/services/api", spec, live_service, (), list(changes))

    assert plan(live_service=None).makes_revision  # a create
    assert not plan(Change("traffic", "100% api-1", "100% latest"), Change("invoker", None, "allUsers")).makes_revision
    assert plan(Change("memory", "512Mi", "1Gi")).makes_revision
    assert plan(Change("revision", "api-2 (not ready)", "a new revision")).makes_revision


def test_a_runtime_account_of_another_project_is_a_warning_in_the_plan(tmp_path: Path, emulator: Emulator) -> None:
    google = Google(ClientFactory(emulator.grpc_address), PROJECT)
    toml = f'[service]\nname = "api"\nproject = "{PROJECT}"\nrepository = "doki"\n'
    (tmp_path / "doki.toml").write_text(toml + 'service_account = "runtime@doki-prod.iam.gserviceaccount.com"\n')
    plan = Planner(google.run, google.secrets).plan(load_config(tmp_path / "doki.toml"), "us-docker.pkg.dev/p/r/api:1")
    assert plan.warnings == [
        f"service_account runtime@doki-prod.iam.gserviceaccount.com belongs to project doki-prod, not {PROJECT}: "
        "Cloud Run refuses it unless the organisation allows accounts of other projects"
    ]
    (tmp_path / "doki.toml").write_text(toml + f'service_account = "runtime@{PROJECT}.iam.gserviceaccount.com"\n')
    assert Planner(google.run, google.secrets).plan(load_config(tmp_path / "doki.toml"), "x/y:1").warnings == []


def test_another_projects_secret_of_the_same_id_is_a_change_and_a_pinned_digest_of_the_tag_is_not(
    tmp_path: Path, emulator: Emulator, secrets: SecretManager
) -> None:
    from google.cloud import run_v2

    image = f"us-docker.pkg.dev/{PROJECT}/doki/api"
    digest = "sha256:" + "d" * 64
    ref = run_v2.SecretKeySelector(secret="projects/other-proj-456/secrets/api-key", version="3")
    container = run_v2.Container(
        image=f"{image}@{digest}",
        env=[run_v2.EnvVar(name="API_KEY", value_source=run_v2.EnvVarSource(secret_key_ref=ref))],
    )
    ClientFactory(emulator.grpc_address).run_services().create_service(
        parent=f"projects/{PROJECT}/locations/us-central1",
        service_id="api",
        service=run_v2.Service(template=run_v2.RevisionTemplate(containers=[container])),
    )
    toml = f'[service]\nname = "api"\nproject = "{PROJECT}"\nrepository = "doki"\n'
    toml += '[service.secrets]\nAPI_KEY = "api-key:3"\n'
    (tmp_path / "doki.toml").write_text(toml)
    google = Google(ClientFactory(emulator.grpc_address), PROJECT)
    digests = {f"{image}:v1": digest, f"{image}:v2": "sha256:" + "e" * 64}
    plan = Planner(google.run, google.secrets, digests.get).plan(load_config(tmp_path / "doki.toml"), f"{image}:v1")
    changes = {c.what: (c.before, c.after) for c in plan.changes}
    assert changes["secret API_KEY"] == ("projects/other-proj-456/secrets/api-key:3", "api-key:3")
    assert "image" not in changes  # the live digest is what v1 points at
    moved = Planner(google.run, google.secrets, digests.get).plan(load_config(tmp_path / "doki.toml"), f"{image}:v2")
    assert {c.what: (c.before, c.after) for c in moved.changes}["image"] == (f"{image}@{digest}", f"{image}:v2")
