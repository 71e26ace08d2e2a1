"""The catalog the emulator serves: Cloud Run's service and the SKUs doki prices a plan with, at Google's list
prices, which a test (or a rehearsal) changes through the control API.

The SKUs are Google's as the catalog describes them since the 2025 renaming (infracost's price mapping update of
2025-07-04 and catalog dumps of 2026 quote these descriptions): request-based CPU and memory and the idle minimum
instances' rates, one SKU per price tier with its regions in `service_regions`; instance-based CPU and memory, one
SKU per region, its region in the description; and the global `Requests`, free for the first two million a month.
The prices are Cloud Run's list prices (https://cloud.google.com/run/pricing: $0.000024 per vCPU-second and
$0.0000025 per GiB-second request-based in Tier 1, $0.000018 and $0.000002 instance-based, $0.40 per million
requests; Tier 2 request-based and idle rates at 1.4 times Tier 1, as the page lists them). Instance-based prices
differ per region on Google (europe-west2's is 1.4 times us-central1's, europe-west3's 1.2): here every Tier 2 region
takes 1.4, and a test sets the price it needs. Units are the catalog's: `s` (vCPU-seconds) and `GiBy.s`.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.cloud.billing_v1 import types

from doki_cli.emulator.errors import invalid_argument, not_found
from doki_cli.emulator.paging import Paging

CLOUD_RUN = "152E-C115-5142"  # Cloud Run's service id in the catalog
# ListServicesRequest.page_size and ListSkusRequest.page_size: "Defaults to 5000."
PAGING = Paging(
    default_size=5000,
    max_size=5000,
    bad_size="Invalid page size: {size}.",
    bad_page="Invalid page token: {token}.",
)
# Cloud Run's price tiers (https://cloud.google.com/run/docs/locations, "Pricing tiers").
TIER_1 = (
    "asia-east1",
    "asia-northeast1",
    "asia-northeast2",
    "europe-north1",
    "europe-southwest1",
    "europe-west1",
    "europe-west4",
    "europe-west8",
    "europe-west9",
    "me-west1",
    "us-central1",
    "us-east1",
    "us-east4",
    "us-east5",
    "us-south1",
    "us-west1",
)
TIER_2 = (
    "africa-south1",
    "asia-east2",
    "asia-northeast3",
    "asia-southeast1",
    "asia-southeast2",
    "asia-south1",
    "asia-south2",
    "australia-southeast1",
    "australia-southeast2",
    "europe-central2",
    "europe-west10",
    "europe-west12",
    "europe-west2",
    "europe-west3",
    "europe-west6",
    "me-central1",
    "me-central2",
    "northamerica-northeast1",
    "northamerica-northeast2",
    "southamerica-east1",
    "southamerica-west1",
    "us-west2",
    "us-west3",
    "us-west4",
)
TIER_2_FACTOR = 1.4


@dataclass
class _Sku:
    sku_id: str
    description: str
    regions: tuple[str, ...]
    unit: str  # s, GiBy.s or count
    unit_description: str
    price: float  # per unit, in USD
    free_units: float = 0.0  # a first tier at 0 (Requests: the first two million a month)


def _catalog() -> list[_Sku]:
    skus: list[_Sku] = []
    number = 0

    def add(description: str, regions: tuple[str, ...], unit: str, price: float, free: float = 0.0) -> None:
        nonlocal number
        number += 1
        text = {"s": "second", "GiBy.s": "gibibyte second", "count": "count"}[unit]
        skus.append(_Sku(f"D0C1-{number:04X}-{len(regions):04X}", description, regions, unit, text, price, free))

    for kind, unit, tier_1 in (("CPU", "s", 0.000024), ("Memory", "GiBy.s", 0.0000025)):
        # The catalog has listed africa-south1 under both tiers' SKUs (infracost's fixtures note it, #376), where
        # Google's locations page says Tier 2: kept, so a reader must choose without trusting the order.
        add(f"Services {kind} (Request-based billing)", (*TIER_1, "africa-south1"), unit, tier_1)
        # The catalog writes the Tier 2 CPU SKU with two spaces before the parenthesis (infracost's mapping and the
        # 2026 dumps quote it so); a reader must not match descriptions character for character.
        spaces = "  " if kind == "CPU" else " "
        add(f"Services {kind} Tier 2{spaces}(Request-based billing)", TIER_2, unit, tier_1 * TIER_2_FACTOR)
    for kind, unit, tier_1 in (("CPU", "s", 0.0000025), ("Memory", "GiBy.s", 0.0000025)):
        add(f"Services Min Instance {kind} (Request-based billing)", TIER_1, unit, tier_1)
        add(f"Services Min Instance {kind} Tier 2 (Request-based billing)", TIER_2, unit, tier_1 * TIER_2_FACTOR)
    for kind, unit, tier_1 in (("CPU", "s", 0.000018), ("Memory", "GiBy.s", 0.000002)):
        for region in TIER_1 + TIER_2:
            price = tier_1 if region in TIER_1 else tier_1 * TIER_2_FACTOR
            # A 2026 dump of the catalog has "Services CPU (Instance-based billing) in in asia-northeast1": its
            # typos are kept, so a reader of descriptions is held to them.
            where = "in in" if (kind, region) == ("CPU", "asia-northeast1") else "in"
            add(f"Services {kind} (Instance-based billing) {where} {region}", (region,), unit, price)
    add("Requests", ("global",), "count", 0.0000004, free=2_000_000)
    # SKUs of Cloud Run jobs and worker pools (per region), which a service's price must never be read from.
    for region in ("us-central1", "europe-west1"):
        add(f"Jobs CPU in {region}", (region,), "s", 0.000018)
        add(f"Worker Pools Memory in {region}", (region,), "GiBy.s", 0.000002)
    return skus


def _money(price: float) -> dict[str, Any]:
    units = int(price)
    return {"currency_code": "USD", "units": units, "nanos": round((price - units) * 1e9)}


class Catalog:
    """The services and SKUs, their prices changeable (`set_price`). Thread-safe."""

    def __init__(self, *, persist: Callable[[], None]) -> None:
        self._persist = persist
        self._lock = threading.Lock()
        self._skus = _catalog()

    def list_services(self, page_size: int, page_token: str) -> tuple[list[types.Service], str]:
        service = types.Service(
            name=f"services/{CLOUD_RUN}",
            service_id=CLOUD_RUN,
            display_name="Cloud Run",
            business_entity_name="businessEntities/GCP",
        )
        return PAGING.page([service], lambda s: s.name, page_size, page_token)

    def list_skus(self, parent: str, page_size: int, page_token: str) -> tuple[list[types.Sku], str]:
        if not parent.startswith("services/") or parent.count("/") != 1:
            raise invalid_argument(f"Invalid parent: {parent}. It must be services/SERVICE_ID.")
        if parent != f"services/{CLOUD_RUN}":
            # The emulator's catalog holds Cloud Run alone; Google's wording for an unknown service is not on record.
            raise not_found(f"The doki emulator's catalog has no service {parent}; it holds services/{CLOUD_RUN}.")
        with self._lock:
            skus = [self._message(sku) for sku in self._skus]
        return PAGING.page(skus, lambda s: s.name, page_size, page_token)

    @staticmethod
    def _message(sku: _Sku) -> types.Sku:
        rates = [{"start_usage_amount": 0, "unit_price": _money(0.0)}] if sku.free_units else []
        rates.append({"start_usage_amount": sku.free_units, "unit_price": _money(sku.price)})
        return types.Sku(
            name=f"services/{CLOUD_RUN}/skus/{sku.sku_id}",
            sku_id=sku.sku_id,
            description=sku.description,
            category={
                "service_display_name": "Cloud Run",
                "resource_family": "ApplicationServices",
                "resource_group": "Compute",
                "usage_type": "OnDemand",
            },
            service_regions=list(sku.regions),
            pricing_info=[
                {
                    "summary": "",
                    "pricing_expression": {
                        "usage_unit": sku.unit,
                        "usage_unit_description": sku.unit_description,
                        "base_unit": sku.unit,
                        "base_unit_description": sku.unit_description,
                        "base_unit_conversion_factor": 1,
                        "display_quantity": 1,
                        "tiered_rates": rates,
                    },
                    "currency_conversion_rate": 1,
                }
            ],
            service_provider_name="Google",
            geo_taxonomy={
                "type_": "GLOBAL" if sku.regions == ("global",) else "REGIONAL",
                "regions": [] if sku.regions == ("global",) else list(sku.regions),
            },
        )

    def set_price(self, description: str, price: float) -> dict[str, Any]:
        """Make the SKU described `description` cost `price` USD per unit (the control API's)."""
        if not math.isfinite(price) or price < 0:
            raise invalid_argument("a price is a number, 0 or more")
        with self._lock:
            matching = [sku for sku in self._skus if sku.description == description]
            if not matching:
                raise not_found(f"no SKU is described {description!r}")
            matching[0].price = price
        self._persist()
        return {"description": description, "price": price}

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"prices": {sku.description: sku.price for sku in self._skus}}

    def restore(self, data: dict[str, Any]) -> None:
        with self._lock:
            for sku in self._skus:
                if sku.description in data.get("prices", {}):
                    sku.price = float(data["prices"][sku.description])
