"""Cloud Run's documented limits on a service spec, through the official client: each refused at the limit plus one
with its own message, and accepted at the limit (validation.py cites where each comes from)."""

from __future__ import annotations

from typing import Any

import pytest
from google.api_core import exceptions
from google.cloud import run_v2

from tests.doki_cli.emulator.run.conftest import PARENT, name_of, template

SHAPE = "Violation in CreateServiceRequest.service"
C0 = f"{SHAPE}.template.containers[0]"
BELOW_ONE_CPU = (
    "template.containers.resources.limits.cpu: Invalid value specified for cpu. Total cpu < 1 is not supported"
)
LABEL_KEY = (
    "At least one label does not conform to GCP naming style. Label key '{}' violates format constraints. The key "
    "must start with a lowercase character, can only contain lowercase letters, numeric characters, underscores and "
    "dashes. The key can be at most 63 characters long. International characters are allowed."
)
LABEL_VALUE = (
    "At least one label does not conform to GCP naming style. Label value '{}' violates format constraints. The value "
    "can only contain lowercase letters, numeric characters, underscores and dashes. The value can be at most 63 "
    "characters long. International characters are allowed."
)


def _spec(*containers: dict[str, Any], **fields: Any) -> run_v2.Service:
    """A service of these containers (the first takes port 8080 when there are several); `fields` go to the
    template."""
    listed = [dict(c) for c in containers] or [{"image": "a"}]
    if len(listed) > 1:
        listed[0].setdefault("ports", [{"container_port": 8080}])
    return run_v2.Service(template=run_v2.RevisionTemplate(containers=listed, **fields))


def _env(count: int) -> list[dict[str, str]]:
    return [{"name": f"V{i}", "value": "x"} for i in range(count)]


def _probe(**fields: Any) -> dict[str, Any]:
    return {"tcp_socket": {}, **fields}


SIDECAR = {"image": "b", "name": "side"}
CLOUD_SQL = {"name": "cloudsql", "cloud_sql_instance": {"instances": ["p:us-central1:db"]}}
GEN1 = run_v2.ExecutionEnvironment.EXECUTION_ENVIRONMENT_GEN1
MEMORY = {"name": "scratch", "empty_dir": {}}

