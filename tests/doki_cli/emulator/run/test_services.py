"""Cloud Run services and revisions through the official client, on an emulator without a Docker engine: every
API answers as Cloud Run does, and revisions never become Ready (the operation says why and how to fix it)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from google.api_core import exceptions
from google.cloud import run_v2
from google.iam.v1 import policy_pb2
from google.protobuf import duration_pb2, field_mask_pb2

from doki_cli.emulator.projects import compute_default_account
from doki_cli.emulator.server import Emulator, EmulatorConfig
from doki_cli.gcp.clients import ClientFactory
from tests.doki_cli.emulator.run.conftest import (
    LATEST,
    PARENT,
    REVISION,
    allow_unauthenticated,
    create,
    name_of,
    short,
    template,
)

NO_ENGINE = (
    "The emulator has no Docker engine, so it cannot run the revision's containers. "
    "Start Docker, then restart `doki emulator`."
)
# Project p's Compute Engine default account: named after the project's number, twelve digits.
DEFAULT_ACCOUNT = "287605153049-compute@developer.gserviceaccount.com"
FAILED = run_v2.Condition.State.CONDITION_FAILED
SUCCEEDED = run_v2.Condition.State.CONDITION_SUCCEEDED


def deployed(services: Any, service_id: str, spec: run_v2.RevisionTemplate | None = None, **fields: Any) -> Any:
    """Create `service_id`; its operation fails (no engine), the service stays. Returns the service."""
    with pytest.raises(exceptions.FailedPrecondition):
        create(services, service_id, spec or template(), **fields).result(timeout=10)
    return services.get_service(name=name_of(service_id))


def updated(services: Any, service: run_v2.Service, **request: Any) -> Any:
    """Update `service`; the operation fails (no engine) unless validate_only. Returns the service as stored."""
    with pytest.raises(exceptions.FailedPrecondition):
        services.update_service(request={"service": service, **request}).result(timeout=10)
    return services.get_service(name=service.name)


def not_ready(revision_name: str, reason: str = NO_ENGINE) -> str:
    return f"Revision '{short(revision_name)}' is not ready and cannot serve traffic. {reason}"


# -- create, read, list ---------------------------------------------------------------------------------------------


def test_a_projects_default_account_is_named_after_a_twelve_digit_number_that_differs_by_project() -> None:
    accounts = {compute_default_account(project) for project in ("p", "q", "doki-prod")}

    assert compute_default_account("p") == DEFAULT_ACCOUNT
    assert len(accounts) == 3
    assert all(re.fullmatch(r"[1-9][0-9]{11}-compute@developer\.gserviceaccount\.com", a) for a in accounts)


def test_a_new_service_gets_cloud_runs_defaults_a_uri_and_its_first_revision(services: Any) -> None:
    service = deployed(services, "api", description="the api", labels={"team": "core"})

    assert service.name == name_of("api")
    assert (service.description, dict(service.labels)) == ("the api", {"team": "core"})
    assert (service.generation, service.observed_generation, service.reconciling) == (1, 1, False)
    assert service.uid and service.etag and service.creator == "developer@doki-emulator.local"
    assert service.create_time == service.update_time
    assert [(t.type_, t.percent, t.revision) for t in service.traffic] == [(LATEST, 100, "")]
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", service.uri)
    assert list(service.urls) == [service.uri]
    assert service.ingress == run_v2.IngressTraffic.INGRESS_TRAFFIC_ALL
    spec = service.template
    assert (spec.service_account, spec.timeout, spec.max_instance_request_concurrency) == (
        DEFAULT_ACCOUNT,
        duration_pb2.Duration(seconds=300).ToTimedelta(),
        80,
    )
    assert spec.scaling.max_instance_count == 100
    container = spec.containers[0]
    assert dict(container.resources.limits) == {"cpu": "1000m", "memory": "512Mi"}
    assert [(p.name, p.container_port) for p in container.ports] == [("http1", 8080)]
    assert re.fullmatch(rf"{name_of('api')}/revisions/api-00001-[a-z]{{3}}", service.latest_created_revision)
    assert service.latest_ready_revision == ""
    assert list(service.traffic_statuses) == []


def test_the_first_revision_carries_the_template(services: Any, revisions: Any) -> None:
    spec = template(env=[run_v2.EnvVar(name="MODE", value="fast")])
    spec.max_instance_request_concurrency = 10
    service = deployed(services, "api", spec)

    revision = revisions.get_revision(name=service.latest_created_revision)

    assert (revision.service, revision.generation, revision.observed_generation) == ("api", 1, 1)
    assert (revision.max_instance_request_concurrency, revision.service_account) == (10, DEFAULT_ACCOUNT)
    assert revision.containers == service.template.containers
    assert revision.timeout == service.template.timeout
    assert revision.reconciling is False
    assert [(c.type_, c.state) for c in revision.conditions] == [
        ("Ready", FAILED),
        ("ContainerHealthy", FAILED),
        ("ResourcesAvailable", SUCCEEDED),
    ]
    assert revision.conditions[0].message == not_ready(revision.name)
    assert revision.log_uri == (
        "https://console.cloud.google.com/logs/viewer?project=p"
        f"&resource=cloud_run_revision/service_name/api/revision_name/{short(revision.name)}"
    )


def test_without_an_engine_the_operation_fails_saying_how_to_fix_it(services: Any) -> None:
    operation = create(services, "api", template())

    with pytest.raises(exceptions.FailedPrecondition) as failure:
        operation.result(timeout=10)

    service = services.get_service(name=name_of("api"))
    assert failure.value.message == not_ready(service.latest_created_revision)
    assert re.fullmatch(rf"{PARENT}/operations/[0-9a-f-]{{36}}", operation.operation.name)
    assert (operation.metadata.name, operation.metadata.reconciling) == (name_of("api"), True)
    assert operation.metadata.terminal_condition.state == run_v2.Condition.State.CONDITION_PENDING
    terminal = service.terminal_condition
    assert (terminal.type_, terminal.state, terminal.message) == ("Ready", FAILED, failure.value.message)
    assert terminal.reason == run_v2.Condition.CommonReason.REVISION_FAILED
    assert [(c.type_, c.state) for c in service.conditions] == [
        ("RoutesReady", FAILED),
        ("ConfigurationsReady", FAILED),
    ]


def test_creating_a_service_that_exists_is_refused(services: Any) -> None:
    deployed(services, "api")

    with pytest.raises(exceptions.AlreadyExists) as refused:
        create(services, "api", template())

    assert refused.value.message == "Resource 'api' already exists."


def test_a_missing_service_is_not_found_in_cloud_runs_words(services: Any) -> None:
    with pytest.raises(exceptions.NotFound) as missing:
        services.get_service(name=name_of("nope"))

    assert missing.value.message == (
        "Resource 'nope' of kind 'SERVICE' in region 'us-central1' in project 'p' does not exist."
    )


def test_validate_only_checks_and_previews_without_creating(services: Any) -> None:
    preview = services.create_service(
        request={"parent": PARENT, "service_id": "api", "service": {"template": template()}, "validate_only": True}
    ).result(timeout=10)

    assert (preview.name, preview.template.service_account) == (name_of("api"), DEFAULT_ACCOUNT)
    with pytest.raises(exceptions.NotFound):
        services.get_service(name=name_of("api"))


def test_services_are_listed_by_name_a_page_at_a_time(services: Any) -> None:
    for service_id in ("cc", "aa", "bb"):
        deployed(services, service_id)
    with pytest.raises(exceptions.FailedPrecondition):
        services.create_service(
            parent="projects/p/locations/europe-west1", service_id="eu", service={"template": template()}
        ).result(timeout=10)

    pages = list(services.list_services(request={"parent": PARENT, "page_size": 2}).pages)

    assert [[short(s.name) for s in page.services] for page in pages] == [["aa", "bb"], ["cc"]]
    everywhere = services.list_services(parent="projects/p/locations/-")
    # By full name: europe-west1 sorts before us-central1.
    assert [short(s.name) for s in everywhere] == ["eu", "aa", "bb", "cc"]


# -- validation -----------------------------------------------------------------------------------------------------


def _limits(
    cpu: str | None = None, memory: str | None = None, *, cpu_idle: bool = False
) -> run_v2.ResourceRequirements:
    """Limits as a caller sets them; `cpu_idle` as it sends it (below one CPU, Cloud Run needs it true)."""
    limits = {key: value for key, value in (("cpu", cpu), ("memory", memory)) if value is not None}
    return run_v2.ResourceRequirements(limits=limits, cpu_idle=cpu_idle)


def _secret_env(name: str, secret: str) -> run_v2.EnvVar:
    source = run_v2.EnvVarSource(secret_key_ref=run_v2.SecretKeySelector(secret=secret, version="1"))
    return run_v2.EnvVar(name=name, value_source=source)


SHAPE = "Violation in CreateServiceRequest.service"
LIMITS = "template.containers[0].resources.limits"
BAD_SPECS: list[tuple[str, run_v2.Service, str]] = [
    ("no template", run_v2.Service(), f"{SHAPE}.template: required field not present."),
    (
        "no container",
        run_v2.Service(template=run_v2.RevisionTemplate()),
        f"{SHAPE}.template.containers: required field not present.",
    ),
    (
        "no image",
        run_v2.Service(template=template("")),
        f"{SHAPE}.template.containers[0].image: required field not present.",
    ),
    (
        "an image reference Docker would refuse",
        run_v2.Service(template=template("not an image")),
        f"{SHAPE}.template.containers[0].image: invalid image reference 'not an image'.",
    ),
    (
        "two ports",
        run_v2.Service(template=template(ports=[{"container_port": 80}, {"container_port": 81}])),
        f"{SHAPE}.template.containers[0].ports: ports should contain 0 or 1 port.",
    ),
    (
        "port out of range",
        run_v2.Service(template=template(ports=[{"container_port": 70000}])),
        f"{SHAPE}.template.containers[0].ports[0].container_port: must be between 1 and 65535, got 70000.",
    ),
    (
        "two containers, no ingress",
        run_v2.Service(
            template=run_v2.RevisionTemplate(containers=[{"image": "a"}, {"image": "b"}]),
        ),
        "template.containers: Revision template should contain exactly one container with an exposed port.",
    ),
    (
        "too much memory for one cpu",
        run_v2.Service(template=template(resources=_limits("1", "8Gi"))),
        f"{LIMITS}.memory: Invalid value specified for memory. For 1.0 CPU, memory must be between 128Mi and 4Gi "
        "inclusive.",
    ),
    (
        "too little memory for four cpus",
        run_v2.Service(template=template(resources=_limits("4", "1Gi"))),
        f"{LIMITS}.memory: Invalid value specified for memory. For 4.0 CPU, memory must be between 2Gi and 16Gi "
        "inclusive.",
    ),
    (
        "too little memory for six cpus",
        run_v2.Service(template=template(resources=_limits("6", "2Gi"))),
        f"{LIMITS}.memory: Invalid value specified for memory. For 6.0 CPU, memory must be between 4Gi and 24Gi "
        "inclusive.",
    ),
    (
        "below the smallest memory",
        run_v2.Service(template=template(resources=_limits(memory="64Mi"))),
        f"{LIMITS}.memory: Invalid value specified for memory. For 1.0 CPU, memory must be between 128Mi and 4Gi "
        "inclusive.",
    ),
    (
        "memory that is no quantity",
        run_v2.Service(template=template(resources=_limits(memory="lots"))),
        f"{LIMITS}.memory: Invalid value specified for memory. 'lots' is not a quantity such as 512Mi or 2Gi.",
    ),
    (
        "three cpus",
        run_v2.Service(template=template(resources=_limits(cpu="3"))),
        f"{LIMITS}.cpu: Invalid value specified for cpu. '3' is not supported: use 1, 2, 4, 6 or 8, or a fraction "
        "of one CPU of at least 80m (e.g. 500m).",
    ),
    (
        "half a cpu with 2Gi",
        run_v2.Service(template=template(resources=_limits("500m", "2Gi"))),
        f"{LIMITS}.memory: Invalid value specified for memory. For 0.5 CPU, memory must be between 128Mi and 1Gi "
        "inclusive.",
    ),
    (
        "less than half a cpu with 1Gi",
        run_v2.Service(template=template(resources=_limits("400m", "1Gi"))),
        f"{LIMITS}.memory: Invalid value specified for memory. For 0.4 CPU, memory must be between 128Mi and 512Mi "
        "inclusive.",
    ),
    (
        "the second generation with 256Mi",
        run_v2.Service(
            template=run_v2.RevisionTemplate(
                containers=[{"image": "a", "resources": _limits("1", "256Mi")}], execution_environment=2
            )
        ),
        f"{LIMITS}.memory: Invalid value specified for memory with gen2 execution environment. For 1.0 CPU, memory "
        "must be between 512Mi and 4Gi inclusive.",
    ),
    (
        "half a cpu with concurrency",
        run_v2.Service(
            template=run_v2.RevisionTemplate(
                containers=[{"image": "a", "resources": _limits("500m", "512Mi")}], max_instance_request_concurrency=80
            )
        ),
        "template.containers.resources.limits.cpu: Invalid value specified for cpu. Total cpu < 1 is not supported "
        "with concurrency > 1.",
    ),
    (
        "concurrency too high",
        run_v2.Service(
            template=run_v2.RevisionTemplate(containers=[{"image": "a"}], max_instance_request_concurrency=1001)
        ),
        "template.max_instance_request_concurrency: Invalid value specified for container concurrency. Must be "
        "between 1 and 1000, got 1001.",
    ),
    (
        "timeout too long",
        run_v2.Service(template=run_v2.RevisionTemplate(containers=[{"image": "a"}], timeout={"seconds": 3601})),
        "template.timeout: Invalid value specified for timeout. Must be between 1 and 3600 seconds, got 3601.",
    ),
    (
        "min above max instances",
        run_v2.Service(
            template=run_v2.RevisionTemplate(
                containers=[{"image": "a"}], scaling={"min_instance_count": 3, "max_instance_count": 2}
            )
        ),
        f"{SHAPE}.template.scaling.max_instance_count: must be greater or equal than min_instance_count.",
    ),
    (
        "negative min instances",
        run_v2.Service(
            template=run_v2.RevisionTemplate(containers=[{"image": "a"}], scaling={"min_instance_count": -1})
        ),
        "template.scaling.min_instance_count: must be 0 or more, got -1.",
    ),
    (
        "negative max instances",
        run_v2.Service(
            template=run_v2.RevisionTemplate(containers=[{"image": "a"}], scaling={"max_instance_count": -2})
        ),
        "template.scaling.max_instance_count: must be 1 or more, got -2.",
    ),
    (
        "negative service min instances",
        run_v2.Service(template=template(), scaling={"min_instance_count": -1}),
        f"{SHAPE}.scaling.min_instance_count: must be 0 or more, got -1.",
    ),
    (
        "service min above service max",
        run_v2.Service(template=template(), scaling={"min_instance_count": 3, "max_instance_count": 2}),
        f"{SHAPE}.scaling.max_instance_count: must be greater or equal than min_instance_count.",
    ),
    (
        "a service maximum on a service at GA",
        run_v2.Service(template=template(), scaling={"max_instance_count": 5}),
        "The feature 'Per-service maximum instances' is not supported in the declared launch stage on resource api. "
        "The launch stage annotation should be specified at least as BETA. Please visit "
        "https://cloud.google.com/run/docs/troubleshooting#launch-stage-validation for in-depth troubleshooting "
        "documentation.",
    ),
    (
        "duplicate env",
        run_v2.Service(template=template(env=[{"name": "A", "value": "1"}, {"name": "A", "value": "2"}])),
        f"{SHAPE}.template.containers[0].env[1].name: duplicate environment variable name 'A'.",
    ),
    (
        "invalid env name",
        run_v2.Service(template=template(env=[{"name": "1A", "value": "1"}])),
        f"{SHAPE}.template.containers[0].env[0].name: '1A' is not a valid environment variable name: use letters, "
        "digits, '_', '-' and '.', not starting with a digit.",
    ),
    (
        "reserved env",
        run_v2.Service(template=template(env=[{"name": "PORT", "value": "1"}, {"name": "K_SERVICE", "value": "x"}])),
        "template.containers[0].env: The following reserved env names were provided: PORT, K_SERVICE. These values "
        "are automatically set by the system.",
    ),
    (
        "secret env without a secret",
        run_v2.Service(template=template(env=[_secret_env("A", "")])),
        f"{SHAPE}.template.containers[0].env[0].value_source.secret_key_ref.secret: required field not present.",
    ),
    (
        "revision named for another service",
        run_v2.Service(template=run_v2.RevisionTemplate(revision="web-v1", containers=[{"image": "a"}])),
        f"{SHAPE}.template.revision: 'web-v1' must start with 'api-' (the service name and a hyphen) and be a DNS "
        "label of lowercase letters, digits and hyphens, at most 63 characters.",
    ),
    (
        "traffic not summing to 100",
        run_v2.Service(template=template(), traffic=[{"type_": LATEST, "percent": 90}]),
        f"{SHAPE}.traffic: Traffic targets sum to 90, want 100.",
    ),
    (
        "traffic percent above 100",
        run_v2.Service(template=template(), traffic=[{"type_": LATEST, "percent": 101}]),
        f"{SHAPE}.traffic[0].percent: expected 0 <= 101 <= 100",
    ),
    (
        "LATEST naming a revision",
        run_v2.Service(template=template(), traffic=[{"type_": LATEST, "revision": "api-1", "percent": 100}]),
        f"{SHAPE}.traffic[0].revision: must be empty when type is TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST.",
    ),
    (
        "REVISION naming none",
        run_v2.Service(template=template(), traffic=[{"type_": REVISION, "percent": 100}]),
        f"{SHAPE}.traffic[0].revision: required when type is TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION.",
    ),
    (
        "tag that is no DNS label",
        run_v2.Service(template=template(), traffic=[{"type_": LATEST, "percent": 100, "tag": "Blue_1"}]),
        f"{SHAPE}.traffic[0].tag: 'Blue_1' is not a valid tag: use lowercase letters, digits and hyphens, starting "
        "with a letter (a DNS label).",
    ),
    (
        "duplicate tags",
        run_v2.Service(
            template=template(),
            traffic=[{"type_": LATEST, "percent": 100, "tag": "a"}, {"type_": LATEST, "percent": 0, "tag": "a"}],
        ),
        f'{SHAPE}.traffic[1].tag: Multiple definitions for "a"',
    ),
    (
        "a tag that with the service name is over 46 characters",
        run_v2.Service(template=template(), traffic=[{"type_": LATEST, "percent": 100, "tag": "t" * 44}]),
        f"{SHAPE}.traffic[0].tag: traffic tag '{'t' * 44}' and service name 'api' together are too long. Combined "
        "traffic tag and service name cannot exceed 46 characters.",
    ),
    (
        "a system annotation on the template",
        run_v2.Service(
            template=run_v2.RevisionTemplate(
                containers=[{"image": "a"}], annotations={"autoscaling.knative.dev/maxScale": "3"}
            )
        ),
        f"{SHAPE}.template.annotations[autoscaling.knative.dev/maxScale]: system annotations are not supported in "
        "Cloud Run API v2.",
    ),
    (
        "a system annotation on the service",
        run_v2.Service(template=template(), annotations={"run.googleapis.com/ingress": "all"}),
        f"{SHAPE}.annotations[run.googleapis.com/ingress]: system annotations are not supported in Cloud Run API v2.",
    ),
    (
        "a system label on the service",
        run_v2.Service(template=template(), labels={"cloud.googleapis.com/location": "us-central1"}),
        f"{SHAPE}.labels[cloud.googleapis.com/location]: system labels are not supported in Cloud Run API v2.",
    ),
    (
        "traffic to a revision that does not exist",
        run_v2.Service(template=template(), traffic=[{"type_": REVISION, "revision": "api-00009-abc", "percent": 100}]),
        "Revision 'api-00009-abc' does not exist or is deleted. Update all traffic to route to currently available "
        "revisions.",
    ),
]


@pytest.mark.parametrize(("case", "service", "message"), BAD_SPECS, ids=[case for case, _, _ in BAD_SPECS])
def test_a_bad_spec_is_refused_with_a_message_naming_the_field(
    services: Any, case: str, service: run_v2.Service, message: str
) -> None:
    with pytest.raises(exceptions.InvalidArgument) as refused:
        services.create_service(parent=PARENT, service_id="api", service=service)

    assert refused.value.message == message
    assert list(services.list_services(parent=PARENT)) == []


@pytest.mark.parametrize(
    ("service_id", "message"),
    [
        ("", "Violation in CreateServiceRequest.service_id: required field not present."),
        *(
            (
                service_id,
                "Violation in CreateServiceRequest.service_id: only lowercase, digits, and hyphens; must begin with "
                "letter, and cannot end with hyphen; must be less than 50 characters.",
            )
            for service_id in ("Api_1", "a" * 50, "api-", "1api")
        ),
    ],
)
def test_a_service_id_must_be_a_short_dns_label(services: Any, service_id: str, message: str) -> None:
    with pytest.raises(exceptions.InvalidArgument) as refused:
        services.create_service(parent=PARENT, service_id=service_id, service={"template": template()})

    assert refused.value.message == message


@pytest.mark.parametrize(
    ("cpu", "memory"), [("1", "4Gi"), ("2", "8Gi"), ("4", "2Gi"), ("8", "32Gi"), ("80m", "128Mi"), ("500m", "1Gi")]
)
def test_cloud_runs_cpu_and_memory_pairings_at_their_limits_are_accepted(services: Any, cpu: str, memory: str) -> None:
    spec = template(resources=_limits(cpu, memory, cpu_idle=True))
    spec.max_instance_request_concurrency = 1

    service = deployed(services, "api", spec)

    assert dict(service.template.containers[0].resources.limits) == {"cpu": cpu, "memory": memory}


def test_a_tag_and_service_name_of_46_characters_together_and_lookalike_namespaces_are_accepted(services: Any) -> None:
    service = deployed(
        services,
        "api",
        traffic=[{"type_": LATEST, "percent": 100, "tag": "t" * 43}],
        annotations={"myrun.googleapis.com/owner": "ops", "doki.dev/release-lock": "{}"},
        labels={"team": "core"},
    )

    assert [t.tag for t in service.traffic] == ["t" * 43]
    assert dict(service.annotations) == {"myrun.googleapis.com/owner": "ops", "doki.dev/release-lock": "{}"}


def test_an_update_adding_a_system_annotation_is_refused_and_changes_nothing(services: Any) -> None:
    service = deployed(services, "api")
    service.template.annotations["run.googleapis.com/cpu-throttling"] = "false"

    with pytest.raises(exceptions.InvalidArgument) as refused:
        services.update_service(service=service)

    assert refused.value.message == (
        "Violation in UpdateServiceRequest.service.template.annotations[run.googleapis.com/cpu-throttling]: system "
        "annotations are not supported in Cloud Run API v2."
    )
    assert services.get_service(name=service.name).generation == 1


def test_below_one_cpu_an_unset_concurrency_is_one_and_at_one_cpu_eighty(services: Any) -> None:
    fractional = deployed(services, "small", template(resources=_limits("500m", "256Mi", cpu_idle=True)))
    whole = deployed(services, "api", template(resources=_limits("1", "512Mi")))

    assert fractional.template.max_instance_request_concurrency == 1
    assert whole.template.max_instance_request_concurrency == 80


def test_cpu_is_allocated_only_during_requests_unless_resources_are_set_without_saying_so(services: Any) -> None:
    without = deployed(services, "api")
    with_limits = deployed(services, "limited", template(resources=_limits("1", "512Mi")))

    assert without.template.containers[0].resources.cpu_idle is True
    assert with_limits.template.containers[0].resources.cpu_idle is False


def test_a_serving_container_without_a_startup_probe_gets_cloud_runs_default_tcp_probe_at_its_port(
    services: Any,
) -> None:
    default = run_v2.Probe(
        tcp_socket=run_v2.TCPSocketAction(port=9000), timeout_seconds=240, period_seconds=240, failure_threshold=1
    )
    own = run_v2.Probe(http_get=run_v2.HTTPGetAction(path="/ready"), period_seconds=2, failure_threshold=5)
    sidecar = run_v2.Container(name="sidecar", image="us-docker.pkg.dev/p/apps/sidecar:v1")
    serving = run_v2.Container(
        name="app", image="us-docker.pkg.dev/p/apps/api:v1", ports=[run_v2.ContainerPort(container_port=9000)]
    )
    probed = deployed(services, "api", run_v2.RevisionTemplate(containers=[sidecar, serving]))
    kept = deployed(services, "own", template(startup_probe=own))

    assert probed.template.containers[1].startup_probe == default
    assert "startup_probe" not in probed.template.containers[0]  # a sidecar gets none
    assert kept.template.containers[0].startup_probe == own


# -- updates --------------------------------------------------------------------------------------------------------


def test_each_change_adds_one_to_the_generation_and_changes_the_etag(services: Any, revisions: Any) -> None:
    service = deployed(services, "api")
    first_etag = service.etag

    service.description = "now described"
    service = updated(services, service)
    assert (service.generation, service.observed_generation, service.description) == (2, 2, "now described")
    assert service.etag != first_etag
    assert len(list(revisions.list_revisions(parent=service.name))) == 1

    service.template.containers[0].image = "us-docker.pkg.dev/p/apps/api:v2"
    service = updated(services, service)
    assert service.generation == 3
    assert re.fullmatch(rf"{service.name}/revisions/api-00002-[a-z]{{3}}", service.latest_created_revision)


def test_sending_the_service_back_unchanged_changes_nothing(services: Any, revisions: Any) -> None:
    service = deployed(services, "api")

    again = updated(services, service)

    assert (again.generation, again.etag, again.update_time) == (1, service.etag, service.update_time)
    assert again.terminal_condition == service.terminal_condition
    assert len(list(revisions.list_revisions(parent=service.name))) == 1


def test_an_update_with_a_stale_etag_is_aborted(emulator: Emulator, services: Any) -> None:
    service = deployed(services, "api")
    assert emulator.touch(service.name)
    service.description = "mine"

    with pytest.raises(exceptions.Aborted) as conflict:
        services.update_service(service=service)

    assert conflict.value.message == (
        "The provided etag does not match the current etag of Resource 'api'. Read the resource again and retry the "
        "change."
    )
    with pytest.raises(exceptions.Aborted):
        services.delete_service(request={"name": service.name, "etag": service.etag})
    assert services.get_service(name=service.name).description == ""


def test_revision_names_count_template_changes_and_end_in_three_letters(services: Any, revisions: Any) -> None:
    service = deployed(services, "api")
    service.traffic = [
        run_v2.TrafficTarget(type_=REVISION, revision=short(service.latest_created_revision), percent=100)
    ]
    service = updated(services, service)
    service.template.containers[0].args = ["--v2"]
    service = updated(services, service)

    names = [short(r.name) for r in revisions.list_revisions(parent=service.name)]

    assert len(names) == 2
    assert re.fullmatch(r"api-00002-[a-z]{3}", names[0])
    assert re.fullmatch(r"api-00001-[a-z]{3}", names[1])
    assert service.generation == 3


def test_a_traffic_only_update_makes_no_revision(services: Any, revisions: Any) -> None:
    service = deployed(services, "api")
    first = short(service.latest_created_revision)
    service.traffic = [run_v2.TrafficTarget(type_=REVISION, revision=first, percent=100, tag="stable")]

    service = updated(services, service)

    assert [short(r.name) for r in revisions.list_revisions(parent=service.name)] == [first]
    assert [(t.type_, t.revision, t.percent, t.tag) for t in service.traffic] == [(REVISION, first, 100, "stable")]
    assert service.generation == 2


def test_a_named_revision_keeps_its_name_and_cannot_be_reused_for_another_spec(services: Any) -> None:
    spec = template()
    spec.revision = "api-blue"
    service = deployed(services, "api", spec)
    assert service.latest_created_revision == f"{service.name}/revisions/api-blue"

    service.template.containers[0].image = "us-docker.pkg.dev/p/apps/api:v2"
    with pytest.raises(exceptions.AlreadyExists) as refused:
        services.update_service(service=service)

    assert refused.value.message == "Revision named 'api-blue' with different configuration already exists."


def test_an_update_mask_limits_the_fields_that_change(services: Any, revisions: Any) -> None:
    service = deployed(services, "api")
    service.description = "described"
    service.template.containers[0].image = "ignored:v2"

    stored = updated(services, service, update_mask=field_mask_pb2.FieldMask(paths=["description"]))

    assert (stored.description, stored.template.containers[0].image) == ("described", template().containers[0].image)
    assert len(list(revisions.list_revisions(parent=service.name))) == 1
    with pytest.raises(exceptions.InvalidArgument) as refused:
        services.update_service(service=service, update_mask=field_mask_pb2.FieldMask(paths=["uri"]))
    assert refused.value.message == "update_mask: 'uri' is not a field of Service that can be updated."


def test_allow_missing_turns_an_update_into_a_create(services: Any) -> None:
    service = run_v2.Service(name=name_of("fresh"), template=template())
    with pytest.raises(exceptions.NotFound) as missing:
        services.update_service(service=service)
    assert missing.value.message == (
        "Resource 'fresh' of kind 'SERVICE' in region 'us-central1' in project 'p' does not exist."
    )

    created = updated(services, service, allow_missing=True)

    assert (created.name, created.generation) == (name_of("fresh"), 1)


# -- revision failures without containers ---------------------------------------------------------------------------


def test_an_injected_revision_failure_fails_the_operation_with_its_message(emulator: Emulator, services: Any) -> None:
    emulator.faults.fail_revisions("api", message="Container import failed.")

    with pytest.raises(exceptions.FailedPrecondition) as failure:
        create(services, "api", template()).result(timeout=10)

    service = services.get_service(name=name_of("api"))
    assert failure.value.message == not_ready(service.latest_created_revision, "Container import failed.")


def _with_secret(reference: str) -> run_v2.RevisionTemplate:
    ref = run_v2.SecretKeySelector(secret=reference, version="latest")
    return template(
        env=[run_v2.EnvVar(name="MODE", value="x"), run_v2.EnvVar(name="API_KEY", value_source={"secret_key_ref": ref})]
    )


def test_a_revision_whose_secret_is_missing_fails_with_cloud_runs_message(services: Any, revisions: Any) -> None:
    with pytest.raises(exceptions.FailedPrecondition) as failure:
        create(services, "api", _with_secret("api-key")).result(timeout=10)

    service = services.get_service(name=name_of("api"))
    assert failure.value.message == not_ready(
        service.latest_created_revision,
        "spec.template.spec.containers[0].env[1].value_from.secret_key_ref.name: Secret "
        "projects/p/secrets/api-key/versions/latest was not found",
    )
    revision = revisions.get_revision(name=service.latest_created_revision)
    resources = revision.conditions[2]
    assert (resources.type_, resources.state) == ("ResourcesAvailable", FAILED)
    assert resources.reason == run_v2.Condition.CommonReason.SECRETS_ACCESS_CHECK_FAILED


def test_a_revision_whose_account_cannot_read_its_secret_fails_with_cloud_runs_message(
    clients: ClientFactory, services: Any
) -> None:
    sm = clients.secret_manager()
    secret = sm.create_secret(parent="projects/p", secret_id="api-key", secret={"replication": {"automatic": {}}})
    sm.add_secret_version(parent=secret.name, payload={"data": b"k"})

    with pytest.raises(exceptions.FailedPrecondition) as failure:
        create(services, "api", _with_secret(secret.name)).result(timeout=10)

    service = services.get_service(name=name_of("api"))
    assert failure.value.message == not_ready(
        service.latest_created_revision,
        "spec.template.spec.containers[0].env[1].value_from.secret_key_ref.name: Permission denied on secret: "
        f"projects/p/secrets/api-key/versions/latest for Revision service account {DEFAULT_ACCOUNT}. The service "
        "account used must be granted the 'Secret Manager Secret Accessor' role (roles/secretmanager.secretAccessor) "
        "at the secret, project or higher level.",
    )

    policy = sm.get_iam_policy(request={"resource": secret.name})
    policy.bindings.append(
        policy_pb2.Binding(role="roles/secretmanager.secretAccessor", members=[f"serviceAccount:{DEFAULT_ACCOUNT}"])
    )
    sm.set_iam_policy(request={"resource": secret.name, "policy": policy})
    service.template.containers[0].args = ["again"]
    with pytest.raises(exceptions.FailedPrecondition) as second:
        services.update_service(service=service).result(timeout=10)
    # Past the secret check, the revision fails only for want of an engine.
    assert second.value.message.endswith(NO_ENGINE)


# -- delete ---------------------------------------------------------------------------------------------------------


def test_deleting_a_service_removes_it_its_revisions_and_its_policy(services: Any, revisions: Any) -> None:
    service = deployed(services, "api")
    allow_unauthenticated(services, service.name)

    deleted = services.delete_service(name=service.name).result(timeout=10)

    assert (deleted.name, deleted.uid) == (service.name, service.uid)
    assert deleted.delete_time
    with pytest.raises(exceptions.NotFound):
        services.get_service(name=service.name)
    with pytest.raises(exceptions.NotFound):
        revisions.get_revision(name=service.latest_created_revision)
    recreated = deployed(services, "api")
    assert list(services.get_iam_policy(request={"resource": recreated.name}).bindings) == []


def test_a_revision_that_traffic_names_cannot_be_deleted_but_an_idle_one_can(services: Any, revisions: Any) -> None:
    service = deployed(services, "api")
    first = service.latest_created_revision
    service.template.containers[0].image = "us-docker.pkg.dev/p/apps/api:v2"
    service = updated(services, service)
    second = service.latest_created_revision
    service.traffic = [run_v2.TrafficTarget(type_=REVISION, revision=short(second), percent=100)]
    service = updated(services, service)

    with pytest.raises(exceptions.FailedPrecondition) as refused:
        revisions.delete_revision(name=second)
    assert refused.value.message == (
        f"Revision '{short(second)}' cannot be deleted because it is serving traffic. Route its traffic to other "
        "revisions first."
    )

    deleted = revisions.delete_revision(name=first).result(timeout=10)
    assert deleted.name == first
    with pytest.raises(exceptions.NotFound) as missing:
        revisions.get_revision(name=first)
    assert missing.value.message == (
        f"Resource '{short(first)}' of kind 'REVISION' in region 'us-central1' in project 'p' does not exist."
    )


def test_revisions_are_listed_newest_first_a_page_at_a_time(services: Any, revisions: Any) -> None:
    service = deployed(services, "api")
    for tag in ("v2", "v3"):
        service.template.containers[0].image = f"us-docker.pkg.dev/p/apps/api:{tag}"
        service = updated(services, service)
    deployed(services, "web")

    pages = list(revisions.list_revisions(request={"parent": service.name, "page_size": 2}).pages)

    numbers = [[short(r.name)[4:9] for r in page.revisions] for page in pages]
    assert numbers == [["00003", "00002"], ["00001"]]
    everywhere = [short(r.name)[:3] for r in revisions.list_revisions(parent=f"{PARENT}/services/-")]
    assert everywhere == ["web", "api", "api", "api"]


# -- IAM, faults, persistence ---------------------------------------------------------------------------------------


def test_an_iam_policy_round_trips_and_a_stale_one_is_refused(services: Any) -> None:
    service = deployed(services, "api")
    allow_unauthenticated(services, service.name)

    policy = services.get_iam_policy(request={"resource": service.name})

    assert [(b.role, list(b.members)) for b in policy.bindings] == [("roles/run.invoker", ["allUsers"])]
    permissions = services.test_iam_permissions(
        request={"resource": service.name, "permissions": ["run.routes.invoke"]}
    ).permissions
    assert list(permissions) == ["run.routes.invoke"]
    allow_unauthenticated(services, service.name)
    with pytest.raises(exceptions.Aborted):
        services.set_iam_policy(request={"resource": service.name, "policy": policy})
    with pytest.raises(exceptions.NotFound):
        services.get_iam_policy(request={"resource": name_of("nope")})


def test_an_injected_unavailable_on_get_service_is_seen_and_retried(emulator: Emulator, services: Any) -> None:
    service = deployed(services, "api")
    emulator.faults.fail("GetService", "UNAVAILABLE", times=1)

    with pytest.raises(exceptions.ServiceUnavailable) as unavailable:
        services.get_service(name=service.name, retry=None)
    assert unavailable.value.message == "injected UNAVAILABLE for GetService"

    emulator.faults.fail("GetService", "UNAVAILABLE", times=1)
    assert services.get_service(name=service.name) == service
    assert emulator.faults.calls["/google.cloud.run.v2.Services/GetService"] == 4


def test_services_revisions_policies_and_urls_survive_a_restart(tmp_path: Path) -> None:
    config = EmulatorConfig(state_dir=tmp_path / "state")
    with Emulator(config) as first:
        clients = ClientFactory(first.grpc_address, first.rest_url)
        service = deployed(clients.run_services(), "api", description="kept")
        allow_unauthenticated(clients.run_services(), service.name)
        revision = clients.run_revisions().get_revision(name=service.latest_created_revision)
        policy = clients.run_services().get_iam_policy(request={"resource": service.name})

    with Emulator(config) as second:
        clients = ClientFactory(second.grpc_address, second.rest_url)
        assert clients.run_services().get_service(name=service.name) == service
        assert clients.run_revisions().get_revision(name=revision.name) == revision
        assert clients.run_services().get_iam_policy(request={"resource": service.name}) == policy
        service.template.containers[0].image = "us-docker.pkg.dev/p/apps/api:v2"
        with pytest.raises(exceptions.FailedPrecondition):
            clients.run_services().update_service(service=service).result(timeout=10)
        newer = clients.run_services().get_service(name=service.name)
        assert re.fullmatch(rf"{service.name}/revisions/api-00002-[a-z]{{3}}", newer.latest_created_revision)
