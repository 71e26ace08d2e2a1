"""Cloud Monitoring v3 over gRPC: the uptime checks, alert policies, notification channels and the ListTimeSeries
of google.monitoring.v3, each method turning its request into a state call.

`methods()` is what a REST surface would transcode to, so transports would answer alike by construction.
"""

from __future__ import annotations

from typing import Any

from google.cloud.monitoring_v3 import types
from google.protobuf import empty_pb2

from doki_cli.emulator.faults import Faults
from doki_cli.emulator.grpcapi import GrpcService, Method
from doki_cli.emulator.monitoring.metrics import TimeSeriesStore, interval_of
from doki_cli.emulator.monitoring.state import PAGING, MonitoringConfig
from doki_cli.emulator.monitoring.validation import EMAIL_LABEL, LOCATIONS, check_project

PACKAGE = "google.monitoring.v3"
_EMAIL_DESCRIPTOR = types.NotificationChannelDescriptor(
    name="projects/{project}/notificationChannelDescriptors/email",
    type_="email",
    display_name="Email",
    description="A channel that sends notifications via email.",
    labels=[{"key": EMAIL_LABEL, "description": "An address to send email."}],
)
# ListUptimeCheckIps: the addresses the checkers send from (documentation addresses here: nothing routes them).
_CHECKER_IPS = [
    types.UptimeCheckIp(region=region, location=location, ip_address=f"192.0.2.{index + 1}")
    for index, (region, location) in enumerate(
        (region, location)
        for region in (
            types.UptimeCheckRegion.USA,
            types.UptimeCheckRegion.EUROPE,
            types.UptimeCheckRegion.SOUTH_AMERICA,
            types.UptimeCheckRegion.ASIA_PACIFIC,
        )
        for location in LOCATIONS[region]
    )
]


def _descriptor(project_name: str) -> types.NotificationChannelDescriptor:
    descriptor: types.NotificationChannelDescriptor = types.NotificationChannelDescriptor.deserialize(
        types.NotificationChannelDescriptor.serialize(_EMAIL_DESCRIPTOR)
    )
    descriptor.name = f"{project_name}/notificationChannelDescriptors/email"
    return descriptor


