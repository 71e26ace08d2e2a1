"""Cloud Run's synchronous checks of a Service spec, and the defaults it fills into the template it stores.

Two layers answer INVALID_ARGUMENT, as on Google: the request's shape ("Violation in
CreateServiceRequest.service.template.containers[0].image: required field not present.") and Cloud Run's own rules on
values ("template.containers[0].resources.limits.memory: Invalid value specified for memory. For 1.0 CPU, memory must
be between 128Mi and 4Gi inclusive."). Checks that need stored revisions (traffic naming one) live in the state.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass

from google.api import launch_stage_pb2
from google.cloud import run_v2
from google.protobuf import duration_pb2

from doki_cli.emulator.errors import ApiError, invalid_argument
from doki_cli.emulator.projects import compute_default_account

# An image reference, `[registry[:port]/]path[:tag][@digest]`, by the grammar of Docker's distribution/reference
# (the package comment of https://github.com/distribution/reference/blob/v0.5.0/reference.go, its regexp.go's
# separator `[._]|__|[-]+` and tag `[\w][\w.-]{0,127}`). Simpler where Cloud Run's images never go: a registry host
# is any run of letters, digits, dots and dashes, and a digest is sha256's.
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
IMAGE_REFERENCE = re.compile(
    rf"(?:[A-Za-z0-9.-]+(?::[0-9]+)?/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?"
)

# The request's resource names, as the v2 protos' comments on CreateServiceRequest.parent and GetServiceRequest.name
# spell them: projects/{project}/locations/{location}[/services/{service}[/revisions/{revision}]].
PARENT = re.compile(r"projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)")
SERVICE_NAME = re.compile(
    r"(?P<parent>projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+))/services/(?P<id>[^/]+)"
)
REVISION_NAME = re.compile(r"(?P<service>projects/[^/]+/locations/[^/]+/services/[^/]+)/revisions/(?P<id>[^/]+)")
# A DNS label (RFC 1035) starting with a letter, as Cloud Run names services, revisions and tags.
_DNS_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
# Kubernetes' rule for an environment variable's name (IsEnvVarName): the Knative Serving API specification that
# Cloud Run's API follows (knative/docs docs/serving/spec/knative-api-specification-1.0.md, EnvVar.name "As specified
# in Kubernetes core/v1.EnvVar").
_ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")
# Set by Cloud Run itself: a template may not name them (the container runtime contract,
# https://cloud.google.com/run/docs/container-contract#env-vars; Knative's reservedEnvVars in knative/serving
# pkg/apis/serving/k8s_validation.go). PORT is only the ingress container's: Knative reserves it there alone
# (reservedSidecarEnvVars), and Cloud Run sets it in the ingress container only (same contract page).
RESERVED_ENV = ("PORT", "K_SERVICE", "K_REVISION", "K_CONFIGURATION")
INGRESS_ONLY_ENV = ("PORT",)
# "Keys that start with X_GOOGLE_ are reserved" and "Keys cannot contain =": gcloud refuses both before it calls
# (EnvVarKeyType in lib/googlecloudsdk/command_lib/functions/v2/deploy/env_vars_util.py, which `gcloud run` uses for
# --set-env-vars), and Cloud Run's "Environment variables for services" page lists both among the names that can't be
# used (https://cloud.google.com/run/docs/configuring/services/overview-environment-variables).
GOOGLE_ENV_PREFIX = "X_GOOGLE_"
# https://cloud.google.com/run/docs/configuring/services/environment-variables: "You can set a maximum of 1000
# environment variables" (its older wording and the jobs page: "per container"; the newest says "for a Cloud Run
# service": counted here per container). The proto's comments on EnvVar: a name "Must not exceed 32768 characters",
# a value's "maximum length is 32768 bytes".
MAX_ENV_VARS = 1000
MAX_ENV_NAME = 32768
MAX_ENV_VALUE_BYTES = 32768
# The proto's comment on CreateServiceRequest.service_id: "must contain fewer than 50 characters".
MAX_SERVICE_ID = 49
# Up to 10 containers per instance: https://cloud.google.com/run/docs/deploying#multicontainer-yaml (as quoted in
# einride/cloudrunner-go#650).
MAX_CONTAINERS = 10
# The proto's comment on Service.description: "This field currently has a 512-character limit."
MAX_DESCRIPTION = 512
# A container's name: Cloud Run's words on it (hashicorp/terraform-provider-google#21035) allow lowercase letters,
# digits, hyphens and periods, beginning and ending with a letter or digit, under 64 characters; the proto's comment
# on Container.name: "specified as a DNS_LABEL (RFC 1123)".
_CONTAINER_NAME = re.compile(r"[a-z0-9]([-.a-z0-9]*[a-z0-9])?")
MAX_CONTAINER_NAME = 63
# The proto's comment on ContainerPort.name: 'Allowed values are "http1" and "h2c"' (Knative's validPortNames also
# allow it empty).
PORT_NAMES = ("", "http1", "h2c")
# A tagged revision's URL is TAG---SERVICE-…: Cloud Run refuses a tag and service name longer than this together
# (firebase/firebase-tools#6137, GoogleCloudPlatform/magic-modules#7023).
MAX_TAG_AND_SERVICE = 46
# Namespaces v2 keeps for itself: its proto comments on Service and RevisionTemplate labels and annotations say
# keys in them are rejected ("All system annotations in v1 now have a corresponding field in v2").
SYSTEM_NAMESPACES = ("run.googleapis.com", "cloud.googleapis.com", "serving.knative.dev", "autoscaling.knative.dev")
# Labels follow Google Cloud's label rules, to which the protos' comments on the labels fields point
# (https://cloud.google.com/resource-manager/docs/creating-managing-labels#requirements): up to 64 labels, keys of 1
# to 63 and values of up to 63 lowercase letters (international ones too), digits, underscores and dashes, a key
# starting with a lowercase letter.
MAX_LABELS = 64
MAX_LABEL_LENGTH = 63
# Annotations follow "Kubernetes annotations' namespacing, limits, and rules" (the protos' comments on the annotations
# fields): a key is an optional DNS subdomain prefix of up to 253 characters and a slash, then a name of up to 63
# alphanumerics, '-', '_' and '.', starting and ending alphanumeric; all of them together at most 256 KiB
# (ValidateAnnotations and IsQualifiedName in Kubernetes' apimachinery).
_ANNOTATION_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
MAX_ANNOTATIONS_BYTES = 256 * 1024
# Probes, from the proto's comments on Probe's fields: initial_delay_seconds 0 to 240 for a startup probe and to 3600
# for a liveness probe; timeout_seconds 1 to 3600 and at most period_seconds ("Must be smaller than period_seconds",
# "Must be greater or equal than timeout_seconds": equal is allowed, as in Cloud Run's own default startup probe of
# 240 and 240, https://cloud.google.com/run/docs/configuring/healthchecks); period_seconds 1 to 240 for a startup
# probe and to 3600 for a liveness probe; failure_threshold at least 1; 0 in any of them is unset (the defaults: 0,
# 1, 10 and 3 seconds or failures).
PROBE_MAX_DELAY = {"startup_probe": 240, "liveness_probe": 3600}
PROBE_MAX_PERIOD = {"startup_probe": 240, "liveness_probe": 3600}
PROBE_MAX_TIMEOUT = 3600
PROBE_DEFAULT_PERIOD = 10
PROBE_DEFAULT_TIMEOUT = 1
PROBE_DEFAULT_FAILURES = 3
# A startup probe has at most 240 seconds in all, "calculated as failureThreshold * periodSeconds"
# (https://cloud.google.com/run/docs/configuring/healthchecks; the jobs page: "can't exceed 240 seconds").
STARTUP_PROBE_MAX_SECONDS = 240
PROBE_TYPES = ("http_get", "tcp_socket", "grpc")
# Cloud Run's liveness probes are HTTP or gRPC only (https://cloud.google.com/run/docs/configuring/healthchecks: "HTTP
# and gRPC liveness probes"; gcloud's --liveness-probe takes no tcpSocket key, _SUPPORTED_LIVENESS_PROBE_KEYS in
# lib/googlecloudsdk/command_lib/run/flags.py).
LIVENESS_PROBE_TYPES = ("http_get", "grpc")
# The service-level maximum (Service.scaling.max_instance_count) is a feature of Cloud Run's BETA launch stage: gcloud
# 528 offers `run services update --max` in its beta and alpha tracks only (AddServiceMaxInstancesFlag in
# lib/surface/run/services/update.py), which declare that stage, and Cloud Run refuses it on a service at GA
# (GoogleCloudPlatform/magic-modules#14724). A stage "at least as BETA" is BETA or one before it.
SERVICE_MAX_FEATURE = "Per-service maximum instances"
BETA_OR_EARLIER = (
    launch_stage_pb2.LaunchStage.PRELAUNCH,
    launch_stage_pb2.LaunchStage.EARLY_ACCESS,
    launch_stage_pb2.LaunchStage.ALPHA,
    launch_stage_pb2.LaunchStage.BETA,
)
# The proto's comment on VolumeMount.mount_path: "For Cloud SQL volumes, it can be left empty, or must otherwise be
# /cloudsql".
CLOUD_SQL_MOUNT = "/cloudsql"
# A Cloud SQL volume has this name, and no other volume has it: gcloud's v2 --add-volume type=cloudsql holds it
# (_ValidateAndBuildCloudSqlVolume in lib/googlecloudsdk/command_lib/run/v2/volumes.py), and a user quotes Cloud Run's
# refusal in these words (pulumi/pulumi-gcp#1093, as remembered there rather than pasted).
CLOUD_SQL_VOLUME = "cloudsql"
# The proto's comment on CloudSqlInstance.instances: "Format: {project}:{location}:{instance}" (a domain-scoped
# project's id, example.com:project, holds a colon of its own).
_CLOUD_SQL_INSTANCE = re.compile(r"[^:\s]+(:[^:\s]+)?:[^:\s]+:[^:\s]+")
# "Cloud Run does not allow you to mount a volume at /dev, /proc and /sys, or on their subdirectories"
# (https://cloud.google.com/run/docs/tutorials/network-filesystems-filestore, "Disallowed paths").
DISALLOWED_MOUNTS = ("/dev", "/proc", "/sys")

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
# "up to 1000 concurrent requests per instance" (https://cloud.google.com/run/docs/about-concurrency); a request
# timeout of up to 60 minutes (https://cloud.google.com/run/docs/configuring/request-timeout).
MAX_CONCURRENCY = 1000
MAX_TIMEOUT_SECONDS = 3600

_MI = 1024**2
_GI = 1024**3
_QUANTITY = re.compile(r"(?P<number>\d+(\.\d+)?)(?P<suffix>Ki|Mi|Gi|Ti|k|M|G|T|)")
_SUFFIX_BYTES = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "Ki": 1024, "Mi": _MI, "Gi": _GI}
_SUFFIX_BYTES["Ti"] = 1024**4
# CPU: 1, 2, 4, 6 or 8, or a fraction of one from 0.08 (https://cloud.google.com/run/docs/configuring/services/cpu,
# its table of CPUs and memory; one older version of the page allows "any integer value up to a maximum of 8").
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
    # The names' forms are the protos' (see PARENT); the wording of the refusals is the emulator's.
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
    """Every check that needs nothing but the spec itself; raises INVALID_ARGUMENT naming the field.

    Two styles of message, as on Google: a rule of the request's shape (a required field, a limit the protos'
    comments state) is a "Violation in {request}.service.…"; a rule of Cloud Run's on values names the field from
    the template ("template.containers[0]…: Invalid value specified for …"). Where Google's words are not on record,
    the message is the emulator's own, in the same shape, and the comment beside the rule says so.
    """
    shape = f"Violation in {request}.service"
    if "template" not in service:
        # Google's words (googleapis/google-cloud-java#11101).
        raise invalid_argument(f"{shape}.template: required field not present.")
    template = service.template
    if len(service.description) > MAX_DESCRIPTION:
        # The limit is the proto's comment on Service.description; the wording is the emulator's.
        raise invalid_argument(
            f"{shape}.description: must be at most {MAX_DESCRIPTION} characters, got {len(service.description)}."
        )
    _check_system_keys(service, shape, creating=creating)
    _check_labels(service, template)
    _check_annotations(service, template, shape)
    _check_template(template, shape, service_id)
    _check_service_scaling(service.scaling, shape)
    if service.scaling.max_instance_count and service.launch_stage not in BETA_OR_EARLIER:
        # Google's words (GoogleCloudPlatform/magic-modules#14724, a create without the launch stage).
        raise invalid_argument(
            f"The feature '{SERVICE_MAX_FEATURE}' is not supported in the declared launch stage on resource "
            f"{service_id}. The launch stage annotation should be specified at least as BETA. Please visit "
            "https://cloud.google.com/run/docs/troubleshooting#launch-stage-validation for in-depth troubleshooting "
            "documentation."
        )
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


def _label_character(c: str) -> bool:
    """A lowercase letter (international ones too), a digit, '_' or '-'."""
    return c in "-_" or c.isdecimal() or (c.isalpha() and not c.isupper())


def _check_labels(service: run_v2.Service, template: run_v2.RevisionTemplate) -> None:
    """Google Cloud's label rules (see MAX_LABELS) on the service's labels and the template's."""
    for where, labels in (("labels", service.labels), ("template.labels", template.labels)):
        if len(labels) > MAX_LABELS:
            # The limit is Resource Manager's; the wording is the emulator's.
            raise invalid_argument(f"{where}: at most {MAX_LABELS} labels are allowed, got {len(labels)}.")
        for key, value in sorted(labels.items()):
            if not (
                0 < len(key) <= MAX_LABEL_LENGTH
                and key[0].isalpha()
                and not key[0].isupper()
                and all(map(_label_character, key))
            ):
                # Cloud Run's words (pulumi/pulumi-gcp#1387).
                raise invalid_argument(
                    f"At least one label does not conform to GCP naming style. Label key '{key}' violates format "
                    "constraints. The key must start with a lowercase character, can only contain lowercase letters, "
                    "numeric characters, underscores and dashes. The key can be at most 63 characters long. "
                    "International characters are allowed."
                )
            if len(value) > MAX_LABEL_LENGTH or not all(map(_label_character, value)):
                # Cloud Run's first sentence (pulumi/pulumi-gcp#1387), then Google's words for a value
                # (googleapis/gax-nodejs#1375).
                raise invalid_argument(
                    f"At least one label does not conform to GCP naming style. Label value '{value}' violates format "
                    "constraints. The value can only contain lowercase letters, numeric characters, underscores and "
                    "dashes. The value can be at most 63 characters long. International characters are allowed."
                )


