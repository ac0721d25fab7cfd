"""Deterministic store generation: product `i` is a pure function of `(seed, i)`, so a store of a
million variants costs one offsets array (8 bytes per product), not a million objects.

Id scheme (numeric ids as Shopify's, large; gids built from them):
- product `i`: `8_000_000_000_000 + i`;
- variant number `j` (store-wide): `44_000_000_000_000 + j`, except the variants of every product
  with `i % 10 == 3`, whose ids are `2**53 + 1 + j` (above 2^53: a float64 decoder corrupts them);
- inventory item of variant `j`: `46_000_000_000_000 + j`; one location, `LOCATION_ID`.
"""

from __future__ import annotations

import bisect
import math
import random
from array import array
from typing import Any
from urllib.parse import quote

from .errors import InvalidInput
from .models import MediaImage, Product, ProductOption, Variant, Video

PRODUCT_ID_BASE = 8_000_000_000_000
VARIANT_ID_BASE = 44_000_000_000_000
BIG_VARIANT_ID_BASE = 2**53 + 1
INVENTORY_ITEM_ID_BASE = 46_000_000_000_000
OPTION_ID_BASE = 10_000_000_000_000
FEATURED_MEDIA_ID_BASE = 30_000_000_000_000
VARIANT_MEDIA_ID_BASE = 31_000_000_000_000
LOCATION_ID = 67_305_038_107
MAX_VARIANTS = 2_000_000

EPOCH = 1_704_067_200  # 2024-01-01T00:00:00Z
GENERATED_UNTIL = 1_764_460_800  # 2025-11-30T00:00:00Z: every generated timestamp is earlier
_CDN = "https://cdn.shopify.com/s/files/1/0612/3456/7890/files/"

SIZES = ("XS", "S", "M", "L", "XL", "XXL")
COLORS = ("Black", "White", "Navy", "Forest Green", "Crème", "Bordeaux", "Sand", "Charcoal")
# (product type, nouns, option 1, option 2): every pair offers at least 20 combinations.
CATEGORIES: tuple[tuple[str, tuple[str, ...], tuple[str, tuple[str, ...]], tuple[str, tuple[str, ...]]], ...] = (
    ("T-Shirt", ("Tee", "T-Shirt", "Crew Neck Tee", "Pocket Tee"), ("Size", SIZES), ("Color", COLORS)),
    ("Hoodie", ("Hoodie", "Zip Hoodie", "Sweatshirt"), ("Size", SIZES), ("Color", COLORS)),
    ("Sneakers", ("Sneakers", "Runner", "High-Top"), ("Size", tuple(f"EU {n}" for n in range(36, 47))),
     ("Color", ("White", "Black", "Grey"))),
    ("Mug", ("Mug", "Tasse", "Espresso Cup"), ("Color", COLORS), ("Size", ("8 oz", "12 oz", "16 oz"))),
    ("Tea", ("Tea", "Matcha", "Infusion"), ("Weight", ("50 g", "100 g", "250 g", "500 g", "1 kg")),
     ("Packaging", ("Tin", "Pouch", "Gift Box", "Refill", "Sample"))),
    ("Candle", ("Candle", "Bougie", "Soy Candle"), ("Scent", ("Lavender", "Fig", "Cedar", "Vanille", "Yuzu", "Sea Salt")),
     ("Size", ("Small", "Medium", "Large", "XL"))),
    ("Poster", ("Print", "Poster", "Art Print"), ("Size", ("A4", "A3", "A2", "50×70 cm", "70×100 cm")),
     ("Frame", ("No frame", "Black", "White", "Oak"))),
    ("Backpack", ("Backpack", "Daypack", "Rucksack"), ("Color", COLORS), ("Capacity", ("15 L", "20 L", "28 L"))),
)
ADJECTIVES = (
    "Classic", "Everyday", "Organic", "Vintage", "Minimalist", "Handmade", "Premium", "Nordic", "Élégant",
    "Rustic", "Coastal", "Urban", "Artisan", "Bohème", "Lightweight", "Heritage", "Señorita", "Smørrebrød",
)
MATERIALS = ("Cotton", "Linen", "Merino", "Ceramic", "Stoneware", "Bamboo", "Recycled", "Café Crème", "Suède")
UNICODE_TITLES = ("抹茶 ティーセット", "手作り 陶器マグ", "丝绸 围巾", "한정판 머그컵", "Чайный набор", "Κεραμική Κούπα")
EMOJI = (" 🌈", " ☕", " 🔥", " ✨", " 🌿")
SUFFIXES = (" – Édition Limitée", " (2-Pack)", " — Holiday Edition")
VENDORS = (
    ("Northwind Outfitters", "NWO"), ("Atelier Lumière", "ATL"), ("Kōbō Ceramics", "KOB"), ("Bergström & Co.", "BRG"),
    ("Maple Leaf Goods", "MPL"), ("Sakura Studio", "SKR"), ("Café Olé", "CFO"), ("Blue Fjord", "BLF"),
    ("Urban Nomad", "URN"), ("Großmann Werkstatt", "GRW"), ("Pueblo Textiles", "PBT"), ("Nordlicht", "NRL"),
)
TAGS = ("new", "bestseller", "sale", "eco", "gift", "summer", "winter", "limited", "vegan", "fair-trade")


