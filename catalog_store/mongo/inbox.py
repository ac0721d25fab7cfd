"""The webhook inbox on MongoDB (rules in catalog_store.inbox; indexes in catalog_store.mongo.indexes).

Collections:
- `inbox`: one document per delivery, `_id` = "<shop>/<webhook id>" (a random id without one), so
  the insert itself is the dedupe: a second delivery of an id collides with the first. A done entry
  loses its body and gets `expires_at` (48 h): the TTL index forgets it then. Pending entries have no
  `expires_at`, so the TTL monitor never touches them.
- `inbox_counters`: one per shop (`_id`), the outcome counters every process reports. `done` marks
  its entries with a fresh tally token, then adds the tally to the counters; the counters remember
  the tokens they added, so a tally is counted once, also when a process killed in between leaves it
  to the next `status` of the shop (which settles tallies left uncounted for a few seconds).

Durability: `inbox_put` returns once the server acknowledged the insert with the client's write
concern (the URI's `w`, else the server default: `w:1` on a standalone). A replica set must have the
entry on a majority before Shopify is told 200 (else a failover can roll it back), so on a replica set
or a sharded cluster whose URI sets no `w`, the inbox writes with `w:"majority"`.

A claim is three round trips: the oldest claimable entry names the shop; up to `limit` claimable
entries of that shop are selected; one `update_many` guarded by "still claimable" takes them with a
fresh claim token, and the entries carrying that token are the ones won. Concurrent claimers can
each win a part of the selection, never the same entry.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from bson import Binary
from pymongo import ASCENDING, WriteConcern
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from catalog_store.inbox import (
    DEDUPE_TTL,
    InboxDelivery,
    InboxEntry,
    InboxLane,
    InboxStatus,
    check_claim,
    entry_key,
)

Document = dict[str, Any]

PENDING, DONE = "pending", "done"
APPLIED, FAILED = "applied", "failed"
TALLIES_KEPT = 1000  # tally tokens each shop's counters remember (a tally is settled within seconds)
SETTLE_AFTER = timedelta(seconds=5)  # a done, uncounted tally this old was left by a killed process

async def inbox_write_concern(db: AsyncDatabase[Document]) -> WriteConcern | None:
    """`w:"majority"` for a replica set or sharded cluster whose URI sets no `w`; None (the client's
    own) otherwise."""
    if "w" in db.client.write_concern.document:
        return None
    hello: Document = await db.command("hello")
    if hello.get("setName") or hello.get("msg") == "isdbgrid":
        return WriteConcern("majority")
    return None


def _delivery(doc: Document) -> InboxDelivery:
    return InboxDelivery(shop_domain=doc["shop"], topic=doc["topic"], webhook_id=doc.get("webhook_id"),
                         body=bytes(doc["body"]), triggered_at=doc.get("triggered_at"),
                         received_at=doc["received_at"], lane=InboxLane(doc["lane"]))


class MongoInbox:
    def __init__(self, db: AsyncDatabase[Document], now: Callable[[], datetime],
                 write_concern: WriteConcern | None = None) -> None:
        self._entries: AsyncCollection[Document] = db.get_collection("inbox", write_concern=write_concern)
        self._counters: AsyncCollection[Document] = db.get_collection("inbox_counters", write_concern=write_concern)
        self._now = now

    async def put(self, delivery: InboxDelivery) -> bool:
        now = self._now()
        key = uuid.uuid4().hex if delivery.webhook_id is None else entry_key(delivery.shop_domain, delivery.webhook_id)
        doc: Document = {
            "_id": key, "shop": delivery.shop_domain, "topic": delivery.topic, "webhook_id": delivery.webhook_id,
            "body": Binary(delivery.body), "triggered_at": delivery.triggered_at,
            "received_at": delivery.received_at, "lane": str(delivery.lane), "state": PENDING,
            "available_at": now, "owner": None, "attempts": 0,
        }
        try:
            await self._entries.insert_one(doc)
        except DuplicateKeyError:
            # Kept while pending and for DEDUPE_TTL once done; a done entry past it that the TTL
            # monitor has not removed yet (it runs once a minute) is replaced by this delivery.
            result = await self._entries.replace_one(
                {"_id": key, "state": DONE, "expires_at": {"$lte": now}}, doc)
            return result.modified_count == 1
        return True

    async def claim(self, lane: InboxLane, owner: str, limit: int, ttl_seconds: float) -> list[InboxEntry]:
        check_claim(limit, ttl_seconds)
        now = self._now()
        claimable: Document = {"state": PENDING, "lane": str(lane), "available_at": {"$lte": now}}
        first = await self._entries.find_one(claimable, {"shop": 1}, sort=[("received_at", ASCENDING)])
        if first is None:
            return []
        of_shop = {**claimable, "shop": first["shop"]}
        ids = [d["_id"] async for d in self._entries.find(of_shop, {"_id": 1}).sort(
            [("received_at", ASCENDING), ("_id", ASCENDING)]).limit(limit)]
        token = uuid.uuid4().hex
        await self._entries.update_many(
            {"_id": {"$in": ids}, "state": PENDING, "available_at": {"$lte": now}},
            {"$set": {"owner": owner, "claim": token, "available_at": now + timedelta(seconds=ttl_seconds)}})
        won = [d async for d in self._entries.find({"_id": {"$in": ids}, "claim": token}).sort(
            [("received_at", ASCENDING), ("_id", ASCENDING)])]
        return [InboxEntry(d["_id"], _delivery(d), int(d.get("attempts", 0))) for d in won]

    async def renew(self, owner: str, ids: Sequence[str], ttl_seconds: float) -> int:
        check_claim(1, ttl_seconds)
        result = await self._entries.update_many(
            {"_id": {"$in": list(dict.fromkeys(ids))}, "state": PENDING, "owner": owner},
            {"$set": {"available_at": self._now() + timedelta(seconds=ttl_seconds)}})
        return result.matched_count

    async def done(self, owner: str, applied: Sequence[str], failed: Sequence[str]) -> int:
        """Marks the entries done under one tally token, then counts the tally (see `_count`)."""
        now = self._now()
        token = uuid.uuid4().hex
        finished = 0
        for ids, outcome in ((applied, APPLIED), (failed, FAILED)):
            if not ids:
                continue
            result = await self._entries.update_many(
                {"_id": {"$in": list(dict.fromkeys(ids))}, "state": PENDING, "owner": owner},
                {"$set": {"state": DONE, "expires_at": now + DEDUPE_TTL, "outcome": outcome, "tally": token,
                          "counted": False, "done_at": now}, "$unset": {"body": ""}})
            finished += result.modified_count
        if finished:
            await self._count(token)
        return finished

    async def _count(self, token: str) -> None:
        """Add a tally's entries to their shops' counters exactly once: the counters document remembers
        the last tokens it added, so a second count of a token (a settling process racing the one that
        marked it) changes nothing."""
        tallies: dict[str, list[Any]] = {}  # shop -> [applied, failed, done at]
        async for doc in self._entries.find({"tally": token, "counted": False},
                                            {"shop": 1, "outcome": 1, "done_at": 1}):
            tally = tallies.setdefault(doc["shop"], [0, 0, doc["done_at"]])
            tally[0 if doc["outcome"] == APPLIED else 1] += 1
        for shop, (applied, failed, done_at) in tallies.items():
            change: Document = {"$inc": {"applied": applied, "failed": failed},
                                "$push": {"tallies": {"$each": [token], "$slice": -TALLIES_KEPT}}}
            if applied:
                change["$max"] = {"last_applied_at": done_at}
            try:
                await self._counters.update_one({"_id": shop, "tallies": {"$ne": token}}, change, upsert=True)
            except DuplicateKeyError:  # counted already
                pass
        await self._entries.update_many({"tally": token, "counted": False}, {"$set": {"counted": True}})

    async def _settle(self, shop_domain: str) -> None:
        """Count the tallies of a process killed between marking entries done and counting them."""
        before = self._now() - SETTLE_AFTER
        for token in await self._entries.distinct("tally", {"shop": shop_domain, "counted": False,
                                                            "done_at": {"$lte": before}}):
            await self._count(str(token))

    async def release(self, owner: str, ids: Sequence[str], retry_in: float | None) -> int:
        now = self._now()
        change: Document = {"$set": {"owner": None, "claim": None, "available_at": now}}
        if retry_in is not None:
            change = {"$set": {"owner": None, "claim": None, "available_at": now + timedelta(seconds=retry_in)},
                      "$inc": {"attempts": 1}}
        result = await self._entries.update_many(
            {"_id": {"$in": list(dict.fromkeys(ids))}, "state": PENDING, "owner": owner}, change)
        return result.modified_count

    async def drop_shop(self, shop_domain: str) -> int:
        result = await self._entries.delete_many({"shop": shop_domain, "state": PENDING})
        await self._entries.update_many({"shop": shop_domain, "counted": False}, {"$set": {"counted": True}})
        await self._counters.delete_one({"_id": shop_domain})
        return result.deleted_count

    async def status(self, shop_domain: str) -> InboxStatus:
        await self._settle(shop_domain)
        pending = {"shop": shop_domain, "state": PENDING}
        backlog = await self._entries.count_documents(pending)
        oldest = None
        if backlog:
            first = await self._entries.find_one(pending, {"received_at": 1}, sort=[("received_at", ASCENDING)])
            oldest = None if first is None else first["received_at"]
        counters = await self._counters.find_one({"_id": shop_domain}) or {}
        return InboxStatus(backlog, oldest, int(counters.get("applied", 0)), int(counters.get("failed", 0)),
                           counters.get("last_applied_at"))
