"""google.cloud.run.v2 Services and Revisions over gRPC: each method turns its request into a CloudRun call."""

from __future__ import annotations

from google.cloud import run_v2
from google.longrunning import operations_pb2

from doki_cli.emulator.faults import Faults
from doki_cli.emulator.grpcapi import GrpcService
from doki_cli.emulator.iam import add_iam_methods
from doki_cli.emulator.run.state import CloudRun

SERVICES = "google.cloud.run.v2.Services"
REVISIONS = "google.cloud.run.v2.Revisions"


def services(run: CloudRun, faults: Faults) -> list[GrpcService]:
    """The Services service (with its IAM methods) and the Revisions service."""
    api = GrpcService(SERVICES, faults)

    def create_service(request: run_v2.CreateServiceRequest) -> operations_pb2.Operation:
        return run.create_service(request.parent, request.service_id, request.service, request.validate_only)

    def list_services(request: run_v2.ListServicesRequest) -> run_v2.ListServicesResponse:
        found, token = run.list_services(request.parent, request.page_size, request.page_token)
        return run_v2.ListServicesResponse(services=found, next_page_token=token)

    def update_service(request: run_v2.UpdateServiceRequest) -> operations_pb2.Operation:
        return run.update_service(
            request.service, request.update_mask.paths, request.validate_only, request.allow_missing
        )

    def delete_service(request: run_v2.DeleteServiceRequest) -> operations_pb2.Operation:
        return run.delete_service(request.name, request.etag, request.validate_only)

    api.unary("CreateService", run_v2.CreateServiceRequest, operations_pb2.Operation, create_service)
    api.unary("GetService", run_v2.GetServiceRequest, run_v2.Service, lambda r: run.get_service(r.name))
    api.unary("ListServices", run_v2.ListServicesRequest, run_v2.ListServicesResponse, list_services)
    api.unary("UpdateService", run_v2.UpdateServiceRequest, operations_pb2.Operation, update_service)
    api.unary("DeleteService", run_v2.DeleteServiceRequest, operations_pb2.Operation, delete_service)
    add_iam_methods(api, run.policies, run.check_service_exists)

    revisions = GrpcService(REVISIONS, faults)

    def list_revisions(request: run_v2.ListRevisionsRequest) -> run_v2.ListRevisionsResponse:
        found, token = run.list_revisions(request.parent, request.page_size, request.page_token)
        return run_v2.ListRevisionsResponse(revisions=found, next_page_token=token)

    def delete_revision(request: run_v2.DeleteRevisionRequest) -> operations_pb2.Operation:
        return run.delete_revision(request.name, request.etag, request.validate_only)

    revisions.unary("GetRevision", run_v2.GetRevisionRequest, run_v2.Revision, lambda r: run.get_revision(r.name))
    revisions.unary("ListRevisions", run_v2.ListRevisionsRequest, run_v2.ListRevisionsResponse, list_revisions)
    revisions.unary("DeleteRevision", run_v2.DeleteRevisionRequest, operations_pb2.Operation, delete_revision)
    return [api, revisions]
