"""Item checks and stored sizes for a whole batch: both stores' write path, the memory store's hot
path. Pure code.

`check_batch` accepts exactly the items `rules.item_problem` accepts and computes each item's stored
size, the BSON size of `item.to_document(catalog)`, without encoding it: the product-level
values (the 10 product strings, option names and updated_at) are checked and sized once for a run of
items that share them. Sharing is decided by identity (`is`), which is sound because items and
their values are immutable; the bulk and webhook mappers build a product's items from one record,
so its items share those objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

import msgspec

from catalog_store.errors import InvalidItem
from catalog_store.items import DOCUMENT_KEYS, CatalogItem
from catalog_store.rules import (
    ID_PATTERN,
    MAX_VALUE_CHARS,
    MONEY_MEMO,
    is_exact_money,
    item_problem,
    too_long_field,
    utc_millis,
)

_KEYS_SIZE: Final = sum(len(key) + 2 for key in DOCUMENT_KEYS)  # type byte + key + NUL, per element
_ID_MATCH: Final = ID_PATTERN.fullmatch
_INT32: Final = 2**31


class _Bad(Exception):
    """An item the checks refuse; `rules.item_problem` says why."""


def base_size(catalog: str) -> int:
    """Size of an item document's fixed part: its frame, every key, and the `_catalog` value."""
    return 5 + _KEYS_SIZE + _string_size(catalog)


def _string_size(value: object) -> int:
    """BSON size of a string value (int32 length + UTF-8 + NUL); 0 for None (null has no value)."""
    if value is None:
        return 0
    if type(value) is not str and not isinstance(value, str):
        raise _Bad
    return (len(value) if value.isascii() else len(value.encode())) + 5


def _array_size(values: object) -> int:
    """BSON size of an array of strings (a document keyed "0", "1", …)."""
    if type(values) is not tuple and type(values) is not list:
        raise _Bad
    count = len(values)
    joined = "".join(values)  # TypeError unless every value is a string
    keys = _ARRAY_KEYS[count] if count < len(_ARRAY_KEYS) else sum(len(str(i)) + 2 for i in range(count))
    return 5 + keys + 5 * count + (len(joined) if joined.isascii() else len(joined.encode()))


_ARRAY_KEYS: Final = [sum(len(str(i)) + 2 for i in range(n)) for n in range(64)]  # "0", "1", … with type and NUL


def _product_size(item: CatalogItem) -> int:
    """Size of the product-level values; raises _Bad for a wrong type or an empty product id."""
    product_id = item.shopify_product_id
    if type(product_id) is not str or not product_id:
        raise _Bad
    return (
        _string_size(item.store_name)
        + len(product_id.encode())
        + 5
        + _string_size(item.product_title)
        + _string_size(item.status)
        + _string_size(item.product_image_url)
        + _string_size(item.vendor)
        + _string_size(item.product_type)
        + _string_size(item.product_url)
        + _string_size(item.product_handle)
        + _string_size(item.published_scope)
        + _array_size(item.options)
        + 8  # _updated_at
    )


class _NoItem:
    """Stands for "no previous item": every attribute is a fresh object, identical to nothing."""

    def __getattr__(self, name: str) -> object:
        return object()


_NO_ITEM: Final = _NoItem()


