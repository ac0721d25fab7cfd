"""The webhook inbox's vocabulary, shared by both stores: a verified delivery is put in the inbox
before Shopify gets its 200, so a crash loses none; workers of any process claim entries (with an
expiry, so a killed worker's claims return), apply them and mark them done.

Rules both stores keep (the contract tests in tests/catalog_store/test_inbox.py check them):
- `(shop, X-Shopify-Webhook-Id)` is accepted once for DEDUPE_TTL after it was received (a done
  entry is kept, without its body, for that long); a delivery without an id is always new;
- an entry is claimable when it is pending and its `available_at` has passed: a claim sets it to
  the claim's expiry, a retry to the end of its backoff. A claim takes entries of one shop only,
  oldest first, and every entry is held by at most one claim (a guarded update per entry);
- done and release act only on entries the owner still holds; done counts each entry once in the
  shop's counters (applied, failed, last applied at), which live in the store, so every process
  reports the same figures; dropping a shop forgets its pending entries and its counters.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

DEDUPE_TTL = timedelta(hours=48)  # Shopify retries a delivery for up to 4 h; ids are kept much longer


class InboxLane(StrEnum):
    """Which workers apply an entry: `direct` ones need no Admin API read, `read` ones do, so cheap
    changes never wait behind expensive reads."""

    DIRECT = "direct"
    READ = "read"


@dataclass(frozen=True, slots=True)
class InboxDelivery:
    """A verified delivery as the endpoint puts it: the raw body exactly as signed."""

    shop_domain: str
    topic: str
    webhook_id: str | None
    body: bytes
    triggered_at: datetime | None
    received_at: datetime
    lane: InboxLane


@dataclass(frozen=True, slots=True)
class InboxEntry:
    """A claimed delivery: `id` names it in `inbox_done`/`inbox_release`; `attempts` counts the
    failed attempts before this claim."""

    id: str
    delivery: InboxDelivery
    attempts: int


@dataclass(frozen=True, slots=True)
class InboxStatus:
    """One shop's inbox figures, across every process sharing the store."""

    backlog: int  # pending entries (claimed ones included)
    oldest_received_at: datetime | None
    applied_total: int
    failed_total: int
    last_applied_at: datetime | None


def entry_key(shop_domain: str, webhook_id: str) -> str:
    """The entry id of a delivery with a webhook id: one per (shop, id), the dedupe key."""
    return f"{shop_domain}/{webhook_id}"


def check_claim(limit: int, ttl_seconds: float) -> None:
    if isinstance(limit, bool) or limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit!r}")
    if not ttl_seconds > 0:
        raise ValueError(f"claim ttl must be a number of seconds > 0, got {ttl_seconds!r}")