REFUSED: list[tuple[str, run_v2.Service, str]] = [
    # -- existing rules that had no test of their own
    (
        "a system label on the template",
        _spec(labels={"run.googleapis.com/x": "y"}),
        f"{SHAPE}.template.labels[run.googleapis.com/x]: system labels are not supported in Cloud Run API v2.",
    ),
    (
        "eleven containers",
        _spec(*[{"image": "a"}] * 11),
        f"{SHAPE}.template.containers: at most 10 containers are allowed.",
    ),
    (
        "an env var without a name",
        _spec({"image": "a", "env": [{"value": "1"}]}),
        f"{C0}.env[0].name: required field not present.",
    ),
    # -- the service
    (
        "a description over 512 characters",
        run_v2.Service(template=template(), description="d" * 513),
        f"{SHAPE}.description: must be at most 512 characters, got 513.",
    ),
    (
        "65 labels",
        run_v2.Service(template=template(), labels={f"k{i}": "v" for i in range(65)}),
        "labels: at most 64 labels are allowed, got 65.",
    ),
    ("a label key in capitals", run_v2.Service(template=template(), labels={"Team": "core"}), LABEL_KEY.format("Team")),
    (
        "a label key starting with a digit",
        run_v2.Service(template=template(), labels={"1team": "x"}),
        LABEL_KEY.format("1team"),
    ),
    (
        "a label key of 64 characters",
        run_v2.Service(template=template(), labels={"k" * 64: "x"}),
        LABEL_KEY.format("k" * 64),
    ),
    (
        "a label value with a space",
        run_v2.Service(template=template(), labels={"team": "core team"}),
        LABEL_VALUE.format("core team"),
    ),
    ("a template label value of 64 characters", _spec(labels={"team": "v" * 64}), LABEL_VALUE.format("v" * 64)),
    (
        "an annotation key that is no qualified name",
        run_v2.Service(template=template(), annotations={"bad key!": "x"}),
        f"{SHAPE}.annotations[bad key!]: name part must consist of alphanumeric characters, '-', '_' or '.', and must "
        "start and end with an alphanumeric character, at most 63 characters, after an optional DNS subdomain prefix "
        "and '/'.",
    ),
    (
        "annotations over 256 KiB",
        _spec(annotations={"k": "v" * 262144}),
        f"{SHAPE}.template.annotations: may not have more than 262144 bytes in all, got 262145.",
    ),
    # -- environment
    (
        "1001 env vars",
        _spec({"image": "a", "env": _env(1001)}),
        f"{C0}.env: at most 1000 environment variables are allowed, got 1001.",
    ),
    (
        "an env name with =",
        _spec({"image": "a", "env": [{"name": "A=B", "value": "1"}]}),
        f"{C0}.env[0].name: Environment variable keys cannot contain `=`.",
    ),
    (
        "an env name starting X_GOOGLE_",
        _spec({"image": "a", "env": [{"name": "X_GOOGLE_MODE", "value": "1"}]}),
        f"{C0}.env[0].name: Environment variable keys that start with `X_GOOGLE_` are reserved for use by deployment "
        "tools and cannot be specified manually.",
    ),
    (
        "an env name over 32768 characters",
        _spec({"image": "a", "env": [{"name": "A" * 32769, "value": "1"}]}),
        f"{C0}.env[0].name: length cannot exceed 32768.",
    ),
    (
        "an env value over 32768 bytes",
        _spec({"image": "a", "env": [{"name": "A", "value": "é" * 16385}]}),
        f"{C0}.env[0].value: length cannot exceed 32768.",
    ),
    (
        "PORT in the ingress container of several",
        _spec(
            {"image": "a", "ports": []},
            {"image": "b", "ports": [{"container_port": 8080}], "env": [{"name": "PORT", "value": "1"}]},
        ),
        # The first container has no port here: the second is the ingress container.
        "template.containers[1].env: The following reserved env names were provided: PORT. These values are "
        "automatically set by the system.",
    ),
    (
        "K_SERVICE in a sidecar",
        _spec({"image": "a"}, {**SIDECAR, "env": [{"name": "K_SERVICE", "value": "x"}]}),
        "template.containers[1].env: The following reserved env names were provided: K_SERVICE. These values are "
        "automatically set by the system.",
    ),
    # -- ports and names
    (
        "a port named http2",
        _spec({"image": "a", "ports": [{"name": "http2", "container_port": 8080}]}),
        f"{C0}.ports[0].name: Port name http2 is not allowed. Name must be empty, or one of: 'h2c', 'http1'.",
    ),
    (
        "a container name that is no DNS label",
        _spec({"image": "a", "name": "Web_1"}),
        "template.containers[0].name: Invalid container name 'Web_1'. Must conform to RFC 1123: only lowercase "
        "letters, digits, hyphens, and periods are allowed, must begin and end with a letter or digit, and be less "
        "than 64 characters",
    ),
    (
        "a container name of 64 characters",
        _spec({"image": "a", "name": "n" * 64}),
        f"template.containers[0].name: Invalid container name '{'n' * 64}'. Must conform to RFC 1123: only lowercase "
        "letters, digits, hyphens, and periods are allowed, must begin and end with a letter or digit, and be less "
        "than 64 characters",
    ),
    (
        "two containers of one name",
        _spec({"image": "a", "name": "side"}, SIDECAR),
        'template.containers[1].name: Duplicate value: "side"',
    ),
    # -- depends_on
    (
        "depending on a container that is not there",
        _spec({"image": "a", "depends_on": ["cache"]}, SIDECAR),
        "template.containers[0].depends_on: Dependent container 'cache' is not another container of the revision "
        "template.",
    ),
    (
        "a container depending on itself",
        _spec({"image": "a", "name": "web", "depends_on": ["web"]}, SIDECAR),
        "template.containers[0].depends_on: Dependent container 'web' is not another container of the revision "
        "template.",
    ),
    (
        "depending on a sidecar without a startup probe",
        _spec({"image": "a", "depends_on": ["side"]}, SIDECAR),
        "template.containers[0].depends_on: Dependent container 'side' must have startup probe specified",
    ),
    # -- volumes
    (
        "a volume without a name",
        _spec(volumes=[{"empty_dir": {}}]),
        f"{SHAPE}.template.volumes[0].name: required field not present.",
    ),
    (
        "two volumes of one name",
        _spec(volumes=[MEMORY, MEMORY]),
        f'{SHAPE}.template.volumes[1].name: duplicate volume name "scratch"',
    ),
    (
        "a mount of no volume",
        _spec({"image": "a", "volume_mounts": [{"name": "cache", "mount_path": "/cache"}]}, volumes=[MEMORY]),
        f"{C0}.volume_mounts[0].name: volumeMount has no matching volume",
    ),
    (
        "a mount without a path",
        _spec({"image": "a", "volume_mounts": [{"name": "scratch"}]}, volumes=[MEMORY]),
        f"{C0}.volume_mounts[0].mount_path: required field not present.",
    ),
    (
        "a mount path with a colon",
        _spec({"image": "a", "volume_mounts": [{"name": "scratch", "mount_path": "/a:b"}]}, volumes=[MEMORY]),
        f"{C0}.volume_mounts[0].mount_path: must not contain ':', got '/a:b'.",
    ),
    (
        "a relative mount path",
        _spec({"image": "a", "volume_mounts": [{"name": "scratch", "mount_path": "data"}]}, volumes=[MEMORY]),
        f"{C0}.volume_mounts[0].mount_path: invalid value: data: must be an absolute path.",
    ),
    (
        "two mounts at one path",
        _spec(
            {
                "image": "a",
                "volume_mounts": [{"name": "scratch", "mount_path": "/d"}, {"name": "db", "mount_path": "/d/"}],
            },
            volumes=[MEMORY, {"name": "db", "empty_dir": {}}],
        ),
        f'{C0}.volume_mounts[1].mount_path: invalid value: "/d/" must be unique',
    ),
    (
        "a Cloud SQL volume mounted elsewhere than /cloudsql",
        _spec({"image": "a", "volume_mounts": [{"name": "cloudsql", "mount_path": "/db"}]}, volumes=[CLOUD_SQL]),
        f"{C0}.volume_mounts[0].mount_path: a Cloud SQL volume is mounted at /cloudsql or with no path, got '/db'.",
    ),
    (
        "a Cloud SQL volume under another name",
        _spec(volumes=[{**CLOUD_SQL, "name": "db"}]),
        f"{SHAPE}.template.volumes[0].name: Cloud SQL volume must be named 'cloudsql', and 'cloudsql' is reserved "
        "for Cloud SQL volumes.",
    ),
    (
        "another kind of volume named cloudsql",
        _spec(volumes=[{**MEMORY, "name": "cloudsql"}]),
        f"{SHAPE}.template.volumes[0].name: Cloud SQL volume must be named 'cloudsql', and 'cloudsql' is reserved "
        "for Cloud SQL volumes.",
    ),
    (
        "a Cloud SQL instance without its project and region",
        _spec(volumes=[{"name": "cloudsql", "cloud_sql_instance": {"instances": ["db"]}}]),
        f"{SHAPE}.template.volumes[0].cloud_sql_instance.instances: 'db' is not a Cloud SQL instance: use "
        "{project}:{location}:{instance}.",
    ),
    (
        "a Cloud Storage volume without a bucket",
        _spec(volumes=[{"name": "assets", "gcs": {"read_only": True}}]),
        f"{SHAPE}.template.volumes[0].gcs.bucket: required field not present.",
    ),
    (
        "an NFS volume without its exported path",
        _spec(volumes=[{"name": "shared", "nfs": {"server": "10.0.0.2"}}]),
        f"{SHAPE}.template.volumes[0].nfs.path: required field not present.",
    ),
    (
        "an NFS volume in the first generation",
        _spec(volumes=[{"name": "shared", "nfs": {"server": "10.0.0.2", "path": "/x"}}], execution_environment=GEN1),
        f"{SHAPE}.template.volumes[0].nfs: NFS volumes need the second generation execution environment.",
    ),
    (
        "a secret volume's item without a version",
        _spec(volumes=[{"name": "creds", "secret": {"secret": "key", "items": [{"path": "key.json"}]}}]),
        f"{SHAPE}.template.volumes[0].secret.items[0].version: required field not present.",
    ),
    (
        "a volume mounted under /proc",
        _spec({"image": "a", "volume_mounts": [{"name": "scratch", "mount_path": "/proc/x"}]}, volumes=[MEMORY]),
        f"{C0}.volume_mounts[0].mount_path: a volume cannot be mounted at or under /dev, /proc or /sys.",
    ),
    # -- VPC access
    (
        "a connector and a network interface",
        _spec(
            vpc_access={
                "connector": "projects/p/locations/us-central1/connectors/c",
                "network_interfaces": [{"network": "default"}],
            }
        ),
        f"{SHAPE}.template.vpc_access.connector: one and only one of connector and network_interfaces must be set.",
    ),
    (
        "egress with neither a connector nor a network",
        _spec(vpc_access={"egress": "ALL_TRAFFIC"}),
        f"{SHAPE}.template.vpc_access.connector: one and only one of connector and network_interfaces must be set.",
    ),
    (
        "two network interfaces",
        _spec(vpc_access={"network_interfaces": [{"network": "a"}, {"network": "b"}]}),
        f"{SHAPE}.template.vpc_access.network_interfaces: only a single network interface is supported.",
    ),
    (
        "a network interface naming neither network nor subnetwork",
        _spec(vpc_access={"network_interfaces": [{"tags": ["api"]}]}),
        f"{SHAPE}.template.vpc_access.network_interfaces[0]: network or subnetwork must be set.",
    ),
    # -- probes
    (
        "a startup probe of no kind",
        _spec({"image": "a", "startup_probe": {"period_seconds": 5}}),
        f"{C0}.startup_probe: exactly one of http_get, tcp_socket or grpc must be specified.",
    ),
    (
        "a TCP liveness probe",
        _spec({"image": "a", "liveness_probe": _probe()}),
        f"{C0}.liveness_probe.tcp_socket: a liveness probe is an HTTP or a gRPC probe, not TCP.",
    ),
    (
        "a startup probe period of 241",
        _spec({"image": "a", "startup_probe": _probe(period_seconds=241)}),
        f"{C0}.startup_probe.period_seconds: must be between 1 and 240 for a startup probe, got 241.",
    ),
    (
        "a startup probe initial delay of 241",
        _spec({"image": "a", "startup_probe": _probe(initial_delay_seconds=241)}),
        f"{C0}.startup_probe.initial_delay_seconds: must be between 0 and 240 for a startup probe, got 241.",
    ),
    (
        "a liveness probe period of 3601",
        _spec({"image": "a", "liveness_probe": {"http_get": {}, "period_seconds": 3601}}),
        f"{C0}.liveness_probe.period_seconds: must be between 1 and 3600 for a liveness probe, got 3601.",
    ),
    (
        "a liveness probe initial delay of 3601",
        _spec({"image": "a", "liveness_probe": {"grpc": {}, "initial_delay_seconds": 3601}}),
        f"{C0}.liveness_probe.initial_delay_seconds: must be between 0 and 3600 for a liveness probe, got 3601.",
    ),
    (
        "a probe timeout of 3601",
        _spec({"image": "a", "liveness_probe": {"http_get": {}, "timeout_seconds": 3601, "period_seconds": 3600}}),
        f"{C0}.liveness_probe.timeout_seconds: must be between 1 and 3600 for a liveness probe, got 3601.",
    ),
    (
        "a probe timeout over the default period",
        _spec({"image": "a", "startup_probe": _probe(timeout_seconds=20)}),
        f"{C0}.startup_probe.timeout_seconds: must not be greater than period_seconds (10), got 20.",
    ),
    (
        "a startup probe with more than 240 seconds in all",
        _spec({"image": "a", "startup_probe": _probe(period_seconds=60, failure_threshold=5)}),
        f"{C0}.startup_probe: failure_threshold * period_seconds must not exceed 240 seconds, got 5 * 60.",
    ),
    (
        "a startup probe of the default 3 failures at 81 seconds",
        _spec({"image": "a", "startup_probe": _probe(period_seconds=81)}),
        f"{C0}.startup_probe: failure_threshold * period_seconds must not exceed 240 seconds, got 3 * 81.",
    ),
    (
        "a negative failure threshold",
        _spec({"image": "a", "startup_probe": _probe(failure_threshold=-1)}),
        f"{C0}.startup_probe.failure_threshold: must be at least 1, got -1.",
    ),
    (
        "a probe port of 70000",
        _spec({"image": "a", "startup_probe": {"http_get": {"port": 70000}}}),
        f"{C0}.startup_probe.http_get.port: must be between 1 and 65535, got 70000.",
    ),
    # -- below one CPU
    (
        "half a CPU always allocated",
        _spec(
            {"image": "a", "resources": {"limits": {"cpu": "500m", "memory": "512Mi"}, "cpu_idle": False}},
            max_instance_request_concurrency=1,
        ),
        f"{BELOW_ONE_CPU} with cpu always allocated (unthrottled).",
    ),
    (
        "half a CPU with resources set but cpu_idle left out",
        _spec({"image": "a", "resources": {"limits": {"cpu": "500m"}}}, max_instance_request_concurrency=1),
        f"{BELOW_ONE_CPU} with cpu always allocated (unthrottled).",
    ),
    (
        "half a CPU on the second generation",
        _spec(
            {"image": "a", "resources": {"limits": {"cpu": "500m", "memory": "512Mi"}, "cpu_idle": True}},
            max_instance_request_concurrency=1,
            execution_environment=run_v2.ExecutionEnvironment.EXECUTION_ENVIRONMENT_GEN2,
        ),
        f"{BELOW_ONE_CPU} with gen2 execution environment.",
    ),
    (
        "two quarter CPUs with concurrency 2",
        _spec(
            {"image": "a", "resources": {"limits": {"cpu": "250m", "memory": "256Mi"}, "cpu_idle": True}},
            {**SIDECAR, "resources": {"limits": {"cpu": "250m", "memory": "256Mi"}, "cpu_idle": True}},
            max_instance_request_concurrency=2,
        ),
        f"{BELOW_ONE_CPU} with concurrency > 1.",
    ),
]


