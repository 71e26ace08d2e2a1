"""The time series the emulator records, and ListTimeSeries over them: filtering, alignment and reduction.

Only the metrics something in the emulator writes exist here (`CATALOG`): the uptime checks' results, written by
`uptime.UptimeRunner`, and Cloud Run's request count and latencies, written by the services' URLs as they answer
(run/router.py). Each metric's kind, value type, unit and labels are Google's (cited in `CATALOG`).

Points of a DELTA metric are summed into one point per minute and series, as Cloud Run samples its metrics every 60
seconds (https://cloud.google.com/monitoring/api/metrics_gcp_p_z#gcp-run): a minute's point is readable once the
minute is over (an aligned period takes only points that end within it), where Google adds "after sampling, data is
not visible for up to 180 seconds". A distribution keeps its samples, so
a percentile here is exact where Google's is interpolated in its buckets.

Alignment and reduction follow the Aggregation message's field comments (google/monitoring/v3/common.proto): each
aligned point closes an `alignment_period` ending at `interval.end_time` minus a whole number of periods, aligners
and reducers are valid only for the kinds and value types the comments name, and a reducer needs an aligner.
"""

from __future__ import annotations

import math
import statistics
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from google.api import distribution_pb2, metric_pb2, monitored_resource_pb2
from google.cloud.monitoring_v3 import types
from google.protobuf import timestamp_pb2

from doki_cli.emulator.errors import invalid_argument
from doki_cli.emulator.monitoring import filter as monitoring_filter

Aligner = types.Aggregation.Aligner
Reducer = types.Aggregation.Reducer
Kind = metric_pb2.MetricDescriptor.MetricKind
ValueType = metric_pb2.MetricDescriptor.ValueType

# Cloud Run samples its metrics every 60 s (metrics_gcp_p_z, "Sampled every 60 seconds").
SAMPLE_SECONDS = 60
# Aggregation.alignment_period: "The value must be at least 60 seconds."
MIN_ALIGNMENT_SECONDS = 60
# How long points are kept: the longest window anything reads (an uptime policy's 1200 s alignment) with room.
RETENTION_SECONDS = 6 * 3600


@dataclass(frozen=True)
class Descriptor:
    """A metric as its MetricDescriptor describes it."""

    type: str
    kind: int  # MetricKind
    value_type: int  # ValueType
    unit: str
    resource_types: tuple[str, ...]
    labels: tuple[str, ...]


# The uptime metrics' series carry the monitored resource their check names (metrics_gcp_i_o lists these): the types
# UptimeCheckConfig.monitored_resource may take ("The following monitored resource types are valid for this field").
UPTIME_RESOURCES = (
    "uptime_url",
    "gce_instance",
    "gae_app",
    "aws_ec2_instance",
    "aws_elb_load_balancer",
    "k8s_service",
    "servicedirectory_service",
    "cloud_run_revision",
)

CATALOG: dict[str, Descriptor] = {
    descriptor.type: descriptor
    for descriptor in (
        # https://cloud.google.com/monitoring/api/metrics_gcp_i_o#gcp-monitoring (uptime_check/*): written for each
        # checker location at each run; check_passed is BOOL GAUGE, request_latency a DOUBLE GAUGE in ms.
        Descriptor(
            "monitoring.googleapis.com/uptime_check/check_passed",
            Kind.GAUGE,
            ValueType.BOOL,
            "1",
            UPTIME_RESOURCES,
            ("check_id", "checker_location"),
        ),
        Descriptor(
            "monitoring.googleapis.com/uptime_check/request_latency",
            Kind.GAUGE,
            ValueType.DOUBLE,
            "ms",
            UPTIME_RESOURCES,
            ("check_id", "checker_location"),
        ),
        # https://cloud.google.com/monitoring/api/metrics_gcp_p_z#gcp-run: request_count DELTA INT64 with
        # response_code and response_code_class ("2xx", "5xx", …), request_latencies a DELTA DISTRIBUTION in ms.
        Descriptor(
            "run.googleapis.com/request_count",
            Kind.DELTA,
            ValueType.INT64,
            "1",
            ("cloud_run_revision",),
            ("response_code", "response_code_class", "route"),
        ),
        Descriptor(
            "run.googleapis.com/request_latencies",
            Kind.DELTA,
            ValueType.DISTRIBUTION,
            "ms",
            ("cloud_run_revision",),
            ("response_code", "response_code_class", "route"),
        ),
    )
}

