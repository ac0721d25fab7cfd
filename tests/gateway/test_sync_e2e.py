"""End to end: the Shopify emulator, the real SyncService, the gateway on uvicorn, gql clients over
HTTP and graphql-transport-ws, and an SMTP server. Enable → progress → SYNCED → items; every error
code of spec §4 reaching the API, the notifications and the mailbox; disable; no secret leaks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from gql import gql
from gql.transport.exceptions import TransportQueryError

from catalog_store.memory import MemoryCatalogStore
from gateway.settings import Settings, SmtpSettings
from shopify_emulator import Emulator
from tests.gateway.conftest import ADMIN_TOKEN, READ_TOKEN, Running, serve_gateway
from tests.gateway.smtp import Inbox, smtp_server

SHOP = "e2e-store.myshopify.com"
SHOP_TOKEN = "shpat_e2e_5ecret_t0ken_do_not_leak"
VARIANTS = 120
TIMEOUT = 30.0

ENABLE = """
mutation Enable($input: EnableShopifySyncInput!) {
  enableShopifySync(input: $input) { shopDomain catalogName identifier status active errorCode }
}"""
SYNC = """
query Sync($shop: String!) {
  shopifySync(shopDomain: $shop) {
    shopDomain catalogName identifier status active errorCode errorMessage
    lastRun { id status phase objectCount bytesDownloaded fileSize itemsWritten itemsSkipped
              skipped { reason count examples } startedAt finishedAt errorCode errorMessage }
    runs(last: 5) { id status }
  }
}"""
PROGRESS = """
subscription Progress($shop: String!) {
  syncProgress(shopDomain: $shop) { id status phase objectCount bytesDownloaded fileSize itemsWritten
                                    itemsSkipped errorCode }
}"""
ITEMS = """
query Items($catalog: String!, $first: Int, $after: String, $filter: CatalogItemFilter) {
  catalog(name: $catalog) {
    name storeName itemCount storageBytes
    items(first: $first, after: $after, filter: $filter) {
      totalCount
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
      edges { cursor node { id storeName shopifyProductId shopifyVariantId productTitle variantTitle status
                            vendor productType price compareAtPrice inventoryQuantity options optionValues sku } }
    }
  }
}"""
NOTIFICATIONS = """
query Notifications($unread: Boolean) {
  notifications(first: 50, unreadOnly: $unread) { id shopDomain level title message createdAt read emailStatus emailError }
}"""


@dataclass
class World:
    emulator: Emulator
    inbox: Inbox
    running: Running


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    emu = Emulator(api_secret="whsec_e2e")
    emu.add_shop(SHOP, access_token=SHOP_TOKEN, variants=VARIANTS, seed=7, name="E2E Store")
    await emu.start()
    try:
        yield emu
    finally:
        await emu.close()


def gateway_settings(emulator: Emulator, inbox: Inbox) -> Settings:
    return Settings(
        admin_token=ADMIN_TOKEN,
        read_token=READ_TOKEN,
        shopify_admin_api_url=emulator.admin_api_url_template,
        smtp=SmtpSettings(host="127.0.0.1", port=inbox.port, sender="catalog@example.com",
                          recipients=("ops@example.com",)),
    )


@pytest.fixture
async def world(emulator: Emulator) -> AsyncIterator[World]:
    async with smtp_server() as inbox:
        async with serve_gateway(MemoryCatalogStore(), settings=gateway_settings(emulator, inbox)) as running:
            yield World(emulator, inbox, running)


async def enable(running: Running, identifier: str = "SHOPIFY_VARIANT_ID", shop: str = SHOP,
                 token: str = SHOP_TOKEN) -> dict[str, Any]:
    result = await running.query(ENABLE, {"input": {"shopDomain": shop, "accessToken": token,
                                                    "identifier": identifier}})
    return result["enableShopifySync"]


async def wait_finished(running: Running, shop: str = SHOP) -> dict[str, Any]:
    """The shop's sync once its last run has finished (polling the API)."""
    async def poll() -> dict[str, Any]:
        while True:
            sync = (await running.query(SYNC, {"shop": shop}))["shopifySync"]
            if sync["lastRun"] and sync["lastRun"]["status"] != "RUNNING":
                return sync
            await asyncio.sleep(0.05)

    return await asyncio.wait_for(poll(), TIMEOUT)


