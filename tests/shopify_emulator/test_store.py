"""The generated store and its run-time changes (pure: no network)."""

from __future__ import annotations

import re
import time
from decimal import Decimal

import pytest

from shopify_emulator.errors import InvalidInput, NotFound, Unsupported
from shopify_emulator.generate import GENERATED_UNTIL, GeneratedCatalog, slugify
from shopify_emulator.search import PRODUCT_SEARCH, parse_search
from shopify_emulator.store import ProductStore, normalize_money

MONEY = re.compile(r"^\d+\.\d{2}$")


def all_products(store: ProductStore):
    return list(store.iter_products())


def test_variant_count_is_exact_and_products_hold_1_to_20_variants():
    for total in (3, 10, 57, 1000):
        store = ProductStore(seed=1, variants=total)
        products = all_products(store)
        assert sum(len(p.variants) for p in products) == total
        assert all(1 <= len(p.variants) <= 20 for p in products)
    sizes = [len(p.variants) for p in all_products(ProductStore(seed=1, variants=5000))]
    assert sizes.count(10) > len(sizes) / 2
    assert 1 in sizes and max(sizes) > 10


def test_same_seed_same_store_different_seed_different_store():
    a = [(p.title, [(v.id, v.sku, v.price) for v in p.variants]) for p in all_products(ProductStore(3, 300))]
    b = [(p.title, [(v.id, v.sku, v.price) for v in p.variants]) for p in all_products(ProductStore(3, 300))]
    c = [(p.title, [(v.id, v.sku, v.price) for v in p.variants]) for p in all_products(ProductStore(4, 300))]
    assert a == b
    assert a != c


def test_generated_data_covers_the_awkward_cases():
    products = all_products(ProductStore(seed=1, variants=20_000))
    variants = [v for p in products for v in p.variants]
    statuses = {p.status for p in products}
    assert statuses == {"ACTIVE", "DRAFT", "ARCHIVED", "UNLISTED"}
    assert sum(p.status == "ACTIVE" for p in products) > 0.7 * len(products)
    assert any(any(ord(ch) > 0x2E80 for ch in p.title) for p in products), "CJK titles"
    assert any(any(ord(ch) > 0x1F000 for ch in p.title) for p in products), "emoji titles"
    assert any("é" in p.title.lower() for p in products), "accents"
    assert all(MONEY.match(v.price) for v in variants)
    assert any(v.price.startswith("0.") for v in variants) and any(Decimal(v.price) >= 1000 for v in variants)
    assert any(v.compare_at_price is None for v in variants) and any(v.compare_at_price for v in variants)
    assert all(Decimal(v.compare_at_price) > Decimal(v.price) for v in variants if v.compare_at_price)
    assert any(v.inventory_quantity == 0 for v in variants) and any(v.inventory_quantity < 0 for v in variants)
    skus = [v.sku for v in variants]
    assert None in skus and "" in skus
    assert any(s and not re.match(r"^[A-Za-z0-9_-]+$", s) for s in skus), "ids invalid for a catalog"
    present = [s for s in skus if s]
    assert len(present) == len(set(present)), "generated SKUs are unique"
    assert any(v.id > 2**53 for v in variants) and any(v.id < 2**53 for v in variants)
    assert sum(p.featured_media is not None for p in products) > 0.8 * len(products)
    assert any(v.image is not None for v in variants)
    published = [p for p in products if p.published_at is not None]
    assert published and all(p.status in ("ACTIVE", "UNLISTED") for p in published)
    assert all(p.updated_at < GENERATED_UNTIL for p in products)
    assert len({p.handle for p in products}) == len(products)
    single = next(p for p in products if len(p.variants) == 1)
    assert single.options[0].name == "Title" and single.variants[0].title == "Default Title"
    multi = next(p for p in products if len(p.variants) == 10)
    assert len({v.option_values for v in multi.variants}) == 10
    assert all(len(v.option_values) == len(multi.options) for v in multi.variants)


def test_lookups_by_id_gid_and_inventory_item():
    store = ProductStore(seed=2, variants=500)
    big = next(v for p in all_products(store) for v in p.variants if v.id > 2**53)
    assert store.variant(big.id).sku == big.sku
    assert store.variant(f"gid://shopify/ProductVariant/{big.id}").id == big.id
    assert store.variant(str(big.id)).id == big.id
    assert store.variant_by_inventory_item(big.inventory_item_id).id == big.id
    assert store.product(big.product.gid).id == big.product.id
    assert store.variant(big.id + 10**9) is None
    assert store.variant("gid://shopify/Product/1") is None
    assert store.product("not an id") is None


def test_changes_are_copy_on_write_and_bump_updated_at_and_version():
    store = ProductStore(seed=1, variants=100, clock=lambda: 1_800_000_000)
    before = store.variant(store.catalog.variant_id(0, 0))
    version = store.version
    changed = store.set_price(before.id, "12.5", compare_at_price="20")
    assert (changed.price, changed.compare_at_price) == ("12.50", "20.00")
    assert before.price != "12.50", "objects already handed out never change"
    assert store.variant(before.id).price == "12.50"
    assert changed.product.updated_at == changed.updated_at == 1_800_000_000
    again = store.set_inventory(before.id, -3)
    assert again.product.updated_at == 1_800_000_000, "an inventory change leaves the product's updatedAt"
    assert again.updated_at == 1_800_000_001, "the variant's updatedAt strictly increases"
    assert again.price == "12.50" and again.inventory_quantity == -3
    assert store.version == version + 2
    assert store.set_price(before.id, "1.00", compare_at_price=None).compare_at_price is None


