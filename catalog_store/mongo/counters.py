"""A catalog's counters on MongoDB (`item_count`, `storage_bytes` in its `catalogs` document), kept
exact across processes without locking anyone out.

Every mutation of a catalog's items moves the counters by exactly what landed (`$inc`). A process
that dies between its writes and that `$inc` leaves them wrong. So each mutation first registers
itself in the document (`_moving`: a token, its run id, when) and deregisters in the same update as
its `$inc`; both bump `_version`. A registration left behind is dead once it is older than
`STALE_AFTER`, or when it belongs to the run being swept: that run's own writes are all done when it
sweeps, so one still registered is its previous holder's, which lost the run's lease.

`sweep` heals: only when a dead registration shows that counters may be wrong (a recount costs a
pass over the catalog), it waits until no live mutation is registered (a recount reading items
under a live writer would overwrite that writer's `$inc`), aggregates, and `$set`s the result only
if `_version` did not move meanwhile (otherwise it tries again).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bson import ObjectId
from pymongo.asynchronous.collection import AsyncCollection

log = logging.getLogger(__name__)

Document = dict[str, Any]

STALE_AFTER = timedelta(seconds=60)  # far longer than any one batch's writes take
RECOUNT_WAIT = 10.0  # seconds a recount waits for live mutations before leaving the counters as they are
_RETRY_DELAY = 0.05


@dataclass(slots=True)
class Move:
    """What one mutation changed: added to the counters when it ends."""

    items: int = 0
    storage_bytes: int = 0

    def add(self, *, items: int = 0, storage_bytes: int = 0) -> None:
        self.items += items
        self.storage_bytes += storage_bytes


class Counters:
    """The counters of the catalogs in one database's `catalogs` collection."""

    def __init__(self, catalogs: AsyncCollection[Document], items: AsyncCollection[Document],
                 now: Callable[[], datetime]) -> None:
        self._catalogs = catalogs
        self._items = items
        self._now = now

    @contextlib.asynccontextmanager
    async def moving(self, catalog: str, run_id: str | None = None) -> AsyncIterator[Move]:
        """Register a mutation of `catalog`'s items; the counters move by the yielded `Move` at the end,
        however the block ends (what landed before an error is counted too)."""
        token = ObjectId()
        await self._catalogs.update_one(
            {"_id": catalog},
            {"$push": {"_moving": {"t": token, "run": run_id, "at": self._now()}}, "$inc": {"_version": 1}},
        )
        move = Move()
        try:
            yield move
        finally:
            await self._catalogs.update_one(
                {"_id": catalog},
                {"$inc": {"item_count": move.items, "storage_bytes": move.storage_bytes, "_version": 1},
                 "$pull": {"_moving": {"t": token}}},
            )

    async def heal(self, catalog: str, run_id: str | None = None) -> bool:
        """Recount the counters from the items if a dead mutation may have left them wrong, once no live
        mutation can be overwritten. True when recounted; False when nothing was dead, or mutations
        kept running for `RECOUNT_WAIT` seconds (the dead stay registered: the next sweep heals)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + RECOUNT_WAIT
        while True:
            doc = await self._catalogs.find_one({"_id": catalog}, {"_version": 1, "_moving": 1})
            if doc is None:
                return False
            moving = doc.get("_moving") or []
            live = self._live(moving, run_id)
            if len(live) == len(moving):
                return False  # none dead: `$inc` kept the counters exact
            if not live:
                count, size = await self._aggregate(catalog)
                done = await self._catalogs.update_one(
                    {"_id": catalog, "_version": doc.get("_version")},
                    {"$set": {"item_count": count, "storage_bytes": size, "_moving": []}},
                )
                if done.matched_count == 1:
                    return True
            if loop.time() >= deadline:
                log.info("catalog %s: counters not recounted yet, its items kept changing for %gs", catalog,
                         RECOUNT_WAIT)
                return False
            await asyncio.sleep(_RETRY_DELAY)

    def _live(self, moving: list[Document], run_id: str | None) -> list[Document]:
        oldest_live = self._now() - STALE_AFTER
        return [m for m in moving if not (run_id is not None and m.get("run") == run_id) and m["at"] > oldest_live]

    async def _aggregate(self, catalog: str) -> tuple[int, int]:
        cursor = await self._items.aggregate(
            [{"$match": {"_catalog": catalog}},
             {"$group": {"_id": None, "count": {"$sum": 1}, "size": {"$sum": "$_size"}}}]
        )
        rows = await cursor.to_list()
        return (int(rows[0]["count"]), int(rows[0]["size"])) if rows else (0, 0)
