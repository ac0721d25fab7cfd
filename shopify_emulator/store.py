"""A shop's products: the generated catalog plus the run-time changes made to it.

Only changes are held in memory: a changed product is copied whole into `_overrides` (at most 20
variants for generated ones), deleted generated products are an index set, added products a dict.
Every change installs a new Product object and bumps `version` (the bulk-result cache key), so a
reader in another thread (the bulk exporter) sees each product either before or after a change.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from .errors import InvalidInput, NotFound
from .generate import (
    FEATURED_MEDIA_ID_BASE,
    GENERATED_UNTIL,
    INVENTORY_ITEM_ID_BASE,
    OPTION_ID_BASE,
    PRODUCT_ID_BASE,
    VARIANT_ID_BASE,
    VARIANT_MEDIA_ID_BASE,
    GeneratedCatalog,
    slugify,
)
from .models import MediaImage, Product, ProductOption, Variant, Video, parse_gid

PRODUCT_STATUSES = ("ACTIVE", "DRAFT", "ARCHIVED", "UNLISTED")
ADDED_MEDIA_ID_BASE = 32_000_000_000_000
UNSET: Any = object()  # "argument not given" (None means "clear")
_VARIANT_KEYS = {"price", "compare_at_price", "sku", "inventory_quantity", "options", "image"}
_MONEY = re.compile(r"^\d{1,15}(\.\d{1,2})?$")


def normalize_money(value: str | int | Decimal, what: str = "price") -> str:
    """Shopify's money string for `value` ("12.5" → "12.50"); InvalidInput when not a non-negative amount."""
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal, float)):
        raise InvalidInput(f"{what} must be a decimal string such as '19.99', got {value!r}")
    text = str(value).strip()
    try:
        amount = Decimal(text)
    except InvalidOperation:
        amount = None
    if amount is None or not _MONEY.match(format(amount, "f")):
        raise InvalidInput(f"{what} must be a non-negative amount with at most 2 decimals, got {value!r}")
    return f"{amount.quantize(Decimal('0.01')):f}"


def _numeric_id(value: str | int, type_name: str) -> int:
    parsed = parse_gid(value, type_name)
    if parsed is None:
        raise NotFound(f"not a {type_name} id: {value!r} (use a number or gid://shopify/{type_name}/N)")
    return parsed[1]