@pytest.mark.parametrize(("case", "service", "message"), REFUSED, ids=[case for case, _, _ in REFUSED])
def test_a_spec_past_a_documented_limit_is_refused_in_its_words(
    services: Any, case: str, service: run_v2.Service, message: str
) -> None:
    with pytest.raises(exceptions.InvalidArgument) as refused:
        services.create_service(parent=PARENT, service_id="api", service=service)

    assert refused.value.message == message
    assert list(services.list_services(parent=PARENT)) == []


def _deployed(services: Any, service: run_v2.Service) -> Any:
    """Create `api`; its operation fails for want of an engine, the service stays. Returns it."""
    with pytest.raises(exceptions.FailedPrecondition):
        services.create_service(parent=PARENT, service_id="api", service=service).result(timeout=10)
    return services.get_service(name=name_of("api"))


def test_a_service_at_its_description_label_annotation_and_env_limits_is_accepted(services: Any) -> None:
    labels = {f"k{i}": "v" for i in range(63)} | {"équipe": "café_1-x"}
    spec = _spec({"image": "a", "env": [*_env(999), {"name": "V", "value": "é" * 16384}]}, labels={"team": "v" * 63})
    spec.description = "d" * 512
    spec.labels = labels
    spec.annotations = {"doki.dev/release-lock": "{}", "k": "v" * (262144 - len("doki.dev/release-lock{}k"))}

    service = _deployed(services, spec)

    assert (len(service.description), len(service.labels), len(service.template.containers[0].env)) == (512, 64, 1000)


