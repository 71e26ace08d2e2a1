"""google.devtools.cloudbuild.v1.CloudBuild over gRPC: create (long-running), get, list and cancel builds."""

from __future__ import annotations

from google.cloud.devtools import cloudbuild_v1 as cb
from google.longrunning import operations_pb2

from doki_cli.emulator.cloudbuild.state import CloudBuild
from doki_cli.emulator.faults import Faults
from doki_cli.emulator.grpcapi import GrpcService


def service(builds: CloudBuild, faults: Faults) -> GrpcService:
    """The build methods `gcloud builds submit` and the Python client use, backed by `builds`."""
    api = GrpcService("google.devtools.cloudbuild.v1.CloudBuild", faults)

    def list_builds(request: cb.ListBuildsRequest) -> cb.ListBuildsResponse:
        found, token = builds.list_builds(
            request.parent, request.project_id, request.page_size, request.page_token, request.filter
        )
        return cb.ListBuildsResponse(builds=found, next_page_token=token)

    api.unary(
        "CreateBuild",
        cb.CreateBuildRequest,
        operations_pb2.Operation,
        lambda r: builds.create_build(r.parent, r.project_id, r.build),
    )
    api.unary("GetBuild", cb.GetBuildRequest, cb.Build, lambda r: builds.get_build(r.name, r.project_id, r.id))
    api.unary("ListBuilds", cb.ListBuildsRequest, cb.ListBuildsResponse, list_builds)
    api.unary("CancelBuild", cb.CancelBuildRequest, cb.Build, lambda r: builds.cancel_build(r.name, r.project_id, r.id))
    return api
