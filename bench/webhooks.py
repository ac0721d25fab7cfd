"""Webhook apply latency: `python -m bench.webhooks [--changes 100] [--burst 1000]`.

The Shopify emulator and the gateway (uvicorn, in-memory store) run in this process on 127.0.0.1,
as in `catalog-gateway demo`. After the initial full sync, each change is made in the emulator one at
a time, and its latency measured from the emulator's call (which queues the signed delivery) to the
store write that changes the item (hooked in the store: no polling):

- price: `set_price` → products/update → items mapped from the payload and written;
- inventory: `set_inventory` → inventory_levels/update (the product read through the Admin API) and
  products/update, whichever applies first;
- burst: `--burst` price changes made at once, time until the last one is in the catalog.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import socket
import statistics
import time
from collections.abc import Sequence

import uvicorn

from catalog_store.items import CatalogItem, Identifier
from catalog_store.memory import MemoryCatalogStore
from catalog_store.models import WriteResult
from gateway.app import create_app
from gateway.settings import Settings
from gateway.wiring import Gateway, sync_settings_for
from shopify_emulator import Emulator

SHOP = "bench-hooks.myshopify.com"
TOKEN = "shpat_bench_hooks"
SECRET = "whsec_bench_hooks"


class TimedStore(MemoryCatalogStore):
    """Records when a watched variant's item is written with the watched value."""

    def __init__(self) -> None:
        super().__init__()
        self.watch: dict[str, tuple[str, object, asyncio.Future[float]]] = {}

    async def write_items(self, catalog: str, items: Sequence[CatalogItem], **kwargs: object) -> WriteResult:
        result = await super().write_items(catalog, items, **kwargs)  # type: ignore[arg-type]
        now = time.perf_counter()
        for item in items:
            watched = self.watch.get(item.shopify_variant_id)
            if watched is not None and getattr(item, watched[0]) == watched[1] and not watched[2].done():
                stored = await super().get_items_by_variant(catalog, [item.shopify_variant_id])
                if stored and getattr(stored[0], watched[0]) == watched[1]:
                    watched[2].set_result(now)
        return result

    def expect(self, variant_id: int, field: str, value: object) -> asyncio.Future[float]:
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.watch[str(variant_id)] = (field, value, future)
        return future


def _summary(name: str, latencies: list[float]) -> str:
    ms = sorted(x * 1000 for x in latencies)
    p90 = ms[int(len(ms) * 0.9) - 1] if len(ms) >= 10 else ms[-1]
    return (f"{name:<10} n={len(ms):<5} median {statistics.median(ms):7.2f} ms   p90 {p90:7.2f} ms   "
            f"max {ms[-1]:7.2f} ms")


async def run(changes: int, burst: int, variants: int) -> None:
    logging.getLogger("shopify_emulator").setLevel(logging.WARNING)
    emulator = Emulator(SECRET, bulk_duration=0.0)
    shop = emulator.add_shop(SHOP, access_token=TOKEN, variants=variants, seed=3, name="Bench Hooks")
    emulator.faults.small_bucket(1_000_000.0, 100_000.0, shop=SHOP)  # measure the gateway, not Shopify's pacing
    await emulator.start()
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    settings = Settings(port=port, admin_token="bench-admin-token-0123456789",
                        shopify_admin_api_url=emulator.admin_api_url_template, shopify_api_secrets=(SECRET,))
    store = TimedStore()
    gateway = Gateway(settings, store, sync_settings=sync_settings_for(settings, poll_interval=0.05))
    server = uvicorn.Server(uvicorn.Config(create_app(gateway), log_level="warning"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        await gateway.sync.enable(SHOP, TOKEN, Identifier.SHOPIFY_VARIANT_ID)
        run_id = (await store.list_runs(SHOP, 1))[0].id
        await gateway.sync.wait_for_run(run_id)
        await emulator.drain_webhooks()
        variant_ids = list(shop.variant_ids())
        rng = random.Random(1)

        price: list[float] = []
        for n in range(changes):
            variant_id = rng.choice(variant_ids)
            value = f"{rng.randint(1, 999)}.{n % 100:02d}"
            done = store.expect(variant_id, "price", value)
            start = time.perf_counter()
            shop.set_price(variant_id, value)
            price.append(await asyncio.wait_for(done, 10) - start)
            await emulator.drain_webhooks()
            await gateway.webhooks.join()

        inventory: list[float] = []
        for n in range(changes):
            variant_id = rng.choice(variant_ids)
            quantity = 1000 + n
            done = store.expect(variant_id, "inventory_quantity", quantity)
            start = time.perf_counter()
            shop.set_inventory(variant_id, quantity)
            inventory.append(await asyncio.wait_for(done, 10) - start)
            await emulator.drain_webhooks()
            await gateway.webhooks.join()

        targets = rng.sample(variant_ids, min(burst, len(variant_ids)))
        futures = [store.expect(v, "price", "0.07") for v in targets]
        start = time.perf_counter()
        for variant_id in targets:
            shop.set_price(variant_id, "0.07")
        ends = await asyncio.wait_for(asyncio.gather(*futures), 120)
        burst_time = max(ends) - start

        print(f"webhook apply latency (emulator call → item written; memory store; {variants} variants; "
              f"{gateway.webhooks.settings.workers} workers)")
        print(_summary("price", price))
        print(_summary("inventory", inventory))
        print(f"burst      {len(targets)} price changes at once: all in the catalog after {burst_time:.2f} s "
              f"({len(targets) / burst_time:,.0f} changes/s)")
        print(f"processor  {dict(gateway.webhooks.stats)}")
    finally:
        server.should_exit = True
        await serving
        sock.close()
        await emulator.close()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--changes", type=int, default=100, help="sequential changes per kind")
    parser.add_argument("--burst", type=int, default=1000, help="price changes made at once")
    parser.add_argument("--variants", type=int, default=2000, help="variants in the emulated shop")
    args = parser.parse_args(argv)
    asyncio.run(run(args.changes, args.burst, args.variants))


if __name__ == "__main__":
    main()
