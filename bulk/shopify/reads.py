"""Admin API reads the webhook path and reconciliation make: a product with all its variant pages
read consistently (every page at the same `updatedAt`), or found through an inventory item. They
need only `client.execute`, so they take any client."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bulk.errors import ShopifyServerError
from bulk.mapping.payloads import ProductSnapshot, product_from_graphql
from bulk.mapping.variants import INVENTORY_ITEM_PREFIX, PRODUCT_PREFIX, gid_number
from bulk.shopify import documents
from bulk.shopify.client import ShopifyClient

MAX_CONSISTENT_READS = 3  # a product that keeps changing while its variant pages are read

def connection_page(value: Any, what: str) -> Mapping[str, Any]:
    """A connection's page (`nodes` and `pageInfo`) as Shopify must answer it; ShopifyServerError otherwise."""
    if (not isinstance(value, Mapping) or not isinstance(value.get("nodes"), list)
            or not isinstance(value.get("pageInfo"), Mapping)):
        raise ShopifyServerError(f"Shopify's answer has no readable {what} page")
    return value


def product_number(node: Mapping[str, Any]) -> str:
    """The numeric id of a product node Shopify answered with; ShopifyServerError when it has none."""
    number = gid_number(node.get("id"), PRODUCT_PREFIX)
    if number is None:
        raise ShopifyServerError(f"Shopify's answer has no product id: {node.get('id')!r:.80}")
    return number


async def read_product(client: ShopifyClient, product_id: str, *,
                       first_page: Mapping[str, Any] | None = None) -> ProductSnapshot | None:
    """A product and all its variants through the Admin API (None: it does not exist).

    `first_page`: a product node already read with its first variants page. The pages must all show
    the same `updatedAt`; a product changing meanwhile is read again.
    """
    gid = PRODUCT_PREFIX + product_id
    node = first_page
    for _ in range(MAX_CONSISTENT_READS):
        if node is None:
            data = await client.execute(documents.PRODUCT_FOR_CATALOG, {
                "id": gid, "first": documents.PRODUCT_VARIANTS_PAGE_SIZE, "after": None})
            node = data.get("product")
            if node is None:
                return None
        page = connection_page(node.get("variants"), "variants")
        variants = list(page["nodes"])
        consistent = True
        while page["pageInfo"].get("hasNextPage"):
            data = await client.execute(documents.PRODUCT_FOR_CATALOG, {
                "id": gid, "first": documents.PRODUCT_VARIANTS_PAGE_SIZE, "after": page["pageInfo"].get("endCursor")})
            later = data.get("product")
            if later is None:
                return None
            if later.get("updatedAt") != node.get("updatedAt"):
                consistent = False
                break
            page = connection_page(later.get("variants"), "variants")
            variants.extend(page["nodes"])
        if consistent:
            return product_from_graphql(node, variants)
        node = None
    raise ShopifyServerError(f"product {product_id} kept changing while its variants were read")


async def read_product_by_inventory_item(client: ShopifyClient, inventory_item_id: str) -> ProductSnapshot | None:
    """The product of the variant holding an inventory item, with all its variants (None: no such item)."""
    data = await client.execute(documents.PRODUCT_BY_INVENTORY_ITEM, {
        "id": INVENTORY_ITEM_PREFIX + inventory_item_id, "first": documents.PRODUCT_VARIANTS_PAGE_SIZE})
    node = data.get("node") or {}
    product = (node.get("variant") or {}).get("product")
    if product is None:
        return None
    return await read_product(client, product_number(product), first_page=product)
