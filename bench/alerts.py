"""Alert detection benchmark: `python -m bench.alerts [--variants N] [--store memory|mongo]`.

What alerts add to the item write path. A catalog of N items is written once (inserts: nothing to
compare, so alerts cost nothing there), then written again as a re-sync would (every item replaced,
1 % of them with a 20 % price drop), in batches of 1000 as the full sync writes, and as single-item
writes like webhooks. Three cases, each on a fresh store:
- off:         no rules (the default);
- on, idle:    rules on, 100 subscriptions on items that do not change;
- on, firing:  rules on, 1000 subscriptions on the items that drop (1000 events for 100k items).
Mongo runs on $MONGODB_URI or a SecantusDB the test harness starts (tests/secantus.py).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime, timedelta

from catalog_store.alerts import AlertRules, AlertType
from catalog_store.items import CatalogItem
from catalog_store.memory import MemoryCatalogStore
from catalog_store.store import CatalogStore

CATALOG = "shopify_bench"
BATCH = 1000
T0 = datetime(2026, 1, 1, tzinfo=UTC)
RULES = AlertRules(back_in_stock=True, price_drop=True, price_drop_min_percent=10.0)


def item(n: int, *, price: str, updated: int) -> CatalogItem:
    return CatalogItem(
        id=str(n), store_name="Bench", shopify_product_id=str(n // 3), shopify_variant_id=str(n),
        product_title=f"Product {n // 3}", variant_title="M", status="active", product_image_url=None,
        variant_image_url=None, vendor="Acme", product_type="Shirt", product_url=None, product_handle=None,
        published_scope="web", price=price, compare_at_price=None, inventory_quantity=5, options=("Size",),
        option_values=("M",), sku=None, updated_at=T0 + timedelta(seconds=updated), inventory_item_id=f"9{n}",
    )


def dropping(n: int) -> bool:
    return n % 100 == 0


async def case(store: CatalogStore, variants: int, mode: str, single: int) -> dict[str, float]:
    await store.ensure_catalog(CATALOG, "bench.myshopify.com", "Bench")
    for start in range(0, variants, BATCH):
        await store.write_items(CATALOG, [item(n, price="100.00", updated=0) for n in range(start, min(variants, start + BATCH))],
                                run_id="r1")
    if mode != "off":
        await store.set_alert_rules(CATALOG, RULES)
        targets = [n for n in range(variants) if (dropping(n) if mode == "firing" else n % 100 == 1)]
        for n in targets[: 1000 if mode == "firing" else 100]:
            await store.subscribe_to_alerts(CATALOG, str(n), f"user-{n}", (AlertType.PRICE_DROP,))
    second = [item(n, price="80.00" if dropping(n) else "100.00", updated=1) for n in range(variants)]
    started = time.perf_counter()
    for start in range(0, variants, BATCH):
        await store.write_items(CATALOG, second[start:start + BATCH], run_id="r2")
    resync = time.perf_counter() - started
    singles = [item(n, price="70.00" if dropping(n) else "100.00", updated=2) for n in range(single)]
    started = time.perf_counter()
    for one in singles:
        await store.write_items(CATALOG, [one])
    per_write = (time.perf_counter() - started) / max(1, single)
    if mode == "firing":
        assert len(await store.list_alert_events(CATALOG, first=250)) == min(250, (variants + 99) // 100)
    return {"resync_s": resync, "single_write_us": per_write * 1e6}


async def run_case(uri: str | None, variants: int, mode: str, single: int, run: int) -> dict[str, float]:
    if uri is None:
        store: CatalogStore = MemoryCatalogStore()
    else:
        from catalog_store.mongo.store import MongoCatalogStore

        store = MongoCatalogStore(uri, f"bench_alerts_{mode}_{run}")
    await store.start()
    try:
        return await case(store, variants, mode, single)
    finally:
        if uri is not None:
            await store.database.client.drop_database(store.database.name)  # type: ignore[attr-defined]
        await store.close()


async def measure(uri: str | None, args: argparse.Namespace) -> None:
    modes = ("off", "idle", "firing")
    results: dict[str, list[dict[str, float]]] = {mode: [] for mode in modes}
    for run in range(args.repeat):  # interleaved, so load on the machine hits every mode alike
        for mode in modes:
            results[mode].append(await run_case(uri, args.variants, mode, args.single, run))
    for mode in modes:
        best = min(r["resync_s"] for r in results[mode])
        single = sorted(r["single_write_us"] for r in results[mode])[len(results[mode]) // 2]
        print(f"{args.store} {args.variants} items, alerts {mode:6}: re-sync {best:.3f} s (best of {args.repeat}), "
              f"single-item write {single:.1f} us (median)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--variants", type=int, default=100_000)
    parser.add_argument("--single", type=int, default=2000, help="single-item writes (webhook-like)")
    parser.add_argument("--store", choices=("memory", "mongo"), default="memory")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if args.store == "memory":
        asyncio.run(measure(None, args))
        return
    import os

    uri = os.environ.get("MONGODB_URI")
    if uri is not None:
        asyncio.run(measure(uri, args))
        return
    from tests.secantus import secantus_server

    with secantus_server() as started:
        asyncio.run(measure(started, args))


if __name__ == "__main__":
    main()
