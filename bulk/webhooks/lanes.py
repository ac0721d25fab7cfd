"""The inbox's two lanes and their workers: `direct` entries are applied from their payload alone,
`read` entries need Admin API reads and are applied in batches of one shop, so a price change never
waits behind inventory reads.

A worker claims entries (with an expiry, renewed while it applies them), applies them and marks
them done. A retryable failure (store or Shopify unavailable) gives the entry back with a backoff;
after its last attempt, or on a failure no retry can fix, the entry is counted as failed and one
error notification names the product: never a silent drop. A failure of a shop whose sync was
disabled meanwhile drops that shop's entries quietly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bulk.errors import InvalidWebhookPayload
from bulk.mapping.payloads import (
    InventoryLevelChanged,
    ProductSnapshot,
    decode_payload,
    parse_webhook,
)
from bulk.notifications import Notifier
from bulk.webhooks.apply import WebhookApplier
from bulk.webhooks.delivery import Outcome, ProcessorSettings, WebhookDelivery
from catalog_store.errors import CatalogGatewayError
from catalog_store.inbox import InboxEntry, InboxLane
from catalog_store.models import NotificationLevel
from catalog_store.store import CatalogStore

log = logging.getLogger(__name__)


def lane_for(topic: str, payload: Mapping[str, Any]) -> InboxLane:
    """`read` for the changes that need an Admin API read (an inventory level; a product payload
    listing only its first variants), `direct` for the rest. An unreadable payload is `direct`: its
    worker refuses it at once."""
    try:
        change = parse_webhook(topic, payload)
    except InvalidWebhookPayload:
        return InboxLane.DIRECT
    if isinstance(change, InventoryLevelChanged) or (isinstance(change, ProductSnapshot) and not change.complete):
        return InboxLane.READ
    return InboxLane.DIRECT


def delivery_of(entry: InboxEntry) -> WebhookDelivery:
    """The delivery a claimed entry holds (its body is decoded again: it was checked at intake)."""
    stored = entry.delivery
    return WebhookDelivery(stored.topic, stored.shop_domain, decode_payload(stored.body), stored.webhook_id,
                           stored.triggered_at, stored.received_at, stored.body)


def subject_of(topic: str, payload: Mapping[str, Any]) -> str:
    """What a delivery is about, for a person: "product 123" or "inventory item 456"."""
    if topic.startswith("inventory_levels/"):
        return f"inventory item {payload.get('inventory_item_id', '(unknown)')}"
    if topic.startswith("bulk_operations/"):
        return f"bulk operation {payload.get('admin_graphql_api_id', '(unknown)')}"
    return f"product {payload.get('id', '(unknown)')}"


@dataclass(frozen=True, slots=True)
class _Failure:
    entry: InboxEntry
    error: BaseException


class LaneWorkers:
    """The workers of one lane in this process (`count` of them); `wake()` on a local put."""

    def __init__(self, lane: InboxLane, count: int, store: CatalogStore, applier: WebhookApplier,
                 notifier: Notifier, settings: ProcessorSettings, owner: str, stats: Counter[str]) -> None:
        self.lane = lane
        self.count = count
        self.store = store
        self.applier = applier
        self.notifier = notifier
        self.settings = settings
        self.owner = owner
        self.stats = stats
        self.batch = settings.read_batch if lane is InboxLane.READ else settings.direct_batch
        self.busy = 0
        self.held: dict[str, list[str]] = {}  # worker owner → entry ids it holds now
        self._event = asyncio.Event()
        self._stopping = False

    def wake(self) -> None:
        self._event.set()

    def tasks(self) -> list[asyncio.Task[None]]:
        return [asyncio.create_task(self._work(f"{self.owner}/{self.lane}-{n}"), name=f"webhook-{self.lane}-{n}")
                for n in range(self.count)]

    def stop(self) -> None:
        """Claim nothing more; the batches being applied finish."""
        self._stopping = True
        self._event.set()

    async def release_held(self) -> None:
        """Give back every claim of this process at once (at close): another process applies them."""
        for worker, ids in list(self.held.items()):
            if ids:
                with contextlib.suppress(Exception):  # else the claims just expire
                    await self.store.inbox_release(worker, ids)
        self.held.clear()

    async def _work(self, worker: str) -> None:
        while not self._stopping:
            try:
                entries = await self.store.inbox_claim(self.lane, worker, self.batch, self.settings.claim_ttl)
            except CatalogGatewayError as exc:
                log.warning("webhook inbox unreachable (%s); retrying in %.1fs", exc, self.settings.poll_interval)
                entries = []
            if not entries:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._event.wait(), self.settings.poll_interval)
                self._event.clear()
                continue
            self.busy += 1
            self.held[worker] = [e.id for e in entries]
            renewing = asyncio.create_task(self._renew(worker))
            try:
                await self._run(worker, entries)
            except Exception:  # a bug, not a delivery's failure: the claims expire, another attempt follows
                log.exception("webhook %s worker: %d claimed deliveries not finished", self.lane, len(entries))
            finally:  # cancelled (close): the claims stay in `held` for release_held
                renewing.cancel()
                self.busy -= 1
            self.held.pop(worker, None)
            self._event.set()  # more may be waiting: look again at once

    async def _renew(self, worker: str) -> None:
        while True:
            await asyncio.sleep(self.settings.claim_ttl / 3)
            with contextlib.suppress(CatalogGatewayError):
                await self.store.inbox_renew(worker, self.held.get(worker, []), self.settings.claim_ttl)

    async def _run(self, worker: str, entries: Sequence[InboxEntry]) -> None:
        applied: list[str] = []
        failures: list[_Failure] = []
        if self.lane is InboxLane.READ:
            try:
                deliveries = [delivery_of(e) for e in entries]
                outcomes = await self.applier.apply_batch(deliveries)
            except Exception:  # find the entry that fails: apply them one by one
                await self._one_by_one(entries, applied, failures)
            else:
                for entry, outcome in zip(entries, outcomes, strict=True):
                    self.stats[outcome.value] += 1
                    applied.append(entry.id)
        else:  # each its own product write: together (the applier serialises writes of one product)
            await self._one_by_one(entries, applied, failures, together=True)
        await self._finish(worker, applied, failures)

    async def _one_by_one(self, entries: Sequence[InboxEntry], applied: list[str], failures: list[_Failure],
                          *, together: bool = False) -> None:
        async def apply(entry: InboxEntry) -> None:
            try:
                outcome: Outcome = await self.applier.apply(delivery_of(entry))
            except Exception as exc:
                failures.append(_Failure(entry, exc))
            else:
                self.stats[outcome.value] += 1
                applied.append(entry.id)

        if together:
            await asyncio.gather(*(apply(entry) for entry in entries))
        else:
            for entry in entries:
                await apply(entry)

    async def _finish(self, worker: str, applied: list[str], failures: list[_Failure]) -> None:
        failed: list[_Failure] = []
        retries: dict[float, list[str]] = defaultdict(list)
        for failure in failures:
            exc, attempt = failure.error, failure.entry.attempts + 1
            if isinstance(exc, CatalogGatewayError) and exc.retryable and attempt < self.settings.max_attempts:
                delay = self.settings.retry_delay * 2 ** (attempt - 1)
                log.warning("webhook %s: %s; retry %d in %.1fs", _where(failure.entry), exc, attempt, delay)
                retries[delay].append(failure.entry.id)
                self.stats["retried"] += 1
            else:
                failed.append(failure)
        gone = {f.entry.delivery.shop_domain for f in failed if await self._sync_gone(f.entry.delivery.shop_domain)}
        for shop in gone:
            dropped = await self.store.inbox_drop_shop(shop)
            log.debug("%s: sync disabled while applying its webhooks; %d pending dropped", shop, dropped)
        failed = [f for f in failed if f.entry.delivery.shop_domain not in gone]
        try:
            for delay, ids in retries.items():
                await self.store.inbox_release(worker, ids, retry_in=delay)
            await self.store.inbox_done(worker, applied, [f.entry.id for f in failed])
        except CatalogGatewayError as exc:  # the claims expire; another attempt applies them again
            log.warning("webhook inbox: could not record %d outcomes (%s); they are applied again after "
                        "their claims expire", len(applied) + len(failures), exc)
            return
        for failure in failed:
            await self._report(failure)

    async def _sync_gone(self, shop: str) -> bool:
        try:
            return await self.store.get_sync(shop) is None
        except CatalogGatewayError:
            return False

    async def _report(self, failure: _Failure) -> None:
        exc, entry = failure.error, failure.entry
        stored = entry.delivery
        if isinstance(exc, InvalidWebhookPayload):
            # In the shop's failedTotal; the applier already notified it, once per product (not per delivery).
            self.stats["refused"] += 1
            log.error("webhook %s refused: %s. %s", _where(entry), exc, exc.fix)
            return
        self.stats["failed"] += 1
        attempts = entry.attempts + 1
        fix = exc.fix if isinstance(exc, CatalogGatewayError) else "Check the gateway logs."
        if isinstance(exc, CatalogGatewayError):
            log.error("webhook %s not applied after %d attempts: %s. %s", _where(entry), attempts, exc, fix)
        else:
            log.error("webhook %s not applied: unexpected error", _where(entry), exc_info=exc)
        subject = await self._subject(entry)
        with contextlib.suppress(Exception):  # the failure is counted and logged; the notice is best effort
            await self.notifier.notify(
                stored.shop_domain, NotificationLevel.ERROR, "Shopify change not applied",
                f"A Shopify {stored.topic} webhook for {subject} (webhook {stored.webhook_id}) could not be "
                f"applied after {attempts} attempt(s): {exc}.\nHow to fix: {fix} The next change of this "
                "product, the periodic reconciliation or a re-sync brings the catalog up to date.")

    async def _subject(self, entry: InboxEntry) -> str:
        """The product a failed delivery is about (an inventory item's product looked up in the catalog)."""
        stored = entry.delivery
        try:
            payload = decode_payload(stored.body)
        except InvalidWebhookPayload:
            return "an unreadable payload"
        subject = subject_of(stored.topic, payload)
        if stored.topic.startswith("inventory_levels/"):
            with contextlib.suppress(Exception):  # the inventory item is named instead
                config = await self.store.get_sync(stored.shop_domain)
                known = [] if config is None else await self.store.find_by_inventory_item(
                    config.catalog_name, str(payload.get("inventory_item_id")))
                if known:
                    subject = f"product {known[0].shopify_product_id} ({subject})"
        return subject

    @property
    def idle(self) -> bool:
        return self.busy == 0


def _where(entry: InboxEntry) -> str:
    stored = entry.delivery
    return f"{stored.topic} for {stored.shop_domain} (webhook {stored.webhook_id})"

