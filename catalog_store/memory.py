"""MemoryCatalogStore: the CatalogStore in plain dicts (demo, fast tests, benchmarks). Not persistent.

Same contract as MongoCatalogStore (the contract suite runs against both): the write rules come
from catalog_store.writes and .checks, the record codecs from catalog_store.documents. Items are
immutable: kept and handed out as given, never copied. Every method runs without
awaiting, so each call is atomic on the event loop. Item writes are O(batch); listing keeps the item
ids sorted lazily (re-sorted only after ids were added or removed).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import msgspec

from catalog_store.alerts import AlertSource, default_source
from catalog_store.checks import check_batch, item_size
from catalog_store.documents import (
    changed_sync_fields,
    sync_from_document,
    sync_to_document,
)
from catalog_store.errors import UnknownCatalog
from catalog_store.filters import check_filter, cursor, page_size
from catalog_store.items import CatalogItem
from catalog_store.memory_alerts import Landed, MemoryAlerts, MemoryAlertsApi
from catalog_store.memory_catalog import CHANGES, MemoryCatalog, index_ids
from catalog_store.memory_records import MemoryRecords
from catalog_store.models import (
    CatalogInfo,
    ItemFilter,
    ItemPage,
    SyncConfig,
    WriteResult,
    utcnow,
)
from catalog_store.polling_feed import PollingFeed, WrittenItem
from catalog_store.rules import check_catalog_name, check_image_url, utc_millis
from catalog_store.writes import (
    PreparedItem,
    plan_writes,
)


class MemoryCatalogStore(MemoryRecords, MemoryAlertsApi):
    """CatalogStore in process memory; `clock` (UTC now) is injectable for tests."""

    def __init__(self, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.clock = clock
        self._catalogs: dict[str, MemoryCatalog] = {}
        self._syncs: dict[str, dict[str, Any]] = {}
        MemoryRecords.__init__(self, self._now)
        self.alerts = MemoryAlerts(self._now, self._item_now, self._catalogs.__contains__)
        self._dropped = next(CHANGES)  # stamp of the last catalog deletion (or of this store's creation)

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    @property
    def persistent(self) -> bool:
        return False

    def feed(self, *, poll_interval: float = 1.0, polling: bool = True) -> PollingFeed:
        """Polling, whatever is asked: this store has no push channel. Its item writes are stamped
        as they land, by this clock, so the poll needs no overlap (see polling_feed.WriteTracker)."""
        return PollingFeed(self, self._written_since, interval=poll_interval, overlap=timedelta(0), now=self._now)

    async def _written_since(self, catalog: str, since: datetime) -> list[WrittenItem]:
        """The catalog's items written at or after `since` (a scan: polls are few and this is memory).
        The revision is the stamp and the item itself, so an image set in place counts too."""
        target = self._catalogs.get(catalog)
        if target is None:
            return []
        return [WrittenItem(variant_id, entry.item.id, entry.written_at, (entry.written_at, entry.item))
                for variant_id, entry in target.entries.items() if entry.written_at >= since]

    def _now(self) -> datetime:
        return utc_millis(self.clock())

    def _item_now(self, catalog: str, item_id: str) -> CatalogItem | None:
        target = self._catalogs.get(catalog)
        variant_id = None if target is None else target.holder(item_id)
        return None if target is None or variant_id is None else target.entries[variant_id].item

    # -- sync configurations ---------------------------------------------------------------

    async def save_sync(self, config: SyncConfig) -> None:
        self._syncs[config.shop_domain] = sync_to_document(config)

    async def get_sync(self, shop_domain: str) -> SyncConfig | None:
        doc = self._syncs.get(shop_domain)
        return None if doc is None else sync_from_document(doc)

    async def update_sync(self, shop_domain: str, change: Callable[[SyncConfig], object]) -> bool:
        doc = self._syncs.get(shop_domain)
        if doc is None:
            return False
        doc.update(changed_sync_fields(sync_from_document(doc), change))
        return True

    async def list_syncs(self) -> list[SyncConfig]:
        return [sync_from_document(self._syncs[shop]) for shop in sorted(self._syncs)]

    async def delete_sync(self, shop_domain: str) -> bool:
        return self._syncs.pop(shop_domain, None) is not None

    async def mark_reconciled(self, shop_domain: str, at: datetime) -> bool:
        doc = self._syncs.get(shop_domain)
        at = utc_millis(at)
        if doc is None or (doc.get("reconciled_at") is not None and doc["reconciled_at"] >= at):
            return False
        doc["reconciled_at"] = at
        return True

    # -- catalogs --------------------------------------------------------------------------

    async def ensure_catalog(self, name: str, shop_domain: str, store_name: str) -> CatalogInfo:
        check_catalog_name(name)
        catalog = self._catalogs.get(name)
        if catalog is None:
            catalog = self._catalogs[name] = MemoryCatalog(name, shop_domain, store_name, self._now())
        elif (catalog.shop_domain, catalog.store_name) != (shop_domain, store_name):
            catalog.shop_domain = shop_domain
            catalog.store_name = store_name
            catalog.touch()
        return catalog.info()

    async def get_catalog(self, name: str) -> CatalogInfo | None:
        catalog = self._catalogs.get(name)
        return None if catalog is None else catalog.info()

    async def list_catalogs(self) -> list[CatalogInfo]:
        return [self._catalogs[name].info() for name in sorted(self._catalogs)]

    async def delete_catalog(self, name: str) -> int:
        catalog = self._catalogs.pop(name, None)
        self.alerts.delete_catalog(name)
        if catalog is not None:
            self._dropped = next(CHANGES)
        return 0 if catalog is None else len(catalog.entries)

    def change_count(self) -> int:
        """Grows whenever a catalog or an item changes (HTTP caching keys on it): never repeats."""
        return max((self._dropped, *(c.version for c in self._catalogs.values())))

    async def total_storage_bytes(self) -> int:
        return sum(c.storage_bytes for c in self._catalogs.values())

    def _catalog(self, name: str) -> MemoryCatalog:
        catalog = self._catalogs.get(name)
        if catalog is None:
            raise UnknownCatalog(f"catalog {name!r} does not exist")
        return catalog

    # -- items -----------------------------------------------------------------------------

    async def write_items(
        self,
        catalog: str,
        items: Sequence[CatalogItem],
        *,
        run_id: str | None = None,
        limit_bytes: int | None = None,
        listed_after: datetime | None = None,
        source: AlertSource | None = None,
    ) -> WriteResult:
        checked, sizes = check_batch(catalog, items)
        target = self._catalog(catalog)
        total = await self.total_storage_bytes() if limit_bytes is not None else 0
        now = self._now()
        if listed_after is not None and target.tombstones:
            target.end_tombstones({i.shopify_product_id for i in checked}, utc_millis(listed_after))
        before = target.storage_bytes
        done = target.insert_new(checked, sizes, run_id, now, None if limit_bytes is None else limit_bytes - total)
        if done == len(checked):
            return WriteResult(written=done, bytes_delta=target.storage_bytes - before, written_upto=done)
        plan = plan_writes(
            [PreparedItem(item, None, size) for item, size in zip(checked[done:], sizes[done:])],
            stored=target.state,
            holder=target.holder,
            tombstones=target.tombstones,
            run_id=run_id,
            total_bytes=total + target.storage_bytes - before,
            limit_bytes=limit_bytes,
            now=now,
        )
        rules = self.alerts.watching(catalog)
        landed: list[Landed] = []
        for write in plan.writes:
            if rules is not None and write.previous is not None:
                landed.append((target.entries[write.previous.variant_id].item, write.prepared.item))
            target.put(write, now)
        if landed and rules is not None:
            self.alerts.on_landed(catalog, rules, landed, default_source(source, run_id))
        return WriteResult(
            written=done + len(plan.writes),
            stale=plan.stale,
            conflicts=plan.conflicts,
            bytes_delta=target.storage_bytes - before,
            limit_reached=plan.limit_reached,
            written_upto=done + plan.written_upto,
        )

    async def mark_seen(self, catalog: str, variant_ids: Sequence[str], run_id: str) -> None:
        target = self._catalogs.get(catalog)
        if target is None:
            return
        for variant_id in variant_ids:
            entry = target.entries.get(variant_id)
            if entry is not None:
                entry.run_id = run_id

    async def set_variant_image(self, catalog: str, variant_id: str, url: str) -> bool:
        check_image_url(url)
        target = self._catalogs.get(catalog)
        entry = None if target is None else target.entries.get(variant_id)
        if target is None or entry is None or entry.item.variant_image_url is not None:
            return False
        item = msgspec.structs.replace(entry.item, variant_image_url=url)
        size = item_size(catalog, item)
        target.storage_bytes += size - entry.size
        entry.item = item
        entry.size = size
        target.touch()
        return True

    async def delete_product(self, catalog: str, product_id: str, deleted_at: datetime) -> int:
        target = self._catalog(catalog)
        deleted_at = utc_millis(deleted_at)
        previous = target.tombstones.get(product_id)
        target.tombstones[product_id] = deleted_at if previous is None else max(previous, deleted_at)
        target.tombstones_recorded[product_id] = self._now()
        variants = index_ids(target.products, product_id)
        for variant_id in variants:
            target.remove(variant_id)
        return len(variants)

    async def sweep(self, catalog: str, run_id: str, started_at: datetime) -> int:
        target = self._catalogs.get(catalog)
        if target is None:
            return 0
        started_at = utc_millis(started_at)
        doomed = [
            variant_id
            for variant_id, entry in target.entries.items()
            if entry.run_id != run_id and entry.written_at < started_at
        ]
        self.alerts.end_item_subscriptions(catalog, [target.entries[v].item.id for v in doomed])
        for variant_id in doomed:
            target.remove(variant_id)
        return len(doomed)

    async def get_item(self, catalog: str, item_id: str) -> CatalogItem | None:
        target = self._catalogs.get(catalog)
        variant_id = None if target is None else target.holder(item_id)
        if target is None or variant_id is None:
            return None
        return target.entries[variant_id].item

    async def get_items_by_variant(self, catalog: str, variant_ids: Sequence[str]) -> list[CatalogItem]:
        target = self._catalogs.get(catalog)
        if target is None:
            return []
        found: list[CatalogItem] = []
        for variant_id in dict.fromkeys(variant_ids):
            entry = target.entries.get(variant_id)
            if entry is not None:
                found.append(entry.item)
        return found

    async def get_items_by_product(self, catalog: str, product_id: str) -> list[CatalogItem]:
        target = self._catalogs.get(catalog)
        if target is None:
            return []
        return sorted((target.entries[v].item for v in index_ids(target.products, product_id)), key=lambda item: item.id)

    async def find_by_inventory_item(self, catalog: str, inventory_item_id: str) -> list[CatalogItem]:
        target = self._catalogs.get(catalog)
        if target is None:
            return []
        items = [target.entries[v].item for v in target.by_inventory_item(inventory_item_id)]
        return sorted(items, key=lambda item: item.id)

    async def list_items(
        self,
        catalog: str,
        *,
        first: int = 50,
        after: str | None = None,
        filter: ItemFilter | None = None,
    ) -> ItemPage:
        size = page_size(first)
        after = cursor(after)
        checked = check_filter(filter)
        target = self._catalogs.get(catalog)
        if target is None:
            return ItemPage([], False, 0)
        if not checked.empty:
            items, more, count = target.filtered(checked, size, after)
            return ItemPage(items, more, count)
        ids = target.ids()
        start = 0 if after is None else bisect_right(ids, after)
        page = [target.item(item_id) for item_id in ids[start:start + size]]
        return ItemPage(page, start + size < len(ids), len(target.entries))

    # -- inventory reads and product ids (webhook batches, reconciliation) -------------------

    async def find_by_inventory_items(self, catalog: str, inventory_item_ids: Sequence[str]) -> list[CatalogItem]:
        target = self._catalogs.get(catalog)
        if target is None:
            return []
        variants = {v for i in dict.fromkeys(inventory_item_ids) for v in target.by_inventory_item(i)}
        return sorted((target.entries[v].item for v in variants), key=lambda item: item.id)

    async def list_product_ids(self, catalog: str) -> list[str]:
        target = self._catalogs.get(catalog)
        return [] if target is None else sorted(p for p, held in target.products.items() if held)
