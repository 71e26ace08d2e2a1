"""The Cloud Billing Catalog, through google-cloud-billing: the only module that imports it.

What Cloud Run charges in a region, read from the catalog's SKUs (never written into doki): request-based CPU and
memory, the idle minimum instances' rates, instance-based CPU and memory, and requests. SKUs are matched by their
description with its spaces collapsed (the catalog writes one Tier 2 SKU with two) and by their `service_regions`;
a price is the last of a SKU's tiered rates, the one beyond its free tier, as public readers of the catalog take
it. Google errors become DokiErrors with a hint.
"""

from __future__ import annotations

import re
from typing import Any

from doki_cli.errors import Code, DokiError
from doki_cli.gcp.errors import call_google
from doki_cli.gcp.retry import Retrier
from doki_cli.model import RunPrices

CLOUD_RUN = "services/152E-C115-5142"  # Cloud Run's service in the catalog
# Which SKU prices what, by description (spaces collapsed, "Tier 2" dropped: the regions say the tier).
_KINDS = {
    "cpu": "Services CPU (Request-based billing)",
    "memory": "Services Memory (Request-based billing)",
    "idle_cpu": "Services Min Instance CPU (Request-based billing)",
    "idle_memory": "Services Min Instance Memory (Request-based billing)",
    "instance_cpu": "Services CPU (Instance-based billing)",
    "instance_memory": "Services Memory (Instance-based billing)",
    "request": "Requests",
}


def _normal(description: str) -> str:
    text = " ".join(description.split())
    text = re.sub(r" in [a-z]+-[a-z]+[0-9]+$", "", text)
    return text.replace(" Tier 2 ", " ")


def _price(money: Any) -> float:
    return float(money.units) + float(money.nanos) / 1e9


class Billing:
    def __init__(self, client: Any, retrier: Retrier) -> None:
        self._client = client
        self._retrier = retrier

    def cloud_run_prices(self, region: str) -> RunPrices:
        """Cloud Run's prices in `region`; a DokiError when the catalog does not price it there."""
        skus = call_google(
            self._retrier,
            lambda: list(self._client.list_skus(parent=CLOUD_RUN)),
            action="reading Cloud Run's prices from",
            resource="the Cloud Billing Catalog",
            api="billing",
        )
        found: dict[str, tuple[float, float, str]] = {}
        for sku in skus:
            kind = next((k for k, text in _KINDS.items() if _normal(sku.description) == text), None)
            regions = list(sku.service_regions)
            if kind is None or not sku.pricing_info or (region not in regions and "global" not in regions):
                continue
            expression = sku.pricing_info[-1].pricing_expression  # the newest pricing
            rates = list(expression.tiered_rates)
            if not rates:
                continue
            free = rates[-1].start_usage_amount if len(rates) > 1 else 0.0
            # A region listed in both tiers' SKUs (the catalog has done so): the SKU naming it alone, or Tier 1's.
            if kind in found and len(regions) > 1:
                continue
            found[kind] = (_price(rates[-1].unit_price), free, rates[-1].unit_price.currency_code or "USD")
        missing = [kind for kind in _KINDS if kind not in found]
        if missing:
            raise DokiError(
                Code.NO_PRICE,
                f"the Cloud Billing Catalog prices no Cloud Run {', '.join(missing)} in {region}",
                "the region may be new to the catalog; the plan is right without its cost",
            )
        return RunPrices(
            region=region,
            currency=found["cpu"][2],
            cpu=found["cpu"][0],
            memory=found["memory"][0],
            idle_cpu=found["idle_cpu"][0],
            idle_memory=found["idle_memory"][0],
            instance_cpu=found["instance_cpu"][0],
            instance_memory=found["instance_memory"][0],
            request=found["request"][0],
            free_requests=found["request"][1],
        )
