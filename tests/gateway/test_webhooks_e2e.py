"""End to end: the Shopify emulator sends signed webhooks to the gateway served on uvicorn; the catalog
follows the store's changes (prices, inventory, new and deleted products) shortly after each one, in
any delivery order, once per delivery, and never from a forged request."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import aiohttp
import httpx
import orjson
import pytest
from pymongo import AsyncMongoClient
from starlette.applications import Starlette

from bulk.full_sync.service import SyncService, SyncSettings
from bulk.mapping.payloads import product_from_rest, product_items, sign
from bulk.notifications import NoEmail, Notifier
from bulk.progress import Broadcaster
from bulk.shopify.reads import read_product
from bulk.webhooks.delivery import Outcome
from bulk.webhooks.processor import ProcessorSettings, WebhookProcessor
from catalog_store.errors import StoreUnavailable
from catalog_store.inbox import InboxDelivery
from catalog_store.items import CatalogItem, Identifier
from catalog_store.memory import MemoryCatalogStore
from catalog_store.mongo.store import MongoCatalogStore
from catalog_store.store import CatalogStore
from gateway.settings import Settings, SmtpSettings
from gateway.webhook_endpoint import webhook_route
from shopify_emulator import Emulator
from shopify_emulator.payloads import product_payload
from shopify_emulator.shop import EmulatedShop
from tests.gateway.e2e import NOTIFICATIONS, SYNC, enable, wait_finished, wait_notification
from tests.gateway.harness import ADMIN_TOKEN, READ_TOKEN, Running, serve_gateway
from tests.gateway.smtp import Inbox, smtp_server

SECRET = "whsec_hooks_e2e"
SHOP = "hooks-store.myshopify.com"
TOKEN = "shpat_hooks_e2e_token"
CATALOG = "shopify_hooks-store"
VARIANTS = 30
DEADLINE = 10.0  # generous for a loaded machine; a webhook normally lands in milliseconds

T = TypeVar("T")

ITEM = """
query Item($catalog: String!, $id: String!) {
  catalog(name: $catalog) { itemCount item(id: $id) { id price inventoryQuantity productTitle sku } }
}"""


@dataclass
class Hooks:
    emulator: Emulator
    shop: EmulatedShop
    running: Running
    store: CatalogStore

    @property
    def processor(self):
        return self.running.gateway.webhooks

    async def items(self, variant_ids: list[int]) -> list[CatalogItem]:
        return await self.store.get_items_by_variant(CATALOG, [str(v) for v in variant_ids])

    async def item(self, variant_id: int) -> CatalogItem | None:
        found = await self.items([variant_id])
        return found[0] if found else None

    async def settle(self) -> None:
        """Every delivery the emulator made so far answered, and every accepted one applied."""
        await self.emulator.drain_webhooks()
        await self.processor.join()

    async def post(self, topic: str, body: bytes, *, signature: str | None = None, shop: str = SHOP,
                   webhook_id: str | None = None) -> tuple[int, dict[str, Any]]:
        headers = {"Content-Type": "application/json", "X-Shopify-Topic": topic, "X-Shopify-Shop-Domain": shop,
                   "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
                   "X-Shopify-Hmac-Sha256": sign(body, SECRET) if signature is None else signature}
        async with aiohttp.ClientSession() as session:
            async with session.post(self.running.base_url + "/webhooks/shopify", data=body,
                                    headers=headers) as response:
                return response.status, await response.json(content_type=None)


async def eventually(read: Callable[[], Awaitable[T]], check: Callable[[T], bool], what: str) -> T:
    """`read()` until `check` holds, or fail after DEADLINE seconds saying what was last seen."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while True:
        value = await read()
        if check(value):
            return value
        if loop.time() > deadline:
            pytest.fail(f"{what}: still {value!r} after {DEADLINE}s")
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def hooked(store: CatalogStore | None = None, *, identifier: str = "SHOPIFY_VARIANT_ID",
                 secrets: tuple[str, ...] = (SECRET,), sync: bool = True, seed: int = 11,
                 bulk_duration: float = 0.0, sync_overrides: dict[str, Any] | None = None,
                 inbox: Inbox | None = None) -> AsyncIterator[Hooks]:
    """The emulator with one shop, the gateway verifying its webhooks, and (with `sync`) the shop's
    initial full sync done."""
    store = store or MemoryCatalogStore()
    emulator = Emulator(api_secret=SECRET, bulk_duration=bulk_duration, webhook_retry_delays=(0.05, 0.1))
    shop = emulator.add_shop(SHOP, access_token=TOKEN, variants=VARIANTS, seed=seed, name="Hooks Store")
    await emulator.start()
    smtp = None if inbox is None else SmtpSettings(host="127.0.0.1", port=inbox.port, sender="catalog@example.com",
                                                   recipients=("ops@example.com",))
    settings = Settings(admin_token=ADMIN_TOKEN, read_token=READ_TOKEN, shopify_api_secrets=secrets,
                        shopify_admin_api_url=emulator.admin_api_url_template, smtp=smtp)
    try:
        async with serve_gateway(store, settings=settings, sync_overrides=sync_overrides) as running:
            hooks = Hooks(emulator, shop, running, store)
            if sync:
                await enable(running, identifier, shop=SHOP, token=TOKEN)
                synced = await wait_finished(running, SHOP)
                assert synced["status"] == "SYNCED", synced
                await hooks.settle()  # the bulk_operations/finish delivery
            yield hooks
    finally:
        await emulator.close()


