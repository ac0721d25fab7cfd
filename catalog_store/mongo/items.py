"""Item writes on MongoDB for MongoCatalogStore: a batch costs a few round trips, never one per item.

A batch: concurrent reads of its stored items (projected to what the planner needs), its tombstones
and the catalogs' counters; the plan of catalog_store.writes; one unordered `bulk_write` of inserts
(new variants) and replacements guarded on the server by the `_rev` the plan read (compare-and-set:
a write that another process overtook since our read is refused by the filter itself, so an older
snapshot can never overwrite a newer item); then one `$inc` of the catalog's counters by exactly what
landed. Every write carries a fresh `_rev` token.

The fast path is one `bulk_write` that reports complete success. Anything else (a concurrent writer
changed, inserted or deleted an item; the unique item-id index refused a SKU another variant just
took) is settled by reading the batch's items again: a write whose token (or a later one of the same
variant) is stored has landed; the rest are planned again on the fresh state (stale, conflict, or
sent again). Each batch that writes is registered with the catalog's counters while it runs
(`catalog_store.mongo.counters`), so that a crash between a batch and its `$inc`, healed by
`sweep`'s recount, is detected, and that recount never overwrites a live writer's `$inc`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
from bson import ObjectId
from pymongo import InsertOne, ReplaceOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from catalog_store.errors import ConcurrentWriteConflict, StoreError, UnknownCatalog
from catalog_store.items import CatalogItem, document_size
from catalog_store.models import WriteResult
from catalog_store.mongo.counters import Counters
from catalog_store.search_text import item_grams
from catalog_store.writes import (
    PlannedWrite,
    PreparedItem,
    StoredState,
    WritePlan,
    ended_tombstones,
    item_digest,
    plan_writes,
)

Document = dict[str, Any]
WriteOp = InsertOne[Document] | ReplaceOne[Document]

DUPLICATE_KEY = 11000
MAX_SETTLE_ROUNDS = 50
# Keys per `$in` read. Several small reads run concurrently: on MongoDB they cost about what one
# large one does, and some servers (SecantusDB among them) answer a large `$in` in quadratic time.
IN_CHUNK = 100
_STATE_FIELDS = {
    "_id": 1,
    "id": 1,
    "shopify_variant_id": 1,
    "shopify_product_id": 1,
    "_updated_at": 1,
    "_size": 1,
    "_run_id": 1,
    "_rev": 1,
    "_digest": 1,
    "_price": 1,
    "inventory_quantity": 1,
    "_inventory_at": 1,
    "_alerts": 1,
}


def item_key(catalog: str, member_id: str) -> str:
    """`_id` of a catalog's item (by variant id) or tombstone (by product id)."""
    return f"{catalog}/{member_id}"


def in_chunks(values: Iterable[Any], size: int = IN_CHUNK) -> list[list[Any]]:
    """`values` in lists of at most `size`, for `$in` filters."""
    listed = list(values)
    return [listed[start : start + size] for start in range(0, len(listed), size)]


@dataclass(slots=True)
class Snapshot:
    """Stored items of a batch's variants and of its item ids, as read."""

    states: dict[str, StoredState]  # by variant id
    holders: dict[str, str]  # item id -> variant id


@dataclass(frozen=True, slots=True)
class LandedWrite:
    """A write that landed with alert intents (`_alerts` of its document): its variant and token."""

    variant_id: str
    token: ObjectId
    intents: list[Document]


# The alert intents a write's document carries (None: none), given the write and its token.
IntentFor = Callable[[PlannedWrite, ObjectId], list[Document] | None]


@dataclass(slots=True)
class _Op:
    write: PlannedWrite
    token: ObjectId
    expected_rev: Any  # the `_rev` the replaced document must still have (None: insert)
    intents: list[Document] | None = None  # the `_alerts` sent with it


