"""Cloud Run's v1 REST surface (Knative objects) over plain HTTP: the region from the host, the refusals v1 makes in
Google's words, namespaces by project number, label selectors, and v1 bodies mapped to the v2 fields and back."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from google.cloud import run_v2

from doki_cli.emulator.projects import project_number
from doki_cli.emulator.run import knative
from doki_cli.emulator.server import Emulator
from tests.doki_cli.emulator.run.conftest import PROJECT, REGION, name_of

API = "/apis/serving.knative.dev/v1"


class V1:
    """HTTP to the emulator's REST port as gcloud sends it through its proxy: the region before the host."""

    def __init__(self, emulator: Emulator, region: str | None = REGION) -> None:
        host = "run.doki-emulator"
        self.host = f"{region}-{host}" if region else host
        self.base = emulator.rest_url

    def __call__(self, method: str, path: str, body: Any = None, **params: str) -> httpx.Response:
        return httpx.request(
            method, self.base + path, json=body, params=params, headers={"Host": self.host}, timeout=30
        )


def body(name: str = "api", **extra: Any) -> dict[str, Any]:
    """A v1 Service as gcloud sends it (see test_gcloud for the real thing)."""
    service: dict[str, Any] = {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": PROJECT, "annotations": {"run.googleapis.com/client-name": "gcloud"}},
        "spec": {
            "template": {
                "metadata": {
                    "annotations": {"autoscaling.knative.dev/maxScale": "10"},
                    "labels": {"client.knative.dev/nonce": "abcde"},
                },
                "spec": {"containers": [{"image": "us-docker.pkg.dev/p/apps/api:v1"}]},
            }
        },
    }
    for key, value in extra.items():
        service[key] = value
    return service


@pytest.fixture
def v1(emulator: Emulator) -> V1:
    return V1(emulator)


def test_a_v1_create_answers_the_service_at_once_and_the_v2_client_reads_its_annotations_as_fields(
    v1: V1, services: Any
) -> None:
    made = body()
    made["metadata"]["annotations"]["run.googleapis.com/ingress"] = "internal"
    made["spec"]["template"]["metadata"]["annotations"]["run.googleapis.com/cpu-throttling"] = "false"
    answer = v1("POST", f"{API}/namespaces/{PROJECT}/services", made)
    assert answer.status_code == 200, answer.text
    created = answer.json()
    assert created["metadata"]["namespace"] == str(project_number(PROJECT))
    assert created["metadata"]["generation"] == 1
    assert created["spec"]["template"]["metadata"]["labels"] == {"client.knative.dev/nonce": "abcde"}
    assert {c["type"]: c["status"] for c in created["status"]["conditions"]}["Ready"] == "Unknown"

    service = services.get_service(name=name_of("api"))
    assert service.ingress == run_v2.IngressTraffic.INGRESS_TRAFFIC_INTERNAL_ONLY
    assert service.client == "gcloud"
    assert service.template.scaling.max_instance_count == 10
    assert service.template.containers[0].resources.cpu_idle is False
    assert dict(service.template.labels) == {}  # the nonce is v1's alone: v2's label rules refuse its key
    assert dict(service.annotations) == {}


def test_an_annotation_on_the_wrong_kind_is_refused_in_cloud_runs_words(v1: V1) -> None:
    made = body()
    made["metadata"]["annotations"]["run.googleapis.com/secrets"] = "a:projects/1/secrets/b"
    answer = v1("POST", f"{API}/namespaces/{PROJECT}/services", made)
    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == (
        "metadata.annotations: Annotation 'run.googleapis.com/secrets' is not supported on resources of kind "
        "'Service'. Supported kinds are: Revision, Execution"
    )


def test_an_unknown_cloud_run_annotation_and_an_unknown_field_are_refused(v1: V1) -> None:
    made = body()
    made["spec"]["template"]["metadata"]["annotations"]["run.googleapis.com/warp-drive"] = "on"
    refused = v1("POST", f"{API}/namespaces/{PROJECT}/services", made).json()["error"]
    assert refused["message"] == (
        "spec.template.metadata.annotations: Annotation 'run.googleapis.com/warp-drive' is not supported."
    )
    made = body()
    made["spec"]["template"]["spec"]["containers"][0]["warpDrive"] = True
    refused = v1("POST", f"{API}/namespaces/{PROJECT}/services", made).json()["error"]
    assert refused["status"] == "INVALID_ARGUMENT"
    assert "warpDrive" in refused["message"]


def test_a_replace_with_a_stale_resource_version_is_refused_and_changes_nothing(v1: V1, services: Any) -> None:
    created = v1("POST", f"{API}/namespaces/{PROJECT}/services", body()).json()
    stale = dict(created)
    stale["metadata"] = {**created["metadata"], "resourceVersion": "stale"}
    answer = v1("PUT", f"{API}/namespaces/{PROJECT}/services/api", stale)
    assert (answer.status_code, answer.json()["error"]["status"]) == (409, "ABORTED")
    assert services.get_service(name=name_of("api")).generation == 1


