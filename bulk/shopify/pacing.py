"""Retry policy and cost pacing (pure): the model of Shopify's cost bucket that lets calls wait for
capacity instead of being throttled, and the backoff for errors worth retrying."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["CostBucket", "RetryPolicy", "ThrottleStatus", "requested_cost"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounds of the client's retries.

    `max_attempts`: requests per call when they fail with 5xx or a network error (1 = no retry);
    the n-th retry waits uniform(0, min(max_delay, base_delay * 2**(n-1))) ("full jitter").
    `max_throttled_attempts`: requests per call while Shopify answers THROTTLED; each wait is at
    least `min_throttle_delay` (1 s, Shopify's advice) or the computed cost deficit.
    """

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_throttled_attempts: int = 20
    min_throttle_delay: float = 1.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.max_throttled_attempts < 1:
            raise ValueError("max_attempts and max_throttled_attempts must be >= 1")
        if min(self.base_delay, self.max_delay, self.min_throttle_delay) < 0:
            raise ValueError("delays must be >= 0")

    def backoff(self, retry: int, rand: Callable[[], float] = random.random) -> float:
        """Delay before retry number `retry` (1-based) after a 5xx or network error."""
        return float(rand() * min(self.max_delay, self.base_delay * 2 ** (retry - 1)))


@dataclass(frozen=True, slots=True)
class ThrottleStatus:
    """`extensions.cost.throttleStatus` of a response."""

    maximum_available: float
    currently_available: float
    restore_rate: float

    @classmethod
    def from_extensions(cls, extensions: Mapping[str, Any] | None) -> ThrottleStatus | None:
        try:
            raw = extensions["cost"]["throttleStatus"]  # type: ignore[index]
            status = cls(float(raw["maximumAvailable"]), float(raw["currentlyAvailable"]),
                         float(raw["restoreRate"]))
        except (KeyError, TypeError, ValueError):
            return None
        return status if status.restore_rate > 0 else None


def requested_cost(extensions: Mapping[str, Any] | None) -> float | None:
    """`extensions.cost.requestedQueryCost`, if present."""
    try:
        return float(extensions["cost"]["requestedQueryCost"])  # type: ignore[index]
    except (KeyError, TypeError, ValueError):
        return None


class CostBucket:
    """Local model of Shopify's leaky bucket for one app and shop.

    `observe` records a response's throttle status; `reserve(cost, now)` takes `cost` points and
    returns how long to wait before sending so the bucket holds them (0 when unknown or enough).
    Reservations go negative so concurrent callers queue up instead of all waiting the same time.
    """

    def __init__(self) -> None:
        self._status: ThrottleStatus | None = None
        self._available = 0.0
        self._at = 0.0

    def observe(self, status: ThrottleStatus, now: float) -> None:
        self._status = status
        self._available = status.currently_available
        self._at = now

    def available(self, now: float) -> float:
        if self._status is None:
            return float("inf")
        refilled = self._available + max(0.0, now - self._at) * self._status.restore_rate
        return min(self._status.maximum_available, refilled)

    def reserve(self, cost: float, now: float) -> float:
        if self._status is None:
            return 0.0
        cost = min(cost, self._status.maximum_available)
        self._available = self.available(now) - cost
        self._at = now
        return max(0.0, -self._available) / self._status.restore_rate

    def deficit_wait(self, cost: float) -> float:
        """Seconds until `cost` points are available, from the last observation."""
        if self._status is None:
            return 0.0
        cost = min(cost, self._status.maximum_available)
        return max(0.0, cost - self._available) / self._status.restore_rate
