"""Long-running operations as clients see them through google.longrunning.Operations."""

from __future__ import annotations

import threading

import pytest
from google.api_core import exceptions, operations_v1
from google.protobuf import wrappers_pb2

from doki_cli.emulator.errors import failed_precondition
from doki_cli.emulator.faults import Faults
from doki_cli.emulator.operations.state import Operations
from doki_cli.emulator.server import Emulator
from doki_cli.gcp.clients import ClientFactory


def test_quick_work_answers_with_an_operation_that_is_already_done() -> None:
    operation = Operations(Faults()).start(
        "operations/quick", None, lambda set_metadata: wrappers_pb2.StringValue(value="ok")
    )
    assert operation.done
    result = wrappers_pb2.StringValue()
    operation.response.Unpack(result)
    assert result.value == "ok"


def test_a_failing_operation_carries_the_error_status_and_message() -> None:
    def work(set_metadata: object) -> None:
        raise failed_precondition("Revision 'api-00001-abc' is not ready and cannot serve traffic.")

    operation = Operations(Faults()).start("operations/failing", None, work)
    assert operation.done
    assert (operation.error.code, operation.error.message) == (
        9,
        "Revision 'api-00001-abc' is not ready and cannot serve traffic.",
    )


def test_an_emulator_bug_ends_the_operation_as_internal_and_logs_its_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def work(set_metadata: object) -> None:
        raise KeyError("a bug")

    operation = Operations(Faults()).start("operations/buggy", None, work)
    assert (operation.done, operation.error.code, operation.error.message) == (True, 13, "emulator error: 'a bug'")
    (record,) = [r for r in caplog.records if r.name == "doki.emulator"]
    assert record.getMessage() == "operation operations/buggy failed"
    assert record.exc_info is not None and record.exc_info[0] is KeyError


def test_slow_work_is_polled_through_get_operation_until_done(emulator: Emulator, clients: ClientFactory) -> None:
    release = threading.Event()

    def work(set_metadata: object) -> wrappers_pb2.StringValue:
        release.wait(10)
        return wrappers_pb2.StringValue(value="finished")

    emulator.faults.lro_delay = 0.01  # answer "not done" at once instead of waiting inline
    started = emulator.operations.start("projects/p/locations/l/operations/slow", None, work)
    assert not started.done
    client = operations_v1.OperationsClient(clients.channel())
    assert not client.get_operation(started.name).done
    release.set()
    finished = emulator.operations.wait(started.name, timeout=10)
    assert finished.done
    assert client.get_operation(started.name).done


def test_an_unknown_operation_is_not_found(clients: ClientFactory) -> None:
    with pytest.raises(exceptions.NotFound, match=r"Operation operations/nope not found\."):
        operations_v1.OperationsClient(clients.channel()).get_operation("operations/nope")
