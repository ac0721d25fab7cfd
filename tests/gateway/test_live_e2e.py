"""End to end, live behaviour: subscriptions free their resources, progress of runs owned by another
process (also on a real MongoDB-wire server), and the Shopify access token never leaving the server."""

from __future__ import annotations

import asyncio
import json
import uuid
from contextlib import aclosing
from typing import Any

import httpx
import pytest
import websockets
from gql import GraphQLRequest, gql
from gql.transport.exceptions import TransportQueryError
from pymongo import AsyncMongoClient

from catalog_store.memory import MemoryCatalogStore
from catalog_store.mongo import MongoCatalogStore
from gateway.settings import Settings
from shopify_emulator import Emulator
from tests.gateway.e2e import (
    CLIENT_SIDE_LOGGERS,
    ITEMS,
    NOTIFICATIONS,
    PROGRESS,
    SHOP,
    SHOP_TOKEN,
    TIMEOUT,
    World,
    all_items,
    enable,
    progress_of,
    wait_finished,
)
from tests.gateway.harness import ADMIN_TOKEN, READ_TOKEN, serve_gateway


async def test_leaving_subscriptions_frees_their_subscribers(world: World) -> None:
    running, gateway = world.running, world.running.gateway
    world.emulator.faults.slow_bulk(5, times=1, shop=SHOP)
    async with running.ws(READ_TOKEN) as live:
        # aclosing: leaving the loop must send `complete` now, not whenever the generator is collected.
        async def first_notification() -> dict[str, Any]:
            async with aclosing(live.subscribe(gql("subscription { notifications { title } }"))) as events:
                async for event in events:
                    assert gateway.notifier.hub.subscriber_count() == 1
                    return event
            raise AssertionError("the subscription ended")

        waiting = asyncio.create_task(first_notification())
        while gateway.notifier.hub.subscriber_count() == 0:
            await asyncio.sleep(0.01)
        await enable(running)
        assert (await asyncio.wait_for(waiting, TIMEOUT))["notifications"]["title"]
        async with aclosing(live.subscribe(GraphQLRequest(PROGRESS, variable_values={"shop": SHOP}))) as events:
            async for event in events:
                assert event["syncProgress"]["status"] == "RUNNING"
                assert gateway.sync.progress.subscriber_count(SHOP) == 1
                break

        # The client left both operations (the connection is still open): the server-side
        # generators must have unsubscribed.
        async def drained() -> None:
            while gateway.sync.progress.subscriber_count(SHOP) or gateway.notifier.hub.subscriber_count():
                await asyncio.sleep(0.02)

        try:
            await asyncio.wait_for(drained(), 5)
        except TimeoutError:
            raise AssertionError(f"progress={gateway.sync.progress.subscriber_count(SHOP)} notif={gateway.notifier.hub.subscriber_count()}")
    await running.query("mutation($s: String!) { cancelShopifySync(shopDomain: $s) { id } }", {"s": SHOP})


async def test_closing_the_connection_frees_subscribers(world: World) -> None:
    """The client's socket goes away without completing its operation."""
    running, gateway = world.running, world.running.gateway
    world.emulator.faults.slow_bulk(5, times=1, shop=SHOP)
    await enable(running)
    async with websockets.connect(running.ws_url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {READ_TOKEN}"}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await ws.send(json.dumps({"id": "1", "type": "subscribe",
                                  "payload": {"query": PROGRESS, "variables": {"shop": SHOP}}}))
        first = json.loads(await ws.recv())
        assert first["type"] == "next" and first["payload"]["data"]["syncProgress"]["status"] == "RUNNING"
        assert gateway.sync.progress.subscriber_count(SHOP) == 1

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
            snapshots = await progress_of(live)
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
                f'mutation {{ enableShopifySync(input: {{shopDomain: "bad domain", accessToken: "{SHOP_TOKEN}",'
                " identifier: SKU}) { status } }")
        seen.append(str(bad.value))
        snapshots = await progress_of(live)
        seen.append(str(snapshots))
        await asyncio.sleep(0.3)
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
    sync = await wait_finished(running)
    seen.append(str(sync))
    seen.append(str(await running.query(NOTIFICATIONS)))
    seen.append(str(await running.query(ITEMS, {"catalog": "shopify_e2e-store", "first": 250})))
    seen.append(str(await running.query("{ shopifySyncs { shopDomain catalogName status } catalogs { name } }")))
    schema_text = str(await running.query("{ __schema { types { name fields { name } } } }"))
    assert "accessToken" not in schema_text  # no output type can return it
    seen.extend(str(r.message) for r in world.inbox.received)
    # Every log line of the gateway's side (not of the test's client, nor of the emulated Shopify).
    server_side = [r for r in secret_logs.records if not r.name.startswith(CLIENT_SIDE_LOGGERS)]
    assert any(r.name.startswith(("gateway", "bulk")) for r in server_side)
    seen.extend(r.getMessage() + str(r.exc_info or "") for r in server_side)
    assert len(seen) > 8
    for text in seen:
        assert SHOP_TOKEN not in text


async def test_two_gateways_on_one_mongodb(emulator: Emulator, mongodb_uri: str) -> None:
    """Scale-out on a real MongoDB-wire server: gateway B serves the catalog and the live progress of
    the sync that gateway A runs (B learns of it only through the database)."""
    database = f"test_gateway_{uuid.uuid4().hex[:12]}"
    try:
        await _two_gateways(emulator, MongoCatalogStore(mongodb_uri, database),
                            MongoCatalogStore(mongodb_uri, database))
    finally:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_uri)
        await client.drop_database(database)
        await client.close()


async def _two_gateways(emulator: Emulator, first: MongoCatalogStore, second: MongoCatalogStore) -> None:
    settings = Settings(admin_token=ADMIN_TOKEN, read_token=READ_TOKEN,
                        shopify_admin_api_url=emulator.admin_api_url_template)
    async with serve_gateway(first, settings=settings) as a, serve_gateway(second, settings=settings) as b:
        async with httpx.AsyncClient() as http:
            health = (await http.get(b.base_url + "/healthz")).json()
        assert health == {"status": "ok", "store": "mongodb", "persistent": True}
        emulator.faults.slow_bulk(0.8, times=1, shop=SHOP)
        await enable(a)
        async with b.ws(READ_TOKEN) as live:
            snapshots = await progress_of(live)
        assert snapshots[0]["status"] == "RUNNING" and snapshots[-1]["status"] == "COMPLETED"
        assert b.gateway.sync.progress.subscriber_count(SHOP) == 0
        sync = await wait_finished(b)
        assert sync["status"] == "SYNCED"
        items = await all_items(b, "shopify_e2e-store", page=50)
        assert len(items) == sync["lastRun"]["itemsWritten"] == snapshots[-1]["itemsWritten"]
        assert items[0]["price"] == emulator.shop(SHOP).variant(int(items[0]["shopifyVariantId"])).price
