"""`search` and the filters, read through each store's indexes (catalog_store.memory_index, the MongoDB
store's trigrams), answer what a pass over the catalog with `matches` answers, through writes,
rewrites and deletes; the rule they rest on (catalog_store.search_text) is `re.IGNORECASE`'s."""

from __future__ import annotations

import random
import re
from decimal import Decimal

from catalog_store.filters import check_filter
from catalog_store.items import CatalogItem
from catalog_store.memory_catalog import matches
from catalog_store.models import ItemFilter
from catalog_store.mongo.store import MongoCatalogStore
from catalog_store.search_text import fold, item_grams, query_grams, words
from catalog_store.store import CatalogStore
from tests.catalog_store.helpers import CATALOG, SHOP, at, make_item
from tests.conftest import MongoStoreFactory


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


async def _every_item(store: CatalogStore) -> list[CatalogItem]:
    page = await store.list_items(CATALOG, first=250)
    found = list(page.items)
    while page.has_next_page:
        page = await store.list_items(CATALOG, first=250, after=found[-1].id)
        found += page.items
    return found


async def test_filtered_pages_match_a_pass_over_the_catalog(store: CatalogStore) -> None:
    rng = random.Random(13)
    size = 4 if store.persistent is False else 9
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
        every = await _every_item(store)
        for item_filter in filters:
            checked = check_filter(item_filter)
            expected = [i.id for i in every if matches(checked, i)]
            page = await store.list_items(CATALOG, first=size, filter=item_filter)
            assert page.total_count == len(expected), item_filter
            seen = [i.id for i in page.items]
            while page.has_next_page:
                page = await store.list_items(CATALOG, first=size, after=seen[-1], filter=item_filter)
                seen += [i.id for i in page.items]
            assert seen == expected, item_filter


def test_an_items_trigrams_hold_every_trigram_of_a_text_it_matches() -> None:
    """`query_grams` is a necessary condition: wherever the pattern finds the text in an item, the
    item's stored trigrams include the text's (the MongoDB store's index relies on it)."""
    rng = random.Random(7)
    for n in range(300):
        item = _random_item(rng, n, 0)
        assert isinstance(item, CatalogItem)
        held = set(item_grams(item))
        for text in SEARCHES + ["Blue Mug", "Mug-7", "KETTLE", "xl MUG", "istanbul MAP"]:
            if matches(check_filter(ItemFilter(search=text)), item):
                assert set(query_grams(text)) <= held, (text, item.product_title, item.variant_title, item.sku)
    assert query_grams("mug 1") == ["mug"]
    assert query_grams("XL") == [] and query_grams("") == []
    assert query_grams("MUGS blue") == ["blu", "lue", "mug", "ugs"]  # longest word first, then alphabetically
    assert query_grams("a tea MUGS") == ["mug", "ugs", "tea"]


async def test_items_stored_before_the_search_index_are_found_after_a_restart(
        mongo_store_factory: MongoStoreFactory) -> None:
    """A catalog written by a version without `_grams` gets them at the next start-up, once."""
    old = await mongo_store_factory()
    await old.ensure_catalog(CATALOG, SHOP, "Demo Store")
    await old.write_items(CATALOG, [make_item(f"v{n}", product=str(n), title=f"Blue Mug {n}", sku=f"MUG-{n}")
                                    for n in range(30)] + [make_item("v99", product="99", title="Tea pot")])
    items = old.database["items"]
    await items.update_many({}, {"$unset": {"_grams": ""}})
    await old.database["catalogs"].update_one({"_id": CATALOG}, {"$unset": {"search_grams": ""}})
    assert (await old.list_items(CATALOG, filter=ItemFilter(search="blue mug"))).total_count == 0, \
        "without trigrams the index finds nothing: the backfill below is what makes them searchable"

    restarted = await mongo_store_factory(old.database.name)
    page = await restarted.list_items(CATALOG, first=50, filter=ItemFilter(search="blue mug"))
    assert page.total_count == 30 and len(page.items) == 30
    assert [i.id for i in (await restarted.list_items(CATALOG, filter=ItemFilter(search="POT"))).items] == ["v99"]
    assert await items.count_documents({"_grams": {"$exists": False}}) == 0
    assert (await restarted.database["catalogs"].find_one({"_id": CATALOG}) or {}).get("search_grams") is True
    first = await items.find_one({"_id": f"{CATALOG}/v1"})
    assert first is not None and "mug" in first["_grams"] and "blu" in first["_grams"]
    listed = await restarted.get_item(CATALOG, "v1")
    assert listed is not None and listed.product_title == "Blue Mug 1"


async def test_a_new_catalog_needs_no_backfill(mongo_store_factory: MongoStoreFactory) -> None:
    store: MongoCatalogStore = await mongo_store_factory()
    await store.ensure_catalog(CATALOG, SHOP, "Demo Store")
    await store.write_items(CATALOG, [make_item("v1", product="1", title="Blue Mug", sku=None)])
    doc = await store.database["items"].find_one({"_id": f"{CATALOG}/v1"})
    assert doc is not None and doc["_grams"] == ["blu", "lue", "mug"]
    assert (await store.database["catalogs"].find_one({"_id": CATALOG}) or {}).get("search_grams") is True
