"""The run, notification, lease and webhook-inbox methods of the CatalogStore protocol on MongoDB:
a base of `MongoCatalogStore`, whose collections (`_coll`), clock (`_now`) and inbox they use."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo import DESCENDING, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

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
from catalog_store.models import Notification, SyncRun
from catalog_store.mongo.inbox import MongoInbox
from catalog_store.mongo.translate import translated as _translated

Document = dict[str, Any]


class MongoRecords:
    """Runs, notifications, leases and the inbox of a MongoDB store."""

    _inbox_impl: MongoInbox | None  # set by the store's start()

    def _coll(self, name: str) -> AsyncCollection[Document]:
        raise NotImplementedError  # the store's

    def _now(self) -> datetime:
        raise NotImplementedError  # the store's

    # -- runs ------------------------------------------------------------------------------

    @_translated
    async def save_run(self, run: SyncRun) -> None:
        doc = run_to_document(run)
        await self._coll("runs").replace_one({"_id": doc["_id"]}, doc, upsert=True)

    @_translated
    async def get_run(self, run_id: str) -> SyncRun | None:
        doc = await self._coll("runs").find_one({"_id": run_id})
        return None if doc is None else run_from_document(doc)

    @_translated
    async def list_runs(self, shop_domain: str, last: int = 10) -> list[SyncRun]:
        count = page_size(last, "last")
        if count == 0:
            return []
        docs = (
            await self._coll("runs")
            .find({"shop_domain": shop_domain})
            .sort([("started_at", DESCENDING), ("_id", DESCENDING)])
            .limit(count)
            .to_list()
        )
        return [run_from_document(doc) for doc in docs]

    @_translated
    async def delete_runs(self, shop_domain: str) -> int:
        return (await self._coll("runs").delete_many({"shop_domain": shop_domain})).deleted_count

    # -- notifications ---------------------------------------------------------------------

    @_translated
    async def add_notification(self, notification: Notification) -> None:
        doc = {**notification_to_document(notification), "_seq": ObjectId()}
        try:
            await self._coll("notifications").insert_one(doc)
        except DuplicateKeyError:
            raise StoreError(
                f"notification {notification.id!r} already exists",
                fix="Use save_notification() to replace a stored notification.",
            ) from None

    @_translated
    async def save_notification(self, notification: Notification) -> None:
        doc = notification_to_document(notification)
        del doc["_id"]
        await self._coll("notifications").update_one(
            {"_id": notification.id}, {"$set": doc, "$setOnInsert": {"_seq": ObjectId()}}, upsert=True
        )

    @_translated
    async def list_notifications(self, *, first: int = 20, unread_only: bool = False) -> list[Notification]:
        count = page_size(first)
        if count == 0:
            return []
        query: Document = {"read": False} if unread_only else {}
        docs = (
            await self._coll("notifications")
            .find(query)
            .sort([("created_at", DESCENDING), ("_seq", DESCENDING)])
            .limit(count)
            .to_list()
        )
        return [notification_from_document(doc) for doc in docs]

    @_translated
    async def mark_notification_read(self, notification_id: str) -> Notification | None:
        doc = await self._coll("notifications").find_one_and_update(
            {"_id": notification_id}, {"$set": {"read": True}}, return_document=ReturnDocument.AFTER
        )
        return None if doc is None else notification_from_document(doc)

    # -- lease -----------------------------------------------------------------------------
    # One document per lease name (`_id`). Taking a free or expired lease, or extending our own, is one
    # guarded upsert: the filter matches only a lease we may take; when it matches nothing because
    # another owner holds it, the upsert's insert collides with the existing `_id` and we lose. Among
    # contenders exactly one update or insert succeeds.

    async def _claim(self, shop_domain: str, owner: str, ttl_seconds: float, *, renewing: bool) -> bool:
        now = self._now()
        expires_at = lease_expiry(now, ttl_seconds)
        ours = {"owner": owner}
        takeable = ours if renewing else {"$or": [ours, {"expires_at": {"$lte": now}}]}
        try:
            result = await self._coll("leases").update_one(
                {"_id": shop_domain, **takeable},
                {"$set": {"owner": owner, "expires_at": expires_at}},
                upsert=not renewing,
            )
        except DuplicateKeyError:  # held by another owner
            return False
        return result.matched_count == 1 or result.upserted_id is not None

    @_translated
    async def acquire_lease(self, shop_domain: str, owner: str, ttl_seconds: float) -> bool:
        return await self._claim(shop_domain, owner, ttl_seconds, renewing=False)

    @_translated
    async def renew_lease(self, shop_domain: str, owner: str, ttl_seconds: float) -> bool:
        return await self._claim(shop_domain, owner, ttl_seconds, renewing=True)

    @_translated
    async def release_lease(self, shop_domain: str, owner: str) -> None:
        await self._coll("leases").delete_one({"_id": shop_domain, "owner": owner})

    @_translated
    async def lease_owner(self, shop_domain: str) -> str | None:
        current = await self._coll("leases").find_one({"_id": shop_domain})
        if current is None or current["expires_at"] <= self._now():
            return None
        return str(current["owner"])

    # -- webhook inbox (catalog_store.mongo.inbox) -------------------------------------------

    @property
    def _inbox(self) -> MongoInbox:
        if self._inbox_impl is None:
            raise StoreError("the MongoDB store is not started", fix="Call and await start() first.")
        return self._inbox_impl

    @_translated
    async def inbox_put(self, delivery: InboxDelivery) -> bool:
        return await self._inbox.put(delivery)

    @_translated
    async def inbox_claim(self, lane: InboxLane, owner: str, limit: int, ttl_seconds: float) -> list[InboxEntry]:
        return await self._inbox.claim(lane, owner, limit, ttl_seconds)

    @_translated
    async def inbox_renew(self, owner: str, entry_ids: Sequence[str], ttl_seconds: float) -> int:
        return await self._inbox.renew(owner, entry_ids, ttl_seconds)

    @_translated
    async def inbox_done(self, owner: str, applied: Sequence[str], failed: Sequence[str] = ()) -> int:
        return await self._inbox.done(owner, applied, failed)

    @_translated
    async def inbox_release(self, owner: str, entry_ids: Sequence[str], *, retry_in: float | None = None) -> int:
        return await self._inbox.release(owner, entry_ids, retry_in)

    @_translated
    async def inbox_drop_shop(self, shop_domain: str) -> int:
        return await self._inbox.drop_shop(shop_domain)

    @_translated
    async def inbox_status(self, shop_domain: str) -> InboxStatus:
        return await self._inbox.status(shop_domain)