def test_a_sidecar_may_set_port_and_depend_on_nothing_but_named_containers_with_startup_probes(services: Any) -> None:
    spec = _spec(
        {"image": "a", "name": "web", "depends_on": ["side"]},
        {**SIDECAR, "env": [{"name": "PORT", "value": "9000"}], "startup_probe": _probe(tcp_socket={"port": 9000})},
    )

    service = _deployed(services, spec)

    assert [c.name for c in service.template.containers] == ["web", "side"]
    assert service.template.containers[1].env[0].name == "PORT"


def test_probes_at_their_limits_and_cloud_sql_mounts_without_a_path_are_accepted(services: Any) -> None:
    spec = _spec(
        {
            "image": "a",
            # Cloud Run's own default startup probe: 240 and 240, once.
            "startup_probe": _probe(
                timeout_seconds=240, period_seconds=240, failure_threshold=1, initial_delay_seconds=240
            ),
            "liveness_probe": {"http_get": {"path": "/health"}, "timeout_seconds": 3600, "period_seconds": 3600},
            "volume_mounts": [{"name": "cloudsql"}, {"name": "scratch", "mount_path": "/scratch"}],
        },
        volumes=[CLOUD_SQL, MEMORY],
    )

    service = _deployed(services, spec)

    assert service.template.containers[0].startup_probe.period_seconds == 240
    assert [m.name for m in service.template.containers[0].volume_mounts] == ["cloudsql", "scratch"]


