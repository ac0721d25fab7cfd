"""Item writes on MongoDB for MongoCatalogStore: a batch costs a few round trips, never one per item,
and is settled by write tokens. The FerretDB incompatibilities named (a)-(h) are listed in
catalog_store/mongo.py.

A batch: three concurrent reads (its stored items and id holders, its tombstones, the catalogs), the
plan of catalog_store.writes, then one unordered `insert` of new variants and one unordered `update`
of `_id`-keyed replacements guarded by the `_rev` read (optimistic concurrency), then one `$inc` of the
catalog's counters. Every write carries a fresh `_rev` token. When a command reports anything but
complete success (a concurrent writer changed an item; FerretDB's partial or misindexed error reports,
(b) and (e)), the batch's documents are read again: a write whose token (or a later one of the same
variant) is stored has landed, the others are planned again on the fresh state (stale, conflict, or
sent again). Counters therefore move by what landed; the one blind spot (a landed write overwritten by
another process before its unsettled batch is read again is taken for not landed) and crashes between
a batch and its `$inc` are healed by `sweep`, which recounts the catalog from its items.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
from bson import ObjectId
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure

from catalog_store.errors import ConcurrentWriteConflict, StoreError, UnknownCatalog
from catalog_store.items import CatalogItem, document_size
from catalog_store.models import WriteResult
from catalog_store.writes import PlannedWrite, PreparedItem, StoredState, WritePlan, plan_writes

Document = dict[str, Any]

DUPLICATE_KEY = 11000
MAX_STATEMENTS = 1000  # per command
FERRETDB_MAX_UPDATES = 50  # per `update` command on FerretDB: see MongoCatalogStore's note (j)
MAX_COMMAND_BYTES = 8 * 1024 * 1024  # well under MongoDB's 16 MiB document limit
MAX_SETTLE_ROUNDS = 50
_STATE_FIELDS = {
    "_id": 1,
    "id": 1,
    "shopify_variant_id": 1,
    "shopify_product_id": 1,
    "_updated_at": 1,
    "_size": 1,
    "_run_id": 1,
    "_rev": 1,
}


def item_key(catalog: str, member_id: str) -> str:
    """`_id` of a catalog's item (by variant id) or tombstone (by product id)."""
    return f"{catalog}/{member_id}"


@dataclass(slots=True)
class Snapshot:
    """Stored items of a batch's variants and of its item ids, as read."""

    states: dict[str, StoredState]  # by variant id
    holders: dict[str, str]  # item id -> variant id


@dataclass(slots=True)
class _Op:
    write: PlannedWrite
    token: ObjectId
    expected_rev: Any  # the `_rev` the replaced document must still have (None: insert)


def _is_duplicate(exc: OperationFailure) -> bool:
    if exc.code == DUPLICATE_KEY:
        return True
    text = str(exc)
    return "duplicate key" in text or "UNIQUE constraint failed" in text  # FerretDB (e)


