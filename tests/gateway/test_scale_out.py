"""Scale-out, proven end to end (spec §9 "Scales out", issue #8 item 4): three `catalog-gateway serve`
processes on one MongoDB database and the Shopify emulator.

- exactly one process runs the shop's sync (the lease in MongoDB), whichever process it was enabled
  through; the others refuse a second run;
- all three stream that run's progress to their `syncProgress` subscribers;
- SIGKILL of the process running it mid-ingest hands the run over to another process once the lease
  expires; that one resumes the same run and the same bulk operation, and the catalog ends exact;
- webhooks delivered to any process, the same delivery to two of them included, are applied once.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, aclosing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
from aiohttp import web
from gql import GraphQLRequest
from gql.transport.exceptions import TransportQueryError
from pymongo import AsyncMongoClient

from catalog_store.items import document_size
from catalog_store.mongo.store import MongoCatalogStore
from shopify_emulator import Delivery, Emulator
from shopify_emulator.models import Product, Variant
from shopify_emulator.shop import EmulatedShop
from tests.gateway.e2e import ENABLE, PROGRESS, SYNC, is_final
from tests.gateway.harness import ADMIN_TOKEN, READ_TOKEN
from tests.gateway.processes import GatewayProcess, gateway_processes
from tests.keys import TEST_CIPHER, TEST_SECRET_KEY

SHOP = "scale-store.myshopify.com"
SHOP_TOKEN = "shpat_scale_out_token"
SECRET = "whsec_scale_out"
CATALOG = "shopify_scale-store"
VARIANTS = 1000  # a result file of ~520 KB, read in blocks of 256 KB (bulk.full_sync.jsonl.MIN_BLOCK)
# The first download lasts ~6.5 s: its second block comes ~3 s after the first, so even on a fast
# database part of the catalog is written for seconds before the ingest can end.
DOWNLOAD_BYTES_PER_SECOND = 80_000
KILL_AFTER_ITEMS = VARIANTS // 10  # in the catalog when the process running the sync is killed
BATCH_SIZE = 50  # items per write (GATEWAY_INGEST_BATCH_SIZE): the catalog fills during the download
LEASE_TTL = 3  # seconds (GATEWAY_LEASE_TTL_SECONDS); renewed every second, checked every 0.3 s
TAKEOVER_BOUND = LEASE_TTL * 1.1 + 2.0  # expiry ≤ TTL after the kill, seen within TTL/10, plus a loaded machine
DEADLINE = 45.0  # for any one condition; a healthy run meets each within seconds

T = TypeVar("T")

ITEMS_PAGE = """
query Items($catalog: String!, $after: String) {
  catalog(name: $catalog) {
    itemCount storageBytes
    items(first: 250, after: $after) {
      totalCount pageInfo { hasNextPage endCursor }
      edges { node { id shopifyProductId shopifyVariantId productTitle variantTitle status vendor productType
                     price compareAtPrice inventoryQuantity optionValues sku } }
    }
  }
}"""
CATALOG_COUNTERS = "query($c: String!) { catalog(name: $c) { itemCount storageBytes } }"
ITEM = "query($c: String!, $id: String!) { catalog(name: $c) { item(id: $id) { id price inventoryQuantity } } }"
PHASES = ["starting", "bulk_running", "ingesting", "finalizing", "completed"]  # a run's phases, in order
RESYNC = "mutation($s: String!) { resyncShopifyCatalog(shopDomain: $s) { id } }"


async def eventually(read: Callable[[], Awaitable[T]], check: Callable[[T], bool], what: str,
                     timeout: float = DEADLINE) -> T:
    """`read()` until `check` holds; fails after `timeout` seconds saying what was last seen."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await read()
        if check(value):
            return value
        if loop.time() > deadline:
            pytest.fail(f"{what}: still {value!r:.2000} after {timeout:.0f} s")
        await asyncio.sleep(0.05)


