"""The Cloud Run settings doki.toml may declare (`RunSettings`) to and from Cloud Run v2's messages: part of the Cloud
Run adapter (`doki_cli.gcp.run`, its only user), kept apart because each setting has its own place in the service.

Reading fills every field from the live service; writing sets only the declared ones (a field left None is the live
service's, untouched), each where gcloud's flag of the same meaning puts it (cited beside each).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from doki_cli.model import NO_PROBE, Kept, Probe, RunSettings, Volume, Vpc

if TYPE_CHECKING:
    from google.cloud import run_v2

# How gcloud names a Cloud SQL volume and where it mounts it, in the v2 shape Google's own examples use
# (https://cloud.google.com/sql/docs/postgres/connect-run, the YAML and Terraform tabs: a volume "cloudsql" with
# cloudSqlInstance.instances, mounted at /cloudsql; the proto's comment on VolumeMount.mount_path: "For Cloud SQL
# volumes, it can be left empty, or must otherwise be /cloudsql").
CLOUD_SQL_VOLUME = "cloudsql"
CLOUD_SQL_MOUNT = "/cloudsql"
_ENVIRONMENTS = {1: "gen1", 2: "gen2"}  # ExecutionEnvironment's values; 0 (unspecified): Cloud Run chooses
_EGRESS = {1: "all-traffic", 2: "private-ranges-only"}  # VpcAccess.VpcEgress's values; 0: unspecified


def read(service: run_v2.Service, container: run_v2.Container) -> RunSettings:
    """Every setting as the live service has it; `container` is its serving container."""
    template = service.template
    resources = container.resources
    port = container.ports[0].container_port if container.ports else 0
    mounts = {mount.name: mount.mount_path for mount in container.volume_mounts}
    return RunSettings(
        # The proto's comment on ResourceRequirements.cpu_idle: "true by default", unless resources are set.
        cpu_idle=resources.cpu_idle if "resources" in container else True,
        startup_cpu_boost=resources.startup_cpu_boost,
        execution_environment=_ENVIRONMENTS.get(int(template.execution_environment), "default"),
        session_affinity=template.session_affinity,
        labels=dict(service.labels),
        vpc=_read_vpc(template),
        cloudsql_instances=tuple(
            instance
            for volume in template.volumes
            if "cloud_sql_instance" in volume
            for instance in volume.cloud_sql_instance.instances
        ),
        volumes=tuple(
            _read_volume(volume, mounts.get(volume.name, ""))
            for volume in template.volumes
            if "cloud_sql_instance" not in volume
        ),
        startup_probe=_read_probe(container.startup_probe, port) if "startup_probe" in container else NO_PROBE,
        liveness_probe=_read_probe(container.liveness_probe, port) if "liveness_probe" in container else NO_PROBE,
    )


def _read_vpc(template: run_v2.RevisionTemplate) -> Vpc:
    if "vpc_access" not in template:
        return Vpc()
    access = template.vpc_access
    interface = access.network_interfaces[0] if access.network_interfaces else None
    return Vpc(
        connector=access.connector,
        network=interface.network if interface is not None else "",
        subnet=interface.subnetwork if interface is not None else "",
        network_tags=tuple(interface.tags) if interface is not None else (),
        egress=_EGRESS.get(int(access.egress), ""),
    )


def _read_volume(volume: run_v2.Volume, mount_path: str) -> Volume:
    if "empty_dir" in volume:
        return Volume(volume.name, "in-memory", mount_path, size_limit=volume.empty_dir.size_limit)
    if "gcs" in volume:
        return Volume(
            volume.name, "cloud-storage", mount_path, bucket=volume.gcs.bucket, read_only=volume.gcs.read_only
        )
    if "nfs" in volume:
        location = f"{volume.nfs.server}:{volume.nfs.path}"
        return Volume(volume.name, "nfs", mount_path, location=location, read_only=volume.nfs.read_only)
    if "secret" in volume:
        item = volume.secret.items[0] if volume.secret.items else None
        return Volume(
            volume.name,
            "secret",
            mount_path,
            secret=volume.secret.secret.rsplit("/", 1)[-1],
            version=item.version if item is not None else "",
            path=item.path if item is not None else "",
        )
    return Volume(volume.name, "other", mount_path)


def _read_probe(probe: run_v2.Probe, port: int) -> Probe:
    kind, action = next(
        ((kind, getattr(probe, field)) for kind, field in _PROBE_FIELDS.items() if field in probe), ("tcp", None)
    )
    probe_port = action.port if action is not None else 0
    return Probe(
        kind,
        path=probe.http_get.path if kind == "http" else "",
        # The container's port named or left out are the same probe.
        port=0 if probe_port == port else probe_port,
        service=probe.grpc.service if kind == "grpc" else "",
        initial_delay_seconds=probe.initial_delay_seconds,
        # 0 is unset: Cloud Run's defaults (the proto's comments on Probe).
        timeout_seconds=probe.timeout_seconds or 1,
        period_seconds=probe.period_seconds or 10,
        failure_threshold=probe.failure_threshold or 3,
    )


_PROBE_FIELDS = {"http": "http_get", "tcp": "tcp_socket", "grpc": "grpc"}


def write(settings: RunSettings, service: run_v2.Service, container: run_v2.Container) -> None:
    """Set the declared settings on `service` (a copy the caller writes), `container` being its serving container."""
    from google.cloud import run_v2

    template = service.template
    if settings.cpu_idle is not None:
        container.resources.cpu_idle = settings.cpu_idle  # gcloud --[no-]cpu-throttling
    if settings.startup_cpu_boost is not None:
        container.resources.startup_cpu_boost = settings.startup_cpu_boost  # gcloud --[no-]cpu-boost
    if settings.execution_environment is not None:
        template.execution_environment = run_v2.ExecutionEnvironment(
            {"gen1": 1, "gen2": 2}.get(settings.execution_environment, 0)
        )
    if settings.session_affinity is not None:
        template.session_affinity = settings.session_affinity
    if settings.labels is not None:
        # gcloud --labels sets the service's and copies them over the template's (LabelChanges in
        # lib/googlecloudsdk/command_lib/run/config_changes.py: "Service labels are the source of truth").
        service.labels = dict(settings.labels)
        template.labels = dict(settings.labels)
    if settings.vpc is not None:
        _write_vpc(settings.vpc, template)
    if settings.cloudsql_instances is not None:
        _write_cloudsql(settings.cloudsql_instances, template, container)
    if settings.volumes is not None:
        _write_volumes(settings.volumes, template, container)
    for kind in ("startup_probe", "liveness_probe"):
        probe = getattr(settings, kind)
        if probe is None:
            continue
        if probe == NO_PROBE:
            container._pb.ClearField(kind)
        else:
            getattr(container, kind)._pb.CopyFrom(run_v2.Probe.pb(_probe(probe)))


def _write_vpc(vpc: Vpc, template: run_v2.RevisionTemplate) -> None:
    from google.cloud import run_v2

    if str(vpc) == "none":
        template._pb.ClearField("vpc_access")
        return
    access = run_v2.VpcAccess(connector=vpc.connector)
    if vpc.network or vpc.subnet:
        access.network_interfaces = [
            run_v2.VpcAccess.NetworkInterface(network=vpc.network, subnetwork=vpc.subnet, tags=list(vpc.network_tags))
        ]
    if vpc.egress:
        access.egress = run_v2.VpcAccess.VpcEgress({"all-traffic": 1, "private-ranges-only": 2}[vpc.egress])
    template.vpc_access = access


def _write_cloudsql(instances: tuple[str, ...], template: run_v2.RevisionTemplate, container: run_v2.Container) -> None:
    from google.cloud import run_v2

    gone = {volume.name for volume in template.volumes if "cloud_sql_instance" in volume}
    template.volumes = [volume for volume in template.volumes if volume.name not in gone]
    container.volume_mounts = [mount for mount in container.volume_mounts if mount.name not in gone]
    if instances:
        source = run_v2.CloudSqlInstance(instances=list(instances))
        template.volumes.append(run_v2.Volume(name=CLOUD_SQL_VOLUME, cloud_sql_instance=source))
        container.volume_mounts.append(run_v2.VolumeMount(name=CLOUD_SQL_VOLUME, mount_path=CLOUD_SQL_MOUNT))


def _write_volumes(volumes: tuple[Volume, ...], template: run_v2.RevisionTemplate, container: run_v2.Container) -> None:
    """The serving container's volumes become exactly `volumes`; Cloud SQL's (cloudsql_instances) and those another
    container mounts stay, as Cloud Run refuses a mount of a volume the template no longer has."""
    from google.cloud import run_v2

    others = {
        mount.name
        for other in template.containers
        if other is not container and other != container
        for mount in other.volume_mounts
    }
    declared = {volume.name for volume in volumes}
    kept = [
        volume
        for volume in template.volumes
        if ("cloud_sql_instance" in volume or volume.name in others) and volume.name not in declared
    ]
    kept_names = {volume.name for volume in kept}
    template.volumes = [*kept, *(_volume(volume) for volume in volumes)]
    container.volume_mounts = [
        *(mount for mount in container.volume_mounts if mount.name in kept_names),
        *(run_v2.VolumeMount(name=volume.name, mount_path=volume.mount_path) for volume in volumes),
    ]


def _volume(volume: Volume) -> run_v2.Volume:
    from google.cloud import run_v2

    if volume.kind == "in-memory":
        # gcloud --add-volume type=in-memory: an emptyDir of medium Memory (volumes.py, _InMemoryVolume).
        empty = run_v2.EmptyDirVolumeSource(medium=run_v2.EmptyDirVolumeSource.Medium.MEMORY)
        if volume.size_limit:
            empty.size_limit = volume.size_limit
        return run_v2.Volume(name=volume.name, empty_dir=empty)
    if volume.kind == "cloud-storage":
        gcs = run_v2.GCSVolumeSource(bucket=volume.bucket, read_only=volume.read_only)
        return run_v2.Volume(name=volume.name, gcs=gcs)
    if volume.kind == "nfs":
        # gcloud reads location=SERVER:/PATH into the server and the path, the latter with its slash (_NfsVolume).
        server, _, path = volume.location.partition(":")
        nfs = run_v2.NFSVolumeSource(server=server, path=path, read_only=volume.read_only)
        return run_v2.Volume(name=volume.name, nfs=nfs)
    item = run_v2.VersionToPath(path=volume.path, version=volume.version)
    return run_v2.Volume(name=volume.name, secret=run_v2.SecretVolumeSource(secret=volume.secret, items=[item]))


def _probe(probe: Probe) -> run_v2.Probe:
    from google.cloud import run_v2

    message = run_v2.Probe(
        initial_delay_seconds=probe.initial_delay_seconds,
        timeout_seconds=probe.timeout_seconds,
        period_seconds=probe.period_seconds,
        failure_threshold=probe.failure_threshold,
    )
    if probe.kind == "http":
        message.http_get = run_v2.HTTPGetAction(path=probe.path, port=probe.port)
    elif probe.kind == "grpc":
        message.grpc = run_v2.GRPCAction(port=probe.port, service=probe.service)
    else:
        message.tcp_socket = run_v2.TCPSocketAction(port=probe.port)
    return message


def kept(service: run_v2.Service, serving: run_v2.Container | None, default_probe: bool) -> list[Kept]:
    """The settings of the live service doki.toml declares none of, which a deploy keeps, in a few words each, with
    the doki.toml key that would manage each (None: none does). `default_probe`: the startup probe is Cloud Run's."""
    template = service.template
    found: list[Kept] = []
    if serving is not None:
        container_settings = {
            Kept("command"): bool(serving.command) or bool(serving.args),
            Kept("working dir"): bool(serving.working_dir),
            Kept("startup probe", "startup_probe"): "startup_probe" in serving and not default_probe,
            Kept("liveness probe", "liveness_probe"): "liveness_probe" in serving,
            Kept("CPU always allocated", "cpu_idle"): "resources" in serving and not serving.resources.cpu_idle,
            Kept("no startup CPU boost", "startup_cpu_boost"): (
                "resources" in serving and not serving.resources.startup_cpu_boost
            ),
            Kept("depends on " + ", ".join(serving.depends_on)): bool(serving.depends_on),
        }
        found += [label for label, present in container_settings.items() if present]
    volumes = [volume.name for volume in template.volumes if "cloud_sql_instance" not in volume]
    instances = [
        i for volume in template.volumes if "cloud_sql_instance" in volume for i in volume.cloud_sql_instance.instances
    ]
    environment = template.execution_environment.name.removeprefix("EXECUTION_ENVIRONMENT_")
    template_settings = {
        Kept("volumes " + ", ".join(volumes), "volumes"): bool(volumes),
        Kept("Cloud SQL " + ", ".join(instances), "cloudsql_instances"): bool(instances),
        Kept("VPC access", "vpc"): "vpc_access" in template,
        Kept(f"execution environment {environment}", "execution_environment"): template.execution_environment != 0,
        Kept("session affinity", "session_affinity"): template.session_affinity,
        Kept("encryption key"): bool(template.encryption_key),
        Kept("node selector"): "node_selector" in template,
        # gcloud copies the service's labels onto the template: those are the service's, not the revision's own.
        Kept("revision labels", "labels"): bool(template.labels) and dict(template.labels) != dict(service.labels),
    }
    found += [label for label, present in template_settings.items() if present]
    if service.labels:
        found.append(Kept("labels " + ", ".join(sorted(service.labels)), "labels"))
    return found