def test_bad_changes_are_refused_and_change_nothing():
    store = ProductStore(seed=1, variants=50)
    variant_id = store.catalog.variant_id(0, 0)
    version = store.version
    for bad in ("abc", "-1", "1.234", "", None, True):
        with pytest.raises(InvalidInput):
            store.set_price(variant_id, bad)
    with pytest.raises(InvalidInput):
        store.set_inventory(variant_id, "5")
    with pytest.raises(NotFound):
        store.set_price(123, "1.00")
    with pytest.raises(InvalidInput):
        store.update_product(8_000_000_000_000, status="GONE")
    with pytest.raises(NotFound):
        store.delete_product(7)
    assert store.version == version


def test_delete_and_add_products():
    store = ProductStore(seed=1, variants=50)
    first = all_products(store)[0]
    assert store.delete_product(first.gid) == first.id
    assert store.product(first.id) is None and store.variant(first.variants[0].id) is None
    assert first.id not in [p.id for p in all_products(store)]
    with pytest.raises(NotFound):
        store.delete_product(first.id)
    added = store.add_product("Nouveau Thé 🍵", variants=[{"price": "4", "sku": "TEA-1", "options": ("S",)},
                                                         {"price": "6.5", "options": ("L",)}],
                              option_names=["Size"])
    assert all_products(store)[-1].id == added.id
    assert [v.price for v in added.variants] == ["4.00", "6.50"]
    assert store.variant(added.variants[1].id).sku == f"EMU-{added.variants[1].id}"
    assert store.variant_by_inventory_item(added.variants[0].inventory_item_id).id == added.variants[0].id
    with pytest.raises(InvalidInput):
        store.add_product("x", variants=[{"colour": "red"}])
    store.delete_product(added.id)
    assert store.variant(added.variants[0].id) is None


def test_delete_variant_keeps_the_rest_of_the_product():
    store = ProductStore(seed=1, variants=50)
    product = next(p for p in all_products(store) if len(p.variants) >= 3)
    gone = product.variants[1]
    changed = store.delete_variant(gone.gid)
    assert [v.id for v in changed.variants] == [product.variants[0].id, *(v.id for v in product.variants[2:])]
    assert [v.position for v in changed.variants] == list(range(1, len(product.variants)))
    assert changed.updated_at > product.updated_at and all(v.updated_at == changed.updated_at for v in changed.variants)
    assert store.variant(gone.id) is None and store.variant_by_inventory_item(gone.inventory_item_id) is None
    assert gone.id not in list(store.variant_ids())
    single = store.add_product("Solo", variants=1)
    with pytest.raises(InvalidInput, match="only variant"):
        store.delete_variant(single.variants[0].id)
    with pytest.raises(NotFound):
        store.delete_variant(gone.id)


def test_iteration_after_id_reverse_and_changed_only():
    store = ProductStore(seed=1, variants=200, clock=lambda: 1_900_000_000)
    ids = [p.id for p in all_products(store)]
    assert [p.id for p in store.iter_products(after_id=ids[3])] == ids[4:]
    assert [p.id for p in store.iter_products(reverse=True)] == ids[::-1]
    assert [p.id for p in store.iter_products(reverse=True, after_id=ids[3])] == ids[:3][::-1]
    store.update_product(ids[5], title="Renamed")
    added = store.add_product("New")
    changed = [p.id for p in store.iter_products(updated_since=GENERATED_UNTIL)]
    assert changed == [ids[5], added.id]


def test_money_normalisation():
    assert normalize_money("19.99") == "19.99"
    assert normalize_money("0.1") == "0.10"
    assert normalize_money(1200) == "1200.00"
    assert normalize_money(Decimal("3")) == "3.00"


def test_search_syntax():
    store = ProductStore(seed=1, variants=300)
    products = all_products(store)
    draft = parse_search("status:draft,archived", PRODUCT_SEARCH)
    assert {p.status for p in products if draft.matches(p)} <= {"DRAFT", "ARCHIVED"}
    since = parse_search("updated_at:>'2030-01-01T00:00:00Z'", PRODUCT_SEARCH)
    assert not any(since.matches(p) for p in products) and since.updated_since == 1_893_456_001
    vendor = products[0].vendor
    assert all(p.vendor == vendor for p in products if parse_search(f'vendor:"{vendor}"', PRODUCT_SEARCH).matches(p))
    negated = parse_search(f"-id:{products[0].id}", PRODUCT_SEARCH)
    assert not negated.matches(products[0]) and negated.matches(products[1])
    for bad in ("status:active OR status:draft", "colour:red", "updated_at:>yesterday"):
        with pytest.raises(Unsupported):
            parse_search(bad, PRODUCT_SEARCH)


def test_slugify_keeps_unicode_letters():
    assert slugify("Élégant Cotton Tee – Édition Limitée 🌈") == "élégant-cotton-tee-édition-limitée"
    assert slugify("抹茶 ティーセット") == "抹茶-ティーセット"


def test_generation_speed_100k_variants():
    """Not asserted (timing lives in bench/): printed for the record."""
    start = time.perf_counter()
    catalog = GeneratedCatalog(seed=1, variants=100_000)
    count = sum(len(catalog.product(i).variants) for i in range(catalog.n_products))
    elapsed = time.perf_counter() - start
    assert count == 100_000
    print(f"\ngenerated 100,000 variants ({catalog.n_products:,} products) in {elapsed:.2f} s")
