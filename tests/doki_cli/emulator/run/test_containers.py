"""Cloud Run on the real Docker engine: revisions run as containers, URLs answer from them, traffic splits and tags
reach the right revision, failures keep traffic where it was, and the containers' output becomes log entries.

Every test deploys the tiny app of conftest on the stand-in base image (nothing is built); the `containers` fixture
removes whatever the emulator started, even when a test fails.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.api_core import exceptions
from google.cloud import run_v2
from google.iam.v1 import policy_pb2
from google.logging.type import log_severity_pb2

from doki_cli.emulator.server import Emulator, EmulatorConfig
from doki_cli.engine import DockerEngine
from doki_cli.gcp.clients import ClientFactory
from tests.doki_cli.emulator.run.conftest import (
    LATEST,
    PROJECT,
    REVISION,
    allow_unauthenticated,
    app_template,
    create,
    name_of,
    short,
)
from tests.helpers import BASE_IMAGE
from tests.helpers.images import publish

pytestmark = pytest.mark.docker

SUCCEEDED = run_v2.Condition.State.CONDITION_SUCCEEDED
FAILED = run_v2.Condition.State.CONDITION_FAILED
ACCOUNT = f"api-runtime@{PROJECT}.iam.gserviceaccount.com"


def deploy(services: Any, service_id: str = "api", spec: run_v2.RevisionTemplate | None = None) -> Any:
    """Create `service_id` running the app, open to all callers, and wait until it is Ready."""
    service = create(services, service_id, spec or app_template()).result(timeout=120)
    allow_unauthenticated(services, service.name)
    return service


def redeploy(services: Any, service: run_v2.Service) -> Any:
    return services.update_service(service=service).result(timeout=120)


def served_by(url: str, **headers: str) -> str:
    answer = httpx.get(url + "/", headers=headers, timeout=30)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["revision"])


def eventually(find: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    """Poll `find` until it returns something truthy (log lines and restarts arrive in the background)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = find()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen within {timeout} s")


def pinned(revision_name: str, percent: int = 100, tag: str = "") -> run_v2.TrafficTarget:
    return run_v2.TrafficTarget(type_=REVISION, revision=short(revision_name), percent=percent, tag=tag)


def test_a_service_becomes_ready_and_its_url_answers_from_its_container(
    engine_services: Any, engine_revisions: Any, containers: Callable[[], list[Any]]
) -> None:
    service = deploy(engine_services)

    revision = service.latest_created_revision
    assert (service.terminal_condition.state, service.latest_ready_revision) == (SUCCEEDED, revision)
    assert [(c.type_, c.state) for c in service.conditions] == [
        ("RoutesReady", SUCCEEDED),
        ("ConfigurationsReady", SUCCEEDED),
    ]
    assert [(s.type_, s.revision, s.percent) for s in service.traffic_statuses] == [(LATEST, short(revision), 100)]
    assert service.reconciling is False
    ready = engine_revisions.get_revision(name=revision)
    assert [(c.type_, c.state) for c in ready.conditions] == [
        ("Ready", SUCCEEDED),
        ("ContainerHealthy", SUCCEEDED),
        ("ResourcesAvailable", SUCCEEDED),
    ]
    answer = httpx.get(service.uri + "/hello?x=1", timeout=30).json()
    assert answer == {
        "revision": short(revision),
        "service": "api",
        "greeting": "hello",
        "secret": None,
        "path": "/hello?x=1",
    }
    assert [c.name for c in containers()] == [f"doki-emu-{short(revision)}"]


def test_a_private_url_takes_only_an_id_token_for_its_own_url_of_an_invoker_until_all_users_may_invoke(
    engine_clients: ClientFactory, engine_services: Any, containers: Callable[[], list[Any]]
) -> None:
    service = create(engine_services, "api", app_template()).result(timeout=120)
    iam = engine_clients.iam_admin()
    caller = iam.create_service_account(request={"name": f"projects/{PROJECT}", "account_id": "smoke-tester"}).email
    tokens = engine_clients.iam_credentials()

    def token(audience: str, email: str = caller) -> str:
        request = {"name": f"projects/-/serviceAccounts/{email}", "audience": audience, "include_email": True}
        return str(tokens.generate_id_token(request=request).token)

    def status(**headers: str) -> int:
        return httpx.get(service.uri + "/", headers=headers, timeout=30).status_code

    refused = httpx.get(service.uri + "/", timeout=30)
    assert (refused.status_code, "Error: Forbidden" in refused.text) == (403, True)  # no token at all
    unauthorized = httpx.get(service.uri + "/", headers={"Authorization": "Bearer any-token"}, timeout=30)
    assert (unauthorized.status_code, "Error: Unauthorized" in unauthorized.text) == (401, True)  # no ID token
    assert status(Authorization=f"Bearer {token('https://another.example')}") == 401  # another audience
    assert status(Authorization=f"Bearer {token(service.uri)}") == 403  # a good token, but no invoker role

    policy = engine_services.get_iam_policy(request={"resource": service.name})
    policy.bindings.append(policy_pb2.Binding(role="roles/run.invoker", members=[f"serviceAccount:{caller}"]))
    engine_services.set_iam_policy(request={"resource": service.name, "policy": policy})
    assert served_by(service.uri, Authorization=f"Bearer {token(service.uri)}") == short(service.latest_ready_revision)

    allow_unauthenticated(engine_services, service.name)
    assert served_by(service.uri) == short(service.latest_ready_revision)


