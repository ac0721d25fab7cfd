"""Bulk JSONL lines → catalog items, one line at a time: the decoded line shapes, the product
record, and the variant → item mapping. Pure code: no I/O.

`variant_item` is the per-variant hot path (measured with the emulator's output): checks are
inlined and the common 1–3 option cases unrolled, because each Python call or comprehension is a
visible share of the per-line cost next to msgspec's decoding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import msgspec

from bulk.errors import BulkError
from catalog_store.items import CatalogItem, Identifier, SkipReason, product_url
from catalog_store.rules import ID_PATTERN, MAX_VALUE_CHARS, MONEY_MEMO, is_exact_money, utc_millis

PRODUCT_PREFIX: Final = "gid://shopify/Product/"
VARIANT_PREFIX: Final = "gid://shopify/ProductVariant/"
MEDIA_IMAGE_PREFIX: Final = "gid://shopify/MediaImage/"
INVENTORY_ITEM_PREFIX: Final = "gid://shopify/InventoryItem/"
_SKU: Final = Identifier.SKU  # a module constant: enum attribute lookups are slow on the hot path

UNKNOWN_PRODUCT: Final = "unknown_product"  # skip reason: the variant's product line is not in the file
IMAGE_TOO_LONG: Final = "image_too_long"  # not an item skip: the item is kept without that image
MAX_EXAMPLES: Final = 5
MAX_MONEY_CHARS: Final = 64

_ID_MATCH = ID_PATTERN.fullmatch


# -- decoded line shape (only the fields the items need: unknown keys are skipped by msgspec) ------


class OptionName(msgspec.Struct, gc=False):
    name: str


class SelectedOption(msgspec.Struct, gc=False):
    name: str
    value: str


class Image(msgspec.Struct, gc=False):
    url: str | None = None


class Preview(msgspec.Struct, gc=False):
    image: Image | None = None


class FeaturedMedia(msgspec.Struct, gc=False):
    preview: Preview | None = None


class Ref(msgspec.Struct, gc=False):
    id: str | None = None


class BulkLine(
    msgspec.Struct,
    gc=False,
    rename={
        "parent_id": "__parentId",
        "product_type": "productType",
        "updated_at": "updatedAt",
        "published_at": "publishedAt",
        "online_store_url": "onlineStoreUrl",
        "featured_media": "featuredMedia",
        "compare_at_price": "compareAtPrice",
        "inventory_quantity": "inventoryQuantity",
        "selected_options": "selectedOptions",
        "inventory_item": "inventoryItem",
    },
):
    """One JSONL line of the products bulk query: the union of the three node shapes."""

    id: str | None = None
    parent_id: str | None = None
    title: str | None = None
    # Product
    handle: str | None = None
    vendor: str | None = None
    product_type: str | None = None
    status: str | None = None
    updated_at: datetime | None = None
    published_at: str | None = None
    online_store_url: str | None = None
    options: list[OptionName] | None = None
    featured_media: FeaturedMedia | None = None
    # ProductVariant
    sku: str | None = None
    price: str | None = None
    compare_at_price: str | None = None
    inventory_quantity: int | None = None
    selected_options: list[SelectedOption] | None = None
    inventory_item: Ref | None = None
    # MediaImage
    image: Image | None = None


# -- results ------------------------------------------------------------------------------------


class LineError(BulkError, ValueError):
    """A line that decodes as JSON but cannot be used (bad gid, money, missing field): counted and
    reported, never raised past the run."""


class ProductRecord(msgspec.Struct, gc=False):
    """What the items of one product need from its line. Shared strings (vendor, type, status,
    option names) are de-duplicated by the `Assembler`."""

    product_id: str
    title: str
    handle: str | None
    vendor: str | None
    product_type: str | None
    status: str
    image_url: str | None
    url: str | None
    published_scope: str | None
    options: tuple[str, ...]  # shared by the products with the same option names
    updated_at: datetime
    too_long: str | None  # first product-level field over 5,000 characters


@dataclass(slots=True, frozen=True)
class Skip:
    """A variant filtered out of the sync: why, and a human-readable example."""

    variant_id: str
    reason: str
    example: str


@dataclass(slots=True, frozen=True)
class VariantImage:
    """Patch: set the image of a variant's item (if it has none yet)."""

    variant_id: str
    url: str


