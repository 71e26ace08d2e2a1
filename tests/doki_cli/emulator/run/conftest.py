"""Cloud Run clients pointed at the emulator, spec builders, and the tiny app the Docker tests deploy.

The app is a python3 -c one-liner on the stand-in base image (nothing to build): it answers every GET with JSON
naming its revision (K_REVISION) and two env values, and prints one JSON log line with a severity per request.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from google.cloud import run_v2
from google.iam.v1 import policy_pb2

from doki_cli.emulator.server import Emulator
from doki_cli.gcp.clients import ClientFactory
from tests.helpers import BASE_IMAGE

PROJECT = "p"
REGION = "us-central1"
PARENT = f"projects/{PROJECT}/locations/{REGION}"
LATEST = run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST
REVISION = run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION

APP = r"""
import http.server, json, os
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({
            "revision": os.environ["K_REVISION"],
            "service": os.environ["K_SERVICE"],
            "greeting": os.environ.get("GREETING"),
            "secret": os.environ.get("API_KEY"),
            "path": self.path,
        }).encode()
        print(json.dumps({"severity": "WARNING", "message": "served " + self.path}), flush=True)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
print("listening on " + os.environ["PORT"], flush=True)
http.server.ThreadingHTTPServer(("0.0.0.0", int(os.environ["PORT"])), Handler).serve_forever()
"""


def name_of(service_id: str) -> str:
    return f"{PARENT}/services/{service_id}"


def short(resource_name: str) -> str:
    return resource_name.rsplit("/", 1)[-1]


def template(image: str = "us-docker.pkg.dev/p/apps/api:v1", **fields: Any) -> run_v2.RevisionTemplate:
    """A template with one container running `image`; `fields` go to the container."""
    return run_v2.RevisionTemplate(containers=[run_v2.Container(image=image, **fields)])


def app_template(greeting: str = "hello", *, env: list[run_v2.EnvVar] | None = None, **fields: Any) -> Any:
    """The tiny app on the base image, with GREETING=`greeting` plus `env`; `fields` go to the template."""
    container = run_v2.Container(
        image=BASE_IMAGE,
        command=["python3", "-c"],
        args=[APP],
        env=[run_v2.EnvVar(name="GREETING", value=greeting), *(env or [])],
    )
    return run_v2.RevisionTemplate(containers=[container], **fields)


def create(services: Any, service_id: str, spec: run_v2.RevisionTemplate, **fields: Any) -> Any:
    """The operation of creating `service_id` with template `spec`."""
    return services.create_service(
        parent=PARENT, service_id=service_id, service=run_v2.Service(template=spec, **fields)
    )


def allow_unauthenticated(services: Any, service_name: str) -> None:
    """What `gcloud run deploy --allow-unauthenticated` does: bind allUsers to roles/run.invoker."""
    policy = services.get_iam_policy(request={"resource": service_name})
    policy.bindings.append(policy_pb2.Binding(role="roles/run.invoker", members=["allUsers"]))
    services.set_iam_policy(request={"resource": service_name, "policy": policy})


@pytest.fixture
def services(clients: ClientFactory) -> Any:
    return clients.run_services()


@pytest.fixture
def revisions(clients: ClientFactory) -> Any:
    return clients.run_revisions()


@pytest.fixture
def engine_services(engine_clients: ClientFactory) -> Any:
    return engine_clients.run_services()


@pytest.fixture
def engine_revisions(engine_clients: ClientFactory) -> Any:
    return engine_clients.run_revisions()


@pytest.fixture
def containers(engine_emulator: Emulator, docker_client: Any) -> Iterator[Any]:
    """Lists the emulator's containers; afterwards removes any left, even when the test failed before stop()."""
    label = f"doki.emulator.state={engine_emulator.run.state_id}"

    def listing() -> list[Any]:
        return list(docker_client.containers.list(all=True, filters={"label": label}))

    yield listing
    engine_emulator.stop()
    for container in listing():
        container.remove(force=True)
