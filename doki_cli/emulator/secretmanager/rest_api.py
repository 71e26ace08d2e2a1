"""Secret Manager's REST surface (what gcloud and the Python REST transport send), transcoded to the gRPC methods.

Each route builds the gRPC request message from the path, the query (dotted names nest, e.g.
`options.requestedPolicyVersion`) and the JSON body, following the HTTP rules of the API definition, then calls the
very function the gRPC method calls. Unknown query parameters such as `alt` and `$alt` are ignored, integer enums
are accepted, and answers are Google's JSON (camelCase, enum names, int64 as strings).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from google.iam.v1 import iam_policy_pb2
from google.protobuf import json_format

from doki_cli.emulator import protojson
from doki_cli.emulator.errors import invalid_argument
from doki_cli.emulator.rest import Request, Response, Router
from doki_cli.emulator.secretmanager.grpc_api import SERVICE, methods
from doki_cli.emulator.secretmanager.state import SecretStore

_PROJECT = r"/v1/projects/(?P<project>[^/:]+)"
_SECRET = _PROJECT + r"/secrets/(?P<secret>[^/:]+)"
_VERSION = _SECRET + r"/versions/(?P<version>[^/:]+)"


def _put(data: dict[str, Any], path: str, value: Any) -> None:
    """Set the dotted `path` of the JSON object `data`: `a.b` sets data["a"]["b"]."""
    *outer, last = path.split(".")
    for part in outer:
        nested = data.get(part)
        if not isinstance(nested, dict):
            nested = data[part] = {}
        data = nested
    data[last] = value


def _query(request: Request) -> dict[str, Any]:
    """The query as a JSON object (json_format parses numbers from the strings)."""
    data: dict[str, Any] = {}
    for key, values in request.query.items():
        _put(data, key, values[0])
    return data


def _resource(request: Request) -> str:
    """The resource a route names, e.g. `projects/p/secrets/s/versions/1`, from the path's parameters."""
    params = request.params
    name = f"projects/{params['project']}"
    if "secret" in params:
        name += f"/secrets/{params['secret']}"
    if "version" in params:
        name += f"/versions/{params['version']}"
    return name


def _parse(message_type: Any, data: dict[str, Any]) -> Any:
    try:
        return protojson.from_dict(message_type, data)
    except json_format.ParseError as exc:
        raise invalid_argument(f"Invalid JSON payload received. {exc}") from None


def add_routes(router: Router, secrets: SecretStore) -> None:
    """Every Secret Manager REST route, each counted and faulted as its gRPC method."""
    table = methods(secrets)

    def route(http_method: str, pattern: str, method: str, field: str, body: str | None = None) -> None:
        """Serve `method` at `pattern`; the path names the request's `field`, `body` says where the body goes
        ("*": the whole request, a field name: that field, None: no body)."""
        served = table[method]

        def handle(request: Request) -> Response:
            data = _query(request)
            if body == "*":
                data.update(request.json())
            elif body is not None:
                data[body] = request.json()
            _put(data, field, _resource(request))
            return Response.json(protojson.to_dict(served.serve(_parse(served.request_type, data))))

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
        _parse(iam_policy_pb2.GetIamPolicyRequest, {**_query(request), **request.json()})
        return secrets.policies.get_policy(resource)

    def set_policy(request: Request, resource: str) -> Any:
        parsed = _parse(iam_policy_pb2.SetIamPolicyRequest, request.json())
        return secrets.policies.set_policy(resource, parsed.policy)

    def test_permissions(request: Request, resource: str) -> Any:
        parsed = _parse(iam_policy_pb2.TestIamPermissionsRequest, request.json())
        # The emulator has no caller identity: every permission asked about is granted, as over gRPC.
        return iam_policy_pb2.TestIamPermissionsResponse(permissions=list(parsed.permissions))

    iam_route("GET", "getIamPolicy", "GetIamPolicy", get_policy)
    iam_route("POST", "getIamPolicy", "GetIamPolicy", get_policy)
    iam_route("POST", "setIamPolicy", "SetIamPolicy", set_policy)
    iam_route("POST", "testIamPermissions", "TestIamPermissions", test_permissions)
