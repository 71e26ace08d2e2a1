"""What a scale does to the bill, in its plan: the always-on floor a month and a million requests, priced from the
emulated Cloud Billing Catalog with prices the test sets."""

from __future__ import annotations

import json

from doki_cli.emulator.server import Emulator
from doki_cli.gcp.clients import ClientFactory
from doki_cli.main import app
from tests.doki_cli.emulator.rest_client import call
from tests.helpers import CliRunner

runner = CliRunner()
PRICES = {
    "Services Min Instance CPU (Request-based billing)": 0.000001,
    "Services Min Instance Memory (Request-based billing)": 0.000002,
    "Services CPU (Request-based billing)": 0.00002,
    "Services Memory (Request-based billing)": 0.000002,
    "Requests": 0.0000004,
}


def test_a_minimum_instance_plan_shows_its_monthly_cost_from_the_catalogs_prices(
    failed_service: ClientFactory, emulator: Emulator
) -> None:
    for description, price in PRICES.items():
        assert call(emulator, "POST", "/_doki/billing/prices", {"description": description, "price": price})[0] == 200
    result = runner.invoke(app, ["scale", "--min-instances", "1", "--dry-run"])
    assert result.exit_code == 2, result.output
    # 1 instance x 730 h x (1 vCPU x $0.000001 + 0.5 GiB x $0.000002) per second = $5.256.
    assert result.stdout.splitlines()[1:] == [
        "  ~ min instances: 0 -> 1",
        "  $ always-on floor: $0.00 a month -> $5.26 a month (1 min instance of 1 vCPU and 0.5 GiB, request-based "
        "billing)",
        "  $ a million 1-second requests: $21.40",
        "  $ Cloud Billing Catalog list prices for us-central1, USD, before the free tier",
        "1 change.",
    ]
    data = json.loads(runner.invoke(app, ["--json", "scale", "--min", "2", "--memory", "1Gi", "--dry-run"]).stdout)
    cost = data["plan"]["cost"]
    assert (cost["before"]["floor_per_month"], cost["after"]["min_instances"]) == (0, 2)
    assert cost["after"]["floor_per_month"] == round(2 * 730 * 3600 * (0.000001 + 0.000002), 4)


def test_a_change_the_bill_does_not_depend_on_reads_no_price(failed_service: ClientFactory, emulator: Emulator) -> None:
    list_skus = "/google.cloud.billing.v1.CloudCatalog/ListSkus"
    before = emulator.faults.calls[list_skus]  # the first deploy priced the new service
    result = runner.invoke(app, ["scale", "--max-instances", "3", "--dry-run"])
    assert result.exit_code == 2
    assert "$" not in result.stdout
    assert emulator.faults.calls[list_skus] == before


def test_a_catalog_that_cannot_be_read_leaves_the_plan_whole(failed_service: ClientFactory, emulator: Emulator) -> None:
    emulator.faults.fail("/google.cloud.billing.v1.CloudCatalog/ListSkus", "PERMISSION_DENIED")
    result = runner.invoke(app, ["scale", "--min-instances", "1", "--dry-run"])
    assert result.exit_code == 2
    assert result.stdout.splitlines()[2].startswith("  $ cost: not priced (reading Cloud Run's prices from the Cloud ")
