"""Applies one webhook delivery to the catalog: the I/O side of `bulk.mapping.payloads`.

- an unknown shop, or a shop whose sync is inactive (over the storage limit), changes nothing;
- products/create|update write the product's items and remove those of variants the product no
  longer has (or that no longer sync); payloads listing only the first 100 variants are
  replaced by the product read through the Admin API; inventory_levels/update never reads a product:
  the pending inventory items of a batch are read in one `nodes(ids:)` call (each its variant's
  total quantity and updatedAt) and written as inventory changes, versioned on their own (a product
  snapshot older than an applied inventory change never regresses the quantity: the store's rule);
  products/delete deletes the items and leaves a tombstone stamped with the time the delivery was
  received (`X-Shopify-Triggered-At` is not signed: it never decides); bulk_operations/finish wakes
  the run polling that operation;
- a payload its topic's schema refuses changes nothing: InvalidWebhookPayload (with the webhook id)
  is raised for the caller to count and log, and the shop is notified once per product
  (`bulk.webhooks.refusals`);
- every write is guarded by the product's `updated_at` in the store (and, per product, serialised in
  this process): an older payload never overwrites newer data, and a delete is never undone by a late
  update or an older full-sync snapshot;
- SKU conflicts are not overwritten: an error notification names the SKU and both variants;
- a write that would exceed the storage limit makes the sync inactive (CATALOG_LIMIT_EXCEEDED,
  notification and email) until the merchant disables and re-enables it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime, timedelta

import msgspec

from bulk.errors import InvalidWebhookPayload
from bulk.mapping.payloads import (
    MALFORMED_VARIANT,
    BulkOperationFinished,
    InventoryLevelChanged,
    ProductDeleted,
    ProductSnapshot,
    parse_webhook,
    product_items,
)
from bulk.outcomes import failure_notice, record_failure
from bulk.shopify import documents
from bulk.shopify.budget import Priority
from bulk.shopify.reads import InventoryRead, read_inventory, read_product
from bulk.webhooks.clients import ShopClients
from bulk.webhooks.delivery import Outcome, WebhookDelivery
from bulk.webhooks.link import FullSyncLink
from bulk.webhooks.locks import KeyedLocks
from bulk.webhooks.refusals import RefusalNotices
from catalog_store.alerts import AlertSource
from catalog_store.items import CatalogItem
from catalog_store.models import Conflict, NotificationLevel, SyncConfig, SyncErrorCode, utcnow
from catalog_store.store import CatalogStore
from catalog_store.writes import trusted

log = logging.getLogger(__name__)


class WebhookApplier:
    """Applies deliveries and product snapshots; shared by the workers and reconciliation, so both
    write through the same per-product lock."""

    def __init__(self, store: CatalogStore, sync: FullSyncLink, clients: ShopClients) -> None:
        self.store = store
        self.sync = sync
        self.clients = clients
        self._products = KeyedLocks()
        self._shops = KeyedLocks()
        self._notified_conflicts: OrderedDict[tuple[str, str, str, str], None] = OrderedDict()
        self.refusals = RefusalNotices(sync.notifier)
        self._pending_inventory: dict[str, dict[str, asyncio.Future[Outcome]]] = {}  # shop -> item -> outcome
        self._inventory_readers: dict[str, asyncio.Task[None]] = {}

    async def apply(self, delivery: WebhookDelivery) -> Outcome:
        """Apply one delivery now (the workers call this; tests may too). Raises InvalidWebhookPayload,
        StoreError, ShopifyError."""
        try:
            change = parse_webhook(delivery.topic, delivery.payload, received_at=delivery.received_at)
        except InvalidWebhookPayload as exc:
            raise await self._refused(delivery, exc) from None
        shop = delivery.shop_domain
        if isinstance(change, BulkOperationFinished):
            self.sync.bulk_finished(shop, change.operation_id)
            return Outcome.BULK_WOKEN
        config = await self.store.get_sync(shop)
        if config is None:
            log.info("webhook %s for %s ignored: Shopify sync is not enabled for this shop", delivery.topic, shop)
            return Outcome.IGNORED
        if not config.active:
            log.info("webhook %s for %s not applied: the sync is inactive (%s)", delivery.topic, shop,
                     config.error_code or "disabled")
            return Outcome.IGNORED
        if isinstance(change, ProductDeleted):
            # The delete body is the product id only, and X-Shopify-Triggered-At is not signed: the
            # tombstone takes the receive time, never a sender's. Shopify stamps every change of the
            # product before its deletion, which is before we receive it, so none is later; and ids
            # are never reused, so no real change comes after (a full sync listing the product ends it).
            await self.delete_product(config, change.product_id, delivery.received_at)
            return Outcome.APPLIED
        if isinstance(change, InventoryLevelChanged):
            return await self._coalesced_inventory(config, change.inventory_item_id)
        snapshot = change if change.complete else await read_product(await self.clients.client(config), change.product_id)
        if snapshot is None:
            return Outcome.NOT_FOUND
        return await self.apply_snapshot(config, snapshot)

    async def delete_product(self, config: SyncConfig, product_id: str, deleted_at: datetime) -> int:
        """Delete a product's items, leaving a tombstone at `deleted_at`; returns the items deleted."""
        async with self._products.hold((config.shop_domain, product_id)):
            deleted = await self.store.delete_product(config.catalog_name, product_id, deleted_at)
        log.debug("product %s of %s deleted: %d items", product_id, config.shop_domain, deleted)
        return deleted

    async def apply_batch(self, deliveries: Sequence[WebhookDelivery]) -> list[Outcome]:
        """Apply deliveries of one shop that need an Admin API read, in one go where Shopify allows:
        every inventory_levels/update of the batch costs one `nodes(ids:)` call per 250 inventory
        items; the others (products payloads listing only their first 100 variants) are applied one
        by one, in order. Raises what `apply` raises for the first delivery that fails (those before
        it are applied; applying them again changes nothing)."""
        outcomes: list[Outcome | None] = [None] * len(deliveries)
        inventory: dict[str, list[tuple[int, str]]] = {}  # shop -> (position, inventory item id)
        for position, delivery in enumerate(deliveries):
            try:
                change = parse_webhook(delivery.topic, delivery.payload, received_at=delivery.received_at)
            except InvalidWebhookPayload:
                change = None  # `apply` refuses it, and notifies
            if isinstance(change, InventoryLevelChanged):
                inventory.setdefault(delivery.shop_domain, []).append((position, change.inventory_item_id))
            else:
                outcomes[position] = await self.apply(delivery)
        for shop, pending in inventory.items():
            config = await self.store.get_sync(shop)
            if config is None or not config.active:
                log.info("%d inventory webhooks for %s ignored: the sync is not enabled or inactive", len(pending), shop)
                for position, _ in pending:
                    outcomes[position] = Outcome.IGNORED
                continue
            by_item = await self.apply_inventory(config, [item_id for _, item_id in pending])
            for position, item_id in pending:
                outcomes[position] = by_item[item_id]
        return [outcome if outcome is not None else Outcome.IGNORED for outcome in outcomes]

    async def apply_inventory(self, config: SyncConfig, inventory_item_ids: Sequence[str], *,
                              reads: Sequence[InventoryRead] | None = None,
                              priority: Priority = Priority.WEBHOOK,
                              source: AlertSource = AlertSource.WEBHOOK) -> dict[str, Outcome]:
        """Write the current quantities of these inventory items' variants (read through the Admin
        API unless `reads` gives them, as reconciliation does) as inventory changes; an outcome per
        inventory item id."""
        catalog = config.catalog_name
        ids = list(dict.fromkeys(inventory_item_ids))
        outcomes = dict.fromkeys(ids, Outcome.IGNORED)  # not in the catalog (skipped, or its product's webhook is on its way)
        known = [i for i in await self.store.find_by_inventory_items(catalog, ids) if i.inventory_item_id in outcomes]
        if not known:
            return outcomes
        variants = [item.shopify_variant_id for item in known]
        if reads is None:
            found = await read_inventory(await self.clients.client(config), variants, priority=priority)
        else:
            found = {read.variant_id: read for read in reads}
        for item in known:
            outcomes[item.inventory_item_id or ""] = Outcome.UNCHANGED if item.shopify_variant_id in found \
                else Outcome.NOT_FOUND
        products = sorted({item.shopify_product_id for item in known if item.shopify_variant_id in found})
        async with contextlib.AsyncExitStack() as held:
            for product_id in products:  # in sorted order: batches never wait on each other in a circle
                await held.enter_async_context(self._products.hold((config.shop_domain, product_id)))
            # Read again under the locks: a snapshot applied since the first read is the one to change.
            current = await self.store.get_items_by_variant(catalog, [v for v in variants if v in found])
            writes = [changed for changed, differs in (_with_inventory(i, found[i.shopify_variant_id])
                                                       for i in current) if differs]
            if not writes:
                return outcomes
            result = await self.store.write_items(catalog, writes, limit_bytes=self.sync.settings.storage_limit_bytes,
                                                  source=source)
        if result.limit_reached:
            await self._deactivate(config, writes[0].shopify_product_id)
            for item in writes:
                outcomes[item.inventory_item_id or ""] = Outcome.LIMIT_REACHED
            return outcomes
        for item in await self.store.get_items_by_variant(catalog, [i.shopify_variant_id for i in writes]):
            read = found[item.shopify_variant_id]
            key = item.inventory_item_id or ""
            if item.inventory_quantity == read.quantity and item.inventory_at is not None and item.inventory_at >= read.at:
                outcomes[key] = Outcome.APPLIED
            elif outcomes.get(key) is not Outcome.APPLIED:
                outcomes[key] = Outcome.STALE  # the catalog holds a newer quantity
        return outcomes

    async def _coalesced_inventory(self, config: SyncConfig, inventory_item_id: str) -> Outcome:
        """One delivery's inventory change, read together with every other one of the shop pending at
        the same time: while a read is in flight, the next deliveries wait for the following one,
        which takes them all (up to 250): a burst costs a few calls, an idle shop no added wait."""
        shop = config.shop_domain
        pending = self._pending_inventory.setdefault(shop, {})
        future = pending.get(inventory_item_id)
        if future is None:
            future = pending[inventory_item_id] = asyncio.get_running_loop().create_future()
        if shop not in self._inventory_readers:
            task = asyncio.create_task(self._read_pending_inventory(config), name=f"inventory-{shop}")
            self._inventory_readers[shop] = task
        return await asyncio.shield(future)

    async def _read_pending_inventory(self, config: SyncConfig) -> None:
        shop = config.shop_domain
        try:
            while pending := self._pending_inventory.get(shop):
                batch = dict(list(pending.items())[: documents.MAX_PAGE])
                for item_id in batch:
                    del pending[item_id]
                try:
                    outcomes = await self.apply_inventory(config, list(batch))
                except Exception as exc:  # every delivery of the batch fails alike, and is retried alike
                    for future in batch.values():
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for item_id, future in batch.items():
                    if not future.done():
                        future.set_result(outcomes[item_id])
        finally:
            del self._inventory_readers[shop]
            if not self._pending_inventory.get(shop):
                self._pending_inventory.pop(shop, None)

    async def apply_snapshot(
        self, config: SyncConfig, snapshot: ProductSnapshot, *, source: AlertSource = AlertSource.WEBHOOK
    ) -> Outcome:
        """Write a product's items unless the catalog holds newer data for it (`source`: which path
        made the change, as alert events report it)."""
        shop, catalog = config.shop_domain, config.catalog_name
        product_id = snapshot.product_id
        async with self._products.hold((shop, product_id)):
            stored = await self.store.get_items_by_product(catalog, product_id)
            now = utcnow()  # a stored time in the future is no evidence of newer data (`writes.trusted`)
            if any(s.updated_at is not None and s.updated_at > snapshot.updated_at and trusted(s.updated_at, now)
                   for s in stored):
                return Outcome.STALE
            known_url = next((s.product_url for s in stored
                              if s.product_handle == snapshot.product.handle and s.product_url), None)
            mapped = product_items(snapshot, identifier=config.identifier, shop_domain=shop,
                                   store_name=config.store_name or shop, online_store_url=known_url)
            for skip in mapped.skips:
                log.info("%s: variant skipped (%s): %s", shop, skip.reason, skip.example)
            # A variant Shopify would never describe so (e.g. an unreadable price) is no reason to
            # remove what the catalog holds for it: its item stays until a readable description.
            malformed = any(skip.reason == MALFORMED_VARIANT for skip in mapped.skips)
            by_variant = {s.shopify_variant_id: s for s in stored}
            if len(by_variant) == len(mapped.items) and all(
                by_variant.get(i.shopify_variant_id) == i for i in mapped.items
            ):
                return Outcome.UNCHANGED
            kept = {i.shopify_variant_id for i in mapped.items}
            if not malformed and any(variant_id not in kept for variant_id in by_variant):
                # A variant removed from the product, or one that no longer syncs (e.g. its SKU was
                # removed): replace the product's items.
                # The tombstone just before this snapshot refuses only data older than it.
                await self.store.delete_product(catalog, product_id, mapped.updated_at - timedelta(milliseconds=1))
            result = await self.store.write_items(catalog, mapped.items,
                                                  limit_bytes=self.sync.settings.storage_limit_bytes, source=source)
        if result.conflicts:
            await self._report_conflicts(config, product_id, result.conflicts)
        if result.limit_reached:
            await self._deactivate(config, product_id)
            return Outcome.LIMIT_REACHED
        if result.written == 0 and result.stale:
            return Outcome.STALE
        return Outcome.APPLIED

    async def _refused(self, delivery: WebhookDelivery, error: InvalidWebhookPayload) -> InvalidWebhookPayload:
        """The refusal to raise (with the webhook id), after notifying a synced shop of it."""
        refused = InvalidWebhookPayload(error.reason, fix=error.fix, webhook_id=delivery.webhook_id)
        try:
            config = await self.store.get_sync(delivery.shop_domain)
            if config is not None:
                await self.refusals.refused(config, delivery, refused)
        except Exception as exc:  # the refusal is what the caller must see
            log.warning("could not notify %s of refused webhook %s: %s", delivery.shop_domain, delivery.webhook_id, exc)
        return refused

    async def _report_conflicts(self, config: SyncConfig, product_id: str, conflicts: Sequence[Conflict]) -> None:
        for conflict in conflicts:
            key = (config.shop_domain, conflict.item_id, conflict.variant_id, conflict.existing_variant_id)
            if key in self._notified_conflicts:
                continue
            self._notified_conflicts[key] = None
            if len(self._notified_conflicts) > 1000:
                self._notified_conflicts.popitem(last=False)
            await self.sync.notifier.notify(
                config.shop_domain,
                NotificationLevel.ERROR,
                "Shopify update not applied: duplicate SKU",
                f"SKU {conflict.item_id!r} is used by variant {conflict.variant_id} (product {product_id}) and "
                f"by variant {conflict.existing_variant_id}, which holds it in catalog {config.catalog_name}. "
                f"Variant {conflict.variant_id} was not updated.\nHow to fix: make every SKU unique in Shopify; "
                "the next change of the product (or a re-sync) then applies it.",
            )

    async def _deactivate(self, config: SyncConfig, product_id: str) -> None:
        shop = config.shop_domain
        limit = self.sync.settings.storage_limit_bytes
        message = (
            f"A Shopify update of product {product_id} would bring the catalogs above the storage limit of "
            f"{limit} bytes. The sync of {shop} is inactive: no further Shopify changes are applied."
        )
        async with self._shops.hold(shop):
            current = await self.store.get_sync(shop)
            if current is None or not current.active:
                return
            record_failure(current, SyncErrorCode.CATALOG_LIMIT_EXCEEDED, message)
            current.updated_at = utcnow()
            await self.store.save_sync(current)
        log.warning("%s", message)
        title, body = failure_notice(SyncErrorCode.CATALOG_LIMIT_EXCEEDED, message)
        await self.sync.notifier.notify(shop, NotificationLevel.ERROR, title, body, email=True)


def _with_inventory(item: CatalogItem, read: InventoryRead) -> tuple[CatalogItem, bool]:
    """The stored item with the quantity read, and whether that changes it (an older read than the
    stored quantity is left to the store's rule, which keeps the newer one)."""
    current_at = item.inventory_at or item.updated_at
    if item.inventory_quantity == read.quantity and current_at is not None and current_at >= read.at:
        return item, False
    return msgspec.structs.replace(item, inventory_quantity=read.quantity, inventory_at=read.at), True