# Aligners, and the kinds and value types each is valid for (common.proto's Aligner comments).
# The protobuf enums' values, as plain ints (the generated stubs type them loosely).
INT64: int = ValueType.INT64
DOUBLE: int = ValueType.DOUBLE
_NUMERIC = frozenset({ValueType.INT64, ValueType.DOUBLE})
_ALIGNERS: dict[int, tuple[frozenset[int], frozenset[int]]] = {
    Aligner.ALIGN_DELTA: (frozenset({Kind.DELTA, Kind.CUMULATIVE}), _NUMERIC | {ValueType.DISTRIBUTION}),
    Aligner.ALIGN_RATE: (frozenset({Kind.DELTA, Kind.CUMULATIVE}), _NUMERIC),
    Aligner.ALIGN_NEXT_OLDER: (frozenset({Kind.GAUGE}), _NUMERIC | {ValueType.BOOL, ValueType.DISTRIBUTION}),
    Aligner.ALIGN_MIN: (frozenset({Kind.GAUGE, Kind.DELTA}), _NUMERIC),
    Aligner.ALIGN_MAX: (frozenset({Kind.GAUGE, Kind.DELTA}), _NUMERIC),
    Aligner.ALIGN_MEAN: (frozenset({Kind.GAUGE, Kind.DELTA}), _NUMERIC),
    Aligner.ALIGN_COUNT: (frozenset({Kind.GAUGE, Kind.DELTA}), _NUMERIC | {ValueType.BOOL}),
    Aligner.ALIGN_SUM: (frozenset({Kind.GAUGE, Kind.DELTA}), _NUMERIC | {ValueType.DISTRIBUTION}),
    Aligner.ALIGN_COUNT_TRUE: (frozenset({Kind.GAUGE}), frozenset({ValueType.BOOL})),
    Aligner.ALIGN_COUNT_FALSE: (frozenset({Kind.GAUGE}), frozenset({ValueType.BOOL})),
    Aligner.ALIGN_FRACTION_TRUE: (frozenset({Kind.GAUGE}), frozenset({ValueType.BOOL})),
    Aligner.ALIGN_PERCENTILE_99: (frozenset({Kind.GAUGE, Kind.DELTA}), frozenset({ValueType.DISTRIBUTION})),
    Aligner.ALIGN_PERCENTILE_95: (frozenset({Kind.GAUGE, Kind.DELTA}), frozenset({ValueType.DISTRIBUTION})),
    Aligner.ALIGN_PERCENTILE_50: (frozenset({Kind.GAUGE, Kind.DELTA}), frozenset({ValueType.DISTRIBUTION})),
    Aligner.ALIGN_PERCENTILE_05: (frozenset({Kind.GAUGE, Kind.DELTA}), frozenset({ValueType.DISTRIBUTION})),
}
_PERCENTILES = {
    Aligner.ALIGN_PERCENTILE_99: 99,
    Aligner.ALIGN_PERCENTILE_95: 95,
    Aligner.ALIGN_PERCENTILE_50: 50,
    Aligner.ALIGN_PERCENTILE_05: 5,
    Reducer.REDUCE_PERCENTILE_99: 99,
    Reducer.REDUCE_PERCENTILE_95: 95,
    Reducer.REDUCE_PERCENTILE_50: 50,
    Reducer.REDUCE_PERCENTILE_05: 5,
}
# Reducers and the value types each takes (common.proto's Reducer comments).
_REDUCERS: dict[int, frozenset[int]] = {
    Reducer.REDUCE_MEAN: _NUMERIC | {ValueType.DISTRIBUTION},
    Reducer.REDUCE_MIN: _NUMERIC,
    Reducer.REDUCE_MAX: _NUMERIC,
    Reducer.REDUCE_SUM: _NUMERIC | {ValueType.DISTRIBUTION},
    Reducer.REDUCE_COUNT: _NUMERIC | {ValueType.BOOL, ValueType.DISTRIBUTION, ValueType.STRING},
    Reducer.REDUCE_COUNT_TRUE: frozenset({ValueType.BOOL}),
    Reducer.REDUCE_COUNT_FALSE: frozenset({ValueType.BOOL}),
    Reducer.REDUCE_FRACTION_TRUE: frozenset({ValueType.BOOL}),
    Reducer.REDUCE_PERCENTILE_99: _NUMERIC | {ValueType.DISTRIBUTION},
    Reducer.REDUCE_PERCENTILE_95: _NUMERIC | {ValueType.DISTRIBUTION},
    Reducer.REDUCE_PERCENTILE_50: _NUMERIC | {ValueType.DISTRIBUTION},
    Reducer.REDUCE_PERCENTILE_05: _NUMERIC | {ValueType.DISTRIBUTION},
}
# Cloud Run's request_latencies buckets are exponential; the emulator reports its samples in such a layout.
_BUCKETS = distribution_pb2.Distribution.BucketOptions(
    exponential_buckets=distribution_pb2.Distribution.BucketOptions.Exponential(
        num_finite_buckets=100, growth_factor=1.4, scale=1.0
    )
)

