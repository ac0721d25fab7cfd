"""End to end: alerts over real HTTP. The emulated store changes prices and stock (webhooks, or
silently for a full sync to find); the gateway (uvicorn, both stores) stores one event per qualifying
change for its subscribers, pushes it on `itemAlerts`, and POSTs it signed to a real receiver on
loopback, retrying a failing one, also across a gateway restart."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from aiohttp import web
from gql import GraphQLRequest
from gql.transport.exceptions import TransportQueryError

from bulk.alerts.delivery import DeliverySettings
from bulk.alerts.outbound import EVENT_ID_HEADER, SIGNATURE_HEADER, verified
from catalog_store.memory import MemoryCatalogStore
from catalog_store.mongo.store import MongoCatalogStore
from catalog_store.store import CatalogStore
from gateway.errors import SettingsError
from gateway.settings import Settings
from gateway.wiring import Gateway
from shopify_emulator import Emulator
from shopify_emulator.shop import EmulatedShop
from tests.gateway.e2e import enable, wait_finished
from tests.gateway.harness import ADMIN_TOKEN, READ_TOKEN, Running, serve_gateway
from tests.gateway.test_webhooks_e2e import eventually, store  # noqa: F401  (the `store` fixture)

SECRET = "whsec_alerts_e2e"
ALERT_SECRET = "alert-secret-e2e"
SHOP = "alerts-store.myshopify.com"
TOKEN = "shpat_alerts_e2e_token"
CATALOG = "shopify_alerts-store"

RULES = """
mutation Rules($catalog: String!, $rules: AlertRulesInput!) {
  setAlertRules(catalogName: $catalog, rules: $rules) {
    backInStock backInStockThreshold priceDrop priceDropMinPercent priceDropMinAmount maxEventsPerMinute }
}"""
SUBSCRIBE = """
mutation Sub($input: SubscribeToItemAlertsInput!) {
  subscribeToItemAlerts(input: $input) { id catalogName itemId userId types createdAt expiresAt }
}"""
EVENTS = """
query Events($catalog: String!) {
  catalog(name: $catalog) {
    alertEvents { id catalogName itemId type previousValue newValue userIds source createdAt }
    alertSubscriptions { id itemId userId types }
  }
}"""
ITEM_ALERTS = "subscription A($catalog: String!) { itemAlerts(catalogName: $catalog) { id itemId type newValue userIds } }"
DISABLE = "mutation D($s: String!) { disableShopifySync(shopDomain: $s) { itemsDeleted alertSubscriptionsAffected } }"


@dataclass
class Receiver:
    """A real HTTP server on loopback standing for the messaging system: it records verified posts
    and answers `fail_first` of them with 503."""

    fail_first: int = 0
    received: list[dict[str, Any]] = field(default_factory=list)
    attempts: int = 0
    port: int = 0
    _runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.attempts += 1
        if self.attempts <= self.fail_first:
            return web.Response(status=503)
        assert verified(body, request.headers.get(SIGNATURE_HEADER), ALERT_SECRET), "bad signature"
        payload = orjson.loads(body)
        assert request.headers[EVENT_ID_HEADER] == payload["id"]
        self.received.append(payload)
        return web.Response(status=204)

    async def start(self, port: int = 0) -> None:
        app = web.Application()
        app.router.add_post("/alerts", self.handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/alerts"


@dataclass
class World:
    emulator: Emulator
    shop: EmulatedShop
    running: Running

    async def query(self, document: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self.running.query(document, variables)

    async def events(self) -> list[dict[str, Any]]:
        return (await self.query(EVENTS, {"catalog": CATALOG}))["catalog"]["alertEvents"]

    async def subscribe(self, item_id: str, user_id: str, types: list[str]) -> dict[str, Any]:
        data = await self.query(SUBSCRIBE, {"input": {"catalogName": CATALOG, "itemId": item_id, "userId": user_id,
                                                      "types": types}})
        return data["subscribeToItemAlerts"]

    async def settle(self) -> None:
        await self.emulator.drain_webhooks()
        await self.running.gateway.webhooks.join()


@contextlib.asynccontextmanager
async def emulated() -> AsyncIterator[tuple[Emulator, EmulatedShop]]:
    emulator = Emulator(api_secret=SECRET, webhook_retry_delays=(0.05, 0.1))
    shop = emulator.add_shop(SHOP, access_token=TOKEN, variants=20, seed=5, name="Alerts Store")
    await emulator.start()
    try:
        yield emulator, shop
    finally:
        await emulator.close()


@contextlib.asynccontextmanager
async def gateway(emulator: Emulator, shop: EmulatedShop, target: CatalogStore, receiver_url: str | None,
                  *, sync: bool = True) -> AsyncIterator[World]:
    settings = Settings(admin_token=ADMIN_TOKEN, read_token=READ_TOKEN, shopify_api_secrets=(SECRET,),
                        shopify_admin_api_url=emulator.admin_api_url_template,
                        alert_webhook_url=receiver_url, alert_webhook_secret=ALERT_SECRET if receiver_url else None)
    async with serve_gateway(target, settings=settings) as running:
        worker = running.gateway.alert_delivery
        if worker is not None:  # look for due deliveries often (the default is every second)
            worker.settings = DeliverySettings(url=worker.settings.url, secret=ALERT_SECRET, interval=0.05)
        world = World(emulator, shop, running)
        if sync:
            await enable(running, "SHOPIFY_VARIANT_ID", shop=SHOP, token=TOKEN)
            assert (await wait_finished(running, SHOP))["status"] == "SYNCED"
            await world.settle()
        yield world


def variant_priced(shop: EmulatedShop) -> tuple[str, str]:
    """A variant with a price above 10 and stock, as (id, price)."""
    for product in shop.products():
        for variant in product.variants:
            if float(variant.price) > 10 and variant.inventory_quantity > 0:
                return str(variant.id), str(variant.price)
    raise AssertionError("no variant above 10")


async def test_price_drop_by_webhook_is_stored_pushed_and_posted_once(store: CatalogStore) -> None:  # noqa: F811
    receiver = Receiver()
    await receiver.start()
    try:
        async with emulated() as (emulator, shop), gateway(emulator, shop, store, receiver.url) as world:
            rules = await world.query(RULES, {"catalog": CATALOG, "rules": {"priceDrop": True,
                                                                            "priceDropMinPercent": 10}})
            assert rules["setAlertRules"]["priceDrop"] is True
            variant_id, price = variant_priced(shop)
            other_id = next(str(v.id) for p in shop.products() for v in p.variants if str(v.id) != variant_id)
            await world.subscribe(variant_id, "alice", ["PRICE_DROP"])
            await world.subscribe(variant_id, "bob", ["PRICE_DROP"])
            await world.subscribe(other_id, "carol", ["PRICE_DROP"])
            async with world.running.ws(READ_TOKEN) as live:
                pushed: list[dict[str, Any]] = []

                async def watch() -> None:
                    request = GraphQLRequest(ITEM_ALERTS, variable_values={"catalog": CATALOG})
                    async with aclosing(live.subscribe(request)) as stream:
                        async for message in stream:
                            pushed.append(message["itemAlerts"])

                watcher = asyncio.create_task(watch())
                await asyncio.sleep(0.5)  # the subscription is polling
                # a 5 % drop is below the bound: nothing
                small = f"{float(price) * 0.95:.2f}"
                shop.set_price(variant_id, small)
                await world.settle()
                assert await world.events() == []
                half = f"{float(small) / 2:.2f}"
                shop.set_price(variant_id, half)
                await world.settle()
                [event] = await eventually(world.events, lambda e: len(e) == 1, "one event")
                assert (event["type"], event["itemId"], event["previousValue"], event["newValue"]) == \
                    ("PRICE_DROP", variant_id, small, half)
                assert event["userIds"] == ["alice", "bob"] and event["source"] == "webhook"
                await eventually(lambda: asyncio.sleep(0, receiver.received), lambda r: len(r) == 1, "posted")
                assert receiver.received[0] == event
                await eventually(lambda: asyncio.sleep(0, pushed), lambda p: len(p) == 1, "pushed")
                assert pushed[0]["id"] == event["id"]
                watcher.cancel()
            # consumed: a further drop fires nothing; a rise neither
            shop.set_price(variant_id, "1.00")
            shop.set_price(other_id, "9999.00")
            await world.settle()
            await asyncio.sleep(0.3)
            assert len(await world.events()) == 1 and len(receiver.received) == 1
            subscriptions = (await world.query(EVENTS, {"catalog": CATALOG}))["catalog"]["alertSubscriptions"]
            assert [s["userId"] for s in subscriptions] == ["carol"]
            disabled = (await world.query(DISABLE, {"s": SHOP}))["disableShopifySync"]
            assert disabled["alertSubscriptionsAffected"] == 1
    finally:
        await receiver.close()


async def test_back_in_stock_from_inventory_webhook_and_full_sync(store: CatalogStore) -> None:  # noqa: F811
    async with emulated() as (emulator, shop), gateway(emulator, shop, store, None) as world:
        await world.query(RULES, {"catalog": CATALOG, "rules": {"backInStock": True, "backInStockThreshold": 2}})
        ids = [str(v.id) for p in shop.products() for v in p.variants]
        a, b, c = ids[:3]
        shop.set_inventory(c, 9)
        await world.settle()
        with pytest.raises(TransportQueryError) as refused:  # in stock: refused
            await world.subscribe(c, "dora", ["BACK_IN_STOCK"])
        assert refused.value.errors[0]["extensions"]["code"] == "ITEM_IN_STOCK"
        with pytest.raises(TransportQueryError) as missing:
            await world.subscribe("no-such-item", "dora", ["PRICE_DROP"])
        assert missing.value.errors[0]["extensions"]["code"] == "NOT_FOUND"
        for variant_id in (a, b):
            shop.set_inventory(variant_id, 0)
        await world.settle()
        await world.subscribe(a, "alice", ["BACK_IN_STOCK"])
        await world.subscribe(b, "bob", ["BACK_IN_STOCK"])
        shop.set_inventory(a, 2)  # stays at the threshold: nothing
        await world.settle()
        assert await world.events() == []
        shop.set_inventory(a, 5)  # by webhook
        await world.settle()
        [by_webhook] = await eventually(world.events, lambda e: len(e) == 1, "webhook restock")
        assert (by_webhook["itemId"], by_webhook["previousValue"], by_webhook["newValue"], by_webhook["source"]) \
            == (a, "2", "5", "webhook")
        shop.store.set_inventory(b, 7)  # no webhook: the next full sync finds it
        await world.query("mutation R($s: String!) { resyncShopifyCatalog(shopDomain: $s) { id } }", {"s": SHOP})
        assert (await wait_finished(world.running, SHOP))["status"] == "SYNCED"
        events = await eventually(world.events, lambda e: len(e) == 2, "sync restock")
        assert (events[0]["itemId"], events[0]["newValue"], events[0]["source"], events[0]["userIds"]) == \
            (b, "7", "sync", ["bob"])


async def test_cap_makes_events_wait(store: CatalogStore) -> None:  # noqa: F811
    receiver = Receiver()
    await receiver.start()
    try:
        async with emulated() as (emulator, shop), gateway(emulator, shop, store, receiver.url) as world:
            await world.query(RULES, {"catalog": CATALOG, "rules": {"priceDrop": True, "maxEventsPerMinute": 1}})
            ids = [str(v.id) for p in shop.products() for v in p.variants][:3]
            for variant_id in ids:
                await world.subscribe(variant_id, "u", ["PRICE_DROP"])
            for variant_id in ids:
                shop.set_price(variant_id, "0.50")
            await world.settle()
            await eventually(world.events, lambda e: len(e) == 3, "all three stored")  # none dropped
            await eventually(lambda: asyncio.sleep(0, receiver.received), lambda r: len(r) >= 1, "first posted")
            await asyncio.sleep(1.0)
            assert len(receiver.received) == 1  # the others wait for later minutes
    finally:
        await receiver.close()


async def test_a_failing_receiver_is_retried_across_a_restart(mongodb_uri: str) -> None:
    """The receiver is down, then answers 503, while the gateway restarts: the pending delivery is
    kept in MongoDB and arrives, signed, once the receiver is back."""
    import uuid

    database = f"test_alerts_{uuid.uuid4().hex[:12]}"
    receiver = Receiver(fail_first=1)
    await receiver.start()
    port = receiver.port
    await receiver.close()  # down: connection refused
    async with emulated() as (emulator, shop):
        async with gateway(emulator, shop, MongoCatalogStore(mongodb_uri, database), receiver.url) as world:
            await world.query(RULES, {"catalog": CATALOG, "rules": {"priceDrop": True}})
            variant_id, _ = variant_priced(shop)
            await world.subscribe(variant_id, "alice", ["PRICE_DROP"])
            shop.set_price(variant_id, "0.25")
            await world.settle()
            [event] = await eventually(world.events, lambda e: len(e) == 1, "event")
            worker = world.running.gateway.alert_delivery
            assert worker is not None
            await eventually(lambda: asyncio.sleep(0, worker.failed_attempts), lambda n: n >= 1, "a failed attempt")
        await receiver.start(port)  # back, but its first answer is a 503
        restarted = MongoCatalogStore(mongodb_uri, database)
        async with gateway(emulator, shop, restarted, receiver.url, sync=False):
            await eventually(lambda: asyncio.sleep(0, receiver.received), lambda r: len(r) == 1, "delivered")
        assert receiver.received[0]["id"] == event["id"] and receiver.attempts >= 2
    await receiver.close()
    await _drop(mongodb_uri, database)


async def _drop(uri: str, database: str) -> None:
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri)
    try:
        await client.drop_database(database)
    finally:
        await client.close()


def test_alert_webhook_settings() -> None:
    env = {"ALERT_WEBHOOK_URL": "https://hooks.example.com/alerts", "ALERT_WEBHOOK_SECRET": "s3cret"}
    settings = Settings.from_env(env)
    assert (settings.alert_webhook_url, settings.alert_webhook_secret) == (env["ALERT_WEBHOOK_URL"], "s3cret")
    assert "s3cret" not in repr(settings)
    for broken in ({"ALERT_WEBHOOK_URL": env["ALERT_WEBHOOK_URL"]}, {"ALERT_WEBHOOK_SECRET": "s"},
                   {"ALERT_WEBHOOK_URL": "ftp://x", "ALERT_WEBHOOK_SECRET": "s"}):
        with pytest.raises(SettingsError, match="ALERT_WEBHOOK"):
            Settings.from_env(broken)
    unsent = Gateway(Settings(admin_token=ADMIN_TOKEN), MemoryCatalogStore())
    assert unsent.alert_delivery is None


async def test_a_change_found_by_reconciliation_fires_with_its_source(store: CatalogStore) -> None:  # noqa: F811
    async with emulated() as (emulator, shop), gateway(emulator, shop, store, None) as world:
        await world.query(RULES, {"catalog": CATALOG, "rules": {"priceDrop": True, "priceDropMinAmount": "1.00"}})
        variant_id, price = variant_priced(shop)
        await world.subscribe(variant_id, "alice", ["PRICE_DROP"])
        emulator.faults.drop_webhooks(times=1, shop=SHOP)
        lower = f"{float(price) - 1:.2f}"  # exactly the amount bound
        shop.set_price(variant_id, lower)
        await world.settle()
        assert await world.events() == []  # the webhook was dropped
        await world.running.gateway.webhooks.reconcile(SHOP)
        [event] = await world.events()
        assert (event["newValue"], event["source"], event["userIds"]) == (lower, "reconcile", ["alice"])


async def test_a_delivery_given_up_after_24_hours_is_an_error_notification(caplog: pytest.LogCaptureFixture) -> None:
    """An event released 25 hours ago whose receiver does not answer: one more failed attempt (logged),
    then the delivery is given up and the operators are told."""
    from datetime import timedelta

    from bulk.alerts.delivery import AlertDeliveryWorker
    from bulk.notifications import NoEmail, Notifier
    from bulk.progress import Broadcaster
    from catalog_store.alerts import AlertRules, AlertType
    from catalog_store.models import utcnow
    from tests.catalog_store.helpers import make_item
    from tests.secantus import free_port

    memory = MemoryCatalogStore(clock=lambda: utcnow() - timedelta(hours=25))
    await memory.ensure_catalog(CATALOG, SHOP, "Alerts Store")
    await memory.write_items(CATALOG, [make_item("1", price="10.00")])
    await memory.set_alert_rules(CATALOG, AlertRules(price_drop=True))
    await memory.subscribe_to_alerts(CATALOG, "1", "alice", (AlertType.PRICE_DROP,))
    await memory.write_items(CATALOG, [make_item("1", price="5.00", updated=1)])
    memory.clock = utcnow
    notifier = Notifier(memory, NoEmail(), Broadcaster())
    worker = AlertDeliveryWorker(memory, DeliverySettings(url=f"http://127.0.0.1:{free_port()}/", secret="s"), notifier)
    await worker.start()
    try:
        assert await worker.run_once() == 1
    finally:
        await worker.close()
    assert any("outbound attempt 1" in r.getMessage() for r in caplog.records)
    [notification] = await memory.list_notifications()
    assert notification.title == "Alert delivery given up" and notification.level.value == "error"
    assert await worker.run_once() == 0  # given up: never tried again


async def test_rules_input_keeps_clears_and_refuses() -> None:
    from tests.catalog_store.helpers import make_item

    memory = MemoryCatalogStore()
    await memory.ensure_catalog(CATALOG, SHOP, "Alerts Store")
    await memory.write_items(CATALOG, [make_item("1", price="10.00", quantity=0)])
    async with serve_gateway(memory, settings=Settings(admin_token=ADMIN_TOKEN, read_token=READ_TOKEN)) as running:
        first = await running.query(RULES, {"catalog": CATALOG, "rules": {"priceDrop": True, "priceDropMinAmount": "2.50",
                                                                         "priceDropMinPercent": 5}})
        assert first["setAlertRules"] == {"backInStock": False, "backInStockThreshold": 0, "priceDrop": True,
                                          "priceDropMinPercent": 5.0, "priceDropMinAmount": "2.50",
                                          "maxEventsPerMinute": 1000}
        second = await running.query(RULES, {"catalog": CATALOG, "rules": {"priceDropMinAmount": None}})
        assert second["setAlertRules"]["priceDropMinAmount"] is None
        assert second["setAlertRules"]["priceDropMinPercent"] == 5.0  # left out: kept
        for bad in ({"priceDropMinPercent": 0}, {"maxEventsPerMinute": 0}, {"backInStockThreshold": -1},
                    {"priceDropMinAmount": "-1"}, {"priceDrop": None}):
            with pytest.raises(TransportQueryError) as refused:
                await running.query(RULES, {"catalog": CATALOG, "rules": bad})
            assert refused.value.errors[0]["extensions"]["code"] == "BAD_USER_INPUT", bad
        with pytest.raises(TransportQueryError) as unknown:
            await running.query(RULES, {"catalog": "shopify_nope", "rules": {"priceDrop": True}})
        assert unknown.value.errors[0]["extensions"]["code"] == "NOT_FOUND"
        with pytest.raises(TransportQueryError) as forbidden:
            await running.query(RULES, {"catalog": CATALOG, "rules": {"priceDrop": True}}, token=READ_TOKEN)
        assert forbidden.value.errors[0]["extensions"]["code"] == "FORBIDDEN"
        sub = (await running.query(SUBSCRIBE, {"input": {"catalogName": CATALOG, "itemId": "1", "userId": "u",
                                                          "types": ["BACK_IN_STOCK"]}}))["subscribeToItemAlerts"]
        gone = "mutation U($id: ID!) { unsubscribeFromItemAlerts(id: $id) }"
        assert (await running.query(gone, {"id": sub["id"]}))["unsubscribeFromItemAlerts"] is True
        assert (await running.query(gone, {"id": sub["id"]}))["unsubscribeFromItemAlerts"] is False
