"""What `doki monitor` keeps, as plain data: the uptime check, the alert policies and the email channels, both as
doki.toml asks for them and as Cloud Monitoring holds them (the Monitoring adapter reads them into these types).

doki finds its own resources by their user labels (`managed-by = doki`, the service, its region and, for a policy,
which alert it is), so a check or policy someone made by hand is never changed or removed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MANAGED_BY = "managed-by"
DOKI = "doki"
SERVICE_LABEL = "doki-service"
LOCATION_LABEL = "doki-location"
ALERT_LABEL = "doki-alert"
# Which alert a policy is (its ALERT_LABEL), in the order plans show them.
UPTIME, ERRORS, LATENCY = "uptime", "5xx", "latency"
ALERTS = (UPTIME, ERRORS, LATENCY)
# What stands in a planned policy for what only the apply knows: the id of a check not made yet, the name of a channel
# not made yet (followed by its address).
NEW_CHECK_ID = "{new-check-id}"
NEW_CHANNEL = "new-channel:"


@dataclass(frozen=True)
class CheckSpec:
    """An HTTP uptime check of a Cloud Run service's URL, judged by a JSONPath match of its answer."""

    display_name: str
    project: str
    service: str
    location: str
    path: str
    period_seconds: int
    timeout_seconds: int
    json_path: str
    expected: str  # what the JSONPath must find, exactly


@dataclass(frozen=True)
class Check:
    name: str  # projects/P/uptimeCheckConfigs/ID
    spec: CheckSpec
    # What the live check holds that doki writes otherwise and CheckSpec does not say (the port, the matcher's
    # kind, the regions, …): changed by hand. Empty when it is as doki writes it.
    drift: tuple[str, ...] = ()

    @property
    def check_id(self) -> str:
        return self.name.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Threshold:
    """A metric-threshold condition; the denominator, when set, takes the same aggregation."""

    filter: str
    aligner: str  # Aggregation.Aligner name, e.g. ALIGN_NEXT_OLDER
    reducer: str  # Aggregation.Reducer name, e.g. REDUCE_COUNT_FALSE
    group_by: tuple[str, ...]
    alignment_seconds: int
    comparison: str  # COMPARISON_GT or COMPARISON_LT
    value: float
    duration_seconds: int
    denominator_filter: str = ""


@dataclass(frozen=True)
class PolicySpec:
    alert: str  # one of ALERTS
    service: str
    location: str
    display_name: str
    condition_name: str  # the condition's display name
    threshold: Threshold
    documentation: str
    channels: tuple[str, ...]  # channel names (NEW_CHANNEL + address for one not made yet)
    enabled: bool = True


@dataclass(frozen=True)
class Policy:
    name: str  # projects/P/alertPolicies/ID
    spec: PolicySpec
    condition: str = ""  # the condition's name, kept across a replace
    drift: tuple[str, ...] = ()  # as Check.drift: what it holds that doki writes otherwise (combiner, trigger, …)


@dataclass(frozen=True)
class Channel:
    name: str  # projects/P/notificationChannels/ID
    email: str
    display_name: str
    verification: str  # VERIFIED, UNVERIFIED, or VERIFICATION_STATUS_UNSPECIFIED
    enabled: bool = True


@dataclass(frozen=True)
class Reading:
    """The newest point of one time series: its labels (metric and resource) and value."""

    labels: dict[str, str] = field(default_factory=dict)
    value: float = 0.0
    at: float = 0.0  # seconds since the epoch