Value = Any  # bool | int | float | list[float] (a distribution's samples)


@dataclass
class _Point:
    start: float
    end: float
    value: Value


@dataclass
class _Series:
    project: str
    descriptor: Descriptor
    resource_type: str
    metric_labels: dict[str, str]
    resource_labels: dict[str, str]
    points: list[_Point] = field(default_factory=list)  # oldest first

    @property
    def fields(self) -> dict[str, str]:
        return monitoring_filter.fields_of(
            self.project, self.descriptor.type, self.metric_labels, self.resource_type, self.resource_labels
        )


@dataclass(frozen=True)
class Interval:
    start: float  # seconds since the epoch; start == end asks for the points at one instant
    end: float


def _stamp(seconds: float) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


def _seconds(stamp: timestamp_pb2.Timestamp) -> float:
    return float(stamp.ToNanoseconds()) / 1e9


def interval_of(message: types.TimeInterval) -> Interval:
    """ListTimeSeries' interval: `end_time` required; an unset `start_time` is the end (TimeInterval's comment)."""
    pb = types.TimeInterval.pb(message)
    if not pb.HasField("end_time"):
        raise invalid_argument("Field interval.endTime is required.")
    end = _seconds(pb.end_time)
    start = _seconds(pb.start_time) if pb.HasField("start_time") else end
    if start > end:
        raise invalid_argument("Field interval.startTime must not be later than interval.endTime.")
    return Interval(start, end)


