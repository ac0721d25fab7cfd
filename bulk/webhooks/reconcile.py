"""Reconciliation: catches the changes no webhook brought (Shopify may drop deliveries).

Every `interval`, products updated since the last pass are read through the Admin API and applied
like a webhook (`WebhookApplier.apply_snapshot`); deleted products are caught by the next full sync,
as they are no longer listed. With several processes on one database, one of them reconciles a shop
(a lease, taken over when its holder stops), from the pass's persisted start.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from datetime import datetime, timedelta

from bulk.shopify import documents
from bulk.shopify.reads import connection_page, product_number, read_product
from bulk.webhooks.apply import WebhookApplier
from bulk.webhooks.delivery import Outcome, ReconcileResult
from bulk.webhooks.link import FullSyncLink
from catalog_store.alerts import AlertSource
from catalog_store.models import RunStatus, utcnow
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
        search = f"updated_at:>='{since.strftime('%Y-%m-%dT%H:%M:%SZ')}'"
        outcomes: Counter[str] = Counter()
        products, after = 0, None
        while True:
            data = await client.execute(documents.PRODUCTS_UPDATED_SINCE, {
                "query": search, "first": documents.RECONCILE_PRODUCTS_PAGE_SIZE, "after": after,
                "variants": documents.RECONCILE_VARIANTS_PAGE_SIZE})
            connection = connection_page(data.get("products"), "products")
            for node in connection["nodes"]:
                snapshot = await read_product(client, product_number(node), first_page=node)
                if snapshot is not None:
                    outcomes[(await self.applier.apply_snapshot(config, snapshot, source=AlertSource.RECONCILE)).value] += 1
                    products += 1
            if not connection["pageInfo"]["hasNextPage"]:
                break
            after = connection["pageInfo"]["endCursor"]
        await self.store.mark_reconciled(shop_domain, started)  # where the next pass starts, in any process
        if outcomes.get(Outcome.APPLIED):
            log.info("reconciliation of %s applied %d products changed since %s that no webhook brought",
                     shop_domain, outcomes[Outcome.APPLIED], since.isoformat())
        return ReconcileResult(shop_domain, since, products, outcomes)

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