def check_batch(catalog: str, items: Sequence[CatalogItem]) -> tuple[list[CatalogItem], list[int]]:
    """The batch's items, normalised (updated_at in UTC milliseconds, option tuples), and their stored
    sizes. Raises InvalidItem naming the first bad item: nothing of the batch may be written.

    The product-level values are checked and sized again only when they are not the very objects of
    the previous item's (see the module doc)."""
    base = base_size(catalog)
    checked: list[CatalogItem] = []
    sizes: list[int] = []
    last: Any = _NO_ITEM  # an item, or the sentinel whose fields match nothing
    product_size = 0
    updated_at: datetime | None = None
    valid_money = MONEY_MEMO
    for index, item in enumerate(items):
        try:
            if type(item) is not CatalogItem:
                raise _Bad
            if not (
                item.shopify_product_id is last.shopify_product_id
                and item.updated_at is last.updated_at
                and item.product_title is last.product_title
                and item.options is last.options
                and item.status is last.status
                and item.product_image_url is last.product_image_url
                and item.vendor is last.vendor
                and item.product_type is last.product_type
                and item.product_url is last.product_url
                and item.product_handle is last.product_handle
                and item.published_scope is last.published_scope
                and item.store_name is last.store_name
            ):
                product_size = base + _product_size(item)
                updated_at = utc_millis(item.updated_at)
                last = item
            item_id = item.id
            variant_id = item.shopify_variant_id
            price = item.price
            if not (
                type(item_id) is str
                and item_id.isdigit()
                and item_id.isascii()
                and len(item_id) <= 250
                or type(item_id) is str
                and _ID_MATCH(item_id) is not None
            ):
                raise _Bad
            if type(variant_id) is not str or not variant_id:
                raise _Bad
            if price not in valid_money and not is_exact_money(price):
                raise _Bad
            size = product_size + len(item_id) + len(variant_id.encode()) + 23 + len(price.encode())
            compare_at = item.compare_at_price
            if compare_at is not None:
                if compare_at not in valid_money and not is_exact_money(compare_at):
                    raise _Bad
                size += 13 + len(compare_at.encode())
            quantity = item.inventory_quantity
            if quantity is not None:
                if type(quantity) is not int and (isinstance(quantity, bool) or not isinstance(quantity, int)):
                    raise _Bad
                size += 4 if -_INT32 <= quantity < _INT32 else 8
            title = item.variant_title
            if title is not None:
                if type(title) is not str:
                    raise _Bad
                size += (len(title) if title.isascii() else len(title.encode())) + 5
            sku = item.sku
            if sku is not None:
                if type(sku) is not str:
                    raise _Bad
                size += (len(sku) if sku.isascii() else len(sku.encode())) + 5
            inventory_id = item.inventory_item_id
            if inventory_id is not None:
                if type(inventory_id) is not str:
                    raise _Bad
                size += len(inventory_id.encode()) + 5
            inventory_at = item.inventory_at
            if inventory_at is not None:
                inventory_at = utc_millis(inventory_at)
                size += 8
            size += _string_size(item.variant_image_url) + _array_size(item.option_values)
            if size > MAX_VALUE_CHARS and too_long_field(item) is not None:
                raise _Bad
        except (_Bad, TypeError, ValueError, AttributeError, OverflowError, UnicodeError):
            raise InvalidItem(f"item {index} of the batch (variant {getattr(item, 'shopify_variant_id', None)!r}): "
                              f"{_problem(item)}; nothing was written") from None
        if (item.updated_at is not updated_at or item.inventory_at is not inventory_at
                or type(item.options) is not tuple or type(item.option_values) is not tuple):
            item = msgspec.structs.replace(
                item, updated_at=updated_at, inventory_at=inventory_at, options=tuple(item.options),
                option_values=tuple(item.option_values)
            )
        checked.append(item)
        sizes.append(size)
    return checked, sizes


def inventory_size(quantity: int | None, inventory_at: datetime | None) -> int:
    """The part of an item's stored size its inventory values take (quantity and its time)."""
    size = 0 if quantity is None else 4 if -_INT32 <= quantity < _INT32 else 8
    return size + (0 if inventory_at is None else 8)


def item_size(catalog: str, item: CatalogItem) -> int:
    """The stored size of one item (raises InvalidItem when it cannot be stored)."""
    return check_batch(catalog, [item])[1][0]


def _problem(item: object) -> str:
    if not isinstance(item, CatalogItem):
        return f"not a CatalogItem but {type(item).__name__}"
    return item_problem(item) or "it cannot be encoded as a document"
