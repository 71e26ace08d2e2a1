"""google.devtools.artifactregistry.v1.ArtifactRegistry over gRPC: repositories (long-running create and delete),
Docker images, and repository IAM policies."""

from __future__ import annotations

import re
import uuid

from google.cloud import artifactregistry_v1 as ar
from google.longrunning import operations_pb2
from google.protobuf import empty_pb2

from doki_cli.emulator.artifactregistry.state import PARENT, Registry
from doki_cli.emulator.errors import invalid_argument
from doki_cli.emulator.faults import Faults
from doki_cli.emulator.grpcapi import GrpcService
from doki_cli.emulator.iam import add_iam_methods
from doki_cli.emulator.operations.state import Operations


def _operation_name(resource: str) -> str:
    """An operation under the location `resource` (a parent, or a name within one) belongs to."""
    match = PARENT.match(resource)
    if match is None:
        raise invalid_argument(
            f'Invalid resource name "{resource}": expected "projects/PROJECT/locations/LOCATION/...".'
        )
    return f"{match.group(0)}/operations/{uuid.uuid4()}"


def _snake_case(path: str) -> str:
    # Update masks arrive snake_case over gRPC but camelCase from JSON-minded callers; both mean the same field.
    return re.sub(r"[A-Z]", lambda m: "_" + m.group(0).lower(), path)


def service(registry: Registry, operations: Operations, faults: Faults) -> GrpcService:
    """The ArtifactRegistry methods doki and Cloud Build users call, backed by `registry`."""
    api = GrpcService("google.devtools.artifactregistry.v1.ArtifactRegistry", faults)

    def create_repository(request: ar.CreateRepositoryRequest) -> operations_pb2.Operation:
        # Validation and the conflict check happen in the call itself, as on Google: the caller gets ALREADY_EXISTS
        # or INVALID_ARGUMENT from create_repository, not from the operation.
        created = registry.create_repository(request.parent, request.repository_id, request.repository)
        return operations.start(_operation_name(request.parent), ar.OperationMetadata(), lambda _: created)

    def list_repositories(request: ar.ListRepositoriesRequest) -> ar.ListRepositoriesResponse:
        if request.filter or request.order_by not in ("", "name"):
            raise invalid_argument("The emulator lists repositories by name only, without filter or order_by.")
        repositories, token = registry.list_repositories(request.parent, request.page_size, request.page_token)
        return ar.ListRepositoriesResponse(repositories=repositories, next_page_token=token)

    def update_repository(request: ar.UpdateRepositoryRequest) -> ar.Repository:
        paths = [_snake_case(path) for path in request.update_mask.paths]
        return registry.update_repository(request.repository, paths)

    def delete_repository(request: ar.DeleteRepositoryRequest) -> operations_pb2.Operation:
        registry.delete_repository(request.name)
        return operations.start(_operation_name(request.name), ar.OperationMetadata(), lambda _: empty_pb2.Empty())

    def list_docker_images(request: ar.ListDockerImagesRequest) -> ar.ListDockerImagesResponse:
        images, token = registry.list_docker_images(
            request.parent, request.page_size, request.page_token, request.order_by
        )
        return ar.ListDockerImagesResponse(docker_images=images, next_page_token=token)

    api.unary("CreateRepository", ar.CreateRepositoryRequest, operations_pb2.Operation, create_repository)
    api.unary("GetRepository", ar.GetRepositoryRequest, ar.Repository, lambda r: registry.get_repository(r.name))
    api.unary("ListRepositories", ar.ListRepositoriesRequest, ar.ListRepositoriesResponse, list_repositories)
    api.unary("UpdateRepository", ar.UpdateRepositoryRequest, ar.Repository, update_repository)
    api.unary("DeleteRepository", ar.DeleteRepositoryRequest, operations_pb2.Operation, delete_repository)
    api.unary("ListDockerImages", ar.ListDockerImagesRequest, ar.ListDockerImagesResponse, list_docker_images)
    api.unary("GetDockerImage", ar.GetDockerImageRequest, ar.DockerImage, lambda r: registry.get_docker_image(r.name))
    add_iam_methods(api, registry.policies, registry.check_exists)
    return api