def is_annotation_key(key: str) -> bool:
    """A Kubernetes qualified name: an optional DNS subdomain prefix and '/', then a name."""
    prefix, slash, name = key.rpartition("/")
    if slash and not (0 < len(prefix) <= 253 and _DNS_SUBDOMAIN.fullmatch(prefix)):
        return False
    return 0 < len(name) <= 63 and _ANNOTATION_NAME.fullmatch(name) is not None


def _check_annotations(service: run_v2.Service, template: run_v2.RevisionTemplate, shape: str) -> None:
    """Kubernetes' rules for annotations (see MAX_ANNOTATIONS_BYTES); the wording is the emulator's, after
    Kubernetes'."""
    for where, held in ((shape, service.annotations), (f"{shape}.template", template.annotations)):
        for key in sorted(held):
            if not is_annotation_key(key):
                raise invalid_argument(
                    f"{where}.annotations[{key}]: name part must consist of alphanumeric characters, '-', '_' or '.', "
                    "and must start and end with an alphanumeric character, at most 63 characters, after an "
                    "optional DNS subdomain prefix and '/'."
                )
        size = sum(len(k.encode()) + len(v.encode()) for k, v in held.items())
        if size > MAX_ANNOTATIONS_BYTES:
            raise invalid_argument(
                f"{where}.annotations: may not have more than {MAX_ANNOTATIONS_BYTES} bytes in all, got {size}."
            )


