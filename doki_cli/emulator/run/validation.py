"""Cloud Run's synchronous checks of a Service spec, and the defaults it fills into the template it stores.

Two layers answer INVALID_ARGUMENT, as on Google: the request's shape ("Violation in
CreateServiceRequest.service.template.containers[0].image: required field not present.") and Cloud Run's own rules on
values ("template.containers[0].resources.limits.memory: Invalid value specified for memory. For 1.0 CPU, memory must
be between 128Mi and 4Gi inclusive."). Checks that need stored revisions (traffic naming one) live in the state.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from google.cloud import run_v2
from google.protobuf import duration_pb2

from doki_cli.emulator.errors import ApiError, invalid_argument
from doki_cli.emulator.projects import compute_default_account
from doki_cli.imageref import IMAGE_REFERENCE

PARENT = re.compile(r"projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)")
SERVICE_NAME = re.compile(
    r"(?P<parent>projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+))/services/(?P<id>[^/]+)"
)
REVISION_NAME = re.compile(r"(?P<service>projects/[^/]+/locations/[^/]+/services/[^/]+)/revisions/(?P<id>[^/]+)")
# A DNS label (RFC 1035) starting with a letter, as Cloud Run names services, revisions and tags.
_DNS_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")
# Set by Cloud Run itself: a template may not name them.
RESERVED_ENV = ("PORT", "K_SERVICE", "K_REVISION", "K_CONFIGURATION")
MAX_SERVICE_ID = 49
MAX_CONTAINERS = 10
# A tagged revision's URL is TAG---SERVICE-…: Cloud Run refuses a tag and service name longer than this together
# (firebase/firebase-tools#6137, GoogleCloudPlatform/magic-modules#7023).
MAX_TAG_AND_SERVICE = 46
# Namespaces v2 keeps for itself: its proto comments on Service and RevisionTemplate labels and annotations say
# keys in them are rejected ("All system annotations in v1 now have a corresponding field in v2").
SYSTEM_NAMESPACES = ("run.googleapis.com", "cloud.googleapis.com", "serving.knative.dev", "autoscaling.knative.dev")

LATEST = run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST
REVISION = run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION

# Cloud Run's defaults, as its API returns them for a template that leaves them out.
DEFAULT_CPU = "1000m"
DEFAULT_MEMORY = "512Mi"
DEFAULT_PORT = 8080
DEFAULT_PORT_NAME = "http1"
DEFAULT_TIMEOUT_SECONDS = 300
# The proto's comment on RevisionTemplate.max_instance_request_concurrency: "If not specified or 0, concurrency
# defaults to 80 when requested CPU >= 1 and defaults to 1 when requested CPU < 1."
DEFAULT_CONCURRENCY = 80
DEFAULT_CONCURRENCY_BELOW_ONE_CPU = 1
DEFAULT_MAX_INSTANCES = 100
# The startup probe Cloud Run gives a serving container that has none: "A TCP startup probe is automatically
# configured for a new Cloud Run service with default values ... tcpSocket: port: CONTAINER_PORT, timeoutSeconds: 240,
# periodSeconds: 240, failureThreshold: 1" (https://cloud.google.com/run/docs/configuring/healthchecks, "The default
# TCP startup probe").
DEFAULT_PROBE_SECONDS = 240
DEFAULT_PROBE_FAILURE_THRESHOLD = 1

_MI = 1024**2
_GI = 1024**3
_QUANTITY = re.compile(r"(?P<number>\d+(\.\d+)?)(?P<suffix>Ki|Mi|Gi|Ti|k|M|G|T|)")
_SUFFIX_BYTES = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "Ki": 1024, "Mi": _MI, "Gi": _GI}
_SUFFIX_BYTES["Ti"] = 1024**4
MIN_MILLICPU = 80
WHOLE_CPUS = (1, 2, 4, 6, 8)
# (lowest memory, highest memory) each CPU count accepts; fractional CPU is the first row, up to 1Gi from half a CPU
# (https://cloud.google.com/run/docs/configuring/services/memory-limits, minimum CPU per memory).
_MEMORY_RANGE = {0: (128 * _MI, 512 * _MI), 1: (128 * _MI, 4 * _GI), 2: (128 * _MI, 8 * _GI)}
HALF_CPU_MAX_MEMORY = _GI
# The second generation execution environment needs at least 512Mi (same page).
GEN2_MIN_MEMORY = 512 * _MI
_MEMORY_RANGE |= {4: (2 * _GI, 16 * _GI), 6: (4 * _GI, 24 * _GI), 8: (4 * _GI, 32 * _GI)}


@dataclass(frozen=True)
class Location:
    """The parent of a service: projects/P/locations/L."""

    project: str
    location: str

    @property
    def name(self) -> str:
        return f"projects/{self.project}/locations/{self.location}"


def parse_parent(parent: str) -> Location:
    match = PARENT.fullmatch(parent)
    if match is None:
        raise invalid_argument(f"Invalid parent '{parent}': expected projects/{{project}}/locations/{{location}}.")
    return Location(match["project"], match["location"])


def parse_service_name(name: str) -> tuple[Location, str]:
    """(parent, service id) of projects/P/locations/L/services/S."""
    match = SERVICE_NAME.fullmatch(name)
    if match is None:
        raise invalid_argument(
            f"Invalid resource name '{name}': expected "
            "projects/{project}/locations/{location}/services/{service}."
        )
    return Location(match["project"], match["location"]), match["id"]


def parse_revision_name(name: str) -> tuple[str, str]:
    """(service name, revision id) of projects/P/locations/L/services/S/revisions/R."""
    match = REVISION_NAME.fullmatch(name)
    if match is None:
        raise invalid_argument(
            f"Invalid resource name '{name}': expected "
            "projects/{project}/locations/{location}/services/{service}/revisions/{revision}."
        )
    return match["service"], match["id"]


def is_dns_label(value: str, max_length: int = 63) -> bool:
    return len(value) <= max_length and _DNS_LABEL.fullmatch(value) is not None


def check_service_id(service_id: str, request: str) -> None:
    where = f"Violation in {request}.service_id"
    if not service_id:
        raise invalid_argument(f"{where}: required field not present.")
    if not is_dns_label(service_id, MAX_SERVICE_ID):
        # Google's words (pulumi/pulumi-gcp#3166); the rule is the proto's comment on CreateServiceRequest.service_id.
        raise invalid_argument(
            f"{where}: only lowercase, digits, and hyphens; must begin with letter, and cannot end with hyphen; must "
            "be less than 50 characters."
        )


def memory_bytes(quantity: str) -> int | None:
    """Bytes of a Kubernetes quantity ("512Mi", "1G", "2.5Gi"), or None if it is not one."""
    match = _QUANTITY.fullmatch(quantity)
    if match is None:
        return None
    return int(float(match["number"]) * _SUFFIX_BYTES[match["suffix"]])


def millicpu(quantity: str) -> int | None:
    """Millicores of a CPU quantity ("1", "0.5", "500m"), or None if it is not one."""
    if quantity.endswith("m") and quantity[:-1].isdigit():
        return int(quantity[:-1])
    try:
        value = float(quantity)
    except ValueError:
        return None
    return round(value * 1000) if value >= 0 else None


def _cpu_label(milli: int) -> str:
    return f"{milli / 1000:.1f}" if milli % 100 == 0 else f"{milli / 1000:g}"


def _memory_label(size: int) -> str:
    return f"{size // _GI}Gi" if size % _GI == 0 else f"{size // _MI}Mi"


def ingress_index(template: run_v2.RevisionTemplate) -> int:
    """The container that receives requests: the one with a port, or the only one."""
    return next((i for i, c in enumerate(template.containers) if c.ports), 0)


def check_service(service: run_v2.Service, request: str, service_id: str, *, creating: bool) -> None:
    """Every check that needs nothing but the spec itself; raises INVALID_ARGUMENT naming the field."""
    shape = f"Violation in {request}.service"
    if "template" not in service:
        raise invalid_argument(f"{shape}.template: required field not present.")
    template = service.template
    _check_system_keys(service, shape, creating=creating)
    _check_template(template, shape, service_id)
    _check_traffic(service.traffic, shape, service_id)


def _is_system_key(key: str) -> bool:
    return "/" in key and key.split("/", 1)[0] in SYSTEM_NAMESPACES


def _check_system_keys(service: run_v2.Service, shape: str, *, creating: bool) -> None:
    """Labels and annotations in Cloud Run's own namespaces are refused: on the template always, on the service
    itself its labels always and its annotations in new resources (the protos' words), as one made through v1 may
    carry them."""
    held = [(f"{shape}.template", service.template, ("annotations", "labels")), (shape, service, ("labels",))]
    if creating:
        held.append((shape, service, ("annotations",)))
    for where, holder, kinds in held:
        for kind in kinds:
            for key in sorted(getattr(holder, kind)):
                if _is_system_key(key):
                    # Google's words for an annotation (GoogleCloudPlatform/avocano#238); the same for a label.
                    raise invalid_argument(
                        f"{where}.{kind}[{key}]: system {kind} are not supported in Cloud Run API v2."
                    )


def _check_template(template: run_v2.RevisionTemplate, shape: str, service_id: str) -> None:
    if template.revision and (
        not template.revision.startswith(service_id + "-") or not is_dns_label(template.revision)
    ):
        raise invalid_argument(
            f"{shape}.template.revision: '{template.revision}' must start with '{service_id}-' (the service name and "
            "a hyphen) and be a DNS label of lowercase letters, digits and hyphens, at most 63 characters."
        )
    containers = template.containers
    if not containers:
        raise invalid_argument(f"{shape}.template.containers: required field not present.")
    if len(containers) > MAX_CONTAINERS:
        raise invalid_argument(f"{shape}.template.containers: at most {MAX_CONTAINERS} containers are allowed.")
    with_ports = [i for i, c in enumerate(containers) if c.ports]
    if len(containers) > 1 and len(with_ports) != 1:
        # Google's words (GoogleCloudPlatform/terraform-google-cloud-run#302).
        raise invalid_argument(
            "template.containers: Revision template should contain exactly one container with an exposed port."
        )
    for index, container in enumerate(containers):
        _check_container(container, shape, index)
    concurrency = template.max_instance_request_concurrency
    if concurrency != 0 and not 1 <= concurrency <= 1000:
        raise invalid_argument(
            "template.max_instance_request_concurrency: Invalid value specified for container concurrency. "
            f"Must be between 1 and 1000, got {concurrency}."
        )
    gen2 = template.execution_environment == run_v2.ExecutionEnvironment.EXECUTION_ENVIRONMENT_GEN2
    for index, container in enumerate(containers):
        _check_resources(container, index, concurrency or default_concurrency(template), gen2=gen2)
    if "timeout" in template:
        seconds = template.timeout.total_seconds()
        if not 1 <= seconds <= 3600:
            raise invalid_argument(
                f"template.timeout: Invalid value specified for timeout. Must be between 1 and 3600 seconds, "
                f"got {seconds:g}."
            )
    scaling = template.scaling
    if scaling.min_instance_count < 0:
        raise invalid_argument(
            f"template.scaling.min_instance_count: must be 0 or more, got {scaling.min_instance_count}."
        )
    if "max_instance_count" in scaling and scaling.max_instance_count < 1:
        raise invalid_argument(
            f"template.scaling.max_instance_count: must be 1 or more, got {scaling.max_instance_count}."
        )
    if scaling.max_instance_count and scaling.min_instance_count > scaling.max_instance_count:
        # Google's words (goblet/goblet#287).
        raise invalid_argument(
            f"{shape}.template.scaling.max_instance_count: must be greater or equal than min_instance_count."
        )


def _check_container(container: run_v2.Container, shape: str, index: int) -> None:
    where = f"{shape}.template.containers[{index}]"
    if not container.image:
        raise invalid_argument(f"{where}.image: required field not present.")
    if not IMAGE_REFERENCE.fullmatch(container.image):
        raise invalid_argument(f"{where}.image: invalid image reference '{container.image}'.")
    if len(container.ports) > 1:
        raise invalid_argument(f"{where}.ports: ports should contain 0 or 1 port.")
    for port in container.ports:
        if not 0 <= port.container_port <= 65535:
            raise invalid_argument(
                f"{where}.ports[0].container_port: must be between 1 and 65535, got {port.container_port}."
            )
    seen: set[str] = set()
    reserved: list[str] = []
    for position, env in enumerate(container.env):
        field = f"{where}.env[{position}]"
        if not env.name:
            raise invalid_argument(f"{field}.name: required field not present.")
        if not _ENV_NAME.fullmatch(env.name):
            raise invalid_argument(
                f"{field}.name: '{env.name}' is not a valid environment variable name: use letters, digits, '_', "
                "'-' and '.', not starting with a digit."
            )
        if env.name in seen:
            raise invalid_argument(f"{field}.name: duplicate environment variable name '{env.name}'.")
        seen.add(env.name)
        if env.name in RESERVED_ENV:
            reserved.append(env.name)
        # value and value_source are a oneof: the wire cannot carry both.
        if "value_source" in env and not env.value_source.secret_key_ref.secret:
            raise invalid_argument(f"{field}.value_source.secret_key_ref.secret: required field not present.")
    if reserved:
        # Cloud Run's own wording, about the env list rather than one entry.
        raise invalid_argument(
            f"template.containers[{index}].env: The following reserved env names were provided: {', '.join(reserved)}. "
            "These values are automatically set by the system."
        )


def _check_resources(container: run_v2.Container, index: int, concurrency: int, *, gen2: bool) -> None:
    limits = container.resources.limits
    where = f"template.containers[{index}].resources.limits"
    cpu_text = limits.get("cpu", DEFAULT_CPU)
    milli = millicpu(cpu_text)
    if milli is None or not (MIN_MILLICPU <= milli < 1000 or (milli % 1000 == 0 and milli // 1000 in WHOLE_CPUS)):
        raise invalid_argument(
            f"{where}.cpu: Invalid value specified for cpu. '{cpu_text}' is not supported: use 1, 2, 4, 6 or 8, "
            f"or a fraction of one CPU of at least {MIN_MILLICPU}m (e.g. 500m)."
        )
    memory_text = limits.get("memory", DEFAULT_MEMORY)
    size = memory_bytes(memory_text)
    if size is None:
        raise invalid_argument(
            f"{where}.memory: Invalid value specified for memory. '{memory_text}' is not a quantity such as 512Mi "
            "or 2Gi."
        )
    low, high = _MEMORY_RANGE[milli // 1000]
    if 500 <= milli < 1000:
        high = HALF_CPU_MAX_MEMORY
    if gen2:
        low = max(low, GEN2_MIN_MEMORY)
    if not low <= size <= high:
        # Google's words, and their gen2 variant (MarkEdmondson1234/googleCloudRunner#137).
        environment = " with gen2 execution environment" if gen2 else ""
        raise invalid_argument(
            f"{where}.memory: Invalid value specified for memory{environment}. For {_cpu_label(milli)} CPU, memory "
            f"must be between {_memory_label(low)} and {_memory_label(high)} inclusive."
        )
    if milli < 1000 and concurrency > 1:
        raise invalid_argument(
            f"{where}.cpu: Invalid value specified for cpu. Total cpu < 1 is not supported with concurrency > 1."
        )


def _check_traffic(traffic: Sequence[run_v2.TrafficTarget], shape: str, service_id: str) -> None:
    if not traffic:
        return
    tags: set[str] = set()
    for index, target in enumerate(traffic):
        where = f"{shape}.traffic[{index}]"
        if target.type_ == LATEST and target.revision:
            raise invalid_argument(
                f"{where}.revision: must be empty when type is TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST."
            )
        if target.type_ == REVISION and not target.revision:
            raise invalid_argument(f"{where}.revision: required when type is TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION.")
        if not 0 <= target.percent <= 100:
            raise invalid_argument(f"{where}.percent: must be between 0 and 100, got {target.percent}.")
        if target.tag:
            if not is_dns_label(target.tag):
                raise invalid_argument(
                    f"{where}.tag: '{target.tag}' is not a valid tag: use lowercase letters, digits and hyphens, "
                    "starting with a letter (a DNS label)."
                )
            if len(target.tag) + len(service_id) > MAX_TAG_AND_SERVICE:
                # Google's words (firebase/firebase-tools#6137), after v2's field path.
                raise invalid_argument(
                    f"{where}.tag: traffic tag '{target.tag}' and service name '{service_id}' together are too long. "
                    f"Combined traffic tag and service name cannot exceed {MAX_TAG_AND_SERVICE} characters."
                )
            if target.tag in tags:
                raise invalid_argument(f"{where}.tag: duplicate tag '{target.tag}'.")
            tags.add(target.tag)
    total = sum(target.percent for target in traffic)
    if total != 100:
        raise invalid_argument(f"{shape}.traffic: Traffic targets sum to {total}, want 100.")


def target_type(target: run_v2.TrafficTarget) -> int:
    """LATEST or REVISION; an unspecified type means REVISION when a revision is named, else LATEST."""
    if target.type_ in (LATEST, REVISION):
        return target.type_
    return REVISION if target.revision else LATEST


def default_service_account(project: str) -> str:
    """Cloud Run's default identity, the Compute Engine default account, written into a template that names none
    (the proto's comment on RevisionTemplate.service_account; Terraform's google_cloud_run_v2_service reads it back as
    a value from the API)."""
    return compute_default_account(project)


def default_concurrency(template: run_v2.RevisionTemplate) -> int:
    """The concurrency of a template that sets none, by the CPU its containers request together."""
    total = sum(millicpu(c.resources.limits.get("cpu", DEFAULT_CPU)) or 0 for c in template.containers)
    return DEFAULT_CONCURRENCY if total >= 1000 else DEFAULT_CONCURRENCY_BELOW_ONE_CPU


def with_defaults(template: run_v2.RevisionTemplate, project: str) -> run_v2.RevisionTemplate:
    """A copy of `template` with what Cloud Run fills in when left out, so equal specs compare equal."""
    filled: run_v2.RevisionTemplate = run_v2.RevisionTemplate.deserialize(run_v2.RevisionTemplate.serialize(template))
    if not filled.service_account:
        filled.service_account = default_service_account(project)
    if "timeout" not in filled:
        filled.timeout = duration_pb2.Duration(seconds=DEFAULT_TIMEOUT_SECONDS)
    if not filled.max_instance_request_concurrency:
        filled.max_instance_request_concurrency = default_concurrency(filled)
    if not filled.scaling.max_instance_count:
        filled.scaling.max_instance_count = DEFAULT_MAX_INSTANCES
    ingress = ingress_index(filled)
    for index, container in enumerate(filled.containers):
        if "resources" not in container:
            # The proto's comment on ResourceRequirements.cpu_idle: true by default, but a caller who sets
            # resources must set it true itself to keep that.
            container.resources.cpu_idle = True
        container.resources.limits.setdefault("cpu", DEFAULT_CPU)
        container.resources.limits.setdefault("memory", DEFAULT_MEMORY)
        if index == ingress:
            if not container.ports:
                container.ports.append(run_v2.ContainerPort(name=DEFAULT_PORT_NAME, container_port=DEFAULT_PORT))
            port = container.ports[0]
            port.name = port.name or DEFAULT_PORT_NAME
            port.container_port = port.container_port or DEFAULT_PORT
            if "startup_probe" not in container:
                container.startup_probe = default_probe(port.container_port)
    return filled


def default_probe(port: int) -> run_v2.Probe:
    """The TCP startup probe Cloud Run writes into a serving container that declares none."""
    return run_v2.Probe(
        tcp_socket=run_v2.TCPSocketAction(port=port),
        timeout_seconds=DEFAULT_PROBE_SECONDS,
        period_seconds=DEFAULT_PROBE_SECONDS,
        failure_threshold=DEFAULT_PROBE_FAILURE_THRESHOLD,
    )


def same_template(a: run_v2.RevisionTemplate, b: run_v2.RevisionTemplate) -> bool:
    """Whether two (defaulted) templates describe the same revision; map order does not matter."""
    pb_a = run_v2.RevisionTemplate.pb(a)
    pb_b = run_v2.RevisionTemplate.pb(b)
    return bool(pb_a.SerializeToString(deterministic=True) == pb_b.SerializeToString(deterministic=True))


def no_such_revision(revision: str) -> ApiError:
    return invalid_argument(
        f"Revision '{revision}' does not exist or is deleted. Update all traffic to route to currently available "
        "revisions."
    )
