"""Catalog items: the type, its 20 catalog fields and its stored document; shop domains and catalog
names. Pure code, no I/O. The rules an item must follow are in `rules`."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Any

import bson
import msgspec

SHOP_DOMAIN_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,59}\.myshopify\.com")

# The catalog fields, in the order of the Braze catalogs this product feeds (the stored documents and
# the GraphQL type list them alike).
CATALOG_FIELDS: tuple[str, ...] = (
    "id",
    "store_name",
    "shopify_product_id",
    "shopify_variant_id",
    "product_title",
    "variant_title",
    "status",
    "product_image_url",
    "variant_image_url",
    "vendor",
    "product_type",
    "product_url",
    "product_handle",
    "published_scope",
    "price",
    "compare_at_price",
    "inventory_quantity",
    "options",
    "option_values",
    "sku",
)


class Identifier(StrEnum):
    """Which Shopify value becomes the catalog item id."""

    SHOPIFY_VARIANT_ID = "SHOPIFY_VARIANT_ID"
    SKU = "SKU"


class SkipReason(StrEnum):
    """Why a variant was filtered out of a sync (not an error: counted and reported)."""

    INVALID_ID = "invalid_id"
    MISSING_SKU = "missing_sku"
    VALUE_TOO_LONG = "value_too_long"


class CatalogItem(msgspec.Struct, frozen=True, gc=False):
    """One catalog item (one Shopify variant). Money stays the exact string Shopify wrote.

    Immutable (a frozen msgspec Struct; change one with `msgspec.structs.replace`), so stores keep
    and hand out the caller's object instead of copies, and items of a product share its strings.
    Untracked by the cyclic GC: it holds only strings, numbers, a datetime and string tuples."""

    id: str
    store_name: str
    shopify_product_id: str
    shopify_variant_id: str
    product_title: str
    variant_title: str | None
    status: str
    product_image_url: str | None
    variant_image_url: str | None
    vendor: str | None
    product_type: str | None
    product_url: str | None
    product_handle: str | None
    published_scope: str | None
    price: str
    compare_at_price: str | None
    inventory_quantity: int | None
    options: tuple[str, ...] = ()
    option_values: tuple[str, ...] = ()
    sku: str | None = None
    # Bookkeeping (stored with a leading underscore).
    updated_at: datetime | None = None  # the product's Shopify updated_at: guards every write
    inventory_item_id: str | None = None  # numeric; maps inventory_levels/update webhooks
    # When `inventory_quantity` was true in Shopify (the variant's updatedAt it was read with, or the
    # time of the inventory change that set it); None: `updated_at`. Inventory is versioned on its
    # own: an older product snapshot never brings back an older quantity (`writes.plan_writes`).
    inventory_at: datetime | None = None

    def to_document(self, catalog: str) -> dict[str, Any]:
        """The stored document: catalog fields (money as numbers) plus `_` bookkeeping fields."""
        doc: dict[str, Any] = {
            "_catalog": catalog,
            "id": self.id,
            "store_name": self.store_name,
            "shopify_product_id": self.shopify_product_id,
            "shopify_variant_id": self.shopify_variant_id,
            "product_title": self.product_title,
            "variant_title": self.variant_title,
            "status": self.status,
            "product_image_url": self.product_image_url,
            "variant_image_url": self.variant_image_url,
            "vendor": self.vendor,
            "product_type": self.product_type,
            "product_url": self.product_url,
            "product_handle": self.product_handle,
            "published_scope": self.published_scope,
            "price": float(self.price),
            "compare_at_price": None if self.compare_at_price is None else float(self.compare_at_price),
            "inventory_quantity": self.inventory_quantity,
            "options": list(self.options),
            "option_values": list(self.option_values),
            "sku": self.sku,
            "_price": self.price,
            "_compare_at_price": self.compare_at_price,
            "_updated_at": self.updated_at,
            "_inventory_item_id": self.inventory_item_id,
            "_inventory_at": self.inventory_at,
        }
        return doc

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> CatalogItem:
        """Inverse of `to_document`: money comes back as the exact original strings."""
        return cls(
            id=doc["id"],
            store_name=doc["store_name"],
            shopify_product_id=doc["shopify_product_id"],
            shopify_variant_id=doc["shopify_variant_id"],
            product_title=doc["product_title"],
            variant_title=doc.get("variant_title"),
            status=doc["status"],
            product_image_url=doc.get("product_image_url"),
            variant_image_url=doc.get("variant_image_url"),
            vendor=doc.get("vendor"),
            product_type=doc.get("product_type"),
            product_url=doc.get("product_url"),
            product_handle=doc.get("product_handle"),
            published_scope=doc.get("published_scope"),
            price=doc["_price"],
            compare_at_price=doc.get("_compare_at_price"),
            inventory_quantity=doc.get("inventory_quantity"),
            options=tuple(doc.get("options") or ()),
            option_values=tuple(doc.get("option_values") or ()),
            sku=doc.get("sku"),
            updated_at=doc.get("_updated_at"),
            inventory_item_id=doc.get("_inventory_item_id"),
            inventory_at=doc.get("_inventory_at"),
        )


def document_size(doc: dict[str, Any]) -> int:
    """Stored size of an item document in bytes (its BSON encoding, as MongoDB counts it)."""
    return len(bson.encode(doc))


# The stored document's keys, in order (`CatalogItem.to_document`); `checks` sizes documents from them.
DOCUMENT_KEYS = ("_catalog", *CATALOG_FIELDS, "_price", "_compare_at_price", "_updated_at", "_inventory_item_id",
                 "_inventory_at")


def normalize_shop_domain(value: str) -> str:
    """`Foo`, `foo.myshopify.com`, `https://foo.myshopify.com/` → `foo.myshopify.com`.

    Raises ValueError with the expected form when the value is not a myshopify domain.
    """
    text = value.strip().lower()
    for prefix in ("https://", "http://"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
    text = text.rstrip("/")
    if "." not in text:
        text = f"{text}.myshopify.com"
    if SHOP_DOMAIN_PATTERN.fullmatch(text) is None:
        raise ValueError(
            f"{value!r} is not a Shopify shop domain: use the store's myshopify domain, "
            "e.g. 'my-store.myshopify.com'"
        )
    return text


def catalog_name(shop_domain: str) -> str:
    """Catalog name for a shop: `shopify_` + the myshopify subdomain (`-` kept)."""
    return "shopify_" + normalize_shop_domain(shop_domain).split(".", 1)[0]


def product_url(shop_domain: str, handle: str | None, online_store_url: str | None) -> str | None:
    """`onlineStoreUrl` when Shopify gives one, else `https://{shop}/products/{handle}`."""
    if online_store_url:
        return online_store_url
    if not handle:
        return None
    return f"https://{shop_domain}/products/{handle}"