def _check_template(template: run_v2.RevisionTemplate, shape: str, service_id: str) -> None:
    if template.revision and (
        not template.revision.startswith(service_id + "-") or not is_dns_label(template.revision)
    ):
        # Knative's rule, which Cloud Run keeps: a revision's name starts with its service's and a hyphen
        # (RevisionTemplateSpec.Validate in knative/serving pkg/apis/serving/v1/revision_validation.go, '"%q must
        # have prefix %q"'); gcloud's --revision-suffix builds names so (RevisionNameChanges in
        # lib/googlecloudsdk/command_lib/run/config_changes.py). The wording is the emulator's.
        raise invalid_argument(
            f"{shape}.template.revision: '{template.revision}' must start with '{service_id}-' (the service name and "
            "a hyphen) and be a DNS label of lowercase letters, digits and hyphens, at most 63 characters."
        )
    containers = template.containers
    if not containers:
        # Google's shape of words for a required field (see "template" above; hashicorp/terraform-provider-google#20509
        # for containers being required).
        raise invalid_argument(f"{shape}.template.containers: required field not present.")
    if len(containers) > MAX_CONTAINERS:
        # The limit is the docs' (see MAX_CONTAINERS); the wording is the emulator's.
        raise invalid_argument(f"{shape}.template.containers: at most {MAX_CONTAINERS} containers are allowed.")
    with_ports = [i for i, c in enumerate(containers) if c.ports]
    if len(containers) > 1 and len(with_ports) != 1:
        # Google's words (GoogleCloudPlatform/terraform-google-cloud-run#302).
        raise invalid_argument(
            "template.containers: Revision template should contain exactly one container with an exposed port."
        )
    volumes = _check_volumes(template, shape)
    _check_vpc_access(template, shape)
    ingress = ingress_index(template)
    for index, container in enumerate(containers):
        _check_container(container, shape, index, volumes, ingress=index == ingress)
    _check_container_names(template)
    concurrency = template.max_instance_request_concurrency
    if concurrency != 0 and not 1 <= concurrency <= MAX_CONCURRENCY:
        # The limit is https://cloud.google.com/run/docs/about-concurrency; the wording follows Google's for memory.
        raise invalid_argument(
            "template.max_instance_request_concurrency: Invalid value specified for container concurrency. "
            f"Must be between 1 and {MAX_CONCURRENCY}, got {concurrency}."
        )
    gen2 = template.execution_environment == run_v2.ExecutionEnvironment.EXECUTION_ENVIRONMENT_GEN2
    for index, container in enumerate(containers):
        _check_resources(container, index, gen2=gen2)
    _check_fractional_cpu(template, concurrency or default_concurrency(template), gen2=gen2)
    if "timeout" in template:
        seconds = template.timeout.total_seconds()
        if not 1 <= seconds <= MAX_TIMEOUT_SECONDS:
            # The limit is https://cloud.google.com/run/docs/configuring/request-timeout (60 minutes); the wording
            # follows Google's for memory.
            raise invalid_argument(
                "template.timeout: Invalid value specified for timeout. Must be between 1 and "
                f"{MAX_TIMEOUT_SECONDS} seconds, got {seconds:g}."
            )
    scaling = template.scaling
    # Maximum instances are "any integer value from 1" (https://cloud.google.com/run/docs/configuring/max-instances),
    # minimum instances a count of instances kept, so 0 or more (the proto's comment on RevisionScaling); the wording
    # is the emulator's. The upper bound of max_instance_count is not checked: it is each project's regional CPU and
    # memory quota divided by the revision's CPU and memory (https://cloud.google.com/run/docs/configuring/
    # max-instances-limits), which varies by project.
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


