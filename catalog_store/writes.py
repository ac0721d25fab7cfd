"""Item write rules shared by both stores. Pure code, no I/O.

A store validates a batch (`prepare_items`), looks up what it holds for the batch's variants and item
ids, and asks `plan_writes` what to do with each item, in order:

1. stale: a tombstone of the product is not older than the item (`updated_at <= deleted_at`), or the
   stored item of the variant is newer (`stored.updated_at > updated_at`); at equal times
   `break_tie` decides, the same way in every process whatever the arrival order (an item equal to
   the stored one is only marked as seen by the run when the store keeps digests: a re-sync of an
   unchanged catalog rewrites nothing). A stored time (item or tombstone) later than the store's
   clock by more than MAX_CLOCK_SKEW refuses nothing (`trusted`): no Shopify change carries one,
   and one left by a bad payload must not lock a product;
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
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, Final

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
    digest: bytes | None = None  # MongoDB store: `item_digest` of the stored item
    inventory_quantity: int | None = None  # the stored item's (its digest leaves it out)
    inventory_at: datetime | None = None  # `inventory_time` of the stored item
    item: CatalogItem | None = None  # memory store: the stored item itself (digested when a tie needs it)
    price: str | None = None  # MongoDB store: the stored price (alert rules compare it, and the quantity)
    alerts: Any = None  # MongoDB store: alert intents the stored document carries (a replacement keeps them)


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
    """A digest of every field of an item (catalog fields and bookkeeping alike) but its inventory
    quantity and that quantity's time: equal digests and quantities, equal items. They are left out
    because the quantity changes without the product's `updated_at` (see `break_tie`; the newer
    quantity is chosen before, by `keep_stored_inventory`). 20 bytes: the length tells it
    from the 16-byte digests stored before, which included the quantity and decide no tie."""
    return hashlib.blake2b(_ENCODER.encode(msgspec.structs.replace(item, inventory_quantity=None, inventory_at=None)),
                           digest_size=DIGEST_SIZE).digest()


DIGEST_SIZE: Final = 20
MAX_CLOCK_SKEW: Final = timedelta(minutes=5)


def trusted(at: datetime, now: datetime | None) -> bool:
    """Whether a stored time may refuse a write: not later than `now` (the store's clock; None: no
    clock given) by more than MAX_CLOCK_SKEW. Shopify stamps a change before anyone stores it, so a
    later time (year 9999 from a bad payload, a forged header before the receive time was used)
    is no evidence of newer data: the next write replaces it, and the full sync heals it."""
    return now is None or at <= now + MAX_CLOCK_SKEW


class Tie(Enum):
    WRITE = "write"
    UNCHANGED = "unchanged"  # equal to the stored item: mark as seen only
    STALE = "stale"


def break_tie(entry: PreparedItem, previous: StoredState, run_id: str | None) -> Tie:
    """What a write does to a stored item of the same variant with the same `updated_at`.

    Shopify's `updated_at` has one-second precision, so two changes in one second give two
    payloads of one time; they reach processes in any order, and every process must keep the same
    item. In order:
    - equal items: unchanged where the store keeps digests, else rewritten (an idempotent replay);
    - only the inventory quantity differs (the digest leaves it out): written, arrival order; a
      quantity changes without the product's `updated_at`, so the time cannot order it;
    - a stored digest of the old definition (or none): written, as before ties were broken;
    - a full sync's item (`run_id`) is written: its snapshot is the reference (a renamed shop, a
      new mapping apply to every item), and a webhook's item never replaces a full sync's;
    - between webhook items the higher digest wins.
    """
    if previous.item is not None and previous.item == entry.item:
        return Tie.WRITE
    new = entry.digest if entry.digest is not None else item_digest(entry.item)
    stored = item_digest(previous.item) if previous.item is not None else previous.digest
    if stored is None or len(stored) != DIGEST_SIZE:
        return Tie.WRITE
    if stored == new:
        if (previous.item is None and entry.digest is not None
                and previous.inventory_quantity == entry.item.inventory_quantity):
            return Tie.UNCHANGED
        return Tie.WRITE
    if run_id is not None:
        return Tie.WRITE
    if previous.run_id is not None or new < stored:
        return Tie.STALE
    return Tie.WRITE


def ended_tombstones(recorded: Mapping[str, datetime], listed_after: datetime | None) -> list[str]:
    """The products whose tombstone a full sync's items end: those recorded (store clock) before
    `listed_after`, the start of the run whose bulk operation lists them. Shopify never reuses a
    product id, so a product a read started after its tombstone lists exists: the tombstone was
    wrong (a forged topic, a delete applied out of order) and must not hide it for ever."""
    if listed_after is None:
        return []
    return [product_id for product_id, at in recorded.items() if at < listed_after]


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
    now: datetime | None = None,
) -> WritePlan:
    """Decide, item by item in order, what a batch does (see module doc).

    `stored(variant_id)` is the variant's stored item, `holder(item_id)` the variant holding an item
    id, `tombstones` maps product ids to their deletion time, `total_bytes` is the stored size of all
    catalogs before the batch, `now` the store's clock (stored times later than it are not trusted).
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
        if deleted_at is not None and updated_at <= deleted_at and trusted(deleted_at, now):
            plan.stale += 1
            continue
        # The newer of the two quantities first: then a tie can only be decided by the rest of the item.
        entry = keep_stored_inventory(entry, previous)
        item = entry.item
        if previous is not None and previous.updated_at >= updated_at and trusted(previous.updated_at, now):
            tie = Tie.STALE if previous.updated_at > updated_at else break_tie(entry, previous, run_id)
            if tie is Tie.STALE:
                plan.stale += 1
                continue
            if tie is Tie.UNCHANGED:
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
                            digest=entry.digest, inventory_quantity=item.inventory_quantity,
                            inventory_at=inventory_time(item), item=item if entry.digest is None else None)
        plan.writes.append(PlannedWrite(index, entry, previous, state))
        if previous is not None and previous.item_id != item.id and holding(previous.item_id) == variant_id:
            holder_overlay[previous.item_id] = None
        holder_overlay[item.id] = variant_id
        state_overlay[variant_id] = state
        total += delta
    plan.written_upto = len(prepared)
    return plan
