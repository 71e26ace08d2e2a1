"""The Cloud Run settings doki.toml declares, to Cloud Run v2's messages and back (doki_cli/gcp/run_settings.py): each
reads back as written, a write of what the service has already changes no byte (no new revision), and what doki.toml
cannot say (another project's secret, a probe's headers, a sidecar's volume) is never lost silently."""

from __future__ import annotations

from google.cloud import run_v2

from doki_cli.gcp import run_settings
from doki_cli.model import NO_PROBE, Probe, RunSettings, Volume, Vpc

CONNECTOR = "projects/p/locations/us-central1/connectors/egress"


def service(*volumes: run_v2.Volume, sidecar: run_v2.Container | None = None) -> run_v2.Service:
    serving = run_v2.Container(image="img:1", ports=[run_v2.ContainerPort(container_port=8080)])
    containers = [serving, *([sidecar] if sidecar is not None else [])]
    return run_v2.Service(template=run_v2.RevisionTemplate(containers=containers, volumes=list(volumes)))


def written(settings: RunSettings, base: run_v2.Service) -> run_v2.Service:
    copy = run_v2.Service.deserialize(run_v2.Service.serialize(base))
    run_settings.write(settings, copy, copy.template.containers[0])
    return copy


def read(base: run_v2.Service) -> RunSettings:
    return run_settings.read(base, base.template.containers[0])


EVERY = RunSettings(
    cpu_idle=False,
    startup_cpu_boost=False,
    execution_environment="gen2",
    session_affinity=True,
    labels={"team": "core"},
    vpc=Vpc(network="default", subnet="apps", network_tags=("api",), egress="all-traffic"),
    cloudsql_instances=("p:us-central1:db",),
    # By name, as doki.toml's are read.
    volumes=(
        Volume("assets", "cloud-storage", "/assets", bucket="doki-assets", read_only=True),
        Volume("cache", "in-memory", "/cache", size_limit="64Mi"),
        Volume("creds", "secret", "/creds", secret="api-key", version="3", path="key.json"),
        Volume("shared", "nfs", "/mnt/shared", location="10.0.0.2:/exports", read_only=True),
    ),
    startup_probe=Probe("tcp", period_seconds=2, failure_threshold=60),
    liveness_probe=Probe("grpc", port=50051, service="health", period_seconds=30),
)


def test_every_setting_reads_back_as_it_was_written() -> None:
    assert read(written(EVERY, service())) == EVERY


def test_a_connector_and_an_http_probe_read_back_as_written() -> None:
    settings = RunSettings(vpc=Vpc(connector=CONNECTOR, egress="private-ranges-only"), startup_probe=Probe("http"))
    back = read(written(settings, service()))
    assert (back.vpc, back.startup_probe) == (settings.vpc, Probe("http", path=""))


def test_writing_what_the_service_has_changes_no_byte_whatever_order_or_spelling_it_has() -> None:
    # Cloud SQL's volume after another, and a probe naming the container's port: as Cloud Run may store them.
    base = service(
        run_v2.Volume(name="cache", empty_dir={"medium": "MEMORY"}),
        run_v2.Volume(name="cloudsql", cloud_sql_instance={"instances": ["p:us-central1:db"]}),
    )
    serving = base.template.containers[0]
    serving.volume_mounts = [
        run_v2.VolumeMount(name="cache", mount_path="/cache"),
        run_v2.VolumeMount(name="cloudsql", mount_path="/cloudsql"),
    ]
    serving.startup_probe = run_v2.Probe(tcp_socket={"port": 8080}, timeout_seconds=1, period_seconds=10)

    same = written(read(base), base)

    assert run_v2.Service.serialize(same) == run_v2.Service.serialize(base)


def test_another_projects_secret_reads_with_its_project_so_a_bare_id_is_a_change() -> None:
    base = service(
        run_v2.Volume(
            name="creds",
            secret={"secret": "projects/other/secrets/api-key", "items": [{"path": "key.json", "version": "1"}]},
        )
    )
    base.template.containers[0].volume_mounts = [run_v2.VolumeMount(name="creds", mount_path="/creds")]

    [volume] = read(base).volumes or ()

    assert volume == Volume(
        "creds", "secret", "/creds", secret="projects/other/secrets/api-key", version="1", path="key.json"
    )


