"""Cloud Monitoring's rules for what may be written, each from Google's field comments in google/monitoring/v3
(uptime.proto, alert.proto, notification.proto, common.proto, as the google-cloud-monitoring client ships them) or
the page cited beside it. A refusal is INVALID_ARGUMENT (NOT_FOUND for a channel a policy names that does not
exist), in Google's words where they are on record.

What the emulator does not run (TCP checks, group and synthetic-monitor checks, checks authenticating as the
Monitoring service agent, channels other than email) is refused as such, naming it, rather than stored and then
behaving unlike Google.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

import grpc
from google.cloud.monitoring_v3 import types

from doki_cli.emulator.errors import ApiError, invalid_argument
from doki_cli.emulator.monitoring import filter as monitoring_filter
from doki_cli.emulator.monitoring.metrics import CATALOG, UPTIME_RESOURCES, check_aggregation

Region = types.UptimeCheckRegion

# UptimeCheckConfig.period: "the only supported values are 60s (1 minute), 300s (5 minutes), 600s (10 minutes),
# and 900s (15 minutes). Optional, defaults to 60s."
PERIODS = (60, 300, 600, 900)
DEFAULT_PERIOD = 60
# UptimeCheckConfig.timeout: "must be between 1 and 60 seconds".
MIN_TIMEOUT, MAX_TIMEOUT = 1, 60
# ContentMatcher.content: "Maximum 1024 bytes."
MAX_CONTENT_BYTES = 1024
# UptimeCheckConfig.selected_regions: "enough regions must be provided to include a minimum of 3 locations".
MIN_LOCATIONS = 3
# The checker locations of each region, as the check_passed metric's checker_location label names them.
LOCATIONS: dict[int, tuple[str, ...]] = {
    Region.USA_OREGON: ("usa-oregon",),
    Region.USA_IOWA: ("usa-iowa",),
    Region.USA_VIRGINIA: ("usa-virginia",),
    Region.EUROPE: ("eur-belgium",),
    Region.SOUTH_AMERICA: ("sa-brazil-sao_paulo",),
    Region.ASIA_PACIFIC: ("apac-singapore",),
}
LOCATIONS[Region.USA] = LOCATIONS[Region.USA_OREGON] + LOCATIONS[Region.USA_IOWA] + LOCATIONS[Region.USA_VIRGINIA]
# "Not specifying this field will result in Uptime checks running from all available regions."
ALL_REGIONS = (Region.USA, Region.EUROPE, Region.SOUTH_AMERICA, Region.ASIA_PACIFIC)
# UptimeCheckConfig.monitored_resource: "The following monitored resource types are valid for this field" (the
# resources the uptime metrics' series carry, defined once in metrics).
UPTIME_RESOURCE_TYPES = frozenset(UPTIME_RESOURCES)
# The labels each resource type the emulator runs checks for needs (https://cloud.google.com/monitoring/api/resources:
# uptime_url's host; cloud_run_revision's service_name and location, the project its project_id).
REQUIRED_LABELS = {
    "uptime_url": ("host",),
    "cloud_run_revision": ("project_id", "service_name", "location"),
}
# Uptime checks per project (https://cloud.google.com/monitoring/quotas: "Uptime checks per metrics scope: 100").
MAX_UPTIME_CHECKS = 100
# UpdateUptimeCheckConfigRequest.update_mask: "The following fields can be updated: display_name, http_check,
# tcp_check, timeout, content_matchers, and selected_regions." An update without a mask replaces the whole check
# (gcloud's `uptime update` sends one so, `--period` included), its monitored resource excepted.
UPDATABLE_UPTIME_FIELDS = frozenset(
    {
        "display_name",
        "http_check",
        "tcp_check",
        "timeout",
        "content_matchers",
        "selected_regions",
    }
)
RESOURCE_IMMUTABLE = "The monitored resource of an uptime check cannot be changed; create a new check."
# Aggregation.alignment_period: at most "90,000 seconds (25 hours) for alerting policies".
MAX_POLICY_ALIGNMENT = 90_000
# AlertPolicy.conditions: "A policy can have from one to six conditions."
MAX_CONDITIONS = 6
# AlertPolicy.display_name and NotificationChannel.display_name: "limited to 512 Unicode characters".
MAX_DISPLAY_NAME = 512
# MetricThreshold.filter and denominator_filter: "must not exceed 2048 Unicode characters".
MAX_FILTER = 2048
# AlertPolicy.Documentation.content: "The content may not exceed 8,192 Unicode characters".
MAX_DOCUMENTATION = 8192
# User labels (AlertPolicy.user_labels, NotificationChannel.user_labels, UptimeCheckConfig.user_labels): up to 64,
# keys and values up to 63 characters of lowercase letters, numerals, underscores and dashes, keys starting with a
# letter.
MAX_USER_LABELS = 64
_LABEL_KEY = re.compile(r"[a-z][a-z0-9_-]{0,62}")
_LABEL_VALUE = re.compile(r"[a-z0-9_-]{0,63}")
# Email channels: the one label their descriptor requires (ListNotificationChannelDescriptors, type "email").
EMAIL_LABEL = "email_address"
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")

_NAME = re.compile(r"projects/(?P<project>[^/]+)/(?P<kind>uptimeCheckConfigs|alertPolicies|notificationChannels)/[^/]+")
_PROJECT = re.compile(r"projects/[^/]+")
_CHANNEL_NAME = re.compile(r"projects/[^/]+/notificationChannels/[^/]+")


def check_project(parent: str) -> None:
    if not _PROJECT.fullmatch(parent):
        raise invalid_argument(
            f'Field name had an invalid value of "{parent}": must be projects/[PROJECT_ID_OR_NUMBER]'
        )


def kind_of(name: str) -> str:
    match = _NAME.fullmatch(name)
    if match is None:
        raise invalid_argument(f'Field name had an invalid value of "{name}"')
    return match["kind"]


def _user_labels(labels: dict[str, str], where: str) -> None:
    if len(labels) > MAX_USER_LABELS:
        raise invalid_argument(f"{where}.user_labels may hold at most {MAX_USER_LABELS} labels.")
    for key, value in labels.items():
        if not _LABEL_KEY.fullmatch(key) or not _LABEL_VALUE.fullmatch(value):
            raise invalid_argument(
                f"{where}.user_labels has an invalid label {key}={value}: keys and values may contain only "
                "lowercase letters, numerals, underscores and dashes, up to 63 characters, and keys must begin with "
                "a letter."
            )


def _display_name(name: str, where: str, *, required: bool) -> None:
    if required and not name:
        raise invalid_argument(f"Field {where}.display_name is required.")
    if len(name) > MAX_DISPLAY_NAME:
        raise invalid_argument(f"{where}.display_name is limited to {MAX_DISPLAY_NAME} characters.")


# -- notification channels ------------------------------------------------------------------------------------------


def check_channel(channel: types.NotificationChannel) -> None:
    if not channel.type_:
        raise invalid_argument("Field notification_channel.type is required.")
    if channel.type_ != "email":
        raise invalid_argument(
            f"The doki emulator serves notification channels of type email only, not {channel.type_!r}."
        )
    # A channel's labels are its descriptor's (NotificationChannelDescriptor.labels: "The set of labels that must be
    # defined to identify a particular channel of the corresponding type"): email's is email_address alone.
    _display_name(channel.display_name, "notification_channel", required=False)
    labels = dict(channel.labels)
    unknown = sorted(set(labels) - {EMAIL_LABEL})
    if unknown:
        raise invalid_argument(f"Unknown label(s) for channel type email: {', '.join(unknown)}.")
    address = labels.get(EMAIL_LABEL, "")
    if not address:
        raise invalid_argument(f"Missing required label {EMAIL_LABEL} for channel type email.")
    if not _EMAIL.fullmatch(address):
        raise invalid_argument(f"Invalid email address: {address}.")
    _user_labels(dict(channel.user_labels), "notification_channel")


def channel_in_use(name: str, policies: list[str]) -> ApiError:
    """DeleteNotificationChannelRequest.force: "If false, channels that are still referenced by an existing alerting
    policy will fail to be deleted in a delete operation"; HTTP 400 in the words terraform-provider-google#10337
    quotes."""
    return ApiError(
        grpc.StatusCode.FAILED_PRECONDITION,
        f'Could not delete "{name}" because it is still being referenced by: '
        + ", ".join(f'"{policy}"' for policy in policies),
    )


def check_in_use() -> ApiError:
    """Google refuses to delete an uptime check an alert policy reads, with HTTP 400 and nothing more telling
    (terraform-provider-google#10176; the provider's own message now says to delete the policies first,
    GoogleCloudPlatform/magic-modules#9429)."""
    return invalid_argument("Request contains an invalid argument.")


def reads_check(policy: types.AlertPolicy, check_id: str) -> bool:
    """Whether one of the policy's conditions reads uptime check `check_id`'s results (names it in its filter)."""
    term = re.compile(r'check_id"?\s*=\s*"' + re.escape(check_id) + '"')
    return any(
        term.search(condition.condition_threshold.filter)
        for condition in policy.conditions
        if "condition_threshold" in condition
    )


# -- uptime checks --------------------------------------------------------------------------------------------------


def fill_uptime_defaults(config: types.UptimeCheckConfig) -> None:
    """What Google fills in: the period (60 s), the checker type (STATIC_IP_CHECKERS: "Currently converted to
    STATIC_IP_CHECKERS on creation"), and an HTTP check's method (GET: "If set to METHOD_UNSPECIFIED then
    request_method defaults to GET") and path ("Optional (defaults to "/")")."""
    if not config.period:
        config.period = {"seconds": DEFAULT_PERIOD}
    if config.checker_type == types.UptimeCheckConfig.CheckerType.CHECKER_TYPE_UNSPECIFIED:
        config.checker_type = types.UptimeCheckConfig.CheckerType.STATIC_IP_CHECKERS  # type: ignore[assignment]
    if "http_check" in config:
        if not config.http_check.request_method:
            config.http_check.request_method = types.UptimeCheckConfig.HttpCheck.RequestMethod.GET  # type: ignore[assignment]
        if not config.http_check.path:
            config.http_check.path = "/"
        elif not config.http_check.path.startswith("/"):
            config.http_check.path = "/" + config.http_check.path


def check_uptime(config: types.UptimeCheckConfig) -> None:
    _display_name(config.display_name, "uptime_check_config", required=True)
    resource_kind = types.UptimeCheckConfig.pb(config).WhichOneof("resource")
    if resource_kind != "monitored_resource":
        raise invalid_argument(
            "The doki emulator runs uptime checks of a monitored_resource only"
            + (f", not a {resource_kind}." if resource_kind else "; the check names none.")
        )
    resource = config.monitored_resource
    if resource.type not in UPTIME_RESOURCE_TYPES:
        raise invalid_argument(
            f"Invalid monitored resource type {resource.type!r} for an uptime check; use one of "
            + ", ".join(sorted(UPTIME_RESOURCE_TYPES))
            + "."
        )
    if resource.type not in REQUIRED_LABELS:
        raise invalid_argument("The doki emulator runs uptime checks of uptime_url and cloud_run_revision only.")
    for label in REQUIRED_LABELS[resource.type]:
        if not resource.labels.get(label):
            raise invalid_argument(f"Missing required label {label} for monitored resource type {resource.type}.")
    request_kind = types.UptimeCheckConfig.pb(config).WhichOneof("check_request_type")
    if request_kind is None:
        raise invalid_argument("An uptime check needs an http_check or a tcp_check.")
    if request_kind != "http_check":
        raise invalid_argument("The doki emulator runs HTTP uptime checks only, not TCP ones.")
    http_check = config.http_check
    if "service_agent_authentication" in http_check:
        raise invalid_argument(
            "The doki emulator does not run checks that authenticate as the Monitoring service agent."
        )
    if not 0 <= http_check.port <= 65535:
        raise invalid_argument(f"Invalid port {http_check.port}.")
    period = config.period.total_seconds()
    if period not in PERIODS:
        raise invalid_argument(f"Invalid period {int(period)}s: the supported values are 60s, 300s, 600s and 900s.")
    timeout = config.timeout.total_seconds() if config.timeout else 0
    if not MIN_TIMEOUT <= timeout <= MAX_TIMEOUT:
        raise invalid_argument(
            f"The timeout must be between {MIN_TIMEOUT} and {MAX_TIMEOUT} seconds; got {timeout:g}s."
        )
    for matcher in config.content_matchers[:1]:  # "only the first entry … is supported"
        _check_matcher(matcher)
    if config.selected_regions:
        locations = {location for region in config.selected_regions for location in LOCATIONS.get(region, ())}
        if len(locations) < MIN_LOCATIONS:
            raise invalid_argument(
                "Selected regions must include at least 3 locations; "
                f"{', '.join(Region(r).name for r in config.selected_regions)} include {len(locations)}."
            )
    _user_labels(dict(config.user_labels), "uptime_check_config")


def _check_matcher(matcher: types.UptimeCheckConfig.ContentMatcher) -> None:
    Option = types.UptimeCheckConfig.ContentMatcher.ContentMatcherOption
    if len(matcher.content.encode()) > MAX_CONTENT_BYTES:
        raise invalid_argument(f"Content matcher content exceeds the maximum of {MAX_CONTENT_BYTES} bytes.")
    if matcher.matcher in (Option.MATCHES_JSON_PATH, Option.NOT_MATCHES_JSON_PATH):
        json_path = matcher.json_path_matcher
        if not json_path.json_path:
            raise invalid_argument("A JSONPath content matcher needs json_path_matcher.json_path.")
        if not json_path.json_matcher:
            # JsonPathMatcherOption: "JSON_PATH_MATCHER_OPTION_UNSPECIFIED: No JSONPath matcher type specified (not
            # valid)."
            raise invalid_argument("A JSONPath content matcher needs json_path_matcher.json_matcher.")
    if matcher.matcher in (Option.MATCHES_REGEX, Option.NOT_MATCHES_REGEX) or (
        matcher.json_path_matcher.json_matcher
        == types.UptimeCheckConfig.ContentMatcher.JsonPathMatcher.JsonPathMatcherOption.REGEX_MATCH
    ):
        try:
            re.compile(matcher.content)
        except re.error as exc:
            raise invalid_argument(f"Invalid regular expression in the content matcher: {exc}.") from None


def unconfirmed_resource(resource: Any) -> ApiError:
    """Google's 404 for a check of a Cloud Run service that does not exist: "Error confirming monitored resource:
    type: "cloud_run_revision" labels {...} is in project: N" (terraform-provider-google#19733)."""
    from google.protobuf import text_format

    from doki_cli.emulator.projects import project_number

    text = text_format.MessageToString(resource, as_one_line=True)
    number = project_number(resource.labels.get("project_id", ""))
    return ApiError(grpc.StatusCode.NOT_FOUND, f"Error confirming monitored resource: {text} is in project: {number}")


def check_uptime_quota(existing: int) -> None:
    if existing >= MAX_UPTIME_CHECKS:
        # HTTP 429 "Error creating uptime check config: too many configs in project" (2i2c-org/infrastructure#7054).
        raise ApiError(
            grpc.StatusCode.RESOURCE_EXHAUSTED, "Error creating uptime check config: too many configs in project"
        )


def check_uptime_mask(paths: Iterable[str]) -> None:
    for path in paths:
        if path.split(".")[0] not in UPDATABLE_UPTIME_FIELDS:
            raise invalid_argument(f"The field {path} of an uptime check cannot be updated.")


def uptime_check_id(display_name: str) -> str:
    """An id shaped as Google's: the display name as a lowercase slug, a dash, and 11 random base64url characters
    (`check-production-web-app-qsxe8fXRrBo`, as public configs and terraform-provider-google#10884 show them)."""
    import secrets

    base = re.sub(r"[^a-z0-9]+", "-", display_name.lower()).strip("-")[:60] or "uptime-check"
    return f"{base}-{secrets.token_urlsafe(8)[:11]}"


def locations_of(config: types.UptimeCheckConfig) -> list[str]:
    regions: list[int] = [int(region) for region in config.selected_regions] or list(ALL_REGIONS)
    seen: dict[str, None] = {}
    for region in regions:
        for location in LOCATIONS.get(region, ()):
            seen.setdefault(location)
    return list(seen)


# -- alert policies -------------------------------------------------------------------------------------------------


def check_policy(policy: types.AlertPolicy, channel_exists: Callable[[str], bool]) -> None:
    _display_name(policy.display_name, "alert_policy", required=False)
    _user_labels(dict(policy.user_labels), "alert_policy")
    if len(policy.documentation.content) > MAX_DOCUMENTATION:
        raise invalid_argument(f"alert_policy.documentation.content exceeds {MAX_DOCUMENTATION} characters.")
    conditions = list(policy.conditions)
    if not 1 <= len(conditions) <= MAX_CONDITIONS:
        raise invalid_argument(f"An alert policy must have from one to six conditions; it has {len(conditions)}.")
    strategy = policy.alert_strategy
    if "auto_close" in strategy or strategy.notification_channel_strategy:
        raise invalid_argument(
            "The doki emulator does not apply alert_strategy.auto_close or notification_channel_strategy."
        )
    prompts = set(strategy.notification_prompts)
    Prompt = types.AlertPolicy.AlertStrategy.NotificationPrompt
    if prompts and prompts not in ({Prompt.OPENED}, {Prompt.OPENED, Prompt.CLOSED}):
        # AlertStrategy.notification_prompts: "can be [OPENED] or [OPENED, CLOSED]"; UNSPECIFIED is "Treated as
        # error".
        raise invalid_argument("alert_strategy.notification_prompts must be [OPENED] or [OPENED, CLOSED].")
    for index, condition in enumerate(conditions):
        where = f"alert_policy.conditions[{index}]"
        _display_name(condition.display_name, where, required=False)
        kind = types.AlertPolicy.Condition.pb(condition).WhichOneof("condition")
        if kind is None:
            # GoogleCloudPlatform/php-docs-samples#1231 quotes this refusal.
            raise invalid_argument(
                f'Field {where}.condition_case had an invalid value of "0": Condition subtype (e.g. '
                '"condition_absent","condition_threshold", etc.) is absent or unknown.'
            )
        if kind != "condition_threshold":
            # Stored and never evaluated, such a condition would behave unlike Google's: refused instead.
            raise invalid_argument(f"The doki emulator evaluates metric-threshold conditions only, not {kind}.")
        threshold = condition.condition_threshold
        if "forecast_options" in threshold:
            raise invalid_argument("The doki emulator does not evaluate forecast_options.")
        for filter_field, text in (("filter", threshold.filter), ("denominator_filter", threshold.denominator_filter)):
            if filter_field == "denominator_filter" and not text:
                continue
            if len(text) > MAX_FILTER:
                raise invalid_argument(f"{where}.condition_threshold.{filter_field} exceeds {MAX_FILTER} characters.")
            field_path = f"{where}.condition_threshold.{filter_field}"
            parsed = monitoring_filter.parse(text)
            if len(set(parsed.metric_types)) != 1:
                raise invalid_argument(
                    f'Field {field_path} had an invalid value of "{text}": must specify the metric type'
                )
            if filter_field == "filter" and not parsed.names_resource_type:
                # MetricThreshold.filter: "must specify the metric type and the resource type"; Google's refusal as
                # many public configs quote it.
                raise invalid_argument(
                    f'Field {field_path} had an invalid value of "{text}": must specify a restriction on '
                    '"resource.type" in the filter'
                )
            descriptor = CATALOG.get(parsed.metric_types[0])
            if descriptor is None:
                raise unknown_metric(parsed.metric_types[0])
            aggregations = threshold.aggregations if filter_field == "filter" else threshold.denominator_aggregations
            if len(aggregations) > 1:
                raise invalid_argument("The doki emulator evaluates conditions of one aggregation each.")
            if aggregations:
                check_aggregation(descriptor, aggregations[0], f"{where}.condition_threshold.aggregations[0]")
                period = aggregations[0].alignment_period
                if period and period.total_seconds() > MAX_POLICY_ALIGNMENT:
                    # Aggregation.alignment_period: "The maximum value … is … 90,000 seconds (25 hours) for alerting
                    # policies."
                    raise invalid_argument(
                        f"{where}.condition_threshold.aggregations[0].alignment_period may be at most 90000s for an "
                        "alert policy."
                    )
        numerator, denominator = threshold.aggregations, threshold.denominator_aggregations
        mismatched = numerator and denominator and numerator[0].alignment_period != denominator[0].alignment_period
        if threshold.denominator_filter and mismatched:
            # MetricThreshold.denominator_aggregations: "must use the same alignment period".
            raise invalid_argument(
                f"{where}: aggregations and denominator_aggregations must use the same alignment period."
            )
        if threshold.comparison not in (types.ComparisonType.COMPARISON_GT, types.ComparisonType.COMPARISON_LT):
            # MetricThreshold.comparison: "Only COMPARISON_LT and COMPARISON_GT are supported currently."
            raise invalid_argument(f"{where}.condition_threshold.comparison must be COMPARISON_GT or COMPARISON_LT.")
        seconds = threshold.duration.total_seconds() if threshold.duration else 0
        if seconds % 60:
            # MetricThreshold.duration: "only values that are a multiple of a minute … are supported"; the words of
            # GoogleCloudPlatform/monitoring-dashboard-samples#179.
            raise invalid_argument(
                f'Field {where}.condition_threshold.duration had an invalid value of "{seconds:g}s": only multiples '
                "of 1 minute are supported"
            )
        if threshold.evaluation_missing_data and not seconds:
            # terraform-provider-google#16892 quotes this refusal.
            raise invalid_argument(
                f"Field {where}.condition_threshold.evaluation_missing_data had an invalid value of "
                f'"{types.AlertPolicy.Condition.EvaluationMissingData(threshold.evaluation_missing_data).name}": '
                "Conditions setting evaluation_missing_data must have a non-zero duration."
            )
    if "notification_rate_limit" in policy.alert_strategy:
        # chainguard-dev/terraform-infra-common#352 quotes this refusal (for a policy of metric conditions).
        raise invalid_argument(
            "Field alertStrategy.notificationRateLimit had an invalid value of "
            f'"period {{ seconds: {int(policy.alert_strategy.notification_rate_limit.period.total_seconds())} }}": '
            "metric-based alert policies must not specify a notification rate limit"
        )
    for channel in policy.notification_channels:
        if not _CHANNEL_NAME.fullmatch(channel):
            # crossplane-contrib/provider-upjet-gcp#498 quotes this refusal.
            raise invalid_argument(
                f"Name must begin with 'projects/{{project_id}}/notificationChannels/{{channel_id}}', got: {channel}"
            )
        if not channel_exists(channel):
            # 404 "Notification channel not found" (terraform-provider-google#25878).
            raise ApiError(grpc.StatusCode.NOT_FOUND, f"Notification channel not found: {channel}")


def unknown_metric(metric_type: str) -> ApiError:
    """Google's 404 for a metric it does not know (terraform-provider-google#11102). The emulator knows only the
    metrics it writes (metrics.CATALOG)."""
    return ApiError(
        grpc.StatusCode.NOT_FOUND,
        f'Cannot find metric(s) that match type = "{metric_type}". If a metric was created recently, it could take '
        "up to 10 minutes to become available. Please try again soon.",
    )


def merge(current: Any, given: Any, paths: list[str], *, immutable: Iterable[str]) -> Any:
    """An update: with a mask, the masked fields of `given` over `current` (a dotted path reaches into a message,
    `documentation.content`, or one entry of a map, `user_labels.KEY`, as UpdateAlertPolicyRequest lists them; a
    listed field `given` leaves unset is cleared); without one, `given` whole, its immutable fields `current`'s."""
    message_type = type(current)
    result = message_type.deserialize(message_type.serialize(current))
    if not paths:
        result = message_type.deserialize(message_type.serialize(given))
        for field in immutable:
            if field in current:
                setattr(result, field, getattr(current, field))
        return result
    for path in paths:
        parts = path.split(".")
        top = "user_labels" if parts[0] == "user_label" else parts[0]
        if top in immutable:
            raise invalid_argument(f"The field {path} cannot be updated.")
        if top not in message_type.meta.fields:
            raise invalid_argument(f"Field update_mask had an invalid value: {path} is not a field.")
        if len(parts) == 1:
            setattr(result, top, getattr(given, top))
        elif top == "user_labels":
            key = ".".join(parts[1:])
            if key in given.user_labels:
                result.user_labels[key] = given.user_labels[key]
            else:
                result.user_labels.pop(key, None)
        else:
            _set_nested(result, given, [top, *parts[1:]], path)
    return result


def _set_nested(result: Any, given: Any, parts: list[str], path: str) -> None:
    target, source = result, given
    for part in parts[:-1]:
        if not hasattr(source, part):
            raise invalid_argument(f"Field update_mask had an invalid value: {path} is not a field.")
        target, source = getattr(target, part), getattr(source, part)
    last = parts[-1]
    if not hasattr(source, last):
        raise invalid_argument(f"Field update_mask had an invalid value: {path} is not a field.")
    setattr(target, last, getattr(source, last))
