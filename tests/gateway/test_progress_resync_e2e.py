"""One `syncProgress` subscription follows every later run of its shop: subscribed after the first sync,
it sends that sync's final snapshot, then each re-sync from its start to its final snapshot, and stays
open. In one gateway on the in-memory store, and on MongoDB with the syncs run by another `serve`
process (the subscriber's gateway learns of them only through the database)."""

from __future__ import annotations

import asyncio
import uuid
from contextlib import aclosing
from pathlib import Path
from typing import Any

from gql import GraphQLRequest
from gql.transport.exceptions import TransportQueryError
from pymongo import AsyncMongoClient

from catalog_store.mongo.store import MongoCatalogStore
from catalog_store.token_cipher import MARKER
from gateway.settings import Settings
from shopify_emulator import Emulator
from tests.gateway.e2e import PROGRESS, SHOP, SHOP_TOKEN, TIMEOUT, VARIANTS, World, enable, is_final, wait_finished
from tests.gateway.harness import ADMIN_TOKEN, READ_TOKEN, serve_gateway
from tests.gateway.processes import gateway_processes
from tests.keys import TEST_CIPHER, TEST_SECRET_KEY

RESYNC = "mutation($s: String!) { resyncShopifyCatalog(shopDomain: $s) { id status } }"
PHASES = ["starting", "bulk_running", "downloading", "ingesting", "finalizing", "completed"]


async def resync(runner: Any) -> dict[str, Any]:
    """Start a re-sync; the ending run may still hold the shop for a moment (a retryable refusal)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT
    while True:
        try:
            started: dict[str, Any] = (await runner.query(RESYNC, {"s": SHOP}))["resyncShopifyCatalog"]
            return started
        except TransportQueryError as exc:
            if "SYNC_ALREADY_RUNNING" not in str(exc) or loop.time() > deadline:
                raise
            await asyncio.sleep(0.05)


async def follow_resyncs(runner: Any, live: Any, resyncs: int) -> list[dict[str, Any]]:
    """Subscribe (through `live`) once the shop's first sync has finished, start `resyncs` re-syncs
    one after the other (through `runner`), and return every snapshot the one subscription sent;
    it must still be open at the end."""
    await wait_finished(runner)
    arrived: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

    async def follow() -> None:
        async with aclosing(live.subscribe(GraphQLRequest(PROGRESS, variable_values={"shop": SHOP}))) as events:
            async for event in events:
                arrived.put_nowait(event["syncProgress"])
        arrived.put_nowait(None)

    async def next_snapshot() -> dict[str, Any]:
        snapshot = await asyncio.wait_for(arrived.get(), TIMEOUT)
        assert snapshot is not None, f"the subscription ended after {seen}"
        seen.append(snapshot)
        return snapshot

    seen: list[dict[str, Any]] = []
    follower = asyncio.create_task(follow())
    try:
        first = await next_snapshot()
        assert is_final(first), first  # the last run, long finished: sent at once
        for _ in range(resyncs):
            started = await resync(runner)
            while not ((snapshot := await next_snapshot())["id"] == started["id"] and is_final(snapshot)):
                pass
            await wait_finished(runner)
        await asyncio.sleep(0.5)
        assert arrived.empty() and not follower.done(), "the subscription stays open after the re-syncs"
    finally:
        follower.cancel()
        await asyncio.gather(follower, return_exceptions=True)
    return seen


def assert_each_run_in_turn(seen: list[dict[str, Any]], runs: int) -> None:
    order = [s["id"] for i, s in enumerate(seen) if i == 0 or seen[i - 1]["id"] != s["id"]]
    assert len(order) == runs == len(set(order)), f"each run once, one after the other: {order}"
    for run_id in order[1:]:
        snapshots = [s for s in seen if s["id"] == run_id]
        assert any(s["status"] == "RUNNING" for s in snapshots), snapshots  # followed from its start
        final = snapshots[-1]
        assert (final["status"], final["phase"], final["itemsWritten"]) == ("COMPLETED", "completed", VARIANTS)
        for column in ("itemsWritten", "bytesDownloaded"):
            values = [s[column] for s in snapshots]
            assert values == sorted(values), (run_id, column, values)  # never backwards within a run
        phases = [PHASES.index(s["phase"]) for s in snapshots]
        assert phases == sorted(phases), (run_id, phases)


async def test_one_subscription_shows_each_later_resync(world: World) -> None:
    running = world.running
    world.emulator.faults.slow_bulk(0.5, times=3, shop=SHOP)  # each run long enough to be seen running
    await enable(running)
    async with running.ws(READ_TOKEN) as live:
        seen = await follow_resyncs(running, live, resyncs=2)
    assert_each_run_in_turn(seen, runs=3)
    print(f"{len(seen)} snapshots: {[(s['id'][:8], s['phase'], s['itemsWritten']) for s in seen]}")


async def test_resyncs_run_by_another_process_on_mongodb(emulator: Emulator, mongodb_uri: str,
                                                         tmp_path: Path) -> None:
    database = f"test_resync_{uuid.uuid4().hex[:12]}"
    env = {"MONGODB_URI": mongodb_uri, "MONGODB_DATABASE": database, "GATEWAY_ADMIN_TOKEN": ADMIN_TOKEN,
           "GATEWAY_READ_TOKEN": READ_TOKEN, "GATEWAY_SECRET_KEY": TEST_SECRET_KEY,
           "SHOPIFY_ADMIN_API_URL": emulator.admin_api_url_template, "SHOPIFY_API_SECRET": "whsec_e2e"}
    settings = Settings(admin_token=ADMIN_TOKEN, read_token=READ_TOKEN,
                        shopify_admin_api_url=emulator.admin_api_url_template)
    emulator.faults.slow_bulk(0.5, times=3, shop=SHOP)
    try:
        async with gateway_processes(["runner"], env, tmp_path) as [runner]:
            try:
                await enable(runner)  # type: ignore[arg-type]  (the process runs every sync: it holds the lease)
                store = MongoCatalogStore(mongodb_uri, database, cipher=TEST_CIPHER)
                async with serve_gateway(store, settings=settings) as watcher, watcher.ws(READ_TOKEN) as live:
                    seen = await follow_resyncs(runner, live, resyncs=2)
                    assert watcher.gateway.sync.local_run(SHOP) is None  # none of them ran here
            finally:
                print(f"--- log of {runner.name} ---\n{runner.log_tail()}")
        assert_each_run_in_turn(seen, runs=3)
        print(f"{len(seen)} snapshots: {[(s['id'][:8], s['phase'], s['itemsWritten']) for s in seen]}")
    finally:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_uri)
        stored = await client[database]["syncs"].find_one({"_id": SHOP})
        await client.drop_database(database)
        await client.close()
    assert stored is not None and SHOP_TOKEN not in repr(stored)  # `serve` stored it encrypted
    assert stored["access_token"].startswith(MARKER)
