"""google.cloud.secretmanager.v1.SecretManagerService over gRPC: each method turns its request into a store call.

`methods()` is also what the REST surface transcodes to, so both transports answer alike by construction.
"""

from __future__ import annotations

from google.cloud.secretmanager_v1 import types
from google.protobuf import empty_pb2

from doki_cli.emulator.faults import Faults
from doki_cli.emulator.grpcapi import GrpcService, Method
from doki_cli.emulator.iam import add_iam_methods
from doki_cli.emulator.secretmanager.state import SecretStore

SERVICE = "google.cloud.secretmanager.v1.SecretManagerService"


def methods(secrets: SecretStore) -> dict[str, Method]:
    """Every SecretManagerService method except the IAM ones, by gRPC method name."""

    def list_secrets(request: types.ListSecretsRequest) -> types.ListSecretsResponse:
        page, next_token, total = secrets.list_secrets(
            request.parent, request.page_size, request.page_token, request.filter
        )
        return types.ListSecretsResponse(secrets=page, next_page_token=next_token, total_size=total)

    def update_secret(request: types.UpdateSecretRequest) -> types.Secret:
        return secrets.update_secret(request.secret, request.update_mask.paths)

    def delete_secret(request: types.DeleteSecretRequest) -> empty_pb2.Empty:
        secrets.delete_secret(request.name, request.etag)
        return empty_pb2.Empty()

    def list_versions(request: types.ListSecretVersionsRequest) -> types.ListSecretVersionsResponse:
        page, next_token, total = secrets.list_versions(
            request.parent, request.page_size, request.page_token, request.filter
        )
        return types.ListSecretVersionsResponse(versions=page, next_page_token=next_token, total_size=total)

    return {
        "ListSecrets": Method(types.ListSecretsRequest, types.ListSecretsResponse, list_secrets),
        "CreateSecret": Method(
            types.CreateSecretRequest,
            types.Secret,
            lambda r: secrets.create_secret(r.parent, r.secret_id, r.secret),
        ),
        "GetSecret": Method(types.GetSecretRequest, types.Secret, lambda r: secrets.get_secret(r.name)),
        "UpdateSecret": Method(types.UpdateSecretRequest, types.Secret, update_secret),
        "DeleteSecret": Method(types.DeleteSecretRequest, empty_pb2.Empty, delete_secret),
        "AddSecretVersion": Method(
            types.AddSecretVersionRequest, types.SecretVersion, lambda r: secrets.add_version(r.parent, r.payload)
        ),
        "ListSecretVersions": Method(types.ListSecretVersionsRequest, types.ListSecretVersionsResponse, list_versions),
        "GetSecretVersion": Method(
            types.GetSecretVersionRequest, types.SecretVersion, lambda r: secrets.get_version(r.name)
        ),
        "AccessSecretVersion": Method(
            types.AccessSecretVersionRequest, types.AccessSecretVersionResponse, lambda r: secrets.access(r.name)
        ),
        "DisableSecretVersion": Method(
            types.DisableSecretVersionRequest,
            types.SecretVersion,
            lambda r: secrets.disable_version(r.name, r.etag),
        ),
        "EnableSecretVersion": Method(
            types.EnableSecretVersionRequest,
            types.SecretVersion,
            lambda r: secrets.enable_version(r.name, r.etag),
        ),
        "DestroySecretVersion": Method(
            types.DestroySecretVersionRequest,
            types.SecretVersion,
            lambda r: secrets.destroy_version(r.name, r.etag),
        ),
    }


def service(secrets: SecretStore, faults: Faults) -> GrpcService:
    """The gRPC service: every method of `methods()` plus the IAM ones."""
    api = GrpcService(SERVICE, faults)
    api.add(methods(secrets))
    add_iam_methods(api, secrets.policies, secrets.check_exists)
    return api