def _mix(seed: int, index: int) -> int:
    """splitmix64 of (seed, index): a cheap, well-spread hash."""
    z = (seed * 0x9E3779B97F4A7C15 + index * 0xBF58476D1CE4E5B9 + 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return z ^ (z >> 31)


def _variant_count(seed: int, index: int) -> int:
    """Mostly 10; 10% single-variant products; the rest 2..20."""
    r = _mix(seed, index)
    bucket = r % 100
    if bucket < 70:
        return 10
    if bucket < 80:
        return 1
    return 2 + (r >> 8) % 19


def slugify(text: str) -> str:
    out, dash = [], False
    for ch in text.lower():
        if ch.isalnum():
            out.append(ch)
            dash = False
        elif not dash and out:
            out.append("-")
            dash = True
    return "".join(out).strip("-")


def money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _below(rng: random.Random, n: int) -> int:
    """rng.randrange(n), three times cheaper (the bias is irrelevant here)."""
    return int(rng.random() * n)


def _pick(rng: random.Random, items: tuple[Any, ...]) -> Any:
    return items[int(rng.random() * len(items))]


def _between(rng: random.Random, low: int, high: int) -> int:
    return low + int(rng.random() * (high - low + 1))


def _price_cents(rng: random.Random) -> int:
    r = rng.random()
    if r < 0.03:
        return _pick(rng, (10, 25, 50, 99))
    if r < 0.65:
        dollars = _between(rng, 5, 99)
    elif r < 0.92:
        dollars = _between(rng, 100, 499)
    else:
        dollars = _between(rng, 500, 1500)
    return dollars * 100 + _pick(rng, (99, 0, 50, 95, 0, 99))


class GeneratedCatalog:
    """The generated part of a store: `variants` variants over as many products as they need."""

    def __init__(self, seed: int, variants: int) -> None:
        if not isinstance(variants, int) or not 0 <= variants <= MAX_VARIANTS:
            raise InvalidInput(f"variants must be an integer from 0 to {MAX_VARIANTS:,}, got {variants!r}")
        self.seed = seed
        self.n_variants = variants
        offsets = array("q", [0])
        total, index = 0, 0
        while total < variants:
            total = min(variants, total + _variant_count(seed, index))
            offsets.append(total)
            index += 1
        self._offsets = offsets
        self.n_products = index

    def variant_range(self, index: int) -> range:
        return range(self._offsets[index], self._offsets[index + 1])

    def product_index_of_variant(self, j: int) -> int:
        return bisect.bisect_right(self._offsets, j) - 1

    @staticmethod
    def has_big_ids(index: int) -> bool:
        return index % 10 == 3

    def variant_id(self, index: int, j: int) -> int:
        return (BIG_VARIANT_ID_BASE if self.has_big_ids(index) else VARIANT_ID_BASE) + j

    def locate_variant(self, variant_id: int) -> tuple[int, int] | None:
        """(product index, variant number) of a generated variant id, else None."""
        for base, big in ((BIG_VARIANT_ID_BASE, True), (VARIANT_ID_BASE, False)):
            j = variant_id - base
            if 0 <= j < self.n_variants:
                index = self.product_index_of_variant(j)
                if self.has_big_ids(index) == big:
                    return index, j
        return None

    def locate_inventory_item(self, inventory_item_id: int) -> tuple[int, int] | None:
        j = inventory_item_id - INVENTORY_ITEM_ID_BASE
        if 0 <= j < self.n_variants:
            return self.product_index_of_variant(j), j
        return None

    def product_index(self, product_id: int) -> int | None:
        index = product_id - PRODUCT_ID_BASE
        return index if 0 <= index < self.n_products else None

    def product(self, index: int) -> Product:
        """Product `index`, built afresh (callers may keep it: nothing else references it)."""
        rng = random.Random(_mix(self.seed ^ 0x5DEECE66D, index))
        product_type, nouns, (name1, values1), (name2, values2) = CATEGORIES[_below(rng, len(CATEGORIES))]
        vendor, code = VENDORS[_below(rng, len(VENDORS))]
        title = self._title(rng, nouns)
        handle = f"{slugify(title) or 'product'}-{index + 1}"
        status = self._status(rng)
        created = EPOCH + _below(rng, 600 * 86400)
        updated = min(GENERATED_UNTIL - 1, created + _below(rng, 60 * 86400))
        published_at = None
        if status in ("ACTIVE", "UNLISTED") and rng.random() < 0.92:
            published_at = min(updated, created + _below(rng, 2 * 86400))

        js = self.variant_range(index)
        count = len(js)
        if count == 1:
            option_specs: list[tuple[str, tuple[str, ...]]] = [("Title", ("Default Title",))]
            combos: list[tuple[str, ...]] = [("Default Title",)]
        else:
            k1 = min(len(values1), count)
            k2 = math.ceil(count / k1)
            start = _below(rng, len(values1) - k1 + 1)
            picked1 = values1[start:start + k1]
            offset = _below(rng, len(values2))
            picked2 = tuple(values2[p] for p in sorted((offset + t) % len(values2) for t in range(k2)))
            combos = [(a, b) for a in picked1 for b in picked2][:count] if k2 > 1 else [(a,) for a in picked1]
            used1 = tuple(dict.fromkeys(c[0] for c in combos))
            option_specs = [(name1, used1)]
            if k2 > 1:
                option_specs.append((name2, tuple(dict.fromkeys(c[1] for c in combos))))
        options = tuple(
            ProductOption(OPTION_ID_BASE + index * 4 + n, name, n + 1, values)
            for n, (name, values) in enumerate(option_specs)
        )

        base = _price_cents(rng)
        step = _pick(rng, (0, 0, 0, 200, 500)) if base >= 500 else 0
        compare_ratio = _pick(rng, (1.2, 1.25, 1.5)) if rng.random() < 0.3 else None
        per_variant_images = count > 1 and rng.random() < 0.3
        big = self.has_big_ids(index)
        variant_base = BIG_VARIANT_ID_BASE if big else VARIANT_ID_BASE
        slug_ascii = quote(handle.encode("utf-8"), safe="-")
        variants = []
        for pos, (j, values) in enumerate(zip(js, combos), start=1):
            cents = base + step * values1.index(values[0]) if step and values[0] in values1 else base
            compare = None
            if compare_ratio is not None:
                compare = money(max(cents + 100, int(cents * compare_ratio) // 100 * 100 + 99))
            r = rng.random()
            if r < 0.10:
                quantity = 0
            elif r < 0.13:
                quantity = -_between(rng, 1, 12)
            else:
                quantity = _between(rng, 1, 250)
            r = rng.random()
            if r < 0.01:
                sku: str | None = None
            elif r < 0.02:
                sku = ""
            elif r < 0.025:
                sku = f"{code} {index}/{pos}"
            elif r < 0.03:
                sku = f"{code}.{index}#{pos}"
            else:
                sku = f"{code}-{index:06d}-{pos:02d}"
            barcode = f"{_between(rng, 10**12, 10**13 - 1)}" if rng.random() < 0.4 else None
            image = None
            if per_variant_images:
                image = MediaImage(VARIANT_MEDIA_ID_BASE + j, f"{_CDN}{slug_ascii}-{pos}.jpg?v={created}",
                                   f"{title} – {' / '.join(values)}", 1200, 1200, created)
            variants.append(Variant(
                variant_base + j, pos, values, sku, barcode, money(cents), compare, quantity,
                INVENTORY_ITEM_ID_BASE + j, image, created, updated,
            ))

        featured: MediaImage | Video | None = None
        r = rng.random()
        if r < 0.02:
            featured = Video(FEATURED_MEDIA_ID_BASE + index, f"{_CDN}preview_images/{slug_ascii}.jpg?v={created}",
                             title, created)
        elif r < 0.9:
            featured = MediaImage(FEATURED_MEDIA_ID_BASE + index, f"{_CDN}{slug_ascii}.jpg?v={created}", title,
                                  2048, 2048, created)
        offset = _below(rng, len(TAGS))
        tags = tuple(TAGS[(offset + 3 * t) % len(TAGS)] for t in range(_below(rng, 4)))
        return Product(
            PRODUCT_ID_BASE + index, title, handle, vendor, product_type, status, tags,
            f"<p>{title} by {vendor}.</p>", created, updated, published_at, options, tuple(variants), featured,
        )

    @staticmethod
    def _title(rng: random.Random, nouns: tuple[str, ...]) -> str:
        r = rng.random()
        if r < 0.03:
            return UNICODE_TITLES[_below(rng, len(UNICODE_TITLES))]
        parts = [ADJECTIVES[_below(rng, len(ADJECTIVES))]]
        if rng.random() < 0.5:
            parts.append(MATERIALS[_below(rng, len(MATERIALS))])
        parts.append(nouns[_below(rng, len(nouns))])
        title = " ".join(parts)
        if r < 0.06:
            title += EMOJI[_below(rng, len(EMOJI))]
        elif r < 0.11:
            title += SUFFIXES[_below(rng, len(SUFFIXES))]
        return title

    @staticmethod
    def _status(rng: random.Random) -> str:
        r = rng.random()
        if r < 0.85:
            return "ACTIVE"
        if r < 0.92:
            return "DRAFT"
        if r < 0.97:
            return "ARCHIVED"
        return "UNLISTED"