class ItemWriter:
    """Item writes of one database's `items`, `tombstones` and `catalogs` collections."""

    def __init__(self, db: AsyncDatabase[Document], now: Callable[[], datetime]) -> None:
        self._now = now
        self._items = db["items"]
        self._tombstones_coll = db["tombstones"]
        self._catalogs = db["catalogs"]
        self.counters = Counters(self._catalogs, self._items, now)

    async def write(
        self, catalog: str, prepared: list[PreparedItem], run_id: str | None, limit_bytes: int | None,
        listed_after: datetime | None = None,
        landed: list[LandedWrite] | None = None,
        intent: IntentFor | None = None,
    ) -> WriteResult:
        """Write a batch. With `intent`, each document carries the alert intents it returns (written
        with the item, atomically), and the writes that surely landed with some are added to `landed`."""
        snapshot, tombstones, catalogs = await asyncio.gather(
            self.snapshot(catalog, prepared, holders=False),
            self.tombstones(catalog, {p.item.shopify_product_id for p in prepared}, listed_after),
            self._catalogs.find({}, {"storage_bytes": 1}).to_list(),
        )
        if not any(doc["_id"] == catalog for doc in catalogs):
            raise UnknownCatalog(f"catalog {catalog!r} does not exist")
        total_bytes = sum(doc.get("storage_bytes", 0) for doc in catalogs)
        now = self._now()

        def plan_on(state: Snapshot) -> WritePlan:
            return plan_writes(prepared, stored=state.states.get, holder=state.holders.get, tombstones=tombstones,
                               run_id=run_id, total_bytes=total_bytes, limit_bytes=limit_bytes, now=now)

        plan = plan_on(snapshot)
        if plan.conflicts or plan.limit_reached:
            # Decided on a partial view (a refused write frees no id and takes no space): re-plan on all
            # holders. Otherwise the unique id index refuses what the partial view allowed, and the
            # write is settled like any other refused one.
            plan = plan_on(await self.snapshot(catalog, prepared))
        result = WriteResult(
            stale=plan.stale,
            conflicts=list(plan.conflicts),
            limit_reached=plan.limit_reached,
            written_upto=plan.written_upto,
        )
        applied: list[_Op] = []
        unchanged = list(plan.unchanged)
        try:
            if plan.writes:
                async with self.counters.moving(catalog, run_id) as move:
                    try:
                        await self._settle(catalog, _ops(plan.writes), tombstones, run_id, applied, unchanged, result,
                                          intent)
                    finally:
                        move.add(items=sum(1 for op in applied if op.write.previous is None),
                                 storage_bytes=_bytes_delta(applied))
            if run_id is not None:
                await self.mark_seen(catalog, [w.state.variant_id for w in unchanged if w.state.run_id != run_id],
                                     run_id)
        finally:
            if landed is not None:
                landed.extend(LandedWrite(op.write.state.variant_id, op.token, op.intents)
                              for op in applied if op.intents)
            result.written = len(applied) + len(unchanged)
            result.bytes_delta = _bytes_delta(applied)
        return result

    async def _settle(
        self,
        catalog: str,
        pending: list[_Op],
        tombstones: dict[str, datetime],
        run_id: str | None,
        applied: list[_Op],
        unchanged: list[PlannedWrite],
        result: WriteResult,
        intent: IntentFor | None = None,
    ) -> None:
        """Send the writes until each one has landed or was refused on fresh state."""
        for _ in range(MAX_SETTLE_ROUNDS):
            if not pending:
                return
            if await self._send(catalog, pending, run_id, self._now(), intent):
                applied.extend(pending)
                return
            fresh = await self.snapshot(catalog, [op.write.prepared for op in pending])
            landed, unsettled = _sort_out(pending, fresh)
            applied.extend(landed)
            replan = plan_writes(
                [op.write.prepared for op in unsettled],
                stored=fresh.states.get,
                holder=fresh.holders.get,
                tombstones=tombstones,
                run_id=run_id,
                now=self._now(),
            )
            result.stale += replan.stale
            result.conflicts.extend(replan.conflicts)
            unchanged.extend(replan.unchanged)
            pending = _ops(replan.writes)
        if pending:
            raise ConcurrentWriteConflict(
                f"{len(pending)} item writes to {catalog!r} kept colliding with concurrent writes; the others landed"
            )

    async def _send(self, catalog: str, ops: list[_Op], run_id: str | None, written_at: datetime,
                    intent: IntentFor | None = None) -> bool:
        """Send the writes, a variant's successive writes in successive rounds. True when every
        write surely landed; False when any may not have (then the caller settles them by token)."""
        rounds: list[list[_Op]] = []
        occurrences: dict[str, int] = {}
        for op in ops:
            variant_id = op.write.state.variant_id
            n = occurrences.get(variant_id, 0)
            occurrences[variant_id] = n + 1
            if n == len(rounds):
                rounds.append([])
            rounds[n].append(op)
        for round_ops in rounds:
            requests: list[WriteOp] = []
            replacements = 0
            for op in round_ops:
                document = op.write.prepared.document
                assert document is not None  # prepared with documents
                doc = {
                    **document,
                    "_id": item_key(catalog, op.write.state.variant_id),
                    "_run_id": run_id,
                    "_written_at": written_at,
                    "_size": op.write.state.size,
                    "_rev": op.token,
                    "_digest": op.write.prepared.digest,
                    "_grams": item_grams(op.write.prepared.item),
                }
                if intent is not None:
                    op.intents = intent(op.write, op.token)
                    if op.intents:
                        doc["_alerts"] = op.intents
                if op.write.previous is None:
                    requests.append(InsertOne(doc))
                else:
                    requests.append(ReplaceOne({"_id": doc["_id"], "_rev": op.expected_rev}, doc))
                    replacements += 1
            if not await self._bulk(requests, replacements):
                return False
        return True

    async def _bulk(self, requests: list[WriteOp], replacements: int) -> bool:
        """One unordered bulk write (PyMongo splits it by the server's batch limits). True when each
        insert landed and each guarded replacement matched; duplicate keys (a variant or item id a
        concurrent writer took) make it False, any other write error is raised."""
        try:
            outcome = await self._items.bulk_write(requests, ordered=False)
        except BulkWriteError as exc:
            details = exc.details
            for error in details.get("writeErrors", []):
                if error.get("code") != DUPLICATE_KEY:
                    raise StoreError(f"MongoDB refused an item write: {error.get('errmsg', error)}") from None
            if details.get("writeConcernErrors"):
                raise StoreError(f"MongoDB write concern failed: {details['writeConcernErrors'][0]}") from None
            return False
        return outcome.matched_count == replacements

    async def snapshot(self, catalog: str, prepared: Iterable[PreparedItem], *, holders: bool = True) -> Snapshot:
        """The stored state of the batch's variants and (with `holders`) of the variants holding its
        item ids. Without `holders`, only the variants' own items are read: in variant-id catalogs an
        item id is its variant's, and in SKU catalogs a write the plan then allows although another
        variant holds the id is refused by the unique id index and settled on a full snapshot."""
        keys: set[str] = set()
        ids: set[str] = set()
        for entry in prepared:
            keys.add(item_key(catalog, entry.item.shopify_variant_id))
            ids.add(entry.item.id)
        snapshot = Snapshot({}, {})
        if not keys:
            return snapshot
        queries: list[Document] = [{"_id": {"$in": chunk}} for chunk in in_chunks(keys)]
        if holders:
            queries += [{"_catalog": catalog, "id": {"$in": chunk}} for chunk in in_chunks(ids)]
        found = await asyncio.gather(*(self._items.find(query, _STATE_FIELDS).to_list() for query in queries))
        for docs in found:
            for doc in docs:
                state = StoredState(
                    variant_id=doc["shopify_variant_id"],
                    item_id=doc["id"],
                    product_id=doc["shopify_product_id"],
                    updated_at=doc["_updated_at"],
                    size=doc["_size"],
                    run_id=doc.get("_run_id"),
                    rev=doc["_rev"],
                    digest=doc.get("_digest"),
                    inventory_quantity=doc.get("inventory_quantity"),
                    inventory_at=doc.get("_inventory_at") or doc["_updated_at"],
                    price=doc.get("_price"),
                    alerts=doc.get("_alerts"),
                )
                snapshot.states[state.variant_id] = state
                snapshot.holders[state.item_id] = state.variant_id
        return snapshot

    async def tombstones(
        self, catalog: str, product_ids: set[str], listed_after: datetime | None = None
    ) -> dict[str, datetime]:
        """The products' tombstones (product id → deleted_at), without those a read started after
        `listed_after` ends: those are removed, each only while not recorded again since."""
        keys = [item_key(catalog, p) for p in product_ids]
        found = await asyncio.gather(
            *(self._tombstones_coll.find({"_id": {"$in": chunk}}).to_list() for chunk in in_chunks(keys))
        )
        docs = [doc for chunk in found for doc in chunk]
        # a tombstone written before recorded_at was kept has only its deletion time to go by
        recorded = {doc["product_id"]: doc["recorded_at"] if "recorded_at" in doc else doc["deleted_at"] for doc in docs}
        ended = set(ended_tombstones(recorded, listed_after))
        if ended:
            assert listed_after is not None
            guard = {"$or": [{"recorded_at": {"$lt": listed_after}},
                             {"recorded_at": {"$exists": False}, "deleted_at": {"$lt": listed_after}}]}
            await asyncio.gather(*(self._tombstones_coll.delete_many({"_id": {"$in": chunk}, **guard})
                                   for chunk in in_chunks([item_key(catalog, p) for p in ended])))
        return {doc["product_id"]: doc["deleted_at"] for doc in docs if doc["product_id"] not in ended}

    async def mark_seen(self, catalog: str, variant_ids: Sequence[str], run_id: str) -> None:
        keys = [item_key(catalog, v) for v in dict.fromkeys(variant_ids)]
        await asyncio.gather(
            *(self._items.update_many({"_id": {"$in": chunk}}, {"$set": {"_run_id": run_id}})
              for chunk in in_chunks(keys))
        )

    async def set_variant_image(self, catalog: str, variant_id: str, url: str) -> bool:
        items = self._items
        key = item_key(catalog, variant_id)
        for _ in range(MAX_SETTLE_ROUNDS):
            doc = await items.find_one({"_id": key})
            if doc is None or doc.get("variant_image_url") is not None:
                return False
            item = msgspec.structs.replace(CatalogItem.from_document(doc), variant_image_url=url)
            size = document_size(item.to_document(catalog))
            async with self.counters.moving(catalog) as move:
                changed = await items.update_one(
                    {"_id": key, "_rev": doc["_rev"]},
                    {"$set": {"variant_image_url": url, "_size": size, "_rev": ObjectId(), "_digest": item_digest(item)}},
                )
                if changed.matched_count == 1:
                    move.add(storage_bytes=size - doc["_size"])
            if changed.matched_count == 1:
                return True
        raise ConcurrentWriteConflict(f"the item of variant {variant_id} kept changing while setting its image")

    async def delete(self, catalog: str, query: Document, guard: Document, *, rounds: int = 5) -> int:
        """Delete the items matching `query`, each only while unchanged since it was read (its
        `_rev`, plus `guard`), and move the counters by exactly what this call deleted: each delete
        is its own command, so one that finds the item changed (read again next round) or already
        deleted by another process (who counted it) is known."""
        deleted = 0
        for _ in range(rounds):
            docs = await self._items.find(query, {"_id": 1, "_rev": 1, "_size": 1}).to_list()
            if not docs:
                break
            gone: list[Document] = []
            async with self.counters.moving(catalog) as move:
                try:
                    for chunk in in_chunks(docs):
                        outcomes = await asyncio.gather(
                            *(self._items.delete_one({"_id": d["_id"], "_rev": d["_rev"], **guard}) for d in chunk)
                        )
                        gone.extend(d for d, outcome in zip(chunk, outcomes) if outcome.deleted_count == 1)
                finally:
                    move.add(items=-len(gone), storage_bytes=-sum(d["_size"] for d in gone))
            deleted += len(gone)
        return deleted


