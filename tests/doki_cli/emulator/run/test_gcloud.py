"""`gcloud run`, Google's own client, against the emulator's Cloud Run v1 REST surface, with real containers.

gcloud speaks v1 (Knative's objects) to the region's host and waits on the conditions it reads back; the Python
client speaks v2 over gRPC. Both see one set of services: what gcloud makes, the v2 client reads with every flag in
place, and what the v2 client makes, gcloud updates without losing anything.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.api_core import exceptions
from google.cloud import run_v2

from doki_cli.emulator.server import Emulator
from tests.doki_cli.emulator.run.conftest import APP, PROJECT, REGION, app_template, create, name_of, short
from tests.helpers import BASE_IMAGE
from tests.helpers.gcloud import Gcloud

pytestmark = [pytest.mark.docker, pytest.mark.gcloud]


@pytest.fixture
def gcloud(gcloud_binary: str, engine_emulator: Emulator, tmp_path: Path) -> Gcloud:
    return Gcloud.for_emulator(gcloud_binary, engine_emulator, tmp_path / "gcloud-config", PROJECT)


def deploy_app(gcloud: Gcloud, service: str = "api", *flags: str) -> str:
    """`gcloud run deploy` of the tiny app (conftest) with `flags`, which must succeed; what it printed on stderr."""
    # ^|^ makes | gcloud's list delimiter: the app's source has commas.
    done = gcloud.run(
        "run", "deploy", service, "--image", BASE_IMAGE, "--command=python3", f"--args=^|^-c|{APP}",
        "--region", REGION, *flags,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    return done.stderr.decode()


def answer(url: str) -> dict[str, Any]:
    response = httpx.get(url + "/", timeout=30)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_gcloud_run_deploy_with_the_guides_flags_makes_a_service_the_v2_client_reads_flag_for_flag(
    gcloud: Gcloud, engine_services: Any, containers: Callable[[], list[Any]]
) -> None:
    done = deploy_app(
        gcloud, "api", "--allow-unauthenticated", "--port", "8080", "--memory", "1Gi", "--cpu", "1",
        "--min-instances", "1", "--max-instances", "10", "--timeout", "300", "--set-env-vars", "GREETING=hi",
    )  # fmt: skip
    service = engine_services.get_service(name=name_of("api"))
    assert f"Service URL: {service.uri}" in done
    template = service.template
    container = template.containers[0]
    assert container.image == BASE_IMAGE
    assert list(container.command) == ["python3"]
    assert [(e.name, e.value) for e in container.env] == [("GREETING", "hi")]
    assert dict(container.resources.limits) == {"cpu": "1", "memory": "1Gi"}
    assert container.resources.cpu_idle is True  # gcloud's default: CPU only during requests
    assert container.resources.startup_cpu_boost is True  # gcloud turns the boost on
    assert [(p.name, p.container_port) for p in container.ports] == [("http1", 8080)]
    assert (template.scaling.min_instance_count, template.scaling.max_instance_count) == (1, 10)
    assert template.timeout.total_seconds() == 300
    assert service.client == "gcloud"
    assert service.ingress == run_v2.IngressTraffic.INGRESS_TRAFFIC_ALL
    assert service.latest_ready_revision == service.latest_created_revision
    policy = engine_services.get_iam_policy(request={"resource": service.name})
    assert [(b.role, list(b.members)) for b in policy.bindings] == [("roles/run.invoker", ["allUsers"])]
    read_back = gcloud.json("run", "services", "get-iam-policy", "api", "--region", REGION)
    assert read_back["bindings"] == [{"members": ["allUsers"], "role": "roles/run.invoker"}]
    served = answer(service.uri)
    assert (served["revision"], served["greeting"]) == (short(service.latest_ready_revision), "hi")


def test_gcloud_describes_a_service_in_v1_shape_with_its_conditions_traffic_and_url(
    gcloud: Gcloud, engine_services: Any, containers: Callable[[], list[Any]]
) -> None:
    deploy_app(gcloud, "api", "--min-instances", "1", "--no-allow-unauthenticated")
    v2 = engine_services.get_service(name=name_of("api"))
    described = gcloud.json("run", "services", "describe", "api", "--region", REGION)
    assert (described["apiVersion"], described["kind"]) == ("serving.knative.dev/v1", "Service")
    metadata = described["metadata"]
    assert metadata["name"] == "api"
    assert metadata["labels"]["cloud.googleapis.com/location"] == REGION
    assert metadata["annotations"]["run.googleapis.com/ingress"] == "all"
    assert metadata["annotations"]["run.googleapis.com/ingress-status"] == "all"
    assert metadata["generation"] == 1
    template = described["spec"]["template"]
    assert template["metadata"]["annotations"]["autoscaling.knative.dev/minScale"] == "1"
    assert template["spec"]["containers"][0]["image"] == BASE_IMAGE
    assert template["spec"]["serviceAccountName"] == v2.template.service_account
    status = described["status"]
    assert status["observedGeneration"] == 1
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "Ready": "True",
        "RoutesReady": "True",
        "ConfigurationsReady": "True",
    }
    assert status["url"] == v2.uri
    assert status["latestReadyRevisionName"] == short(v2.latest_ready_revision)
    assert status["traffic"] == [
        {"revisionName": short(v2.latest_ready_revision), "percent": 100, "latestRevision": True}
    ]
    assert (
        gcloud("run", "services", "describe", "api", "--region", REGION, "--format=value(status.url)")
        == (v2.uri + "\n").encode()
    )
    # Private: the URL refuses a caller without a token, as Cloud Run does, until gcloud makes it public.
    assert httpx.get(v2.uri + "/", timeout=30).status_code == 403
    gcloud(
        "run", "services", "add-iam-policy-binding", "api", "--region", REGION,
        "--member=allUsers", "--role=roles/run.invoker",
    )  # fmt: skip
    assert answer(v2.uri)["revision"] == short(v2.latest_ready_revision)


def test_gcloud_updates_make_revisions_move_and_split_traffic_and_delete_the_service(
    gcloud: Gcloud, engine_services: Any, containers: Callable[[], list[Any]]
) -> None:
    deploy_app(gcloud, "api", "--allow-unauthenticated", "--set-env-vars", "GREETING=one")
    first = engine_services.get_service(name=name_of("api")).latest_ready_revision
    gcloud("run", "services", "update", "api", "--region", REGION, "--update-env-vars", "GREETING=two")
    service = engine_services.get_service(name=name_of("api"))
    second = service.latest_ready_revision
    assert second != first
    assert answer(service.uri)["greeting"] == "two"

    gcloud("run", "services", "update-traffic", "api", "--region", REGION, f"--to-revisions={short(first)}=100")
    service = engine_services.get_service(name=name_of("api"))
    assert [(t.revision, t.percent) for t in service.traffic] == [(short(first), 100)]
    assert answer(service.uri)["greeting"] == "one"
    listed = gcloud.json("run", "revisions", "list", "--service", "api", "--region", REGION)
    assert [(r["metadata"]["name"], _active(r)) for r in listed] == [(short(second), "False"), (short(first), "True")]
    described = gcloud.json("run", "revisions", "describe", short(second), "--region", REGION)
    assert described["spec"]["containers"][0]["env"] == [{"name": "GREETING", "value": "two"}]

    gcloud("run", "services", "update-traffic", "api", "--region", REGION, "--to-latest")
    assert answer(engine_services.get_service(name=name_of("api")).uri)["greeting"] == "two"

    gcloud("run", "services", "delete", "api", "--region", REGION)
    with pytest.raises(exceptions.NotFound):
        engine_services.get_service(name=name_of("api"))
    assert gcloud.json("run", "services", "list", "--region", REGION) == []


def _active(revision: dict[str, Any]) -> str:
    return next(c["status"] for c in revision["status"]["conditions"] if c["type"] == "Active")


def test_gcloud_updates_a_service_the_v2_client_made_and_keeps_what_it_does_not_change(
    gcloud: Gcloud, engine_services: Any, containers: Callable[[], list[Any]]
) -> None:
    spec = app_template("kept")
    spec.labels["team"] = "web"
    create(engine_services, "api", spec, labels={"owner": "doki"}, annotations={"doki.dev/config": "abc"}).result(
        timeout=120
    )
    gcloud("run", "services", "update", "api", "--region", REGION, "--memory", "1Gi", "--cpu", "2")
    service = engine_services.get_service(name=name_of("api"))
    container = service.template.containers[0]
    assert dict(container.resources.limits) == {"cpu": "2", "memory": "1Gi"}
    assert [(e.name, e.value) for e in container.env] == [("GREETING", "kept")]
    assert dict(service.labels) == {"owner": "doki"}
    assert dict(service.annotations) == {"doki.dev/config": "abc"}
    assert dict(service.template.labels) == {"team": "web"}
    assert service.latest_ready_revision == service.latest_created_revision
    assert service.generation == 2


def test_gcloud_labels_a_service_it_read_back_and_the_v2_client_sees_them_on_service_and_template(
    gcloud: Gcloud, engine_services: Any, containers: Callable[[], list[Any]]
) -> None:
    deploy_app(gcloud, "api")
    gcloud("run", "services", "update", "api", "--region", REGION, "--update-labels", "team=web")
    service = engine_services.get_service(name=name_of("api"))
    assert (service.labels["team"], service.template.labels["team"]) == ("web", "web")
    assert service.latest_ready_revision == service.latest_created_revision


def test_gcloud_reads_cloud_sql_direct_vpc_and_storage_volumes_as_v1_holds_them_and_keeps_them_on_update(
    gcloud: Gcloud, engine_services: Any, containers: Callable[[], list[Any]]
) -> None:
    # What doki writes for cloudsql_instances, [service.vpc] with a network and [[service.volumes]] of a bucket.
    spec = app_template(
        "kept",
        volumes=[
            run_v2.Volume(name="cloudsql", cloud_sql_instance={"instances": [f"{PROJECT}:{REGION}:db"]}),
            run_v2.Volume(name="assets", gcs={"bucket": "doki-assets", "read_only": True}),
        ],
        vpc_access={
            "network_interfaces": [{"network": "default", "subnetwork": "apps", "tags": ["api"]}],
            "egress": "ALL_TRAFFIC",
        },
    )
    spec.containers[0].volume_mounts = [
        run_v2.VolumeMount(name="cloudsql", mount_path="/cloudsql"),
        run_v2.VolumeMount(name="assets", mount_path="/assets"),
    ]
    create(engine_services, "api", spec).result(timeout=120)
    before = engine_services.get_service(name=name_of("api")).template

    described = gcloud.json("run", "services", "describe", "api", "--region", REGION)

    template = described["spec"]["template"]
    annotations = template["metadata"]["annotations"]
    assert annotations["run.googleapis.com/cloudsql-instances"] == f"{PROJECT}:{REGION}:db"
    assert json.loads(annotations["run.googleapis.com/network-interfaces"]) == [
        {"network": "default", "subnetwork": "apps", "tags": ["api"]}
    ]
    assert annotations["run.googleapis.com/vpc-access-egress"] == "all-traffic"
    assert template["spec"]["volumes"] == [
        {
            "name": "assets",
            "csi": {
                "driver": "gcsfuse.run.googleapis.com",
                "readOnly": True,
                "volumeAttributes": {"bucketName": "doki-assets"},
            },
        }
    ]
    assert template["spec"]["containers"][0]["volumeMounts"] == [{"name": "assets", "mountPath": "/assets"}]

    gcloud("run", "services", "update", "api", "--region", REGION, "--update-labels", "team=web")

    after = engine_services.get_service(name=name_of("api")).template
    assert after.labels["team"] == "web"
    assert (after.volumes, after.vpc_access, after.containers[0].volume_mounts) == (
        before.volumes,
        before.vpc_access,
        before.containers[0].volume_mounts,
    )


def test_gcloud_deploy_with_cloud_sql_and_direct_vpc_flags_makes_what_the_v2_client_reads_as_doki_writes_it(
    gcloud: Gcloud, engine_services: Any, containers: Callable[[], list[Any]]
) -> None:
    deploy_app(
        gcloud, "api", "--add-cloudsql-instances", "db", "--network", "default", "--subnet", "apps",
        "--network-tags", "api", "--vpc-egress", "all-traffic",
    )  # fmt: skip

    template = engine_services.get_service(name=name_of("api")).template

    # gcloud fills in the project and region of a bare instance, as doki.toml's cloudsql_instances does.
    assert [run_v2.Volume.to_dict(v)["cloud_sql_instance"] for v in template.volumes] == [
        {"instances": [f"{PROJECT}:{REGION}:db"]}
    ]
    assert [(m.name, m.mount_path) for m in template.containers[0].volume_mounts] == [("cloudsql", "/cloudsql")]
    assert template.vpc_access == run_v2.VpcAccess(
        network_interfaces=[{"network": "default", "subnetwork": "apps", "tags": ["api"]}],
        egress=run_v2.VpcAccess.VpcEgress.ALL_TRAFFIC,
    )
