"""Alerts in the demo: rules on, a few demo users subscribed to items that are sold out or about to
drop, the store changing those items soon, and one printed line per alert event; and
`catalog-gateway alert-receiver`, a tiny outbound receiver printing each verified alert."""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
from collections.abc import Sequence
from decimal import Decimal
from itertools import zip_longest
from typing import Protocol

from bulk.alerts.outbound import EVENT_ID_HEADER, SIGNATURE_HEADER, verified
from catalog_store.alerts import AlertEvent, AlertRules, AlertType
from catalog_store.items import CatalogItem
from catalog_store.store import CatalogStore
from gateway.graphql.alerts_live import watch_alerts

DEMO_RULES = AlertRules(back_in_stock=True, back_in_stock_threshold=0, price_drop=True, price_drop_min_percent=5.0)
SUBSCRIBED_ITEMS = 3  # of each kind
FIRST_CHANGE_AFTER = 10.0  # seconds after subscribing, the store starts changing the subscribed items


class AlertingShop(Protocol):
    def set_price(self, variant_id: str | int, price: str) -> object: ...

    def set_inventory(self, variant_id: str | int, quantity: int) -> object: ...


def describe(event: AlertEvent) -> str:
    users = ", ".join(event.user_ids)
    return (f"  alert: {event.type.value} item {event.item_id} {event.previous_value} -> {event.new_value} "
            f"for {users} ({event.source.value})")


async def wait_for_items(store: CatalogStore, catalog: str, timeout: float = 120.0) -> list[CatalogItem]:
    """The catalog's first page once the initial sync filled it (before, only the few items webhooks
    wrote are there), or what it holds after `timeout` seconds (a small store)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    items: list[CatalogItem] = []
    while loop.time() < deadline:
        items = (await store.list_items(catalog, first=250)).items
        if len(items) == 250:
            break
        await asyncio.sleep(0.5)
    return items


async def subscribe_demo_users(store: CatalogStore, catalog: str, items: Sequence[CatalogItem]
                               ) -> tuple[list[CatalogItem], list[CatalogItem]]:
    """Alerts on; demo users subscribed to sold-out items (back in stock) and in-stock ones (price drop)."""
    await store.set_alert_rules(catalog, DEMO_RULES)
    sold_out = [i for i in items if (i.inventory_quantity or 0) <= 0][:SUBSCRIBED_ITEMS]
    in_stock = [i for i in items if (i.inventory_quantity or 0) > 0 and Decimal(i.price) > 1][:SUBSCRIBED_ITEMS]
    for n, item in enumerate(sold_out, 1):
        await store.subscribe_to_alerts(catalog, item.id, f"demo-user-{n}", (AlertType.BACK_IN_STOCK,))
    for n, item in enumerate(in_stock, 1):
        await store.subscribe_to_alerts(catalog, item.id, f"demo-user-{n}", (AlertType.PRICE_DROP,))
    return sold_out, in_stock


async def change_subscribed_items(shop: AlertingShop, sold_out: Sequence[CatalogItem],
                                  in_stock: Sequence[CatalogItem], rng: random.Random) -> None:
    """Restock the sold-out items and cut the others' prices, one every few seconds, so alerts fire."""
    await asyncio.sleep(FIRST_CHANGE_AFTER)
    for restock, drop in zip_longest(sold_out, in_stock):
        if restock is not None:
            shop.set_inventory(restock.shopify_variant_id, rng.randint(3, 30))
            await asyncio.sleep(rng.uniform(3, 8))
        if drop is not None:
            new_price = (Decimal(drop.price) * Decimal("0.8")).quantize(Decimal("0.01"))
            shop.set_price(drop.shopify_variant_id, str(new_price))
            await asyncio.sleep(rng.uniform(3, 8))


async def run_demo_alerts(store: CatalogStore, shop: AlertingShop, catalog: str, rng: random.Random) -> None:
    """The demo's alert part (a task of the demo, cancelled with it)."""
    items = await wait_for_items(store, catalog)
    sold_out, in_stock = await subscribe_demo_users(store, catalog, items)
    print(f"  alerts on for {catalog}: demo users subscribed to back-in-stock of "
          f"{', '.join(i.id for i in sold_out) or '-'} and price drops of {', '.join(i.id for i in in_stock) or '-'}"
          f"\n  watch: subscription {{ itemAlerts(catalogName: \"{catalog}\") {{ type itemId previousValue "
          "newValue userIds source } }", flush=True)
    changer = asyncio.create_task(change_subscribed_items(shop, sold_out, in_stock, rng))
    try:
        async for event in watch_alerts(store, catalog, 0.5):
            print(describe(event), flush=True)
    finally:
        changer.cancel()


# -- catalog-gateway alert-receiver --------------------------------------------------------------------


def run_alert_receiver(args: argparse.Namespace) -> int:
    try:
        asyncio.run(alert_receiver(args.host, args.port, args.secret))
    except KeyboardInterrupt:
        pass
    return 0


async def alert_receiver(host: str, port: int, secret: str) -> None:
    """POST / (any path): print the alert when its signature verifies, else answer 401."""
    from aiohttp import web

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        if not verified(body, request.headers.get(SIGNATURE_HEADER), secret):
            print(f"refused an alert with a bad signature (event {request.headers.get(EVENT_ID_HEADER)})",
                  file=sys.stderr, flush=True)
            return web.Response(status=401, text="bad signature")
        print(f"verified alert {request.headers.get(EVENT_ID_HEADER)}: {body.decode()}", flush=True)
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/{tail:.*}", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    print(f"alert receiver on http://{host}:{port}/ (set ALERT_WEBHOOK_URL to it, ALERT_WEBHOOK_SECRET to the "
          "secret); Ctrl-C stops", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