def _check_service_scaling(scaling: run_v2.ServiceScaling, shape: str) -> None:
    """The service-level scaling (gcloud run services update --min, beta's --max): "total min instances for the
    service" and "total max instances for the service", each "divided among all revisions with specified traffic"
    (the proto's comments on ServiceScaling in google/cloud/run/v2/vendor_settings.proto). Counts, so 0 or more, 0
    being none set; a maximum below the minimum, as the template's is refused. The wording is the emulator's, in the
    template's shape."""
    for name in ("min_instance_count", "max_instance_count"):
        value = getattr(scaling, name)
        if value < 0:
            raise invalid_argument(f"{shape}.scaling.{name}: must be 0 or more, got {value}.")
    if scaling.max_instance_count and scaling.min_instance_count > scaling.max_instance_count:
        raise invalid_argument(f"{shape}.scaling.max_instance_count: must be greater or equal than min_instance_count.")


def _check_volumes(template: run_v2.RevisionTemplate, shape: str) -> dict[str, run_v2.Volume]:
    """The template's volumes by name; a volume needs a name (the proto: "Required. Volume's name.") that no other
    volume has (Knative's ValidateVolumes in knative/serving pkg/apis/serving/k8s_validation.go, in its words)."""
    volumes: dict[str, run_v2.Volume] = {}
    for index, volume in enumerate(template.volumes):
        where = f"{shape}.template.volumes[{index}].name"
        if not volume.name:
            raise invalid_argument(f"{where}: required field not present.")
        if volume.name in volumes:
            raise invalid_argument(f'{where}: duplicate volume name "{volume.name}"')
        _check_volume_source(volume, f"{shape}.template.volumes[{index}]", template)
        volumes[volume.name] = volume
    return volumes


