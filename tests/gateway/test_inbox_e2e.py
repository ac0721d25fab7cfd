"""The webhook inbox end to end, on both stores: the emulator's signed deliveries answered 200 by a
gateway that only stores them (no webhook workers) wait in the inbox, visible in
`ShopifySync.realtime` and in a lag warning; workers sharing the store (another process's) apply
them, once, and the caught-up notification follows; a delivery that keeps failing is counted and
notified; disabling the sync during a backlog drops it in one quiet line."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from bulk.full_sync.service import SyncService, SyncSettings
from bulk.notifications import NoEmail, Notifier
from bulk.progress import Broadcaster
from bulk.webhooks.processor import Outcome, ProcessorSettings, SubmitResult, WebhookDelivery, WebhookProcessor
from catalog_store.inbox import InboxLane
from catalog_store.store import CatalogStore
from gateway.settings import Settings
from shopify_emulator import Emulator
from shopify_emulator.shop import EmulatedShop
from tests.gateway import test_webhooks_e2e
from tests.gateway.e2e import NOTIFICATIONS, enable, wait_finished
from tests.gateway.harness import ADMIN_TOKEN, READ_TOKEN, Running, serve_gateway
from tests.gateway.test_scale_out import eventually

SECRET = "whsec_inbox_e2e"
SHOP = "inbox-store.myshopify.com"
TOKEN = "shpat_inbox_e2e_token"
CATALOG = "shopify_inbox-store"
LAG_ALERT = 1.0  # seconds (REALTIME_LAG_ALERT_SECONDS)
DEADLINE = 20.0
CHANGES = 6

REALTIME = """
query($shop: String!) {
  shopifySync(shopDomain: $shop) {
    realtime { backlog lagSeconds lastAppliedAt appliedTotal failedTotal healthy }
  }
}"""
DISABLE = "mutation($s: String!) { disableShopifySync(shopDomain: $s) { itemsDeleted } }"



store = test_webhooks_e2e.store  # the fixture: a store of each kind, not started (the gateway starts it)


@dataclass
class Intake:
    emulator: Emulator
    shop: EmulatedShop
    running: Running
    store: CatalogStore

    async def realtime(self) -> dict[str, Any]:
        return dict((await self.running.query(REALTIME, {"shop": SHOP}))["shopifySync"]["realtime"])

    async def notifications(self, level: str) -> list[dict[str, Any]]:
        found = (await self.running.query(NOTIFICATIONS, {"unread": False}))["notifications"]
        return [n for n in found if n["level"] == level and n["shopDomain"] == SHOP]

    async def prices(self, variant_ids: list[int]) -> dict[int, str | None]:
        items = await self.store.get_items_by_variant(CATALOG, [str(v) for v in variant_ids])
        return {int(i.shopify_variant_id): i.price for i in items}

    @contextlib.asynccontextmanager
    async def workers(self, **settings: Any) -> AsyncIterator[WebhookProcessor]:
        """Webhook workers of another process sharing the store (same store object for memory)."""
        values: dict[str, Any] = {"workers": 2, "read_workers": 1, "reconcile_interval": None,
                                  "poll_interval": 0.05, "retry_delay": 0.05}
        values.update(settings)
        processor = WebhookProcessor(self.store, self.running.gateway.sync, settings=ProcessorSettings(**values),
                                     owner_id=f"other-process-{uuid.uuid4().hex[:6]}")
        await processor.start()
        try:
            yield processor
        finally:
            await processor.close()


@contextlib.asynccontextmanager
async def intake_only(store: CatalogStore) -> AsyncIterator[Intake]:
    """The emulator and a gateway with no webhook workers (GATEWAY_WEBHOOK_WORKERS=0), synced."""
    emulator = Emulator(api_secret=SECRET, bulk_duration=0.0, webhook_retry_delays=(0.05, 0.1))
    shop = emulator.add_shop(SHOP, access_token=TOKEN, variants=30, seed=3, name="Inbox Store")
    await emulator.start()
    settings = Settings(admin_token=ADMIN_TOKEN, read_token=READ_TOKEN, shopify_api_secrets=(SECRET,),
                        shopify_admin_api_url=emulator.admin_api_url_template, webhook_workers=0,
                        realtime_lag_alert_seconds=LAG_ALERT)
    try:
        async with serve_gateway(store, settings=settings) as running:
            await enable(running, shop=SHOP, token=TOKEN)
            assert (await wait_finished(running, SHOP))["status"] == "SYNCED"
            await emulator.drain_webhooks()
            yield Intake(emulator, shop, running, store)
    finally:
        await emulator.close()


def change_prices(intake: Intake, count: int, price: str) -> list[int]:
    variants = [v.id for p in intake.shop.products() for v in p.variants][:count]
    for variant in variants:
        intake.shop.set_price(variant, price)
    return variants


async def test_a_backlog_is_visible_warned_about_then_applied_once_and_caught_up(store: CatalogStore) -> None:
    async with intake_only(store) as intake:
        before = await intake.realtime()  # the bulk_operations/finish delivery waits too
        assert before["appliedTotal"] == 0 and before["failedTotal"] == 0
        variants = change_prices(intake, CHANGES, "77.70")
        await intake.emulator.drain_webhooks()  # every delivery answered 200
        waiting = await intake.realtime()
        assert waiting["backlog"] == before["backlog"] + CHANGES and waiting["appliedTotal"] == 0
        late = await eventually(intake.realtime, lambda r: not r["healthy"], "lag past the threshold")
        assert late["lagSeconds"] > LAG_ALERT
        [warning] = await eventually(lambda: intake.notifications("warning"), lambda n: len(n) == 1, "lag warning")
        assert "Shopify change(s)" in warning["message"] and "REALTIME_LAG_ALERT_SECONDS" in warning["message"]
        assert warning["title"] == "Shopify changes are running late" and warning["emailStatus"] != "NONE"
        assert set((await intake.prices(variants)).values()) != {"77.70"}  # not applied: nobody works

        async with intake.workers():
            # (MongoDB: entries are marked done, then counted; a read may fall between the two)
            done = await eventually(intake.realtime, lambda r: r["backlog"] == 0 and r["appliedTotal"] >= waiting["backlog"],
                                    "backlog applied")
            assert await intake.prices(variants) == dict.fromkeys(variants, "77.70")
            assert done["appliedTotal"] == waiting["backlog"] and done["failedTotal"] == 0
            assert done["lagSeconds"] == 0 and done["healthy"] and done["lastAppliedAt"] is not None
            await eventually(lambda: intake.notifications("success"),
                                           lambda n: any(x["title"] == "Shopify changes caught up" for x in n),
                                           "caught-up notification")
            assert len(await intake.notifications("warning")) == 1  # once per transition
            # Shopify's retries of the same deliveries are answered and never applied again.
            async with aiohttp.ClientSession() as http:
                for delivery in intake.emulator.deliveries[-CHANGES:]:
                    async with http.post(intake.running.base_url + "/webhooks/shopify", data=delivery.body,
                                         headers=delivery.headers) as response:
                        assert (response.status, (await response.json())["status"]) == (200, "duplicate")
            assert (await intake.realtime())["appliedTotal"] == waiting["backlog"]


async def test_a_delivery_failing_after_its_retries_is_counted_and_notified(store: CatalogStore) -> None:
    async with intake_only(store) as intake:
        product = next(p for p in intake.shop.products() if p.variants)
        variant = product.variants[0]
        intake.shop.set_inventory(variant.id, 3)  # an inventory change: the read lane, through the Admin API
        await intake.emulator.drain_webhooks()
        intake.emulator.faults.http_error(503, times=None, shop=SHOP)
        async with intake.workers(max_attempts=2):
            failed = await eventually(intake.realtime, lambda r: r["failedTotal"] >= 1, "failed delivery")
            [error] = await eventually(lambda: intake.notifications("error"),
                                       lambda n: any(x["title"] == "Shopify change not applied" for x in n),
                                       "error notification")
            assert f"product {product.id}" in error["message"] and "inventory_levels/update" in error["message"]
            assert failed["failedTotal"] == 1
            intake.emulator.faults.clear()
            await eventually(intake.realtime, lambda r: r["backlog"] == 0, "the rest applied")


async def test_disabling_during_a_backlog_drops_it_in_one_info_line(
    store: CatalogStore, caplog: pytest.LogCaptureFixture,
) -> None:
    async with intake_only(store) as intake:
        change_prices(intake, CHANGES, "5.55")
        await intake.emulator.drain_webhooks()
        backlog = (await intake.realtime())["backlog"]
        assert backlog >= CHANGES
        with caplog.at_level(logging.INFO):
            await intake.running.query(DISABLE, {"s": SHOP})
            async with intake.workers():
                await asyncio.sleep(0.5)  # workers find nothing of that shop to apply
        dropped = [r for r in caplog.records if "pending webhook deliveries dropped" in r.getMessage()]
        assert [r.getMessage() for r in dropped] == [f"{SHOP}: sync disabled; {backlog} pending webhook "
                                                     "deliveries dropped"]
        assert dropped[0].levelno == logging.INFO
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
        status = await store.inbox_status(SHOP)
        assert (status.backlog, status.applied_total, status.failed_total) == (0, 0, 0)


async def test_close_leaves_unapplied_deliveries_in_the_inbox_and_gives_their_claims_back(
    store: CatalogStore,
) -> None:
    await store.start()
    sync = SyncService(store, settings=SyncSettings(), notifier=Notifier(store, NoEmail(), Broadcaster()))
    processor = WebhookProcessor(store, sync, settings=ProcessorSettings(workers=1, read_workers=0, drain_timeout=0.2,
                                                                        reconcile_interval=None))
    entered, never = asyncio.Event(), asyncio.Event()

    async def stuck(delivery: WebhookDelivery) -> Outcome:
        entered.set()
        await never.wait()
        raise AssertionError("not reached")

    processor.applier.apply = stuck  # type: ignore[method-assign]
    await processor.start()
    try:
        for n in range(3):
            result = await processor.submit(WebhookDelivery("products/delete", SHOP, {"id": 8000000000000 + n},
                                                            f"close-{n}"))
            assert result is SubmitResult.ACCEPTED
        await asyncio.wait_for(entered.wait(), DEADLINE)  # the worker holds them
    finally:
        await processor.close()
    assert await processor.submit(WebhookDelivery("products/delete", SHOP, {"id": 1}, "late")) is SubmitResult.CLOSED
    assert (await store.inbox_status(SHOP)).backlog == 3
    taken = await store.inbox_claim(InboxLane.DIRECT, "next-process", 10, 60)  # at once: not after the claim TTL
    assert sorted(e.delivery.webhook_id or "" for e in taken) == ["close-0", "close-1", "close-2"]
    assert all(e.attempts == 0 for e in taken)
    await store.close()
