"""The cost of a plan: the always-on floor a month and a million requests, from given prices."""

from __future__ import annotations

import pytest

from doki_cli.deploy.cost import SECONDS_PER_MONTH, Cost, Sizing, priced, revision_floor
from doki_cli.errors import Code, DokiError
from doki_cli.model import LiveService, Routed, RunPrices, RunSettings, ServiceSpec, Target

PRICES = RunPrices(
    currency="USD",
    cpu=0.00002,
    memory=0.000002,
    idle_cpu=0.000001,
    idle_memory=0.000002,
    instance_cpu=0.00001,
    instance_memory=0.000001,
    request=0.0000004,
)


def test_a_revision_keeps_its_own_minimum_or_its_share_of_the_services() -> None:
    assert revision_floor(1, 0, 0) == 1  # a tagged revision at 0% keeps its own
    assert revision_floor(0, 5, 50) == 3  # half of the service's 5, rounded up
    assert revision_floor(4, 5, 50) == 4


def test_an_idle_minimum_instance_costs_the_idle_rates_all_month() -> None:
    one = Sizing(cpu=1, memory_gib=0.5, floor=1, instance_based=False)
    assert one.floor_cost(PRICES) == pytest.approx(SECONDS_PER_MONTH * (0.000001 + 0.5 * 0.000002))
    assert one.million_requests(PRICES) == pytest.approx(1e6 * (0.00002 + 0.5 * 0.000002 + 0.0000004))


def test_instance_based_billing_costs_the_instance_rates_and_no_request_fee() -> None:
    two = Sizing(cpu=2, memory_gib=1, floor=2, instance_based=True)
    assert two.floor_cost(PRICES) == pytest.approx(2 * SECONDS_PER_MONTH * (2 * 0.00001 + 0.000001))
    assert two.million_requests(PRICES) == pytest.approx(1e6 * (2 * 0.00001 + 0.000001))
    lines = Cost("us-central1", Sizing(2, 1, 2, False), two, PRICES).lines()
    assert lines[1] == "$ a million 1-second requests: $42.40 -> $21.00 (instance time, no request fee)"


def test_what_the_catalog_does_not_price_or_a_size_doki_cannot_read_is_said_not_guessed() -> None:
    no_idle = RunPrices(currency="USD", cpu=0.00002, memory=0.000002, request=0.0000004)
    cost = Cost("us-central1", None, Sizing(1, 0.5, 1, False), no_idle)
    assert cost.lines() == ["$ cost: not priced (the catalog prices no idle minimum instances in this region)"]
    assert cost.data()["priced"] is False
    unreadable = Cost("us-central1", None, Sizing(None, 0.5, 0, False), PRICES)
    assert unreadable.lines() == ["$ cost: not priced (the instance's CPU or memory is not a size doki can read)"]


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
    assert cost.lines() == ["$ cost: not priced (the Cloud Billing API is not enabled; enable it)"]
    assert (cost.data()["priced"], cost.data()["problem"]) == (False, "the Cloud Billing API is not enabled; enable it")


def spec(min_instances: int = 0, cpu_idle: bool | None = None) -> ServiceSpec:
    return ServiceSpec(
        image="img",
        port=8080,
        memory="512Mi",
        cpu="1",
        concurrency=80,
        timeout_seconds=300,
        min_instances=min_instances,
        max_instances=10,
        ingress="all",
        service_account=None,
        settings=RunSettings(cpu_idle=cpu_idle),
    )


def live(*, always: bool, min_instances: int = 0) -> LiveService:
    return LiveService(
        name="api",
        spec=spec(min_instances),
        uri="https://api.run.app",
        etag="e",
        generation=1,
        updated=None,
        traffic=(Target(None, 100),),
        routed=(Routed("api-1", 100),),
        annotations={},
        latest_ready="api-1",
        latest_created="api-1",
        ready=True,
        message="",
        cpu_always_allocated=always,
    )


@pytest.mark.parametrize(
    ("live_always", "declared", "billed_by_instance"),
    [
        (None, None, False),  # a new service bills by request, Cloud Run's default
        (None, False, True),  # cpu_idle = false: CPU always allocated
        (True, None, True),  # undeclared: as live
        (True, True, False),  # cpu_idle = true over a live instance-based service
        (False, False, True),
    ],
)
def test_a_plan_prices_the_billing_doki_toml_declares_or_the_live_one(
    live_always: bool | None, declared: bool | None, billed_by_instance: bool
) -> None:
    from doki_cli.deploy.planner import Plan, with_cost

    current = None if live_always is None else live(always=live_always)
    plan = Plan("api", "projects/p/locations/r/services/api", spec(1, declared), current, ())
    cost = with_cost(plan, lambda region: PRICES, "us-central1").cost
    assert cost is not None
    assert cost.after.instance_based is billed_by_instance
    assert cost.after.floor == 1
