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
    ACCEPTED = "accepted"  # in the store's inbox: applied by a worker of any process, even after a crash
    DUPLICATE = "duplicate"  # this webhook id was accepted before: nothing to do
    UNAVAILABLE = "unavailable"  # the inbox could not store it: answer 503, Shopify delivers it again later
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
    """One verified webhook: its topic, shop, decoded JSON body and Shopify's headers. `body` is the
    raw body as signed (kept in the inbox); None: the payload re-encoded."""

    topic: str
    shop_domain: str
    payload: Mapping[str, Any]
    webhook_id: str | None = None
    triggered_at: datetime | None = None  # X-Shopify-Triggered-At: when the event happened
    received_at: datetime = field(default_factory=utcnow)
    body: bytes | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class ProcessorSettings:
    workers: int = 4  # per process, claiming `direct` entries (complete payloads, deletes); 0: none
    read_workers: int = 2  # per process, claiming `read` entries (Admin API reads) of one shop at a time
    direct_batch: int = 20  # entries of one shop a direct worker claims at once
    read_batch: int = 250  # entries of one shop a read worker claims and applies as one batch
    dedupe_size: int = 100_000  # webhook ids remembered in this process (the store remembers all for 48 h)
    claim_ttl: float = 60.0  # a claim lasts this long unless renewed (every third of it while applying)
    poll_interval: float = 0.5  # between looks at the inbox for other processes' deliveries and expired claims
    max_attempts: int = 3  # per delivery, for retryable failures (store or Shopify unavailable)
    retry_delay: float = 0.5  # doubled after each attempt
    drain_timeout: float = 5.0  # at close, time given to the batches being applied (the rest stays in the inbox)
    reconcile_interval: float | None = 900.0  # None: no periodic reconciliation
    reconcile_overlap: float = 300.0  # each pass re-reads this much before the previous one (clock skew)

    def __post_init__(self) -> None:
        if self.workers < 0 or self.read_workers < 0:
            raise ValueError("workers and read_workers must be at least 0")
        if self.direct_batch < 1 or self.read_batch < 1 or self.dedupe_size < 1 or self.max_attempts < 1:
            raise ValueError("direct_batch, read_batch, dedupe_size and max_attempts must be at least 1")
        if not self.claim_ttl > 0 or not self.poll_interval > 0:
            raise ValueError("claim_ttl and poll_interval must be positive numbers of seconds")


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
