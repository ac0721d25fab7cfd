"""The run, notification, lease and webhook-inbox methods of the CatalogStore protocol in memory: a
base of `MemoryCatalogStore`. Like the rest of that store, no method awaits: each call is atomic."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from catalog_store.documents import (
    lease_expiry,
    notification_from_document,
    notification_to_document,
    run_from_document,
    run_to_document,
)
from catalog_store.errors import StoreError
from catalog_store.filters import page_size
from catalog_store.inbox import InboxDelivery, InboxEntry, InboxLane, InboxStatus
from catalog_store.memory_inbox import MemoryInbox
from catalog_store.models import Notification, SyncRun


class MemoryRecords:
    """Runs, notifications, leases and the inbox, in dicts; `now` is the store's clock."""

    def __init__(self, now: Callable[[], datetime]) -> None:
        self._records_now = now
        self._runs: dict[str, dict[str, Any]] = {}
        self._notifications: dict[str, tuple[int, dict[str, Any]]] = {}
        self._sequence = itertools.count()
        self._leases: dict[str, tuple[str, datetime]] = {}
        self._inbox = MemoryInbox(now)

    # -- runs ------------------------------------------------------------------------------

    async def save_run(self, run: SyncRun) -> None:
        self._runs[run.id] = run_to_document(run)

    async def get_run(self, run_id: str) -> SyncRun | None:
        doc = self._runs.get(run_id)
        return None if doc is None else run_from_document(doc)

    async def list_runs(self, shop_domain: str, last: int = 10) -> list[SyncRun]:
        count = page_size(last, "last")
        docs = [doc for doc in self._runs.values() if doc["shop_domain"] == shop_domain]
        docs.sort(key=lambda doc: (doc["started_at"], doc["id"]), reverse=True)
        return [run_from_document(doc) for doc in docs[:count]]

    async def delete_runs(self, shop_domain: str) -> int:
        doomed = [run_id for run_id, doc in self._runs.items() if doc["shop_domain"] == shop_domain]
        for run_id in doomed:
            del self._runs[run_id]
        return len(doomed)

    # -- notifications ---------------------------------------------------------------------

    async def add_notification(self, notification: Notification) -> None:
        if notification.id in self._notifications:
            raise StoreError(
                f"notification {notification.id!r} already exists",
                fix="Use save_notification() to replace a stored notification.",
            )
        self._notifications[notification.id] = (next(self._sequence), notification_to_document(notification))

    async def save_notification(self, notification: Notification) -> None:
        stored = self._notifications.get(notification.id)
        sequence = next(self._sequence) if stored is None else stored[0]
        self._notifications[notification.id] = (sequence, notification_to_document(notification))

    async def list_notifications(self, *, first: int = 20, unread_only: bool = False) -> list[Notification]:
        count = page_size(first)
        entries = [e for e in self._notifications.values() if not (unread_only and e[1]["read"])]
        entries.sort(key=lambda e: (e[1]["created_at"], e[0]), reverse=True)
        return [notification_from_document(doc) for _, doc in entries[:count]]

    async def mark_notification_read(self, notification_id: str) -> Notification | None:
        stored = self._notifications.get(notification_id)
        if stored is None:
            return None
        stored[1]["read"] = True
        return notification_from_document(stored[1])

    # -- lease -----------------------------------------------------------------------------

    async def acquire_lease(self, shop_domain: str, owner: str, ttl_seconds: float) -> bool:
        now = self._records_now()
        held = self._leases.get(shop_domain)
        if held is not None and held[0] != owner and held[1] > now:
            return False
        self._leases[shop_domain] = (owner, lease_expiry(now, ttl_seconds))
        return True

    async def renew_lease(self, shop_domain: str, owner: str, ttl_seconds: float) -> bool:
        held = self._leases.get(shop_domain)
        if held is None or held[0] != owner:
            return False
        self._leases[shop_domain] = (owner, lease_expiry(self._records_now(), ttl_seconds))
        return True

    async def release_lease(self, shop_domain: str, owner: str) -> None:
        held = self._leases.get(shop_domain)
        if held is not None and held[0] == owner:
            del self._leases[shop_domain]

    async def lease_owner(self, shop_domain: str) -> str | None:
        held = self._leases.get(shop_domain)
        if held is None or held[1] <= self._records_now():
            return None
        return held[0]

    # -- webhook inbox (catalog_store.memory_inbox) ------------------------------------------

    async def inbox_put(self, delivery: InboxDelivery) -> bool:
        return self._inbox.put(delivery)

    async def inbox_claim(self, lane: InboxLane, owner: str, limit: int, ttl_seconds: float) -> list[InboxEntry]:
        return self._inbox.claim(lane, owner, limit, ttl_seconds)

    async def inbox_renew(self, owner: str, entry_ids: Sequence[str], ttl_seconds: float) -> int:
        return self._inbox.renew(owner, entry_ids, ttl_seconds)

    async def inbox_done(self, owner: str, applied: Sequence[str], failed: Sequence[str] = ()) -> int:
        return self._inbox.done(owner, applied, failed)

    async def inbox_release(self, owner: str, entry_ids: Sequence[str], *, retry_in: float | None = None) -> int:
        return self._inbox.release(owner, entry_ids, retry_in)

    async def inbox_drop_shop(self, shop_domain: str) -> int:
        return self._inbox.drop_shop(shop_domain)

    async def inbox_status(self, shop_domain: str) -> InboxStatus:
        return self._inbox.status(shop_domain)
