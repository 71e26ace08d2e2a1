"""Calls to an API the project has not enabled fail as on Google: PERMISSION_DENIED, the "has not been used in project
… before or it is disabled" message, and an ErrorInfo with reason SERVICE_DISABLED in the status details.

A gRPC server interceptor, so no emulated service needs to know about Service Usage; the REST surfaces' Router asks
the same gate (`api_of`, `check`) before each route that stands for a gated method. The project checked is the
caller's quota project (x-goog-user-project) when it names one, else the project of the request's resource name
(routing headers do not always carry it: Cloud Run's carry only the location). Streaming methods (the log tail) are
not gated, and neither is Service Usage itself: it is how a project enables what it lacks.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import grpc
from google.rpc import error_details_pb2

from doki_cli.emulator.errors import ApiError
from doki_cli.emulator.serviceusage.state import CATALOG, ServiceUsage

# gRPC package prefix -> the API it belongs to.
GATED = {
    "google.cloud.run.v2.": "run.googleapis.com",
    "google.cloud.run.v1.": "run.googleapis.com",  # the v1 REST methods v2 lacks (domain mappings)
    "google.cloud.billing.v1.": "cloudbilling.googleapis.com",
    "google.cloud.secretmanager.v1.": "secretmanager.googleapis.com",
    "google.devtools.cloudbuild.v1.": "cloudbuild.googleapis.com",
    "google.devtools.artifactregistry.v1.": "artifactregistry.googleapis.com",
    "google.logging.v2.": "logging.googleapis.com",
    "google.monitoring.v3.": "monitoring.googleapis.com",
    "google.iam.admin.v1.": "iam.googleapis.com",
    "google.iam.credentials.v1.": "iamcredentials.googleapis.com",
}
_PROJECT = re.compile(r"projects/([^/]+)")
# Where requests name their project: resource names first, then the resource inside an update request.
_NAME_FIELDS = ("name", "parent", "resource", "log_name")
_NESTED_FIELDS = ("service", "secret", "repository")


def api_of(full_method: str) -> str | None:
    """The API of `/package.Service/Method`, when it is one whose calls are gated."""
    path = full_method.lstrip("/")
    return next((api for prefix, api in GATED.items() if path.startswith(prefix)), None)


def project_of(request: Any) -> str | None:
    """The project `request` acts on, or None when it names none."""
    candidates: list[object] = [getattr(request, field, None) for field in _NAME_FIELDS]
    candidates += [getattr(getattr(request, field, None), "name", None) for field in _NESTED_FIELDS]
    resource_names = getattr(request, "resource_names", None)
    if resource_names:
        candidates.append(resource_names[0])
    for value in candidates:
        if isinstance(value, str) and (match := _PROJECT.match(value)):
            return match.group(1)
    project_id = getattr(request, "project_id", None)  # Cloud Build's requests carry the bare id
    return project_id if isinstance(project_id, str) and project_id else None


def service_disabled(project: str, api: str) -> ApiError:
    """The status Google answers with when `project` has not enabled `api`."""
    title = CATALOG[api]
    url = f"https://console.developers.google.com/apis/api/{api}/overview?project={project}"
    message = (
        f"{title} has not been used in project {project} before or it is disabled. Enable it by visiting {url} "
        "then retry. If you enabled this API recently, wait a few minutes for the action to propagate to our "
        "systems and retry."
    )
    info = error_details_pb2.ErrorInfo(
        reason="SERVICE_DISABLED",
        domain="googleapis.com",
        metadata={
            "service": api,
            "consumer": f"projects/{project}",
            "serviceTitle": title,
            "containerInfo": project,
            "activationUrl": url,
        },
    )
    help_link = error_details_pb2.Help(
        links=[error_details_pb2.Help.Link(description="Google developers console API activation", url=url)]
    )
    return ApiError(grpc.StatusCode.PERMISSION_DENIED, message, (info, help_link))


class DisabledApiGate(grpc.ServerInterceptor):  # type: ignore[misc]  # grpc ships no type hints
    """One gate for both transports: the gRPC server's interceptor, and the REST Router's `gate`."""

    def __init__(self, usage: ServiceUsage) -> None:
        self._usage = usage

    @staticmethod
    def api_of(full_method: str) -> str | None:
        return api_of(full_method)

    def check(self, project: str, api: str) -> None:
        """Refuse, as Google does, a call to `api` for `project` when the project has not enabled it."""
        if not self._usage.is_enabled(project, api):
            raise service_disabled(project, api)

    def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler], details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler:
        handler = continuation(details)
        api = api_of(details.method)
        if handler is None or api is None or handler.unary_unary is None:
            return handler
        serve = handler.unary_unary

        def gated(request: Any, context: grpc.ServicerContext) -> Any:
            # The consumer whose API must be enabled: the quota project the caller names (x-goog-user-project, as
            # Google's auth library sends a credential's quota project), else the project the request acts on.
            named = dict(context.invocation_metadata()).get("x-goog-user-project")
            project = named or project_of(request)
            if project is not None:
                try:
                    self.check(project, api)
                except ApiError as refused:
                    # The rich status travels in this trailer, where Google's clients read the ErrorInfo from.
                    details = refused.status().SerializeToString()
                    context.set_trailing_metadata((("grpc-status-details-bin", details),))
                    context.abort(refused.code, refused.message)
            return serve(request, context)

        return grpc.unary_unary_rpc_method_handler(
            gated, request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer
        )
