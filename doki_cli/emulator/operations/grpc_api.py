"""google.longrunning.Operations over gRPC: what `Operation.result()` polls."""

from __future__ import annotations

from google.longrunning import operations_pb2
from google.protobuf import empty_pb2

from doki_cli.emulator.faults import Faults
from doki_cli.emulator.grpcapi import GrpcService, Method
from doki_cli.emulator.operations.state import Operations

SERVICE = "google.longrunning.Operations"


def methods(operations: Operations) -> dict[str, Method]:
    """The Operations methods, by gRPC method name; REST surfaces that poll operations transcode to them too."""

    def list_operations(request: operations_pb2.ListOperationsRequest) -> operations_pb2.ListOperationsResponse:
        return operations_pb2.ListOperationsResponse(operations=operations.list(request.name))

    def delete_operation(request: operations_pb2.DeleteOperationRequest) -> empty_pb2.Empty:
        operations.delete(request.name)
        return empty_pb2.Empty()

    def wait_operation(request: operations_pb2.WaitOperationRequest) -> operations_pb2.Operation:
        timeout = request.timeout.ToTimedelta().total_seconds() if request.HasField("timeout") else None
        return operations.wait(request.name, timeout)

    def cancel_operation(request: operations_pb2.CancelOperationRequest) -> empty_pb2.Empty:
        operations.get(request.name)  # cancelling is best effort on Google too; the work runs to its end
        return empty_pb2.Empty()

    return {
        "GetOperation": Method(
            operations_pb2.GetOperationRequest, operations_pb2.Operation, lambda r: operations.get(r.name)
        ),
        "ListOperations": Method(
            operations_pb2.ListOperationsRequest, operations_pb2.ListOperationsResponse, list_operations
        ),
        "DeleteOperation": Method(operations_pb2.DeleteOperationRequest, empty_pb2.Empty, delete_operation),
        "WaitOperation": Method(operations_pb2.WaitOperationRequest, operations_pb2.Operation, wait_operation),
        "CancelOperation": Method(operations_pb2.CancelOperationRequest, empty_pb2.Empty, cancel_operation),
    }


def service(operations: Operations, faults: Faults) -> GrpcService:
    api = GrpcService(SERVICE, faults)
    api.add(methods(operations))
    return api