def _check_volume_source(volume: run_v2.Volume, where: str, template: run_v2.RevisionTemplate) -> None:
    """What each kind of volume needs, from the proto's comments on its source (the wording is the emulator's where no
    source gives Google's)."""
    cloud_sql = "cloud_sql_instance" in volume
    if cloud_sql != (volume.name == CLOUD_SQL_VOLUME):
        raise invalid_argument(
            f"{where}.name: Cloud SQL volume must be named '{CLOUD_SQL_VOLUME}', and '{CLOUD_SQL_VOLUME}' is reserved "
            "for Cloud SQL volumes."
        )
    if cloud_sql:
        for instance in volume.cloud_sql_instance.instances:
            if not _CLOUD_SQL_INSTANCE.fullmatch(instance):
                raise invalid_argument(
                    f"{where}.cloud_sql_instance.instances: '{instance}' is not a Cloud SQL instance: use "
                    "{project}:{location}:{instance}."
                )
    if "gcs" in volume and not volume.gcs.bucket:
        # GCSVolumeSource.bucket: "Cloud Storage Bucket name." (required in gcloud's --add-volume and Terraform).
        raise invalid_argument(f"{where}.gcs.bucket: required field not present.")
    if "nfs" in volume:
        # NFSVolumeSource: "Hostname or IP address of the NFS server", "Path that is exported by the NFS server."
        for field in ("server", "path"):
            if not getattr(volume.nfs, field):
                raise invalid_argument(f"{where}.nfs.{field}: required field not present.")
        if template.execution_environment == run_v2.ExecutionEnvironment.EXECUTION_ENVIRONMENT_GEN1:
            # "Network file system support" is a second generation feature
            # (https://cloud.google.com/run/docs/about-execution-environments); unspecified lets Cloud Run choose it.
            raise invalid_argument(f"{where}.nfs: NFS volumes need the second generation execution environment.")
    if "secret" in volume:
        # SecretVolumeSource.secret: "Required."; its items: "When items are defined, they must specify a path and a
        # version."
        if not volume.secret.secret:
            raise invalid_argument(f"{where}.secret.secret: required field not present.")
        for position, item in enumerate(volume.secret.items):
            for field in ("path", "version"):
                if not getattr(item, field):
                    raise invalid_argument(f"{where}.secret.items[{position}].{field}: required field not present.")


def _check_vpc_access(template: run_v2.RevisionTemplate, shape: str) -> None:
    """A connector or Direct VPC egress, one and only one: Google's words when both or neither are set, egress alone
    included (googleapis/google-cloud-node#4731, hashicorp/terraform-provider-google#15568). One network interface
    ("Currently only single network interface is supported", the proto's comment on VpcAccess.network_interfaces),
    naming a network or a subnetwork (NetworkInterface's comments: one may be left out, the other then implies it)."""
    access = template.vpc_access
    # Empty is none: gcloud's v2 --clear-network sends it so (no connector, no interface, egress unspecified).
    if not access.connector and not access.network_interfaces and not access.egress:
        return
    if bool(access.connector) == bool(access.network_interfaces):
        raise invalid_argument(
            f"{shape}.template.vpc_access.connector: one and only one of connector and network_interfaces must be set."
        )
    if len(access.network_interfaces) > 1:
        raise invalid_argument(
            f"{shape}.template.vpc_access.network_interfaces: only a single network interface is supported."
        )
    for interface in access.network_interfaces:
        if not interface.network and not interface.subnetwork:
            raise invalid_argument(
                f"{shape}.template.vpc_access.network_interfaces[0]: network or subnetwork must be set."
            )


