"""The Cloud Run adapter (doki_cli.gcp.run) against the emulator: it reads a service into doki's plain model, short
names and all, and never writes over a change it did not read."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from google.cloud import run_v2

from doki_cli.emulator.server import Emulator
from doki_cli.errors import DokiError
from doki_cli.gcp.clients import ClientFactory
from doki_cli.gcp.google import Google
from doki_cli.gcp.run import CloudRun
from doki_cli.model import Edit, ServiceSpec

PROJECT = "doki-adapter"
PATH = f"projects/{PROJECT}/locations/us-central1/services/api"
IMAGE = f"us-central1-docker.pkg.dev/{PROJECT}/doki/api:1"
SPEC = ServiceSpec(IMAGE, 8080, "512Mi", "1", 80, 300, 0, 10, "all", None, env={"A": "1"})


def cloud_run(emulator: Emulator) -> CloudRun:
    return Google(ClientFactory(emulator.grpc_address), PROJECT, "us-central1").run


@pytest.fixture
def services(emulator: Emulator) -> run_v2.ServicesClient:
    """A service made with the official client; without an engine its revision never becomes Ready."""
    client = ClientFactory(emulator.grpc_address).run_services()
    template = run_v2.RevisionTemplate(
        containers=[run_v2.Container(image=IMAGE, env=[run_v2.EnvVar(name="A", value="1")])]
    )
    client.create_service(
        parent=PATH.rsplit("/services/", 1)[0], service_id="api", service=run_v2.Service(template=template)
    )
    return client


def test_a_live_service_reads_as_plain_data_with_short_revision_names(
    emulator: Emulator, services: run_v2.ServicesClient
) -> None:
    live = cloud_run(emulator).get("api")
    raw = services.get_service(name=PATH)
    assert live is not None
    assert (live.name, live.uri, live.etag, live.generation) == ("api", raw.uri, raw.etag, raw.generation)
    assert live.latest_created == raw.latest_created_revision.rsplit("/", 1)[1]
    assert live.latest_ready is None and live.stuck == live.latest_created  # no engine: never Ready
    assert live.spec.image == IMAGE and live.spec.env == {"A": "1"} and live.variables == ("A",)
    assert live.traffic_to_latest and live.traffic_text == "100% latest"
    assert live.updated is not None
    assert cloud_run(emulator).get("other") is None


@pytest.mark.parametrize("same_reader", [True, False], ids=["the reader", "another reader"])
def test_a_deploy_planned_from_a_read_that_is_no_longer_live_writes_nothing(
    emulator: Emulator, services: run_v2.ServicesClient, same_reader: bool
) -> None:
    run = cloud_run(emulator)
    planned = run.get("api")
    assert planned is not None
    changed = services.get_service(name=PATH)
    changed.labels = {"team": "ops"}
    services.update_service(service=changed)
    after_change = services.get_service(name=PATH)

    writer = run if same_reader else cloud_run(emulator)
    with pytest.raises(DokiError) as refused:
        writer.apply("api", replace(SPEC, memory="1Gi"), keep_env=(), live=planned, on_progress=lambda _: None)

    assert refused.value.code == "concurrent_change"
    assert services.get_service(name=PATH) == after_change


def test_cloud_runs_default_startup_probe_is_not_a_setting_kept_but_any_other_probe_is(
    emulator: Emulator, services: run_v2.ServicesClient
) -> None:
    custom = run_v2.Probe(tcp_socket=run_v2.TCPSocketAction(port=8080), period_seconds=10, failure_threshold=3)
    template = run_v2.RevisionTemplate(containers=[run_v2.Container(image=IMAGE, startup_probe=custom)])
    services.create_service(parent=PATH.rsplit("/services/", 1)[0], service_id="probed", service={"template": template})
    run = cloud_run(emulator)

    defaulted = run.get("api")
    probed = run.get("probed")

    assert defaulted is not None and "startup probe" not in map(str, defaulted.kept)
    assert probed is not None and "startup probe" in map(str, probed.kept)


def test_a_write_that_failed_leaves_nothing_behind_for_the_next_write_from_the_same_read(
    emulator: Emulator, services: run_v2.ServicesClient
) -> None:
    run = cloud_run(emulator)
    planned = run.get("api")
    assert planned is not None
    emulator.faults.fail("UpdateService", "PERMISSION_DENIED", times=1)
    with pytest.raises(DokiError):
        run.update("api", lambda _: Edit(annotations={"ops.example.com/owner": "me"}), on_progress=lambda _: None)

    with pytest.raises(DokiError) as not_ready:  # no engine: the new revision never becomes Ready
        run.apply("api", replace(SPEC, memory="1Gi"), keep_env=(), live=planned, on_progress=lambda _: None)

    assert not_ready.value.code == "revision_not_ready"
    written = services.get_service(name=PATH)
    assert written.template.containers[0].resources.limits["memory"] == "1Gi"
    assert "ops.example.com/owner" not in written.annotations


def test_the_settings_that_limit_cpu_and_memory_read_as_cloud_run_stores_them(
    emulator: Emulator, services: run_v2.ServicesClient
) -> None:
    parent = PATH.rsplit("/services/", 1)[0]
    limits = run_v2.ResourceRequirements(limits={"cpu": "1", "memory": "512Mi"})  # cpu_idle not said: false
    sidecar = run_v2.Container(name="side", image=IMAGE)  # no limits: one CPU
    serving = run_v2.Container(
        name="app", image=IMAGE, resources=limits, ports=[run_v2.ContainerPort(container_port=8080)]
    )
    gen2 = run_v2.ExecutionEnvironment.EXECUTION_ENVIRONMENT_GEN2
    tuned = run_v2.RevisionTemplate(containers=[sidecar, serving], execution_environment=gen2)
    services.create_service(parent=parent, service_id="tuned", service={"template": tuned})
    run = cloud_run(emulator)

    plain, tuned_live = run.get("api"), run.get("tuned")

    assert plain is not None and tuned_live is not None
    assert (plain.cpu_always_allocated, plain.gen2, plain.sidecar_cpus) == (False, False, 0.0)
    assert (tuned_live.cpu_always_allocated, tuned_live.gen2, tuned_live.sidecar_cpus) == (True, True, 1.0)


def test_a_wait_names_the_new_revision_and_the_pending_condition_and_says_how_long_it_has_waited(
    emulator: Emulator, services: run_v2.ServicesClient
) -> None:
    google = Google(ClientFactory(emulator.grpc_address), PROJECT, "us-central1")
    now = [100.0]

    def sleep(seconds: float) -> None:
        now[0] += 3  # polls 3 s apart: the line repeats at the first poll 10 s or more after the last, every 12 s
        time.sleep(0.05)

    run = CloudRun(
        google.factory.run_services(),
        PROJECT,
        "us-central1",
        google.retrier,
        revisions=google.factory.run_revisions(),
        sleep=sleep,
        clock=lambda: now[0],
    )
    emulator.faults.lro_delay = 1.0  # the operation stays open for a second of real time
    live = run.get("api")
    seen: list[str] = []
    with pytest.raises(DokiError):  # no engine: the revision never becomes Ready
        run.apply("api", replace(SPEC, memory="1Gi"), keep_env=(), live=live, on_progress=seen.append)

    created = services.get_service(name=PATH).latest_created_revision.rsplit("/", 1)[1]
    assert created != (live.latest_created if live else None)
    assert len(seen) >= 2
    prefix = f"waiting for revision {created}: "
    assert all(line.startswith(prefix) for line in seen), seen
    assert [line.rsplit("(", 1)[1] for line in seen] == [f"{12 * i} s)" for i in range(len(seen))]
    assert seen[0] == prefix + "ConfigurationsReady, the configuration is being applied (0 s)"