async def all_items(running: Running, catalog: str, page: int = 17, filter: dict | None = None) -> list[dict]:
    nodes: list[dict] = []
    after = None
    while True:
        data = await running.query(ITEMS, {"catalog": catalog, "first": page, "after": after, "filter": filter})
        items = data["catalog"]["items"]
        nodes.extend(edge["node"] for edge in items["edges"])
        assert items["pageInfo"]["hasPreviousPage"] is (after is not None)
        if not items["pageInfo"]["hasNextPage"]:
            assert len(nodes) == items["totalCount"]
            return nodes
        after = items["pageInfo"]["endCursor"]
        assert after == items["edges"][-1]["cursor"]


def variant_ids(emulator: Emulator, shop: str = SHOP) -> list[int]:
    return list(emulator.shop(shop).variant_ids()) if hasattr(emulator, "shop") else []


# -- the happy path ----------------------------------------------------------------------------


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
        snapshots = [e["syncProgress"] async for e in live.subscribe(gql(PROGRESS), variable_values={"shop": SHOP})]
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
        assert item["sku"] == variant.sku

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
    stored = (await running.query(NOTIFICATIONS, token=READ_TOKEN))["notifications"]
    titles = [n["title"] for n in stored]
    assert "Shopify product sync complete" in titles and "Shopify product sync in progress" in titles
    complete = next(n for n in stored if n["title"] == "Shopify product sync complete")
    assert complete["level"] == "success" and complete["emailStatus"] == "SENT"
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
    for variables, needle in (({"first": 251}, "250"), ({"first": -1}, "250"), ({"after": "bm90LWEtY3Vyc29y"}, "cursor"),
                              ({"filter": {"priceMin": "10", "priceMax": "5"}}, "priceMin")):
        with pytest.raises(TransportQueryError) as info:
            await world.running.query(ITEMS, {"catalog": "shopify_e2e-store", **variables})
        error = info.value.errors[0]  # type: ignore[index]
        assert error["extensions"]["code"] == "BAD_USER_INPUT", variables
        assert needle in error["message"]
    assert (await world.running.query(ITEMS, {"catalog": "shopify_nope"}))["catalog"] is None


# -- every error code of spec §4 -----------------------------------------------------------------


def _server_error(emulator: Emulator) -> str:
    emulator.faults.fail_bulk("INTERNAL_SERVER_ERROR", times=None, shop=SHOP)
    return "SHOPIFY_VARIANT_ID"


def _duplicate_sku(emulator: Emulator) -> str:
    shop = emulator.shop(SHOP)
    first, second = list(shop.variant_ids())[:2]
    shop.set_sku(first, "DUP-SKU-1")
    shop.set_sku(second, "DUP-SKU-1")
    return "SKU"


def _access_denied(emulator: Emulator) -> str:
    emulator.faults.revoke_token(SHOP)
    return "SHOPIFY_VARIANT_ID"


