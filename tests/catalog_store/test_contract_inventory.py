"""Contract tests (both stores): inventory versioned on its own, batched inventory lookups, and the
cheap listing of a catalog's product ids reconciliation compares with Shopify's."""

from __future__ import annotations

import msgspec
import pytest

from catalog_store.store import CatalogStore
from tests.catalog_store.helpers import CATALOG, SHOP, assert_counters_exact, at, make_item, size_of


@pytest.fixture
async def catalog(store: CatalogStore) -> str:
    await store.ensure_catalog(CATALOG, SHOP, "Demo Store")
    return CATALOG


async def test_a_product_snapshot_older_than_the_last_inventory_change_keeps_its_quantity(
        store: CatalogStore, catalog: str) -> None:
    item = make_item("1", updated=10, quantity=5)
    await store.write_items(catalog, [item])
    # An inventory change at t=20 (the product's updated_at does not move with it).
    changed = msgspec.structs.replace(item, inventory_quantity=0, inventory_at=at(20))
    assert (await store.write_items(catalog, [changed])).written == 1
    # A products/update of a price change made at t=15, delivered late: its quantity (5) is older.
    late = make_item("1", updated=15, quantity=5, price="9.99", inventory_item="41")
    late = msgspec.structs.replace(late, inventory_at=at(15))
    assert (await store.write_items(catalog, [late])).written == 1
    [stored] = await store.get_items_by_variant(catalog, ["1"])
    assert (stored.price, stored.inventory_quantity, stored.inventory_at) == ("9.99", 0, at(20))
    assert stored.updated_at == at(15)
    await assert_counters_exact(store, catalog)
    assert (await store.get_catalog(catalog)).storage_bytes == size_of(stored)  # type: ignore[union-attr]


async def test_a_newer_snapshot_or_inventory_change_replaces_the_quantity(store: CatalogStore, catalog: str) -> None:
    item = msgspec.structs.replace(make_item("1", updated=10, quantity=5), inventory_at=at(20))
    await store.write_items(catalog, [item])
    newer = msgspec.structs.replace(make_item("1", updated=30, quantity=7), inventory_at=at(30))
    await store.write_items(catalog, [newer])
    [stored] = await store.get_items_by_variant(catalog, ["1"])
    assert (stored.inventory_quantity, stored.inventory_at) == (7, at(30))
    # An inventory change older than the stored quantity changes nothing; a later one applies.
    await store.write_items(catalog, [msgspec.structs.replace(stored, inventory_quantity=1, inventory_at=at(25))])
    [stored] = await store.get_items_by_variant(catalog, ["1"])
    assert stored.inventory_quantity == 7
    await store.write_items(catalog, [msgspec.structs.replace(stored, inventory_quantity=2, inventory_at=at(31))])
    [stored] = await store.get_items_by_variant(catalog, ["1"])
    assert (stored.inventory_quantity, stored.inventory_at) == (2, at(31))
    await assert_counters_exact(store, catalog)


async def test_without_its_own_time_a_quantity_is_as_old_as_its_product(store: CatalogStore, catalog: str) -> None:
    await store.write_items(catalog, [msgspec.structs.replace(make_item("1", updated=10, quantity=5),
                                                              inventory_at=at(20))])
    await store.write_items(catalog, [make_item("1", updated=21, quantity=8)])  # e.g. a bulk line
    [stored] = await store.get_items_by_variant(catalog, ["1"])
    assert stored.inventory_quantity == 8 and stored.inventory_at is None


async def test_items_of_many_inventory_items_in_one_read(store: CatalogStore, catalog: str) -> None:
    await store.write_items(catalog, [make_item(str(v), inventory_item=f"9{v}") for v in range(1, 6)])
    found = await store.find_by_inventory_items(catalog, ["91", "93", "93", "95", "999"])
    assert [i.shopify_variant_id for i in found] == ["1", "3", "5"]
    assert await store.find_by_inventory_items("shopify_nope", ["91"]) == []


async def test_product_ids_of_a_catalog(store: CatalogStore, catalog: str) -> None:
    assert await store.list_product_ids(catalog) == []
    await store.write_items(catalog, [make_item("1", product="200"), make_item("2", product="100"),
                                      make_item("3", product="200"), make_item("4", product="300")])
    assert await store.list_product_ids(catalog) == ["100", "200", "300"]
    await store.delete_product(catalog, "200", at(60))
    assert await store.list_product_ids(catalog) == ["100", "300"]
