"""The webhook intake: the HTTP handler only verifies and `submit`s a delivery (Shopify wants an
answer within 5 s); a bounded queue feeds a few workers that apply it (`bulk.webhooks.apply`), and
reconciliation runs beside them (`bulk.webhooks.reconcile`).

- duplicates (same `X-Shopify-Webhook-Id`, remembered in a bounded LRU) are dropped at `submit`;
  across processes sharing the store, a worker claims the delivery in the store before applying
  it, so one process applies it (a claim is released when applying fails, so a redelivery can);
- retryable failures (store or Shopify unavailable) are retried with backoff, then logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter, OrderedDict
from datetime import datetime

from bulk.errors import BulkError, InvalidWebhookPayload
from bulk.mapping.payloads import ProductSnapshot
from bulk.shopify.budget import BudgetRegistry
from bulk.webhooks.apply import WebhookApplier
from bulk.webhooks.clients import ClientFactory, ShopClients
from bulk.webhooks.delivery import Outcome, ProcessorSettings, ReconcileResult, SubmitResult, WebhookDelivery
from bulk.webhooks.link import FullSyncLink, SyncLimits
from bulk.webhooks.reconcile import Reconciler, reconcile_lease
from catalog_store.errors import StoreError
from catalog_store.models import SyncConfig
from catalog_store.store import CatalogStore

log = logging.getLogger(__name__)

__all__ = ["FullSyncLink", "Outcome", "ProcessorSettings", "ReconcileResult", "SubmitResult", "SyncLimits",
           "WebhookDelivery", "WebhookProcessor", "reconcile_lease"]


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
        budgets: BudgetRegistry | None = None,
    ) -> None:
        self.store = store
        self.sync = sync
        self.settings = settings or ProcessorSettings()
        self.stats: Counter[str] = Counter()
        self.clients = ShopClients(sync.settings, client_factory, budgets)
        self.applier = WebhookApplier(store, sync, self.clients)
        self.reconciler = Reconciler(store, sync, self.applier, owner_id=owner_id or sync.owner_id,
                                     overlap=self.settings.reconcile_overlap)
        self._queue: asyncio.Queue[WebhookDelivery] = asyncio.Queue(self.settings.queue_size)
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = True

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        if self._tasks:
            return
        self._closed = False
        self._tasks = [asyncio.create_task(self._work(), name=f"webhook-worker-{n}")
                       for n in range(self.settings.workers)]
        if self.settings.reconcile_interval is not None:
            self._tasks.append(asyncio.create_task(
                self.reconciler.run_periodically(self.settings.reconcile_interval), name="webhook-reconcile"))

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
        for shop in self.reconciler.passes:  # let another process take these shops over at once
            with contextlib.suppress(Exception):
                await self.store.release_lease(reconcile_lease(shop), self.reconciler.owner_id)
        await self.clients.close()

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

    # -- applying (the workers call these; tests may too) ------------------------------------------

    async def apply(self, delivery: WebhookDelivery) -> Outcome:
        return await self.applier.apply(delivery)

    async def apply_snapshot(self, config: SyncConfig, snapshot: ProductSnapshot) -> Outcome:
        return await self.applier.apply_snapshot(config, snapshot)

    async def reconcile(self, shop_domain: str, since: datetime | None = None) -> ReconcileResult:
        return await self.reconciler.reconcile(shop_domain, since)

    @property
    def reconcile_passes(self) -> Counter[str]:
        return self.reconciler.passes