def _bytes_delta(applied: Sequence[_Op]) -> int:
    return sum(op.write.state.size - _size(op.write.previous) for op in applied)


def _size(state: StoredState | None) -> int:
    return 0 if state is None else state.size


def _ops(writes: Sequence[PlannedWrite]) -> list[_Op]:
    """Writes to send, each replacing the revision its predecessor (stored or in this batch) left."""
    revisions: dict[str, Any] = {}
    ops: list[_Op] = []
    for write in writes:
        variant_id = write.state.variant_id
        if variant_id in revisions:
            expected = revisions[variant_id]
        else:
            expected = None if write.previous is None else write.previous.rev
        token = ObjectId()
        revisions[variant_id] = token
        ops.append(_Op(write, token, expected))
    return ops


def _sort_out(pending: list[_Op], fresh: Snapshot) -> tuple[list[_Op], list[_Op]]:
    """Split sent writes into those that landed (their token, or a later one of the same variant
    from this batch, is stored) and those that did not."""
    by_variant: dict[str, list[_Op]] = {}
    for op in pending:
        by_variant.setdefault(op.write.state.variant_id, []).append(op)
    landed: set[int] = set()
    for variant_id, ops in by_variant.items():
        state = fresh.states.get(variant_id)
        if state is None:
            continue
        for position, op in enumerate(ops):
            if op.token == state.rev:
                landed.update(id(o) for o in ops[: position + 1])
    return [op for op in pending if id(op) in landed], [op for op in pending if id(op) not in landed]