# -- pure mapping functions ------------------------------------------------------------------------


def gid_number(gid: object, prefix: str) -> str | None:
    """`gid://shopify/<Type>/123` with the given type prefix → "123" (exact at any size: ids pass
    2^53), or None when `gid` is not such an id."""
    if type(gid) is not str or not gid.startswith(prefix):
        return None
    number = gid[len(prefix) :]
    return number if number.isdigit() and number.isascii() else None


def gid_id(gid: str | None, prefix: str) -> str:
    """`gid_number`, for a line that must carry the id: raises LineError otherwise."""
    if gid is None:
        raise LineError(f"missing {prefix}… id")
    number = gid_number(gid, prefix)
    if number is None:
        raise LineError(f"{gid[:80]!r} is not a {prefix}… id")
    return number


def exact_money(value: str | None, name: str) -> str | None:
    """A money string as Shopify wrote it (surrounding blanks dropped). Raises LineError for a
    non-decimal, or one longer than any amount Shopify writes (a bound on the decimal parser's work)."""
    if value is None or value in MONEY_MEMO:
        return value
    if len(value) > MAX_MONEY_CHARS:
        raise LineError(f"{name} {value[:40]!r}… is not a decimal amount")
    if not is_exact_money(value):
        raise LineError(f"{name} {value[:40]!r} is not a decimal amount")
    return value.strip()


def _too_long(*named: tuple[str, str | None | Sequence[str]]) -> str | None:
    for name, value in named:
        if value is None:
            continue
        if isinstance(value, str):
            if len(value) > MAX_VALUE_CHARS:
                return name
        elif any(len(v) > MAX_VALUE_CHARS for v in value):
            return name
    return None


def product_record(line: BulkLine, shop_domain: str, store_name: str = "") -> ProductRecord:
    """A Product line → its compact record. Raises LineError when required fields are missing."""
    product_id = gid_id(line.id, PRODUCT_PREFIX)
    if line.title is None:
        raise LineError(f"product {product_id} has no title")
    if line.status is None:
        raise LineError(f"product {product_id} has no status")
    try:  # it guards every write of the items; in UTC milliseconds, as the stores keep it
        updated_at = utc_millis(line.updated_at)
    except ValueError:
        raise LineError(f"product {product_id} has no updatedAt with a time zone") from None
    media = line.featured_media
    image = media.preview.image if media is not None and media.preview is not None else None
    image_url = image.url if image is not None else None
    url = product_url(shop_domain, line.handle, line.online_store_url)
    options = tuple([o.name for o in line.options]) if line.options else ()
    published = "web" if (line.published_at or line.online_store_url) else None
    too_long = None
    strings = (store_name, line.title, line.status, image_url, line.vendor, line.product_type, url, line.handle)
    if sum(len(v) for v in strings if v is not None) + sum(map(len, options)) > MAX_VALUE_CHARS:
        too_long = _too_long(
            ("store_name", store_name),
            ("product_title", line.title),
            ("status", line.status),
            ("product_image_url", image_url),
            ("vendor", line.vendor),
            ("product_type", line.product_type),
            ("product_url", url),
            ("product_handle", line.handle),
            ("options", options),
        )
    return ProductRecord(
        product_id=product_id,
        title=line.title,
        handle=line.handle,
        vendor=line.vendor,
        product_type=line.product_type,
        status=line.status.lower(),
        image_url=image_url,
        url=url,
        published_scope=published,
        options=options,
        updated_at=updated_at,
        too_long=too_long,
    )


def _ordered_values(selected: list[SelectedOption], options: tuple[str, ...]) -> tuple[str, ...]:
    position = {name: i for i, name in enumerate(options)}
    return tuple([o.value for o in sorted(selected, key=lambda o: position.get(o.name, len(options)))])