class TimeSeriesStore:
    """Every project's time series; writers add points, ListTimeSeries and the alerting read them. Thread-safe."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._series: dict[tuple[object, ...], _Series] = {}

    def now(self) -> float:
        return self._clock()

    def write(
        self,
        project: str,
        metric_type: str,
        metric_labels: Mapping[str, str],
        resource_type: str,
        resource_labels: Mapping[str, str],
        value: bool | float,
        at: float | None = None,
    ) -> None:
        """Record one measurement: a GAUGE point at `at`, or added into its minute's DELTA point (a distribution's
        measurement joins its samples)."""
        descriptor = CATALOG[metric_type]
        at = self._clock() if at is None else at
        key = (
            project,
            metric_type,
            tuple(sorted(metric_labels.items())),
            resource_type,
            tuple(sorted(resource_labels.items())),
        )
        with self._lock:
            series = self._series.get(key)
            if series is None:
                series = self._series[key] = _Series(
                    project, descriptor, resource_type, dict(metric_labels), dict(resource_labels)
                )
            if descriptor.kind == Kind.GAUGE:
                series.points.append(_Point(at, at, value))
            else:
                minute = math.floor(at / SAMPLE_SECONDS) * SAMPLE_SECONDS
                last = series.points[-1] if series.points else None
                if last is None or last.start != minute:
                    last = _Point(
                        minute, minute + SAMPLE_SECONDS, [] if descriptor.value_type == ValueType.DISTRIBUTION else 0
                    )
                    series.points.append(last)
                if descriptor.value_type == ValueType.DISTRIBUTION:
                    last.value.append(float(value))
                else:
                    last.value += value
            cutoff = at - RETENTION_SECONDS
            if series.points and series.points[0].end < cutoff:
                series.points = [point for point in series.points if point.end >= cutoff]

    def query(
        self, project: str, filter_text: str, interval: Interval, aggregation: types.Aggregation | None
    ) -> list[types.TimeSeries]:
        """ListTimeSeries' answer: the matching series, raw or aligned and reduced, newest point first."""
        parsed = monitoring_filter.parse(filter_text)
        if len(set(parsed.metric_types)) != 1:
            raise invalid_argument(
                f'Field filter had an invalid value of "{filter_text}": it must name exactly one metric type '
                '(metric.type = "…").'
            )
        metric_type = parsed.metric_types[0]
        descriptor = CATALOG.get(metric_type)
        if descriptor is None:
            from doki_cli.emulator.monitoring.validation import unknown_metric

            raise unknown_metric(metric_type)
        if aggregation is not None:
            check_aggregation(descriptor, aggregation)
        with self._lock:
            chosen = [
                _Series(
                    s.project,
                    s.descriptor,
                    s.resource_type,
                    dict(s.metric_labels),
                    dict(s.resource_labels),
                    [_Point(p.start, p.end, list(p.value) if isinstance(p.value, list) else p.value) for p in s.points],
                )
                for s in self._series.values()
                if s.project == project and s.descriptor.type == metric_type and parsed.matches(s.fields)
            ]
        if aggregation is None or aggregation.per_series_aligner == Aligner.ALIGN_NONE:
            return [series for series in (_raw(s, interval) for s in chosen) if series is not None]
        return _aggregate(descriptor, chosen, interval, aggregation)