def methods(config: MonitoringConfig, metrics: TimeSeriesStore) -> dict[str, dict[str, Method]]:
    """Every served method, by service and gRPC method name."""

    def list_of(kind: str, response_type: Any, field: str) -> Any:
        def serve(request: Any) -> Any:
            parent = getattr(request, "name", "") or getattr(request, "parent", "")
            page, next_token, total = config.list_items(
                parent, kind, request.page_size, request.page_token, request.filter
            )
            answer = response_type(next_page_token=next_token, total_size=total)
            getattr(answer, field).extend(page)
            return answer

        return serve

    def delete(request: Any) -> empty_pb2.Empty:
        config.delete(request.name)
        return empty_pb2.Empty()

    def delete_channel(request: types.DeleteNotificationChannelRequest) -> empty_pb2.Empty:
        config.delete_channel(request.name, request.force)
        return empty_pb2.Empty()

    def list_descriptors(request: types.ListNotificationChannelDescriptorsRequest) -> Any:
        check_project(request.name)
        return types.ListNotificationChannelDescriptorsResponse(channel_descriptors=[_descriptor(request.name)])

    def get_descriptor(request: types.GetNotificationChannelDescriptorRequest) -> Any:
        project_name, _, descriptor_type = request.name.partition("/notificationChannelDescriptors/")
        check_project(project_name)
        if descriptor_type != "email":
            from doki_cli.emulator.errors import not_found

            raise not_found(f"The doki emulator serves the email channel descriptor only, not {descriptor_type!r}.")
        return _descriptor(project_name)

    def list_time_series(request: types.ListTimeSeriesRequest) -> types.ListTimeSeriesResponse:
        check_project(request.name)
        project = request.name.split("/")[1]
        aggregation = request.aggregation if "aggregation" in request else None
        found = metrics.query(project, request.filter, interval_of(request.interval), aggregation)
        if request.view == types.ListTimeSeriesRequest.TimeSeriesView.HEADERS:
            for series in found:
                del series.points[:]
        page, next_token = PAGING.page(
            found,
            lambda s: repr(sorted({**s.metric.labels, **s.resource.labels}.items())),
            request.page_size,
            request.page_token,
        )
        return types.ListTimeSeriesResponse(time_series=page, next_page_token=next_token)

    def list_ips(request: types.ListUptimeCheckIpsRequest) -> types.ListUptimeCheckIpsResponse:
        return types.ListUptimeCheckIpsResponse(uptime_check_ips=_CHECKER_IPS)

    return {
        f"{PACKAGE}.NotificationChannelService": {
            "ListNotificationChannelDescriptors": Method(
                types.ListNotificationChannelDescriptorsRequest,
                types.ListNotificationChannelDescriptorsResponse,
                list_descriptors,
            ),
            "GetNotificationChannelDescriptor": Method(
                types.GetNotificationChannelDescriptorRequest, types.NotificationChannelDescriptor, get_descriptor
            ),
            "ListNotificationChannels": Method(
                types.ListNotificationChannelsRequest,
                types.ListNotificationChannelsResponse,
                list_of("notificationChannels", types.ListNotificationChannelsResponse, "notification_channels"),
            ),
            "GetNotificationChannel": Method(
                types.GetNotificationChannelRequest, types.NotificationChannel, lambda r: config.get(r.name)
            ),
            "CreateNotificationChannel": Method(
                types.CreateNotificationChannelRequest,
                types.NotificationChannel,
                lambda r: config.create_channel(r.name, r.notification_channel),
            ),
            "UpdateNotificationChannel": Method(
                types.UpdateNotificationChannelRequest,
                types.NotificationChannel,
                lambda r: config.update_channel(r.notification_channel, list(r.update_mask.paths)),
            ),
            "DeleteNotificationChannel": Method(
                types.DeleteNotificationChannelRequest,
                empty_pb2.Empty,
                delete_channel,
            ),
        },
        f"{PACKAGE}.UptimeCheckService": {
            "ListUptimeCheckConfigs": Method(
                types.ListUptimeCheckConfigsRequest,
                types.ListUptimeCheckConfigsResponse,
                list_of("uptimeCheckConfigs", types.ListUptimeCheckConfigsResponse, "uptime_check_configs"),
            ),
            "GetUptimeCheckConfig": Method(
                types.GetUptimeCheckConfigRequest, types.UptimeCheckConfig, lambda r: config.get(r.name)
            ),
            "CreateUptimeCheckConfig": Method(
                types.CreateUptimeCheckConfigRequest,
                types.UptimeCheckConfig,
                lambda r: config.create_uptime_check(r.parent, r.uptime_check_config),
            ),
            "UpdateUptimeCheckConfig": Method(
                types.UpdateUptimeCheckConfigRequest,
                types.UptimeCheckConfig,
                lambda r: config.update_uptime_check(r.uptime_check_config, list(r.update_mask.paths)),
            ),
            "DeleteUptimeCheckConfig": Method(types.DeleteUptimeCheckConfigRequest, empty_pb2.Empty, delete),
            "ListUptimeCheckIps": Method(types.ListUptimeCheckIpsRequest, types.ListUptimeCheckIpsResponse, list_ips),
        },
        f"{PACKAGE}.AlertPolicyService": {
            "ListAlertPolicies": Method(
                types.ListAlertPoliciesRequest,
                types.ListAlertPoliciesResponse,
                list_of("alertPolicies", types.ListAlertPoliciesResponse, "alert_policies"),
            ),
            "GetAlertPolicy": Method(types.GetAlertPolicyRequest, types.AlertPolicy, lambda r: config.get(r.name)),
            "CreateAlertPolicy": Method(
                types.CreateAlertPolicyRequest,
                types.AlertPolicy,
                lambda r: config.create_policy(r.name, r.alert_policy),
            ),
            "UpdateAlertPolicy": Method(
                types.UpdateAlertPolicyRequest,
                types.AlertPolicy,
                lambda r: config.update_policy(r.alert_policy, list(r.update_mask.paths)),
            ),
            "DeleteAlertPolicy": Method(types.DeleteAlertPolicyRequest, empty_pb2.Empty, delete),
        },
        f"{PACKAGE}.MetricService": {
            "ListTimeSeries": Method(types.ListTimeSeriesRequest, types.ListTimeSeriesResponse, list_time_series),
        },
    }


def services(config: MonitoringConfig, metrics: TimeSeriesStore, faults: Faults) -> list[GrpcService]:
    served = []
    for name, table in methods(config, metrics).items():
        api = GrpcService(name, faults)
        api.add(table)
        served.append(api)
    return served
