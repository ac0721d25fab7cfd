"""Every catalog item rule, once: ids, value lengths, exact money, UTC milliseconds. Pure code.

The limits mirror the catalogs this product feeds (ids of 1–250 characters of [A-Za-z0-9_-], string
values of at most 5,000 characters). Both stores, the bulk mapping and the webhook mapping read
these functions; the batch checker (`checks.check_batch`) applies the same rules in one fused loop
for speed and asks `item_problem` for the reason when it refuses an item.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from catalog_store.errors import InvalidItem
from catalog_store.items import CATALOG_FIELDS, CatalogItem, Identifier, SkipReason

ID_PATTERN: Final = re.compile(r"[A-Za-z0-9_-]{1,250}")
MAX_VALUE_CHARS: Final = 5000

_PLAIN_DECIMAL: Final = re.compile(r"-?[0-9]+(?:\.[0-9]+)?").fullmatch
_MONEY_MEMO_SIZE: Final = 4096
# Plain decimal strings already accepted: prices repeat a lot, and a dict lookup is cheaper than the
# regex. Only plain ones are kept, so membership also means "stored exactly as written".
MONEY_MEMO: Final[dict[str, None]] = {}


# -- ids and lengths -------------------------------------------------------------------------------


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


def check_catalog_name(name: str) -> None:
    """Catalog names follow the item id rule (1-250 of A-Z, a-z, 0-9, '_', '-'), e.g. `shopify_my-store`."""
    if not isinstance(name, str) or not valid_item_id(name):
        raise ValueError(f"invalid catalog name {name!r}: use 1-250 characters of A-Z, a-z, 0-9, '_' and '-'")


def check_image_url(url: str) -> None:
    """A variant image URL is a string value like any other: 1-5000 characters."""
    if not isinstance(url, str) or not url or len(url) > MAX_VALUE_CHARS:
        raise InvalidItem(f"variant image url must be 1-{MAX_VALUE_CHARS} characters, got {url!r:.80}")


# -- money -----------------------------------------------------------------------------------------


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


def is_exact_money(value: object) -> bool:
    """True for money a store keeps: a string holding a finite decimal (prices and compare-at
    prices are kept exactly as Shopify wrote them, and stored as numbers beside that)."""
    if type(value) is not str and not isinstance(value, str):
        return False
    if value in MONEY_MEMO:
        return True
    if _PLAIN_DECIMAL(value) is not None:
        if len(MONEY_MEMO) >= _MONEY_MEMO_SIZE:
            MONEY_MEMO.clear()
        MONEY_MEMO[value] = None
        return True
    try:
        return parse_money(value) is not None
    except ValueError:
        return False


# -- time ------------------------------------------------------------------------------------------


def utc_millis(value: object) -> datetime:
    """`value` in UTC truncated to milliseconds, the precision MongoDB keeps, so that both stores
    compare `updated_at` guards alike (returned as is when it already is). Raises ValueError for a
    naive datetime or anything that is not a datetime: a guard without a time zone is ambiguous."""
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{value!r} is not a datetime with a time zone: pass an aware datetime (UTC)")
    if value.tzinfo is UTC and value.microsecond % 1000 == 0:
        return value
    value = value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


# -- a whole item ----------------------------------------------------------------------------------


def _money_problem(name: str, value: object, *, optional: bool) -> str | None:
    if value is None and optional:
        return None
    if is_exact_money(value):
        return None
    return f"{name} {value!r} is not an exact decimal string"


def item_problem(item: CatalogItem, size: int | None = None) -> str | None:
    """Why `item` cannot be stored, or None. `size`: its document's size when known (a document of
    at most 5000 bytes cannot hold a value longer than 5000 characters, so the scan is skipped)."""
    if not isinstance(item.id, str) or not valid_item_id(item.id):
        return f"invalid item id {item.id!r} (1-250 characters of A-Z, a-z, 0-9, '_' and '-')"
    for name in ("shopify_variant_id", "shopify_product_id"):
        value = getattr(item, name)
        if not isinstance(value, str) or value == "":
            return f"{name} must be a non-empty string (ids are kept as exact strings), got {value!r}"
    long_field = None if size is not None and size <= MAX_VALUE_CHARS else too_long_field(item)
    if long_field is not None:
        return f"{long_field} is longer than {MAX_VALUE_CHARS} characters"
    if not isinstance(item.updated_at, datetime):
        return "no updated_at (every write is guarded by the product's updated_at)"
    if item.updated_at.tzinfo is None or item.updated_at.utcoffset() is None:
        return f"updated_at {item.updated_at!r} has no time zone"
    money = _money_problem("price", item.price, optional=False) or _money_problem(
        "compare_at_price", item.compare_at_price, optional=True
    )
    if money is not None:
        return money
    quantity = item.inventory_quantity
    if quantity is not None and (isinstance(quantity, bool) or not isinstance(quantity, int)):
        return f"inventory_quantity {quantity!r} is not an integer"
    return None