def _check_container(
    container: run_v2.Container, shape: str, index: int, volumes: dict[str, run_v2.Volume], *, ingress: bool
) -> None:
    where = f"{shape}.template.containers[{index}]"
    if not container.image:
        # The proto's comment on Container.image: "Required."
        raise invalid_argument(f"{where}.image: required field not present.")
    if not IMAGE_REFERENCE.fullmatch(container.image):
        # Knative refuses an image it cannot parse as a reference ("Failed to parse image reference", validate in
        # knative/serving pkg/apis/serving/k8s_validation.go); the grammar is Docker's. The wording is the emulator's.
        raise invalid_argument(f"{where}.image: invalid image reference '{container.image}'.")
    if len(container.ports) > 1:
        # Google's words (GoogleCloudPlatform/magic-modules#10173).
        raise invalid_argument(f"{where}.ports: ports should contain 0 or 1 port.")
    for port in container.ports:
        # The proto's comment on ContainerPort.container_port: "0 < container_port < 65536"; 0 is unset (8080).
        if not 0 <= port.container_port <= 65535:
            raise invalid_argument(
                f"{where}.ports[0].container_port: must be between 1 and 65535, got {port.container_port}."
            )
        if port.name not in PORT_NAMES:
            # The rule is the proto's comment on ContainerPort.name; the words Knative's (validateContainerPorts).
            raise invalid_argument(
                f"{where}.ports[0].name: Port name {port.name} is not allowed. Name must be empty, or one of: "
                "'h2c', 'http1'."
            )
    _check_env(container, shape, index, ingress=ingress)
    _check_volume_mounts(container, where, volumes)
    for kind in ("startup_probe", "liveness_probe"):
        if kind in container:
            _check_probe(getattr(container, kind), f"{where}.{kind}", kind)


def _check_env(container: run_v2.Container, shape: str, index: int, *, ingress: bool) -> None:
    where = f"{shape}.template.containers[{index}]"
    if len(container.env) > MAX_ENV_VARS:
        # The limit is the docs' (see MAX_ENV_VARS); the wording is the emulator's.
        raise invalid_argument(
            f"{where}.env: at most {MAX_ENV_VARS} environment variables are allowed, got {len(container.env)}."
        )
    seen: set[str] = set()
    reserved: list[str] = []
    for position, env in enumerate(container.env):
        field = f"{where}.env[{position}]"
        if not env.name:
            # The proto's comment on EnvVar.name: "Required."
            raise invalid_argument(f"{field}.name: required field not present.")
        if len(env.name) > MAX_ENV_NAME:
            # The wording is Google's for a value (below), which the proto's comment words alike for a name.
            raise invalid_argument(f"{field}.name: length cannot exceed {MAX_ENV_NAME}.")
        if "=" in env.name:
            # gcloud's words (see GOOGLE_ENV_PREFIX).
            raise invalid_argument(f"{field}.name: Environment variable keys cannot contain `=`.")
        if not _ENV_NAME.fullmatch(env.name):
            raise invalid_argument(
                f"{field}.name: '{env.name}' is not a valid environment variable name: use letters, digits, '_', "
                "'-' and '.', not starting with a digit."
            )
        if env.name.startswith(GOOGLE_ENV_PREFIX):
            # gcloud's words (see GOOGLE_ENV_PREFIX).
            raise invalid_argument(
                f"{field}.name: Environment variable keys that start with `{GOOGLE_ENV_PREFIX}` are reserved for use "
                "by deployment tools and cannot be specified manually."
            )
        if env.name in seen:
            # No reference found for this refusal: kept, as it was, so as not to loosen the emulator.
            raise invalid_argument(f"{field}.name: duplicate environment variable name '{env.name}'.")
        seen.add(env.name)
        if env.name in RESERVED_ENV and (ingress or env.name not in INGRESS_ONLY_ENV):
            reserved.append(env.name)
        if len(env.value.encode()) > MAX_ENV_VALUE_BYTES:
            # Google's words (mozilla/bugbug#6233, the same v2 rule on a job's env override).
            raise invalid_argument(f"{field}.value: length cannot exceed {MAX_ENV_VALUE_BYTES}.")
        # value and value_source are a oneof: the wire cannot carry both.
        if "value_source" in env and not env.value_source.secret_key_ref.secret:
            # The proto's comment on SecretKeySelector.secret: "Required."
            raise invalid_argument(f"{field}.value_source.secret_key_ref.secret: required field not present.")
    if reserved:
        # Cloud Run's own wording, about the env list rather than one entry (hashicorp/terraform-provider-google#26877).
        raise invalid_argument(
            f"template.containers[{index}].env: The following reserved env names were provided: {', '.join(reserved)}. "
            "These values are automatically set by the system."
        )


