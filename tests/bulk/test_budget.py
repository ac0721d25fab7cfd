"""The per-shop cost scheduler: its decisions (pure, clock passed in) and its asyncio side."""

from __future__ import annotations

import asyncio

import pytest

from bulk.shopify.budget import (
    Budget,
    BudgetRegistry,
    Priority,
    Request,
    ShopBudget,
    available,
    decide,
    observe,
    reserve,
)
from bulk.shopify.pacing import ThrottleStatus

FULL = Budget(maximum=2000, restore_rate=100, points=2000, at=0)


def req(seq: int, priority: Priority = Priority.WEBHOOK, cost: float = 100) -> Request:
    return Request(seq, priority, cost)


def test_nothing_known_one_call_at_a_time():
    assert decide(None, [req(1)], in_flight=0, now=0).grant == req(1)
    assert decide(None, [req(1)], in_flight=1, now=0).grant is None  # the first answer tells the bucket


def test_a_call_that_fits_goes_and_takes_its_cost_until_shopify_answers():
    decision = decide(FULL, [req(1, cost=300)], in_flight=0, now=0)
    assert decision.grant == req(1, cost=300)
    after = reserve(FULL, req(1, cost=300), now=0)
    assert after is not None and available(after, 0) == 1700
    assert available(after, 2) == 1900  # refilled at 100 points a second
    assert available(after, 60) == 2000  # never above the maximum


def test_the_first_in_line_waits_for_the_deficit():
    low = Budget(2000, 100, points=50, at=0)
    decision = decide(low, [req(1, cost=250)], in_flight=0, now=0)
    assert decision.grant is None and decision.wait == pytest.approx(2.0)
    assert decide(low, [req(1, cost=250)], in_flight=0, now=2.0).grant == req(1, cost=250)


def test_webhook_reads_go_before_bulk_polling_before_reconciliation_whatever_the_order():
    waiting = [req(1, Priority.RECONCILE, 10), req(2, Priority.BULK_POLL, 10), req(3, Priority.WEBHOOK, 10),
               req(4, Priority.WEBHOOK, 10)]
    assert decide(FULL, waiting, 0, 0).grant == req(3, Priority.WEBHOOK, 10)  # oldest of the highest priority
    assert decide(FULL, waiting[:2], 0, 0).grant == req(2, Priority.BULK_POLL, 10)


def test_a_cheap_low_priority_call_never_overtakes_a_waiting_webhook_read():
    low = Budget(2000, 100, points=100, at=0)
    decision = decide(low, [req(1, Priority.WEBHOOK, 500), req(2, Priority.BULK_POLL, 2)], 0, 0)
    assert decision.grant is None and decision.wait == pytest.approx(4.0)


def test_reconciliation_leaves_a_webhook_reads_worth_of_points():
    budget = Budget(2000, 100, points=1200, at=0)
    assert decide(budget, [req(1, Priority.RECONCILE, 300)], 0, 0).wait == pytest.approx(1.0)  # 1300 needed
    assert decide(budget, [req(1, Priority.WEBHOOK, 300)], 0, 0).grant is not None
    huge = req(2, Priority.RECONCILE, 5000)  # more than a bucket: waits for a full one, never forever
    assert decide(budget, [huge], 0, 0).wait == pytest.approx(8.0)
    plus = Budget(20_000, 1000, points=1800, at=0)  # a large bucket: the same 1,000 points are kept
    assert decide(plus, [req(1, Priority.RECONCILE, 800)], 0, 0).grant is not None
    small = Budget(100, 10, points=60, at=0)  # a small one: half of it
    assert decide(small, [req(1, Priority.RECONCILE, 20)], 0, 0).wait == pytest.approx(1.0)


def test_shopify_status_is_the_truth_less_our_other_calls_in_flight():
    status = ThrottleStatus(maximum_available=1000, currently_available=400, restore_rate=50)
    budget = observe(status, others_reserved=150, now=10)
    assert (budget.maximum, budget.restore_rate) == (1000, 50)  # a plan's limits are learnt from Shopify
    assert available(budget, 10) == 250
    assert available(budget, 11) == 300


async def test_shop_budget_grants_by_priority_and_learns_from_each_answer():
    now = [0.0]
    budget = ShopBudget(clock=lambda: now[0])
    first = await budget.acquire(Priority.RECONCILE, 10)
    budget.settle(first, _extensions(requested=10, actual=4, available=30, maximum=100, restore=10))
    assert budget.available() == 30
    assert budget.spent[Priority.RECONCILE] == 4 and budget.calls[Priority.RECONCILE] == 1
    order: list[str] = []

    async def call(name: str, priority: Priority, cost: float) -> None:
        ticket = await budget.acquire(priority, cost, sleep=fake_sleep)
        order.append(name)
        budget.settle(ticket, _extensions(requested=cost, actual=cost, available=0, maximum=100, restore=10))

    async def fake_sleep(seconds: float) -> None:  # time passes in steps, so others can act meanwhile
        steps = max(1, round(seconds * 10))
        for _ in range(steps):
            now[0] += seconds / steps
            await asyncio.sleep(0)

    # 30 points: the reconciliation call (needs 20 + a 50-point reserve, half this small bucket) waits; the webhook read goes
    # first even though it asked later, then its answer (0 left) makes the reconciliation wait on.
    reconcile = asyncio.create_task(call("reconcile", Priority.RECONCILE, 20))
    await asyncio.sleep(0)
    webhook = asyncio.create_task(call("webhook", Priority.WEBHOOK, 25))
    await asyncio.wait_for(asyncio.gather(reconcile, webhook), 10)
    assert order == ["webhook", "reconcile"]
    assert now[0] >= 7.0  # 0 points after the webhook read: 70 needed at 10 a second


async def test_a_call_that_gets_no_answer_frees_its_turn():
    budget = ShopBudget(clock=lambda: 0.0)
    ticket = await budget.acquire(Priority.WEBHOOK, 10)
    waiting = asyncio.create_task(budget.acquire(Priority.WEBHOOK, 10))
    await asyncio.sleep(0.01)
    assert not waiting.done()  # nothing known yet: one call at a time
    budget.settle(ticket, None)  # e.g. a network error
    await asyncio.wait_for(waiting, 1)


def test_the_registry_gives_one_scheduler_per_shop():
    registry = BudgetRegistry()
    assert registry.for_shop("a.myshopify.com") is registry.for_shop("a.myshopify.com")
    assert registry.for_shop("a.myshopify.com") is not registry.for_shop("b.myshopify.com")


def _extensions(*, requested: float, actual: float | None, available: float, maximum: float,
                restore: float) -> dict[str, object]:
    return {"cost": {"requestedQueryCost": requested, "actualQueryCost": actual,
                     "throttleStatus": {"maximumAvailable": maximum, "currentlyAvailable": available,
                                        "restoreRate": restore}}}
