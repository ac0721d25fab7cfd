"""Per-request DataLoaders: a list of syncs or catalogs costs one store read per row, not one per field."""

from __future__ import annotations

import dataclasses
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from catalog_store.items import Identifier, catalog_name
from catalog_store.memory import MemoryCatalogStore
from catalog_store.models import CatalogInfo, SyncConfig, SyncRun
from gateway.graphql.auth import Role
from gateway.graphql.context import Context, Loaders, Services
from gateway.graphql.schema import schema

SHOPS = [f"shop-{i}.myshopify.com" for i in range(5)]


class CountingStore(MemoryCatalogStore):
    """The in-memory store, counting the reads the loaders batch."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter[str] = Counter()

    async def list_runs(self, shop_domain: str, last: int = 10) -> list[SyncRun]:
        self.calls["list_runs"] += 1
        return await super().list_runs(shop_domain, last)

    async def get_catalog(self, name: str) -> CatalogInfo | None:
        self.calls["get_catalog"] += 1
        return await super().get_catalog(name)


async def populated() -> CountingStore:
    store = CountingStore()
    for i, shop in enumerate(SHOPS):
        await store.save_sync(SyncConfig(shop_domain=shop, catalog_name=catalog_name(shop),
                                         identifier=Identifier.SKU, access_token=f"shpat_{i}"))
        await store.ensure_catalog(catalog_name(shop), shop, f"Store {i}")
        for n in range(3):
            await store.save_run(SyncRun(id=f"{i}-{n}", shop_domain=shop))
    store.calls.clear()
    return store


async def run(store: CountingStore, query: str) -> dict[str, Any]:
    context = Context(Services(store=store, sync=None), Role.READ, Loaders(store))  # type: ignore[arg-type]
    result = await schema.execute(query, context_value=context)
    assert result.errors is None, result.errors
    assert result.data is not None
    return result.data


async def test_last_run_and_runs_share_one_read_per_shop() -> None:
    store = await populated()
    data = await run(store, "{ shopifySyncs { shopDomain lastRun { id } runs(last: 2) { id } "
                            "again: runs { id } catalog { itemCount storageBytes } } }")
    assert len(data["shopifySyncs"]) == len(SHOPS)
    assert all(len(s["runs"]) == 2 and len(s["again"]) == 3 for s in data["shopifySyncs"])
    assert store.calls["list_runs"] == len(SHOPS)
    assert store.calls["get_catalog"] == len(SHOPS)


async def test_catalog_fields_share_one_read_per_catalog() -> None:
    store = await populated()
    data = await run(store, "{ catalogs { name itemCount storageBytes } one: catalog(name: \"shopify_shop-0\") "
                            "{ itemCount storageBytes } }")
    assert len(data["catalogs"]) == len(SHOPS)
    assert store.calls["get_catalog"] == len(SHOPS)


async def test_sizes_beyond_32_bits_are_capped_instead_of_failing_the_response() -> None:
    store = await populated()
    huge = 5 * 2**30  # a 5 GiB bulk result
    await store.save_run(SyncRun(id="big", shop_domain=SHOPS[0], object_count=3_000_000_000, bytes_downloaded=huge,
                                 file_size=huge, started_at=datetime(2030, 1, 1, tzinfo=UTC)))
    original = store.get_catalog

    async def roomy(name: str) -> CatalogInfo | None:
        info = await original(name)
        return None if info is None else dataclasses.replace(info, storage_bytes=huge)

    store.get_catalog = roomy  # type: ignore[method-assign]
    data = await run(store, "{ shopifySyncs { lastRun { id objectCount bytesDownloaded fileSize } "
                            "catalog { storageBytes } } }")
    first = data["shopifySyncs"][0]
    assert first["lastRun"] == {"id": "big", "objectCount": 2**31 - 1, "bytesDownloaded": 2**31 - 1,
                                "fileSize": 2**31 - 1}
    assert first["catalog"]["storageBytes"] == 2**31 - 1