def make_account(clients: ClientFactory) -> None:
    """The revisions' account, created as a user would (Cloud Run refuses an account that does not exist)."""
    clients.iam_admin().create_service_account(
        request={"name": f"projects/{PROJECT}", "account_id": ACCOUNT.split("@")[0]}
    )


def test_a_secret_granted_to_the_service_account_reaches_the_environment(
    engine_clients: ClientFactory, engine_services: Any, containers: Callable[[], list[Any]]
) -> None:
    make_account(engine_clients)
    sm = engine_clients.secret_manager()
    secret = sm.create_secret(
        parent=f"projects/{PROJECT}", secret_id="api-key", secret={"replication": {"automatic": {}}}
    )
    sm.add_secret_version(parent=secret.name, payload={"data": b"s3cret-value"})
    policy = sm.get_iam_policy(request={"resource": secret.name})
    policy.bindings.append(
        policy_pb2.Binding(role="roles/secretmanager.secretAccessor", members=[f"serviceAccount:{ACCOUNT}"])
    )
    sm.set_iam_policy(request={"resource": secret.name, "policy": policy})
    reference = run_v2.SecretKeySelector(secret="api-key", version="1")
    env = [run_v2.EnvVar(name="API_KEY", value_source=run_v2.EnvVarSource(secret_key_ref=reference))]

    service = deploy(engine_services, spec=app_template(env=env, service_account=ACCOUNT))

    assert httpx.get(service.uri + "/", timeout=30).json()["secret"] == "s3cret-value"


def test_a_revision_whose_account_may_not_read_its_secret_fails_and_starts_nothing(
    engine_clients: ClientFactory, engine_services: Any, containers: Callable[[], list[Any]]
) -> None:
    make_account(engine_clients)
    sm = engine_clients.secret_manager()
    secret = sm.create_secret(
        parent=f"projects/{PROJECT}", secret_id="api-key", secret={"replication": {"automatic": {}}}
    )
    sm.add_secret_version(parent=secret.name, payload={"data": b"s3cret-value"})
    reference = run_v2.SecretKeySelector(secret=secret.name, version="latest")
    env = [run_v2.EnvVar(name="API_KEY", value_source=run_v2.EnvVarSource(secret_key_ref=reference))]

    with pytest.raises(exceptions.FailedPrecondition) as failure:
        create(engine_services, "api", app_template(env=env, service_account=ACCOUNT)).result(timeout=120)

    revision = engine_services.get_service(name=name_of("api")).latest_created_revision
    assert failure.value.message == (
        f"Revision '{short(revision)}' is not ready and cannot serve traffic. "
        "spec.template.spec.containers[0].env[1].value_from.secret_key_ref.name: Permission denied on secret: "
        f"projects/p/secrets/api-key/versions/latest for Revision service account {ACCOUNT}. The service account "
        "used must be granted the 'Secret Manager Secret Accessor' role (roles/secretmanager.secretAccessor) at the "
        "secret, project or higher level."
    )
    assert containers() == []


def test_an_artifact_registry_image_runs_only_once_pushed_there_even_when_the_engine_has_it(
    engine_emulator: Emulator, engine_services: Any, docker_client: Any, containers: Callable[[], list[Any]]
) -> None:
    image = f"us-docker.pkg.dev/{PROJECT}/apps/tiny:v1"
    docker_client.images.get(BASE_IMAGE).tag(image)
    try:
        template = app_template()
        template.containers[0].image = image
        with pytest.raises(exceptions.FailedPrecondition) as failure:
            create(engine_services, "api", template).result(timeout=120)
        revision = engine_services.get_service(name=name_of("api")).latest_created_revision
        assert failure.value.message == (
            f"Revision '{short(revision)}' is not ready and cannot serve traffic. Image '{image}' not found."
        )
        assert containers() == []

        publish(engine_emulator, image)
        template.containers[0].env.append(run_v2.EnvVar(name="PUSHED", value="1"))  # a new revision
        service = engine_services.get_service(name=name_of("api"))
        service.template = template
        ready = engine_services.update_service(service=service).result(timeout=120)
        assert ready.latest_ready_revision == ready.latest_created_revision
    finally:
        docker_client.images.remove(image)


