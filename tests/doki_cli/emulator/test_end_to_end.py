"""The emulator's promise, end to end: the Doki backend image, deployed through the official Cloud Run client with
its secrets in the emulator's Secret Manager, becomes Ready, answers on its URL, its logs can be tailed, and traffic
pinned back to the first revision is served by the first revision's container."""

from __future__ import annotations

import contextlib
import queue
import threading
from typing import Any

import httpx
from cryptography.fernet import Fernet
from google.api_core import exceptions
from google.cloud import run_v2
from google.cloud.logging_v2.types import TailLogEntriesRequest
from google.iam.v1 import policy_pb2
from google.logging.type import log_severity_pb2

from doki_cli.emulator.server import Emulator
from doki_cli.gcp.clients import ClientFactory
from tests.helpers import BACKEND_IMAGE as IMAGE
from tests.helpers.images import publish

PROJECT = "doki-e2e"
REGION = "us-central1"
SERVICE_ACCOUNT = f"doki-runtime@{PROJECT}.iam.gserviceaccount.com"
SECRETS = {
    "SESSION_SECRET_KEY": "session-secret-key",
    "ENCRYPTION_KEY": "encryption-key",
    "SUPABASE_SECRET_KEY": "supabase-secret-key",
    "GOOGLE_CLIENT_SECRET": "google-oauth-client-secret",
}


def _put_secrets(clients: ClientFactory) -> None:
    sm = clients.secret_manager()
    values = {
        "session-secret-key": "s" * 48,
        "encryption-key": Fernet.generate_key().decode(),
        "supabase-secret-key": "service-role-key-for-tests",
        "google-oauth-client-secret": "google-client-secret-for-tests",
    }
    for secret_id, value in values.items():
        secret = sm.create_secret(
            parent=f"projects/{PROJECT}", secret_id=secret_id, secret={"replication": {"automatic": {}}}
        )
        sm.add_secret_version(parent=secret.name, payload={"data": value.encode()})
        policy = sm.get_iam_policy(request={"resource": secret.name})
        policy.bindings.append(
            policy_pb2.Binding(role="roles/secretmanager.secretAccessor", members=[f"serviceAccount:{SERVICE_ACCOUNT}"])
        )
        sm.set_iam_policy(request={"resource": secret.name, "policy": policy})


def _template(origin: str) -> run_v2.RevisionTemplate:
    env = [
        run_v2.EnvVar(name="ENVIRONMENT", value="production"),
        run_v2.EnvVar(name="SUPABASE_URL", value="https://abcdefghijklmnop.supabase.co"),
        run_v2.EnvVar(name="GOOGLE_CLIENT_ID", value="client-id.apps.googleusercontent.com"),
        run_v2.EnvVar(name="ALLOWED_ORIGINS", value=origin),
    ]
    env += [
        run_v2.EnvVar(
            name=name,
            value_source=run_v2.EnvVarSource(secret_key_ref=run_v2.SecretKeySelector(secret=secret, version="latest")),
        )
        for name, secret in SECRETS.items()
    ]
    return run_v2.RevisionTemplate(
        service_account=SERVICE_ACCOUNT,
        containers=[
            run_v2.Container(
                image=IMAGE,
                ports=[run_v2.ContainerPort(name="http1", container_port=8080)],
                resources=run_v2.ResourceRequirements(limits={"cpu": "1", "memory": "512Mi"}),
                env=env,
            )
        ],
    )


def _allowed_origin(url: str, origin: str) -> str | None:
    preflight = httpx.options(
        url + "/auth/me", headers={"Origin": origin, "Access-Control-Request-Method": "GET"}, timeout=10
    )
    return preflight.headers.get("access-control-allow-origin")


def test_the_backend_deploys_serves_logs_and_rolls_back_on_the_emulator(
    engine_emulator: Emulator, engine_clients: ClientFactory, backend_image: str
) -> None:
    engine_clients.iam_admin().create_service_account(
        request={"name": f"projects/{PROJECT}", "account_id": SERVICE_ACCOUNT.split("@")[0]}
    )
    _put_secrets(engine_clients)
    publish(engine_emulator, backend_image)  # pushed: Cloud Run pulls from Artifact Registry
    services = engine_clients.run_services()
    parent = f"projects/{PROJECT}/locations/{REGION}"

    # The tail starts before the deploy: the startup line must arrive through it.
    requests: queue.Queue[TailLogEntriesRequest | None] = queue.Queue()
    requests.put(
        TailLogEntriesRequest(
            resource_names=[f"projects/{PROJECT}"],
            filter='resource.type="cloud_run_revision" AND resource.labels.service_name="doki-backend"',
        )
    )
    tailed: list[Any] = []
    ready_line = threading.Event()

    def tail() -> None:
        with contextlib.suppress(exceptions.Cancelled, exceptions.ServiceUnavailable):  # the emulator stopping
            for response in engine_clients.logging().tail_log_entries(requests=iter(requests.get, None)):
                for entry in response.entries:
                    tailed.append(entry)
                    if "Doki backend ready" in str(entry.json_payload.get("message", "")):
                        ready_line.set()

    threading.Thread(target=tail, daemon=True).start()

    service = services.create_service(
        parent=parent,
        service_id="doki-backend",
        service=run_v2.Service(template=_template("https://one.example")),
    ).result(timeout=180)
    assert service.terminal_condition.state == run_v2.Condition.State.CONDITION_SUCCEEDED
    # What --allow-unauthenticated does: without it Cloud Run (and the emulator) answer 403.
    policy = services.get_iam_policy(request={"resource": service.name})
    policy.bindings.append(policy_pb2.Binding(role="roles/run.invoker", members=["allUsers"]))
    services.set_iam_policy(request={"resource": service.name, "policy": policy})
    first = service.latest_ready_revision
    assert httpx.get(service.uri, timeout=10).json() == {"message": "Doki Backend up"}
    assert ready_line.wait(60), f"no startup line tailed; got {tailed!r}"
    entry = next(e for e in tailed if "Doki backend ready" in str(e.json_payload.get("message", "")))
    assert log_severity_pb2.LogSeverity.Name(entry.severity) == "INFO"
    assert entry.resource.labels["revision_name"] == first.rsplit("/", 1)[-1]
    requests.put(None)

    service.template = _template("https://two.example")
    service = services.update_service(service=service).result(timeout=180)
    second = service.latest_ready_revision
    assert second != first
    assert _allowed_origin(service.uri, "https://two.example") == "https://two.example"

    service.traffic = [
        run_v2.TrafficTarget(
            type_=run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION,
            revision=first.rsplit("/", 1)[-1],
            percent=100,
        )
    ]
    service = services.update_service(service=service).result(timeout=180)
    assert service.latest_ready_revision == second
    for _ in range(3):
        assert _allowed_origin(service.uri, "https://one.example") == "https://one.example"
        assert _allowed_origin(service.uri, "https://two.example") is None