def check_aggregation(descriptor: Descriptor, aggregation: types.Aggregation, where: str = "aggregation") -> int:
    """The value type the aggregation yields; INVALID_ARGUMENT for what common.proto says is not valid, in the
    words Google's refusals are quoted in."""
    aligner = aggregation.per_series_aligner
    reducer = aggregation.cross_series_reducer
    if aggregation.group_by_fields and reducer == Reducer.REDUCE_NONE:
        raise invalid_argument("An aggregation cannot have group-by fields without a reducer.")  # t-p-google#16366
    if aligner == Aligner.ALIGN_NONE:
        if reducer != Reducer.REDUCE_NONE:
            # Aggregation.cross_series_reducer: "per_series_aligner must be specified, and must not be ALIGN_NONE".
            raise invalid_argument(
                f'Field {where}.crossSeriesReducer had an invalid value of "{Reducer(reducer).name}": a reducer '
                "needs a perSeriesAligner other than ALIGN_NONE"
            )
        return descriptor.value_type
    period = aggregation.alignment_period.total_seconds() if aggregation.alignment_period else 0
    if period < MIN_ALIGNMENT_SECONDS or period % 60:
        # "must be at least 60 seconds" (Aggregation.alignment_period); "alignment period must be in multiples of one
        # minute" (terraform-provider-google#10893 quotes the refusal).
        raise invalid_argument(
            f'Field {where}.alignment_period had an invalid value of "{{"seconds":{int(period)}}}": alignment '
            "period must be in multiples of one minute"
            + ("" if period >= MIN_ALIGNMENT_SECONDS else " and at least 60 seconds")
        )
    if aligner not in _ALIGNERS:
        raise invalid_argument(f"The doki emulator does not implement the aligner {Aligner(aligner).name}.")
    kinds, value_types = _ALIGNERS[aligner]
    if descriptor.kind not in kinds or descriptor.value_type not in value_types:
        # grafana/grafana#22634 and others quote this refusal, its field path the same in alert policies.
        raise invalid_argument(
            f'Field aggregation.perSeriesAligner had an invalid value of "{Aligner(aligner).name}": The aligner '
            f"cannot be applied to metrics with kind {Kind.Name(descriptor.kind)} and value type "
            f"{ValueType.Name(descriptor.value_type)}."
        )
    aligned = _aligned_type(aligner, descriptor.value_type)
    if reducer == Reducer.REDUCE_NONE:
        return aligned
    if reducer not in _REDUCERS:
        raise invalid_argument(f"The doki emulator does not implement the reducer {Reducer(reducer).name}.")
    if aligned not in _REDUCERS[reducer]:
        raise invalid_argument(
            f'Field aggregation.crossSeriesReducer had an invalid value of "{Reducer(reducer).name}": The reducer '
            f"cannot be applied to time series with value type {ValueType.Name(aligned)}."
        )
    return _reduced_type(reducer, aligned)


def _aligned_type(aligner: int, value_type: int) -> int:
    if aligner in (Aligner.ALIGN_COUNT, Aligner.ALIGN_COUNT_TRUE, Aligner.ALIGN_COUNT_FALSE):
        return INT64
    if aligner in (Aligner.ALIGN_RATE, Aligner.ALIGN_MEAN, Aligner.ALIGN_FRACTION_TRUE) or aligner in _PERCENTILES:
        return DOUBLE
    return value_type


def _reduced_type(reducer: int, value_type: int) -> int:
    if reducer in (Reducer.REDUCE_COUNT, Reducer.REDUCE_COUNT_TRUE, Reducer.REDUCE_COUNT_FALSE):
        return INT64
    if reducer in (Reducer.REDUCE_MEAN, Reducer.REDUCE_FRACTION_TRUE) or reducer in _PERCENTILES:
        return DOUBLE
    return value_type


def _in(point: _Point, start: float, end: float, *, closed_start: bool = False) -> bool:
    return (start <= point.end if closed_start else start < point.end) and point.end <= end


def _raw(series: _Series, interval: Interval) -> types.TimeSeries | None:
    points = [p for p in series.points if _in(p, interval.start, interval.end, closed_start=True)]
    if not points:
        return None
    return _message(
        series.descriptor,
        series.resource_type,
        series.metric_labels,
        series.resource_labels,
        series.descriptor.value_type,
        [(p.start, p.end, p.value) for p in reversed(points)],
        series.descriptor.kind,
    )


