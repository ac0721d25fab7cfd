"""Reconciliation: catches the changes no webhook brought (Shopify may drop deliveries).

Every `interval`, at the lowest priority of the shop's cost scheduler (webhook reads go first):
- the products updated since the last pass are listed (id and updatedAt); those the catalog holds
  older data of (or none) are read whole through the Admin API and applied like a webhook
  (`WebhookApplier.apply_snapshot`), so a pass with nothing missed costs its listings only;
- variants updated since then are listed with their quantities (an inventory change moves its
  variant's updatedAt, not its product's) and applied as inventory changes;
- every product id is listed (id only, 1 point each) and compared with the catalog's: a product the
  catalog holds but Shopify no longer lists was deleted, and is deleted with a tombstone.
With several processes on one database, one of them reconciles a shop (a lease, taken over when its
holder stops), from the pass's persisted start.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from datetime import datetime, timedelta

from bulk.mapping.variants import INVENTORY_ITEM_PREFIX, gid_number
from bulk.shopify import documents
from bulk.shopify.budget import Priority
from bulk.shopify.client import ShopifyClient
from bulk.shopify.reads import (
    InventoryRead,
    connection_page,
    inventory_read,
    product_number,
    read_product,
    shopify_time,
)
from bulk.webhooks.apply import WebhookApplier
from bulk.webhooks.delivery import Outcome, ReconcileResult
from bulk.webhooks.link import FullSyncLink
from catalog_store.alerts import AlertSource
from catalog_store.models import RunStatus, SyncConfig, utcnow
from catalog_store.store import CatalogStore

log = logging.getLogger(__name__)


class Reconciler:
    """Periodic and on-demand reconciliation passes, by shop."""

    def __init__(self, store: CatalogStore, sync: FullSyncLink, applier: WebhookApplier, *,
                 owner_id: str, overlap: float) -> None:
        self.store = store
        self.sync = sync
        self.applier = applier
        self.owner_id = owner_id  # this process, as a reconciliation lease holder
        self.overlap = overlap  # each pass re-reads this much before the previous one (clock skew)
        self.passes: Counter[str] = Counter()  # periodic passes this process ran, by shop

    async def reconcile(self, shop_domain: str, since: datetime | None = None) -> ReconcileResult:
        """Apply every product updated since `since` (default: the previous pass, else the start of the
        last completed full sync, minus `reconcile_overlap`) through the Admin API."""
        config = await self.store.get_sync(shop_domain)
        if config is None or not config.active or self.sync.local_run(shop_domain) is not None:
            return ReconcileResult(shop_domain, None)
        if since is None:
            since = config.reconciled_at
            if since is None:
                completed = [r for r in await self.store.list_runs(shop_domain, last=10)
                             if r.status is RunStatus.COMPLETED]
                if not completed:
                    return ReconcileResult(shop_domain, None)
                since = completed[0].started_at
            since -= timedelta(seconds=self.overlap)
        started = utcnow()
        client = await self.applier.clients.client(config)
        spent_before = client.budget.spent[Priority.RECONCILE]
        search = f"updated_at:>='{since.strftime('%Y-%m-%dT%H:%M:%SZ')}'"
        outcomes: Counter[str] = Counter()
        products, after = 0, None
        while True:
            data = await client.execute(documents.PRODUCTS_CHANGED_SINCE, {
                "query": search, "first": documents.MAX_PAGE, "after": after}, priority=Priority.RECONCILE,
                cost=2 + documents.MAX_PAGE)
            connection = connection_page(data.get("products"), "products")
            for node in connection["nodes"]:
                product_id = product_number(node)
                products += 1
                if not await self._behind(config, product_id, shopify_time(node.get("updatedAt"), "updatedAt")):
                    outcomes[Outcome.UNCHANGED.value] += 1
                    continue
                snapshot = await read_product(client, product_id, priority=Priority.RECONCILE)
                if snapshot is not None:
                    outcome = await self.applier.apply_snapshot(config, snapshot, source=AlertSource.RECONCILE)
                    outcomes[outcome.value] += 1
            if not connection["pageInfo"]["hasNextPage"]:
                break
            after = connection["pageInfo"]["endCursor"]
        inventory, inventory_applied = await self._inventory(config, client, search)
        deleted = await self._deletes(config, client, started)
        await self.store.mark_reconciled(shop_domain, started)  # where the next pass starts, in any process
        if outcomes.get(Outcome.APPLIED) or inventory_applied or deleted:
            log.info("reconciliation of %s applied %d product changes, %d inventory changes and %d deletes since "
                     "%s that no webhook brought", shop_domain, outcomes[Outcome.APPLIED], inventory_applied, deleted,
                     since.isoformat())
        cost = client.budget.spent[Priority.RECONCILE] - spent_before
        return ReconcileResult(shop_domain, since, products, outcomes, inventory=inventory,
                               inventory_applied=inventory_applied, deleted=deleted, cost=cost)

    async def _behind(self, config: SyncConfig, product_id: str, updated_at: datetime) -> bool:
        """Whether the catalog lacks the product as of `updated_at` (no items, or older ones)."""
        stored = await self.store.get_items_by_product(config.catalog_name, product_id)
        return not stored or any(item.updated_at is None or item.updated_at < updated_at for item in stored)

    async def _inventory(self, config: SyncConfig, client: ShopifyClient, search: str) -> tuple[int, int]:
        """Apply the quantities of the variants updated since the pass's start; returns how many were
        compared and how many applied."""
        count, applied_count, after = 0, 0, None
        while True:
            data = await client.execute(documents.VARIANTS_UPDATED_SINCE, {
                "query": search, "first": documents.MAX_PAGE, "after": after}, priority=Priority.RECONCILE,
                cost=2 + documents.MAX_PAGE * documents.VARIANT_CHANGE_COST)
            connection = connection_page(data.get("productVariants"), "productVariants")
            reads: list[InventoryRead] = []
            items: list[str] = []
            for node in connection["nodes"]:
                item = node.get("inventoryItem") if isinstance(node, dict) else None
                read = inventory_read(node) if isinstance(node, dict) else None
                item_id = gid_number(item.get("id"), INVENTORY_ITEM_PREFIX) if isinstance(item, dict) else None
                if read is not None and item_id is not None:
                    reads.append(read)
                    items.append(item_id)
            if reads:
                applied = await self.applier.apply_inventory(config, items, reads=reads, priority=Priority.RECONCILE,
                                                             source=AlertSource.RECONCILE)
                applied_count += sum(1 for o in applied.values() if o is Outcome.APPLIED)
                count += len(reads)
            if not connection["pageInfo"]["hasNextPage"]:
                return count, applied_count
            after = connection["pageInfo"]["endCursor"]

    async def _deletes(self, config: SyncConfig, client: ShopifyClient, started: datetime) -> int:
        """Delete the catalog's products Shopify no longer lists; returns how many."""
        # The catalog's ids first: a product created while Shopify's ids are listed is not in this
        # list, so it can never be taken for a deleted one.
        held = await self.store.list_product_ids(config.catalog_name)
        if not held:
            return 0
        listed: set[str] = set()
        after = None
        while True:
            data = await client.execute(documents.PRODUCT_IDS, {"first": documents.MAX_PAGE, "after": after},
                                        priority=Priority.RECONCILE, cost=2 + documents.MAX_PAGE)
            connection = connection_page(data.get("products"), "products")
            listed.update(product_number(node) for node in connection["nodes"])
            if not connection["pageInfo"]["hasNextPage"]:
                break
            after = connection["pageInfo"]["endCursor"]
        gone = [product_id for product_id in held if product_id not in listed]
        for product_id in gone:
            # Deleted before `started` at the latest: a late update made before it cannot resurrect it.
            await self.applier.delete_product(config, product_id, started)
        return len(gone)

    async def run_periodically(self, interval: float) -> None:
        # Held from pass to pass, so the same process keeps a shop; another takes it over once it
        # expires (its holder stopped). Keyed apart from the shop's sync lease.
        ttl = 2 * interval + 30
        while True:
            await asyncio.sleep(interval)
            for config in await self.store.list_syncs():
                shop = config.shop_domain
                try:
                    if not await self.store.acquire_lease(reconcile_lease(shop), self.owner_id, ttl):
                        continue  # another process reconciles this shop
                    await self.reconcile(shop)
                    self.passes[shop] += 1
                except Exception as exc:  # one shop's failure must not stop the others' reconciliation
                    log.warning("reconciliation of %s failed: %s: %s", shop, type(exc).__name__, exc)


def reconcile_lease(shop_domain: str) -> str:
    """The lease key of a shop's periodic reconciliation."""
    return f"{shop_domain}#reconcile"
