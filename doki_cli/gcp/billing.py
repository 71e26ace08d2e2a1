"""The Cloud Billing Catalog, through google-cloud-billing: the only module that imports it.

What Cloud Run charges in a region, read from the catalog's SKUs (never written into doki): request-based CPU and
memory, the idle minimum instances' rates, instance-based CPU and memory, and requests. A SKU is known by its
description with its spaces collapsed (the catalog writes one Tier 2 SKU with two), "Tier 2" and any trailing
" in REGION" left out (the catalog has written "in in asia-northeast1"), and by its unit (`s`, `GiBy.s`, `count`:
another unit is another thing); it prices a region its `service_regions` names. Where two SKUs name a region (the
catalog has listed a region under both tiers), the one naming it alone wins, then Tier 1's, so the answer never
depends on the catalog's order. A price is the last of a SKU's tiered rates, the one beyond its free tier, as public
readers of the catalog take it. Reading the catalog is quick or given up: a plan is whole without its cost.
"""

from __future__ import annotations

import re
from typing import Any

from doki_cli.errors import Code, DokiError
from doki_cli.gcp.errors import call_google
from doki_cli.gcp.retry import Retrier
from doki_cli.model import RunPrices

CLOUD_RUN = "services/152E-C115-5142"  # Cloud Run's service in the catalog
# Which SKU prices what: its description (normalized as above) and unit.
_KINDS = {
    "cpu": ("Services CPU (Request-based billing)", "s"),
    "memory": ("Services Memory (Request-based billing)", "GiBy.s"),
    "idle_cpu": ("Services Min Instance CPU (Request-based billing)", "s"),
    "idle_memory": ("Services Min Instance Memory (Request-based billing)", "GiBy.s"),
    "instance_cpu": ("Services CPU (Instance-based billing)", "s"),
    "instance_memory": ("Services Memory (Instance-based billing)", "GiBy.s"),
    "request": ("Requests", "count"),
}
# Pricing is an aside of a plan: a slow catalog is given up quickly rather than holding the command.
DEADLINE_SECONDS = 10.0


def _normal(description: str) -> str:
    text = " ".join(description.split())
    text = re.sub(r"( in)+ [a-z]+-[a-z]+[0-9]+$", "", text)
    return text.replace(" Tier 2 ", " ")


def _price(money: Any) -> float:
    return float(money.units) + float(money.nanos) / 1e9


class Billing:
    def __init__(self, client: Any, retrier: Retrier) -> None:
        self._client = client
        self._retrier = Retrier(
            deadline=DEADLINE_SECONDS, sleep=retrier.sleep, clock=retrier.clock, jitter=retrier.jitter
        )

    def cloud_run_prices(self, region: str) -> RunPrices:
        """Cloud Run's prices in `region` (None for what the catalog does not price there); a DokiError when it
        prices nothing of Cloud Run there, or cannot be read."""
        skus = call_google(
            self._retrier,
            lambda: list(self._client.list_skus(parent=CLOUD_RUN, timeout=DEADLINE_SECONDS)),
            action="reading Cloud Run's prices from",
            resource="the Cloud Billing Catalog",
            api="billing",
        )
        # kind -> (rank, price, currency): rank 0 names the region alone, 1 Tier 1's, 2 Tier 2's.
        found: dict[str, tuple[int, float, str]] = {}
        for sku in skus:
            normal = _normal(sku.description)
            regions = list(sku.service_regions)
            if not sku.pricing_info or (region not in regions and regions != ["global"]):
                continue
            expression = sku.pricing_info[-1].pricing_expression  # the newest pricing
            kind = next(
                (k for k, (text, unit) in _KINDS.items() if normal == text and expression.usage_unit == unit), None
            )
            rates = list(expression.tiered_rates)
            if kind is None or not rates:
                continue
            rank = 0 if len(regions) == 1 else 2 if "Tier 2" in " ".join(sku.description.split()) else 1
            price = _price(rates[-1].unit_price)  # per usage unit, which the kind fixes
            if kind not in found or rank < found[kind][0]:
                found[kind] = (rank, price, rates[-1].unit_price.currency_code or "USD")
        if not set(found) - {"request"}:  # the global request fee alone prices no region
            raise DokiError(
                Code.NO_PRICE,
                f"the Cloud Billing Catalog prices nothing of Cloud Run in {region}",
                "the region may be new to the catalog; the plan is right without its cost",
            )
        prices = {kind: value[1] for kind, value in found.items()}
        return RunPrices(currency=next(iter(found.values()))[2], **prices)
