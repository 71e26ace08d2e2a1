"""What a change does to the bill: the monthly cost of the always-on floor (the minimum instances, running all month
whether or not they serve) and the price of a million requests at the service's size, before and after, from the
Cloud Billing Catalog's prices for the region (doki_cli.gcp.billing; never numbers written into doki).

As Cloud Run bills (https://cloud.google.com/run/docs/configuring/billing-settings): with request-based billing
(CPU only during requests, the default) an idle minimum instance costs the catalog's "Min Instance" rates and a
request the request-based CPU and memory while it is served plus the request fee; with instance-based billing (CPU
always allocated) an instance costs the instance-based rates its whole life, and there is no request fee. A month
is 730 hours, as Google's pricing calculator counts it. List prices, before the free tier (which is per billing
account, shared by every service) and any discount.

Which instances stay up (https://cloud.google.com/run/docs/configuring/min-instance): a revision's minimum runs for
every revision that serves traffic or carries a tag, and the service's own minimum is shared among the revisions
that serve by their share of traffic. `Sizing.floor` is what one revision keeps up: a plan prices the revision it
changes; `doki status` adds every revision that keeps instances (`revision_floor`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from doki_cli.model import RunPrices, ServiceSpec

SECONDS_PER_MONTH = 730 * 3600
# The request a "million requests" line prices: one second of an instance's CPU and memory each, none sharing it.
REQUEST_SECONDS = 1.0
MILLION = 1_000_000


class Unpriced(Exception):
    """What the catalog does not price (or the size doki cannot read), said in the cost line."""


def revision_floor(own_min: int, service_min: int, percent: int) -> int:
    """The instances one revision keeps up: its own minimum, or its share of the service's (by traffic), whichever
    is more (min-instance page, "Revisions and minimum instances")."""
    return max(own_min, math.ceil(service_min * percent / 100))


@dataclass(frozen=True)
class Sizing:
    """What the bill of a service depends on."""

    cpu: float | None  # vCPUs per instance (None: not readable)
    memory_gib: float | None
    floor: int  # instances kept running
    instance_based: bool  # CPU always allocated: every instance is billed its whole life, at instance-based rates

    @classmethod
    def of(cls, spec: ServiceSpec, *, instance_based: bool, service_min: int) -> Sizing:
        """The revision `spec` describes, taking all of the service's traffic."""
        from doki_cli.config import cpu_count, memory_bytes

        memory = memory_bytes(spec.memory)
        return cls(
            cpu_count(spec.cpu),
            None if memory is None else memory / 2**30,
            revision_floor(spec.min_instances, service_min, 100),
            instance_based,
        )

    def _rates(self, prices: RunPrices, *, idle: bool) -> tuple[float, float, float, float]:
        if self.cpu is None or self.memory_gib is None:
            raise Unpriced("the instance's CPU or memory is not a size doki can read")
        if self.instance_based:
            cpu, memory, kind = prices.instance_cpu, prices.instance_memory, "instance-based CPU and memory"
        elif idle:
            cpu, memory, kind = prices.idle_cpu, prices.idle_memory, "idle minimum instances"
        else:
            cpu, memory, kind = prices.cpu, prices.memory, "request-based CPU and memory"
        if cpu is None or memory is None:
            raise Unpriced(f"the catalog prices no {kind} in this region")
        return self.cpu, self.memory_gib, cpu, memory

    def floor_cost(self, prices: RunPrices) -> float:
        """A month of the minimum instances."""
        if not self.floor:
            return 0.0
        vcpu, gib, cpu, memory = self._rates(prices, idle=True)
        return self.floor * SECONDS_PER_MONTH * (vcpu * cpu + gib * memory)

    def million_requests(self, prices: RunPrices) -> float:
        """A million one-second requests: the instance time they take, and (request-based) the request fee."""
        vcpu, gib, cpu, memory = self._rates(prices, idle=False)
        fee = 0.0
        if not self.instance_based:
            if prices.request is None:
                raise Unpriced("the catalog prices no requests")
            fee = prices.request
        return MILLION * (REQUEST_SECONDS * (vcpu * cpu + gib * memory) + fee)

    def describe(self) -> str:
        billing = "instance-based" if self.instance_based else "request-based"
        plural = "s" if self.floor != 1 else ""
        size = f"{self.cpu:g} vCPU and {self.memory_gib:g} GiB" if self.cpu and self.memory_gib else "unknown size"
        return f"{self.floor} min instance{plural} of {size}, {billing} billing"


def money(amount: float, currency: str) -> str:
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
    # The live service keeps other revisions up too (tagged, or sharing traffic): said, as this cost is one revision's.
    others_kept: bool = False

    def _figures(self) -> tuple[float | None, float, float | None, float]:
        assert self.prices is not None
        before = self.before
        return (
            before.floor_cost(self.prices) if before is not None else None,
            self.after.floor_cost(self.prices),
            before.million_requests(self.prices) if before is not None else None,
            self.after.million_requests(self.prices),
        )

    def lines(self) -> list[str]:
        if self.prices is None:
            return [f"$ cost: not priced ({self.problem})"]
        try:
            floor_before, floor_after, million_before, million_after = self._figures()
        except Unpriced as why:
            return [f"$ cost: not priced ({why})"]
        currency = self.prices.currency

        def change(before: float | None, after: float, unit: str) -> str:
            shown_after = f"{money(after, currency)}{unit}"
            if before is None or money(before, currency) == money(after, currency):
                return shown_after
            return f"{money(before, currency)}{unit} -> {shown_after}"

        billing = " (instance time, no request fee)" if self.after.instance_based else ""
        lines = [
            f"$ always-on floor: {change(floor_before, floor_after, ' a month')} ({self.after.describe()})",
            f"$ a million 1-second requests: {change(million_before, million_after, '')}{billing}",
            f"$ Cloud Billing Catalog list prices for {self.region}, {currency}, before the free tier",
        ]
        if self.others_kept:
            lines.append("$ other revisions kept by tags or traffic keep their own minimum: `doki status` adds them")
        return lines

    def data(self) -> dict[str, object]:
        def side(sizing: Sizing | None, floor: float | None, million: float | None) -> dict[str, object] | None:
            if sizing is None:
                return None
            return {
                "floor_per_month": None if floor is None else round(floor, 4),
                "million_requests": None if million is None else round(million, 4),
                "min_instances": sizing.floor,
                "cpu": sizing.cpu,
                "memory_gib": sizing.memory_gib,
                "instance_based": sizing.instance_based,
            }

        problem = self.problem
        figures: tuple[float | None, ...] = (None, None, None, None)
        if self.prices is not None:
            try:
                figures = self._figures()
            except Unpriced as why:
                problem = str(why)
        priced = self.prices is not None and not problem
        return {
            "priced": priced,
            "problem": problem or None,
            "currency": self.prices.currency if self.prices is not None else None,
            "region": self.region,
            "before": side(self.before, figures[0], figures[2]),
            "after": side(self.after, figures[1], figures[3]),
        }


def priced(
    region: str,
    before: Sizing | None,
    after: Sizing,
    prices_of: Callable[[str], RunPrices],
    *,
    others_kept: bool = False,
) -> Cost | None:
    """The cost of going from `before` to `after` (None when nothing the bill depends on changes); prices that cannot
    be read leave the cost unpriced, said with what to do, never the plan failed."""
    from doki_cli.errors import DokiError

    if before == after:
        return None
    try:
        return Cost(region, before, after, prices_of(region), others_kept=others_kept)
    except DokiError as err:
        return Cost(region, before, after, problem=f"{err.message}; {err.hint}", others_kept=others_kept)
