"""google.api.serviceusage.v1.ServiceUsage over gRPC: reads answer at once, enabling and disabling are long-running
operations (polled through google.longrunning.Operations, as on Google). `methods()` is also what the REST surface
transcodes to, so both transports answer alike by construction."""

from __future__ import annotations

import uuid

from google.cloud import service_usage_v1 as su
from google.longrunning import operations_pb2

from doki_cli.emulator.errors import invalid_argument
from doki_cli.emulator.faults import Faults
from doki_cli.emulator.grpcapi import GrpcService, Method
from doki_cli.emulator.operations.state import Operations
from doki_cli.emulator.serviceusage.state import MAX_BATCH_ENABLE, ServiceUsage, project_of_parent, split_name

SERVICE = "google.api.serviceusage.v1.ServiceUsage"


def _operation_name() -> str:
    # Service Usage operations are not under the project: "operations/acat.p2-..." on Google.
    return f"operations/acat.p2-{uuid.uuid4()}"


def methods(usage: ServiceUsage, operations: Operations) -> dict[str, Method]:
    """ServiceUsage's methods, by gRPC method name; the REST surface (rest_api.py) transcodes to them too."""

    def start(names: list[str], response: object) -> operations_pb2.Operation:
        return operations.start(_operation_name(), su.OperationMetadata(resource_names=names), lambda _: response)

    def enable_service(request: su.EnableServiceRequest) -> operations_pb2.Operation:
        # Validation and the change happen in the call, so an unknown service fails the call itself.
        project, name = split_name(request.name)
        (enabled,) = usage.set_enabled(project, [name], True)
        return start([request.name], su.EnableServiceResponse(service=enabled))

    def disable_service(request: su.DisableServiceRequest) -> operations_pb2.Operation:
        project, name = split_name(request.name)
        (disabled,) = usage.set_enabled(project, [name], False)
        return start([request.name], su.DisableServiceResponse(service=disabled))

    def batch_enable(request: su.BatchEnableServicesRequest) -> operations_pb2.Operation:
        project = project_of_parent(request.parent)
        ids = list(request.service_ids)
        if not ids:
            raise invalid_argument("service_ids must not be empty.")
        if len(ids) > MAX_BATCH_ENABLE:
            raise invalid_argument(f"At most {MAX_BATCH_ENABLE} services can be enabled at a time.")
        enabled = usage.set_enabled(project, ids, True)
        names = [f"{request.parent}/services/{s}" for s in ids]
        return start(names, su.BatchEnableServicesResponse(services=enabled))

    def list_services(request: su.ListServicesRequest) -> su.ListServicesResponse:
        services, token = usage.list_services(request.parent, request.page_size, request.page_token, request.filter)
        return su.ListServicesResponse(services=services, next_page_token=token)

    def batch_get(request: su.BatchGetServicesRequest) -> su.BatchGetServicesResponse:
        return su.BatchGetServicesResponse(services=usage.batch_get(request.parent, list(request.names)))

    return {
        "EnableService": Method(su.EnableServiceRequest, operations_pb2.Operation, enable_service),
        "DisableService": Method(su.DisableServiceRequest, operations_pb2.Operation, disable_service),
        "BatchEnableServices": Method(su.BatchEnableServicesRequest, operations_pb2.Operation, batch_enable),
        "GetService": Method(su.GetServiceRequest, su.Service, lambda r: usage.get(r.name)),
        "ListServices": Method(su.ListServicesRequest, su.ListServicesResponse, list_services),
        "BatchGetServices": Method(su.BatchGetServicesRequest, su.BatchGetServicesResponse, batch_get),
    }


def service(usage: ServiceUsage, operations: Operations, faults: Faults) -> GrpcService:
    api = GrpcService(SERVICE, faults)
    api.add(methods(usage, operations))
    return api
