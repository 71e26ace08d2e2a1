"""Waiting for long-running operations (doki_cli.gcp.operations) against the emulator, through the Artifact
Registry and Service Usage adapters that wait on them: every poll goes through doki's Retrier, every wait is the
Retrier's own sleep, and a write whose answer was lost is not made twice."""

from __future__ import annotations

import time

import pytest

from doki_cli.emulator.server import Emulator
from doki_cli.errors import DokiError
from doki_cli.gcp.clients import ClientFactory
from doki_cli.gcp.google import Google
from doki_cli.gcp.retry import Retrier

OPERATION = "/google.longrunning.Operations/GetOperation"
CREATE_REPOSITORY = "/google.devtools.artifactregistry.v1.ArtifactRegistry/CreateRepository"
BATCH_ENABLE = "/google.api.serviceusage.v1.ServiceUsage/BatchEnableServices"


class FakeClock:
    """The Retrier's time: every wait is recorded and adds to `now`; `real` seconds of each are slept, so an
    operation the emulator finishes after a short delay gets done between polls."""

    def __init__(self, real: float = 0.0) -> None:
        self.now = 0.0
        self.waits: list[float] = []
        self._real = real

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds
        time.sleep(self._real)

    def retrier(self) -> Retrier:
        return Retrier(sleep=self.sleep, clock=lambda: self.now, jitter=lambda: 0.5)


def google_on(emulator: Emulator, clients: ClientFactory, clock: FakeClock) -> Google:
    return Google(clients, "p", "us-central1", retrier=clock.retrier())


def test_polls_that_fail_transiently_are_retried_by_dokis_retrier_alone(
    emulator: Emulator, clients: ClientFactory
) -> None:
    clock = FakeClock(real=0.05)
    emulator.faults.lro_delay = 0.05  # not done at once: the adapter must poll
    emulator.faults.fail("GetOperation", "UNAVAILABLE", times=2)

    assert google_on(emulator, clients, clock).artifact_registry.ensure_repository("apps") is True

    # Two retries of the first poll (the Retrier's 0.1875 s and 0.375 s), then the wait's own pace between polls.
    assert clock.waits[:2] == [0.1875, 0.375]
    assert set(clock.waits[2:]) <= {0.5, 0.75, 1.125, 1.6875, 2.53125, 3.796875, 5.0}
    assert emulator.faults.calls[OPERATION] >= 3


def test_a_poll_that_keeps_failing_stops_the_wait_at_the_retriers_deadline_with_the_fix(
    emulator: Emulator, clients: ClientFactory
) -> None:
    clock = FakeClock()
    emulator.faults.lro_delay = 60
    emulator.faults.fail("GetOperation", "UNAVAILABLE", times=1000)

    with pytest.raises(DokiError) as failed:
        google_on(emulator, clients, clock).artifact_registry.ensure_repository("apps")

    assert failed.value.code == "google_unavailable"
    assert failed.value.message == (
        "waiting for projects/p/locations/us-central1/repositories/apps: Google kept failing "
        "(injected UNAVAILABLE for GetOperation); the change was accepted and goes on at Google"
    )
    assert 55 <= clock.now <= 60  # the Retrier's deadline, on its own clock: no real wait
    assert emulator.faults.calls[OPERATION] < 20


def test_an_operation_still_running_at_the_timeout_says_it_goes_on_and_how_to_check(
    emulator: Emulator, clients: ClientFactory
) -> None:
    clock = FakeClock()
    emulator.faults.lro_delay = 3600

    with pytest.raises(DokiError) as failed:
        google_on(emulator, clients, clock).artifact_registry.ensure_repository("apps")

    assert (failed.value.code, failed.value.message, failed.value.hint) == (
        "create_timeout",
        "projects/p/locations/us-central1/repositories/apps was not created after 300 s",
        "check again in a minute: gcloud artifacts repositories describe apps --location us-central1 --project p",
    )
    assert 295 <= clock.now <= 300


def test_a_repository_made_by_a_try_whose_answer_was_lost_counts_as_created_once(
    emulator: Emulator, clients: ClientFactory
) -> None:
    clock = FakeClock()
    emulator.faults.fail("CreateRepository", "UNAVAILABLE", answer_lost=True)
    registry = google_on(emulator, clients, clock).artifact_registry

    assert registry.ensure_repository("apps") is True
    assert emulator.faults.calls[CREATE_REPOSITORY] == 2
    assert registry.ensure_repository("apps") is False


def test_enabling_apis_whose_answer_was_lost_enables_them_once_retried(
    emulator: Emulator, clients: ClientFactory
) -> None:
    clock = FakeClock(real=0.05)
    emulator.faults.lro_delay = 0.05
    emulator.faults.fail("BatchEnableServices", "UNAVAILABLE", answer_lost=True)
    emulator.faults.fail("GetOperation", "INTERNAL")
    usage = google_on(emulator, clients, clock).service_usage

    usage.enable(["run.googleapis.com", "cloudbuild.googleapis.com"])

    assert usage.disabled(["run.googleapis.com", "cloudbuild.googleapis.com"]) == []
    assert emulator.faults.calls[BATCH_ENABLE] == 2
    assert clock.waits[:2] == [0.1875, 0.1875]  # the lost answer's retry, then the failed poll's