@pytest.mark.parametrize(
    ("code", "arrange", "limit"),
    [
        ("SERVER_ERROR", _server_error, None),
        ("DUPLICATE_SKU", _duplicate_sku, None),
        ("CATALOG_LIMIT_EXCEEDED", lambda emulator: "SHOPIFY_VARIANT_ID", 30_000),
        ("ACCESS_DENIED", _access_denied, None),
    ],
)
async def test_sync_errors_reach_the_api_notifications_and_email(
    emulator: Emulator, code: str, arrange: Any, limit: int | None
) -> None:
    identifier = arrange(emulator)
    async with smtp_server() as inbox:
        overrides = {"storage_limit_bytes": limit} if limit else {}
        async with serve_gateway(MemoryCatalogStore(), settings=gateway_settings(emulator, inbox),
                                 sync_overrides=overrides) as running:
            await enable(running, identifier)
            sync = await wait_finished(running)
            assert sync["status"] == "ERROR"
            assert sync["errorCode"] == code
            assert sync["lastRun"]["status"] == "FAILED" and sync["lastRun"]["errorCode"] == code
            assert sync["errorMessage"]
            if code == "DUPLICATE_SKU":
                assert "DUP-SKU-1" in sync["errorMessage"]
            if code == "CATALOG_LIMIT_EXCEEDED":
                assert sync["active"] is False
                assert 0 < sync["lastRun"]["itemsWritten"] < VARIANTS
            stored = (await running.query(NOTIFICATIONS))["notifications"]
            error = next(n for n in stored if n["level"] == "error")
            assert "How to fix" in error["message"]
            assert error["emailStatus"] == "SENT"
            await asyncio.wait_for(inbox.arrived.wait(), TIMEOUT)
            assert any(error["title"] in s for s in inbox.subjects())
            assert SHOP_TOKEN not in str(stored)


async def test_email_not_configured_is_recorded(emulator: Emulator) -> None:
    settings = Settings(admin_token=ADMIN_TOKEN, shopify_admin_api_url=emulator.admin_api_url_template)
    async with serve_gateway(MemoryCatalogStore(), settings=settings) as running:
        await enable(running)
        await wait_finished(running)
        stored = (await running.query(NOTIFICATIONS))["notifications"]
        complete = next(n for n in stored if n["title"] == "Shopify product sync complete")
        assert complete["emailStatus"] == "NOT_SENT" and "SMTP" in complete["emailError"]


# -- mutations' own errors -------------------------------------------------------------------------


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
            async for _ in live.subscribe(gql(PROGRESS), variable_values={"shop": "ghost.myshopify.com"}):
                pass
    assert info.value.errors[0]["extensions"]["code"] == "NOT_FOUND"  # type: ignore[index]


async def test_disable_deletes_everything(world: World) -> None:
    running = world.running
    await enable(running)
    sync = await wait_finished(running)
    written = sync["lastRun"]["itemsWritten"]
    result = await running.query(
        "mutation($s: String!) { disableShopifySync(shopDomain: $s) { shopDomain itemsDeleted alertSubscriptionsAffected } }",
        {"s": SHOP})
    assert result["disableShopifySync"] == {"shopDomain": SHOP, "itemsDeleted": written, "alertSubscriptionsAffected": 0}
    after = await running.query("query($s: String!) { shopifySync(shopDomain: $s) { status } shopifySyncs { shopDomain }"
                                " catalogs { name } catalog(name: \"shopify_e2e-store\") { itemCount } }", {"s": SHOP})
    assert after == {"shopifySync": None, "shopifySyncs": [], "catalogs": [], "catalog": None}
    assert (await running.query("query { shopifySyncs { shopDomain } }", token=READ_TOKEN)) == {"shopifySyncs": []}


# -- live behaviour ------------------------------------------------------------------------------


async def test_leaving_subscriptions_frees_their_subscribers(world: World) -> None:
    running, gateway = world.running, world.running.gateway
    world.emulator.faults.slow_bulk(5, times=1, shop=SHOP)
    async with running.ws(READ_TOKEN) as live:
        async def first_notification() -> dict[str, Any]:
            async for event in live.subscribe(gql("subscription { notifications { title } }")):
                assert gateway.notifier.hub.subscriber_count() == 1
                return event
            raise AssertionError("the subscription ended")

        waiting = asyncio.create_task(first_notification())
        while gateway.notifier.hub.subscriber_count() == 0:
            await asyncio.sleep(0.01)
        await enable(running)
        assert (await asyncio.wait_for(waiting, TIMEOUT))["notifications"]["title"]
        async for event in live.subscribe(gql(PROGRESS), variable_values={"shop": SHOP}):
            assert event["syncProgress"]["status"] == "RUNNING"
            assert gateway.sync.progress.subscriber_count(SHOP) == 1
            break

        # The client left both operations (the connection is still open): the server-side
        # generators must have unsubscribed.
        async def drained() -> None:
            while gateway.sync.progress.subscriber_count(SHOP) or gateway.notifier.hub.subscriber_count():
                await asyncio.sleep(0.02)

        await asyncio.wait_for(drained(), 5)
    await running.query("mutation($s: String!) { cancelShopifySync(shopDomain: $s) { id } }", {"s": SHOP})


