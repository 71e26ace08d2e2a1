"""Cloud Run's v1 resources (Knative serving's shapes) as views of the v2 state, both ways.

Cloud Run serves one set of services through two APIs: v1 speaks Knative's Service and Revision objects
(`metadata.annotations`, `spec.template.metadata.name`, `status.conditions`), v2 its own messages. The v2 protos'
comment on Service.annotations says how they meet: "All system annotations in v1 now have a corresponding field in v2
Service". So a v1 body becomes the v2 Service the emulator stores (its system annotations become those fields), and a
stored service renders as the v1 object gcloud reads back. Which annotation each resource kind accepts is the v1
ObjectMeta's field comment (https://cloud.google.com/run/docs/reference/rest/v1/ObjectMeta; the same text is in gcloud's
generated client, lib/googlecloudsdk/generated_clients/apis/run/v1/run_v1_messages.py).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import grpc
from google.api import launch_stage_pb2
from google.cloud import run_v2
from google.protobuf import duration_pb2, json_format

from doki_cli.emulator import protojson
from doki_cli.emulator.errors import ApiError, invalid_argument
from doki_cli.emulator.run import validation

API_VERSION = "serving.knative.dev/v1"
LOCATION_LABEL = "cloud.googleapis.com/location"
SERVICE_LABEL = "serving.knative.dev/service"
CONFIGURATION_LABEL = "serving.knative.dev/configuration"
ROUTE_LABEL = "serving.knative.dev/route"
CREATOR = "serving.knative.dev/creator"
LAST_MODIFIER = "serving.knative.dev/lastModifier"
INGRESS_STATUS = "run.googleapis.com/ingress-status"
URLS = "run.googleapis.com/urls"

# The kinds each Cloud Run annotation is accepted on (the v1 ObjectMeta comment; see the module docstring).
# Only Service and Revision matter here: a Service's template is a Revision's metadata.
ANNOTATION_KINDS: dict[str, tuple[str, ...]] = {
    "autoscaling.knative.dev/maxScale": ("Revision",),
    "autoscaling.knative.dev/minScale": ("Revision",),
    "run.googleapis.com/base-images": ("Service", "Revision"),
    "run.googleapis.com/binary-authorization-breakglass": ("Service", "Job"),
    "run.googleapis.com/binary-authorization": ("Service", "Job", "Execution"),
    "run.googleapis.com/build-base-image": ("Service",),
    "run.googleapis.com/build-enable-automatic-updates": ("Service",),
    "run.googleapis.com/build-environment-variables": ("Service",),
    "run.googleapis.com/build-function-target": ("Service",),
    "run.googleapis.com/build-id": ("Service",),
    "run.googleapis.com/build-image-uri": ("Service",),
    "run.googleapis.com/build-name": ("Service",),
    "run.googleapis.com/build-service-account": ("Service",),
    "run.googleapis.com/build-source-location": ("Service",),
    "run.googleapis.com/build-worker-pool": ("Service",),
    "run.googleapis.com/gpu-zonal-redundancy-disabled": ("Revision",),
    "run.googleapis.com/secure-session-agent": ("Revision",),
    "run.googleapis.com/client-name": ("Service", "Revision", "Job", "Execution"),
    "run.googleapis.com/cloudsql-instances": ("Revision", "Execution"),
    "run.googleapis.com/container-dependencies": ("Revision",),
    "run.googleapis.com/cpu-throttling": ("Revision",),
    "run.googleapis.com/custom-audiences": ("Service",),
    "run.googleapis.com/default-url-disabled": ("Service",),
    "run.googleapis.com/description": ("Service",),
    "run.googleapis.com/encryption-key-shutdown-hours": ("Revision",),
    "run.googleapis.com/encryption-key": ("Revision", "Execution"),
    "run.googleapis.com/execution-environment": ("Revision", "Execution"),
    "run.googleapis.com/gc-traffic-tags": ("Service",),
    "run.googleapis.com/health-check-disabled": ("Revision",),
    "run.googleapis.com/ingress": ("Service",),
    "run.googleapis.com/launch-stage": ("Service", "Job"),
    "run.googleapis.com/minScale": ("Service",),
    "run.googleapis.com/network-interfaces": ("Revision", "Execution"),
    "run.googleapis.com/post-key-revocation-action-type": ("Revision",),
    "run.googleapis.com/secrets": ("Revision", "Execution"),
    "run.googleapis.com/sessionAffinity": ("Revision",),
    "run.googleapis.com/startup-cpu-boost": ("Revision",),
    "run.googleapis.com/vpc-access-connector": ("Revision", "Execution"),
    "run.googleapis.com/vpc-access-egress": ("Revision", "Execution"),
    # gcloud sends these with every write (run.googleapis.com/client-version beside client-name: ClientNameAnnotation
    # in lib/googlecloudsdk/command_lib/run/config_changes.py) and Cloud Run keeps them.
    "run.googleapis.com/client-version": ("Service", "Revision", "Job", "Execution"),
    # Accepted on a service: the invoker check off (gcloud's --no-invoker-iam-check sets it, DISABLE_IAM_ANNOTATION in
    # lib/googlecloudsdk/api_lib/run/container_resource.py), Identity-Aware Proxy (IAP_ANNOTATION in .../service.py).
    "run.googleapis.com/invoker-iam-disabled": ("Service",),
    "run.googleapis.com/iap-enabled": ("Service",),
}
# Output only: what a client sends back of them changes nothing ("run.googleapis.com/ingress-status is output-only",
# the v1 ObjectMeta comment; the creator, last modifier and URLs are Cloud Run's record).
OUTPUT_ANNOTATIONS = (CREATOR, LAST_MODIFIER, INGRESS_STATUS, URLS, "run.googleapis.com/operation-id")
# Cloud Run features the emulator does not model: a body that asks for one is refused rather than half-served.
UNMODELLED = (
    "run.googleapis.com/base-images",
    "run.googleapis.com/build-base-image",
    "run.googleapis.com/build-enable-automatic-updates",
    "run.googleapis.com/build-environment-variables",
    "run.googleapis.com/build-function-target",
    "run.googleapis.com/build-id",
    "run.googleapis.com/build-image-uri",
    "run.googleapis.com/build-name",
    "run.googleapis.com/build-service-account",
    "run.googleapis.com/build-source-location",
    "run.googleapis.com/build-worker-pool",
    "run.googleapis.com/gpu-zonal-redundancy-disabled",
    "run.googleapis.com/secure-session-agent",
    "run.googleapis.com/binary-authorization-breakglass",
    "run.googleapis.com/container-dependencies",
    "run.googleapis.com/encryption-key-shutdown-hours",
    "run.googleapis.com/gc-traffic-tags",
    "run.googleapis.com/post-key-revocation-action-type",
    "run.googleapis.com/secrets",
)
# Labels Cloud Run puts on services and revisions (its location, Knative's links between the objects, the startup
# probe it gave the revision: gcloud reads run.googleapis.com/startupProbeType in printers/k8s_object_printer_util.py).
OUTPUT_LABELS = (
    LOCATION_LABEL,
    "run.googleapis.com/startupProbeType",
    SERVICE_LABEL,
    "serving.knative.dev/serviceUid",
    CONFIGURATION_LABEL,
    "serving.knative.dev/configurationGeneration",
    ROUTE_LABEL,
)
SYSTEM_PREFIXES = ("run.googleapis.com/", "autoscaling.knative.dev/", "serving.knative.dev/", "cloud.googleapis.com/")

_INGRESS: dict[str, Any] = {
    "all": run_v2.IngressTraffic.INGRESS_TRAFFIC_ALL,
    "internal": run_v2.IngressTraffic.INGRESS_TRAFFIC_INTERNAL_ONLY,
    "internal-and-cloud-load-balancing": run_v2.IngressTraffic.INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER,
}
# What v1 holds as annotations and v2 as fields of the template (the v2 protos: "All system annotations in v1 now have
# a corresponding field in v2"): Cloud SQL instances, comma-separated (gcloud's --add-cloudsql-instances writes them
# so, CloudSQLChanges in lib/googlecloudsdk/command_lib/run/config_changes.py), which v2 holds as the volume named
# cloudsql mounted at /cloudsql (https://cloud.google.com/sql/docs/postgres/connect-run, its YAML and Terraform
# tabs); Direct VPC egress's interface as a JSON list of one (NetworkInterfacesChange, same file).
CLOUD_SQL_ANNOTATION = "run.googleapis.com/cloudsql-instances"
NETWORK_INTERFACES_ANNOTATION = "run.googleapis.com/network-interfaces"
# v1 mounts a Cloud Storage bucket as a CSI volume of this driver, the bucket in its attributes (gcloud's
# --add-volume type=cloud-storage, _GcsVolume in lib/googlecloudsdk/command_lib/run/volumes.py).
GCSFUSE_DRIVER = "gcsfuse.run.googleapis.com"
_EXECUTION_ENVIRONMENT: dict[str, Any] = {
    "gen1": run_v2.ExecutionEnvironment.EXECUTION_ENVIRONMENT_GEN1,
    "gen2": run_v2.ExecutionEnvironment.EXECUTION_ENVIRONMENT_GEN2,
}
_EGRESS: dict[str, Any] = {
    "all-traffic": run_v2.VpcAccess.VpcEgress.ALL_TRAFFIC,
    "private-ranges-only": run_v2.VpcAccess.VpcEgress.PRIVATE_RANGES_ONLY,
}
# v2 condition states as Knative's condition status strings.
_STATUS = {
    run_v2.Condition.State.CONDITION_SUCCEEDED: "True",
    run_v2.Condition.State.CONDITION_FAILED: "False",
}
# Container fields v1 accepts that Cloud Run ignores (Kubernetes' fields the v1 Container message keeps).
_IGNORED_CONTAINER_FIELDS = ("imagePullPolicy", "terminationMessagePath", "terminationMessagePolicy")


def _bad(field: str, description: str) -> ApiError:
    """A refusal of a v1 body: Cloud Run's shape, "field: description" (garbetjie/terraform-google-cloud-run#16)."""
    return invalid_argument(f"{field}: {description}")


