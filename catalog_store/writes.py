"""Item write rules shared by both stores. Pure code, no I/O.

A store validates a batch (`prepare_items`), looks up what it holds for the batch's variants and item
ids, and asks `plan_writes` what to do with each item, in order:

1. stale: a tombstone of the product is not older than the item (`updated_at <= deleted_at`), or the
   stored item of the variant is newer (`stored.updated_at > updated_at`); equal times rewrite, so
   replays are idempotent, except that an item equal to the stored one (same time, same content
   digest, when the store keeps digests) is only marked as seen by the run: a re-sync of an unchanged
   catalog rewrites nothing;
2. conflict: another variant holds the item id (SKU mode duplicates): reported, nothing overwritten;
3. storage limit: writing stops before the first item that would bring the total above it;
4. otherwise the item replaces the variant's stored item (whose id may differ: a changed SKU),
   except its inventory: when the stored quantity is newer (`inventory_time`: the stored one's is later
   than the item's), the stored quantity and its time are kept. Inventory changes are applied as
   writes of the stored item with the new quantity and its time, so a product snapshot older than the
   last applied inventory change never regresses the quantity, and a newer one replaces it.

Items earlier in the batch count for later ones (a variant may free an id another variant takes).
Both stores apply the same plan, so they answer the contract tests identically.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec

from catalog_store.checks import check_batch, inventory_size
from catalog_store.items import CatalogItem
from catalog_store.models import Conflict


@dataclass(slots=True, frozen=True)
class StoredState:
    """What the planner needs to know of one stored item."""

    variant_id: str
    item_id: str
    product_id: str
    updated_at: datetime
    size: int  # document_size of the stored document
    run_id: str | None  # run that last wrote or saw it (None: a webhook)
    rev: Any = None  # MongoDB store: the token of the write that produced it
    digest: bytes | None = None  # MongoDB store: content digest of the stored item
    inventory_quantity: int | None = None
    inventory_at: datetime | None = None  # `inventory_time` of the stored item


@dataclass(slots=True)
class PreparedItem:
    """A validated copy of an input item, its stored document and that document's size."""

    item: CatalogItem
    document: dict[str, Any] | None  # None when not asked for (the memory store needs only the size)
    size: int
    digest: bytes | None = None  # with the document: `item_digest(item)`


@dataclass(slots=True)
class PlannedWrite:
    index: int  # position in the input batch
    prepared: PreparedItem
    previous: StoredState | None  # the variant's item before this write (None: inserted)
    state: StoredState  # the variant's item after it


@dataclass(slots=True)
class WritePlan:
    writes: list[PlannedWrite] = field(default_factory=list)
    unchanged: list[PlannedWrite] = field(default_factory=list)  # equal to the stored item: mark as seen only
    stale: int = 0
    conflicts: list[Conflict] = field(default_factory=list)
    limit_reached: bool = False
    written_upto: int = 0


def prepare_items(catalog: str, items: Sequence[CatalogItem], *, documents: bool = True) -> list[PreparedItem]:
    """Validate a batch (`checks.check_batch`) and return its normalised items (updated_at in UTC
    milliseconds) with their sizes and (unless `documents` is False) their stored documents. Raises
    InvalidItem for the first bad item: nothing is written."""
    checked, sizes = check_batch(catalog, items)
    if not documents:
        return [PreparedItem(item, None, size) for item, size in zip(checked, sizes)]
    return [PreparedItem(item, item.to_document(catalog), size, item_digest(item)) for item, size in zip(checked, sizes)]


def item_digest(item: CatalogItem) -> bytes:
    """A digest of every field of an item (catalog fields and bookkeeping alike): equal digests, equal items."""
    return hashlib.blake2b(_ENCODER.encode(item), digest_size=16).digest()


_ENCODER = msgspec.msgpack.Encoder()


def inventory_time(item: CatalogItem) -> datetime:
    """When the item's `inventory_quantity` was true in Shopify (its own time, else its product's)."""
    return item.inventory_at or item.updated_at  # type: ignore[return-value]  # checked items have one


def keep_stored_inventory(entry: PreparedItem, previous: StoredState | None) -> PreparedItem:
    """`entry`, or a copy holding the stored quantity and its time when those are newer."""
    if previous is None or previous.inventory_at is None or previous.inventory_at <= inventory_time(entry.item):
        return entry
    item = msgspec.structs.replace(entry.item, inventory_quantity=previous.inventory_quantity,
                                   inventory_at=previous.inventory_at)
    size = (entry.size - inventory_size(entry.item.inventory_quantity, entry.item.inventory_at)
            + inventory_size(item.inventory_quantity, item.inventory_at))
    if entry.document is None:
        return PreparedItem(item, None, size)
    document = dict(entry.document, inventory_quantity=item.inventory_quantity, _inventory_at=item.inventory_at)
    return PreparedItem(item, document, size, item_digest(item))


def plan_writes(
    prepared: Sequence[PreparedItem],
    *,
    stored: Callable[[str], StoredState | None],
    holder: Callable[[str], str | None],
    tombstones: Mapping[str, datetime],
    run_id: str | None,
    total_bytes: int = 0,
    limit_bytes: int | None = None,
) -> WritePlan:
    """Decide, item by item in order, what a batch does (see module doc).

    `stored(variant_id)` is the variant's stored item, `holder(item_id)` the variant holding an item
    id, `tombstones` maps product ids to their deletion time, `total_bytes` is the stored size of all
    catalogs before the batch.
    """
    plan = WritePlan()
    state_overlay: dict[str, StoredState | None] = {}
    holder_overlay: dict[str, str | None] = {}

    def current(variant_id: str) -> StoredState | None:
        if variant_id in state_overlay:
            return state_overlay[variant_id]
        return stored(variant_id)

    def holding(item_id: str) -> str | None:
        if item_id in holder_overlay:
            return holder_overlay[item_id]
        return holder(item_id)

    total = total_bytes
    for index, entry in enumerate(prepared):
        item = entry.item
        variant_id = item.shopify_variant_id
        updated_at: datetime = item.updated_at  # type: ignore[assignment]
        previous = current(variant_id)
        deleted_at = tombstones.get(item.shopify_product_id)
        if (deleted_at is not None and updated_at <= deleted_at) or (
            previous is not None and previous.updated_at > updated_at
        ):
            plan.stale += 1
            continue
        entry = keep_stored_inventory(entry, previous)
        item = entry.item
        if (previous is not None and entry.digest is not None and previous.digest == entry.digest
                and previous.updated_at == updated_at):
            plan.unchanged.append(PlannedWrite(index, entry, previous, previous))
            continue
        owner = holding(item.id)
        if owner is not None and owner != variant_id:
            held = current(owner)
            plan.conflicts.append(Conflict(item.id, variant_id, owner, held.run_id if held else None))
            continue
        delta = entry.size - (previous.size if previous is not None else 0)
        if limit_bytes is not None and delta > 0 and total + delta > limit_bytes:
            plan.limit_reached = True
            plan.written_upto = index
            return plan
        state = StoredState(variant_id, item.id, item.shopify_product_id, updated_at, entry.size, run_id,
                            inventory_quantity=item.inventory_quantity, inventory_at=inventory_time(item))
        plan.writes.append(PlannedWrite(index, entry, previous, state))
        if previous is not None and previous.item_id != item.id and holding(previous.item_id) == variant_id:
            holder_overlay[previous.item_id] = None
        holder_overlay[item.id] = variant_id
        state_overlay[variant_id] = state
        total += delta
    plan.written_upto = len(prepared)
    return plan