def test_the_containers_output_is_listed_as_log_entries_of_its_revision(
    engine_clients: ClientFactory, engine_services: Any, containers: Callable[[], list[Any]]
) -> None:
    service = deploy(engine_services)
    revision = short(service.latest_ready_revision)
    served_by(service.uri)
    logging = engine_clients.logging()

    def entries() -> list[Any]:
        found = list(
            logging.list_log_entries(
                resource_names=[f"projects/{PROJECT}"],
                filter='resource.type="cloud_run_revision" AND resource.labels.service_name="api"',
            )
        )
        return found if any(e.json_payload for e in found) else []

    found = eventually(entries, "the request's log line")

    startup = next(e for e in found if e.text_payload.startswith("listening on "))
    request = next(e for e in found if e.json_payload)
    assert startup.log_name == f"projects/{PROJECT}/logs/run.googleapis.com%2Fstdout"
    assert dict(startup.resource.labels) == {
        "service_name": "api",
        "revision_name": revision,
        "location": "us-central1",
        "configuration_name": "api",
        "project_id": PROJECT,
    }
    assert (request.severity, request.json_payload["message"]) == (log_severity_pb2.WARNING, "served /")


def test_traffic_pinned_to_the_first_revision_is_served_by_its_container(
    engine_services: Any, containers: Callable[[], list[Any]]
) -> None:
    service = deploy(engine_services)
    first = service.latest_ready_revision
    service.template = app_template("second")
    service = redeploy(engine_services, service)
    second = service.latest_ready_revision
    assert served_by(service.uri) == short(second)

    service.traffic = [pinned(first)]
    service = redeploy(engine_services, service)

    assert (service.latest_ready_revision, service.latest_created_revision) == (second, second)
    assert [served_by(service.uri) for _ in range(3)] == [short(first)] * 3
    assert [c.name for c in containers()] == [f"doki-emu-{short(first)}"]


def test_a_tag_url_reaches_its_revision_while_the_service_url_serves_the_latest(
    engine_services: Any, containers: Callable[[], list[Any]]
) -> None:
    service = deploy(engine_services)
    first = service.latest_ready_revision
    service.template = app_template("second")
    service.traffic = [run_v2.TrafficTarget(type_=LATEST, percent=100), pinned(first, 0, "old")]

    service = redeploy(engine_services, service)

    tagged = next(s for s in service.traffic_statuses if s.tag == "old")
    assert (tagged.revision, tagged.percent) == (short(first), 0)
    assert tagged.uri.startswith("http://127.0.0.1:") and tagged.uri != service.uri
    assert served_by(tagged.uri) == short(first)
    assert served_by(service.uri) == short(service.latest_ready_revision)


def test_a_fifty_fifty_split_alternates_between_the_revisions(
    engine_services: Any, containers: Callable[[], list[Any]]
) -> None:
    service = deploy(engine_services)
    first = short(service.latest_ready_revision)
    service.template = app_template("second")
    service.traffic = [pinned(service.latest_ready_revision, 50), run_v2.TrafficTarget(type_=LATEST, percent=50)]

    service = redeploy(engine_services, service)

    second = short(service.latest_ready_revision)
    with httpx.Client(timeout=30) as client:
        answers = [client.get(service.uri + "/").json()["revision"] for _ in range(4)]
    assert answers == [first, second, first, second]


def test_a_container_that_exits_fails_the_operation_with_its_last_lines_and_traffic_stays(
    engine_services: Any, containers: Callable[[], list[Any]]
) -> None:
    service = deploy(engine_services)
    first = service.latest_ready_revision
    service.template = app_template("broken")
    service.template.containers[0].args = ["import sys; print('cannot start: DATABASE_URL is missing'); sys.exit(3)"]

    with pytest.raises(exceptions.FailedPrecondition) as failure:
        redeploy(engine_services, service)

    after = engine_services.get_service(name=service.name)
    broken = after.latest_created_revision
    assert failure.value.message.startswith(
        f"Revision '{short(broken)}' is not ready and cannot serve traffic. The user-provided container exited with "
        "code 3 before it listened on the port defined by the PORT="
    )
    assert failure.value.message.endswith("Last log lines:\ncannot start: DATABASE_URL is missing")
    assert (after.latest_ready_revision, after.terminal_condition.state) == (first, FAILED)
    assert after.terminal_condition.message == failure.value.message
    # LATEST is the latest *Ready* revision (the proto's comment on TrafficTargetAllocationType): the failed newest
    # one gets none of the traffic, in the status as at the URL.
    assert [(s.type_, s.percent, s.revision) for s in after.traffic_statuses] == [(LATEST, 100, short(first))]
    assert served_by(after.uri) == short(first)
    assert [c.name for c in containers()] == [f"doki-emu-{short(first)}"]


