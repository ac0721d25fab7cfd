"""One cost-aware scheduler per shop: every Admin API call of this process for a shop (webhook
catch-up reads, bulk-operation polling, reconciliation) waits here for its cost in Shopify's bucket.

Shopify's `extensions.cost.throttleStatus` is the source of truth: each answer resets the model to the
points Shopify says are available, less what our other calls in flight have reserved. A call is sent
once its requested cost (Shopify checks the requested cost, then refunds the difference to the actual
one) fits. Priorities are strict: a waiting call of a higher priority is never overtaken, and
reconciliation also leaves a reserve in the bucket, so webhook catch-up always finds points at once.

`decide` and `observe` are pure (the clock is passed in); `ShopBudget` is the thin asyncio side.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import IntEnum
from typing import Any

from bulk.shopify.pacing import ThrottleStatus, requested_cost

__all__ = ["Budget", "BudgetRegistry", "Decision", "Priority", "Request", "ShopBudget", "Ticket", "available",
           "decide", "observe"]


class Priority(IntEnum):
    """Lower value first."""

    WEBHOOK = 0  # catch-up reads of webhook deliveries: what users see lagging
    BULK_POLL = 1  # the full sync: starting, polling and cancelling its bulk operation (cheap calls)
    RECONCILE = 2  # periodic reconciliation: runs on what the others leave


# Points that must stay available after a call of this priority is sent: reconciliation leaves what
# a webhook batch read costs at most (a 1,000-point query), or half of a smaller bucket.
RESERVE_POINTS: Mapping[Priority, float] = {Priority.WEBHOOK: 0.0, Priority.BULK_POLL: 0.0,
                                            Priority.RECONCILE: 1000.0}


@dataclass(frozen=True, slots=True)
class Budget:
    """The bucket as last known: `points` available at time `at` (our reservations taken off)."""

    maximum: float
    restore_rate: float
    points: float
    at: float


@dataclass(frozen=True, slots=True)
class Request:
    seq: int  # arrival order, among calls of one priority
    priority: Priority
    cost: float  # the requested cost we expect (the last requestedQueryCost of the document)


@dataclass(frozen=True, slots=True)
class Decision:
    """`grant`: the request to send now. Otherwise `wait` seconds (None: until a call in flight answers)."""

    grant: Request | None = None
    wait: float | None = None


def available(budget: Budget, now: float) -> float:
    """Points available at `now`, refilled at the restore rate up to the maximum."""
    return min(budget.maximum, budget.points + max(0.0, now - budget.at) * budget.restore_rate)


def needed(budget: Budget, request: Request) -> float:
    """Points that must be available to send `request` (its cost plus its priority's reserve, at most
    a full bucket: a call costing more than the bucket waits for a full one)."""
    reserve = min(RESERVE_POINTS[request.priority], budget.maximum / 2)
    return min(budget.maximum, min(request.cost, budget.maximum) + reserve)


def decide(budget: Budget | None, waiting: Sequence[Request], in_flight: int, now: float) -> Decision:
    """Which waiting request goes now, or how long the first in line must wait.

    The first in line is the oldest of the highest priority. While nothing is known of the bucket (no
    answer yet), one call goes at a time: its answer tells the bucket."""
    if not waiting:
        return Decision()
    head = min(waiting, key=lambda r: (r.priority, r.seq))
    if budget is None:
        return Decision(grant=head) if in_flight == 0 else Decision()
    deficit = needed(budget, head) - available(budget, now)
    if deficit <= 1e-9:
        return Decision(grant=head)
    return Decision(wait=deficit / budget.restore_rate)


def reserve(budget: Budget | None, request: Request, now: float) -> Budget | None:
    """The budget after sending `request` (its cost taken off until Shopify answers)."""
    if budget is None:
        return None
    return replace(budget, points=available(budget, now) - min(request.cost, budget.maximum), at=now)


def observe(status: ThrottleStatus, others_reserved: float, now: float) -> Budget:
    """The budget Shopify reports, less what our other calls in flight have reserved (they may not
    have reached Shopify yet: counting them again errs on the side of waiting)."""
    return Budget(status.maximum_available, status.restore_rate,
                  status.currently_available - others_reserved, now)


def actual_cost(extensions: Mapping[str, Any] | None) -> float | None:
    """`extensions.cost.actualQueryCost`, if present (None for a throttled call: nothing was spent)."""
    try:
        return float(extensions["cost"]["actualQueryCost"])  # type: ignore[index]
    except (KeyError, TypeError, ValueError):
        return None


# -- the asyncio side ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ticket:
    """A granted call: settle it with Shopify's answer (or None when there was none)."""

    request: Request