@pytest.fixture(params=["memory", "mongo"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[CatalogStore]:
    """A store of each kind, not started: the gateway starts and closes it (the shared `store` fixture
    closes its own, which the gateway would close first)."""
    if request.param == "memory":
        yield MemoryCatalogStore()
        return
    uri: str = request.getfixturevalue("mongodb_uri")
    name = f"test_hooks_{uuid.uuid4().hex[:12]}"
    yield MongoCatalogStore(uri, name)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri)
    try:
        await client.drop_database(name)
    finally:
        await client.close()


def product_with_variants(shop: EmulatedShop, count: int = 2, skip: int = 0):
    """A generated product with at least `count` variants that all sync in variant-id mode."""
    found = [p for p in shop.products() if len(p.variants) >= count]
    return found[skip]


async def sync_state(hooks: Hooks) -> dict[str, Any]:
    return (await hooks.running.query(SYNC, {"shop": SHOP}))["shopifySync"]


# -- the store's changes reach the catalog ---------------------------------------------------------------


async def test_store_changes_reach_the_catalog_live(store: CatalogStore) -> None:
    async with hooked(store) as hooks:
        shop, running = hooks.shop, hooks.running
        subscriptions = shop.webhook_subscriptions()
        assert sorted(s.topic for s in subscriptions) == ["BULK_OPERATIONS_FINISH", "INVENTORY_LEVELS_UPDATE",
                                                          "PRODUCTS_CREATE", "PRODUCTS_DELETE", "PRODUCTS_UPDATE"]
        assert {s.uri for s in subscriptions} == {running.base_url + "/webhooks/shopify"}

        product = product_with_variants(shop)
        variant = product.variants[0]
        initial = (await store.get_catalog(CATALOG)).item_count

        async def item() -> dict[str, Any] | None:
            data = await running.query(ITEM, {"catalog": CATALOG, "id": str(variant.id)}, token=READ_TOKEN)
            return data["catalog"]["item"]

        shop.set_price(variant.id, "0.10")
        await eventually(item, lambda i: i is not None and i["price"] == "0.10", "price change")

        shop.set_inventory(variant.id, 0)
        await eventually(item, lambda i: i["inventoryQuantity"] == 0, "sell-out")
        shop.set_inventory(variant.id, 41)
        await eventually(item, lambda i: i["inventoryQuantity"] == 41, "restock")

        shop.update_title(product.id, "Renamed in Shopify")
        renamed = await eventually(lambda: hooks.items([v.id for v in product.variants]),
                                   lambda items: {i.product_title for i in items} == {"Renamed in Shopify"},
                                   "product title change")
        assert len(renamed) == len(product.variants)

        added = shop.add_product("Webhook Lamp", variants=[{"price": "19.99", "sku": "LAMP-1"},
                                                           {"price": "24.50", "compare_at_price": "30.00"}])
        new_items = await eventually(lambda: hooks.items([v.id for v in added.variants]),
                                     lambda items: len(items) == 2, "new product")
        assert sorted((i.price, i.compare_at_price) for i in new_items) == [("19.99", None), ("24.50", "30.00")]
        assert {i.product_title for i in new_items} == {"Webhook Lamp"}

        shop.delete_product(added.id)
        await eventually(lambda: hooks.items([v.id for v in added.variants]), lambda items: items == [],
                         "deleted product")
        await hooks.settle()  # the items vanish before the delete's counter update lands
        catalog = (await running.query(ITEM, {"catalog": CATALOG, "id": str(variant.id)}))["catalog"]
        assert catalog["itemCount"] == initial


async def test_a_product_gives_the_same_items_by_webhook_as_by_full_sync() -> None:
    async with hooked() as hooks:
        shop = hooks.shop
        compared = 0
        for product in shop.products():
            mapped = product_items(product_from_rest(product_payload(product, shop.tz)),
                                   identifier=Identifier.SHOPIFY_VARIANT_ID, shop_domain=SHOP,
                                   store_name="Hooks Store")
            stored = await hooks.items([v.id for v in product.variants])
            key = lambda i: i.shopify_variant_id  # noqa: E731
            assert sorted(mapped.items, key=key) == sorted(stored, key=key), product.id
            compared += len(stored)
        assert compared == VARIANTS
        # And as the Admin GraphQL API gives them (the path of reads and reconciliation): nothing to change.
        config = await hooks.store.get_sync(SHOP)
        assert config is not None
        client = await hooks.processor.clients.client(config)
        for product in shop.products():
            snapshot = await read_product(client, str(product.id))
            assert snapshot is not None
            assert await hooks.processor.apply_snapshot(config, snapshot) == Outcome.UNCHANGED, product.id
        result = await hooks.processor.reconcile(SHOP, since=datetime(2000, 1, 1, tzinfo=UTC))
        assert result.products == shop.product_count
        assert dict(result.outcomes) == {"unchanged": shop.product_count}
        assert (result.inventory, result.inventory_applied, result.deleted) == (VARIANTS, 0, 0)


async def test_products_with_more_than_100_variants_are_read_through_the_admin_api() -> None:
    async with hooked() as hooks:
        shop = hooks.shop
        hooks.emulator.faults.small_bucket(20_000.0, 2_000.0, shop=SHOP)  # a Plus-sized bucket: no pacing waits
        big = shop.add_product("Many Sizes", variants=[{"price": f"{n}.25"} for n in range(1, 121)])
        deliveries = [d for d in hooks.emulator.deliveries if d.topic == "products/create"]
        assert len(deliveries[-1].payload()["variants"]) == 100  # Shopify's truncated payload
        items = await eventually(lambda: hooks.items([v.id for v in big.variants]),
                                 lambda found: len(found) == 120, "all 120 variants")
        assert sorted(i.price for i in items) == sorted(f"{n}.25" for n in range(1, 121))
        last = big.variants[-1]
        shop.set_price(last.id, "7.77")
        await eventually(lambda: hooks.item(last.id), lambda i: i is not None and i.price == "7.77",
                         "price of variant 120")


async def test_inventory_level_updates_read_the_variants_total_quantity() -> None:
    async with hooked() as hooks:
        shop = hooks.shop
        for subscription in shop.webhook_subscriptions(topics=["PRODUCTS_UPDATE"]):
            shop.delete_webhook_subscription(subscription.gid)  # only inventory_levels/update remains
        variant = product_with_variants(shop).variants[1]
        shop.set_inventory(variant.id, 42)
        await eventually(lambda: hooks.item(variant.id), lambda i: i.inventory_quantity == 42, "inventory")
        assert [d.topic for d in hooks.emulator.deliveries[-1:]] == ["inventory_levels/update"]
        status, _ = await hooks.post("inventory_levels/update", orjson.dumps(
            {"inventory_item_id": 46999999999999999, "location_id": 1, "available": 5}))
        assert status == 200
        await hooks.settle()
        assert hooks.processor.stats["ignored"] == 1  # not in the catalog: nothing read, nothing written


# -- verification ---------------------------------------------------------------------------------------


async def test_forged_or_unsigned_webhooks_are_refused_and_change_nothing() -> None:
    async with hooked() as hooks:
        shop = hooks.shop
        variant = product_with_variants(shop).variants[0]
        shop.set_price(variant.id, "15.00")
        await eventually(lambda: hooks.item(variant.id), lambda i: i.price == "15.00", "signed change")
        genuine = hooks.emulator.deliveries[-1]
        forged = orjson.loads(genuine.body.replace(b'"15.00"', b'"0.01"'))
        # a later change (at an equal updated_at the tie-break, not the arrival order, would decide)
        forged["updated_at"] = (datetime.fromisoformat(forged["updated_at"]) + timedelta(seconds=1)).isoformat()
        forged_body = orjson.dumps(forged)
        assert b'"0.01"' in forged_body
        accepted = hooks.processor.stats["accepted"]
        attempts = [
            dict(signature=genuine.headers["X-Shopify-Hmac-Sha256"]),  # a real signature of another body
            dict(signature=sign(forged_body, "whsec_guessed")),
            dict(signature=""),
            dict(signature="not-base64!"),
        ]
        for attempt in attempts:
            status, answer = await hooks.post("products/update", forged_body, **attempt)
            assert (status, answer) == (401, {"error": "invalid webhook signature"})
        await hooks.settle()
        assert hooks.processor.stats["accepted"] == accepted
        assert (await hooks.item(variant.id)).price == "15.00"
        # The same body signed with the secret is applied (so the refusals above were the signature's).
        status, _ = await hooks.post("products/update", forged_body)
        assert status == 200
        await eventually(lambda: hooks.item(variant.id), lambda i: i.price == "0.01", "signed body")


async def test_both_secrets_are_accepted_during_a_rotation() -> None:
    async with hooked(secrets=("whsec_next", SECRET)) as hooks:
        variant = product_with_variants(hooks.shop).variants[0]
        hooks.shop.set_price(variant.id, "21.00")  # the emulator still signs with the old secret
        await eventually(lambda: hooks.item(variant.id), lambda i: i.price == "21.00", "old secret")
        hooks.emulator.api_secret = "whsec_next"
        hooks.shop.set_price(variant.id, "22.00")
        await eventually(lambda: hooks.item(variant.id), lambda i: i.price == "22.00", "new secret")
        await hooks.settle()
        assert all(d.state == "delivered" for d in hooks.emulator.deliveries)


async def test_without_a_secret_webhooks_are_refused_with_503() -> None:
    async with hooked(secrets=(), sync=False) as hooks:
        status, answer = await hooks.post("products/update", b'{"id": 1}')
        assert status == 503
        assert "SHOPIFY_API_SECRET" in answer["error"]
        assert hooks.processor.stats["accepted"] == 0


async def test_signed_but_unreadable_deliveries_get_400() -> None:
    async with hooked(sync=False) as hooks:
        assert (await hooks.post("products/update", b"not json"))[0] == 400
        assert (await hooks.post("products/update", b"{}", shop="not a shop"))[0] == 400
        assert (await hooks.post("orders/create", b"{}"))[0] == 200  # not ours: acknowledged, ignored
        assert hooks.processor.stats["accepted"] == 0


async def test_webhooks_of_an_unknown_shop_are_ignored(caplog: pytest.LogCaptureFixture) -> None:
    async with hooked() as hooks:
        product = product_with_variants(hooks.shop)
        body = orjson.dumps(product_payload(product, hooks.shop.tz))
        with caplog.at_level(logging.INFO, logger="bulk.webhooks.apply"):
            status, _ = await hooks.post("products/update", body, shop="stranger.myshopify.com")
            await hooks.settle()
        assert status == 200
        assert hooks.processor.stats["ignored"] == 1
        assert "stranger.myshopify.com ignored: Shopify sync is not enabled" in caplog.text
        assert [c.name for c in await hooks.store.list_catalogs()] == [CATALOG]


# -- at least once, in any order ----------------------------------------------------------------------


async def test_a_duplicate_delivery_is_applied_once() -> None:
    async with hooked() as hooks:
        variant = product_with_variants(hooks.shop).variants[0]
        hooks.emulator.faults.duplicate_webhooks(times=1, shop=SHOP)
        applied = hooks.processor.stats["applied"]
        hooks.shop.set_price(variant.id, "31.00")
        await hooks.settle()
        copies = hooks.emulator.deliveries[-2:]
        assert copies[0].webhook_id == copies[1].webhook_id and all(c.state == "delivered" for c in copies)
        assert hooks.processor.stats["duplicate"] == 1
        assert hooks.processor.stats["applied"] == applied + 1
        assert (await hooks.item(variant.id)).price == "31.00"


async def test_a_delivery_to_two_processes_is_applied_by_one() -> None:
    """Two gateways share one store (as processes share MongoDB: tests/gateway/test_scale_out.py);
    Shopify's redelivery of a webhook lands on the other. Each answers 200, one of them applies it."""
    store = MemoryCatalogStore()
    async with hooked(store) as hooks:
        settings = Settings(admin_token=ADMIN_TOKEN, shopify_api_secrets=(SECRET,),
                            shopify_admin_api_url=hooks.emulator.admin_api_url_template)
        async with serve_gateway(store, settings=settings) as other:
            variant = product_with_variants(hooks.shop).variants[0]
            applied = hooks.processor.stats["applied"]
            hooks.shop.set_price(variant.id, "32.00")
            await hooks.settle()
            delivery = hooks.emulator.deliveries[-1]
            async with aiohttp.ClientSession() as http:
                async with http.post(other.base_url + "/webhooks/shopify", data=delivery.body,
                                     headers=delivery.headers) as response:
                    assert response.status == 200
            await other.gateway.webhooks.join()
            assert hooks.processor.stats["applied"] == applied + 1
            assert other.gateway.webhooks.stats["duplicate"] == 1 and other.gateway.webhooks.stats["applied"] == 0
            assert (await hooks.item(variant.id)).price == "32.00"


async def test_an_older_update_arriving_after_a_newer_one_changes_nothing() -> None:
    async with hooked() as hooks:
        variant = product_with_variants(hooks.shop).variants[0]
        hooks.emulator.faults.delay_webhooks(0.3, times=1, shop=SHOP)
        hooks.shop.set_price(variant.id, "11.00")  # delivered late
        hooks.shop.set_price(variant.id, "12.00")
        await hooks.settle()
        older, newer = hooks.emulator.deliveries[-2:]
        assert older.attempts[0].at > newer.attempts[0].at  # really out of order
        assert (await hooks.item(variant.id)).price == "12.00"
        assert hooks.processor.stats["stale"] == 1
        # A replay of the old body under a new webhook id is refused the same way.
        status, _ = await hooks.post("products/update", older.body)
        assert status == 200
        await hooks.settle()
        assert (await hooks.item(variant.id)).price == "12.00"
        assert hooks.processor.stats["stale"] == 2


async def test_a_late_update_does_not_undo_a_delete() -> None:
    async with hooked() as hooks:
        product = product_with_variants(hooks.shop)
        hooks.emulator.faults.delay_webhooks(0.3, times=1, shop=SHOP)
        hooks.shop.set_price(product.variants[0].id, "9.99")  # delivered after the delete
        hooks.shop.delete_product(product.id)
        await hooks.settle()
        update, delete = hooks.emulator.deliveries[-2:]
        assert (update.topic, delete.topic) == ("products/update", "products/delete")
        assert update.attempts[0].at > delete.attempts[0].at
        assert await hooks.items([v.id for v in product.variants]) == []
        assert hooks.processor.stats["stale"] == 1


async def test_a_full_resync_with_an_older_snapshot_does_not_resurrect_a_deleted_product(
        store: CatalogStore) -> None:
    async with hooked(store) as hooks:
        shop, running = hooks.shop, hooks.running
        product = product_with_variants(shop)
        shop.set_price(product.variants[0].id, "5.55")  # its updatedAt is now recent: the snapshot's too
        await eventually(lambda: hooks.item(product.variants[0].id), lambda i: i.price == "5.55", "price")
        first = shop.current_bulk_operation()
        hooks.emulator.faults.slow_bulk(0.5, times=1, shop=SHOP)
        run = (await running.query("mutation($s: String!) { resyncShopifyCatalog(shopDomain: $s) { id } }",
                                   {"s": SHOP}))["resyncShopifyCatalog"]
        # Wait until Shopify has written the snapshot (with the product), then delete the product.
        await eventually(lambda: _async(shop.current_bulk_operation()),
                         lambda op: op is not first and op is not None and op.produced > 0, "bulk snapshot")
        shop.delete_product(product.id)
        await eventually(lambda: hooks.items([v.id for v in product.variants]), lambda items: items == [],
                         "delete applied")
        synced = await wait_finished(running, SHOP)
        assert synced["lastRun"]["id"] == run["id"] and synced["lastRun"]["status"] == "COMPLETED"
        assert synced["lastRun"]["itemsWritten"] + synced["lastRun"]["itemsSkipped"] <= VARIANTS
        assert await hooks.items([v.id for v in product.variants]) == []
        assert (await store.get_catalog(CATALOG)).item_count == VARIANTS - len(product.variants)


async def _async(value: T) -> T:
    return value


# -- SKU conflicts, storage limit, bulk operations -----------------------------------------------------


async def test_a_sku_conflict_from_a_webhook_is_not_applied_and_is_notified() -> None:
    async with hooked(identifier="SKU") as hooks:
        shop = hooks.shop
        holder_product, other_product = [p for p in shop.products() if p.variants[0].sku][:2]
        holder, taker = holder_product.variants[0], other_product.variants[0]
        assert (await hooks.store.get_item(CATALOG, holder.sku)).shopify_variant_id == str(holder.id)
        old_sku = taker.sku
        shop.set_sku(taker.id, holder.sku)
        notification = await wait_notification(hooks.running, "error", "Shopify update not applied: duplicate SKU")
        assert holder.sku in notification["message"]
        assert str(holder.id) in notification["message"] and str(taker.id) in notification["message"]
        assert (await hooks.store.get_item(CATALOG, holder.sku)).shopify_variant_id == str(holder.id)
        assert (await hooks.item(taker.id)).id == old_sku  # the taker's item is not overwritten either


async def test_a_change_over_the_storage_limit_makes_the_sync_inactive() -> None:
    async with smtp_server() as inbox, hooked(inbox=inbox) as hooks:
        shop, gateway = hooks.shop, hooks.running.gateway
        roomy = gateway.sync.settings
        total = await hooks.store.total_storage_bytes()
        gateway.sync.settings = dataclasses.replace(roomy, storage_limit_bytes=total + 3000)
        added = shop.add_product("Too Much", variants=20)
        state = await eventually(lambda: sync_state(hooks), lambda s: not s["active"], "inactive sync")
        assert (state["status"], state["errorCode"]) == ("ERROR", "CATALOG_LIMIT_EXCEEDED")
        assert "storage limit" in state["errorMessage"]
        assert await hooks.store.total_storage_bytes() <= total + 3000
        notification = await wait_notification(hooks.running, "error", "Shopify sync stopped: catalog limit exceeded")
        assert notification["emailStatus"] == "SENT"
        assert any("catalog limit exceeded" in r.message["Subject"] for r in inbox.received)

        variant = product_with_variants(shop).variants[0]
        before = (await hooks.item(variant.id)).price
        shop.set_price(variant.id, "99.00")
        await hooks.settle()
        assert (await hooks.item(variant.id)).price == before  # nothing applied while inactive

        # The merchant raises the limit, disables and re-enables: the sync is active again.
        gateway.sync.settings = roomy
        await hooks.running.query("mutation($s: String!) { disableShopifySync(shopDomain: $s) { itemsDeleted } }",
                                  {"s": SHOP})
        await enable(hooks.running, shop=SHOP, token=TOKEN)
        state = await wait_finished(hooks.running, SHOP)
        assert (state["status"], state["active"]) == ("SYNCED", True)
        assert len(await hooks.items([v.id for v in added.variants])) == 20
        shop.set_price(variant.id, "98.00")
        await eventually(lambda: hooks.item(variant.id), lambda i: i.price == "98.00", "active again")


async def test_bulk_operations_finish_wakes_the_sync_poll() -> None:
    # Polls every 30 s: only the webhook can finish this sync within the test's deadline.
    async with hooked(sync=False, bulk_duration=0.3,
                      sync_overrides={"poll_interval": 30.0, "max_poll_interval": 30.0}) as hooks:
        await enable(hooks.running, shop=SHOP, token=TOKEN)
        synced = await asyncio.wait_for(wait_finished(hooks.running, SHOP), DEADLINE)
        assert synced["status"] == "SYNCED"
        assert hooks.processor.stats["bulk_woken"] == 1


async def test_reconciliation_brings_in_a_dropped_webhooks_change() -> None:
    async with hooked() as hooks:
        variant = product_with_variants(hooks.shop).variants[0]
        hooks.emulator.faults.drop_webhooks(times=1, shop=SHOP)
        hooks.shop.set_price(variant.id, "3.33")
        await hooks.settle()
        assert hooks.emulator.deliveries[-1].state == "dropped"
        assert (await hooks.item(variant.id)).price != "3.33"
        result = await hooks.processor.reconcile(SHOP)
        assert result.products == 1 and dict(result.outcomes) == {"applied": 1}
        assert (await hooks.item(variant.id)).price == "3.33"
        again = await hooks.processor.reconcile(SHOP)  # overlapping window: re-read, nothing to write
        assert dict(again.outcomes) == {"unchanged": 1}


async def test_webhooks_are_not_applied_after_disable() -> None:
    async with hooked() as hooks:
        variant = product_with_variants(hooks.shop).variants[0]
        body = orjson.dumps(product_payload(hooks.shop.variant(variant.id).product, hooks.shop.tz))
        await hooks.running.query("mutation($s: String!) { disableShopifySync(shopDomain: $s) { itemsDeleted } }",
                                  {"s": SHOP})
        assert hooks.shop.webhook_subscriptions() == []  # removed in Shopify
        status, _ = await hooks.post("products/update", body)  # one already in flight
        await hooks.settle()
        assert status == 200 and hooks.processor.stats["ignored"] == 1
        assert await hooks.store.list_catalogs() == []
        notifications = (await hooks.running.query(NOTIFICATIONS))["notifications"]
        assert not [n for n in notifications if n["level"] == "error"]


async def test_reconciliation_runs_periodically() -> None:
    async with hooked() as hooks:
        reconciler = WebhookProcessor(hooks.store, hooks.running.gateway.sync,
                                      settings=ProcessorSettings(workers=1, reconcile_interval=0.05))
        await reconciler.start()
        try:
            variant = product_with_variants(hooks.shop).variants[1]
            hooks.emulator.faults.drop_webhooks(times=1, shop=SHOP)
            hooks.shop.set_price(variant.id, "4.44")
            await eventually(lambda: hooks.item(variant.id), lambda i: i.price == "4.44", "reconciled price")
            assert hooks.emulator.deliveries[-1].state == "dropped"
            assert reconciler.stats == {}  # nothing came through its queue: the timer did it
        finally:
            await reconciler.close()


async def test_one_process_reconciles_a_shop_and_another_takes_over_when_it_stops() -> None:
    async with hooked() as hooks:
        hooks.emulator.faults.small_bucket(20_000, 1_000, shop=SHOP)  # Shopify Plus limits: passes every 50 ms
        settings = ProcessorSettings(workers=1, reconcile_interval=0.05)
        first, second = (WebhookProcessor(hooks.store, hooks.running.gateway.sync, settings=settings, owner_id=owner)
                         for owner in ("process-a", "process-b"))
        await first.start()
        await second.start()
        try:
            variants = product_with_variants(hooks.shop).variants
            hooks.emulator.faults.drop_webhooks(times=1, shop=SHOP)
            hooks.shop.set_price(variants[0].id, "5.55")
            await eventually(lambda: hooks.item(variants[0].id), lambda i: i.price == "5.55", "reconciled price")


            async def passes() -> int:
                return first.reconcile_passes[SHOP] + second.reconcile_passes[SHOP]

            await eventually(passes, lambda n: n >= 4, "four reconciliation passes")
            holder, idle = (first, second) if first.reconcile_passes[SHOP] else (second, first)
            assert idle.reconcile_passes[SHOP] == 0  # all of them by the lease holder
            assert (await hooks.store.get_sync(SHOP)).reconciled_at is not None  # where the next pass starts

            await holder.close()  # its lease is released: the other one reconciles from now on
            hooks.emulator.faults.drop_webhooks(times=1, shop=SHOP)
            hooks.shop.set_price(variants[1].id, "6.66")
            await eventually(lambda: hooks.item(variants[1].id), lambda i: i.price == "6.66", "reconciled again")

            async def idle_passes() -> int:  # counted once the pass (applied, then inventory and deletes) ends
                return idle.reconcile_passes[SHOP]

            await eventually(idle_passes, lambda n: n >= 1, "a pass by the other process")
        finally:
            await first.close()
            await second.close()


class _FailingInbox(MemoryCatalogStore):
    """An inbox that cannot store deliveries while `down` is set (a database outage)."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False

    async def inbox_put(self, delivery: InboxDelivery) -> bool:
        if self.down:
            raise StoreUnavailable("MongoDB is unreachable: connection refused")
        return await super().inbox_put(delivery)


async def test_a_store_that_cannot_take_a_delivery_answers_503_and_the_redelivery_is_accepted() -> None:
    store = _FailingInbox()
    sync = SyncService(store, settings=SyncSettings(), notifier=Notifier(store, NoEmail(), Broadcaster()))
    processor = WebhookProcessor(store, sync, settings=ProcessorSettings(workers=1, reconcile_interval=None))
    await processor.start()
    app = Starlette(routes=[webhook_route(processor, [SECRET])])

    async def deliver(http: httpx.AsyncClient, webhook_id: str) -> httpx.Response:
        body = orjson.dumps({"id": 8000000000001})
        return await http.post("/webhooks/shopify", content=body, headers={
            "X-Shopify-Topic": "products/delete", "X-Shopify-Shop-Domain": SHOP,
            "X-Shopify-Webhook-Id": webhook_id, "X-Shopify-Hmac-Sha256": sign(body, SECRET)})

    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as http:
            assert (await deliver(http, "w1")).status_code == 200
            store.down = True
            refused = await deliver(http, "w2")
            assert refused.status_code == 503 and refused.headers["Retry-After"] == "5"
            store.down = False
            await processor.join()
            assert (await deliver(http, "w2")).json() == {"status": "accepted"}  # Shopify's retry
            assert (await deliver(http, "w2")).json() == {"status": "duplicate"}
            await processor.join()
        assert processor.stats["ignored"] == 2  # unknown shop: answered, nothing applied
        assert (await store.inbox_status(SHOP)).applied_total == 2
    finally:
        await processor.close()


async def test_a_variant_that_stops_syncing_leaves_the_catalog() -> None:
    async with hooked(identifier="SKU") as hooks:
        shop = hooks.shop
        product = next(p for p in shop.products() if len(p.variants) >= 2 and all(v.sku for v in p.variants))
        dropped, kept = product.variants[0], product.variants[1:]
        shop.set_sku(dropped.id, None)  # SKU mode: a variant without a SKU cannot sync
        await eventually(lambda: hooks.store.get_item(CATALOG, dropped.sku), lambda i: i is None, "item removed")
        remaining = await hooks.items([v.id for v in product.variants])
        assert sorted(i.id for i in remaining) == sorted(v.sku for v in kept)
        shop.set_sku(dropped.id, "BACK-AGAIN-1")  # a later change brings it back (the tombstone is older)
        await eventually(lambda: hooks.store.get_item(CATALOG, "BACK-AGAIN-1"), lambda i: i is not None, "re-added")


async def test_a_variant_deleted_in_shopify_leaves_the_catalog() -> None:
    async with hooked() as hooks:
        product = next(p for p in hooks.shop.products() if len(p.variants) >= 3)
        deleted, kept = product.variants[1], [product.variants[0], *product.variants[2:]]
        hooks.shop.delete_variant(deleted.id)  # Shopify sends products/update without that variant
        await eventually(lambda: hooks.item(deleted.id), lambda i: i is None, "item of the deleted variant removed")
        remaining = await hooks.store.get_items_by_product(CATALOG, str(product.id))
        assert sorted(i.shopify_variant_id for i in remaining) == sorted(str(v.id) for v in kept)
        assert (await hooks.store.get_catalog(CATALOG)).item_count == VARIANTS - 1
