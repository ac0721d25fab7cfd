"""Read arguments shared by both stores: page size, cursor and filter validation. Pure code."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from catalog_store.errors import InvalidQuery
from catalog_store.models import ItemFilter
from catalog_store.rules import valid_item_id
from catalog_store.store import MAX_PAGE_SIZE

SEARCH_FIELDS = ("product_title", "variant_title", "sku")


def page_size(first: int, name: str = "first") -> int:
    """`first` capped at MAX_PAGE_SIZE; InvalidQuery (a ValueError) below 0."""
    if isinstance(first, bool) or not isinstance(first, int) or first < 0:
        raise InvalidQuery(f"{name} must be an integer >= 0 (at most {MAX_PAGE_SIZE} are returned), got {first!r}")
    return min(first, MAX_PAGE_SIZE)


def cursor(after: str | None) -> str | None:
    """A page cursor is the last item id of the previous page."""
    if after is not None and (not isinstance(after, str) or not valid_item_id(after)):
        raise InvalidQuery(f"invalid cursor {after!r}: pass the end cursor of the previous page")
    return after


@dataclass(slots=True, frozen=True)
class CheckedFilter:
    """An ItemFilter with prices as floats (how both stores compare them) and the search pattern:
    `search_text` as a case-insensitive literal (what MongoDB's `$regex` with option `i` applies)."""

    status: str | None
    vendor: str | None
    product_type: str | None
    in_stock: bool | None
    price_min: float | None
    price_max: float | None
    search: re.Pattern[str] | None
    search_text: str | None = None  # the literal the pattern looks for

    @property
    def empty(self) -> bool:
        return all(
            v is None
            for v in (self.status, self.vendor, self.product_type, self.in_stock, self.price_min, self.price_max,
                      self.search)
        )


def _price(value: Decimal | None, name: str) -> float | None:
    if value is None:
        return None
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        raise InvalidQuery(f"{name} {value!r} is not a number") from None
    if not number.is_finite():
        raise InvalidQuery(f"{name} {value!r} is not a finite number")
    return float(number)


def check_filter(filter: ItemFilter | None) -> CheckedFilter:
    f = filter or ItemFilter()
    search = None
    if f.search is not None:
        search = re.compile(re.escape(f.search), re.IGNORECASE)
    return CheckedFilter(
        status=None if f.status is None else f.status.lower(),  # stored as Shopify's value, lowercased
        vendor=f.vendor,
        product_type=f.product_type,
        in_stock=f.in_stock,
        price_min=_price(f.price_min, "price_min"),
        price_max=_price(f.price_max, "price_max"),
        search=search,
        search_text=f.search,
    )
