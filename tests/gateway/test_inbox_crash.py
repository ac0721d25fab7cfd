"""A crash loses no webhook delivery answered 200: `catalog-gateway serve` processes on one MongoDB,
killed with SIGKILL.

1. A process with no webhook workers (GATEWAY_WEBHOOK_WORKERS=0) answers 200 to the emulator's
   deliveries (price and inventory changes) and is killed: they are all in the inbox.
2. A process with workers applies the price changes; its read worker holds the inventory changes
   (the Admin API answers 503) when it is killed too.
3. A third process applies everything once the killed worker's claims expire: every change is in
   the catalog, each delivery counted once, and Shopify's retries of them are duplicates.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp

from catalog_store.mongo.store import MongoCatalogStore
from shopify_emulator import Delivery, Emulator
from tests.gateway import test_scale_out
from tests.gateway.e2e import ENABLE, SYNC
from tests.gateway.harness import ADMIN_TOKEN, READ_TOKEN
from tests.gateway.processes import GatewayProcess, gateway_processes
from tests.gateway.test_scale_out import captured, eventually, webhook_edge
from tests.keys import TEST_CIPHER, TEST_SECRET_KEY

SHOP = "crash-store.myshopify.com"
SHOP_TOKEN = "shpat_inbox_crash_token"
SECRET = "whsec_inbox_crash"
CATALOG = "shopify_crash-store"
PRICE_CHANGES = 40
INVENTORY_CHANGES = 8
CLAIM_TTL = 3  # seconds (GATEWAY_WEBHOOK_CLAIM_TTL_SECONDS)
database = test_scale_out.database  # the fixture: a fresh database name, dropped afterwards
REALTIME = "query($s: String!) { shopifySync(shopDomain: $s) { realtime { backlog appliedTotal failedTotal } } }"


async def post(http: aiohttp.ClientSession, gateway: GatewayProcess, delivery: Delivery) -> str:
    async with http.post(gateway.webhook_url, data=delivery.body, headers=delivery.headers) as response:
        assert response.status == 200, (response.status, await response.text())
        return str((await response.json())["status"])


async def realtime(gateway: GatewayProcess) -> dict[str, Any]:
    return dict((await gateway.query(REALTIME, {"s": SHOP}))["shopifySync"]["realtime"])


async def test_deliveries_answered_200_survive_kill_9_and_are_applied_once(
        mongodb_uri: str, database: str, tmp_path: Path) -> None:
    emulator = Emulator(api_secret=SECRET, bulk_duration=0.2, webhook_retry_delays=(0.05,))
    shop = emulator.add_shop(SHOP, access_token=SHOP_TOKEN, variants=60, seed=9, name="Crash Store")
    await emulator.start()
    store = MongoCatalogStore(mongodb_uri, database, cipher=TEST_CIPHER)  # the test's own reader of the database
    await store.start()
    try:
        async with webhook_edge() as edge_url, aiohttp.ClientSession() as http:
            env = {"MONGODB_URI": mongodb_uri, "MONGODB_DATABASE": database, "GATEWAY_ADMIN_TOKEN": ADMIN_TOKEN,
                   "GATEWAY_READ_TOKEN": READ_TOKEN, "SHOPIFY_API_SECRET": SECRET,
                   "SHOPIFY_ADMIN_API_URL": emulator.admin_api_url_template, "GATEWAY_PUBLIC_URL": edge_url,
                   "GATEWAY_WEBHOOK_CLAIM_TTL_SECONDS": str(CLAIM_TTL), "GATEWAY_SECRET_KEY": TEST_SECRET_KEY}
            # 1. Intake only: every delivery answered 200, then SIGKILL.
            async with gateway_processes(["intake"], {**env, "GATEWAY_WEBHOOK_WORKERS": "0"}, tmp_path) as [intake]:
                await intake.query(ENABLE, {"input": {"shopDomain": SHOP, "accessToken": SHOP_TOKEN,
                                                      "identifier": "SHOPIFY_VARIANT_ID"}})
                await eventually(lambda: intake.query(SYNC, {"shop": SHOP}),
                                 lambda d: d["shopifySync"]["status"] == "SYNCED", "first sync")
                variants = [v for p in shop.products() for v in p.variants]
                prices = {v.id: f"{100 + n}.25" for n, v in enumerate(variants[:PRICE_CHANGES])}
                quantities = {v.id: 500 + n for n, v in enumerate(variants[-INVENTORY_CHANGES:])}
                deliveries = [captured(emulator, lambda v=v, p=p: shop.set_price(v, p))[1] for v, p in prices.items()]
                deliveries += [captured(emulator, lambda v=v, q=q: shop.set_inventory(v, q),
                                        topic="inventory_levels/update")[1] for v, q in quantities.items()]
                assert [await post(http, intake, d) for d in deliveries] == ["accepted"] * len(deliveries)
                waiting = await realtime(intake)
                assert waiting["backlog"] >= len(deliveries) and waiting["appliedTotal"] == 0
                intake.kill()

            async def catalog() -> dict[int, tuple[str, int | None]]:
                items = await store.get_items_by_variant(CATALOG, [str(v.id) for v in variants])
                return {int(i.shopify_variant_id): (i.price, i.inventory_quantity) for i in items}

            # 2. A worker applies the direct lane; its read worker is stuck on a failing Admin API.
            emulator.faults.http_error(503, times=None, shop=SHOP)
            async with gateway_processes(["stuck"], env, tmp_path) as [stuck]:
                await eventually(catalog, lambda c: all(c[v][0] == p for v, p in prices.items()),
                                 "price changes applied by the second process")
                inbox = store.database["inbox"]

                async def held_by_stuck() -> int:
                    return await inbox.count_documents({"state": "pending", "lane": "read",
                                                        "owner": {"$regex": f":{stuck.pid}:"}})
                await eventually(held_by_stuck, lambda n: n > 0, "inventory changes claimed by the stuck worker")
                stuck.kill()
            # Its claims are still held: nobody may take them before they expire.
            held = [d async for d in inbox.find({"state": "pending", "lane": "read",
                                                 "owner": {"$regex": f":{stuck.pid}:"}})]
            assert held and all(d["available_at"] > store.clock() for d in held)

            # 3. Another process applies everything once the killed worker's claims expire.
            emulator.faults.clear()
            async with gateway_processes(["after"], env, tmp_path) as [after]:
                applied = await eventually(
                    catalog, lambda c: all(c[v][1] == q for v, q in quantities.items()),
                    "inventory changes applied after the claims expired")
                assert all(applied[v][0] == p for v, p in prices.items())
                done = await eventually(lambda: realtime(after),
                                        lambda r: r["backlog"] == 0 and r["appliedTotal"] >= waiting["backlog"],
                                        "every delivery counted")
                assert done == {"backlog": 0, "appliedTotal": waiting["backlog"], "failedTotal": 0}
                # Shopify's retries of deliveries it got 200 for are recognised, never applied again.
                assert {await post(http, after, d) for d in deliveries} == {"duplicate"}
                assert (await realtime(after))["appliedTotal"] == waiting["backlog"]
    finally:
        await store.close()
        await emulator.close()
