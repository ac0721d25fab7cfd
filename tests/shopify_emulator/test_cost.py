"""The emulator's cost model for the documents the webhook path and reconciliation send: the sizes
our code plans with (bulk.shopify.documents) are what Shopify's rules charge."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import FragmentDefinitionNode, OperationDefinitionNode, parse

from bulk.shopify import documents
from bulk.shopify.schema import load_admin_schema
from shopify_emulator.cost import query_cost
from shopify_emulator.server import MAX_QUERY_COST


def cost(document: str, variables: dict[str, Any]) -> int:
    ast = parse(document)
    [operation] = [d for d in ast.definitions if isinstance(d, OperationDefinitionNode)]
    fragments = {d.name.value: d for d in ast.definitions if isinstance(d, FragmentDefinitionNode)}
    return query_cost(load_admin_schema(), operation, fragments, variables)


@pytest.mark.parametrize("ids", [1, 17, 250])
def test_nodes_cost_per_id_and_an_interface_costs_one_of_its_types(ids: int) -> None:
    assert cost(documents.VARIANT_INVENTORY, {"ids": ["gid://shopify/ProductVariant/1"] * ids}) == (
        documents.VARIANT_INVENTORY_COST * ids)
    both = "query($ids: [ID!]!) { nodes(ids: $ids) { ... on Product { id title } ... on ProductVariant { id product { id } } } }"
    assert cost(both, {"ids": ["a", "b"]}) == 2 * 2  # the dearer type (a variant and its product), per id


def test_a_cost_sized_variants_page_fits_the_query_limit_and_the_budget() -> None:
    for available in (10, 300, 994, 5_000, float("inf")):
        first = documents.variants_page_size(available)
        requested = cost(documents.PRODUCT_FOR_CATALOG, {"id": "gid://shopify/Product/1", "first": first})
        assert requested == documents.PRODUCT_READ_COST + 2 + first * documents.VARIANT_NODE_COST
        assert requested <= MAX_QUERY_COST
        assert requested <= max(available, documents.PRODUCT_READ_COST + 2
                                + documents.PRODUCT_VARIANTS_PAGE_SIZE * documents.VARIANT_NODE_COST)
    assert documents.variants_page_size(float("inf")) == 141  # the most one query may hold


def test_reconciliation_pages_cost_what_the_pass_plans_with() -> None:
    assert cost(documents.VARIANTS_UPDATED_SINCE, {"query": "", "first": 250}) == 2 + 250 * documents.VARIANT_CHANGE_COST
    assert cost(documents.PRODUCT_IDS, {"first": 250}) == 2 + 250


async def test_shopify_refunds_what_a_query_did_not_use(admin, shop) -> None:  # type: ignore[no-untyped-def]
    _, empty = await admin.post(documents.VARIANTS_UPDATED_SINCE,
                                {"query": "updated_at:>='2099-01-01T00:00:00Z'", "first": 250})
    cost = empty["extensions"]["cost"]
    assert empty["data"]["productVariants"]["nodes"] == []
    assert (cost["requestedQueryCost"], cost["actualQueryCost"]) == (752, 2)  # only the connection itself
    variant = next(shop.products()).variants[0]
    shop.set_inventory(variant.id, 7)
    _, one = await admin.post(documents.VARIANT_INVENTORY, {"ids": [variant.gid, "gid://shopify/ProductVariant/1"]})
    assert one["data"]["nodes"][0]["inventoryQuantity"] == 7 and one["data"]["nodes"][1] is None
    assert (one["extensions"]["cost"]["requestedQueryCost"], one["extensions"]["cost"]["actualQueryCost"]) == (2, 1)
    before = one["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"]
    _, again = await admin.post(documents.PRODUCT_IDS, {"first": 250})
    listed = len(again["data"]["products"]["nodes"])
    assert again["extensions"]["cost"]["actualQueryCost"] == 2 + listed < 252
    assert again["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] >= before - (2 + listed)


async def test_variants_updated_since_find_inventory_changes_products_updated_since_do_not(admin, shop) -> None:  # type: ignore[no-untyped-def]
    variant = next(shop.products()).variants[0]
    since = "updated_at:>='2026-01-01T00:00:00Z'"
    shop.set_inventory(variant.id, 3)
    products = await admin.data(documents.PRODUCTS_CHANGED_SINCE, {"query": since, "first": 250})
    assert products["products"]["nodes"] == []  # the product's updatedAt did not move
    variants = await admin.data(documents.VARIANTS_UPDATED_SINCE, {"query": since, "first": 250})
    [found] = variants["productVariants"]["nodes"]
    assert found["id"] == variant.gid and found["inventoryQuantity"] == 3
    assert found["inventoryItem"]["id"] == f"gid://shopify/InventoryItem/{variant.inventory_item_id}"
