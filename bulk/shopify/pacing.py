"""Retry policy and what Shopify's answers say about cost (pure): the throttle status and requested
cost the per-shop scheduler (`bulk.shopify.budget`) paces calls by, and the backoff for errors worth
retrying."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["RetryPolicy", "ThrottleStatus", "requested_cost"]


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
