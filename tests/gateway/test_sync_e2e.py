"""End to end: the Shopify emulator, the real SyncService, the gateway on uvicorn, gql clients over
HTTP and graphql-transport-ws, an SMTP server. Enable → progress → SYNCED → items; mutation errors;
disable."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest
from gql import GraphQLRequest, gql
from gql.transport.exceptions import TransportQueryError

from tests.gateway.e2e import (
    ENABLE,
    ITEMS,
    NOTIFICATIONS,
    PROGRESS,
    SHOP,
    SHOP_TOKEN,
    VARIANTS,
    World,
    all_items,
    enable,
    progress_of,
    wait_finished,
    wait_notification,
)
from tests.gateway.harness import READ_TOKEN


async def test_enable_progress_synced_items_and_notifications(world: World) -> None:
    running, emulator = world.running, world.emulator
    shop = emulator.shop(SHOP)
    emulator.faults.slow_bulk(0.6, times=1, shop=SHOP)  # long enough to watch the bulk operation run

    async with running.ws(READ_TOKEN) as live:
        notifications_seen: list[dict] = []

        async def collect_notifications() -> None:
            async for event in live.subscribe(gql("subscription { notifications { title level emailStatus } }")):
                notifications_seen.append(event["notifications"])

        collector = asyncio.create_task(collect_notifications())
        await asyncio.sleep(0.1)
        enabled = await enable(running, shop="https://E2E-Store.myshopify.com/")
        assert enabled == {"shopDomain": SHOP, "catalogName": "shopify_e2e-store", "identifier": "SHOPIFY_VARIANT_ID",
                           "status": "IN_PROGRESS", "active": True, "errorCode": None}
        snapshots = await progress_of(live)
        await asyncio.sleep(0.3)
        collector.cancel()
        await asyncio.gather(collector, return_exceptions=True)

    assert snapshots[0]["status"] == "RUNNING"
    assert snapshots[-1]["status"] == "COMPLETED" and snapshots[-1]["phase"] == "completed"
    assert all(s["id"] == snapshots[0]["id"] for s in snapshots)
    phases = [s["phase"] for s in snapshots]
    assert "bulk_running" in phases
    assert snapshots[-1]["itemsWritten"] + snapshots[-1]["itemsSkipped"] == VARIANTS
    assert snapshots[-1]["bytesDownloaded"] == snapshots[-1]["fileSize"] > 0
    written = [s["itemsWritten"] for s in snapshots]
    assert written == sorted(written)

    sync = await wait_finished(running)
    assert sync["status"] == "SYNCED" and sync["errorCode"] is None
    assert sync["lastRun"]["id"] == snapshots[-1]["id"]
    assert sync["runs"][0]["id"] == sync["lastRun"]["id"]

    catalog = "shopify_e2e-store"
    items = await all_items(running, catalog)
    assert len(items) == sync["lastRun"]["itemsWritten"]
    ids = [i["id"] for i in items]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    details = (await running.query(ITEMS, {"catalog": catalog, "first": 1}))["catalog"]
    assert details["itemCount"] == len(items) and details["storageBytes"] > 0
    assert details["storeName"] == "E2E Store"
    for item in items[:20]:  # exact money strings and values as in Shopify
        variant = shop.variant(int(item["shopifyVariantId"]))
        assert item["id"] == item["shopifyVariantId"]
        assert item["price"] == variant.price
        assert item["compareAtPrice"] == variant.compare_at_price
        assert item["inventoryQuantity"] == variant.inventory_quantity
        assert item["sku"] == (variant.sku or None)

    # Filters.
    vendor = items[0]["vendor"]
    by_vendor = await all_items(running, catalog, filter={"vendor": vendor})
    assert by_vendor and all(i["vendor"] == vendor for i in by_vendor)
    assert len(by_vendor) == sum(1 for i in items if i["vendor"] == vendor)
    in_stock = await all_items(running, catalog, filter={"inStock": True})
    assert len(in_stock) == sum(1 for i in items if (i["inventoryQuantity"] or 0) > 0)
    prices = sorted(Decimal(i["price"]) for i in items)
    low, high = prices[len(prices) // 4], prices[3 * len(prices) // 4]
    ranged = await all_items(running, catalog, filter={"priceMin": str(low), "priceMax": str(high)})
    assert len(ranged) == sum(1 for p in prices if low <= p <= high)
    word = items[0]["productTitle"].split()[0]
    found = await all_items(running, catalog, filter={"search": word.upper()})
    assert found and all(word.lower() in (i["productTitle"] + " " + (i["variantTitle"] or "") + " "
                                          + (i["sku"] or "")).lower() for i in found)

    # Notifications: stored, pushed, emailed.
    await wait_notification(running, "success", "Shopify product sync complete")
    stored = (await running.query(NOTIFICATIONS, token=READ_TOKEN))["notifications"]
    titles = [n["title"] for n in stored]
    assert "Shopify product sync complete" in titles and "Shopify product sync in progress" in titles
    complete = next(n for n in stored if n["title"] == "Shopify product sync complete")
    assert complete["level"] == "success" and complete["emailStatus"] == "SENT"
    # What was written, and what the catalog holds (they differ when webhooks were newer).
    assert f"items written to catalog shopify_e2e-store ({details['itemCount']} in the catalog)" in complete["message"]
    assert [n["title"] for n in notifications_seen][:2] == ["Shopify product sync in progress",
                                                           "Shopify product sync complete"]
    assert any("Shopify product sync complete" in s for s in world.inbox.subjects())

    read = await running.query('mutation($id: ID!) { markNotificationRead(id: $id) { id read } }',
                               {"id": complete["id"]})
    assert read["markNotificationRead"] == {"id": complete["id"], "read": True}
    unread = (await running.query(NOTIFICATIONS, {"unread": True}))["notifications"]
    assert complete["id"] not in [n["id"] for n in unread]


async def test_bad_pagination_arguments(world: World) -> None:
    await enable(world.running)
    await wait_finished(world.running)
    cases = (({"first": 251}, "250"), ({"first": -1}, "250"), ({"after": "bm90LWEtY3Vyc29y"}, "cursor"),
             ({"filter": {"priceMin": "10", "priceMax": "5"}}, "priceMin"))
    for variables, needle in cases:
        with pytest.raises(TransportQueryError) as info:
            await world.running.query(ITEMS, {"catalog": "shopify_e2e-store", **variables})
        error = info.value.errors[0]  # type: ignore[index]
        assert error["extensions"]["code"] == "BAD_USER_INPUT", variables
        assert needle in error["message"]
    assert (await world.running.query(ITEMS, {"catalog": "shopify_nope"}))["catalog"] is None


async def test_mutation_errors_have_codes_and_fixes(world: World) -> None:
    running, emulator = world.running, world.emulator

    async def error_of(document: str, variables: dict[str, Any]) -> dict[str, Any]:
        with pytest.raises(TransportQueryError) as info:
            await running.query(document, variables)
        return info.value.errors[0]  # type: ignore[index]

    bad = await error_of(ENABLE, {"input": {"shopDomain": "not a shop!", "accessToken": SHOP_TOKEN,
                                            "identifier": "SKU"}})
    assert bad["extensions"]["code"] == "BAD_USER_INPUT" and bad["extensions"]["fix"]
    empty = await error_of(ENABLE, {"input": {"shopDomain": SHOP, "accessToken": " ", "identifier": "SKU"}})
    assert empty["extensions"]["code"] == "BAD_USER_INPUT"
    resync = "mutation($s: String!) { resyncShopifyCatalog(shopDomain: $s) { id status } }"
    missing = await error_of(resync, {"s": "unknown-shop.myshopify.com"})
    assert missing["extensions"]["code"] == "NOT_FOUND"

    emulator.faults.slow_bulk(5, times=1, shop=SHOP)
    await enable(running)
    running_error = await error_of(resync, {"s": SHOP})
    assert running_error["extensions"]["code"] == "SYNC_ALREADY_RUNNING"
    assert "cancel" in running_error["extensions"]["fix"].lower()
    change = await error_of(ENABLE, {"input": {"shopDomain": SHOP, "accessToken": SHOP_TOKEN, "identifier": "SKU"}})
    assert change["extensions"]["code"] == "IDENTIFIER_CHANGE_REQUIRES_DISABLE"
    assert "disable" in change["message"].lower() or "disable" in change["extensions"]["fix"].lower()

    canceled = await running.query("mutation($s: String!) { cancelShopifySync(shopDomain: $s) { status phase } }",
                                   {"s": SHOP})
    assert canceled["cancelShopifySync"]["status"] == "CANCELED"
    nothing = await running.query("mutation($s: String!) { cancelShopifySync(shopDomain: $s) { status } }",
                                  {"s": SHOP})
    assert nothing["cancelShopifySync"] is None

    with pytest.raises(TransportQueryError) as info:
        async with running.ws() as live:
            async for _ in live.subscribe(GraphQLRequest(PROGRESS, variable_values={"shop": "ghost.myshopify.com"})):
                pass
    assert info.value.errors[0]["extensions"]["code"] == "NOT_FOUND"  # type: ignore[index]


async def test_disable_deletes_everything(world: World) -> None:
    running = world.running
    await enable(running)
    sync = await wait_finished(running)
    written = sync["lastRun"]["itemsWritten"]
    result = await running.query(
        "mutation($s: String!) {"
        " disableShopifySync(shopDomain: $s) { shopDomain itemsDeleted alertSubscriptionsAffected } }",
        {"s": SHOP})
    assert result["disableShopifySync"] == {"shopDomain": SHOP, "itemsDeleted": written,
                                            "alertSubscriptionsAffected": 0}
    after = await running.query(
        'query($s: String!) { shopifySync(shopDomain: $s) { status } shopifySyncs { shopDomain }'
        ' catalogs { name } catalog(name: "shopify_e2e-store") { itemCount } }', {"s": SHOP})
    assert after == {"shopifySync": None, "shopifySyncs": [], "catalogs": [], "catalog": None}
    assert (await running.query("query { shopifySyncs { shopDomain } }", token=READ_TOKEN)) == {"shopifySyncs": []}