def test_what_doki_toml_cannot_say_reads_as_extra_so_the_plan_shows_it_replaced() -> None:
    base = service(
        run_v2.Volume(
            name="creds",
            secret={"secret": "api-key", "items": [{"path": "a", "version": "1"}, {"path": "b", "version": "2"}]},
        ),
        run_v2.Volume(name="assets", gcs={"bucket": "b", "mount_options": ["implicit-dirs"]}),
    )
    serving = base.template.containers[0]
    serving.volume_mounts = [
        run_v2.VolumeMount(name="creds", mount_path="/creds"),
        run_v2.VolumeMount(name="assets", mount_path="/assets"),
    ]
    serving.liveness_probe = run_v2.Probe(http_get={"path": "/", "http_headers": [{"name": "X-Probe", "value": "1"}]})

    settings = read(base)

    assert [volume.extra for volume in settings.volumes or ()] == ["mount options implicit-dirs", "2 files"]
    assert str(settings.liveness_probe) == "http GET /, every 10s, timeout 1s, 3 failures (http headers X-Probe)"


def test_a_volume_only_a_sidecar_mounts_is_the_sidecars_kept_when_the_serving_containers_are_declared() -> None:
    sidecar = run_v2.Container(name="collector", image="c:1", volume_mounts=[{"name": "spool", "mount_path": "/spool"}])
    base = service(run_v2.Volume(name="spool", empty_dir={"medium": "MEMORY"}), sidecar=sidecar)

    after = written(RunSettings(volumes=()), base)

    assert read(base).volumes == ()
    assert [volume.name for volume in after.template.volumes] == ["spool"]
    assert [str(kept) for kept in run_settings.kept(base, base.template.containers[0], False)] == [
        "sidecar volumes spool"
    ]


def test_no_cloud_sql_removes_its_volume_with_every_containers_mount() -> None:
    sidecar = run_v2.Container(
        name="proxy", image="c:1", volume_mounts=[{"name": "cloudsql", "mount_path": "/cloudsql"}]
    )
    base = service(run_v2.Volume(name="cloudsql", cloud_sql_instance={"instances": ["p:r:db"]}), sidecar=sidecar)
    base.template.containers[0].volume_mounts = [run_v2.VolumeMount(name="cloudsql", mount_path="/cloudsql")]

    after = written(RunSettings(cloudsql_instances=()), base).template

    assert list(after.volumes) == []
    assert [list(container.volume_mounts) for container in after.containers] == [[], []]


def test_no_liveness_probe_and_no_vpc_clear_the_fields() -> None:
    base = written(RunSettings(liveness_probe=Probe("http"), vpc=Vpc(connector=CONNECTOR)), service())

    after = written(RunSettings(liveness_probe=NO_PROBE, vpc=Vpc()), base)

    assert "liveness_probe" not in after.template.containers[0]
    assert "vpc_access" not in after.template
    assert (read(after).liveness_probe, read(after).vpc) == (NO_PROBE, Vpc())


def test_a_volume_of_the_serving_containers_own_left_out_goes_and_a_shared_ones_mount_goes_while_it_stays() -> None:
    sidecar = run_v2.Container(name="collector", image="c:1", volume_mounts=[{"name": "shared", "mount_path": "/s"}])
    base = service(
        run_v2.Volume(name="old", empty_dir={"medium": "MEMORY"}),
        run_v2.Volume(name="shared", empty_dir={"medium": "MEMORY"}),
        sidecar=sidecar,
    )
    base.template.containers[0].volume_mounts = [
        run_v2.VolumeMount(name="old", mount_path="/old"),
        run_v2.VolumeMount(name="shared", mount_path="/shared"),
    ]
    mine = Volume("mine", "in-memory", "/mine")

    after = written(RunSettings(volumes=(mine,)), base)

    assert [volume.name for volume in after.template.volumes] == ["shared", "mine"]
    assert [mount.name for mount in after.template.containers[0].volume_mounts] == ["mine"]
    assert [mount.name for mount in after.template.containers[1].volume_mounts] == ["shared"]
    assert read(after).volumes == (mine,)


def test_volumes_read_by_name_so_the_order_they_are_declared_in_is_no_change() -> None:
    first, second = Volume("b-cache", "in-memory", "/b"), Volume("a-cache", "in-memory", "/a")
    base = written(RunSettings(volumes=(first, second)), service())

    assert read(base).volumes == (second, first)
    assert run_v2.Service.serialize(written(RunSettings(volumes=(second, first)), base)) == run_v2.Service.serialize(
        base
    )


def test_cloud_sql_the_serving_container_does_not_mount_is_not_its_own_and_declaring_it_mounts_it() -> None:
    sidecar = run_v2.Container(
        name="proxy", image="c:1", volume_mounts=[{"name": "cloudsql", "mount_path": "/cloudsql"}]
    )
    base = service(run_v2.Volume(name="cloudsql", cloud_sql_instance={"instances": ["p:r:db"]}), sidecar=sidecar)

    assert read(base).cloudsql_instances == ()
    after = written(RunSettings(cloudsql_instances=("p:r:db",)), base)
    assert [(m.name, m.mount_path) for m in after.template.containers[0].volume_mounts] == [("cloudsql", "/cloudsql")]
    assert len(after.template.volumes) == 1
