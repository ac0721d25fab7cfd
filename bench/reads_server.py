"""The server process of `bench.reads`: a catalog of N generated items in the memory store or on
MongoDB, served by the gateway (`/graphql`: the app `catalog-gateway serve` runs, with its
middleware and auth) on one port and by a raw Starlette app (`/raw/items`, `/raw/item`) that returns
the same page from the same store as JSON, without GraphQL, auth or middleware, on another: two
uvicorn servers in one process and event loop on 127.0.0.1.

`python -m bench.reads_server --store memory --items 100000 --port P --raw-port R --token T [--mongo-uri U]`
"""

from __future__ import annotations

import argparse
import asyncio
import random
from datetime import UTC, datetime
from decimal import Decimal

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from catalog_store.items import CATALOG_FIELDS, CatalogItem
from catalog_store.models import ItemFilter
from catalog_store.store import CatalogStore
from gateway.app import create_app
from gateway.settings import Settings
from gateway.wiring import Gateway

SHOP = "bench.myshopify.com"
CATALOG = "shopify_bench"
NOUNS = "mug shirt cap lamp desk chair towel candle poster bottle plate bowl sock scarf glove".split()
ADJECTIVES = "red blue green black white large small classic vintage modern organic cotton steel".split()
VENDORS = 50
FIRST_ID = 1_000_000
BATCH = 5000


def item_id(n: int) -> str:
    """The id of the n-th generated item (ids sort as their numbers: they have the same length)."""
    return str(FIRST_ID + n)


def generate(n: int) -> list[CatalogItem]:
    """`n` items, three variants per product: 15 product nouns (so `search: "mug"` matches 1 in 15),
    50 vendors, prices 1.00–200.00, a fifth of quantities 0 and a fifth null."""
    rng = random.Random(1)
    when = datetime(2026, 1, 1, tzinfo=UTC)
    items = []
    for i in range(n):
        product = i // 3
        items.append(CatalogItem(
            id=item_id(i), store_name="Bench", shopify_product_id=str(product), shopify_variant_id=item_id(i),
            product_title=f"{rng.choice(ADJECTIVES).title()} {rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} {product}",
            variant_title=rng.choice(["S", "M", "L", None]), status=rng.choice(["active"] * 8 + ["draft", "archived"]),
            product_image_url=f"https://cdn.example.com/p/{product}.jpg", variant_image_url=None,
            vendor=f"Vendor {rng.randrange(VENDORS)}", product_type=rng.choice(NOUNS).title(),
            product_url=f"https://bench.example.com/products/p-{product}", product_handle=f"p-{product}",
            published_scope="web", price=f"{rng.randrange(100, 20001) / 100:.2f}", compare_at_price=None,
            inventory_quantity=rng.choice([0, 1, 5, 20, None]), options=("Size",), option_values=("M",),
            sku=f"SKU-{i}", updated_at=when, inventory_item_id=None,
        ))
    return items


async def fill(store: CatalogStore, n: int) -> None:
    await store.ensure_catalog(CATALOG, SHOP, "Bench")
    info = await store.get_catalog(CATALOG)
    if info is not None and info.item_count == n:
        return
    items = generate(n)
    for start in range(0, n, BATCH):
        await store.write_items(CATALOG, items[start:start + BATCH])


def _item_json(item: CatalogItem) -> dict[str, object]:
    return {name: getattr(item, name) for name in CATALOG_FIELDS}


def raw_routes(store: CatalogStore) -> list[Route]:
    """The raw endpoint: the store's page (or item) as JSON, nothing else."""

    async def items(request: Request) -> Response:
        params = request.query_params
        item_filter = None
        if "vendor" in params or "search" in params:
            item_filter = ItemFilter(
                vendor=params.get("vendor"), search=params.get("search"),
                price_max=Decimal(params["priceMax"]) if "priceMax" in params else None,
                in_stock=True if params.get("inStock") == "true" else None,
            )
        page = await store.list_items(CATALOG, first=int(params.get("first", "50")), after=params.get("after"),
                                      filter=item_filter)
        body = {"items": [_item_json(i) for i in page.items], "hasNextPage": page.has_next_page,
                "totalCount": page.total_count}
        return Response(orjson.dumps(body), media_type="application/json")

    async def item(request: Request) -> Response:
        found = await store.get_item(CATALOG, request.query_params["id"])
        return Response(orjson.dumps(None if found is None else _item_json(found)), media_type="application/json")

    return [Route("/raw/items", items), Route("/raw/item", item)]


async def serve(args: argparse.Namespace) -> None:
    store: CatalogStore
    if args.store == "memory":
        from catalog_store.memory import MemoryCatalogStore

        store = MemoryCatalogStore()
    else:
        from catalog_store.mongo.store import MongoCatalogStore

        store = MongoCatalogStore(args.mongo_uri, database=args.database)
    settings = Settings(admin_token=args.token, read_token=None)
    gateway = Gateway(settings, store)
    await gateway.start()
    try:
        await fill(store, args.items)
        if args.store == "memory":  # the indexes are built on the first filtered read: not a request's cost
            await store.list_items(CATALOG, first=1, filter=ItemFilter(vendor="Vendor 0"))
        apps = ((create_app(gateway, manage_lifecycle=False), args.port), (Starlette(routes=raw_routes(store)), args.raw_port))
        servers = [uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                                 access_log=False, lifespan="off")) for app, port in apps]
        await asyncio.gather(*(server.serve() for server in servers))
    finally:
        await gateway.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.reads_server")
    parser.add_argument("--store", choices=("memory", "mongo"), default="memory")
    parser.add_argument("--items", type=int, required=True)
    parser.add_argument("--port", type=int, required=True, help="the gateway's port")
    parser.add_argument("--raw-port", type=int, required=True, help="the raw endpoint's port")
    parser.add_argument("--token", required=True)
    parser.add_argument("--mongo-uri")
    parser.add_argument("--database", default="bench_reads")
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
