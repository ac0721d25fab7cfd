"""One in-memory catalog: its items by variant id, the indexes the memory store reads and writes
through (item id holders, products, inventory items), and the item filter.

Apart from `memory.py` so the store's methods read as the contract, and the data layout as one idea.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime

import msgspec

from catalog_store.filters import CheckedFilter
from catalog_store.items import CatalogItem
from catalog_store.memory_index import ItemIndex, page_of
from catalog_store.models import (
    CatalogInfo,
)
from catalog_store.writes import (
    PlannedWrite,
    StoredState,
    ended_tombstones,
    inventory_time,
)

_Ids = str | list[str]
# Stamps of catalog changes, increasing across every catalog of the process: the largest stamp of a
# store's catalogs changes whenever any of them does (see MemoryCatalogStore.change_count).
CHANGES = itertools.count(1)  # one variant id (the usual case: no container per entry), or several


class Entry(msgspec.Struct, gc=False):
    """One stored item with what the write rules compare against (size, writer, time)."""

    item: CatalogItem  # immutable: stored and handed out as is
    size: int  # the item's stored size
    run_id: str | None  # run that last wrote or saw it (None: a webhook)
    written_at: datetime

    def state(self) -> StoredState:
        item = self.item
        return StoredState(
            item.shopify_variant_id, item.id, item.shopify_product_id, item.updated_at,  # type: ignore[arg-type]
            self.size, self.run_id, inventory_quantity=item.inventory_quantity, inventory_at=inventory_time(item),
            item=item,
        )


@dataclass(slots=True)
class MemoryCatalog:
    """One catalog's items and the indexes the store's reads and writes need."""

    name: str
    shop_domain: str
    store_name: str
    created_at: datetime
    entries: dict[str, Entry] = field(default_factory=dict)  # by variant id
    # item id -> variant id, for items whose id is not their variant id (SKU mode): an id equal to a
    # variant id is held by that variant's entry, found in `entries` (no second entry per item)
    holders: dict[str, str] = field(default_factory=dict)
    products: dict[str, _Ids] = field(default_factory=dict)  # product id -> variant ids
    # inventory item id -> variant ids; built on the first lookup, then kept up to date
    inventory: dict[str, _Ids] | None = None
    tombstones: dict[str, datetime] = field(default_factory=dict)  # product id -> deleted_at
    tombstones_recorded: dict[str, datetime] = field(default_factory=dict)  # product id -> when (store clock)
    storage_bytes: int = 0
    sorted_ids: list[str] | None = None  # None: ids were added or removed since the last sort
    # the filter and search indexes (catalog_store.memory_index): built on the first filtered read
    index: ItemIndex | None = None
    version: int = field(default_factory=lambda: next(CHANGES))  # CHANGES at this catalog's last change

    def touch(self) -> None:
        """Record a change of the catalog or of its items (what HTTP caching keys on)."""
        self.version = next(CHANGES)

    def info(self) -> CatalogInfo:
        return CatalogInfo(
            self.name, self.shop_domain, self.store_name, len(self.entries), self.storage_bytes, self.created_at
        )

    def state(self, variant_id: str) -> StoredState | None:
        entry = self.entries.get(variant_id)
        return None if entry is None else entry.state()

    def holder(self, item_id: str) -> str | None:
        """The variant holding `item_id`, if any."""
        variant_id = self.holders.get(item_id)
        if variant_id is not None:
            return variant_id
        entry = self.entries.get(item_id)
        return item_id if entry is not None and entry.item.id == item_id else None

    def ids(self) -> list[str]:
        if self.sorted_ids is None:
            self.sorted_ids = sorted(entry.item.id for entry in self.entries.values())
        return self.sorted_ids

    def item(self, item_id: str) -> CatalogItem:
        """The stored item with id `item_id` (which must be held)."""
        return self.entries[self.holder(item_id)].item  # type: ignore[index]

    def filtered(self, checked: CheckedFilter, size: int, after: str | None) -> tuple[list[CatalogItem], bool, int]:
        """A page of the items matching `checked` (not empty), whether more follow, and their count."""
        if self.index is None:
            self.index = ItemIndex(entry.item for entry in self.entries.values())
        selection = self.index.select(checked, self.ids, lambda item_id: matches(checked, self.item(item_id)))
        page, more = page_of(selection, self.ids(), self.index.columns, after, size)
        return [self.item(item_id) for item_id in page], more, selection.count

    def by_inventory_item(self, inventory_item_id: str) -> list[str]:
        if self.inventory is None:
            self.inventory = {}
            for variant_id, entry in self.entries.items():
                if entry.item.inventory_item_id is not None:
                    _add(self.inventory, entry.item.inventory_item_id, variant_id)
        return index_ids(self.inventory, inventory_item_id)

    def put(self, write: PlannedWrite, written_at: datetime) -> None:
        item = write.prepared.item
        variant_id = item.shopify_variant_id
        old = self.entries.get(variant_id)
        if old is not None:
            self._unlink(old)
        if old is None or old.item.id != item.id:
            self.sorted_ids = None
        self.entries[variant_id] = Entry(item, write.state.size, write.state.run_id, written_at)
        self._link(item)
        self.touch()
        self.storage_bytes += write.state.size

    def insert_new(
        self, items: list[CatalogItem], sizes: list[int], run_id: str | None, written_at: datetime, room: int | None
    ) -> int:
        """Insert the leading items that `plan_writes` would simply insert: no stored item for the
        variant, item id free, no tombstone, within `room` bytes. Returns how many were inserted; the
        caller plans the rest (the same decisions, item by item, as if all had been planned)."""
        entries, holders, products, inventory = self.entries, self.holders, self.products, self.inventory
        tombstones = self.tombstones
        added = 0
        for item, size in zip(items, sizes):
            variant_id = item.shopify_variant_id
            item_id = item.id
            product_id = item.shopify_product_id
            if (
                variant_id in entries
                or item_id in holders
                or (item_id != variant_id and self.holder(item_id) is not None)
                or (tombstones and product_id in tombstones)
            ):
                break
            if room is not None:
                if size > room:
                    break
                room -= size
            entries[variant_id] = Entry(item, size, run_id, written_at)
            if item_id != variant_id:
                holders[item_id] = variant_id
            _add(products, product_id, variant_id)
            if inventory is not None and item.inventory_item_id is not None:
                _add(inventory, item.inventory_item_id, variant_id)
            if self.index is not None:
                self.index.add(item)
            self.storage_bytes += size
            added += 1
        if added:
            self.sorted_ids = None
            self.touch()
        return added

    def end_tombstones(self, product_ids: set[str], listed_after: datetime) -> None:
        """Remove the tombstones of `product_ids` that a full sync listing them ends (`ended_tombstones`)."""
        recorded = self.tombstones_recorded
        listed = {p: recorded[p] for p in product_ids if p in recorded}
        for product_id in ended_tombstones(listed, listed_after):
            del self.tombstones[product_id], recorded[product_id]

    def remove(self, variant_id: str) -> None:
        self._unlink(self.entries.pop(variant_id))
        self.sorted_ids = None
        self.touch()

    def _link(self, item: CatalogItem) -> None:
        variant_id = item.shopify_variant_id
        if item.id != variant_id:
            self.holders[item.id] = variant_id
        _add(self.products, item.shopify_product_id, variant_id)
        if self.inventory is not None and item.inventory_item_id is not None:
            _add(self.inventory, item.inventory_item_id, variant_id)
        if self.index is not None:
            self.index.add(item)

    def _unlink(self, entry: Entry) -> None:
        item = entry.item
        variant_id = item.shopify_variant_id
        if item.id != variant_id and self.holders.get(item.id) == variant_id:
            del self.holders[item.id]
        _discard(self.products, item.shopify_product_id, variant_id)
        if self.inventory is not None and item.inventory_item_id is not None:
            _discard(self.inventory, item.inventory_item_id, variant_id)
        if self.index is not None:
            self.index.remove(item)
        self.storage_bytes -= entry.size


def _add(index: dict[str, _Ids], key: str, value: str) -> None:
    """Add `value` under `key`; the caller guarantees it is not there yet (entries are unique)."""
    held = index.get(key)
    if held is None:
        index[key] = value
    elif type(held) is str:
        index[key] = [held, value]
    else:
        held.append(value)  # type: ignore[union-attr]


def _discard(index: dict[str, _Ids], key: str, value: str) -> None:
    held = index.get(key)
    if held is None:
        return
    if type(held) is str:
        if held == value:
            del index[key]
        return
    rest = [v for v in held if v != value]
    index[key] = rest[0] if len(rest) == 1 else rest


def index_ids(index: dict[str, _Ids], key: str) -> list[str]:
    """The variant ids under `key`, as a list whichever way they are held."""
    held = index.get(key)
    return [] if held is None else [held] if type(held) is str else list(held)


def matches(f: CheckedFilter, item: CatalogItem) -> bool:
    """The filter on one item, as the Mongo store's query applies it."""
    if f.status is not None and item.status != f.status:
        return False
    if f.vendor is not None and item.vendor != f.vendor:
        return False
    if f.product_type is not None and item.product_type != f.product_type:
        return False
    if f.in_stock is not None:
        quantity = item.inventory_quantity
        if f.in_stock != (quantity is not None and quantity > 0):
            return False
    if f.price_min is not None or f.price_max is not None:
        price = float(item.price)
        if f.price_min is not None and price < f.price_min:
            return False
        if f.price_max is not None and price > f.price_max:
            return False
    if f.search is not None:
        pattern = f.search
        return any(
            value is not None and pattern.search(value) is not None
            for value in (item.product_title, item.variant_title, item.sku)
        )
    return True