def _aggregate(
    descriptor: Descriptor, chosen: Sequence[_Series], interval: Interval, aggregation: types.Aggregation
) -> list[types.TimeSeries]:
    value_type = check_aggregation(descriptor, aggregation)  # checked by the caller; here for the type
    period = aggregation.alignment_period.total_seconds()
    aligner = aggregation.per_series_aligner
    aligned_type = _aligned_type(aligner, descriptor.value_type)
    # The aligned points' end times: the interval's end, and whole periods before it, back to its start.
    ends = [interval.end]
    while ends[-1] - period > interval.start:
        ends.append(ends[-1] - period)
    aligned: list[tuple[_Series, dict[float, Value]]] = []
    for series in chosen:
        values = {}
        for end in ends:
            window = [p for p in series.points if _in(p, end - period, end)]
            if window:
                values[end] = _align(aligner, window, period)
        if values:
            aligned.append((series, values))
    kind = Kind.GAUGE if aligner not in (Aligner.ALIGN_DELTA, Aligner.ALIGN_SUM) else descriptor.kind
    reducer = aggregation.cross_series_reducer
    if reducer == Reducer.REDUCE_NONE:
        return [
            _message(
                descriptor,
                s.resource_type,
                s.metric_labels,
                s.resource_labels,
                aligned_type,
                [(end - period, end, values[end]) for end in ends if end in values],
                kind,
            )
            for s, values in aligned
        ]
    groups: dict[tuple[str, tuple[tuple[str, str], ...]], list[tuple[_Series, dict[float, Value]]]] = {}
    for series, values in aligned:
        # It is not possible to reduce across resource types (Aggregation.group_by_fields).
        group = (series.resource_type, _group_key(series, aggregation.group_by_fields))
        groups.setdefault(group, []).append((series, values))
    answer = []
    for (resource_type, key), members in groups.items():
        metric_labels = {k[len("metric.label.") :]: v for k, v in key if k.startswith("metric.label.")}
        resource_labels = {k[len("resource.label.") :]: v for k, v in key if k.startswith("resource.label.")}
        points = []
        for end in ends:
            present = [values[end] for _, values in members if end in values]
            if present:
                points.append((end - period, end, _reduce(reducer, present, aligned_type)))
        if points:
            answer.append(
                _message(descriptor, resource_type, metric_labels, resource_labels, value_type, points, Kind.GAUGE)
            )
    return answer


def _group_key(series: _Series, group_by: Iterable[str]) -> tuple[tuple[str, str], ...]:
    fields = series.fields
    kept: dict[str, str] = {}
    for name in group_by:
        normal = name.replace(".labels.", ".label.")
        if normal.endswith(".label.*"):
            prefix = normal[:-1]
            kept.update({k: v for k, v in fields.items() if k.startswith(prefix)})
        elif normal in fields:
            kept[normal] = fields[normal]
    return tuple(sorted(kept.items()))


def _samples(values: Iterable[Value]) -> list[float]:
    return [sample for value in values for sample in value]


def _percentile(samples: Sequence[float], percent: int) -> float:
    ordered = sorted(samples)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * percent / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


# What an aligner and a reducer of the same name compute over plain values: one function each serves both.
_STATISTICS: dict[str, Callable[[list[Value]], Value]] = {
    "min": min,
    "max": max,
    "mean": lambda values: float(statistics.fmean(float(v) for v in values)),
    "count": len,
    "count_true": lambda values: sum(1 for v in values if v),
    "count_false": lambda values: sum(1 for v in values if not v),
    "fraction_true": lambda values: sum(1 for v in values if v) / len(values),
}
_ALIGNED_STATISTICS = {
    Aligner.ALIGN_MIN: "min",
    Aligner.ALIGN_MAX: "max",
    Aligner.ALIGN_MEAN: "mean",
    Aligner.ALIGN_COUNT: "count",
    Aligner.ALIGN_COUNT_TRUE: "count_true",
    Aligner.ALIGN_COUNT_FALSE: "count_false",
    Aligner.ALIGN_FRACTION_TRUE: "fraction_true",
}
_REDUCED_STATISTICS = {
    Reducer.REDUCE_MIN: "min",
    Reducer.REDUCE_MAX: "max",
    Reducer.REDUCE_MEAN: "mean",
    Reducer.REDUCE_COUNT: "count",
    Reducer.REDUCE_COUNT_TRUE: "count_true",
    Reducer.REDUCE_COUNT_FALSE: "count_false",
    Reducer.REDUCE_FRACTION_TRUE: "fraction_true",
}


