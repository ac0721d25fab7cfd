"""Applies Shopify webhooks to the catalog, near-real-time between full syncs: the I/O side of
`bulk.mapping.payloads`.

The HTTP handler only verifies and `submit`s a delivery (Shopify wants an answer within 5 s); a
bounded queue feeds a few workers that apply it:

- duplicates (same `X-Shopify-Webhook-Id`, remembered in a bounded LRU) are dropped at `submit`;
  across processes sharing the store, a worker claims the delivery in the store before applying
  it, so one process applies it (a claim is released when applying fails, so a redelivery can);
- an unknown shop, or a shop whose sync is inactive (over the storage limit), changes nothing;
- products/create|update write the product's items and remove those of variants the product no
  longer has (or that no longer sync); payloads listing only the first 100 variants are
  replaced by the product read through the Admin API; inventory_levels/update reads the variant's
  product (total quantities) through the Admin API; products/delete deletes the items and leaves a
  tombstone; bulk_operations/finish wakes the run polling that operation;
- every write is guarded by the product's `updated_at` in the store (and, per product, serialised in
  this process): an older payload never overwrites newer data, and a delete is never undone by a late
  update or an older full-sync snapshot;
- SKU conflicts are not overwritten: an error notification names the SKU and both variants;
- a write that would exceed the storage limit makes the sync inactive (CATALOG_LIMIT_EXCEEDED,
  notification and email) until the merchant disables and re-enables it;
- every `reconcile_interval`, products updated since the last pass are read through the Admin API
  and applied the same way (catches dropped webhooks; deleted products are caught by the next full
  sync, as they are no longer listed). With several processes on one database, one of them
  reconciles a shop (a lease, taken over when its holder stops), from the pass's persisted start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import aiohttp

from bulk.errors import BulkError, InvalidWebhookPayload
from bulk.mapping.payloads import (
    BulkOperationFinished,
    InventoryLevelChanged,
    ProductDeleted,
    ProductSnapshot,
    parse_webhook,
    product_items,
)
from bulk.outcomes import failure_notice, record_failure
from bulk.shopify import documents
from bulk.shopify.client import ShopifyClient, client_for
from bulk.shopify.reads import connection_page, product_number, read_product, read_product_by_inventory_item
from bulk.webhooks.delivery import Outcome, ProcessorSettings, ReconcileResult, SubmitResult, WebhookDelivery
from bulk.webhooks.link import FullSyncLink, SyncLimits
from bulk.webhooks.locks import KeyedLocks
from catalog_store.errors import StoreError
from catalog_store.models import (
    Conflict,
    NotificationLevel,
    RunStatus,
    SyncConfig,
    SyncErrorCode,
    utcnow,
)
from catalog_store.store import CatalogStore

log = logging.getLogger(__name__)

__all__ = ["FullSyncLink", "Outcome", "ProcessorSettings", "ReconcileResult", "SubmitResult", "SyncLimits",
           "WebhookDelivery", "WebhookProcessor", "reconcile_lease"]



ClientFactory = Callable[[SyncConfig], ShopifyClient]


class WebhookProcessor:
    """Queue and workers applying webhooks; periodic reconciliation. `start()` before, `close()` after."""

    def __init__(
        self,
        store: CatalogStore,
        sync: FullSyncLink,
        *,
        settings: ProcessorSettings | None = None,
        client_factory: ClientFactory | None = None,
        owner_id: str | None = None,
    ) -> None:
        self.store = store
        self.sync = sync
        self.owner_id = owner_id or sync.owner_id  # this process, as a reconciliation lease holder
        self.settings = settings or ProcessorSettings()
        self.stats: Counter[str] = Counter()
        self._client_factory = client_factory
        self._queue: asyncio.Queue[WebhookDelivery] = asyncio.Queue(self.settings.queue_size)
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._products = KeyedLocks()
        self._shops = KeyedLocks()
        self._clients: dict[str, tuple[str, ShopifyClient]] = {}
        self._notified_conflicts: OrderedDict[tuple[str, str, str, str], None] = OrderedDict()
        self.reconcile_passes: Counter[str] = Counter()  # periodic passes this process ran, by shop
        self._tasks: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None
        self._closed = True

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        if self._tasks:
            return
        self._closed = False
        if self._client_factory is None:
            self._session = aiohttp.ClientSession()
        self._tasks = [asyncio.create_task(self._work(), name=f"webhook-worker-{n}")
                       for n in range(self.settings.workers)]
        if self.settings.reconcile_interval is not None:
            self._tasks.append(asyncio.create_task(self._reconcile_periodically(), name="webhook-reconcile"))

    async def close(self) -> None:
        """Stop accepting, give queued deliveries `drain_timeout` seconds, then stop the workers."""
        self._closed = True
        if self._tasks:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), self.settings.drain_timeout)
            left = self._queue.qsize()
            if left:
                log.warning("%d webhook deliveries were not applied at shutdown; the next reconciliation or "
                            "full sync brings those changes in", left)
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self._tasks = []
        for shop in self.reconcile_passes:  # let another process take these shops over at once
            with contextlib.suppress(Exception):
                await self.store.release_lease(reconcile_lease(shop), self.owner_id)
        for _, client in self._clients.values():
            await client.close()
        self._clients.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def join(self) -> None:
        """Wait until every accepted delivery is applied (or failed)."""
        await self._queue.join()

    # -- intake (called by the HTTP handler: never blocks) ---------------------------------------

    def submit(self, delivery: WebhookDelivery) -> SubmitResult:
        if self._closed:
            return SubmitResult.CLOSED
        webhook_id = delivery.webhook_id
        if webhook_id is not None and webhook_id in self._seen:
            self._seen.move_to_end(webhook_id)
            self.stats["duplicate"] += 1
            return SubmitResult.DUPLICATE
        try:
            self._queue.put_nowait(delivery)
        except asyncio.QueueFull:
            self.stats["queue_full"] += 1
            log.warning("webhook queue full (%d): %s for %s refused with 503, Shopify retries it",
                        self.settings.queue_size, delivery.topic, delivery.shop_domain)
            return SubmitResult.QUEUE_FULL
        if webhook_id is not None:
            self._seen[webhook_id] = None
            if len(self._seen) > self.settings.dedupe_size:
                self._seen.popitem(last=False)
        self.stats["accepted"] += 1
        return SubmitResult.ACCEPTED

    async def _work(self) -> None:
        while True:
            delivery = await self._queue.get()
            try:
                await self._process(delivery)
            finally:
                self._queue.task_done()

    async def _process(self, delivery: WebhookDelivery) -> None:
        where = f"{delivery.topic} for {delivery.shop_domain} (webhook {delivery.webhook_id})"
        claimed = False
        for attempt in range(1, self.settings.max_attempts + 1):
            try:
                if not claimed and delivery.webhook_id is not None:
                    if not await self.store.claim_webhook(delivery.shop_domain, delivery.webhook_id,
                                                          self.settings.claim_ttl):
                        self.stats["duplicate"] += 1  # another process (or an earlier delivery) applies it
                        return
                    claimed = True
                outcome = await self.apply(delivery)
            except InvalidWebhookPayload as exc:
                self.stats["refused"] += 1
                log.error("webhook %s not applied: %s. %s", where, exc, exc.fix)
                return
            except (StoreError, BulkError) as exc:
                if exc.retryable and attempt < self.settings.max_attempts:
                    delay = self.settings.retry_delay * 2 ** (attempt - 1)
                    log.warning("webhook %s: %s; retry %d in %.1fs", where, exc, attempt, delay)
                    await asyncio.sleep(delay)
                    continue
                self.stats["failed"] += 1
                log.error("webhook %s not applied after %d attempts: %s. %s", where, attempt, exc, exc.fix)
                await self._release(delivery, claimed)
                return
            except Exception:
                self.stats["failed"] += 1
                log.exception("webhook %s not applied: unexpected error", where)
                await self._release(delivery, claimed)
                return
            self.stats[outcome.value] += 1
            return

    async def _release(self, delivery: WebhookDelivery, claimed: bool) -> None:
        """Give up a failed delivery's claim: Shopify's redelivery (to any process) may apply it."""
        if not claimed or delivery.webhook_id is None:
            return
        try:
            await self.store.release_webhook(delivery.shop_domain, delivery.webhook_id)
        except Exception as exc:  # the claim then just expires
            log.warning("could not release the claim of webhook %s: %s", delivery.webhook_id, exc)

    # -- applying --------------------------------------------------------------------------------

    async def apply(self, delivery: WebhookDelivery) -> Outcome:
        """Apply one delivery now (the workers call this; tests may too). Raises InvalidWebhookPayload,
        StoreError, ShopifyError."""
        change = parse_webhook(delivery.topic, delivery.payload)
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
            # Shopify's updated_at of a product is never later than the event deleting it.
            deleted_at = max(delivery.triggered_at or delivery.received_at, delivery.received_at)
            async with self._products.hold((shop, change.product_id)):
                deleted = await self.store.delete_product(config.catalog_name, change.product_id, deleted_at)
            log.debug("product %s of %s deleted: %d items", change.product_id, shop, deleted)
            return Outcome.APPLIED
        if isinstance(change, InventoryLevelChanged):
            known = await self.store.find_by_inventory_item(config.catalog_name, change.inventory_item_id)
            if not known:  # not in the catalog (skipped, or its product's own webhook is on its way)
                return Outcome.IGNORED
            snapshot = await self._read_by_inventory_item(config, change.inventory_item_id)
        else:
            snapshot = change if change.complete else await self._read_product(config, change.product_id)
        if snapshot is None:
            return Outcome.NOT_FOUND
        return await self.apply_snapshot(config, snapshot)

    async def apply_snapshot(self, config: SyncConfig, snapshot: ProductSnapshot) -> Outcome:
        """Write a product's items unless the catalog holds newer data for it."""
        shop, catalog = config.shop_domain, config.catalog_name
        product_id = snapshot.product_id
        async with self._products.hold((shop, product_id)):
            stored = await self.store.get_items_by_product(catalog, product_id)
            if any(s.updated_at is not None and s.updated_at > snapshot.updated_at for s in stored):
                return Outcome.STALE
            known_url = next((s.product_url for s in stored
                              if s.product_handle == snapshot.product.handle and s.product_url), None)
            mapped = product_items(snapshot, identifier=config.identifier, shop_domain=shop,
                                   store_name=config.store_name or shop, online_store_url=known_url)
            for skip in mapped.skips:
                log.info("%s: variant skipped (%s): %s", shop, skip.reason, skip.example)
            by_variant = {s.shopify_variant_id: s for s in stored}
            if len(by_variant) == len(mapped.items) and all(
                by_variant.get(i.shopify_variant_id) == i for i in mapped.items
            ):
                return Outcome.UNCHANGED
            kept = {i.shopify_variant_id for i in mapped.items}
            if any(variant_id not in kept for variant_id in by_variant):
                # A variant removed from the product, or one that no longer syncs (e.g. its SKU was
                # removed): replace the product's items.
                # The tombstone just before this snapshot refuses only data older than it.
                await self.store.delete_product(catalog, product_id, mapped.updated_at - timedelta(milliseconds=1))
            result = await self.store.write_items(catalog, mapped.items,
                                                  limit_bytes=self.sync.settings.storage_limit_bytes)
        if result.conflicts:
            await self._report_conflicts(config, product_id, result.conflicts)
        if result.limit_reached:
            await self._deactivate(config, product_id)
            return Outcome.LIMIT_REACHED
        if result.written == 0 and result.stale:
            return Outcome.STALE
        return Outcome.APPLIED

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

    # -- reading through the Admin API -------------------------------------------------------------

    async def _client(self, config: SyncConfig) -> ShopifyClient:
        """The shop's client (kept: its cost-bucket model paces our calls); a new token gets a new one."""
        cached = self._clients.pop(config.shop_domain, None)
        if cached is not None and cached[0] == config.access_token:
            self._clients[config.shop_domain] = cached
            return cached[1]
        if cached is not None:
            await cached[1].close()
        if self._client_factory is not None:
            client = self._client_factory(config)
        else:
            client = client_for(config.shop_domain, config.access_token, self.sync.settings, self._session)
        self._clients[config.shop_domain] = (config.access_token, client)
        return client

    async def _read_product(self, config: SyncConfig, product_id: str) -> ProductSnapshot | None:
        return await read_product(await self._client(config), product_id)

    async def _read_by_inventory_item(self, config: SyncConfig, inventory_item_id: str) -> ProductSnapshot | None:
        return await read_product_by_inventory_item(await self._client(config), inventory_item_id)

    # -- reconciliation ----------------------------------------------------------------------------

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
            since -= timedelta(seconds=self.settings.reconcile_overlap)
        started = utcnow()
        client = await self._client(config)
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
                    outcomes[(await self.apply_snapshot(config, snapshot)).value] += 1
                    products += 1
            if not connection["pageInfo"]["hasNextPage"]:
                break
            after = connection["pageInfo"]["endCursor"]
        await self.store.mark_reconciled(shop_domain, started)  # where the next pass starts, in any process
        if outcomes.get(Outcome.APPLIED):
            log.info("reconciliation of %s applied %d products changed since %s that no webhook brought",
                     shop_domain, outcomes[Outcome.APPLIED], since.isoformat())
        return ReconcileResult(shop_domain, since, products, outcomes)

    async def _reconcile_periodically(self) -> None:
        interval = self.settings.reconcile_interval
        assert interval is not None
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
                    self.reconcile_passes[shop] += 1
                except Exception as exc:  # one shop's failure must not stop the others' reconciliation
                    log.warning("reconciliation of %s failed: %s: %s", shop, type(exc).__name__, exc)


def reconcile_lease(shop_domain: str) -> str:
    """The lease key of a shop's periodic reconciliation."""
    return f"{shop_domain}#reconcile"
