"""Secret Manager's REST surface (what gcloud and the Python REST transport send), transcoded to the gRPC methods.

Each route builds the gRPC request message from the path, the query and the JSON body, following the HTTP rules of
the API definition (doki_cli.emulator.transcode), then calls the very function the gRPC method calls. Answers are
Google's JSON (camelCase, enum names, int64 as strings).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from google.iam.v1 import iam_policy_pb2

from doki_cli.emulator import protojson, transcode
from doki_cli.emulator.rest import Request, Response, Router
from doki_cli.emulator.secretmanager.grpc_api import SERVICE, methods
from doki_cli.emulator.secretmanager.state import SecretStore

_PROJECT = r"/v1/projects/(?P<project>[^/:]+)"
_SECRET = _PROJECT + r"/secrets/(?P<secret>[^/:]+)"
_VERSION = _SECRET + r"/versions/(?P<version>[^/:]+)"


def _resource(request: Request) -> str:
    """The resource a route names, e.g. `projects/p/secrets/s/versions/1`, from the path's parameters."""
    params = request.params
    name = f"projects/{params['project']}"
    if "secret" in params:
        name += f"/secrets/{params['secret']}"
    if "version" in params:
        name += f"/versions/{params['version']}"
    return name


def add_routes(router: Router, secrets: SecretStore) -> None:
    """Every Secret Manager REST route, each counted and faulted as its gRPC method."""
    table = methods(secrets)

    def route(http_method: str, pattern: str, method: str, field: str, body: str | None = None) -> None:
        """Serve `method` at `pattern`; the path names the request's `field`, `body` says where the body goes
        ("*": the whole request, a field name: that field, None: no body)."""
        served = table[method]

        def handle(request: Request) -> Response:
            parsed = transcode.message(served.request_type, request, {field: _resource(request)}, body)
            return Response.json(protojson.to_dict(served.serve(parsed)))

        router.add(http_method, pattern, handle, rpc=f"{SERVICE}/{method}")

    route("GET", _PROJECT + r"/secrets", "ListSecrets", "parent")
    route("POST", _PROJECT + r"/secrets", "CreateSecret", "parent", body="secret")
    route("GET", _SECRET, "GetSecret", "name")
    route("PATCH", _SECRET, "UpdateSecret", "secret.name", body="secret")
    route("DELETE", _SECRET, "DeleteSecret", "name")
    route("POST", _SECRET + r":addVersion", "AddSecretVersion", "parent", body="*")
    route("GET", _SECRET + r"/versions", "ListSecretVersions", "parent")
    route("GET", _VERSION, "GetSecretVersion", "name")
    route("GET", _VERSION + r":access", "AccessSecretVersion", "name")
    route("POST", _VERSION + r":disable", "DisableSecretVersion", "name", body="*")
    route("POST", _VERSION + r":enable", "EnableSecretVersion", "name", body="*")
    route("POST", _VERSION + r":destroy", "DestroySecretVersion", "name", body="*")
    _add_iam_routes(router, secrets)


def _add_iam_routes(router: Router, secrets: SecretStore) -> None:
    """The IAM methods on secrets; like the gRPC ones (doki_cli.emulator.iam), they need the secret to exist."""

    def iam_route(http_method: str, verb: str, method: str, serve: Callable[[Request, str], Any]) -> None:
        def handle(request: Request) -> Response:
            resource = _resource(request)
            secrets.check_exists(resource)
            return Response.json(protojson.to_dict(serve(request, resource)))

        router.add(http_method, _SECRET + ":" + verb, handle, rpc=f"{SERVICE}/{method}")

    def get_policy(request: Request, resource: str) -> Any:
        # The requested policy version changes nothing here: the emulator keeps no conditional bindings apart.
        transcode.message(iam_policy_pb2.GetIamPolicyRequest, request, {}, "*")
        return secrets.policies.get_policy(resource)

    def set_policy(request: Request, resource: str) -> Any:
        parsed = transcode.parse(iam_policy_pb2.SetIamPolicyRequest, request.json())
        return secrets.policies.set_policy(resource, parsed.policy)

    def test_permissions(request: Request, resource: str) -> Any:
        parsed = transcode.parse(iam_policy_pb2.TestIamPermissionsRequest, request.json())
        # The emulator has no caller identity: every permission asked about is granted, as over gRPC.
        return iam_policy_pb2.TestIamPermissionsResponse(permissions=list(parsed.permissions))

    iam_route("GET", "getIamPolicy", "GetIamPolicy", get_policy)
    iam_route("POST", "getIamPolicy", "GetIamPolicy", get_policy)
    iam_route("POST", "setIamPolicy", "SetIamPolicy", set_policy)
    iam_route("POST", "testIamPermissions", "TestIamPermissions", test_permissions)