def _truth(value: str, field: str, key: str) -> bool:
    lowered = value.strip().lower()
    if lowered not in ("true", "false"):
        raise _bad(field, f"Annotation '{key}' must be 'true' or 'false', got '{value}'.")
    return lowered == "true"


def _count(value: str, field: str, key: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise _bad(field, f"Annotation '{key}' must be an integer, got '{value}'.") from None


def _split_annotations(annotations: dict[str, str], kind: str, field: str) -> tuple[dict[str, str], dict[str, str]]:
    """(Cloud Run's annotations, the user's) of a v1 object's metadata, refusing what `kind` does not accept."""
    system: dict[str, str] = {}
    user: dict[str, str] = {}
    for key, value in annotations.items():
        if key in OUTPUT_ANNOTATIONS:
            continue
        if not key.startswith(SYSTEM_PREFIXES):
            user[key] = value
            continue
        kinds = ANNOTATION_KINDS.get(key)
        if kinds is None:
            # Google's shape of words for an annotation it does not take (see _bad); an unknown one names no kinds.
            raise _bad(field, f"Annotation '{key}' is not supported.")
        if kind not in kinds:
            raise _bad(
                field,
                f"Annotation '{key}' is not supported on resources of kind '{kind}'. Supported kinds are: "
                + ", ".join(kinds),
            )
        if key in UNMODELLED:
            raise ApiError(
                grpc.StatusCode.UNIMPLEMENTED,
                f"{field}: the emulator does not model annotation '{key}' (Cloud Run accepts it).",
            )
        system[key] = value
    return system, user


def _parse(message_type: Any, data: dict[str, Any], field: str) -> Any:
    try:
        pb = json_format.ParseDict(data, message_type.pb()())
    except json_format.ParseError as exc:
        # Google's front end refuses a field it does not know: "Invalid JSON payload received. Unknown name ...".
        raise invalid_argument(f"Invalid JSON payload received at '{field}'. {exc}") from None
    return message_type.wrap(pb)


# -- v1 -> v2 -------------------------------------------------------------------------------------------------------


def _container_from_v1(data: dict[str, Any], where: str) -> dict[str, Any]:
    """A v1 container as the v2 Container's JSON: the same names but for env sources and resources."""
    container = {k: v for k, v in data.items() if k not in _IGNORED_CONTAINER_FIELDS}
    env = []
    for index, variable in enumerate(container.get("env") or []):
        variable = dict(variable)
        source = variable.pop("valueFrom", None)
        if source is not None:
            ref = source.get("secretKeyRef")
            if ref is None or set(source) != {"secretKeyRef"}:
                raise _bad(f"{where}.env[{index}].valueFrom", "only secretKeyRef is supported.")
            variable["valueSource"] = {"secretKeyRef": {"secret": ref.get("name", ""), "version": ref.get("key", "")}}
        env.append(variable)
    if env:
        container["env"] = env
    resources = dict(container.get("resources") or {})
    # v1's requests default to the limits and v2 has none (the v1 ResourceRequirements comment).
    resources.pop("requests", None)
    container["resources"] = resources
    # A mount's readOnly is "Not used by Cloud Run." (the v1 VolumeMount comment); v2 has no such field.
    container["volumeMounts"] = [
        {k: v for k, v in mount.items() if k != "readOnly"} for mount in container.get("volumeMounts") or []
    ]
    return container


def _volume_from_v1(data: dict[str, Any], where: str) -> dict[str, Any]:
    volume = dict(data)
    secret = volume.pop("secret", None)
    if secret is not None:
        items = [
            {
                "path": item.get("path", ""),
                "version": item.get("key", ""),
                **({"mode": item["mode"]} if "mode" in item else {}),
            }
            for item in secret.get("items") or []
        ]
        volume["secret"] = {"secret": secret.get("secretName", ""), "items": items}
        if "defaultMode" in secret:
            volume["secret"]["defaultMode"] = secret["defaultMode"]
    if "configMap" in volume:
        # "Not supported in Cloud Run." (the v1 Volume message's comment on configMap, run_v1_messages.py).
        raise _bad(f"{where}.configMap", "Not supported in Cloud Run.")
    empty_dir = volume.get("emptyDir")
    if isinstance(empty_dir, dict) and "medium" in empty_dir:
        # v1 spells the medium as Kubernetes does ("Memory", which gcloud's --add-volume type=in-memory sends:
        # lib/googlecloudsdk/command_lib/run/volumes.py); v2 as its enum (MEMORY).
        medium = {"Memory": "MEMORY", "": "MEDIUM_UNSPECIFIED"}.get(empty_dir["medium"])
        if medium is None:
            raise _bad(f"{where}.emptyDir.medium", f"'{empty_dir['medium']}' is not a medium: use Memory.")
        volume["emptyDir"] = {**empty_dir, "medium": medium}
    csi = volume.pop("csi", None)
    if csi is not None:
        attributes = csi.get("volumeAttributes") or {}
        if csi.get("driver") != GCSFUSE_DRIVER or set(attributes) - {"bucketName", "mountOptions"}:
            raise ApiError(
                grpc.StatusCode.UNIMPLEMENTED,
                f"{where}.csi: the emulator models Cloud Storage volumes ({GCSFUSE_DRIVER}: bucketName, mountOptions) "
                "only.",
            )
        volume["gcs"] = {"bucket": attributes.get("bucketName", ""), "readOnly": bool(csi.get("readOnly", False))}
        if attributes.get("mountOptions"):
            # gcloud joins them with commas (_GcsVolume in lib/googlecloudsdk/command_lib/run/volumes.py).
            volume["gcs"]["mountOptions"] = attributes["mountOptions"].split(",")
    return volume


def _template_from_v1(template: dict[str, Any]) -> tuple[run_v2.RevisionTemplate, dict[str, str]]:
    """The v2 template and the labels only v1 holds (prefixed Kubernetes keys, e.g. client.knative.dev/nonce)."""
    metadata = template.get("metadata") or {}
    # Labels Cloud Run sets itself come back in what clients send: gcloud's --update-labels copies the service's
    # labels, cloud.googleapis.com/location among them, into the template (LabelChanges in
    # lib/googlecloudsdk/command_lib/run/config_changes.py). They change nothing.
    labels = {k: v for k, v in (metadata.get("labels") or {}).items() if k not in OUTPUT_LABELS}
    knative_labels = {k: v for k, v in labels.items() if "/" in k}
    for key in knative_labels:
        if not validation.is_annotation_key(key):
            # Kubernetes' rule for a label key, a qualified name as for annotations; the wording is the emulator's.
            raise _bad("spec.template.metadata.labels", f"Label key '{key}' is not a qualified name.")
    spec = dict(template.get("spec") or {})
    system, user = _split_annotations(
        metadata.get("annotations") or {}, "Revision", "spec.template.metadata.annotations"
    )
    where = "spec.template.spec"
    containers = [
        _container_from_v1(c, f"{where}.containers[{i}]") for i, c in enumerate(spec.pop("containers", []) or [])
    ]
    volumes = [_volume_from_v1(v, f"{where}.volumes[{i}]") for i, v in enumerate(spec.pop("volumes", []) or [])]
    concurrency = _integer(spec.pop("containerConcurrency", None), f"{where}.containerConcurrency")
    timeout = _integer(spec.pop("timeoutSeconds", None), f"{where}.timeoutSeconds")
    account = spec.pop("serviceAccountName", "")
    if spec.get("nodeSelector") == {}:
        spec.pop("nodeSelector")  # gcloud sends it empty; GPU node selection is not modelled
    unsupported = sorted(key for key, value in spec.items() if value not in (None, [], {}, False))
    if unsupported:
        # The emulator's wording: fields of the v1 RevisionSpec it does not turn into v2 (enableServiceLinks and
        # imagePullSecrets are Kubernetes' and "Not supported by Cloud Run", the v1 messages' comments say).
        raise _bad(where, f"fields the emulator does not take: {', '.join(unsupported)}.")
    body: dict[str, Any] = {
        "revision": metadata.get("name", ""),
        "labels": {k: v for k, v in labels.items() if k not in knative_labels},
        "annotations": user,
        "containers": containers,
        "volumes": volumes,
        "serviceAccount": account,
    }
    if concurrency is not None:
        body["maxInstanceRequestConcurrency"] = concurrency
    message: run_v2.RevisionTemplate = _parse(run_v2.RevisionTemplate, body, "spec.template")
    if timeout is not None:
        message.timeout = duration_pb2.Duration(seconds=int(timeout))
    field = "spec.template.metadata.annotations"
    if "autoscaling.knative.dev/minScale" in system:
        message.scaling.min_instance_count = _count(system["autoscaling.knative.dev/minScale"], field, "minScale")
    if "autoscaling.knative.dev/maxScale" in system:
        message.scaling.max_instance_count = _count(system["autoscaling.knative.dev/maxScale"], field, "maxScale")
    # CPU is throttled between requests unless the annotation says otherwise (gcloud's --[no-]cpu-throttling);
    # v2 keeps it per container as resources.cpu_idle.
    throttled = _truth(system.get("run.googleapis.com/cpu-throttling", "true"), field, "cpu-throttling")
    boost = "run.googleapis.com/startup-cpu-boost" in system and _truth(
        system["run.googleapis.com/startup-cpu-boost"], field, "startup-cpu-boost"
    )
    for container in message.containers:
        container.resources.cpu_idle = throttled
        container.resources.startup_cpu_boost = boost
    if "run.googleapis.com/execution-environment" in system:
        value = system["run.googleapis.com/execution-environment"]
        if value not in _EXECUTION_ENVIRONMENT:
            raise _bad(
                field, f"Annotation 'run.googleapis.com/execution-environment' must be gen1 or gen2, got '{value}'."
            )
        message.execution_environment = _EXECUTION_ENVIRONMENT[value]
    if "run.googleapis.com/sessionAffinity" in system:
        message.session_affinity = _truth(system["run.googleapis.com/sessionAffinity"], field, "sessionAffinity")
    if "run.googleapis.com/health-check-disabled" in system:
        message.health_check_disabled = _truth(
            system["run.googleapis.com/health-check-disabled"], field, "health-check-disabled"
        )
    if "run.googleapis.com/encryption-key" in system:
        message.encryption_key = system["run.googleapis.com/encryption-key"]
    if "run.googleapis.com/vpc-access-connector" in system:
        message.vpc_access.connector = system["run.googleapis.com/vpc-access-connector"]
    if "run.googleapis.com/vpc-access-egress" in system:
        value = system["run.googleapis.com/vpc-access-egress"]
        if value not in _EGRESS:
            raise _bad(
                field,
                f"Annotation 'run.googleapis.com/vpc-access-egress' must be all-traffic or private-ranges-only, "
                f"got '{value}'.",
            )
        message.vpc_access.egress = _EGRESS[value]
    interfaces = (
        _interfaces(system[NETWORK_INTERFACES_ANNOTATION], field) if NETWORK_INTERFACES_ANNOTATION in system else []
    )
    if interfaces:
        message.vpc_access.network_interfaces = interfaces
    if CLOUD_SQL_ANNOTATION in system:
        instances = [i.strip() for i in system[CLOUD_SQL_ANNOTATION].split(",") if i.strip()]
        if instances:
            # First, where the v1 view took them from (an update gcloud sends back keeps the order v2 reads).
            message.volumes.insert(
                0, run_v2.Volume(name=validation.CLOUD_SQL_VOLUME, cloud_sql_instance={"instances": instances})
            )
            serving = message.containers[validation.ingress_index(message)] if message.containers else None
            if serving is not None and validation.CLOUD_SQL_VOLUME not in [m.name for m in serving.volume_mounts]:
                serving.volume_mounts.insert(
                    0, run_v2.VolumeMount(name=validation.CLOUD_SQL_VOLUME, mount_path=validation.CLOUD_SQL_MOUNT)
                )
    return message, knative_labels


def _interfaces(value: str, field: str) -> list[run_v2.VpcAccess.NetworkInterface]:
    try:
        listed = json.loads(value)
    except ValueError:
        listed = None

    def interface(item: object) -> bool:
        if not isinstance(item, dict) or set(item) - {"network", "subnetwork", "tags"}:
            return False
        tags = item.get("tags", [])
        names = (item.get("network", ""), item.get("subnetwork", ""))
        return (
            all(isinstance(n, str) for n in names) and isinstance(tags, list) and all(isinstance(t, str) for t in tags)
        )

    if not isinstance(listed, list) or not all(interface(item) for item in listed):
        # The emulator's wording, in the shape of Google's for its other annotations; the keys are those gcloud writes
        # (NetworkInterfacesChange in lib/googlecloudsdk/command_lib/run/config_changes.py).
        raise _bad(
            field,
            f"Annotation '{NETWORK_INTERFACES_ANNOTATION}' must be a JSON list of network interfaces, each with a "
            "network, a subnetwork and tags.",
        )
    return [
        run_v2.VpcAccess.NetworkInterface(
            network=item.get("network", ""), subnetwork=item.get("subnetwork", ""), tags=item.get("tags") or []
        )
        for item in listed
    ]


def _traffic_from_v1(targets: list[dict[str, Any]]) -> list[run_v2.TrafficTarget]:
    traffic = []
    for index, target in enumerate(targets):
        where = f"spec.traffic[{index}]"
        if target.get("configurationName"):
            raise _bad(f"{where}.configurationName", "Cloud Run routes by revision or latestRevision.")
        revision = target.get("revisionName", "")
        # latestRevision "must be false if RevisionName is set" and "defaults to true otherwise" (the v1
        # TrafficTarget comment).
        latest = target.get("latestRevision", not revision)
        if latest and revision:
            raise _bad(f"{where}.latestRevision", "This field must be false if RevisionName is set.")
        traffic.append(
            run_v2.TrafficTarget(
                type_=validation.LATEST if latest else validation.REVISION,
                revision="" if latest else revision,
                percent=_integer(target.get("percent", 0), f"{where}.percent") or 0,
                tag=target.get("tag", ""),
            )
        )
    return traffic


def _integer(value: Any, field: str) -> int | None:
    """An integer field of a v1 body (JSON numbers, or strings of digits as proto JSON allows), None when absent."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).lstrip("-").isdigit():
        # Google's front end words for a value of the wrong type start so; the rest is the emulator's.
        raise invalid_argument(
            f"Invalid JSON payload received. Invalid value at '{field}' ({value!r}): not an integer."
        )
    return int(value)


def service_from_v1(body: dict[str, Any], name: str) -> tuple[run_v2.Service, dict[str, str]]:
    """The v2 Service (spec fields only) a v1 Service body asks for, to be stored under `name`, and the template
    labels only v1 holds."""
    if body.get("apiVersion", API_VERSION) != API_VERSION or body.get("kind", "Service") != "Service":
        raise _bad("apiVersion", f"expected apiVersion {API_VERSION} and kind Service.")
    metadata = body.get("metadata") or {}
    spec = body.get("spec") or {}
    system, user = _split_annotations(metadata.get("annotations") or {}, "Service", "metadata.annotations")
    labels = {k: v for k, v in (metadata.get("labels") or {}).items() if k not in OUTPUT_LABELS}
    if "template" not in spec:
        raise _bad("spec.template", "required field not present.")
    template, knative_labels = _template_from_v1(spec["template"])
    service = run_v2.Service(
        name=name,
        labels=labels,
        annotations=user,
        template=template,
        traffic=_traffic_from_v1(spec.get("traffic") or []),
    )
    field = "metadata.annotations"
    if "run.googleapis.com/ingress" in system:
        value = system["run.googleapis.com/ingress"]
        if value not in _INGRESS:
            raise _bad(
                field, f"Annotation 'run.googleapis.com/ingress' must be one of {', '.join(_INGRESS)}, got '{value}'."
            )
        service.ingress = _INGRESS[value]
    service.description = system.get("run.googleapis.com/description", "")
    stage = system.get("run.googleapis.com/launch-stage", "")
    if stage:
        if stage not in launch_stage_pb2.LaunchStage.keys():  # noqa: SIM118  # an EnumTypeWrapper, not a dict
            raise _bad(field, f"Annotation 'run.googleapis.com/launch-stage' is not a launch stage: '{stage}'.")
        service.launch_stage = launch_stage_pb2.LaunchStage.Value(stage)
    service.client = system.get("run.googleapis.com/client-name", "")
    service.client_version = system.get("run.googleapis.com/client-version", "")
    if "run.googleapis.com/invoker-iam-disabled" in system:
        service.invoker_iam_disabled = _truth(
            system["run.googleapis.com/invoker-iam-disabled"], field, "invoker-iam-disabled"
        )
    if "run.googleapis.com/default-url-disabled" in system:
        service.default_uri_disabled = _truth(
            system["run.googleapis.com/default-url-disabled"], field, "default-url-disabled"
        )
    if "run.googleapis.com/iap-enabled" in system:
        service.iap_enabled = _truth(system["run.googleapis.com/iap-enabled"], field, "iap-enabled")
    if "run.googleapis.com/minScale" in system:
        service.scaling.min_instance_count = _count(system["run.googleapis.com/minScale"], field, "minScale")
    if "run.googleapis.com/custom-audiences" in system:
        try:
            audiences = json.loads(system["run.googleapis.com/custom-audiences"])
        except ValueError:
            audiences = None
        if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
            raise _bad(field, "Annotation 'run.googleapis.com/custom-audiences' must be a JSON list of strings.")
        service.custom_audiences = audiences
    if "run.googleapis.com/binary-authorization" in system:
        value = system["run.googleapis.com/binary-authorization"]
        if value == "default":
            service.binary_authorization.use_default = True
        else:
            service.binary_authorization.policy = value
    return service, knative_labels


# -- v2 -> v1 -------------------------------------------------------------------------------------------------------


def _timestamp(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def _condition_to_v1(condition: run_v2.Condition) -> dict[str, Any]:
    out: dict[str, Any] = {"type": condition.type_, "status": _STATUS.get(condition.state, "Unknown")}
    reason = condition.reason or condition.revision_reason
    if reason:
        out["reason"] = "".join(part.capitalize() for part in reason.name.split("_"))
    if condition.message:
        out["message"] = condition.message
    if condition.last_transition_time:
        out["lastTransitionTime"] = _timestamp(condition.last_transition_time)
    if condition.state == run_v2.Condition.State.CONDITION_FAILED:
        out["severity"] = "Error"
    return out


def _container_to_v1(container: dict[str, Any]) -> dict[str, Any]:
    out = dict(container)
    env = []
    for variable in out.get("env") or []:
        variable = dict(variable)
        source = variable.pop("valueSource", None)
        if source is not None:
            ref = source.get("secretKeyRef") or {}
            variable["valueFrom"] = {"secretKeyRef": {"name": ref.get("secret", ""), "key": ref.get("version", "")}}
        env.append(variable)
    if env:
        out["env"] = env
    resources = dict(out.get("resources") or {})
    resources.pop("cpuIdle", None)
    resources.pop("startupCpuBoost", None)
    out["resources"] = resources
    return out


def _volume_to_v1(volume: dict[str, Any]) -> dict[str, Any]:
    out = dict(volume)
    gcs = out.pop("gcs", None)
    if gcs is not None:
        attributes = {"bucketName": gcs.get("bucket", "")}
        if gcs.get("mountOptions"):
            attributes["mountOptions"] = ",".join(gcs["mountOptions"])
        out["csi"] = {
            "driver": GCSFUSE_DRIVER,
            "readOnly": bool(gcs.get("readOnly", False)),
            "volumeAttributes": attributes,
        }
    empty_dir = out.get("emptyDir")
    if isinstance(empty_dir, dict) and empty_dir.get("medium") == "MEMORY":
        out["emptyDir"] = {**empty_dir, "medium": "Memory"}
    secret = out.pop("secret", None)
    if secret is not None:
        items = [
            {
                "key": item.get("version", ""),
                "path": item.get("path", ""),
                **({"mode": item["mode"]} if "mode" in item else {}),
            }
            for item in secret.get("items") or []
        ]
        out["secret"] = {"secretName": secret.get("secret", ""), **({"items": items} if items else {})}
        if "defaultMode" in secret:
            out["secret"]["defaultMode"] = secret["defaultMode"]
    return out


def _revision_annotations(template: Any, execution_environment: int) -> dict[str, str]:
    """A revision's Cloud Run annotations from its v2 fields (`template`: a RevisionTemplate or a Revision)."""
    annotations = dict(template.annotations)
    scaling = template.scaling
    if scaling.min_instance_count:
        annotations["autoscaling.knative.dev/minScale"] = str(scaling.min_instance_count)
    if scaling.max_instance_count:
        annotations["autoscaling.knative.dev/maxScale"] = str(scaling.max_instance_count)
    ingress = template.containers[validation.ingress_index(template)] if template.containers else None
    if ingress is not None:
        annotations["run.googleapis.com/cpu-throttling"] = "true" if ingress.resources.cpu_idle else "false"
        if ingress.resources.startup_cpu_boost:
            annotations["run.googleapis.com/startup-cpu-boost"] = "true"
    names = {value: key for key, value in _EXECUTION_ENVIRONMENT.items()}
    if execution_environment in names:
        annotations["run.googleapis.com/execution-environment"] = names[execution_environment]
    if template.session_affinity:
        annotations["run.googleapis.com/sessionAffinity"] = "true"
    if getattr(template, "health_check_disabled", False):
        annotations["run.googleapis.com/health-check-disabled"] = "true"
    if template.encryption_key:
        annotations["run.googleapis.com/encryption-key"] = template.encryption_key
    if template.vpc_access.connector:
        annotations["run.googleapis.com/vpc-access-connector"] = template.vpc_access.connector
    egress = {value: key for key, value in _EGRESS.items()}.get(template.vpc_access.egress)
    if egress:
        annotations["run.googleapis.com/vpc-access-egress"] = egress
    interfaces = [
        {
            key: value
            for key, value in (("network", i.network), ("subnetwork", i.subnetwork), ("tags", list(i.tags)))
            if value
        }
        for i in template.vpc_access.network_interfaces
    ]
    if interfaces:
        annotations[NETWORK_INTERFACES_ANNOTATION] = json.dumps(interfaces, sort_keys=True)
    instances = [i for v in template.volumes if "cloud_sql_instance" in v for i in v.cloud_sql_instance.instances]
    if instances:
        annotations[CLOUD_SQL_ANNOTATION] = ",".join(instances)
    return annotations


def _revision_spec(template: Any) -> dict[str, Any]:
    as_json = protojson.to_dict(template)
    # Cloud SQL is an annotation in v1 (see CLOUD_SQL_ANNOTATION): its volume and mounts are not in the v1 spec.
    cloud_sql = {v["name"] for v in as_json.get("volumes", []) if "cloudSqlInstance" in v}
    as_json["volumes"] = [v for v in as_json.get("volumes", []) if v["name"] not in cloud_sql]
    for container in as_json.get("containers", []):
        container["volumeMounts"] = [m for m in container.get("volumeMounts", []) if m.get("name") not in cloud_sql]
        if not container["volumeMounts"]:
            container.pop("volumeMounts")
    spec: dict[str, Any] = {"containers": [_container_to_v1(c) for c in as_json.get("containers", [])]}
    if template.max_instance_request_concurrency:
        spec["containerConcurrency"] = template.max_instance_request_concurrency
    if "timeout" in template:
        spec["timeoutSeconds"] = int(template.timeout.total_seconds())
    if template.service_account:
        spec["serviceAccountName"] = template.service_account
    if as_json.get("volumes"):
        spec["volumes"] = [_volume_to_v1(v) for v in as_json["volumes"]]
    return spec


def _project_of(name: str) -> str:
    return name.split("/")[1]


def _location_of(name: str) -> str:
    return name.split("/")[3]


def service_to_v1(service: run_v2.Service, namespace: str, knative_labels: dict[str, str]) -> dict[str, Any]:
    """The v1 Service object of a stored v2 service; `namespace` is its project's number, as Cloud Run answers;
    `knative_labels`: its template's labels only v1 holds."""
    service_id = service.name.rsplit("/", 1)[-1]
    ingress = {value: key for key, value in _INGRESS.items()}.get(service.ingress, "all")
    annotations = dict(service.annotations)
    annotations[CREATOR] = service.creator
    annotations[LAST_MODIFIER] = service.last_modifier
    annotations["run.googleapis.com/ingress"] = ingress
    annotations[INGRESS_STATUS] = ingress
    if service.urls:
        annotations[URLS] = json.dumps(list(service.urls))
    if service.description:
        annotations["run.googleapis.com/description"] = service.description
    stage = launch_stage_pb2.LaunchStage.Name(service.launch_stage) if service.launch_stage else "GA"
    if stage != "GA":
        annotations["run.googleapis.com/launch-stage"] = stage
    if service.client:
        annotations["run.googleapis.com/client-name"] = service.client
    if service.client_version:
        annotations["run.googleapis.com/client-version"] = service.client_version
    if service.invoker_iam_disabled:
        annotations["run.googleapis.com/invoker-iam-disabled"] = "true"
    if service.default_uri_disabled:
        annotations["run.googleapis.com/default-url-disabled"] = "true"
    if service.iap_enabled:
        annotations["run.googleapis.com/iap-enabled"] = "true"
    if service.scaling.min_instance_count:
        annotations["run.googleapis.com/minScale"] = str(service.scaling.min_instance_count)
    if service.custom_audiences:
        annotations["run.googleapis.com/custom-audiences"] = json.dumps(list(service.custom_audiences))
    if service.binary_authorization.use_default:
        annotations["run.googleapis.com/binary-authorization"] = "default"
    elif service.binary_authorization.policy:
        annotations["run.googleapis.com/binary-authorization"] = service.binary_authorization.policy
    template = service.template
    template_metadata: dict[str, Any] = {
        "annotations": _revision_annotations(template, template.execution_environment),
    }
    if template.labels or knative_labels:
        template_metadata["labels"] = {**template.labels, **knative_labels}
    if template.revision:
        template_metadata["name"] = template.revision
    traffic = []
    for target in service.traffic:
        item: dict[str, Any] = {"percent": target.percent}
        if validation.target_type(target) == validation.LATEST:
            item["latestRevision"] = True
        else:
            item["revisionName"] = target.revision
        if target.tag:
            item["tag"] = target.tag
        traffic.append(item)
    conditions = [_condition_to_v1(service.terminal_condition)] if service.terminal_condition.type_ else []
    conditions += [_condition_to_v1(c) for c in service.conditions]
    status: dict[str, Any] = {"observedGeneration": service.observed_generation, "conditions": conditions}
    if service.latest_ready_revision:
        status["latestReadyRevisionName"] = service.latest_ready_revision.rsplit("/", 1)[-1]
    if service.latest_created_revision:
        status["latestCreatedRevisionName"] = service.latest_created_revision.rsplit("/", 1)[-1]
    status["traffic"] = []
    for traffic_status in service.traffic_statuses:
        item = {"revisionName": traffic_status.revision, "percent": traffic_status.percent}
        if validation.target_type(traffic_status) == validation.LATEST:
            item["latestRevision"] = True
        if traffic_status.tag:
            item["tag"] = traffic_status.tag
            item["url"] = traffic_status.uri
        status["traffic"].append(item)
    if service.uri:
        status["url"] = service.uri
        status["address"] = {"url": service.uri}
    return {
        "apiVersion": API_VERSION,
        "kind": "Service",
        "metadata": {
            "name": service_id,
            "namespace": namespace,
            "selfLink": f"/apis/{API_VERSION}/namespaces/{namespace}/services/{service_id}",
            "uid": service.uid,
            "resourceVersion": service.etag,
            "generation": service.generation,
            "creationTimestamp": _timestamp(service.create_time),
            "labels": {**service.labels, LOCATION_LABEL: _location_of(service.name)},
            "annotations": annotations,
        },
        "spec": {"template": {"metadata": template_metadata, "spec": _revision_spec(template)}, "traffic": traffic},
        "status": status,
    }


def revision_to_v1(
    revision: run_v2.Revision,
    namespace: str,
    *,
    service_uid: str,
    serving: bool,
    digests: list[str],
    knative_labels: dict[str, str],
) -> dict[str, Any]:
    """The v1 Revision object of a stored v2 revision; `serving`: traffic routes to it; `digests`: each container's
    image by digest, as Cloud Run records what it deployed (gcloud pins later updates to it)."""
    revision_id = revision.name.rsplit("/", 1)[-1]
    service_id = revision.service
    labels = {
        **revision.labels,
        **knative_labels,
        SERVICE_LABEL: service_id,
        "serving.knative.dev/serviceUid": service_uid,
        CONFIGURATION_LABEL: service_id,
        "serving.knative.dev/configurationGeneration": str(revision.generation),
        LOCATION_LABEL: _location_of(revision.name),
    }
    if serving:
        labels[ROUTE_LABEL] = service_id
    annotations = _revision_annotations(revision, revision.execution_environment)
    annotations[CREATOR] = revision.creator
    # Knative's Active condition: whether the revision receives traffic (a routed revision is active; one that
    # gets none is inactive, reason NoTraffic: knative/serving's PodAutoscaler "The target is not receiving
    # traffic."); gcloud's `revisions list` shows it as ACTIVE (Revision.active in
    # lib/googlecloudsdk/api_lib/run/revision.py).
    active = (
        {"type": "Active", "status": "True"}
        if serving
        else {
            "type": "Active",
            "status": "False",
            "reason": "NoTraffic",
            "message": "The target is not receiving traffic.",
        }
    )
    conditions = [_condition_to_v1(c) for c in revision.conditions]
    conditions.insert(1, active)
    status: dict[str, Any] = {
        "observedGeneration": 1,
        "conditions": conditions,
        "logUrl": revision.log_uri,
    }
    # The serving container's, which gcloud writes back into template.image (_SwitchToDigestChange in
    # lib/googlecloudsdk/command_lib/run/serverless_operations.py; template.image is that container's).
    ingress = validation.ingress_index(revision) if revision.containers else 0
    if len(digests) > ingress and digests[ingress]:
        status["imageDigest"] = digests[ingress]
        status["containerStatuses"] = [
            {"name": c.name, "imageDigest": d} for c, d in zip(revision.containers, digests, strict=True) if d
        ]
    return {
        "apiVersion": API_VERSION,
        "kind": "Revision",
        "metadata": {
            "name": revision_id,
            "namespace": namespace,
            "selfLink": f"/apis/{API_VERSION}/namespaces/{namespace}/revisions/{revision_id}",
            "uid": revision.uid,
            "resourceVersion": revision.etag,
            "generation": 1,
            "creationTimestamp": _timestamp(revision.create_time),
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [
                {
                    "kind": "Configuration",
                    "name": service_id,
                    "uid": service_uid,
                    "apiVersion": API_VERSION,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": _revision_spec(revision),
        "status": status,
    }


# RevisionTemplate fields v1 has neither a field nor an annotation for.
_TEMPLATE_ONLY_V2 = (
    "node_selector",
    "gpu_zonal_redundancy_disabled",
    "service_mesh",
    "encryption_key_revocation_action",
    "encryption_key_shutdown_duration",
)


def _keep_cloud_sql_mounts(current: run_v2.RevisionTemplate, incoming: run_v2.RevisionTemplate) -> None:
    """v1 holds Cloud SQL as one annotation (see CLOUD_SQL_ANNOTATION), not where its volume stands or which containers
    mount it and at what path: with the same instances sent back, the volume keeps its place and each container (by
    name) its mounts, as stored."""
    before = [i for i, v in enumerate(current.volumes) if "cloud_sql_instance" in v]
    after = [i for i, v in enumerate(incoming.volumes) if "cloud_sql_instance" in v]
    if len(before) != 1 or len(after) != 1:
        return
    stored, sent = current.volumes[before[0]], incoming.volumes[after[0]]
    if list(stored.cloud_sql_instance.instances) != list(sent.cloud_sql_instance.instances):
        return
    volumes = [v for i, v in enumerate(incoming.volumes) if i != after[0]]
    volumes.insert(min(before[0], len(volumes)), stored)
    incoming.volumes = volumes
    mounts = {
        c.name: [(i, m) for i, m in enumerate(c.volume_mounts) if m.name == stored.name] for c in current.containers
    }
    for container in incoming.containers:
        own = [m for m in container.volume_mounts if m.name != sent.name]
        for index, mount in mounts.get(container.name, []):
            own.insert(min(index, len(own)), mount)
        container.volume_mounts = own


def keep_what_v1_cannot_say(current: run_v2.Service, incoming: run_v2.Service) -> None:
    """A v1 replace sends the whole object, but the object v1 shows lacks some v2 fields: what the client could not
    see, it did not mean to clear. `incoming` (parsed from the v1 body) gets them from `current`, the stored service."""
    for name in _TEMPLATE_ONLY_V2:
        value = getattr(current.template, name)
        # Only what is set: an empty message written back would read as set (a change, and a new revision).
        if name in current.template and value:
            setattr(incoming.template, name, value)
    _keep_cloud_sql_mounts(current.template, incoming.template)
    # v1 shows a service's minimum instances only (run.googleapis.com/minScale). None on either side stays none: an
    # empty message written would read as set, a change.
    scaling = run_v2.ServiceScaling(current.scaling)
    scaling.min_instance_count = incoming.scaling.min_instance_count
    if "scaling" in current or "scaling" in incoming:
        incoming.scaling = scaling
    if scaling.max_instance_count and not incoming.launch_stage:
        # The maximum kept needs the stage it was set under (see validation.SERVICE_MAX_FEATURE): a body that names
        # none did not mean to drop it.
        incoming.launch_stage = current.launch_stage
    justification = current.binary_authorization.breakglass_justification
    if justification and (incoming.binary_authorization.use_default or incoming.binary_authorization.policy):
        incoming.binary_authorization.breakglass_justification = justification