async def test_closing_the_connection_frees_subscribers(world: World) -> None:
    running, gateway = world.running, world.running.gateway
    world.emulator.faults.slow_bulk(5, times=1, shop=SHOP)
    await enable(running)
    live = running.ws(READ_TOKEN)
    session = await live.connect_async()
    events = session.subscribe(gql(PROGRESS), variable_values={"shop": SHOP})
    await events.__anext__()
    assert gateway.sync.progress.subscriber_count(SHOP) == 1
    await live.close_async()  # the client goes away without completing the operation

    async def drained() -> None:
        while gateway.sync.progress.subscriber_count(SHOP):
            await asyncio.sleep(0.02)

    await asyncio.wait_for(drained(), 5)
    await running.query("mutation($s: String!) { cancelShopifySync(shopDomain: $s) { id } }", {"s": SHOP})


async def test_progress_of_a_run_owned_by_another_process(emulator: Emulator) -> None:
    """Two gateways share one store (as processes share MongoDB); only the first runs the sync. The
    second publishes nothing locally, yet its subscribers see the run through the store."""
    store = MemoryCatalogStore()
    settings = Settings(admin_token=ADMIN_TOKEN, shopify_admin_api_url=emulator.admin_api_url_template)
    async with serve_gateway(store, settings=settings) as owner, serve_gateway(store, settings=settings) as other:
        emulator.faults.slow_bulk(0.8, times=1, shop=SHOP)
        await enable(owner)
        async with other.ws() as live:
            snapshots = [e["syncProgress"] async for e in live.subscribe(gql(PROGRESS), variable_values={"shop": SHOP})]
        assert other.gateway.sync.progress.subscriber_count(SHOP) == 0
        assert snapshots[-1]["status"] == "COMPLETED"
        assert snapshots[-1]["itemsWritten"] == (await wait_finished(owner))["lastRun"]["itemsWritten"]


async def test_the_access_token_never_leaves_the_server(world: World, secret_logs: pytest.LogCaptureFixture) -> None:
    running = world.running
    seen: list[str] = []
    async with running.ws() as live:
        async def watch() -> None:
            async for event in live.subscribe(gql("subscription { notifications { title message } }")):
                seen.append(str(event))

        watcher = asyncio.create_task(watch())
        await asyncio.sleep(0.1)
        await enable(running)
        with pytest.raises(TransportQueryError) as refused:  # refused enable: the error must not echo it
            await enable(running, identifier="SKU")
        seen.append(str(refused.value))
        with pytest.raises(TransportQueryError) as bad:
            await running.query(
                'mutation { enableShopifySync(input: {shopDomain: "bad domain", accessToken: "%s", identifier: SKU})'
                " { status } }" % SHOP_TOKEN)
        seen.append(str(bad.value))
        snapshots = [e async for e in live.subscribe(gql(PROGRESS), variable_values={"shop": SHOP})]
        seen.append(str(snapshots))
        await asyncio.sleep(0.3)
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
    sync = await wait_finished(running)
    seen.append(str(sync))
    seen.append(str(await running.query(NOTIFICATIONS)))
    seen.append(str(await running.query(ITEMS, {"catalog": "shopify_e2e-store", "first": 250})))
    seen.append(str(await running.query("{ shopifySyncs { shopDomain catalogName status } catalogs { name storeName } }")))
    schema_text = str(await running.query("{ __schema { types { name fields { name } } } }"))
    assert "accessToken" not in schema_text  # no output type can return it
    seen.extend(str(r.message) for r in world.inbox.received)
    seen.extend(r.getMessage() + str(r.exc_info or "") for r in secret_logs.records)
    assert len(seen) > 8
    for text in seen:
        assert SHOP_TOKEN not in text
