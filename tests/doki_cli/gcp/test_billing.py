"""The Billing adapter: Cloud Run's prices in a region, read from the emulated catalog by description and region."""

from __future__ import annotations

import pytest

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
    assert (central.cpu, central.memory, central.request, central.free_requests) == (0.000024, 0.0000025, 4e-7, 2e6)
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
    assert refused.value.message.startswith("the Cloud Billing Catalog prices no Cloud Run cpu, memory")
