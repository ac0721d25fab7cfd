"""Literal item fixtures and a settable clock for the catalog store tests."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from catalog_store.items import CatalogItem, document_size
from catalog_store.store import CatalogStore

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
SHOP = "demo.myshopify.com"
CATALOG = "shopify_demo"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


class Clock:
    """A settable UTC clock (stores read `store.clock()` for write times and lease expiry)."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def make_item(
    variant: str,
    *,
    id: str | None = None,
    product: str = "100",
    updated: float = 0,
    title: str = "Shirt",
    variant_title: str | None = "M",
    sku: str | None = None,
    status: str = "active",
    vendor: str | None = "Acme",
    product_type: str | None = "Shirt",
    price: str = "19.99",
    compare_at_price: str | None = None,
    quantity: int | None = 5,
    image: str | None = None,
    inventory_item: str | None = None,
) -> CatalogItem:
    return CatalogItem(
        id=id if id is not None else variant,
        store_name="Demo Store",
        shopify_product_id=product,
        shopify_variant_id=variant,
        product_title=title,
        variant_title=variant_title,
        status=status,
        product_image_url="https://cdn.example/p.png",
        variant_image_url=image,
        vendor=vendor,
        product_type=product_type,
        product_url="https://demo.myshopify.com/products/shirt",
        product_handle="shirt",
        published_scope="web",
        price=price,
        compare_at_price=compare_at_price,
        inventory_quantity=quantity,
        options=("Size",),
        option_values=("M",),
        sku=sku,
        updated_at=at(updated),
        inventory_item_id=inventory_item if inventory_item is not None else f"4{variant}",
    )


def size_of(item: CatalogItem, catalog: str = CATALOG) -> int:
    return document_size(item.to_document(catalog))


async def all_items(store: CatalogStore, catalog: str = CATALOG) -> list[CatalogItem]:
    items: list[CatalogItem] = []
    after = None
    while True:
        page = await store.list_items(catalog, first=250, after=after)
        items.extend(page.items)
        if not page.has_next_page:
            return items
        after = page.items[-1].id


async def assert_counters_exact(store: CatalogStore, catalog: str = CATALOG) -> None:
    """The catalog's counters equal what its items add up to."""
    items = await all_items(store, catalog)
    info = await store.get_catalog(catalog)
    assert info is not None
    assert (info.item_count, info.storage_bytes) == (len(items), sum(size_of(i, catalog) for i in items))


def plan_nodes(plan: Any) -> Iterator[dict[str, Any]]:
    """Every stage of an explain plan tree, whatever its nesting (rejected plans left out)."""
    if isinstance(plan, dict):
        if isinstance(plan.get("stage"), str):
            yield plan
        for key, value in plan.items():
            if key != "rejectedPlans":
                yield from plan_nodes(value)
    elif isinstance(plan, list):
        for value in plan:
            yield from plan_nodes(value)


def plan_stages(plan: Any) -> Iterator[str]:
    """Every `stage` name of an explain plan tree (rejected plans left out)."""
    return (node["stage"] for node in plan_nodes(plan))
