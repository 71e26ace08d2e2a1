"""Cloud Logging v2's REST surface (what gcloud sends: `gcloud logging read`, `write`, `logs list`, `logs delete`),
transcoded to the gRPC methods.

The routes are the HTTP rules of google/logging/v2/logging.proto (`google.api.http`), as gcloud's generated client
spells them (googlecloudsdk/generated_clients/apis/logging/v2/logging_v2_client.py):

    POST   /v2/entries:write             WriteLogEntries   body "*"
    POST   /v2/entries:list              ListLogEntries    body "*"
    GET    /v2/{parent=*/*}/logs         ListLogs
    DELETE /v2/{log_name=*/*/logs/*}     DeleteLog

Each calls the very function its gRPC method calls (grpc_api.methods), so entries:list charges the same read quota
and both transports see one store. Answers are Google's JSON: LogEntry's payload as `textPayload`, `jsonPayload` or
`protoPayload` (an Any with its `@type`), camelCase, int64 as strings, enums (severity) by name. TailLogEntries, a
bidirectional stream, has a REST rule too but no client streams it over HTTP/1.1 (gcloud tails over gRPC): it is
not served here.
"""

from __future__ import annotations

from typing import Any

from doki_cli.emulator import protojson, transcode
from doki_cli.emulator.cloudlogging.grpc_api import SERVICE, methods
from doki_cli.emulator.cloudlogging.quota import ReadQuota
from doki_cli.emulator.cloudlogging.state import LogStore
from doki_cli.emulator.rest import Request, Response, Router
from doki_cli.emulator.serviceusage.gate import project_of

# `*` in an HTTP rule is one path segment; a log ID's slashes are URL-encoded (%2F), so it stays one segment too.
_SEGMENT = r"[^/:]+"


def add_routes(router: Router, logs: LogStore, reads: ReadQuota) -> None:
    """Every Cloud Logging REST route, each counted, faulted and gated as its gRPC method."""
    table = methods(logs, reads)

    def route(http_method: str, pattern: str, method: str, body: str | None = None) -> None:
        """Serve `method` at `pattern`, whose named groups are the request fields the path binds."""
        served = table[method]

        def transcoded(request: Request) -> Any:
            return transcode.message(served.request_type, request, request.params, body)

        def handle(request: Request) -> Response:
            return Response.json(protojson.to_dict(served.serve(transcoded(request))))

        # Logging's paths name no project (entries:list names its projects in the body): the gate looks for it
        # where the gRPC gate does, in the request message.
        router.add(http_method, pattern, handle, rpc=f"{SERVICE}/{method}", project=lambda r: project_of(transcoded(r)))

    route("POST", r"/v2/entries:write", "WriteLogEntries", body="*")
    route("POST", r"/v2/entries:list", "ListLogEntries", body="*")
    route("GET", rf"/v2/(?P<parent>{_SEGMENT}/{_SEGMENT})/logs", "ListLogs")
    route("DELETE", rf"/v2/(?P<log_name>{_SEGMENT}/{_SEGMENT}/logs/{_SEGMENT})", "DeleteLog")
