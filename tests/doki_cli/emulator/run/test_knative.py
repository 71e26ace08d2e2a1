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


def test_a_v1_read_then_replace_changes_nothing_even_of_what_v1_cannot_show(v1: V1, services: Any) -> None:
    template = run_v2.RevisionTemplate(
        containers=[run_v2.Container(image="us-docker.pkg.dev/p/apps/api:v1")],
        health_check_disabled=True,
        node_selector=run_v2.NodeSelector(accelerator="nvidia-l4"),
        volumes=[run_v2.Volume(name="scratch", empty_dir=run_v2.EmptyDirVolumeSource(medium="MEMORY"))],
    )
    services.create_service(
        parent=f"projects/{PROJECT}/locations/{REGION}",
        service_id="api",
        service=run_v2.Service(
            template=template,
            scaling=run_v2.ServiceScaling(min_instance_count=1, max_instance_count=7),
            launch_stage="BETA",  # Cloud Run's service-level maximum is a BETA feature
            binary_authorization=run_v2.BinaryAuthorization(use_default=True, breakglass_justification="incident"),
        ),
    )
    before = services.get_service(name=name_of("api"))
    read = v1("GET", f"{API}/namespaces/{PROJECT}/services/api").json()
    assert read["spec"]["template"]["spec"]["volumes"] == [{"name": "scratch", "emptyDir": {"medium": "Memory"}}]
    assert read["metadata"]["annotations"]["run.googleapis.com/binary-authorization"] == "default"
    replaced = v1("PUT", f"{API}/namespaces/{PROJECT}/services/api", read)
    assert replaced.status_code == 200, replaced.text
    after = services.get_service(name=name_of("api"))
    assert after.generation == before.generation
    assert (after.template, after.scaling, after.binary_authorization) == (
        before.template,
        before.scaling,
        before.binary_authorization,
    )


def test_labels_cloud_run_sets_are_ignored_when_a_client_sends_them_back_in_the_template(v1: V1, services: Any) -> None:
    # What gcloud's --update-labels sends: the service's labels, read back with Cloud Run's own, on the template too.
    made = body()
    made["metadata"]["labels"] = {"cloud.googleapis.com/location": REGION, "team": "web"}
    made["spec"]["template"]["metadata"]["labels"] = {"cloud.googleapis.com/location": REGION, "team": "web"}
    answer = v1("POST", f"{API}/namespaces/{PROJECT}/services", made)
    assert answer.status_code == 200, answer.text
    service = services.get_service(name=name_of("api"))
    assert (dict(service.labels), dict(service.template.labels)) == ({"team": "web"}, {"team": "web"})


def test_traffic_names_the_latest_revision_unless_a_revision_is_named_and_never_both(v1: V1, services: Any) -> None:
    made = body(spec={**body()["spec"], "traffic": [{"percent": 100}]})
    assert v1("POST", f"{API}/namespaces/{PROJECT}/services", made).status_code == 200
    (target,) = services.get_service(name=name_of("api")).traffic
    assert target.type_ == run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST
    both = body(
        "web", spec={**body()["spec"], "traffic": [{"percent": 100, "latestRevision": True, "revisionName": "x"}]}
    )
    refused = v1("POST", f"{API}/namespaces/{PROJECT}/services", both).json()["error"]
    assert refused["message"] == "spec.traffic[0].latestRevision: This field must be false if RevisionName is set."


def test_a_value_of_the_wrong_type_is_a_400_naming_the_field_not_an_emulator_error(v1: V1) -> None:
    made = body()
    made["spec"]["template"]["spec"]["timeoutSeconds"] = "five minutes"
    answer = v1("POST", f"{API}/namespaces/{PROJECT}/services", made)
    assert answer.status_code == 400
    assert "spec.template.spec.timeoutSeconds" in answer.json()["error"]["message"]


def test_a_host_that_names_no_cloud_run_region_is_not_found(emulator: Emulator) -> None:
    answer = V1(emulator, "moon-base1")("GET", f"{API}/namespaces/{PROJECT}/services")
    assert answer.status_code == 404
    assert answer.json()["error"]["message"] == (
        "Location moon-base1 is not a Cloud Run region (https://cloud.google.com/run/docs/locations)."
    )


def test_cloud_runs_locations_answer_only_on_its_endpoint(emulator: Emulator, v1: V1) -> None:
    listed = V1(emulator, None)("GET", f"/v1/projects/{PROJECT}/locations").json()["locations"]
    assert {"name": f"projects/{PROJECT}/locations/{REGION}", "locationId": REGION} in listed
    elsewhere = httpx.get(f"{emulator.rest_url}/v1/projects/{PROJECT}/locations", timeout=30)
    assert elsewhere.status_code == 404


