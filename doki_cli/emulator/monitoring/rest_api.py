"""Cloud Monitoring v3's REST surface (what gcloud sends: `gcloud monitoring uptime …`, GA; `gcloud beta monitoring
channels …`; `gcloud alpha monitoring policies …`), transcoded to the gRPC methods.

The routes are the HTTP rules of google/monitoring/v3 (`google.api.http`), as gcloud's generated client spells them
(googlecloudsdk/generated_clients/apis/monitoring/v3/monitoring_v3_client.py):

    GET    /v3/{name=projects/*}/uptimeCheckConfigs                  ListUptimeCheckConfigs (parent)
    POST   /v3/{parent=projects/*}/uptimeCheckConfigs                CreateUptimeCheckConfig  body uptime_check_config
    GET    /v3/{name=projects/*/uptimeCheckConfigs/*}                GetUptimeCheckConfig
    PATCH  /v3/{uptime_check_config.name=projects/*/uptimeCheckConfigs/*}  UpdateUptimeCheckConfig  body …config
    DELETE /v3/{name=projects/*/uptimeCheckConfigs/*}                DeleteUptimeCheckConfig
    GET    /v3/uptimeCheckIps                                        ListUptimeCheckIps
    and the same shapes for notificationChannels, notificationChannelDescriptors, alertPolicies, and
    GET    /v3/{name=projects/*}/timeSeries                          ListTimeSeries

Each calls the very function its gRPC method calls (grpc_api.methods): one state, one set of refusals.
"""

from __future__ import annotations

import re

from doki_cli.emulator import protojson, transcode
from doki_cli.emulator.grpcapi import Method
from doki_cli.emulator.monitoring.grpc_api import PACKAGE, methods
from doki_cli.emulator.monitoring.metrics import TimeSeriesStore
from doki_cli.emulator.monitoring.state import MonitoringConfig
from doki_cli.emulator.rest import Request, Response, Router

_PROJECT = r"projects/[^/:]+"


def _project(request: Request) -> str | None:
    """The project a call acts on, from its path (every path but the checker addresses' names one)."""
    match = _PROJECT_IN_PATH.search(request.path)
    return match.group(1) if match else None


_PROJECT_IN_PATH = re.compile(r"/v3/projects/([^/:]+)")
# Per kind: its path segment, its service, its message's name in method names, the request field of its body, the
# field its list and create requests name the project in, and its list method.
_KINDS = (
    (
        "uptimeCheckConfigs",
        "UptimeCheckService",
        "UptimeCheckConfig",
        "uptime_check_config",
        "parent",
        "ListUptimeCheckConfigs",
    ),
    (
        "notificationChannels",
        "NotificationChannelService",
        "NotificationChannel",
        "notification_channel",
        "name",
        "ListNotificationChannels",
    ),
    ("alertPolicies", "AlertPolicyService", "AlertPolicy", "alert_policy", "name", "ListAlertPolicies"),
)


def add_routes(router: Router, config: MonitoringConfig, metrics: TimeSeriesStore) -> None:
    """Every Cloud Monitoring REST route, each counted, faulted and gated as its gRPC method."""
    tables = methods(config, metrics)

    def route(http_method: str, pattern: str, service: str, method: str, body: str | None = None) -> None:
        served: Method = tables[f"{PACKAGE}.{service}"][method]

        def handle(request: Request) -> Response:
            # A path variable of a nested field (uptime_check_config.name) is a group named with `__` for the dot.
            fields = {key.replace("__", "."): value for key, value in request.params.items()}
            parsed = transcode.message(served.request_type, request, fields, body)
            return Response.json(protojson.to_dict(served.serve(parsed)))

        router.add(http_method, pattern, handle, rpc=f"{PACKAGE}.{service}/{method}", project=_project)

    for kind, service, one, field, owner, listing in _KINDS:
        route("GET", rf"/v3/(?P<{owner}>{_PROJECT})/{kind}", service, listing)
        route("POST", rf"/v3/(?P<{owner}>{_PROJECT})/{kind}", service, f"Create{one}", body=field)
        route("GET", rf"/v3/(?P<name>{_PROJECT}/{kind}/[^/:]+)", service, f"Get{one}")
        route("DELETE", rf"/v3/(?P<name>{_PROJECT}/{kind}/[^/:]+)", service, f"Delete{one}")
        route("PATCH", rf"/v3/(?P<{field}__name>{_PROJECT}/{kind}/[^/:]+)", service, f"Update{one}", body=field)
    route("GET", r"/v3/uptimeCheckIps", "UptimeCheckService", "ListUptimeCheckIps")
    route(
        "GET",
        rf"/v3/(?P<name>{_PROJECT})/notificationChannelDescriptors",
        "NotificationChannelService",
        "ListNotificationChannelDescriptors",
    )
    route(
        "GET",
        rf"/v3/(?P<name>{_PROJECT}/notificationChannelDescriptors/[^/:]+)",
        "NotificationChannelService",
        "GetNotificationChannelDescriptor",
    )
    route("GET", rf"/v3/(?P<name>{_PROJECT})/timeSeries", "MetricService", "ListTimeSeries")