class ProductStore:
    """Products of one shop, looked up by id and iterated in id order."""

    def __init__(self, seed: int, variants: int, clock: Callable[[], float] = time.time) -> None:
        self.catalog = GeneratedCatalog(seed, variants)
        self.version = 0
        self._clock = clock
        self._overrides: dict[int, Product] = {}
        self._deleted: set[int] = set()
        self._added: dict[int, Product] = {}
        self._added_variants: dict[int, int] = {}
        self._added_inventory: dict[int, int] = {}
        self._next_product_id = PRODUCT_ID_BASE + self.catalog.n_products
        self._next_variant = self.catalog.n_variants
        self._next_media = 0

    # -- reads -------------------------------------------------------------------------------------

    @property
    def product_count(self) -> int:
        return self.catalog.n_products - len(self._deleted) + len(self._added)

    def _generated(self, index: int) -> Product | None:
        if index in self._deleted:
            return None
        return self._overrides.get(index) or self.catalog.product(index)

    def product(self, product_id: str | int) -> Product | None:
        parsed = parse_gid(product_id, "Product")
        if parsed is None:
            return None
        number = parsed[1]
        index = self.catalog.product_index(number)
        return self._generated(index) if index is not None else self._added.get(number)

    def variant(self, variant_id: str | int) -> Variant | None:
        parsed = parse_gid(variant_id, "ProductVariant")
        if parsed is None:
            return None
        number = parsed[1]
        located = self.catalog.locate_variant(number)
        if located is not None:
            product = self._generated(located[0])
        else:
            product_id = self._added_variants.get(number)
            product = self._added.get(product_id) if product_id is not None else None
        return next((v for v in product.variants if v.id == number), None) if product else None

    def variant_by_inventory_item(self, inventory_item_id: str | int) -> Variant | None:
        parsed = parse_gid(inventory_item_id, "InventoryItem")
        if parsed is None:
            return None
        number = parsed[1]
        located = self.catalog.locate_inventory_item(number)
        if located is not None:
            product = self._generated(located[0])
        else:
            variant_id = self._added_inventory.get(number)
            product = self._added.get(self._added_variants.get(variant_id, -1)) if variant_id else None
        return next((v for v in product.variants if v.inventory_item_id == number), None) if product else None

    def iter_products(self, *, after_id: int | None = None, reverse: bool = False,
                      updated_since: int | None = None) -> Iterator[Product]:
        """Products in id order (descending with `reverse`), strictly after `after_id` in that order.

        `updated_since` is a hint: products (and products of variants) updated earlier may be skipped
        (and are, cheaply, when it is after every generated timestamp: only changed and added products
        are then visited).
        """
        n = self.catalog.n_products
        if updated_since is not None and updated_since >= GENERATED_UNTIL:
            changed = {PRODUCT_ID_BASE + i: p for i, p in list(self._overrides.items()) if i not in self._deleted}
            changed.update(self._added)
            ids = sorted(changed, reverse=reverse)
            if after_id is not None:
                ids = [i for i in ids if (i < after_id if reverse else i > after_id)]
            yield from (changed[i] for i in ids)
            return
        added_ids = sorted(self._added, reverse=reverse)
        if after_id is not None:
            added_ids = [i for i in added_ids if (i < after_id if reverse else i > after_id)]
        if not reverse:
            start = 0 if after_id is None else max(0, after_id - PRODUCT_ID_BASE + 1)
            for index in range(start, n):
                product = self._generated(index)
                if product is not None:
                    yield product
        for product_id in added_ids:
            product = self._added.get(product_id)
            if product is not None:
                yield product
        if reverse:
            stop = n if after_id is None else min(n, max(0, after_id - PRODUCT_ID_BASE))
            for index in range(stop - 1, -1, -1):
                product = self._generated(index)
                if product is not None:
                    yield product

    def media(self, kind: str, number: int) -> MediaImage | Video | None:
        """The MediaImage or Video with that numeric id (generated ids locate their product directly)."""
        candidates: list[Product | None] = []
        index = number - FEATURED_MEDIA_ID_BASE
        if 0 <= index < self.catalog.n_products:
            candidates.append(self._generated(index))
        j = number - VARIANT_MEDIA_ID_BASE
        if 0 <= j < self.catalog.n_variants:
            candidates.append(self._generated(self.catalog.product_index_of_variant(j)))
        candidates.extend(self._overrides.values())
        candidates.extend(self._added.values())
        for product in candidates:
            for media in product.media if product is not None else ():
                if media.id == number and media.TYPENAME == kind:
                    return media
        return None

    def variant_ids(self) -> Iterator[int]:
        """Every current variant id, in product order."""
        for product in self.iter_products():
            for variant in product.variants:
                yield variant.id

    # -- writes ------------------------------------------------------------------------------------

    def _now(self, previous: int) -> int:
        """Shopify keeps second precision; a product's updatedAt still strictly increases per change."""
        return max(int(self._clock()), previous + 1)

    def _install(self, product: Product, *, touch: bool = True) -> Product:
        """Install a changed copy; `touch`: the change moves the product's updatedAt (an inventory
        change does not: only its variant's moves)."""
        if touch:
            product.updated_at = self._now(product.updated_at)
        index = self.catalog.product_index(product.id)
        if index is not None:
            self._overrides[index] = product
        else:
            self._added[product.id] = product
        self.version += 1
        return product

    def _editable_variant(self, variant_id: str | int) -> tuple[Product, Variant]:
        current = self.variant(variant_id)
        if current is None:
            raise NotFound(f"no variant {variant_id!r} in this shop")
        product = current.product.copy()
        return product, next(v for v in product.variants if v.id == current.id)

    def _editable_product(self, product_id: str | int) -> Product:
        current = self.product(product_id)
        if current is None:
            raise NotFound(f"no product {product_id!r} in this shop")
        return current.copy()

    def set_price(self, variant_id: str | int, price: str | int | Decimal,
                  compare_at_price: str | int | Decimal | None = UNSET) -> Variant:
        price = normalize_money(price)
        compare = compare_at_price if compare_at_price in (UNSET, None) else normalize_money(
            compare_at_price, "compare_at_price")
        product, variant = self._editable_variant(variant_id)
        variant.price = price
        if compare is not UNSET:
            variant.compare_at_price = compare
        self._install(product)
        variant.updated_at = product.updated_at
        return variant

    def set_inventory(self, variant_id: str | int, quantity: int) -> Variant:
        if isinstance(quantity, bool) or not isinstance(quantity, int) or abs(quantity) > 1_000_000_000:
            raise InvalidInput(f"quantity must be an integer (negative allowed), got {quantity!r}")
        product, variant = self._editable_variant(variant_id)
        variant.inventory_quantity = quantity
        # As in Shopify, an inventory change leaves the product's updatedAt as it was: only the
        # variant's (and its inventory item's) moves, so `productVariants(query: "updated_at:>…")`
        # finds it where `products(query: …)` does not.
        variant.updated_at = self._now(variant.updated_at)
        self._install(product, touch=False)
        return variant

    def set_sku(self, variant_id: str | int, sku: str | None) -> Variant:
        if sku is not None and not isinstance(sku, str):
            raise InvalidInput(f"sku must be a string or None, got {sku!r}")
        product, variant = self._editable_variant(variant_id)
        variant.sku = sku
        self._install(product)
        variant.updated_at = product.updated_at
        return variant

    def update_product(self, product_id: str | int, *, title: str | None = None, status: str | None = None,
                       vendor: str | None = None, product_type: str | None = None) -> Product:
        if title is not None and (not isinstance(title, str) or not title.strip()):
            raise InvalidInput("title must be a non-empty string")
        if status is not None and status.upper() not in PRODUCT_STATUSES:
            raise InvalidInput(f"status must be one of {', '.join(PRODUCT_STATUSES)}, got {status!r}")
        product = self._editable_product(product_id)
        if title is not None:
            product.title = title
        if status is not None:
            product.status = status.upper()
        if vendor is not None:
            product.vendor = vendor
        if product_type is not None:
            product.product_type = product_type
        self._install(product)
        for variant in product.variants:
            variant.updated_at = product.updated_at
        return product

    def delete_variant(self, variant_id: str | int) -> Product:
        """Remove one variant from its product (positions renumbered); returns the product. A product
        keeps at least one variant, as in Shopify."""
        product, variant = self._editable_variant(variant_id)
        if len(product.variants) == 1:
            raise InvalidInput(f"variant {variant.id} is its product's only variant: delete the product instead")
        kept = [v for v in product.variants if v.id != variant.id]
        for position, remaining in enumerate(kept, start=1):
            remaining.position = position
        product = dataclasses.replace(product, variants=tuple(kept))
        self._added_variants.pop(variant.id, None)
        self._added_inventory.pop(variant.inventory_item_id, None)
        self._install(product)
        for remaining in product.variants:
            remaining.updated_at = product.updated_at
        return product

    def delete_product(self, product_id: str | int) -> int:
        """Remove a product; returns its numeric id."""
        number = _numeric_id(product_id, "Product")
        index = self.catalog.product_index(number)
        if index is not None and index not in self._deleted:
            self._deleted.add(index)
            self._overrides.pop(index, None)
        elif number in self._added:
            product = self._added.pop(number)
            for variant in product.variants:
                self._added_variants.pop(variant.id, None)
                self._added_inventory.pop(variant.inventory_item_id, None)
        else:
            raise NotFound(f"no product {product_id!r} in this shop")
        self.version += 1
        return number

    def add_product(self, title: str, *, variants: int | Sequence[Mapping[str, Any]] = 1,
                    option_names: Sequence[str] | None = None, vendor: str = "Emulator Goods",
                    product_type: str = "", status: str = "ACTIVE", handle: str | None = None,
                    tags: Sequence[str] = (), published: bool = True, image: bool = True) -> Product:
        """Create a product (ids continue after the generated ones). See EmulatedShop.add_product."""
        if not isinstance(title, str) or not title.strip():
            raise InvalidInput("title must be a non-empty string")
        if status.upper() not in PRODUCT_STATUSES:
            raise InvalidInput(f"status must be one of {', '.join(PRODUCT_STATUSES)}, got {status!r}")
        specs = [{} for _ in range(variants)] if isinstance(variants, int) else [dict(s) for s in variants]
        if not 1 <= len(specs) <= 2048:
            raise InvalidInput("a product has from 1 to 2048 variants")
        for spec in specs:
            unknown = set(spec) - _VARIANT_KEYS
            if unknown:
                raise InvalidInput(f"unknown variant keys {sorted(unknown)} (allowed: {sorted(_VARIANT_KEYS)})")
        default_values = [("Default Title",)] if len(specs) == 1 else [(f"Variant {n}",) for n in range(1, len(specs) + 1)]
        values = [tuple(s.get("options") or default_values[n]) for n, s in enumerate(specs)]
        names = tuple(option_names or (("Title",) if values == [("Default Title",)] else ("Variant",)))
        if any(len(v) != len(names) for v in values) or len(set(values)) != len(values):
            raise InvalidInput(f"each variant needs {len(names)} distinct option value(s) for options {names}")
        now = int(self._clock())
        product_id = self._next_product_id
        self._next_product_id += 1
        options = tuple(
            ProductOption(OPTION_ID_BASE + 4 * (product_id - PRODUCT_ID_BASE) + n, name, n + 1,
                          tuple(dict.fromkeys(v[n] for v in values)))
            for n, name in enumerate(names)
        )
        slug = handle or f"{slugify(title) or 'product'}-{product_id - PRODUCT_ID_BASE + 1}"
        built: list[Variant] = []
        for position, (spec, option_values) in enumerate(zip(specs, values), start=1):
            j = self._next_variant
            self._next_variant += 1
            variant_id = VARIANT_ID_BASE + j
            compare = spec.get("compare_at_price")
            quantity = spec.get("inventory_quantity", 10)
            if isinstance(quantity, bool) or not isinstance(quantity, int):
                raise InvalidInput(f"inventory_quantity must be an integer, got {quantity!r}")
            built.append(Variant(
                variant_id, position, option_values, spec.get("sku", f"EMU-{variant_id}"), None,
                normalize_money(spec.get("price", "10.00")),
                None if compare is None else normalize_money(compare, "compare_at_price"), quantity,
                INVENTORY_ITEM_ID_BASE + j, self._new_image(slug, position, now) if spec.get("image") else None,
                now, now,
            ))
        product = Product(
            product_id, title, slug, vendor, product_type, status.upper(), tuple(tags), f"<p>{title}</p>", now, now,
            now if published else None, options, tuple(built), self._new_image(slug, 0, now) if image else None,
        )
        for variant in built:
            self._added_variants[variant.id] = product_id
            self._added_inventory[variant.inventory_item_id] = variant.id
        self._added[product_id] = product
        self.version += 1
        return product

    def _new_image(self, slug: str, position: int, now: int) -> MediaImage:
        self._next_media += 1
        return MediaImage(ADDED_MEDIA_ID_BASE + self._next_media,
                          f"https://cdn.shopify.com/s/files/1/0612/3456/7890/files/{slug}-{position}.jpg?v={now}",
                          slug, 1024, 1024, now)
