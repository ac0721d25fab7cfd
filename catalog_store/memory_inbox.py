"""The webhook inbox of the memory store (rules in catalog_store.inbox). Every method runs without
awaiting, so each call is atomic on the event loop."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from catalog_store.inbox import (
    DEDUPE_TTL,
    InboxDelivery,
    InboxEntry,
    InboxLane,
    InboxStatus,
    check_claim,
    entry_key,
)


@dataclass(slots=True)
class _Pending:
    delivery: InboxDelivery
    available_at: datetime
    owner: str | None = None
    attempts: int = 0


@dataclass(slots=True)
class _Counters:
    applied: int = 0
    failed: int = 0
    last_applied_at: datetime | None = None


@dataclass(slots=True)
class MemoryInbox:
    now: Callable[[], datetime]
    _pending: dict[str, _Pending] = field(default_factory=dict)  # insertion order: oldest first
    _seen: dict[str, datetime] = field(default_factory=dict)  # entry key -> forgotten after
    _counters: dict[str, _Counters] = field(default_factory=dict)

    def put(self, delivery: InboxDelivery) -> bool:
        now = self.now()
        if delivery.webhook_id is None:
            key = uuid.uuid4().hex
        else:
            key = entry_key(delivery.shop_domain, delivery.webhook_id)
            forget_at = self._seen.get(key)
            if key in self._pending or (forget_at is not None and forget_at > now):
                return False
            self._seen.pop(key, None)
        self._pending[key] = _Pending(delivery, available_at=now)
        return True

    def claim(self, lane: InboxLane, owner: str, limit: int, ttl_seconds: float) -> list[InboxEntry]:
        check_claim(limit, ttl_seconds)
        now = self.now()
        shop: str | None = None
        claimed: list[InboxEntry] = []
        for key, entry in self._pending.items():
            if entry.delivery.lane is not lane or entry.available_at > now:
                continue
            if shop is None:
                shop = entry.delivery.shop_domain
            elif entry.delivery.shop_domain != shop:
                continue
            entry.owner = owner
            entry.available_at = now + timedelta(seconds=ttl_seconds)
            claimed.append(InboxEntry(key, entry.delivery, entry.attempts))
            if len(claimed) == limit:
                break
        return claimed

    def _held(self, owner: str, ids: Sequence[str]) -> list[str]:
        """The entries still held by `owner` (an expired claim nobody took since still is)."""
        return [key for key in dict.fromkeys(ids) if (e := self._pending.get(key)) is not None and e.owner == owner]

    def renew(self, owner: str, ids: Sequence[str], ttl_seconds: float) -> int:
        check_claim(1, ttl_seconds)
        held = self._held(owner, ids)
        for key in held:
            self._pending[key].available_at = self.now() + timedelta(seconds=ttl_seconds)
        return len(held)

    def done(self, owner: str, applied: Sequence[str], failed: Sequence[str]) -> int:
        now = self.now()
        finished = 0
        for ids, ok in ((applied, True), (failed, False)):
            for key in self._held(owner, ids):
                delivery = self._pending.pop(key).delivery
                shop = delivery.shop_domain
                if delivery.webhook_id is not None:  # remembered for dedupe, without its body
                    self._seen[key] = now + DEDUPE_TTL
                counters = self._counters.setdefault(shop, _Counters())
                if ok:
                    counters.applied += 1
                    counters.last_applied_at = now
                else:
                    counters.failed += 1
                finished += 1
        if len(self._seen) > 100_000:
            self._seen = {k: v for k, v in self._seen.items() if v > now}
        return finished

    def release(self, owner: str, ids: Sequence[str], retry_in: float | None) -> int:
        now = self.now()
        held = self._held(owner, ids)
        for key in held:
            entry = self._pending[key]
            entry.owner = None
            if retry_in is None:
                entry.available_at = now
            else:
                entry.attempts += 1
                entry.available_at = now + timedelta(seconds=retry_in)
        return len(held)

    def drop_shop(self, shop_domain: str) -> int:
        dropped = [key for key, e in self._pending.items() if e.delivery.shop_domain == shop_domain]
        for key in dropped:
            del self._pending[key]
        self._counters.pop(shop_domain, None)
        return len(dropped)

    def status(self, shop_domain: str) -> InboxStatus:
        oldest: datetime | None = None
        backlog = 0
        for entry in self._pending.values():
            if entry.delivery.shop_domain == shop_domain:
                backlog += 1
                received = entry.delivery.received_at
                oldest = received if oldest is None or received < oldest else oldest
        counters = self._counters.get(shop_domain, _Counters())
        return InboxStatus(backlog, oldest, counters.applied, counters.failed, counters.last_applied_at)
