"""The Cloud Billing Catalog on the emulator, through the official client: Cloud Run's service and SKUs as the
catalog describes them, paged, their prices changed through the control API."""

from __future__ import annotations

import pytest
from google.api_core import exceptions

from doki_cli.emulator.server import Emulator
from doki_cli.gcp.clients import ClientFactory
from tests.doki_cli.emulator.rest_client import call

RUN = "services/152E-C115-5142"


def test_the_catalog_lists_cloud_run_and_its_skus_by_tier_and_region(clients: ClientFactory) -> None:
    catalog = clients.billing_catalog()
    (service,) = catalog.list_services()
    assert (service.name, service.display_name) == (RUN, "Cloud Run")
    skus = {sku.description: sku for sku in catalog.list_skus(parent=RUN)}
    cpu = skus["Services CPU (Request-based billing)"]
    assert "us-central1" in cpu.service_regions and "europe-west3" not in cpu.service_regions
    assert cpu.pricing_info[0].pricing_expression.usage_unit == "s"
    assert cpu.pricing_info[0].pricing_expression.tiered_rates[-1].unit_price.nanos == 24000
    # Two spaces, as the catalog writes this one.
    assert "europe-west3" in skus["Services CPU Tier 2  (Request-based billing)"].service_regions
    assert list(skus["Services Memory (Instance-based billing) in europe-west3"].service_regions) == ["europe-west3"]
    requests = skus["Requests"].pricing_info[0].pricing_expression.tiered_rates
    assert [(rate.start_usage_amount, rate.unit_price.nanos) for rate in requests] == [(0, 0), (2_000_000, 400)]


def test_skus_come_in_pages_and_every_one_once(clients: ClientFactory) -> None:
    catalog = clients.billing_catalog()
    everything = [sku.name for sku in catalog.list_skus(parent=RUN)]
    first = catalog.list_skus(request={"parent": RUN, "page_size": 10})
    paged = [sku.name for sku in first]  # the pager follows next_page_token
    assert paged == everything and len(set(everything)) == len(everything) > 10


def test_a_price_set_through_the_control_api_is_what_the_catalog_answers(
    emulator: Emulator, clients: ClientFactory
) -> None:
    status, body = call(
        emulator,
        "POST",
        "/_doki/billing/prices",
        {"description": "Services Min Instance CPU (Request-based billing)", "price": 0.0000031},
    )
    assert (status, body["price"]) == (200, 0.0000031)
    skus = {sku.description: sku for sku in clients.billing_catalog().list_skus(parent=RUN)}
    rate = skus["Services Min Instance CPU (Request-based billing)"].pricing_info[0].pricing_expression.tiered_rates[-1]
    assert (rate.unit_price.units, rate.unit_price.nanos) == (0, 3100)
    assert call(emulator, "POST", "/_doki/billing/prices", {"description": "Nope", "price": 1})[0] == 404


def test_a_service_outside_the_catalog_and_another_currency_are_refused(clients: ClientFactory) -> None:
    catalog = clients.billing_catalog()
    with pytest.raises(exceptions.NotFound):
        list(catalog.list_skus(parent="services/6F81-5844-456A"))
    with pytest.raises(exceptions.InvalidArgument):
        list(catalog.list_skus(request={"parent": RUN, "currency_code": "EUR"}))