class Timeline:
    """Prints how long each step took (shown with the test's output: where the time goes)."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._started = self._loop.time()

    def mark(self, what: str) -> float:
        elapsed = self._loop.time() - self._started
        print(f"{elapsed:6.2f} s  {what}")
        return elapsed


@dataclass
class ProgressWatch:
    """One `syncProgress` subscriber of one gateway process: every snapshot it received up to the run's
    final one (where it stops: the subscription would follow later runs), and how it ended (None:
    it saw the final snapshot)."""

    gateway: GatewayProcess
    snapshots: list[dict[str, Any]] = field(default_factory=list)
    ended_by: BaseException | None = None
    task: asyncio.Task[None] | None = None

    async def _follow(self) -> None:
        try:
            async with self.gateway.ws(READ_TOKEN) as live:
                request = GraphQLRequest(PROGRESS, variable_values={"shop": SHOP})
                async with aclosing(live.subscribe(request)) as events:
                    async for event in events:
                        self.snapshots.append(event["syncProgress"])
                        if is_final(self.snapshots[-1]):
                            return
        except Exception as exc:  # the process was killed: its connection went away
            self.ended_by = exc

    def start(self) -> None:
        self.task = asyncio.create_task(self._follow(), name=f"progress:{self.gateway.name}")

    def saw(self, check: Callable[[dict[str, Any]], bool]) -> bool:
        return any(check(s) for s in self.snapshots)


@contextlib.asynccontextmanager
async def webhook_edge() -> AsyncIterator[str]:
    """Where the gateways tell Shopify to send webhooks (GATEWAY_PUBLIC_URL): it answers 200 and keeps
    nothing; the test routes each delivery (recorded by the emulator) to the processes it chooses."""
    async def accept(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"status": "accepted"})

    app = web.Application()
    app.router.add_post("/webhooks/shopify", accept)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = site._server.sockets[0].getsockname()[:2]  # type: ignore[union-attr]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


async def deliver(http: aiohttp.ClientSession, delivery: Delivery, gateway: GatewayProcess) -> str:
    """POST one emulator delivery, byte for byte with Shopify's signed headers, to `gateway`."""
    async with http.post(gateway.webhook_url, data=delivery.body, headers=delivery.headers) as response:
        assert response.status == 200, (gateway.name, response.status, await response.text())
        return str((await response.json())["status"])


def price_of(data: dict[str, Any]) -> str | None:
    """The price in an ITEM answer (None: no such item)."""
    item = data["catalog"]["item"]
    return None if item is None else str(item["price"])


def captured(emulator: Emulator, change: Callable[[], T], topic: str = "products/update") -> tuple[T, Delivery]:
    """Make a store change; returns its result and the signed delivery of `topic` the emulator made
    for it (to the webhook edge: one subscription per topic)."""
    before = len(emulator.deliveries)
    result = change()
    made = [d for d in emulator.deliveries[before:] if d.topic == topic]
    assert len(made) == 1, [d.topic for d in emulator.deliveries[before:]]
    return result, made[0]


def variants_of(shop: EmulatedShop) -> Iterator[tuple[Product, Variant]]:
    """Every variant of the emulated store now, with its product."""
    for product in shop.products():
        for variant in product.variants:
            yield product, variant