def variant_item(
    line: BulkLine, product: ProductRecord, identifier: Identifier, store_name: str
) -> CatalogItem | Skip:
    """A ProductVariant line (with its product's record) → a catalog item, or why it is skipped.

    Raises LineError for a line Shopify would never write (bad gid, bad money, no price)."""
    gid = line.id
    variant_id = gid_number(gid, VARIANT_PREFIX)
    if variant_id is None:
        raise LineError(f"{str(gid)[:80]!r} is not a {VARIANT_PREFIX}… id")
    price = line.price
    if price not in MONEY_MEMO:
        price = exact_money(price, "price")
        if price is None:
            raise LineError(f"variant {variant_id} has no price")
    compare_at = line.compare_at_price
    if compare_at is not None and compare_at not in MONEY_MEMO:
        compare_at = exact_money(compare_at, "compareAtPrice")
    sku = line.sku or None
    if identifier is _SKU:
        if sku is None or _ID_MATCH(sku) is None:
            if sku is None or not sku.strip():
                return Skip(variant_id, SkipReason.MISSING_SKU, f"variant {variant_id} of {product.title[:80]!r} has no SKU")
            return Skip(
                variant_id,
                SkipReason.INVALID_ID,
                f"variant {variant_id}: SKU {sku[:80]!r} is not 1–250 characters of A-Z a-z 0-9 _ -",
            )
        item_id = sku
    else:
        item_id = variant_id
    selected = line.selected_options
    options = product.options
    # Unrolled for the usual 1–3 options (comprehensions cost a function call each in 3.11).
    count = len(selected) if selected else 0
    values: tuple[str, ...]
    if count == 0:
        values = ()
        longest = 0
    elif count == 1:
        a = selected[0]  # type: ignore[index]
        values = (a.value,)
        longest = len(a.value)
    elif count == 2:
        a, b = selected  # type: ignore[misc]
        values = (a.value, b.value)
        if len(options) != 2 or a.name != options[0] or b.name != options[1]:
            values = _ordered_values(selected, options)  # type: ignore[arg-type]
        longest = len(a.value) + len(b.value)  # an upper bound is enough to take the slow path
    elif count == 3:
        a, b, c = selected  # type: ignore[misc]
        values = (a.value, b.value, c.value)
        if len(options) != 3 or a.name != options[0] or b.name != options[1] or c.name != options[2]:
            values = _ordered_values(selected, options)  # type: ignore[arg-type]
        longest = len(a.value) + len(b.value) + len(c.value)
    else:
        values = _ordered_values(selected, options)  # type: ignore[arg-type]
        longest = max(map(len, values))
    title = line.title
    if (
        product.too_long is not None
        or longest > MAX_VALUE_CHARS
        or (title is not None and len(title) > MAX_VALUE_CHARS)
        or (sku is not None and len(sku) > MAX_VALUE_CHARS)
    ):
        too_long = product.too_long or _too_long(("variant_title", title), ("option_values", values), ("sku", sku))
        return Skip(
            variant_id,
            SkipReason.VALUE_TOO_LONG,
            f"variant {variant_id}: {too_long} is longer than {MAX_VALUE_CHARS:,} characters",
        )
    inventory = line.inventory_item
    if inventory is None or inventory.id is None:
        inventory_item_id = None
    else:
        inventory_item_id = gid_number(inventory.id, INVENTORY_ITEM_PREFIX)
        if inventory_item_id is None:
            raise LineError(f"{inventory.id[:80]!r} is not a {INVENTORY_ITEM_PREFIX}… id")
    return CatalogItem(
        item_id,
        store_name,
        product.product_id,
        variant_id,
        product.title,
        title,
        product.status,
        product.image_url,
        None,
        product.vendor,
        product.product_type,
        product.url,
        product.handle,
        product.published_scope,
        price,
        compare_at,
        line.inventory_quantity,
        options,
        values,
        sku,
        product.updated_at,
        inventory_item_id,
        line.updated_at,  # the variant's own updatedAt: when its inventory_quantity was true
    )


def variant_image(line: BulkLine) -> VariantImage | None:
    """A MediaImage line → an image patch for its variant (None when the media has no image yet)."""
    image = line.image
    if image is None or not image.url:
        return None
    return VariantImage(gid_id(line.parent_id, VARIANT_PREFIX), image.url)
