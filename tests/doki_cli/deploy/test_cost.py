"""The cost of a plan: the always-on floor a month and a million requests, from given prices."""

from __future__ import annotations

import pytest

from doki_cli.deploy.cost import SECONDS_PER_MONTH, Cost, Sizing, memory_gib, priced
from doki_cli.errors import Code, DokiError
from doki_cli.model import RunPrices

PRICES = RunPrices(
    region="us-central1",
    currency="USD",
    cpu=0.00002,
    memory=0.000002,
    idle_cpu=0.000001,
    idle_memory=0.000002,
    instance_cpu=0.00001,
    instance_memory=0.000001,
    request=0.0000004,
    free_requests=2e6,
)


def test_memory_is_read_as_cloud_run_bills_it() -> None:
    assert (memory_gib("512Mi"), memory_gib("2Gi"), memory_gib("1G")) == (0.5, 2.0, pytest.approx(0.9313, abs=1e-4))


def test_an_idle_minimum_instance_costs_the_idle_rates_all_month() -> None:
    one = Sizing(cpu=1, memory_gib=0.5, floor=1, instance_based=False)
    assert one.floor_cost(PRICES) == pytest.approx(SECONDS_PER_MONTH * (0.000001 + 0.5 * 0.000002))
    assert one.million_requests(PRICES) == pytest.approx(1e6 * (0.00002 + 0.5 * 0.000002 + 0.0000004))


def test_instance_based_billing_costs_the_instance_rates_and_has_no_request_price() -> None:
    two = Sizing(cpu=2, memory_gib=1, floor=2, instance_based=True)
    assert two.floor_cost(PRICES) == pytest.approx(2 * SECONDS_PER_MONTH * (2 * 0.00001 + 0.000001))
    assert two.million_requests(PRICES) is None


def test_the_lines_say_before_and_after() -> None:
    before = Sizing(cpu=1, memory_gib=0.5, floor=0, instance_based=False)
    after = Sizing(cpu=1, memory_gib=0.5, floor=1, instance_based=False)
    assert Cost("us-central1", before, after, PRICES).lines() == [
        "$ always-on floor: $0.00 a month -> $5.26 a month (1 min instance of 1 vCPU and 0.5 GiB, request-based "
        "billing)",
        "$ a million 1-second requests: $21.40",
        "$ Cloud Billing Catalog list prices for us-central1, USD, before the free tier",
    ]


def test_nothing_the_bill_depends_on_changed_is_no_cost_and_reads_no_price() -> None:
    same = Sizing(cpu=1, memory_gib=0.5, floor=0, instance_based=False)

    def no_prices(region: str) -> RunPrices:
        raise AssertionError("prices read for nothing")

    assert priced("us-central1", same, same, no_prices) is None


def test_prices_that_cannot_be_read_leave_the_cost_unpriced_not_the_plan_failed() -> None:
    def unreadable(region: str) -> RunPrices:
        raise DokiError(Code.API_DISABLED, "the Cloud Billing API is not enabled", "enable it")

    cost = priced("us-central1", None, Sizing(1, 0.5, 0, False), unreadable)
    assert cost is not None
    assert cost.lines() == ["$ cost: not priced (the Cloud Billing API is not enabled)"]
    assert cost.data() == {"priced": False, "problem": "the Cloud Billing API is not enabled"}
