"""The memory store's filter and search indexes (catalog_store.memory_index) answer what a pass over
the catalog with `matches` answers, through writes, rewrites and deletes."""

from __future__ import annotations

import random
import re
from decimal import Decimal

from catalog_store.filters import check_filter
from catalog_store.memory import MemoryCatalogStore
from catalog_store.memory_catalog import matches
from catalog_store.memory_index import fold, words
from catalog_store.models import ItemFilter
from tests.catalog_store.helpers import CATALOG, SHOP, at, make_item


def test_folding_is_how_re_ignores_case() -> None:
    """Every character folds to one that `re.IGNORECASE` finds equal to it, and characters that fold
    differently are never equal (checked where case lives: Latin, Greek, Cyrillic and more)."""
    for code in range(0x10000):
        if 0xD800 <= code < 0xE000:
            continue
        char = chr(code)
        folded = fold(char)
        assert len(folded) == 1
        assert re.fullmatch(re.escape(folded), char, re.IGNORECASE), hex(code)
        assert re.fullmatch(re.escape(char), folded, re.IGNORECASE), hex(code)
    cased = [chr(c) for c in range(0x41, 0x530)] + ["\u1e9b", "\u1e61", "\u1fbe", "\u2126", "\u212a", "\u212b"]
    for char in cased:
        pattern = re.compile(re.escape(char), re.IGNORECASE)
        for other in cased:
            assert (pattern.fullmatch(other) is not None) == (fold(char) == fold(other)), (char, other)


def test_words_are_runs_of_letters_and_digits() -> None:
    assert words("Blue MUG (wool), size-XL_2") == ["blue", "mug", "wool", "size", "xl", "2"]
    assert words("İstanbul ſtraße") == ["istanbul", "straße"]


TITLES = ["Blue Mug", "red mug", "SMUG cat", "Mugwort tea", "Straße ſign", "İstanbul map", "Kelvin \u212aettle",
          "σίγμα ΣΊΓΜΑ", "wool (blue)", "a.b c-d", "Tea_Mug", "mugmug"]
SEARCHES = ["mug", "MUG", "ug", "u", "blue mug", "(blue)", "ſ", "s", "STRASSE", "straße", "istanbul", "kettle",
            "\u212a", "σίγ", "ΣΊΓΜΑ", ".", "a.b", "c-d", "_", "tea_mug", " ", "", "mugm", "gmu", "nothing"]


def _random_item(rng: random.Random, n: int, updated: float) -> object:
    return make_item(
        f"v{n:03d}", product=str(n // 3), updated=updated, id=rng.choice([None, None, f"sku-{n:03d}-{updated}"]),
        title=rng.choice(TITLES), variant_title=rng.choice([None, "M", "XL mug", "Tea"]),
        sku=rng.choice([None, f"SKU-{n}", "MUG-7"]), status=rng.choice(["active", "draft"]),
        vendor=rng.choice(["Acme", "Beta", None]), product_type=rng.choice(["Shirt", "Mug", None]),
        price=rng.choice(["9.99", "10", "10.00", "25.5", "1E+1", "0"]), quantity=rng.choice([None, 0, 1, 7]),
    )


async def test_filtered_pages_match_a_pass_over_the_catalog() -> None:
    rng = random.Random(13)
    store = MemoryCatalogStore()
    await store.ensure_catalog(CATALOG, SHOP, "Demo Store")
    await store.write_items(CATALOG, [_random_item(rng, n, 0) for n in range(60)])  # type: ignore[misc]
    filters = [ItemFilter(search=s) for s in SEARCHES] + [
        ItemFilter(vendor="Beta"), ItemFilter(status="draft", in_stock=False), ItemFilter(in_stock=True),
        ItemFilter(price_min=Decimal("10"), price_max=Decimal("10")), ItemFilter(price_max=Decimal("20"), vendor="Acme"),
        ItemFilter(product_type="Mug", search="mug", price_min=Decimal("5")), ItemFilter(vendor="Nobody"),
        ItemFilter(search="blue mug", in_stock=True), ItemFilter(price_min=Decimal("100")),
    ]
    for round in range(6):
        if round:  # rewrite some items (new titles, prices...), delete some products, add new ones
            rewritten = [_random_item(rng, n, round) for n in rng.sample(range(60 + round * 5), 20)]
            await store.write_items(CATALOG, rewritten)  # type: ignore[arg-type]
            for product in rng.sample(range(20 + round * 2), 2):
                await store.delete_product(CATALOG, str(product), at(round + 0.5))
            await store.write_items(CATALOG, [_random_item(rng, 60 + round * 5 + k, round + 1) for k in range(5)])  # type: ignore[misc]
        every = sorted((e.item for e in store._catalogs[CATALOG].entries.values()), key=lambda i: i.id)
        for item_filter in filters:
            checked = check_filter(item_filter)
            expected = [i.id for i in every if matches(checked, i)]
            page = await store.list_items(CATALOG, first=4, filter=item_filter)
            assert page.total_count == len(expected), item_filter
            seen = [i.id for i in page.items]
            while page.has_next_page:
                page = await store.list_items(CATALOG, first=4, after=seen[-1], filter=item_filter)
                seen += [i.id for i in page.items]
            assert seen == expected, item_filter