def _check_volume_mounts(container: run_v2.Container, where: str, volumes: dict[str, run_v2.Volume]) -> None:
    """Each mount names a volume of the template (the proto: "This must match the Name of a Volume."; Knative's words,
    validateVolumeMounts in knative/serving pkg/apis/serving/k8s_validation.go) at a path of its own: required
    but for Cloud SQL, without ':' and /cloudsql for Cloud SQL (the proto's comment on mount_path), absolute and not
    mounted twice (Knative's validateVolumeMounts)."""
    paths: set[str] = set()
    for index, mount in enumerate(container.volume_mounts):
        field = f"{where}.volume_mounts[{index}]"
        volume = volumes.get(mount.name)
        if volume is None:
            raise invalid_argument(f"{field}.name: volumeMount has no matching volume")
        path = mount.mount_path
        cloud_sql = "cloud_sql_instance" in volume
        if not path:
            if cloud_sql:
                continue
            raise invalid_argument(f"{field}.mount_path: required field not present.")
        if ":" in path:
            raise invalid_argument(f"{field}.mount_path: must not contain ':', got '{path}'.")
        if cloud_sql and path != CLOUD_SQL_MOUNT:
            raise invalid_argument(
                f"{field}.mount_path: a Cloud SQL volume is mounted at {CLOUD_SQL_MOUNT} or with no path, got '{path}'."
            )
        if not path.startswith("/"):
            raise invalid_argument(f"{field}.mount_path: invalid value: {path}: must be an absolute path.")
        if any(path == top or path.startswith(top + "/") for top in DISALLOWED_MOUNTS):
            # The rule is the docs' (see DISALLOWED_MOUNTS); the wording is the emulator's.
            raise invalid_argument(f"{field}.mount_path: a volume cannot be mounted at or under /dev, /proc or /sys.")
        clean = posixpath.normpath(path)
        if clean in paths:
            raise invalid_argument(f'{field}.mount_path: invalid value: "{path}" must be unique')
        paths.add(clean)


def _check_probe(probe: run_v2.Probe, where: str, kind: str) -> None:
    """The limits of the proto's comments on Probe (see PROBE_MAX_DELAY); the wording is the emulator's."""
    types = [name for name in PROBE_TYPES if name in probe]
    if len(types) != 1:
        # The proto: "Exactly one of httpGet, tcpSocket, or grpc must be specified." (A oneof on the wire, so only
        # none can arrive.)
        raise invalid_argument(f"{where}: exactly one of http_get, tcp_socket or grpc must be specified.")
    if kind == "liveness_probe" and types[0] not in LIVENESS_PROBE_TYPES:
        raise invalid_argument(f"{where}.{types[0]}: a liveness probe is an HTTP or a gRPC probe, not TCP.")
    port = getattr(probe, types[0]).port
    if not 0 <= port <= 65535:
        # The proto's comments on the actions' port: "Must be in the range 1 to 65535"; 0 is the container's port.
        raise invalid_argument(f"{where}.{types[0]}.port: must be between 1 and 65535, got {port}.")
    name = kind.replace("_probe", "")
    # (field, value, lowest, highest): 0 in timeout and period is unset, so only a negative is below their 1.
    limits = (
        ("initial_delay_seconds", probe.initial_delay_seconds, 0, PROBE_MAX_DELAY[kind]),
        ("timeout_seconds", probe.timeout_seconds, 1, PROBE_MAX_TIMEOUT),
        ("period_seconds", probe.period_seconds, 1, PROBE_MAX_PERIOD[kind]),
    )
    for field, value, low, high in limits:
        if value < 0 or value > high:
            raise invalid_argument(
                f"{where}.{field}: must be between {low} and {high} for a {name} probe, got {value}."
            )
    if probe.failure_threshold < 0:
        raise invalid_argument(f"{where}.failure_threshold: must be at least 1, got {probe.failure_threshold}.")
    timeout = probe.timeout_seconds or PROBE_DEFAULT_TIMEOUT
    period = probe.period_seconds or PROBE_DEFAULT_PERIOD
    failures = probe.failure_threshold or PROBE_DEFAULT_FAILURES
    if kind == "startup_probe" and failures * period > STARTUP_PROBE_MAX_SECONDS:
        raise invalid_argument(
            f"{where}: failure_threshold * period_seconds must not exceed {STARTUP_PROBE_MAX_SECONDS} seconds, got "
            f"{failures} * {period}."
        )
    if timeout > period:
        raise invalid_argument(
            f"{where}.timeout_seconds: must not be greater than period_seconds ({period}), got {timeout}."
        )


def _check_container_names(template: run_v2.RevisionTemplate) -> None:
    """Names are optional (Cloud Run names an unnamed container, hashicorp/terraform-provider-google#21035), of
    _CONTAINER_NAME's form (Google's words, same issue) and each its own (Kubernetes' rule for a pod's containers, to
    which the Knative specification's Container.name defers; the wording is Kubernetes'). depends_on names other
    containers (the proto: "Names of the containers that must start before this container."); a sidecar depended on
    must have a startup probe (Google's words, GoogleCloudPlatform/cloud-run-samples#230). The ingress container is
    left out of that last rule: Cloud Run gives it a default TCP startup probe
    (https://cloud.google.com/run/docs/configuring/healthchecks), which the emulator does not fill in."""
    names: dict[str, int] = {}
    for index, container in enumerate(template.containers):
        name = container.name
        if not name:
            continue
        if len(name) > MAX_CONTAINER_NAME or not _CONTAINER_NAME.fullmatch(name):
            raise invalid_argument(
                f"template.containers[{index}].name: Invalid container name '{name}'. Must conform to RFC 1123: only "
                "lowercase letters, digits, hyphens, and periods are allowed, must begin and end with a letter or "
                "digit, and be less than 64 characters"
            )
        if name in names:
            raise invalid_argument(f'template.containers[{index}].name: Duplicate value: "{name}"')
        names[name] = index
    ingress = ingress_index(template)
    for index, container in enumerate(template.containers):
        for dependency in container.depends_on:
            where = f"template.containers[{index}].depends_on"
            target = names.get(dependency)
            if target is None or target == index:
                # The wording is the emulator's.
                raise invalid_argument(
                    f"{where}: Dependent container '{dependency}' is not another container of the revision template."
                )
            if target != ingress and "startup_probe" not in template.containers[target]:
                raise invalid_argument(f"{where}: Dependent container '{dependency}' must have startup probe specified")