def test_below_one_cpu_counts_every_container_so_a_fractional_sidecar_keeps_concurrency(services: Any) -> None:
    # One CPU for the ingress container and half for a sidecar: 1.5 in all, so concurrency 80 stands.
    spec = _spec({"image": "a"}, {**SIDECAR, "resources": {"limits": {"cpu": "500m", "memory": "512Mi"}}})
    spec.template.max_instance_request_concurrency = 80

    service = _deployed(services, spec)

    assert service.template.max_instance_request_concurrency == 80


def test_an_update_is_held_to_the_same_limits(services: Any) -> None:
    service = _deployed(services, _spec())
    service.description = "d" * 513

    with pytest.raises(exceptions.InvalidArgument) as refused:
        services.update_service(service=service)

    assert (
        refused.value.message
        == "Violation in UpdateServiceRequest.service.description: must be at most 512 characters, got 513."
    )
    service.description = ""
    service.labels["Team"] = "core"
    with pytest.raises(exceptions.InvalidArgument) as refused:
        services.update_service(service=service)
    assert refused.value.message == LABEL_KEY.format("Team")
    assert services.get_service(name=service.name).generation == 1


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda s: s.create_service(parent="projects/p", service_id="api", service=_spec()),
            "Invalid parent 'projects/p': expected projects/{project}/locations/{location}.",
        ),
        (
            lambda s: s.get_service(name="projects/p/locations/us-central1/api"),
            "Invalid resource name 'projects/p/locations/us-central1/api': expected "
            "projects/{project}/locations/{location}/services/{service}.",
        ),
        (
            lambda s: s.list_services(request={"parent": PARENT, "page_size": -1}),
            "page_size must not be negative, got -1.",
        ),
        (
            lambda s: s.list_services(request={"parent": PARENT, "page_token": "a"}),
            "Invalid page token: 'a'.",
        ),
    ],
    ids=["parent", "service name", "negative page size", "page token"],
)
def test_a_malformed_request_is_refused_naming_what_is_wrong(services: Any, call: Any, message: str) -> None:
    with pytest.raises(exceptions.InvalidArgument) as refused:
        call(services)

    assert refused.value.message == message
