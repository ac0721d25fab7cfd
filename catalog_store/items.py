"""Catalog items: the 20 catalog fields, id rules, value limits, exact money. Pure code, no I/O."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

import bson
import msgspec

ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,250}")
MAX_VALUE_CHARS = 5000
SHOP_DOMAIN_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,59}\.myshopify\.com")

# The catalog fields of spec §2, in the seed document's order.
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
        )


def document_size(doc: dict[str, Any]) -> int:
    """Stored size of an item document in bytes (its BSON encoding, as MongoDB counts it)."""
    return len(bson.encode(doc))


# The stored document's keys, in order (`CatalogItem.to_document`); `checks` sizes documents from them.
DOCUMENT_KEYS = ("_catalog", *CATALOG_FIELDS, "_price", "_compare_at_price", "_updated_at", "_inventory_item_id")


def valid_item_id(value: str) -> bool:
    """True when `value` is a legal catalog item id: 1–250 characters of [A-Za-z0-9_-]."""
    return ID_PATTERN.fullmatch(value) is not None


def choose_item_id(identifier: Identifier, variant_id: str, sku: str | None) -> str | SkipReason:
    """The item id for a variant under the chosen identifier, or why the variant is skipped."""
    if identifier is Identifier.SKU:
        if sku is None or sku.strip() == "":
            return SkipReason.MISSING_SKU
        candidate = sku
    else:
        candidate = variant_id
    return candidate if valid_item_id(candidate) else SkipReason.INVALID_ID


def too_long_field(item: CatalogItem) -> str | None:
    """The name of the first string value longer than 5,000 characters, or None."""
    for name in CATALOG_FIELDS:
        value = getattr(item, name)
        if isinstance(value, str):
            if len(value) > MAX_VALUE_CHARS:
                return name
        elif isinstance(value, (tuple, list)):
            if any(isinstance(v, str) and len(v) > MAX_VALUE_CHARS for v in value):
                return name
    return None


def parse_money(value: Any) -> str | None:
    """Shopify money (a decimal string, or a number) → the exact decimal string, or None.

    Raises ValueError for anything that is not a finite decimal.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"not a money value: {value!r}")
    text = str(value).strip() if not isinstance(value, float) else repr(value)
    try:
        number = Decimal(text)
    except InvalidOperation as exc:
        raise ValueError(f"not a money value: {value!r}") from exc
    if not number.is_finite():
        raise ValueError(f"not a money value: {value!r}")
    return text


def gid_number(gid_or_id: str | int) -> str:
    """`gid://shopify/ProductVariant/123` (or 123, or "123") → "123", exact for ids above 2^53."""
    if isinstance(gid_or_id, int):
        return str(gid_or_id)
    text = gid_or_id.rsplit("/", 1)[-1]
    text = text.split("?", 1)[0]
    if not text.isdigit():
        raise ValueError(f"not a Shopify id: {gid_or_id!r}")
    return text


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
