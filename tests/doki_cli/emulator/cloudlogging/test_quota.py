"""Cloud Logging's read quota in the emulator: 60 entries.list calls a minute per project, refused beyond as Google
refuses them, and a per-project limit a test may change through the control API."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from google.api_core import exceptions

from doki_cli.emulator.projects import project_number
from doki_cli.emulator.server import Emulator, EmulatorConfig
from doki_cli.errors import DokiError
from doki_cli.gcp.clients import ClientFactory
from doki_cli.gcp.google import Google
from doki_cli.gcp.logs import LogQuery
from doki_cli.gcp.retry import Retrier


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def emulator(clock: Clock) -> Iterator[Emulator]:
    with Emulator(EmulatorConfig(), clock=clock) as running:
        yield running


def read(emulator: Emulator, project: str) -> None:
    client = ClientFactory(emulator.grpc_address).logging()
    request = {"resource_names": [f"projects/{project}"], "page_size": 1}
    list(client.list_log_entries(request=request, retry=None))


def test_the_sixty_first_read_in_a_minute_is_refused_as_google_refuses_it(emulator: Emulator, clock: Clock) -> None:
    for _ in range(60):
        read(emulator, "busy")
    with pytest.raises(exceptions.TooManyRequests) as refused:
        read(emulator, "busy")
    number = project_number("busy")
    assert refused.value.message == (
        "Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute' of service "
        f"'logging.googleapis.com' for consumer 'project_number:{number}'."
    )
    assert refused.value.reason == "RATE_LIMIT_EXCEEDED"
    assert refused.value.metadata["quota_limit"] == "ReadRequestsPerMinutePerProject"
    assert refused.value.metadata["quota_limit_value"] == "60"
    read(emulator, "other")  # each project has its own minute

    clock.now += 30
    with pytest.raises(exceptions.TooManyRequests):
        read(emulator, "busy")  # a sliding minute: the first calls are 30 s old
    clock.now += 30.5
    read(emulator, "busy")


def test_a_project_limit_set_through_the_control_api_applies_and_null_lifts_it(emulator: Emulator) -> None:
    answer = httpx.post(
        f"{emulator.rest_url}/_doki/policies", json={"project": "small", "logging_read_requests_per_minute": 2}
    )
    assert answer.json() == {
        "project": "small",
        "logging_read_requests_per_minute": 2,
        "iam_propagation_seconds": 0,
        "callers_inside_vpc": False,
        "domain_restricted_sharing": False,
        "verified_domains": [],
    }
    read(emulator, "small")
    read(emulator, "small")
    with pytest.raises(exceptions.TooManyRequests):
        read(emulator, "small")
    lifted = httpx.post(
        f"{emulator.rest_url}/_doki/policies", json={"project": "small", "logging_read_requests_per_minute": None}
    )
    assert lifted.json()["logging_read_requests_per_minute"] is None
    for _ in range(100):
        read(emulator, "small")


@pytest.mark.parametrize(
    "body",
    [{"logging_read_requests_per_minute": 5}, {"project": "p"}, {"project": "p", "quota": 1}],
    ids=["no project", "no setting", "an unknown setting"],
)
def test_a_policy_without_a_project_or_a_known_setting_is_refused(emulator: Emulator, body: dict[str, object]) -> None:
    answer = httpx.post(f"{emulator.rest_url}/_doki/policies", json=body)
    assert answer.status_code == 400
    assert answer.json()["error"]["message"].startswith('send {"project": P, SETTING: VALUE}')


def test_doki_retries_a_spent_read_quota_into_the_next_minute_then_names_it(emulator: Emulator, clock: Clock) -> None:
    waited: list[float] = []

    def sleep(seconds: float) -> None:
        waited.append(seconds)
        clock.now += seconds  # the emulator's minute moves on with doki's waits

    retrier = Retrier(sleep=sleep, clock=clock, jitter=lambda: 1.0)
    logs = Google(ClientFactory(emulator.grpc_address), "busy", retrier=retrier).logs
    for _ in range(60):
        read(emulator, "busy")
    clock.now += 10  # another reader spent the minute's calls 10 s ago
    assert logs.recent(LogQuery("api", "us-central1"), 5) == []  # retried until those calls left the minute
    assert 50 <= sum(waited) < 60

    httpx.post(f"{emulator.rest_url}/_doki/policies", json={"project": "busy", "logging_read_requests_per_minute": 0})
    with pytest.raises(DokiError) as spent:
        logs.recent(LogQuery("api", "us-central1"), 5)
    assert spent.value.code == "quota_exceeded"
    assert spent.value.message.startswith(
        "reading the logs of projects/busy: Google's ReadRequestsPerMinutePerProject quota is spent (Quota exceeded "
    )
    assert spent.value.hint == (
        "wait a minute and run it again (every reader of the project's logs shares it: doki, the console, other tools)"
    )


def test_a_policy_with_one_bad_value_changes_nothing(emulator: Emulator) -> None:
    body = {"project": "p", "iam_propagation_seconds": 5, "callers_inside_vpc": "yes"}
    answer = httpx.post(f"{emulator.rest_url}/_doki/policies", json=body)
    assert (answer.status_code, answer.json()["error"]["message"]) == (400, "callers_inside_vpc must be true or false")
    assert emulator.iam_propagation.seconds("p") == 0
    assert httpx.post(f"{emulator.rest_url}/_doki/policies", json=["p"]).status_code == 400