def _check_resources(container: run_v2.Container, index: int, *, gen2: bool) -> None:
    limits = container.resources.limits
    where = f"template.containers[{index}].resources.limits"
    cpu_text = limits.get("cpu", DEFAULT_CPU)
    milli = millicpu(cpu_text)
    if milli is None or not (MIN_MILLICPU <= milli < 1000 or (milli % 1000 == 0 and milli // 1000 in WHOLE_CPUS)):
        # The values are the docs' (see WHOLE_CPUS); the wording after "Invalid value specified for cpu." is the
        # emulator's.
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
        # Google's words (googleapis/repo-automation-bots#3875), and their gen2 variant
        # (MarkEdmondson1234/googleCloudRunner#137).
        environment = " with gen2 execution environment" if gen2 else ""
        raise invalid_argument(
            f"{where}.memory: Invalid value specified for memory{environment}. For {_cpu_label(milli)} CPU, memory "
            f"must be between {_memory_label(low)} and {_memory_label(high)} inclusive."
        )


def total_millicpu(template: run_v2.RevisionTemplate) -> int:
    """The CPU the template's containers request together, each at Cloud Run's default when it sets none."""
    return sum(millicpu(c.resources.limits.get("cpu", DEFAULT_CPU)) or 0 for c in template.containers)


def _check_fractional_cpu(template: run_v2.RevisionTemplate, concurrency: int, *, gen2: bool) -> None:
    """Below one CPU in all, Cloud Run needs concurrency 1, CPU allocated only during requests and the first
    generation execution environment (https://cloud.google.com/run/docs/configuring/services/cpu, "If you use less
    than 1 CPU, the following requirements are enforced"). Google names the field without a container's index, the
    total being the revision's: "template.containers.resources.limits.cpu" (firebase/friendlyeats-web#291)."""
    if total_millicpu(template) >= 1000:
        return
    where = "template.containers.resources.limits.cpu: Invalid value specified for cpu. Total cpu < 1 is not supported"
    if concurrency > 1:
        # Google's words (nearform/slack-knowledgebase-chatgpt-responder#980).
        raise invalid_argument(f"{where} with concurrency > 1.")
    ingress = template.containers[ingress_index(template)]
    # The proto's comment on ResourceRequirements.cpu_idle: a caller who sets resources and not cpu_idle gets CPU
    # always allocated. Cloud Run v1 keeps this per revision (run.googleapis.com/cpu-throttling); the ingress
    # container's stands for it here.
    if "resources" in ingress and not ingress.resources.cpu_idle:
        # Google's words (world-federation-of-advertisers/cross-media-measurement#3832).
        raise invalid_argument(f"{where} with cpu always allocated (unthrottled).")
    if gen2:
        # The wording is the emulator's, after Google's two above.
        raise invalid_argument(f"{where} with gen2 execution environment.")


def _check_traffic(traffic: Sequence[run_v2.TrafficTarget], shape: str, service_id: str) -> None:
    """The traffic rules Cloud Run keeps from Knative (validateTrafficList and TrafficTarget.Validate in
    knative/serving pkg/apis/serving/v1/route_validation.go), with v2's allocation types: LATEST names no revision,
    REVISION names one (the proto's comment on TrafficTargetAllocationType)."""
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
            # Knative's words (ErrOutOfBoundsValue).
            raise invalid_argument(f"{where}.percent: expected 0 <= {target.percent} <= 100")
        if target.tag:
            if not is_dns_label(target.tag):
                # Knative's rule (a DNS-1035 label); the wording is the emulator's.
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
                # Knative's words.
                raise invalid_argument(f'{where}.tag: Multiple definitions for "{target.tag}"')
            tags.add(target.tag)
    total = sum(target.percent for target in traffic)
    if total != 100:
        # Knative's words.
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
    return DEFAULT_CONCURRENCY if total_millicpu(template) >= 1000 else DEFAULT_CONCURRENCY_BELOW_ONE_CPU


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


def container_port(container: run_v2.Container) -> int:
    """The port the container is told to listen on (PORT), as Cloud Run names it in its messages."""
    return container.ports[0].container_port if container.ports else DEFAULT_PORT


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
    """Traffic naming a revision that is not there: Google's words (google-github-actions/deploy-cloudrun#12 quotes
    "Revision 'NAME' does not exist or is deleted")."""
    return invalid_argument(
        f"Revision '{revision}' does not exist or is deleted. Update all traffic to route to currently available "
        "revisions."
    )