def _align(aligner: int, window: list[_Point], period: float) -> Value:
    values = [p.value for p in window]
    if aligner == Aligner.ALIGN_NEXT_OLDER:
        return values[-1]
    if aligner in (Aligner.ALIGN_DELTA, Aligner.ALIGN_SUM):
        return _samples(values) if isinstance(values[0], list) else sum(values)
    if aligner == Aligner.ALIGN_RATE:
        return float(sum(values)) / period
    if aligner in _ALIGNED_STATISTICS:
        return _STATISTICS[_ALIGNED_STATISTICS[aligner]](values)
    samples = _samples(values)
    return _percentile(samples, _PERCENTILES[aligner]) if samples else 0.0


def _reduce(reducer: int, values: list[Value], value_type: int) -> Value:
    if value_type == ValueType.DISTRIBUTION:
        samples = _samples(values)
        if reducer == Reducer.REDUCE_SUM:
            return samples
        if reducer == Reducer.REDUCE_COUNT:
            return len(values)
        if reducer == Reducer.REDUCE_MEAN:
            return float(statistics.fmean(samples)) if samples else 0.0
        return _percentile(samples, _PERCENTILES[reducer]) if samples else 0.0
    if reducer == Reducer.REDUCE_SUM:
        return sum(values)
    if reducer in _REDUCED_STATISTICS:
        return _STATISTICS[_REDUCED_STATISTICS[reducer]](values)
    return _percentile([float(v) for v in values], _PERCENTILES[reducer])


def typed_value(value: Value, value_type: int) -> types.TypedValue:
    if value_type == ValueType.BOOL:
        return types.TypedValue(bool_value=bool(value))
    if value_type == ValueType.INT64:
        return types.TypedValue(int64_value=int(value))
    if value_type == ValueType.DOUBLE:
        return types.TypedValue(double_value=float(value))
    return types.TypedValue(distribution_value=_distribution(value))


def _distribution(samples: list[float]) -> distribution_pb2.Distribution:
    count = len(samples)
    mean = statistics.fmean(samples) if samples else 0.0
    deviation = sum((sample - mean) ** 2 for sample in samples)
    exponential = _BUCKETS.exponential_buckets
    counts = [0] * (exponential.num_finite_buckets + 2)
    for sample in samples:
        if sample < exponential.scale:
            counts[0] += 1
            continue
        index = int(math.log(sample / exponential.scale, exponential.growth_factor)) + 1
        counts[min(index, len(counts) - 1)] += 1
    while counts and counts[-1] == 0:  # trailing zero buckets may be left out (Distribution.bucket_counts)
        counts.pop()
    return distribution_pb2.Distribution(
        count=count, mean=mean, sum_of_squared_deviation=deviation, bucket_options=_BUCKETS, bucket_counts=counts
    )


def _message(
    descriptor: Descriptor,
    resource_type: str,
    metric_labels: Mapping[str, str],
    resource_labels: Mapping[str, str],
    value_type: int,
    points: Sequence[tuple[float, float, Value]],
    kind: int,
) -> types.TimeSeries:
    """A TimeSeries message, its points newest first (ListTimeSeries' order)."""
    ordered = sorted(points, key=lambda point: point[1], reverse=True)
    return types.TimeSeries(
        metric=metric_pb2.Metric(type=descriptor.type, labels=dict(metric_labels)),
        resource=monitored_resource_pb2.MonitoredResource(type=resource_type, labels=dict(resource_labels)),
        metric_kind=kind,
        value_type=value_type,
        unit=descriptor.unit if value_type not in (ValueType.BOOL,) else "",
        points=[
            types.Point(
                interval=types.TimeInterval(
                    # A GAUGE point is an instant: its start is its end (TimeInterval's comment).
                    start_time=_stamp(start if kind != Kind.GAUGE else end),
                    end_time=_stamp(end),
                ),
                value=typed_value(value, value_type),
            )
            for start, end, value in ordered
        ],
    )
