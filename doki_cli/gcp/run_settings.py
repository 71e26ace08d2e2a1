"""The Cloud Run settings doki.toml may declare (`RunSettings`) to and from Cloud Run v2's messages: part of the Cloud
Run adapter (`doki_cli.gcp.run`, its only user), kept apart because each setting has its own place in the service.

Reading fills every field from the live service; writing sets only the declared ones (a field left None is the live
service's, untouched), each where gcloud's flag of the same meaning puts it (cited beside each).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from doki_cli.config import CLOUD_SQL_MOUNT, CLOUD_SQL_VOLUME
from doki_cli.model import NO_PROBE, Kept, Probe, RunSettings, Volume, Vpc

if TYPE_CHECKING:
    from google.cloud import run_v2

_ENVIRONMENTS = {1: "gen1", 2: "gen2"}  # ExecutionEnvironment's values; 0 (unspecified): Cloud Run chooses
_EGRESS = {1: "all-traffic", 2: "private-ranges-only"}  # VpcAccess.VpcEgress's values; 0: unspecified


def read(service: run_v2.Service, container: run_v2.Container) -> RunSettings:
    """Every setting as the live service has it; `container` is its serving container."""
    template = service.template
    resources = container.resources
    port = container.ports[0].container_port if container.ports else 0
    mounts: dict[str, list[run_v2.VolumeMount]] = {}
    for mount in container.volume_mounts:
        mounts.setdefault(mount.name, []).append(mount)
    return RunSettings(
        # The proto's comment on ResourceRequirements.cpu_idle: "true by default", unless resources are set.
        cpu_idle=resources.cpu_idle if "resources" in container else True,
        startup_cpu_boost=resources.startup_cpu_boost,
        execution_environment=_ENVIRONMENTS.get(int(template.execution_environment), "default"),
        session_affinity=template.session_affinity,
        labels=dict(service.labels),
        vpc=_read_vpc(template),
        # The serving container's Cloud SQL: a volume it does not mount reaches it no instance.
        cloudsql_instances=tuple(
            instance
            for volume in template.volumes
            if "cloud_sql_instance" in volume and volume.name in mounts
            for instance in volume.cloud_sql_instance.instances
        ),
        # The serving container's, by name (doki.toml's order is no setting): a volume only a sidecar mounts is the
        # sidecar's, kept whatever doki.toml says.
        volumes=tuple(
            sorted(
                (
                    _read_volume(volume, mounts[volume.name])
                    for volume in template.volumes
                    if "cloud_sql_instance" not in volume and volume.name in mounts
                ),
                key=lambda volume: volume.name,
            )
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


def _read_volume(volume: run_v2.Volume, mounts: list[run_v2.VolumeMount]) -> Volume:
    from google.cloud import run_v2

    # One mount at one path is what doki.toml declares; anything more reads as extra, so a plan shows it replaced.
    extra = [f"also mounted at {m.mount_path}" for m in mounts[1:]]
    extra += [f"sub-path {m.sub_path}" for m in mounts if m.sub_path]
    mount_path = mounts[0].mount_path
    if "empty_dir" in volume:
        if volume.empty_dir.medium != run_v2.EmptyDirVolumeSource.Medium.MEMORY:
            extra.append("medium unspecified")
        size = volume.empty_dir.size_limit
        return Volume(volume.name, "in-memory", mount_path, size_limit=size, extra=", ".join(extra))
    if "gcs" in volume:
        if volume.gcs.mount_options:
            extra.append("mount options " + " ".join(volume.gcs.mount_options))
        gcs = volume.gcs
        return Volume(
            volume.name, "cloud-storage", mount_path, bucket=gcs.bucket, read_only=gcs.read_only, extra=", ".join(extra)
        )
    if "nfs" in volume:
        nfs = volume.nfs
        location = f"{nfs.server}:{nfs.path}"
        return Volume(
            volume.name, "nfs", mount_path, location=location, read_only=nfs.read_only, extra=", ".join(extra)
        )
    if "secret" in volume:
        source = volume.secret
        items = list(source.items)
        if len(items) != 1:
            extra.append(f"{len(items)} files" if items else "the latest version as a file named after the secret")
        if source.default_mode or any(item.mode for item in items):
            extra.append("file modes")
        return Volume(
            volume.name,
            "secret",
            mount_path,
            # As written (an id, or another project's projects/P/secrets/S), so another project's stays its own.
            secret=source.secret,
            version=items[0].version if items else "",
            path=items[0].path if items else "",
            extra=", ".join(extra),
        )
    return Volume(volume.name, "other", mount_path, extra=", ".join(extra))


def _read_probe(probe: run_v2.Probe, port: int) -> Probe:
    kind, action = next(
        ((kind, getattr(probe, field)) for kind, field in _PROBE_FIELDS.items() if field in probe), ("tcp", None)
    )
    probe_port = action.port if action is not None else 0
    headers = ", ".join(header.name for header in probe.http_get.http_headers) if kind == "http" else ""
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
        extra=f"http headers {headers}" if headers else "",
    )


_PROBE_FIELDS = {"http": "http_get", "tcp": "tcp_socket", "grpc": "grpc"}


def write(settings: RunSettings, service: run_v2.Service, container: run_v2.Container) -> None:
    """Set the declared settings on `service` (a copy the caller writes), `container` being its serving container.
    A setting the service has already is left as it is, byte for byte: rewritten, a template in another order or
    with a default spelled out would be a new revision of the same settings."""
    from google.cloud import run_v2

    template = service.template
    live = read(service, container)
    settings = replace(
        settings, **{key: None for key, value in settings.declared().items() if getattr(live, key) == value}
    )
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

    source = run_v2.CloudSqlInstance(instances=list(instances))
    present = [volume for volume in template.volumes if "cloud_sql_instance" in volume]
    if instances and present:
        # Other instances, in place: every container's mount of the volume stays, the serving container's made sure.
        present[0].cloud_sql_instance = source
        if present[0].name not in {mount.name for mount in container.volume_mounts}:
            container.volume_mounts.insert(0, run_v2.VolumeMount(name=present[0].name, mount_path=CLOUD_SQL_MOUNT))
        return
    if instances:
        template.volumes.insert(0, run_v2.Volume(name=CLOUD_SQL_VOLUME, cloud_sql_instance=source))
        container.volume_mounts.insert(0, run_v2.VolumeMount(name=CLOUD_SQL_VOLUME, mount_path=CLOUD_SQL_MOUNT))
        return
    # None: the volume goes, with every container's mount of it (Cloud Run refuses a mount of no volume).
    gone = {volume.name for volume in present}
    template.volumes = [volume for volume in template.volumes if volume.name not in gone]
    for each in template.containers:
        each.volume_mounts = [mount for mount in each.volume_mounts if mount.name not in gone]


def _write_volumes(volumes: tuple[Volume, ...], template: run_v2.RevisionTemplate, container: run_v2.Container) -> None:
    """The serving container mounts exactly `volumes` (and Cloud SQL's, cloudsql_instances'), each volume where it
    stood if it was one already. A volume of its own it no longer mounts goes; one another container mounts stays, for
    that container (the planner refuses a declared name that is a sidecar's own volume)."""
    from google.cloud import run_v2

    mounted = {mount.name for mount in container.volume_mounts}
    declared = {volume.name: volume for volume in volumes}
    others = _mounted_by_others(template, container)
    cloud_sql = {volume.name for volume in template.volumes if "cloud_sql_instance" in volume}
    written: list[run_v2.Volume] = []
    for volume in template.volumes:
        if volume.name in declared:
            written.append(_volume(declared[volume.name]))
        elif volume.name in cloud_sql or volume.name in others or volume.name not in mounted:
            written.append(volume)
    present = {volume.name for volume in template.volumes}
    written += [_volume(volume) for volume in volumes if volume.name not in present]
    template.volumes = written
    kept = [mount for mount in container.volume_mounts if mount.name in cloud_sql]
    declared_mounts = [run_v2.VolumeMount(name=volume.name, mount_path=volume.mount_path) for volume in volumes]
    container.volume_mounts = [*kept, *declared_mounts]


def sidecar_volumes(template: run_v2.RevisionTemplate, serving: run_v2.Container | None) -> tuple[str, ...]:
    """The volumes other containers mount and the serving container does not: theirs, not doki.toml's to declare."""
    mounted = {mount.name for mount in serving.volume_mounts} if serving is not None else set()
    return tuple(sorted(_mounted_by_others(template, serving) - mounted))


def _mounted_by_others(template: run_v2.RevisionTemplate, serving: run_v2.Container | None) -> set[str]:
    """The volumes the containers other than `serving` mount (every container's, with no serving container)."""
    # proto-plus wraps a message anew on each access: the serving container is told apart by its message, not `is`.
    return {
        mount.name
        for other in template.containers
        if serving is None or other._pb is not serving._pb
        for mount in other.volume_mounts
    }


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
    mounted = {mount.name for mount in serving.volume_mounts} if serving is not None else set()
    volumes = [v.name for v in template.volumes if "cloud_sql_instance" not in v and v.name in mounted]
    sidecars = [v.name for v in template.volumes if "cloud_sql_instance" not in v and v.name not in mounted]
    instances = [
        i for volume in template.volumes if "cloud_sql_instance" in volume for i in volume.cloud_sql_instance.instances
    ]
    environment = template.execution_environment.name.removeprefix("EXECUTION_ENVIRONMENT_")
    template_settings = {
        Kept("volumes " + ", ".join(volumes), "volumes"): bool(volumes),
        Kept("sidecar volumes " + ", ".join(sidecars)): bool(sidecars),
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