class ItemWriter:
    """Item writes of one database's `items`, `tombstones` and `catalogs` collections."""

    def __init__(self, db: AsyncDatabase[Document], now: Callable[[], datetime], *, compare_rev: bool = True) -> None:
        """`compare_rev=False` (FerretDB, whose writes the store serialises): replacements are keyed by
        `_id` alone, the one filter FerretDB pushes down to SQLite; see MongoCatalogStore's notes (h), (j)."""
        self._db = db
        self._now = now
        self._compare_rev = compare_rev
        self._items = db["items"]
        self._tombstones_coll = db["tombstones"]
        self._catalogs = db["catalogs"]

    async def count(self, catalog: str, *, items: int, storage_bytes: int) -> None:
        if items or storage_bytes:
            await self._catalogs.update_one(
                {"_id": catalog}, {"$inc": {"item_count": items, "storage_bytes": storage_bytes}}
            )

    async def recount(self, catalog: str) -> None:
        """Set the catalog's counters from its items (one accumulator per $group: FerretDB (f))."""
        items = self._items

        async def total(accumulator: Any) -> int:
            cursor_ = await items.aggregate(
                [{"$match": {"_catalog": catalog}}, {"$group": {"_id": None, "value": {"$sum": accumulator}}}]
            )
            rows = await cursor_.to_list()
            return int(rows[0]["value"]) if rows else 0

        count, size = await asyncio.gather(total(1), total("$_size"))
        await self._catalogs.update_one(
            {"_id": catalog}, {"$set": {"item_count": count, "storage_bytes": size}}
        )

    async def write(
        self, catalog: str, prepared: list[PreparedItem], run_id: str | None, limit_bytes: int | None
    ) -> WriteResult:
        snapshot, tombstones, catalogs = await asyncio.gather(
            self.snapshot(catalog, prepared, holders=False),
            self.tombstones(catalog, {p.item.shopify_product_id for p in prepared}),
            self._catalogs.find({}, {"storage_bytes": 1}).to_list(),
        )
        if not any(doc["_id"] == catalog for doc in catalogs):
            raise UnknownCatalog(f"catalog {catalog!r} does not exist")
        total_bytes = sum(doc.get("storage_bytes", 0) for doc in catalogs)

        def plan_on(state: Snapshot) -> WritePlan:
            return plan_writes(prepared, stored=state.states.get, holder=state.holders.get, tombstones=tombstones,
                               run_id=run_id, total_bytes=total_bytes, limit_bytes=limit_bytes)

        plan = plan_on(snapshot)
        if plan.conflicts or plan.limit_reached:
            # Decided on a partial view (a refused write frees no id and takes no space): re-plan on all
            # holders. Otherwise the unique id index refuses what the partial view allowed (see snapshot).
            plan = plan_on(await self.snapshot(catalog, prepared))
        result = WriteResult(
            stale=plan.stale,
            conflicts=list(plan.conflicts),
            limit_reached=plan.limit_reached,
            written_upto=plan.written_upto,
        )
        applied: list[_Op] = []
        try:
            await self._settle(catalog, _ops(plan.writes), tombstones, run_id, applied, result)
        finally:
            result.written = len(applied)
            result.bytes_delta = sum(op.write.state.size - _size(op.write.previous) for op in applied)
            inserted = sum(1 for op in applied if op.write.previous is None)
            await self.count(catalog, items=inserted, storage_bytes=result.bytes_delta)
        return result

    async def _settle(
        self,
        catalog: str,
        pending: list[_Op],
        tombstones: dict[str, datetime],
        run_id: str | None,
        applied: list[_Op],
        result: WriteResult,
    ) -> None:
        """Send the writes until each one has landed or was refused on fresh state."""
        for _ in range(MAX_SETTLE_ROUNDS):
            if not pending:
                return
            written_at = self._now()
            if await self._send(catalog, pending, run_id, written_at):
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
            )
            result.stale += replan.stale
            result.conflicts.extend(replan.conflicts)
            pending = _ops(replan.writes)
        if pending:
            raise ConcurrentWriteConflict(
                f"{len(pending)} item writes to {catalog!r} kept colliding with concurrent writes; the others landed"
            )

    async def _send(self, catalog: str, ops: list[_Op], run_id: str | None, written_at: datetime) -> bool:
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
            inserts: list[tuple[Document, int]] = []
            updates: list[tuple[Document, int]] = []
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
                }
                if op.write.previous is None:
                    inserts.append((doc, op.write.state.size))
                else:
                    query = {"_id": doc["_id"], "_rev": op.expected_rev} if self._compare_rev else {"_id": doc["_id"]}
                    statement = {"q": query, "u": doc, "upsert": False}
                    updates.append((statement, op.write.state.size))
            outcomes = await asyncio.gather(
                *(self._write_command("insert", "documents", chunk) for chunk in _chunks(inserts)),
                *(self._write_command("update", "updates", chunk)
                  for chunk in _chunks(updates, MAX_STATEMENTS if self._compare_rev else FERRETDB_MAX_UPDATES)),
            )
            if not all(outcomes):
                return False
        return True

    async def _write_command(self, command: str, field: str, statements: list[Document]) -> bool:
        """Run one unordered write command; True when each statement reports success."""
        try:
            reply = await self._db.command({command: "items", field: statements, "ordered": False})
        except OperationFailure as exc:
            if _is_duplicate(exc):
                return False
            raise
        errors = reply.get("writeErrors") or []
        for error in errors:
            if error.get("code") != DUPLICATE_KEY:
                raise StoreError(f"MongoDB refused an item write: {error.get('errmsg', error)}")
        if reply.get("writeConcernError"):
            raise StoreError(f"MongoDB write concern failed: {reply['writeConcernError']}")
        return not errors and reply.get("n", 0) == len(statements)

    async def snapshot(self, catalog: str, prepared: Iterable[PreparedItem], *, holders: bool = True) -> Snapshot:
        """The stored state of the batch's variants and (with `holders`) of the variants holding its
        item ids. Without `holders` only `_id` lookups run (FerretDB pushes nothing else down to
        SQLite (g): the id lookup scans the whole collection); a write the plan then allows although
        another variant holds the id is refused by the unique id index, and `_settle` re-plans it on
        a full snapshot, so the outcome is the same."""
        keys: set[str] = set()
        ids: set[str] = set()
        for entry in prepared:
            keys.add(item_key(catalog, entry.item.shopify_variant_id))
            ids.add(entry.item.id)
        snapshot = Snapshot({}, {})
        if not keys:
            return snapshot
        query: Document = {"_id": {"$in": list(keys)}}
        if holders:
            query = {"$or": [query, {"_catalog": catalog, "id": {"$in": list(ids)}}]}
        for doc in await self._items.find(query, _STATE_FIELDS).to_list():
            state = StoredState(
                variant_id=doc["shopify_variant_id"],
                item_id=doc["id"],
                product_id=doc["shopify_product_id"],
                updated_at=doc["_updated_at"],
                size=doc["_size"],
                run_id=doc.get("_run_id"),
                rev=doc["_rev"],
            )
            snapshot.states[state.variant_id] = state
            snapshot.holders[state.item_id] = state.variant_id
        return snapshot

    async def tombstones(self, catalog: str, product_ids: set[str]) -> dict[str, datetime]:
        if not product_ids:
            return {}
        keys = [item_key(catalog, p) for p in product_ids]
        docs = await self._tombstones_coll.find({"_id": {"$in": keys}}).to_list()
        return {doc["product_id"]: doc["deleted_at"] for doc in docs}

    async def set_variant_image(self, catalog: str, variant_id: str, url: str) -> bool:
        items = self._items
        key = item_key(catalog, variant_id)
        for _ in range(MAX_SETTLE_ROUNDS):
            doc = await items.find_one({"_id": key})
            if doc is None or doc.get("variant_image_url") is not None:
                return False
            item = msgspec.structs.replace(CatalogItem.from_document(doc), variant_image_url=url)
            size = document_size(item.to_document(catalog))
            changed = await items.update_one(
                {"_id": key, "_rev": doc["_rev"]},
                {"$set": {"variant_image_url": url, "_size": size, "_rev": ObjectId()}},
            )
            if changed.matched_count == 1:
                await self.count(catalog, items=0, storage_bytes=size - doc["_size"])
                return True
        raise ConcurrentWriteConflict(f"the item of variant {variant_id} kept changing while setting its image")

    async def delete(self, catalog: str, query: Document, guard: Document, *, rounds: int = 5) -> int:
        """Delete the items matching `query`, each only while unchanged since it was read (its
        `_rev`, plus `guard`), so counters move by exactly what was deleted."""
        items = self._items
        deleted = 0
        exact = True
        for _ in range(rounds):
            docs = await items.find(query, {"_id": 1, "_rev": 1, "_size": 1}).to_list()
            if not docs:
                break
            round_deleted = 0
            per_command = MAX_STATEMENTS if self._compare_rev else FERRETDB_MAX_UPDATES
            for start in range(0, len(docs), per_command):
                chunk = docs[start : start + per_command]
                statements = [{"q": {"_id": d["_id"], "_rev": d["_rev"], **guard}, "limit": 1} for d in chunk]
                reply = await self._db.command({"delete": "items", "deletes": statements, "ordered": False})
                if reply.get("writeErrors"):
                    raise StoreError(f"MongoDB refused an item delete: {reply['writeErrors'][0]}")
                round_deleted += reply.get("n", 0)
            deleted += round_deleted
            if round_deleted == len(docs):
                if exact:
                    await self.count(catalog, items=-len(docs), storage_bytes=-sum(d["_size"] for d in docs))
            else:
                exact = False
        if not exact:
            await self.recount(catalog)
        return deleted


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


def _chunks(statements: list[tuple[Document, int]], max_statements: int = MAX_STATEMENTS) -> list[list[Document]]:
    chunks: list[list[Document]] = []
    current: list[Document] = []
    size = 0
    for statement, statement_size in statements:
        if current and (len(current) == max_statements or size + statement_size > MAX_COMMAND_BYTES):
            chunks.append(current)
            current, size = [], 0
        current.append(statement)
        size += statement_size
    if current:
        chunks.append(current)
    return chunks
