"""The Billing adapter: Cloud Run's prices in a region, read from the emulated catalog by description and region."""

from __future__ import annotations

import pytest
from google.cloud import billing_v1

from doki_cli.emulator.server import Emulator
from doki_cli.errors import DokiError
from doki_cli.gcp.billing import Billing
from doki_cli.gcp.clients import ClientFactory
from doki_cli.gcp.retry import Retrier
from tests.doki_cli.emulator.rest_client import call


def billing(clients: ClientFactory) -> Billing:
    return Billing(clients.billing_catalog(), Retrier(deadline=1))


def test_a_tier_1_region_reads_tier_1_prices_and_a_tier_2_region_its_own(clients: ClientFactory) -> None:
    central = billing(clients).cloud_run_prices("us-central1")
    assert (central.cpu, central.memory, central.request) == (0.000024, 0.0000025, 4e-7)
    assert (central.idle_cpu, central.instance_cpu, central.instance_memory) == (0.0000025, 0.000018, 0.000002)
    frankfurt = billing(clients).cloud_run_prices("europe-west3")
    # The Tier 2 CPU SKU's description has two spaces: read all the same.
    assert (frankfurt.cpu, frankfurt.memory) == (pytest.approx(0.0000336), pytest.approx(0.0000035))


def test_prices_are_the_catalogs_never_doki_s(emulator: Emulator, clients: ClientFactory) -> None:
    call(
        emulator,
        "POST",
        "/_doki/billing/prices",
        {"description": "Services CPU (Instance-based billing) in us-central1", "price": 0.5},
    )
    assert billing(clients).cloud_run_prices("us-central1").instance_cpu == 0.5


def test_a_region_the_catalog_does_not_price_is_said(clients: ClientFactory) -> None:
    with pytest.raises(DokiError) as refused:
        billing(clients).cloud_run_prices("mars-north1")
    assert refused.value.code == "no_price"
    assert refused.value.message == "the Cloud Billing Catalog prices nothing of Cloud Run in mars-north1"


def test_the_catalogs_typos_and_other_products_skus_do_not_mislead(clients: ClientFactory) -> None:
    tokyo = billing(clients).cloud_run_prices("asia-northeast1")  # "… (Instance-based billing) in in asia-northeast1"
    assert (tokyo.instance_cpu, tokyo.instance_memory) == (0.000018, 0.000002)
    central = billing(clients).cloud_run_prices("us-central1")  # beside "Jobs CPU in us-central1"
    assert central.instance_cpu == 0.000018


class Catalog:
    """A catalog of given SKUs, in a given order (what the official client's pager yields)."""

    def __init__(self, skus: list[billing_v1.Sku]) -> None:
        self.skus = skus

    def list_skus(self, **_: object) -> list[billing_v1.Sku]:
        return self.skus


def sku(description: str, regions: list[str], price_nanos: int) -> billing_v1.Sku:
    return billing_v1.Sku(
        description=description,
        service_regions=regions,
        pricing_info=[
            {"pricing_expression": {"usage_unit": "s", "tiered_rates": [{"unit_price": {"nanos": price_nanos}}]}}
        ],
    )


@pytest.mark.parametrize("reverse", [False, True])
def test_a_region_both_tiers_list_takes_tier_1s_price_whatever_the_order(reverse: bool) -> None:
    skus = [
        sku("Services CPU (Request-based billing)", ["africa-south1", "us-central1"], 24000),
        sku("Services CPU Tier 2  (Request-based billing)", ["africa-south1", "europe-west3"], 33600),
        sku("Services CPU (Request-based billing) in minutes", ["africa-south1"], 1),  # another unit: ignored
    ]
    skus[2].pricing_info[0].pricing_expression.usage_unit = "min"
    prices = Billing(Catalog(skus[::-1] if reverse else skus), Retrier(deadline=1)).cloud_run_prices("africa-south1")
    assert prices.cpu == 0.000024