def test_a_container_that_never_listens_fails_when_its_startup_probe_gives_up(
    engine_clients: ClientFactory, engine_services: Any, containers: Callable[[], list[Any]]
) -> None:
    spec = app_template()
    spec.containers[0].args = ["import time; time.sleep(600)"]
    spec.containers[0].startup_probe = run_v2.Probe(period_seconds=1, failure_threshold=1, tcp_socket={})

    operation = create(engine_services, "api", spec)
    with pytest.raises(exceptions.FailedPrecondition) as failure:
        operation.result(timeout=120)

    assert operation.metadata.reconciling is True
    assert engine_services.get_service(name=name_of("api")).reconciling is False
    # The container port, as Cloud Run names it: not the loopback port the emulator gave the revision.
    assert failure.value.message.endswith(
        "The user-provided container failed to start and listen on the port defined provided by the PORT=8080 "
        "environment variable within the allocated timeout. This can happen when the container port is misconfigured "
        "or if the timeout is too short. The health check timeout can be extended. Logs for this revision might "
        "contain more information."
    )
    assert containers() == []
    revision = short(engine_services.get_service(name=name_of("api")).latest_created_revision)
    assert system_log(engine_clients, revision) == [
        (
            log_severity_pb2.ERROR,
            "STARTUP TCP probe failed 1 time consecutively for container on port 8080. The instance was not started.",
        )
    ]


def test_a_container_that_exits_is_logged_by_cloud_run_at_error_under_its_revision(
    engine_clients: ClientFactory, engine_services: Any
) -> None:
    spec = app_template()
    spec.containers[0].name = "app"
    spec.containers[0].args = ["import sys; print('bad settings', flush=True); sys.exit(3)"]
    with pytest.raises(exceptions.FailedPrecondition) as failure:
        create(engine_services, "api", spec).result(timeout=120)

    assert "The user-provided container exited with code 3 before it listened on the port defined by the PORT=8080" in (
        failure.value.message
    )
    revision = short(engine_services.get_service(name=name_of("api")).latest_created_revision)
    assert system_log(engine_clients, revision) == [(log_severity_pb2.ERROR, "Container called exit(3).")]


def system_log(clients: ClientFactory, revision: str) -> list[tuple[int, str]]:
    """What Cloud Run itself logged about `revision` (run.googleapis.com/varlog/system): severity and text."""
    entries = clients.logging().list_log_entries(
        resource_names=[f"projects/{PROJECT}"],
        filter=f'logName="projects/{PROJECT}/logs/run.googleapis.com%2Fvarlog%2Fsystem" AND '
        f'resource.labels.revision_name="{revision}"',
    )
    return [(entry.severity, entry.text_payload) for entry in entries]


def test_an_injected_revision_failure_keeps_traffic_on_the_previous_revision(
    engine_emulator: Emulator, engine_services: Any, containers: Callable[[], list[Any]]
) -> None:
    service = deploy(engine_services)
    first = service.latest_ready_revision
    engine_emulator.faults.fail_revisions("api")
    service.template = app_template("second")

    with pytest.raises(exceptions.FailedPrecondition) as failure:
        redeploy(engine_services, service)

    after = engine_services.get_service(name=service.name)
    assert failure.value.message == (
        f"Revision '{short(after.latest_created_revision)}' is not ready and cannot serve traffic. The user-provided "
        "container failed to start and listen on the port defined by PORT."
    )
    assert after.latest_ready_revision == first
    assert served_by(after.uri) == short(first)


def test_stop_removes_every_container_the_emulator_started(
    engine_emulator: Emulator, engine_services: Any, containers: Callable[[], list[Any]]
) -> None:
    deploy(engine_services, "api")
    deploy(engine_services, "web")
    assert len(containers()) == 2

    engine_emulator.stop()

    assert containers() == []