def test_a_disabled_cloud_run_api_refuses_a_namespace_named_by_the_projects_number(tmp_path: Any) -> None:
    from doki_cli.emulator.server import EmulatorConfig

    with Emulator(EmulatorConfig(disabled_apis=("run.googleapis.com",))) as emulator:
        refused = V1(emulator)("GET", f"{API}/namespaces/{project_number(PROJECT)}/services")
        assert refused.status_code == 403
        assert refused.json()["error"]["details"][0]["reason"] == "SERVICE_DISABLED"


def test_a_v1_read_then_replace_keeps_cloud_sql_where_it_stands_and_storage_mount_options(
    v1: V1, services: Any
) -> None:
    # Cloud SQL's volume second, mounted by a sidecar and not at /cloudsql's place in the list; a bucket with options.
    serving = run_v2.Container(
        image="us-docker.pkg.dev/p/apps/api:v1",
        ports=[run_v2.ContainerPort(container_port=8080)],
        volume_mounts=[
            run_v2.VolumeMount(name="assets", mount_path="/assets"),
            run_v2.VolumeMount(name="cloudsql", mount_path="/cloudsql"),
        ],
    )
    proxy = run_v2.Container(
        name="proxy", image="us-docker.pkg.dev/p/apps/proxy:v1", volume_mounts=[{"name": "cloudsql"}]
    )
    template = run_v2.RevisionTemplate(
        containers=[serving, proxy],
        volumes=[
            run_v2.Volume(name="assets", gcs={"bucket": "doki-assets", "mount_options": ["implicit-dirs", "uid=1000"]}),
            run_v2.Volume(name="cloudsql", cloud_sql_instance={"instances": [f"{PROJECT}:{REGION}:db"]}),
        ],
    )
    services.create_service(
        parent=f"projects/{PROJECT}/locations/{REGION}", service_id="api", service=run_v2.Service(template=template)
    )
    before = services.get_service(name=name_of("api"))

    read = v1("GET", f"{API}/namespaces/{PROJECT}/services/api").json()
    volumes = read["spec"]["template"]["spec"]["volumes"]
    assert volumes == [
        {
            "name": "assets",
            "csi": {
                "driver": "gcsfuse.run.googleapis.com",
                "readOnly": False,
                "volumeAttributes": {"bucketName": "doki-assets", "mountOptions": "implicit-dirs,uid=1000"},
            },
        }
    ]
    replaced = v1("PUT", f"{API}/namespaces/{PROJECT}/services/api", read)

    assert replaced.status_code == 200, replaced.text
    after = services.get_service(name=name_of("api"))
    assert (after.generation, after.template) == (before.generation, before.template)


def test_a_v1_replace_without_the_network_interfaces_annotation_ends_direct_vpc_egress(v1: V1, services: Any) -> None:
    template = run_v2.RevisionTemplate(
        containers=[run_v2.Container(image="us-docker.pkg.dev/p/apps/api:v1")],
        vpc_access={"network_interfaces": [{"network": "default"}]},
    )
    services.create_service(
        parent=f"projects/{PROJECT}/locations/{REGION}", service_id="api", service=run_v2.Service(template=template)
    )
    read = v1("GET", f"{API}/namespaces/{PROJECT}/services/api").json()
    # What gcloud's --clear-network sends: the annotation gone.
    del read["spec"]["template"]["metadata"]["annotations"]["run.googleapis.com/network-interfaces"]

    replaced = v1("PUT", f"{API}/namespaces/{PROJECT}/services/api", read)

    assert replaced.status_code == 200, replaced.text
    assert "vpc_access" not in services.get_service(name=name_of("api")).template


@pytest.mark.parametrize("value", ['[{"network": 5}]', '[{"tags": "abc"}]', '[{"net": "default"}]', "default"])
def test_a_network_interfaces_annotation_that_is_not_a_list_of_interfaces_is_refused(v1: V1, value: str) -> None:
    made = body()
    made["spec"]["template"]["metadata"]["annotations"] = {"run.googleapis.com/network-interfaces": value}

    answer = v1("POST", f"{API}/namespaces/{PROJECT}/services", made)

    assert answer.status_code == 400, answer.text
    assert (
        "Annotation 'run.googleapis.com/network-interfaces' must be a JSON list of network interfaces, each with a "
        "network, a subnetwork and tags." in answer.json()["error"]["message"]
    )
