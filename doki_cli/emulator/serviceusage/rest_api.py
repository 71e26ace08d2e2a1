"""Service Usage v1's REST surface (what gcloud sends: `gcloud services enable/disable/list`, and the check of
`gcloud run deploy` that the Cloud Run Admin API is on), transcoded to the gRPC methods.

The routes are the HTTP rules of google/api/serviceusage/v1/serviceusage.proto (`google.api.http`), as the installed
client's REST transport spells them (google/cloud/service_usage_v1/services/service_usage/transports/rest_base.py):

    GET  /v1/{name=*/*/services/*}               GetService
    POST /v1/{name=*/*/services/*}:enable        EnableService         body "*"
    POST /v1/{name=*/*/services/*}:disable       DisableService        body "*"
    GET  /v1/{parent=*/*}/services               ListServices
    POST /v1/{parent=*/*}/services:batchEnable   BatchEnableServices   body "*"
    GET  /v1/{parent=*/*}/services:batchGet      BatchGetServices
    GET  /v1/{name=operations/*}                 google.longrunning.Operations.GetOperation

Each calls the very function its gRPC method calls, so both transports see one state; the long-running operations
that enabling and disabling start are the emulator's one Operations state, polled here as gcloud polls them
(googlecloudsdk/api_lib/services/serviceusage.py, GetOperation). Service Usage is never gated: it is how a project
enables what it lacks.
"""

from __future__ import annotations

from doki_cli.emulator import protojson, transcode
from doki_cli.emulator.grpcapi import Method
from doki_cli.emulator.operations import grpc_api as operations_grpc
from doki_cli.emulator.operations.state import Operations
from doki_cli.emulator.rest import Request, Response, Router
from doki_cli.emulator.serviceusage.grpc_api import SERVICE, methods
from doki_cli.emulator.serviceusage.state import ServiceUsage

# `*` in an HTTP rule is one path segment. Names are `projects/P/...`; other parents (folders, organizations)
# match the rule and are refused by the methods, as over gRPC.
_PARENT = r"/v1/(?P<parent>[^/:]+/[^/:]+)"
_NAME = r"/v1/(?P<name>[^/:]+/[^/:]+/services/[^/:]+)"


def _route(router: Router, http_method: str, pattern: str, rpc: str, served: Method, body: str | None) -> None:
    """Serve `served` at `pattern`, whose named groups are the request fields the path binds."""

    def handle(request: Request) -> Response:
        parsed = transcode.message(served.request_type, request, request.params, body)
        return Response.json(protojson.to_dict(served.serve(parsed)))

    router.add(http_method, pattern, handle, rpc=rpc)


def add_routes(router: Router, usage: ServiceUsage, operations: Operations) -> None:
    """Every Service Usage REST route, each counted and faulted as its gRPC method."""
    table = methods(usage, operations)

    def route(http_method: str, pattern: str, method: str, body: str | None = None) -> None:
        _route(router, http_method, pattern, f"{SERVICE}/{method}", table[method], body)

    route("GET", _NAME, "GetService")
    route("POST", _NAME + r":enable", "EnableService", body="*")
    route("POST", _NAME + r":disable", "DisableService", body="*")
    route("GET", _PARENT + r"/services", "ListServices")
    route("POST", _PARENT + r"/services:batchEnable", "BatchEnableServices", body="*")
    route("GET", _PARENT + r"/services:batchGet", "BatchGetServices")
    get_operation = operations_grpc.methods(operations)["GetOperation"]
    _route(
        router,
        "GET",
        r"/v1/(?P<name>operations/[^/:]+)",
        f"{operations_grpc.SERVICE}/GetOperation",
        get_operation,
        None,
    )