async def catalog_items(gateway: GatewayProcess) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The catalog's counters and every item, read page by page through `gateway`'s GraphQL API."""
    nodes: list[dict[str, Any]] = []
    after = None
    while True:
        catalog = (await gateway.query(ITEMS_PAGE, {"catalog": CATALOG, "after": after}))["catalog"]
        nodes.extend(edge["node"] for edge in catalog["items"]["edges"])
        if not catalog["items"]["pageInfo"]["hasNextPage"]:
            assert len(nodes) == catalog["items"]["totalCount"]
            return {"itemCount": catalog["itemCount"], "storageBytes": catalog["storageBytes"]}, nodes
        after = catalog["items"]["pageInfo"]["endCursor"]


async def stored_totals(store: MongoCatalogStore) -> tuple[int, int]:
    """(items, bytes) recounted from the item documents in MongoDB: what the counters must say."""
    count = size = 0
    after = None
    while True:
        page = await store.list_items(CATALOG, first=250, after=after)
        count += len(page.items)
        size += sum(document_size(item.to_document(CATALOG)) for item in page.items)
        if not page.has_next_page:
            return count, size
        after = page.items[-1].id


async def assert_catalog_exact(gateway: GatewayProcess, shop: EmulatedShop, store: MongoCatalogStore) -> int:
    """Every variant of the emulated store is in the catalog once, with the store's current data, and
    nothing else is; itemCount and storageBytes equal a recount of the stored items. Returns the count."""
    counters, items = await catalog_items(gateway)
    ids = [item["id"] for item in items]
    assert len(ids) == len(set(ids)), "an item is listed twice"
    by_id = {item["id"]: item for item in items}
    expected = list(variants_of(shop))
    missing = [str(v.id) for _, v in expected if str(v.id) not in by_id]
    extra = sorted(set(by_id) - {str(v.id) for _, v in expected})
    assert not missing and not extra, f"missing {missing[:10]} ({len(missing)}), extra {extra[:10]} ({len(extra)})"
    wrong = []
    for product, variant in expected:
        item = by_id[str(variant.id)]
        want = {"shopifyProductId": str(product.id), "shopifyVariantId": str(variant.id),
                "productTitle": product.title, "variantTitle": variant.title, "status": product.status.lower(),
                "vendor": product.vendor, "productType": product.product_type, "price": variant.price,
                "compareAtPrice": variant.compare_at_price, "inventoryQuantity": variant.inventory_quantity,
                "optionValues": list(variant.option_values), "sku": variant.sku or None}
        got = {key: item[key] for key in want}
        if got != want:
            wrong.append((variant.id, {k: (got[k], want[k]) for k in want if got[k] != want[k]}))
    assert not wrong, f"{len(wrong)} items differ from the store (got, want): {wrong[:5]}"
    count, size = await stored_totals(store)
    assert counters == {"itemCount": len(expected), "storageBytes": size}, (counters, count, size)
    assert count == len(expected)
    return len(expected)


@pytest.fixture
async def database(mongodb_uri: str) -> AsyncIterator[str]:
    """A fresh database name for this test, dropped afterwards."""
    name = f"test_scale_{uuid.uuid4().hex[:12]}"
    yield name
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_uri)
    try:
        await client.drop_database(name)
    finally:
        await client.close()


async def test_three_gateways_share_one_sync_survive_a_kill_and_apply_webhooks_once(
        mongodb_uri: str, database: str, tmp_path: Path) -> None:
    timeline = Timeline()
    emulator = Emulator(api_secret=SECRET, bulk_duration=0.3, webhook_retry_delays=(0.05,))
    shop = emulator.add_shop(SHOP, access_token=SHOP_TOKEN, variants=VARIANTS, seed=5, name="Scale Store")
    await emulator.start()
    store = MongoCatalogStore(mongodb_uri, database, cipher=TEST_CIPHER)  # the test's own reader of the database
    await store.start()
    watches: list[ProgressWatch] = []
    try:
        async with webhook_edge() as edge_url, aiohttp.ClientSession() as http:
            env = {"MONGODB_URI": mongodb_uri, "MONGODB_DATABASE": database, "GATEWAY_ADMIN_TOKEN": ADMIN_TOKEN,
                   "GATEWAY_READ_TOKEN": READ_TOKEN, "SHOPIFY_API_SECRET": SECRET,
                   "SHOPIFY_ADMIN_API_URL": emulator.admin_api_url_template, "GATEWAY_PUBLIC_URL": edge_url,
                   "GATEWAY_LEASE_TTL_SECONDS": str(LEASE_TTL), "GATEWAY_INGEST_BATCH_SIZE": str(BATCH_SIZE),
                   "GATEWAY_SECRET_KEY": TEST_SECRET_KEY}
            async with gateway_processes(["a", "b", "c"], env, tmp_path) as gateways:
                try:
                    timeline.mark("three gateways healthy")
                    await _scenario(gateways, emulator, shop, store, http, watches, timeline,
                                    lambda name: gateway_processes([name], env, tmp_path))
                finally:
                    for g in gateways:
                        print(f"--- log of gateway {g.name} (pid {g.pid}) ---\n{g.log_tail()}")
                    for watch in watches:
                        if watch.task is not None:
                            watch.task.cancel()
                    await asyncio.gather(*(w.task for w in watches if w.task), return_exceptions=True)
    finally:
        await store.close()
        await emulator.close()


StartGateway = Callable[[str], AbstractAsyncContextManager[list[GatewayProcess]]]


async def _scenario(gateways: list[GatewayProcess], emulator: Emulator, shop: EmulatedShop,
                    store: MongoCatalogStore, http: aiohttp.ClientSession, watches: list[ProgressWatch],
                    timeline: Timeline, another: StartGateway) -> None:
    """The steps of the test above; `another(name)` starts one more gateway on the same database."""
    first, owner, third = gateways  # enabled through `owner` ("b"): neither the first nor the last started
    emulator.faults.slow_download(DOWNLOAD_BYTES_PER_SECOND, times=1, shop=SHOP)

    # 1. Enable through one process: it alone takes the lease and runs the sync.
    timeline.mark(f"enabling through gateway {owner.name}")
    enabled = (await owner.query(ENABLE, {"input": {"shopDomain": SHOP, "accessToken": SHOP_TOKEN,
                                                    "identifier": "SHOPIFY_VARIANT_ID"}}))["enableShopifySync"]
    assert enabled["status"] == "IN_PROGRESS" and enabled["catalogName"] == CATALOG
    assert owner.owns(await store.lease_owner(SHOP))
    watches.extend(ProgressWatch(g) for g in gateways)
    for watch in watches:
        watch.start()

    # Mid-ingest: every subscriber has seen the run ingesting, part of the items are in MongoDB.
    def ingesting(s: dict[str, Any]) -> bool:
        return s["status"] == "RUNNING" and s["phase"] == "ingesting" and s["itemsWritten"] > 0

    await eventually(lambda: first.query(CATALOG_COUNTERS, {"c": CATALOG}),
                     lambda data: data["catalog"]["itemCount"] >= KILL_AFTER_ITEMS, "items written before the kill")
    timeline.mark(f"{KILL_AFTER_ITEMS}+ items in the catalog")

    async def seen_ingesting() -> dict[str, list[tuple[str, int]]]:
        return {w.gateway.name: [(x["phase"], x["itemsWritten"]) for x in w.snapshots] for w in watches}

    await eventually(seen_ingesting, lambda seen: all(w.saw(ingesting) for w in watches),
                     "every process's subscriber sees the ingest")
    timeline.mark("every subscriber saw the ingest")
    sync = (await third.query(SYNC, {"shop": SHOP}))["shopifySync"]
    run_id = sync["lastRun"]["id"]
    run = await store.get_run(run_id)
    assert run is not None and run.bulk_operation_id is not None
    operation_id = run.bulk_operation_id
    assert owner.owns(run.owner) and owner.owns(await store.lease_owner(SHOP))
    assert len(shop.operations) == 1

    # The other processes refuse a second run and start nothing; enabling again through them works.
    with pytest.raises(TransportQueryError) as refused:
        await third.query(RESYNC, {"s": SHOP})
    assert refused.value.errors is not None
    assert refused.value.errors[0]["extensions"]["code"] == "SYNC_ALREADY_RUNNING"
    again = (await first.query(ENABLE, {"input": {"shopDomain": SHOP, "accessToken": SHOP_TOKEN,
                                                  "identifier": "SHOPIFY_VARIANT_ID"}}))["enableShopifySync"]
    assert again["status"] == "IN_PROGRESS"
    assert len(shop.operations) == 1 and owner.owns(await store.lease_owner(SHOP))

    # 2. kill -9 the process running the sync, in the middle of its ingest.
    owner.kill()
    killed_at = timeline.mark(f"gateway {owner.name} (pid {owner.pid}) killed")
    survivors = [first, third]
    at_kill = (await first.query(CATALOG_COUNTERS, {"c": CATALOG}))["catalog"]["itemCount"]
    assert 0 < at_kill < VARIANTS, at_kill

    # While the run has no live owner, Shopify changes land through the survivors' webhooks (the same
    # delivery to both for one of them); the resumed ingest's older snapshot must not undo them.
    changed = [v for _, v in variants_of(shop)][:: VARIANTS // 4][:3]
    orphan_deliveries = [captured(emulator, lambda v=v: shop.set_price(v.id, "1.23"))[1] for v in changed]
    statuses = await asyncio.gather(deliver(http, orphan_deliveries[0], first),
                                    deliver(http, orphan_deliveries[0], third),
                                    deliver(http, orphan_deliveries[1], first),
                                    deliver(http, orphan_deliveries[2], third))
    # Both answer 200; the second of the pair finds the delivery in the shared inbox already.
    assert sorted(statuses[:2]) == ["accepted", "duplicate"] and statuses[2:] == ["accepted"] * 2
    for v in changed:
        await eventually(lambda v=v: third.query(ITEM, {"c": CATALOG, "id": str(v.id)}),
                         lambda data: price_of(data) == "1.23", f"webhook price of {v.id}")

    # 3. Another process takes the lease over and resumes the same run and bulk operation.
    new_owner_id = await eventually(lambda: store.lease_owner(SHOP),
                                    lambda o: any(g.owns(o) for g in survivors), "the lease taken over")
    takeover = timeline.mark(f"lease taken over by {new_owner_id}") - killed_at
    print(f"takeover {takeover:.2f} s after the kill; {at_kill} of {VARIANTS} items were in the catalog at the kill; "
          f"bulk operation {operation_id}, run {run_id}")
    new_owner = next(g for g in survivors if g.owns(new_owner_id))
    assert takeover <= TAKEOVER_BOUND, f"takeover after {takeover:.1f} s"
    owners_seen = {new_owner_id}

    async def sync_and_owner() -> dict[str, Any]:
        owners_seen.add(await store.lease_owner(SHOP))
        return (await first.query(SYNC, {"shop": SHOP}))["shopifySync"]

    sync = await eventually(sync_and_owner, lambda d: d["status"] != "IN_PROGRESS", "the resumed run finishing")
    assert owners_seen - {None} == {new_owner_id}, f"the run changed hands again: {owners_seen}"
    timeline.mark("resumed run completed")
    assert sync["status"] == "SYNCED", sync
    assert sync["lastRun"]["id"] == run_id and [r["id"] for r in sync["runs"]] == [run_id]
    assert sync["lastRun"]["status"] == "COMPLETED"
    # The changed products' items hold newer data than the resumed run's snapshot: refused as stale,
    # so counted as skipped; written and skipped together are every variant of the file.
    changed_ids = {v.id for v in changed}
    newer = sum(len(p.variants) for p in shop.products() if any(v.id in changed_ids for v in p.variants))
    skipped = {s["reason"]: s["count"] for s in sync["lastRun"]["skipped"]}
    assert (sync["lastRun"]["itemsWritten"], sync["lastRun"]["itemsSkipped"], skipped) == \
        (VARIANTS - newer, newer, {"stale": newer})
    resumed = await store.get_run(run_id)
    assert resumed is not None and resumed.bulk_operation_id == operation_id and new_owner.owns(resumed.owner)
    assert [op.gid for op in shop.operations] == [operation_id], "no second bulk operation was started"

    # Every subscriber streamed the run; the survivors' streams end with the completed run.
    for watch in watches:
        assert {s["id"] for s in watch.snapshots} == {run_id}, watch.gateway.name
        assert watch.saw(ingesting), watch.gateway.name
    for watch in watches:
        if watch.gateway is owner:
            assert watch.ended_by is not None, "the killed process's subscription cannot go on"
            continue
        assert watch.task is not None
        await asyncio.wait_for(watch.task, DEADLINE)
        assert watch.ended_by is None, (watch.gateway.name, watch.ended_by)
        final = watch.snapshots[-1]
        assert (final["status"], final["phase"], final["itemsWritten"]) == ("COMPLETED", "completed", VARIANTS - newer)

    for watch in watches:  # on every process, progress never went back, across the takeover too
        seen = [(PHASES.index(x["phase"]), x["itemsWritten"], x["bytesDownloaded"]) for x in watch.snapshots]
        print(f"syncProgress on {watch.gateway.name}: {len(seen)} snapshots (phase, items, bytes): {seen}")
        for column in range(3):
            assert [row[column] for row in seen] == sorted(row[column] for row in seen), (watch.gateway.name, seen)

    # 4. The catalog is exact: every variant once, with the store's data (webhook prices included).
    assert await assert_catalog_exact(first, shop, store) == VARIANTS
    timeline.mark("catalog exact after the takeover")

    # Webhooks to any process, each applied once: a new product delivered to both survivors at once…
    lamp, created = captured(emulator, lambda: shop.add_product("Scale-out Lamp", variants=3),
                             topic="products/create")
    assert sorted(await asyncio.gather(deliver(http, created, first), deliver(http, created, third))) == [
        "accepted", "duplicate"]
    for variant in lamp.variants:
        await eventually(lambda v=variant: first.query(ITEM, {"c": CATALOG, "id": str(v.id)}),
                         lambda data: data["catalog"]["item"] is not None, "the created product's items")
    # …a price change, then a newer one: the newer lands first, the older is redelivered to both and
    # never overwrites it…
    target = changed[0]
    _, older = captured(emulator, lambda: shop.set_price(target.id, "2.00"))
    _, newer = captured(emulator, lambda: shop.set_price(target.id, "3.00"))
    assert await deliver(http, newer, third) == "accepted"
    await eventually(lambda: first.query(ITEM, {"c": CATALOG, "id": str(target.id)}),
                     lambda data: price_of(data) == "3.00", "the newer price")
    redelivered = await asyncio.gather(deliver(http, older, first), deliver(http, older, third),
                                       deliver(http, newer, first))
    assert sorted(redelivered[:2]) == ["accepted", "duplicate"] and redelivered[2] == "duplicate"
    # …a variant removed from a product, delivered to both at once…
    untouched = [p for p in shop.products() if p.id not in {v.product.id for v in changed} | {lamp.id}]
    product = next(p for p in untouched if len(p.variants) >= 3)
    removed = product.variants[-1]
    _, trimmed = captured(emulator, lambda: shop.delete_variant(removed.id))
    assert sorted(await asyncio.gather(deliver(http, trimmed, third), deliver(http, trimmed, first))) == [
        "accepted", "duplicate"]
    await eventually(lambda: third.query(ITEM, {"c": CATALOG, "id": str(removed.id)}),
                     lambda data: data["catalog"]["item"] is None, "the removed variant leaving")
    # …and a deleted product, delivered to one process and redelivered to the other.
    gone = untouched[-1]
    assert gone.id != product.id
    _, deleted = captured(emulator, lambda: shop.delete_product(gone.id), topic="products/delete")
    assert await deliver(http, deleted, first) == "accepted"
    assert await deliver(http, deleted, third) == "duplicate"
    await eventually(lambda: third.query(ITEM, {"c": CATALOG, "id": str(gone.variants[0].id)}),
                     lambda data: data["catalog"]["item"] is None, "the deleted product leaving")

    timeline.mark("webhooks delivered")
    # Stopped, the survivors finish what they were applying and release their leases and claims (what
    # they did not apply stays in the inbox); a process started afterwards applies the rest and serves
    # the final catalog: exact, no redelivery re-applied, nothing counted twice.
    await asyncio.gather(*(g.stop() for g in survivors))
    for g in survivors:
        assert "Application shutdown complete." in g.log_tail(), g.name
    assert await store.lease_owner(SHOP) is None
    timeline.mark("survivors stopped")
    async with another("d") as (fresh,):
        gateways.append(fresh)
        timeline.mark("a fresh gateway healthy")
        assert (await fresh.query(ITEM, {"c": CATALOG, "id": str(target.id)}))["catalog"]["item"]["price"] == "3.00"
        assert await assert_catalog_exact(fresh, shop, store) == VARIANTS + 3 - 1 - len(gone.variants)
        timeline.mark("final catalog exact")
