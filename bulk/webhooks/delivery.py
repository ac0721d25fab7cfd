"""A verified webhook delivery, what accepting and applying it answer, and the processor's
settings: the vocabulary the HTTP edge and the processor share."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from catalog_store.models import (
    utcnow,
)


class SubmitResult(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"  # this webhook id was accepted before: nothing to do
    QUEUE_FULL = "queue_full"  # answer 503: Shopify delivers it again later
    CLOSED = "closed"  # shutting down: answer 503


class Outcome(StrEnum):
    """What applying one delivery did."""

    APPLIED = "applied"
    UNCHANGED = "unchanged"  # the catalog already held exactly these items
    STALE = "stale"  # the catalog holds newer data for the product (or its tombstone)
    IGNORED = "ignored"  # unknown shop, inactive sync, or an inventory item not in the catalog
    NOT_FOUND = "not_found"  # the product no longer exists in Shopify (its delete webhook follows)
    LIMIT_REACHED = "limit_reached"  # the sync became inactive
    BULK_WOKEN = "bulk_woken"


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    """One verified webhook: its topic, shop, decoded JSON body and Shopify's headers."""

    topic: str
    shop_domain: str
    payload: Mapping[str, Any]
    webhook_id: str | None = None
    triggered_at: datetime | None = None  # X-Shopify-Triggered-At: when the event happened
    received_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True)
class ProcessorSettings:
    workers: int = 4
    queue_size: int = 10_000
    dedupe_size: int = 100_000  # webhook ids remembered in this process
    claim_ttl: float = 86_400.0  # a claimed delivery is not applied again for this long (Shopify retries 4 h)
    max_attempts: int = 3  # per delivery, for retryable failures (store or Shopify unavailable)
    retry_delay: float = 0.5  # doubled after each attempt
    drain_timeout: float = 5.0  # at close, time given to the queued deliveries
    reconcile_interval: float | None = 900.0  # None: no periodic reconciliation
    reconcile_overlap: float = 300.0  # each pass re-reads this much before the previous one (clock skew)

    def __post_init__(self) -> None:
        if self.workers < 1 or self.queue_size < 1 or self.dedupe_size < 1 or self.max_attempts < 1:
            raise ValueError("workers, queue_size, dedupe_size and max_attempts must be at least 1")
        if not self.claim_ttl > 0:
            raise ValueError("claim_ttl must be a positive number of seconds")


@dataclass(frozen=True, slots=True)
class ReconcileResult:
    shop_domain: str
    since: datetime | None  # None: not run (no completed full sync yet, sync inactive or unknown)
    products: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    inventory: int = 0  # variants whose quantity was compared (updated since the pass's start)
    inventory_applied: int = 0  # of those, quantities the catalog did not have
    deleted: int = 0  # products Shopify no longer lists, deleted from the catalog
    cost: float = 0.0  # Admin API cost points the pass spent
