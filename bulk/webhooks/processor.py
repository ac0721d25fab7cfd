"""The webhook intake: the HTTP handler verifies a delivery and `submit`s it; it is stored in the
store's inbox (durable: a crash loses none) before Shopify gets its 200, and applied by the lane
workers of any process sharing the store (`bulk.webhooks.lanes`); reconciliation runs beside them
(`bulk.webhooks.reconcile`).

- duplicates (same shop and `X-Shopify-Webhook-Id`) are refused by the inbox for 48 h, across
  processes; a bounded LRU answers repeats seen by this process without a round trip;
- a local submit wakes this process's workers at once; they also look at the inbox every
  `poll_interval` for other processes' deliveries and for expired claims of a stopped process;
- `close()` stops claiming, lets the batches being applied finish (at most `drain_timeout`) and
  gives back the claims of the rest: what was not applied stays in the inbox for any process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter, OrderedDict
from datetime import datetime

import orjson

from bulk.mapping.payloads import ProductSnapshot
from bulk.shopify.budget import BudgetRegistry
from bulk.webhooks.apply import WebhookApplier
from bulk.webhooks.clients import ClientFactory, ShopClients
from bulk.webhooks.delivery import Outcome, ProcessorSettings, ReconcileResult, SubmitResult, WebhookDelivery
from bulk.webhooks.lanes import LaneWorkers, lane_for
from bulk.webhooks.link import FullSyncLink, SyncLimits
from bulk.webhooks.reconcile import Reconciler, reconcile_lease
from catalog_store.errors import CatalogGatewayError
from catalog_store.inbox import InboxDelivery, InboxLane
from catalog_store.models import SyncConfig
from catalog_store.store import CatalogStore

log = logging.getLogger(__name__)

__all__ = ["FullSyncLink", "Outcome", "ProcessorSettings", "ReconcileResult", "SubmitResult", "SyncLimits",
           "WebhookDelivery", "WebhookProcessor", "reconcile_lease"]

JOIN_POLL = 0.05  # seconds between looks at the backlog while joining


class WebhookProcessor:
    """Inbox intake, lane workers applying webhooks, periodic reconciliation. `start()` before,
    `close()` after."""

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
        self.owner_id = owner_id or sync.owner_id
        self.clients = ShopClients(sync.settings, client_factory, budgets)
        self.applier = WebhookApplier(store, sync, self.clients)
        self.reconciler = Reconciler(store, sync, self.applier, owner_id=self.owner_id,
                                     overlap=self.settings.reconcile_overlap)
        self.lanes = {
            lane: LaneWorkers(lane, count, store, self.applier, sync.notifier, self.settings, self.owner_id,
                              self.stats)
            for lane, count in ((InboxLane.DIRECT, self.settings.workers),
                                (InboxLane.READ, self.settings.read_workers))
        }
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._shops: set[str] = set()  # shops with deliveries accepted here (what `join` waits for)
        self._workers: list[asyncio.Task[None]] = []
        self._reconcile: asyncio.Task[None] | None = None
        self._closed = True

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        if not self._closed:
            return
        self._closed = False
        for workers in self.lanes.values():
            self._workers += workers.tasks()
        if self.settings.reconcile_interval is not None:
            self._reconcile = asyncio.create_task(
                self.reconciler.run_periodically(self.settings.reconcile_interval), name="webhook-reconcile")

    async def close(self) -> None:
        """Stop accepting and claiming; batches being applied get `drain_timeout` seconds; every
        delivery not applied stays in the inbox, its claim given back."""
        self._closed = True
        for workers in self.lanes.values():
            workers.stop()
        if self._workers:
            _, unfinished = await asyncio.wait(self._workers, timeout=self.settings.drain_timeout)
            for task in unfinished:
                task.cancel()
            await asyncio.gather(*self._workers, return_exceptions=True)
            self._workers = []
        for workers in self.lanes.values():
            await workers.release_held()
        if self._reconcile is not None:
            self._reconcile.cancel()
            await asyncio.gather(self._reconcile, return_exceptions=True)
            self._reconcile = None
        for shop in self.reconciler.passes:  # let another process take these shops over at once
            with contextlib.suppress(Exception):
                await self.store.release_lease(reconcile_lease(shop), self.reconciler.owner_id)
        await self.clients.close()

    async def join(self) -> None:
        """Wait until every delivery accepted here is applied or failed (by any process)."""
        while True:
            if all(w.idle for w in self.lanes.values()):
                statuses = [await self.store.inbox_status(shop) for shop in list(self._shops)]
                if all(s.backlog == 0 for s in statuses):
                    return
            await asyncio.sleep(JOIN_POLL)

    # -- intake (called by the HTTP handler) ---------------------------------------------------

    async def submit(self, delivery: WebhookDelivery) -> SubmitResult:
        """Store the delivery in the inbox: ACCEPTED once it is durable, DUPLICATE for a webhook id
        seen before, UNAVAILABLE when the store failed (Shopify must deliver it again)."""
        if self._closed:
            return SubmitResult.CLOSED
        webhook_id = delivery.webhook_id
        seen_key = None if webhook_id is None else f"{delivery.shop_domain}/{webhook_id}"
        if seen_key is not None and seen_key in self._seen:
            self._seen.move_to_end(seen_key)
            self.stats["duplicate"] += 1
            return SubmitResult.DUPLICATE
        lane = lane_for(delivery.topic, delivery.payload)
        body = delivery.body if delivery.body is not None else orjson.dumps(delivery.payload)
        try:
            stored = await self.store.inbox_put(InboxDelivery(
                delivery.shop_domain, delivery.topic, webhook_id, body, delivery.triggered_at,
                delivery.received_at, lane))
        except CatalogGatewayError as exc:
            self.stats["unavailable"] += 1
            log.warning("webhook %s for %s refused with 503 (Shopify delivers it again): the inbox could not "
                        "store it: %s", delivery.topic, delivery.shop_domain, exc)
            return SubmitResult.UNAVAILABLE
        if seen_key is not None:
            self._seen[seen_key] = None
            if len(self._seen) > self.settings.dedupe_size:
                self._seen.popitem(last=False)
        if not stored:
            self.stats["duplicate"] += 1
            return SubmitResult.DUPLICATE
        self._shops.add(delivery.shop_domain)
        self.stats["accepted"] += 1
        self.lanes[lane].wake()
        return SubmitResult.ACCEPTED

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