def test_serving_revisions_run_again_on_their_old_urls_after_a_restart(tmp_path: Path, docker_client: Any) -> None:
    config = EmulatorConfig(state_dir=tmp_path / "state")
    engine = DockerEngine(docker_client)
    label = ""
    try:
        with Emulator(config, engine=engine) as first:
            label = f"doki.emulator.state={first.run.state_id}"
            services = ClientFactory(first.grpc_address, first.rest_url).run_services()
            service = deploy(services)
        assert docker_client.containers.list(all=True, filters={"label": label}) == []

        with Emulator(config, engine=engine) as second:
            services = ClientFactory(second.grpc_address, second.rest_url).run_services()
            assert services.get_service(name=service.name).uri == service.uri
            revision = eventually(
                lambda: (
                    httpx.get(service.uri + "/", timeout=30).json().get("revision")
                    if httpx.get(service.uri + "/", timeout=30).status_code == 200
                    else None
                ),
                "the revision's return",
            )
            assert revision == short(service.latest_ready_revision)
    finally:
        if label:
            for container in docker_client.containers.list(all=True, filters={"label": label}):
                container.remove(force=True)


def test_an_image_the_engine_cannot_find_or_pull_fails_the_revision(
    engine_services: Any, engine_revisions: Any, containers: Callable[[], list[Any]]
) -> None:
    spec = app_template()
    spec.containers[0].image = "doki-test-missing-image:none"

    with pytest.raises(exceptions.FailedPrecondition) as failure:
        create(engine_services, "api", spec).result(timeout=120)

    revision = engine_services.get_service(name=name_of("api")).latest_created_revision
    assert failure.value.message == (
        f"Revision '{short(revision)}' is not ready and cannot serve traffic. Image 'doki-test-missing-image:none' "
        "not found."
    )
    resources = engine_revisions.get_revision(name=revision).conditions[2]
    assert (resources.type_, resources.reason) == (
        "ResourcesAvailable",
        run_v2.Condition.CommonReason.CONTAINER_MISSING,
    )
    assert containers() == []


def test_a_serving_container_removed_behind_the_emulators_back_runs_again_on_the_next_update(
    engine_services: Any, containers: Callable[[], list[Any]]
) -> None:
    service = deploy(engine_services)
    for container in containers():
        container.remove(force=True)
    assert httpx.get(service.uri + "/", timeout=30).status_code == 503

    service.description = "redeployed"
    service = redeploy(engine_services, service)

    assert served_by(service.uri) == short(service.latest_ready_revision)
    assert [c.name for c in containers()] == [f"doki-emu-{short(service.latest_ready_revision)}"]


def test_an_internal_service_answers_callers_from_outside_its_vpc_404_before_any_invoker_check(
    engine_emulator: Emulator, engine_services: Any, containers: Callable[[], list[Any]]
) -> None:
    service = deploy(engine_services)
    service.ingress = run_v2.IngressTraffic.INGRESS_TRAFFIC_INTERNAL_ONLY
    service = redeploy(engine_services, service)

    outside = httpx.get(service.uri + "/", timeout=30)
    assert outside.status_code == 404
    assert "<h1>Error: Page not found</h1>" in outside.text

    answer = httpx.post(
        f"{engine_emulator.rest_url}/_doki/policies", json={"project": PROJECT, "callers_inside_vpc": True}
    )
    assert answer.json()["callers_inside_vpc"] is True
    assert served_by(service.uri) == short(service.latest_ready_revision)  # from inside, as before

    service.ingress = run_v2.IngressTraffic.INGRESS_TRAFFIC_ALL
    httpx.post(f"{engine_emulator.rest_url}/_doki/policies", json={"project": PROJECT, "callers_inside_vpc": False})
    service = redeploy(engine_services, service)
    assert served_by(service.uri) == short(service.latest_ready_revision)  # all ingress: anyone


def test_an_in_memory_volume_is_a_tmpfs_of_its_size_limit_at_its_mount_path_and_others_are_not_mounted(
    engine_services: Any, containers: Callable[[], list[Any]]
) -> None:
    spec = app_template(
        volumes=[
            run_v2.Volume(name="cache", empty_dir={"medium": "MEMORY", "size_limit": "8Mi"}),
            run_v2.Volume(name="scratch", empty_dir={"medium": "MEMORY"}),
            run_v2.Volume(name="assets", gcs={"bucket": "doki-assets"}),
        ]
    )
    spec.containers[0].volume_mounts = [
        run_v2.VolumeMount(name="cache", mount_path="/cache"),
        run_v2.VolumeMount(name="scratch", mount_path="/scratch"),
        run_v2.VolumeMount(name="assets", mount_path="/assets"),
    ]

    create(engine_services, "api", spec).result(timeout=120)

    [container] = containers()
    container.reload()
    assert container.attrs["HostConfig"]["Tmpfs"] == {"/cache": f"size={8 * 2**20}", "/scratch": ""}
