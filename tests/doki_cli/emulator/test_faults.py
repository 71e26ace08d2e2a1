"""Fault injection, through the control API as a test or a user drives it, and its effect on real clients."""

from __future__ import annotations

import httpx
import pytest
from google.api_core import exceptions, operations_v1

from doki_cli.emulator.faults import Faults
from doki_cli.emulator.server import Emulator, EmulatorConfig
from doki_cli.gcp.clients import ClientFactory


def test_a_planned_failure_hits_the_next_calls_then_stops() -> None:
    faults = Faults()
    faults.fail("GetOperation", "UNAVAILABLE", times=2)
    for _ in range(2):
        with pytest.raises(Exception, match="injected UNAVAILABLE for GetOperation"):
            faults.check("/google.longrunning.Operations/GetOperation")
    faults.check("/google.longrunning.Operations/GetOperation")
    assert faults.calls["/google.longrunning.Operations/GetOperation"] == 3


def test_a_failure_matches_only_its_method() -> None:
    faults = Faults()
    faults.fail("Services/UpdateService", "INTERNAL")
    faults.check("/google.cloud.run.v2.Services/GetService")
    faults.check("/google.cloud.run.v2.Revisions/UpdateService")
    with pytest.raises(Exception, match="injected INTERNAL"):
        faults.check("/google.cloud.run.v2.Services/UpdateService")


def test_revision_failures_are_consumed_per_service() -> None:
    faults = Faults()
    faults.fail_revisions("api", times=1, message="boom")
    assert faults.take_revision_failure("web") is None
    assert faults.take_revision_failure("api") == "boom"
    assert faults.take_revision_failure("api") is None


def test_the_control_api_injects_a_failure_that_a_real_client_sees(emulator: Emulator, clients: ClientFactory) -> None:
    answer = httpx.post(
        emulator.rest_url + "/_doki/faults",
        json={"method": "GetOperation", "code": "PERMISSION_DENIED", "times": 1, "message": "no access"},
    )
    assert answer.status_code == 200
    assert answer.json()["failures"] == [
        {
            "method": "GetOperation",
            "code": "PERMISSION_DENIED",
            "remaining": 1,
            "message": "no access",
            "answer_lost": False,
        }
    ]
    client = operations_v1.OperationsClient(clients.channel())
    with pytest.raises(exceptions.PermissionDenied, match="no access"):
        client.get_operation("operations/x")
    with pytest.raises(exceptions.NotFound):
        client.get_operation("operations/x")
    assert httpx.get(emulator.rest_url + "/_doki/faults").json()["failures"] == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"method": "GetOperation", "code": "SOMETIMES"}, "unknown status 'SOMETIMES'; use one of CANCELLED, UNKNOWN"),
        ({"method": "GetOperation", "code": "OK"}, "OK is not a failure; use a status such as UNAVAILABLE"),
        ({"method": "GetOperation", "code": "INTERNAL", "times": 0}, "times must be at least 1, not 0"),
        ({"lro_delay": -1}, "lro_delay must be a number of seconds, 0 or more"),
        ({"nothing": True}, 'send {"method": M, "code": STATUS, "times": N, "answer_lost": BOOL}'),
    ],
)
def test_the_control_api_refuses_a_bad_fault_with_a_google_style_error(
    emulator: Emulator, body: dict[str, object], message: str
) -> None:
    answer = httpx.post(emulator.rest_url + "/_doki/faults", json=body)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert (error["code"], error["status"]) == (400, "INVALID_ARGUMENT")
    assert error["message"].startswith(message)


def test_clearing_faults_resets_the_plan_and_the_call_counts(emulator: Emulator) -> None:
    httpx.post(emulator.rest_url + "/_doki/faults", json={"lro_delay": 2})
    assert emulator.faults.lro_delay == 2
    assert httpx.delete(emulator.rest_url + "/_doki/faults").json() == {
        "failures": [],
        "revision_failures": [],
        "lro_delay": 0.0,
        "calls": {},
    }


def test_an_unknown_rest_path_gets_googles_not_found_body(emulator: Emulator) -> None:
    answer = httpx.get(emulator.rest_url + "/v9/nowhere")
    assert answer.status_code == 404
    assert answer.json() == {
        "error": {
            "code": 404,
            "message": "The requested URL /v9/nowhere was not found on this server.",
            "status": "NOT_FOUND",
        }
    }


def test_touching_an_unknown_resource_is_not_found(emulator: Emulator) -> None:
    answer = httpx.post(emulator.rest_url + "/_doki/touch", json={"resource": "projects/p/secrets/none"})
    assert answer.status_code == 404
    assert answer.json()["error"]["message"] == "projects/p/secrets/none is not a resource the emulator can change"


def test_a_lost_answer_makes_the_change_yet_the_client_sees_the_failure(
    emulator: Emulator, clients: ClientFactory
) -> None:
    answer = httpx.post(
        emulator.rest_url + "/_doki/faults",
        json={"method": "CreateSecret", "code": "UNAVAILABLE", "answer_lost": True},
    )
    assert answer.json()["failures"][0]["answer_lost"] is True
    client = clients.secret_manager()

    with pytest.raises(exceptions.ServiceUnavailable, match="after serving it"):
        client.create_secret(parent="projects/p", secret_id="made", secret={"replication": {"automatic": {}}})

    assert client.get_secret(name="projects/p/secrets/made").name == "projects/p/secrets/made"
    assert httpx.get(emulator.rest_url + "/_doki/faults").json()["failures"] == []


def test_a_lost_answer_over_rest_makes_the_change_too(emulator: Emulator, clients: ClientFactory) -> None:
    emulator.faults.fail("CreateSecret", "INTERNAL", answer_lost=True)
    url = emulator.rest_url + "/v1/projects/p/secrets?secretId=made"

    answer = httpx.post(url, json={"replication": {"automatic": {}}})

    assert answer.status_code == 500
    assert answer.json()["error"]["status"] == "INTERNAL"
    assert httpx.get(emulator.rest_url + "/v1/projects/p/secrets/made").status_code == 200


def test_a_second_emulator_cannot_take_the_grpc_port_of_a_running_one(emulator: Emulator) -> None:
    # gRPC servers share a port by default (SO_REUSEPORT): calls would split between two emulators' states.
    port = int(emulator.grpc_address.rsplit(":", 1)[1])
    with pytest.raises(OSError, match=f"cannot listen for gRPC on 127.0.0.1:{port}"):
        Emulator(EmulatorConfig(grpc_port=port, rest_port=0, registry_port=0)).start()