class ShopBudget:
    """The scheduler of one shop. `acquire` before a call, `settle` after it, always."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._budget: Budget | None = None
        self._waiting: list[Request] = []
        self._in_flight: dict[int, Request] = {}
        self._seq = itertools.count()
        self._changed = asyncio.Event()
        self.spent: dict[Priority, float] = dict.fromkeys(Priority, 0.0)  # actual cost points, by priority
        self.calls: Counter[Priority] = Counter()
        self.throttled = 0  # THROTTLED answers (the model was wrong: another app, or a cost estimate)

    @property
    def budget(self) -> Budget | None:
        return self._budget

    def available(self) -> float:
        """Points the model expects to be available now (inf before Shopify's first answer)."""
        return float("inf") if self._budget is None else available(self._budget, self._clock())

    def deficit_wait(self, cost: float) -> float:
        """Seconds until `cost` points are available (0 when unknown)."""
        if self._budget is None:
            return 0.0
        return max(0.0, min(cost, self._budget.maximum) - self.available()) / self._budget.restore_rate

    async def acquire(self, priority: Priority, cost: float,
                      sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> Ticket:
        request = Request(next(self._seq), priority, cost)
        self._waiting.append(request)
        granted = False
        try:
            while True:
                decision = decide(self._budget, self._waiting, len(self._in_flight), self._clock())
                if decision.grant is request:
                    granted = True
                    self._waiting.remove(request)
                    self._budget = reserve(self._budget, request, self._clock())
                    self._in_flight[request.seq] = request
                    self._signal()
                    return Ticket(request)
                if decision.grant is not None:
                    self._signal()  # another waiter goes first: let it see that
                    await self._wait_change()
                elif decision.wait is not None and min(self._waiting, key=lambda r: (r.priority, r.seq)) is request:
                    await sleep(decision.wait)
                else:
                    await self._wait_change()
        finally:
            if not granted:
                self._waiting.remove(request)
                self._signal()

    def settle(self, ticket: Ticket, extensions: Mapping[str, Any] | None) -> None:
        """Record Shopify's answer to a granted call (its throttle status and cost)."""
        request = self._in_flight.pop(ticket.request.seq, None)
        if request is None:
            return
        status = ThrottleStatus.from_extensions(extensions)
        if status is not None:
            others = sum(min(r.cost, status.maximum_available) for r in self._in_flight.values())
            self._budget = observe(status, others, self._clock())
        spent = actual_cost(extensions)
        if spent is not None:
            self.spent[request.priority] += spent
            self.calls[request.priority] += 1
        elif requested_cost(extensions) is not None:
            self.throttled += 1
        self._signal()

    def _signal(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _wait_change(self) -> None:
        event = self._changed
        budget = self._budget
        timeout: float | None = None
        if budget is not None:  # a refill may make the head fit: look again then at the latest
            timeout = max(0.01, budget.maximum / budget.restore_rate / 20)
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            pass


class BudgetRegistry:
    """The schedulers of this process, by shop: the full sync and the webhook path get theirs here,
    so both draw on one model of each shop's bucket."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._shops: dict[str, ShopBudget] = {}

    def for_shop(self, shop_domain: str) -> ShopBudget:
        budget = self._shops.get(shop_domain)
        if budget is None:
            budget = self._shops[shop_domain] = ShopBudget(self._clock)
        return budget

    def shops(self) -> dict[str, ShopBudget]:
        return dict(self._shops)
