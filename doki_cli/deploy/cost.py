"""What a change does to the bill: the monthly cost of the always-on floor (the minimum instances, running all month
whether or not they serve) and the price of a million requests at the service's size, before and after, from the
Cloud Billing Catalog's prices for the region (doki_cli.gcp.billing; never numbers written into doki).

As Cloud Run bills (https://cloud.google.com/run/docs/configuring/billing-settings): with request-based billing
(CPU only during requests, the default) an idle minimum instance costs the catalog's "Min Instance" rates and a
request the request-based CPU and memory while it is served plus the request fee; with instance-based billing (CPU
always allocated) an instance costs the instance-based rates its whole life, and there is no request fee. A month
is 730 hours, as Google's pricing calculator counts it. List prices, before the free tier (which is per billing
account, shared by every service) and any discount.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from doki_cli.model import RunPrices, ServiceSpec

SECONDS_PER_MONTH = 730 * 3600
# The request a "million requests" line prices: one second of an instance's CPU and memory each, none sharing it.
REQUEST_SECONDS = 1.0
MILLION = 1_000_000
_MEMORY_GIB = {"Ki": 2**-20, "Mi": 2**-10, "Gi": 1.0, "Ti": 2**10, "k": 1e3 / 2**30, "M": 1e6 / 2**30, "G": 1e9 / 2**30}


def memory_gib(text: str) -> float:
    """A Kubernetes quantity ("512Mi", "1Gi", "2G") in GiB, as Cloud Run bills memory; 0 when unreadable."""
    for suffix, factor in _MEMORY_GIB.items():
        if text.endswith(suffix) and text[: -len(suffix)].isdigit():
            return int(text[: -len(suffix)]) * factor
    return int(text) / 2**30 if text.isdigit() else 0.0


def cpus(text: str) -> float:
    if text.endswith("m") and text[:-1].isdigit():
        return int(text[:-1]) / 1000
    try:
        return float(text)
    except ValueError:
        return 0.0


@dataclass(frozen=True)
class Sizing:
    """What the bill of a service depends on."""

    cpu: float  # vCPUs per instance
    memory_gib: float
    floor: int  # instances kept running: the larger of the service's and the revision's minimum
    instance_based: bool  # CPU always allocated: every instance is billed its whole life, at instance-based rates

    @classmethod
    def of(cls, spec: ServiceSpec, *, instance_based: bool, service_min: int) -> Sizing:
        return cls(cpus(spec.cpu), memory_gib(spec.memory), max(spec.min_instances, service_min), instance_based)

    def floor_cost(self, prices: RunPrices) -> float:
        """A month of the minimum instances."""
        cpu, memory = (
            (prices.instance_cpu, prices.instance_memory)
            if self.instance_based
            else (prices.idle_cpu, prices.idle_memory)
        )
        return self.floor * SECONDS_PER_MONTH * (self.cpu * cpu + self.memory_gib * memory)

    def million_requests(self, prices: RunPrices) -> float | None:
        """A million one-second requests (None: instance-based billing charges instances, not requests)."""
        if self.instance_based:
            return None
        serving = REQUEST_SECONDS * (self.cpu * prices.cpu + self.memory_gib * prices.memory)
        return MILLION * (serving + prices.request)

    def describe(self) -> str:
        billing = "instance-based" if self.instance_based else "request-based"
        plural = "s" if self.floor != 1 else ""
        return f"{self.floor} min instance{plural} of {self.cpu:g} vCPU and {self.memory_gib:g} GiB, {billing} billing"


def _money(amount: float, currency: str) -> str:
    return f"${amount:,.2f}" if currency == "USD" else f"{amount:,.2f} {currency}"


@dataclass(frozen=True)
class Cost:
    """The cost lines of a plan: `before` None for a new service; `prices` None when they could not be read
    (`problem` says why: the plan is right without them)."""

    region: str
    before: Sizing | None
    after: Sizing
    prices: RunPrices | None = None
    problem: str = ""

    def lines(self) -> list[str]:
        if self.prices is None:
            return [f"$ cost: not priced ({self.problem})"]
        prices, currency = self.prices, self.prices.currency

        def change(before: float | None, after: float | None, unit: str) -> str:
            shown = [
                "no per-request price" if value is None else f"{_money(value, currency)}{unit}"
                for value in (before, after)
            ]
            if self.before is None:
                return shown[1]
            return shown[1] if shown[0] == shown[1] else f"{shown[0]} -> {shown[1]}"

        floor_before = self.before.floor_cost(prices) if self.before is not None else None
        million_before = self.before.million_requests(prices) if self.before is not None else None
        return [
            f"$ always-on floor: {change(floor_before, self.after.floor_cost(prices), ' a month')} "
            f"({self.after.describe()})",
            f"$ a million 1-second requests: {change(million_before, self.after.million_requests(prices), '')}",
            f"$ Cloud Billing Catalog list prices for {self.region}, {currency}, before the free tier",
        ]

    def data(self) -> dict[str, object]:
        if self.prices is None:
            return {"priced": False, "problem": self.problem}
        prices = self.prices

        def side(sizing: Sizing | None) -> dict[str, object] | None:
            if sizing is None:
                return None
            million = sizing.million_requests(prices)
            return {
                "floor_per_month": round(sizing.floor_cost(prices), 4),
                "million_requests": None if million is None else round(million, 4),
                "min_instances": sizing.floor,
                "cpu": sizing.cpu,
                "memory_gib": sizing.memory_gib,
                "instance_based": sizing.instance_based,
            }

        return {
            "priced": True,
            "currency": prices.currency,
            "region": self.region,
            "before": side(self.before),
            "after": side(self.after),
        }


def priced(region: str, before: Sizing | None, after: Sizing, prices_of: Callable[[str], RunPrices]) -> Cost | None:
    """The cost of going from `before` to `after` (None when nothing the bill depends on changes); prices that cannot
    be read leave the cost unpriced, never the plan failed."""
    from doki_cli.errors import DokiError

    if before == after:
        return None
    try:
        return Cost(region, before, after, prices_of(region))
    except DokiError as err:
        return Cost(region, before, after, problem=err.message)
