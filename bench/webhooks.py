"""Sustained webhook load within Shopify's cost limit: `python -m bench.webhooks [--quick]`.

The Shopify emulator (Standard plan: a 2,000-point bucket refilled at 100 points/s) and the gateway
(uvicorn on 127.0.0.1; memory store, or MongoDB on a SecantusDB started here) run in this process, as
in `catalog-gateway demo`. After the initial full sync, store changes are made in the emulator at a
steady rate for a while (80 % price changes: products/update, no read; 20 % inventory changes:
inventory_levels/update, the variant's quantity read through the Admin API), each sending its signed
webhook. Measured per case:

- applied: changes in the catalog by the end of the case (the case waits up to 60 s after the last
  change); backlog: changes not yet in the catalog when the last change is made; catch-up: seconds
  from the last change until the last one is in the catalog;
- change → written: from the emulator's call to the store write that holds it (hooked in the store);
- change → visible: from the emulator's call until a GraphQL query to the gateway shows it, for every
  20th change (polled in aliased queries of 20 items, every 50 ms);
- answered: the slowest webhook answer (Shopify gives up after 5 s) and how many took longer;
- API points: what the gateway's Admin API calls cost (actualQueryCost), by priority, and THROTTLED answers.

Then, per catalog size, the cost of a reconciliation pass (points, seconds) with some missed changes
(price, inventory, deletes) and with none. `--quick`: memory store, 50 and 200/s for 10 s, 3k variants.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import random
import socket
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import uvicorn

from bulk.shopify.budget import Priority
from bulk.webhooks.processor import ProcessorSettings
from catalog_store.items import CatalogItem, Identifier
from catalog_store.memory import MemoryCatalogStore
from catalog_store.models import WriteResult
from catalog_store.mongo.store import MongoCatalogStore
from catalog_store.store import CatalogStore
from gateway.app import create_app
from gateway.settings import Settings
from gateway.wiring import Gateway, sync_settings_for
from shopify_emulator import Emulator

SHOP = "bench-hooks.myshopify.com"
CATALOG = "shopify_bench-hooks"
TOKEN = "shpat_bench_hooks"
SECRET = "whsec_bench_hooks"
ADMIN = "bench-admin-token-0123456789"
PRICE_BASE = 1000  # a price change n sets the price PRICE_BASE + n/100: its index reads back from the item
QUANTITY_BASE = 100_000
CATCH_UP_LIMIT = 60.0


@dataclass
class Tracker:
    """Pending changes by (variant, field), resolved by the store writes that hold them."""

    made: dict[int, float] = field(default_factory=dict)  # change index -> perf_counter when made
    kinds: dict[int, str] = field(default_factory=dict)  # change index -> price or inventory
    pending: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    written: dict[int, float] = field(default_factory=dict)  # change index -> seconds to the write
    last_write: float = 0.0

    def add(self, index: int, variant_id: str, kind: str) -> None:
        self.made[index] = time.perf_counter()
        self.kinds[index] = kind
        self.pending.setdefault((variant_id, kind), []).append(index)

    def saw(self, item: CatalogItem) -> None:
        now = time.perf_counter()
        for kind, index in (("price", _price_index(item.price)), ("inventory", _quantity_index(item.inventory_quantity))):
            waiting = self.pending.get((item.shopify_variant_id, kind))
            while waiting and index is not None and waiting[0] <= index:
                done = waiting.pop(0)
                self.written[done] = now - self.made[done]
                self.last_write = now

    @property
    def backlog(self) -> int:
        return len(self.made) - len(self.written)


def _price_index(price: str) -> int | None:
    value = round(float(price) * 100) - PRICE_BASE * 100
    return value if value >= 0 else None


def _quantity_index(quantity: int | None) -> int | None:
    return None if quantity is None or quantity < QUANTITY_BASE else quantity - QUANTITY_BASE


def tracked(store: CatalogStore, tracker: Tracker) -> CatalogStore:
    """`store` with its item writes reported to `tracker` (after they land)."""
    original = store.write_items

    async def write_items(catalog: str, items: Sequence[CatalogItem], **kwargs: Any) -> WriteResult:
        result = await original(catalog, items, **kwargs)
        for stored in await store.get_items_by_variant(catalog, [i.shopify_variant_id for i in items]):
            tracker.saw(stored)
        return result

    store.write_items = write_items  # type: ignore[method-assign]
    return store


@contextlib.asynccontextmanager
async def serving(store: CatalogStore, variants: int) -> AsyncIterator[tuple[Emulator, Gateway, str]]:
    emulator = Emulator(SECRET, bulk_duration=0.0)
    emulator.add_shop(SHOP, access_token=TOKEN, variants=variants, seed=3, name="Bench Hooks")
    await emulator.start()
    sock = socket.create_server(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/graphql"
    settings = Settings(port=sock.getsockname()[1], admin_token=ADMIN, shopify_admin_api_url=emulator.admin_api_url_template,
                        shopify_api_secrets=(SECRET,))
    gateway = Gateway(settings, store, sync_settings=sync_settings_for(settings, poll_interval=0.05),
                      webhook_settings=ProcessorSettings(reconcile_interval=None))
    server = uvicorn.Server(uvicorn.Config(create_app(gateway), log_level="warning"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        await gateway.sync.enable(SHOP, TOKEN, Identifier.SHOPIFY_VARIANT_ID)
        run_id = (await store.list_runs(SHOP, 1))[0].id
        await gateway.sync.wait_for_run(run_id)
        await emulator.drain_webhooks(60)
        await gateway.webhooks.join()
        yield emulator, gateway, url
    finally:
        server.should_exit = True
        await task
        sock.close()
        await emulator.close()


async def visible_poller(url: str, sample: dict[int, tuple[str, str, float]], visible: dict[int, float],
                         stop: asyncio.Event) -> None:
    """Polls the sampled changes through GraphQL until each shows (20 aliased items a query)."""
    headers = {"Authorization": f"Bearer {ADMIN}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        while not (stop.is_set() and not sample):
            batch = list(sample.items())[:20]
            if not batch:
                await asyncio.sleep(0.05)
                continue
            fields = " ".join(f'c{i}: item(id: "{variant}") {{ price inventoryQuantity }}'
                              for i, (variant, _, _) in batch)
            query = f'{{ catalog(name: "{CATALOG}") {{ {fields} }} }}'
            async with session.post(url, json={"query": query}) as response:
                body = await response.json()
            now = time.perf_counter()
            catalog = (body.get("data") or {}).get("catalog") or {}
            for index, (_, kind, made) in batch:
                item = catalog.get(f"c{index}")
                if item is None:
                    continue
                seen = _price_index(str(item["price"])) if kind == "price" else _quantity_index(item["inventoryQuantity"])
                if seen is not None and seen >= index:
                    visible[index] = now - made
                    del sample[index]
            await asyncio.sleep(0.05)  # the poller must not take the gateway's CPU: ±50 ms resolution


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] if ordered else float("nan")


async def load_case(store_kind: str, rate: int, seconds: float, variants: int, uri: str | None) -> dict[str, Any]:
    tracker = Tracker()
    database = f"bench_hooks_{rate}_{int(time.time())}"
    store: CatalogStore = MemoryCatalogStore() if store_kind == "memory" else MongoCatalogStore(uri or "", database)
    async with serving(tracked(store, tracker), variants) as (emulator, gateway, url):
        shop = emulator.shop(SHOP)
        variant_ids = [str(v) for v in shop.variant_ids()]
        rng = random.Random(rate)
        budget = gateway.budgets.for_shop(SHOP)
        spent_before = dict(budget.spent)
        deliveries_before = len(emulator.deliveries)
        sample: dict[int, tuple[str, str, float]] = {}
        visible: dict[int, float] = {}
        stop = asyncio.Event()
        poller = asyncio.create_task(visible_poller(url, sample, visible, stop))
        made_wall: dict[int, float] = {}
        total = int(rate * seconds)
        start = time.perf_counter()
        for index in range(total):
            delay = start + index / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            variant_id = rng.choice(variant_ids)
            kind = "inventory" if rng.random() < 0.2 else "price"
            tracker.add(index, variant_id, kind)
            made_wall[index] = time.time()
            if kind == "price":
                shop.set_price(variant_id, f"{PRICE_BASE + index // 100}.{index % 100:02d}")
            else:
                shop.set_inventory(variant_id, QUANTITY_BASE + index)
            if index % 20 == 0:
                sample[index] = (variant_id, kind, tracker.made[index])
        last = time.perf_counter()
        backlog = tracker.backlog
        while tracker.backlog and time.perf_counter() - last < CATCH_UP_LIMIT:
            await asyncio.sleep(0.02)
        catch_up = max(0.0, tracker.last_write - last) if not tracker.backlog else float("inf")
        stop.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(poller, 15)
        poller.cancel()
        answers = [d.attempts[0].at - made_wall.get(n, d.attempts[0].at)
                   for n, d in enumerate(emulator.deliveries[deliveries_before:]) if d.attempts]
        attempts = [a for d in emulator.deliveries[deliveries_before:] for a in d.attempts]
        written = list(tracker.written.values())
        spent = {p.name.lower(): budget.spent[p] - spent_before.get(p, 0.0) for p in Priority}
        result = {
            "store": store_kind, "rate": rate, "seconds": seconds, "changes": total, "applied": len(written),
            "backlog": backlog, "catch_up": catch_up, "sent_for": last - start,
            "written_p50": percentile(written, 0.5), "written_p99": percentile(written, 0.99),
            **{f"{kind}_p{p}": percentile([t for n, t in tracker.written.items() if tracker.kinds[n] == kind], p / 100)
               for kind in ("price", "inventory") for p in (50, 99)},
            "visible_p50": percentile(list(visible.values()), 0.5),
            "visible_p99": percentile(list(visible.values()), 0.99), "visible_n": len(visible),
            "answer_max": max(answers, default=float("nan")), "answers_over_5s": sum(a > 5 for a in answers),
            "non_2xx": sum(1 for a in attempts if a.status is None or not 200 <= a.status < 300),
            "points": spent, "throttled": budget.throttled, "stats": dict(gateway.webhooks.stats),
        }
    if isinstance(store, MongoCatalogStore):
        await _drop(uri or "", database)
    return result


async def _drop(uri: str, name: str) -> None:
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri)
    try:
        await client.drop_database(name)
    finally:
        await client.close()


async def reconcile_case(variants: int) -> dict[str, Any]:
    async with serving(MemoryCatalogStore(), variants) as (emulator, gateway, _):
        shop = emulator.shop(SHOP)
        emulator.faults.drop_webhooks(shop=SHOP)  # the changes below reach the catalog only by reconciling
        rng = random.Random(variants)
        variant_ids = list(shop.variant_ids())
        for n in range(60):
            shop.set_price(rng.choice(variant_ids), f"{7 + n}.00")
        for n in range(40):
            shop.set_inventory(rng.choice(variant_ids), 500 + n)
        products = [p.id for p in shop.products()]
        for product_id in rng.sample(products, 5):
            shop.delete_product(product_id)
        await emulator.drain_webhooks(60)
        started = time.perf_counter()
        missed = await gateway.webhooks.reconcile(SHOP)
        missed_time = time.perf_counter() - started
        started = time.perf_counter()
        quiet = await gateway.webhooks.reconcile(SHOP)
        quiet_time = time.perf_counter() - started
        return {"variants": variants, "products": len(products), "missed_cost": missed.cost, "missed_s": missed_time,
                "missed": (missed.outcomes.get("applied", 0), missed.inventory_applied, missed.deleted),
                "quiet_cost": quiet.cost, "quiet_s": quiet_time}


def report(loads: list[dict[str, Any]], passes: list[dict[str, Any]], variants: int) -> str:
    lines = [f"Sustained webhooks ({variants} variants, 80 % price / 20 % inventory, Standard bucket 2,000 points "
             "at 100/s):", "",
             "| store | rate/s | s | changes | applied | backlog at end | catch-up | change→written p50 / p99 "
             "(price; inventory) | change→visible (GraphQL) p50 / p99 | slowest answer | >5 s | non-2xx "
             "| API points (webhook / poll / reconcile) | throttled |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in loads:
        points = r["points"]
        lines.append(
            f"| {r['store']} | {r['rate']} | {r['seconds']:.0f} | {r['changes']} | {r['applied']} | {r['backlog']} "
            f"| {r['catch_up']:.2f} s | {r['written_p50'] * 1000:.0f} / {r['written_p99'] * 1000:.0f} ms "
            f"({r['price_p50'] * 1000:.0f} / {r['price_p99'] * 1000:.0f}; "
            f"{r['inventory_p50'] * 1000:.0f} / {r['inventory_p99'] * 1000:.0f}) "
            f"| {r['visible_p50'] * 1000:.0f} / {r['visible_p99'] * 1000:.0f} ms (n={r['visible_n']}) "
            f"| {r['answer_max'] * 1000:.0f} ms | {r['answers_over_5s']} | {r['non_2xx']} "
            f"| {points['webhook']:.0f} / {points['bulk_poll']:.0f} / {points['reconcile']:.0f} | {r['throttled']} |")
    if passes:
        lines += ["", "Reconciliation pass (memory store; 60 price + 40 inventory changes and 5 deletes missed):", "",
                  "| variants | products | pass with missed changes: points, s (applied products / inventory / deletes) "
                  "| pass with nothing missed: points, s |", "|---|---|---|---|"]
        for p in passes:
            applied, inventory, deleted = p["missed"]
            lines.append(f"| {p['variants']} | {p['products']} | {p['missed_cost']:.0f} points, {p['missed_s']:.1f} s "
                         f"({applied} / {inventory} / {deleted}) | {p['quiet_cost']:.0f} points, {p['quiet_s']:.1f} s |")
    return "\n".join(lines)


async def run(stores: list[str], rates: list[int], seconds: float, variants: int, reconcile: list[int]) -> None:
    logging.getLogger("shopify_emulator").setLevel(logging.WARNING)
    logging.getLogger("bulk").setLevel(logging.WARNING)
    loads: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        uri = None
        if "mongo" in stores:
            from tests.secantus import secantus_server

            uri = stack.enter_context(secantus_server())
        for store_kind in stores:
            for rate in rates:
                result = await load_case(store_kind, rate, seconds, variants, uri)
                print({k: v for k, v in result.items()}, flush=True)
                loads.append(result)
    passes = []
    for size in reconcile:
        result = await reconcile_case(size)
        print(result, flush=True)
        passes.append(result)
    print()
    print(report(loads, passes, variants))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="memory store, 50 and 200/s for 10 s, 3k variants")
    parser.add_argument("--stores", default="memory,mongo", help="comma-separated: memory, mongo")
    parser.add_argument("--rates", default="50,200,500", help="deliveries per second, comma-separated")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each load case")
    parser.add_argument("--variants", type=int, default=3000, help="variants in the emulated shop")
    parser.add_argument("--reconcile", default="3000,30000", help="catalog sizes of the reconciliation cases")
    args = parser.parse_args(argv)
    if args.quick:
        args.stores, args.rates, args.seconds, args.reconcile = "memory", "50,200", 10.0, "3000"
    asyncio.run(run([s for s in args.stores.split(",") if s], [int(r) for r in args.rates.split(",") if r],
                    args.seconds, args.variants, [int(v) for v in args.reconcile.split(",") if v]))


if __name__ == "__main__":
    main()