def test_a_replace_with_a_new_nonce_alone_makes_a_new_revision_labelled_with_it(v1: V1, services: Any) -> None:
    created = v1("POST", f"{API}/namespaces/{PROJECT}/services", body()).json()
    created["spec"]["template"]["metadata"]["labels"] = {"client.knative.dev/nonce": "fghij"}
    replaced = v1("PUT", f"{API}/namespaces/{PROJECT}/services/api", created).json()
    assert replaced["metadata"]["generation"] == 2
    found = v1("GET", f"{API}/namespaces/{PROJECT}/revisions", labelSelector="client.knative.dev/nonce = fghij")
    (revision,) = found.json()["items"]
    assert revision["metadata"]["name"] == replaced["status"]["latestCreatedRevisionName"]
    assert revision["metadata"]["labels"]["serving.knative.dev/service"] == "api"
    # Unchanged, the same body makes nothing new.
    again = v1("PUT", f"{API}/namespaces/{PROJECT}/services/api", replaced).json()
    assert again["metadata"]["generation"] == 2


def test_a_namespace_may_name_the_project_by_its_number_as_cloud_run_answers_it(v1: V1) -> None:
    v1("POST", f"{API}/namespaces/{PROJECT}/services", body())
    by_number = v1("GET", f"{API}/namespaces/{project_number(PROJECT)}/services/api")
    assert by_number.status_code == 200
    assert by_number.json()["metadata"]["name"] == "api"


def test_the_global_endpoint_lists_every_region_and_refuses_to_get_one_service(emulator: Emulator, v1: V1) -> None:
    v1("POST", f"{API}/namespaces/{PROJECT}/services", body("api"))
    V1(emulator, "europe-west1")("POST", f"{API}/namespaces/{PROJECT}/services", body("web"))
    everywhere = V1(emulator, None)
    listed = everywhere("GET", f"{API}/namespaces/{PROJECT}/services").json()
    assert [item["metadata"]["name"] for item in listed["items"]] == ["web", "api"]  # by name: europe first
    assert [i["metadata"]["name"] for i in v1("GET", f"{API}/namespaces/{PROJECT}/services").json()["items"]] == ["api"]
    refused = everywhere("GET", f"{API}/namespaces/{PROJECT}/services/api")
    assert refused.status_code == 400
    assert "regional endpoint" in refused.json()["error"]["message"]


def test_a_missing_service_is_404_and_test_iam_permissions_answers_before_it_exists(v1: V1) -> None:
    missing = v1("GET", f"{API}/namespaces/{PROJECT}/services/nope")
    assert missing.status_code == 404
    asked = v1(
        "POST",
        f"/v1/projects/{PROJECT}/locations/{REGION}/services/nope:testIamPermissions",
        {"permissions": ["run.services.setIamPolicy"]},
    )
    assert asked.json() == {"permissions": ["run.services.setIamPolicy"]}


def test_a_v2_service_renders_as_v1_and_reads_back_to_the_same_spec() -> None:
    service = run_v2.Service(
        name=name_of("api"),
        description="the api",
        labels={"team": "web"},
        annotations={"doki.dev/config": "abc"},
        ingress=run_v2.IngressTraffic.INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER,
        invoker_iam_disabled=True,
        template=run_v2.RevisionTemplate(
            revision="api-v2",
            labels={"tier": "one"},
            scaling=run_v2.RevisionScaling(min_instance_count=1, max_instance_count=5),
            service_account="api@p.iam.gserviceaccount.com",
            max_instance_request_concurrency=40,
            containers=[
                run_v2.Container(
                    image="us-docker.pkg.dev/p/apps/api:v1",
                    env=[
                        run_v2.EnvVar(name="A", value="1"),
                        run_v2.EnvVar(
                            name="B",
                            value_source=run_v2.EnvVarSource(
                                secret_key_ref=run_v2.SecretKeySelector(secret="b", version="latest")
                            ),
                        ),
                    ],
                    resources=run_v2.ResourceRequirements(limits={"memory": "1Gi"}, cpu_idle=True),
                )
            ],
        ),
        traffic=[run_v2.TrafficTarget(type_=knative.validation.REVISION, revision="api-v1", percent=100)],
    )
    rendered = knative.service_to_v1(service, "123", {"client.knative.dev/nonce": "x"})
    annotations = rendered["metadata"]["annotations"]
    assert annotations["run.googleapis.com/ingress"] == "internal-and-cloud-load-balancing"
    assert annotations["run.googleapis.com/invoker-iam-disabled"] == "true"
    assert annotations["run.googleapis.com/description"] == "the api"
    env = rendered["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env[1] == {"name": "B", "valueFrom": {"secretKeyRef": {"name": "b", "key": "latest"}}}
    assert rendered["spec"]["traffic"] == [{"percent": 100, "revisionName": "api-v1"}]

    back, labels = knative.service_from_v1(rendered, name_of("api"))
    assert labels == {"client.knative.dev/nonce": "x"}
    for field in ("description", "labels", "annotations", "ingress", "invoker_iam_disabled", "template", "traffic"):
        assert getattr(back, field) == getattr(service, field), field
