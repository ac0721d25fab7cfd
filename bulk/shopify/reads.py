"""Admin API reads the webhook path and reconciliation make: a product with all its variant pages
read consistently (every page at the same `updatedAt`, further pages sized by cost), and the
inventory of many inventory items in one `nodes(ids:)` call (never their whole products). They need
only `client.execute`, so they take any client."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bulk.errors import ShopifyServerError
from bulk.mapping.payloads import ProductSnapshot, product_from_graphql
from bulk.mapping.variants import PRODUCT_PREFIX, VARIANT_PREFIX, gid_number
from bulk.shopify import documents
from bulk.shopify.budget import Priority
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


async def read_product(client: ShopifyClient, product_id: str, *, first_page: Mapping[str, Any] | None = None,
                       priority: Priority | None = None) -> ProductSnapshot | None:
    """A product and all its variants through the Admin API (None: it does not exist).

    `first_page`: a product node already read with its first variants page. The pages must all show
    the same `updatedAt`; a product changing meanwhile is read again.
    """
    gid = PRODUCT_PREFIX + product_id
    node = first_page
    for _ in range(MAX_CONSISTENT_READS):
        if node is None:
            data = await client.execute(documents.PRODUCT_FOR_CATALOG, {
                "id": gid, "first": documents.PRODUCT_VARIANTS_PAGE_SIZE, "after": None}, priority=priority)
            node = data.get("product")
            if node is None:
                return None
        page = connection_page(node.get("variants"), "variants")
        variants = list(page["nodes"])
        consistent = True
        while page["pageInfo"].get("hasNextPage"):
            first = documents.variants_page_size(client.throttle_available)
            data = await client.execute(documents.PRODUCT_FOR_CATALOG, {
                "id": gid, "first": first, "after": page["pageInfo"].get("endCursor")}, priority=priority,
                cost=documents.PRODUCT_READ_COST + 2 + first * documents.VARIANT_NODE_COST)
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


@dataclass(frozen=True, slots=True)
class InventoryRead:
    """A variant's total quantity as Shopify answered it, and when it was true (its updatedAt)."""

    variant_id: str
    quantity: int | None
    at: datetime


def shopify_time(value: Any, what: str) -> datetime:
    """A GraphQL DateTime (`2026-01-15T10:00:00Z`) as an aware datetime; ShopifyServerError otherwise."""
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise ShopifyServerError(f"Shopify's answer has no readable {what}: {value!r:.80}")
    return parsed


def inventory_read(variant: Mapping[str, Any]) -> InventoryRead | None:
    """A variant node (`id inventoryQuantity updatedAt`) → its read (None: not a variant's)."""
    variant_id = gid_number(variant.get("id"), VARIANT_PREFIX)
    if variant_id is None:
        return None
    quantity = variant.get("inventoryQuantity")
    if quantity is not None and (isinstance(quantity, bool) or not isinstance(quantity, int)):
        raise ShopifyServerError(f"Shopify's variant {variant_id} has no readable inventoryQuantity")
    return InventoryRead(variant_id, quantity, shopify_time(variant.get("updatedAt"), "variant updatedAt"))


async def read_inventory(client: ShopifyClient, variant_ids: Sequence[str], *,
                         priority: Priority | None = None) -> dict[str, InventoryRead]:
    """The total quantities of these variants, 250 a call (1 point each), by variant id; a variant
    Shopify no longer has is missing from the answer."""
    reads: dict[str, InventoryRead] = {}
    ids = list(dict.fromkeys(variant_ids))
    for start in range(0, len(ids), documents.MAX_PAGE):
        chunk = ids[start : start + documents.MAX_PAGE]
        data = await client.execute(documents.VARIANT_INVENTORY, {"ids": [VARIANT_PREFIX + i for i in chunk]},
                                    priority=priority, cost=documents.VARIANT_INVENTORY_COST * len(chunk))
        nodes = data.get("nodes")
        if not isinstance(nodes, list):
            raise ShopifyServerError("Shopify's answer has no readable nodes")
        for node in nodes:
            read = inventory_read(node) if isinstance(node, Mapping) else None
            if read is not None:
                reads[read.variant_id] = read
    return reads
