"""JSONL lines of the products bulk query → catalog items (pure: literal lines, no network)."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest

from bulk.mapping.assemble import Assembler, Batch
from bulk.mapping.variants import (
    PRODUCT_PREFIX,
    UNKNOWN_PRODUCT,
    VARIANT_PREFIX,
    BulkLine,
    LineError,
    VariantImage,
    gid_number,
    product_record,
    variant_item,
)
from catalog_store.items import CatalogItem, Identifier

SHOP = "demo.myshopify.com"
STORE = "Demo Store"

PRODUCT = (
    '{"id":"gid://shopify/Product/9007199254740993","legacyResourceId":"9007199254740993",'
    '"title":"Café Crème Shirt ☕","handle":"cafe-creme-shirt","vendor":"Acme","productType":"Shirts",'
    '"status":"ACTIVE","updatedAt":"2026-01-15T10:20:30Z","publishedAt":"2025-12-01T00:00:00Z",'
    '"onlineStoreUrl":null,"options":[{"name":"Size"},{"name":"Color"}],'
    '"featuredMedia":{"preview":{"image":{"url":"https://cdn.shopify.com/s/files/shirt.jpg"}}}}'
)
VARIANT = (
    '{"id":"gid://shopify/ProductVariant/18014398509481985","legacyResourceId":"18014398509481985",'
    '"title":"M / Black","sku":"SHIRT-M-BLK","price":"0.10","compareAtPrice":"19.90",'
    '"inventoryQuantity":7,"selectedOptions":[{"name":"Size","value":"M"},{"name":"Color","value":"Black"}],'
    '"inventoryItem":{"id":"gid://shopify/InventoryItem/45000000000000001"},'
    '"__parentId":"gid://shopify/Product/9007199254740993"}'
)
VARIANT_NO_SKU = (
    '{"id":"gid://shopify/ProductVariant/2","title":"L / Black","sku":"","price":"12.00","compareAtPrice":null,'
    '"inventoryQuantity":0,"selectedOptions":[{"name":"Color","value":"Black"},{"name":"Size","value":"L"}],'
    '"inventoryItem":{"id":"gid://shopify/InventoryItem/3"},"__parentId":"gid://shopify/Product/9007199254740993"}'
)
DRAFT_PRODUCT = (
    '{"id":"gid://shopify/Product/5","title":"Draft thing","handle":"draft-thing","vendor":null,'
    '"productType":"","status":"DRAFT","updatedAt":"2026-01-02T00:00:00Z","publishedAt":null,'
    '"onlineStoreUrl":null,"options":[{"name":"Title"}],"featuredMedia":null}'
)
DRAFT_VARIANT = (
    '{"id":"gid://shopify/ProductVariant/6","title":"Default Title","sku":null,"price":"5","compareAtPrice":null,'
    '"inventoryQuantity":null,"selectedOptions":[{"name":"Title","value":"Default Title"}],'
    '"inventoryItem":{"id":"gid://shopify/InventoryItem/7"},"__parentId":"gid://shopify/Product/5"}'
)
MEDIA = (
    '{"id":"gid://shopify/MediaImage/11","image":{"url":"https://cdn.shopify.com/s/files/m-black.jpg"},'
    '"__parentId":"gid://shopify/ProductVariant/18014398509481985"}'
)

DECODER = msgspec.json.Decoder(BulkLine)


def lines(*raw: str) -> list[BulkLine]:
    return [DECODER.decode(r) for r in raw]


def assemble(
    *raw: str, identifier: Identifier = Identifier.SKU, batch_size: int = 100, hold_batches: int = 0
) -> tuple[list[Batch], Assembler, list[tuple[int, str]]]:
    bad: list[tuple[int, str]] = []
    assembler = Assembler(
        identifier=identifier, shop_domain=SHOP, store_name=STORE, batch_size=batch_size,
        hold_batches=hold_batches, on_bad_line=lambda n, reason: bad.append((n, reason)),
    )
    batches = assembler.feed(lines(*raw), lambda i: i + 1)
    batches.extend(assembler.flush())
    return batches, assembler, bad


def all_items(batches: list[Batch]) -> list[CatalogItem]:
    return [item for batch in batches for item in batch.items]


def test_variant_line_becomes_the_full_catalog_item() -> None:
    batches, assembler, bad = assemble(PRODUCT, VARIANT)
    assert bad == []
    [item] = all_items(batches)
    assert item == CatalogItem(
        id="SHIRT-M-BLK",
        store_name="Demo Store",
        shopify_product_id="9007199254740993",
        shopify_variant_id="18014398509481985",
        product_title="Café Crème Shirt ☕",
        variant_title="M / Black",
        status="active",
        product_image_url="https://cdn.shopify.com/s/files/shirt.jpg",
        variant_image_url=None,
        vendor="Acme",
        product_type="Shirts",
        product_url="https://demo.myshopify.com/products/cafe-creme-shirt",
        product_handle="cafe-creme-shirt",
        published_scope="web",
        price="0.10",
        compare_at_price="19.90",
        inventory_quantity=7,
        options=("Size", "Color"),
        option_values=("M", "Black"),
        sku="SHIRT-M-BLK",
        updated_at=datetime(2026, 1, 15, 10, 20, 30, tzinfo=UTC),
        inventory_item_id="45000000000000001",
    )


def test_variant_id_identifier_uses_the_exact_numeric_id_above_2_53() -> None:
    batches, _, _ = assemble(PRODUCT, VARIANT, VARIANT_NO_SKU, identifier=Identifier.SHOPIFY_VARIANT_ID)
    first, second = all_items(batches)
    assert first.id == "18014398509481985" and first.shopify_variant_id == "18014398509481985"
    assert int(first.id) == 2**54 + 1  # not rounded through a float
    # a blank SKU is no SKU; option values follow the product's option order, not the line's
    assert second.id == "2" and second.sku is None
    assert second.option_values == ("L", "Black")
    assert second.compare_at_price is None and second.price == "12.00"


def test_unpublished_draft_without_image_or_vendor() -> None:
    batches, _, _ = assemble(DRAFT_PRODUCT, DRAFT_VARIANT, identifier=Identifier.SHOPIFY_VARIANT_ID)
    [item] = all_items(batches)
    assert (item.status, item.published_scope, item.product_image_url, item.vendor) == ("draft", None, None, None)
    assert item.product_type == "" and item.inventory_quantity is None and item.price == "5"
    assert item.options == ("Title",) and item.option_values == ("Default Title",)


def test_updated_at_is_kept_in_utc_milliseconds_as_the_stores_keep_it() -> None:
    line = PRODUCT.replace('"updatedAt":"2026-01-15T10:20:30Z"', '"updatedAt":"2026-01-15T12:20:30.123456+02:00"')
    assert line != PRODUCT
    record = product_record(DECODER.decode(line), SHOP)
    assert record.updated_at == datetime(2026, 1, 15, 10, 20, 30, 123000, tzinfo=UTC)
    assert record.updated_at.tzinfo is UTC


def test_online_store_url_wins_and_means_published() -> None:
    line = PRODUCT.replace('"publishedAt":"2025-12-01T00:00:00Z"', '"publishedAt":null').replace(
        '"onlineStoreUrl":null', '"onlineStoreUrl":"https://shop.example.com/products/cafe-creme-shirt"'
    )
    record = product_record(lines(line)[0], SHOP)
    assert record.url == "https://shop.example.com/products/cafe-creme-shirt"
    assert record.published_scope == "web"


def test_sku_mode_skips_missing_and_invalid_skus_with_examples() -> None:
    bad_sku = VARIANT.replace('"SHIRT-M-BLK"', '"SHIRT M/BLK"')
    too_long_sku = VARIANT.replace('"SHIRT-M-BLK"', '"' + "A" * 251 + '"').replace("18014398509481985", "4")
    batches, assembler, bad = assemble(PRODUCT, bad_sku, VARIANT_NO_SKU, DRAFT_PRODUCT, DRAFT_VARIANT, too_long_sku)
    assert all_items(batches) == [] and bad == []
    skipped = {s.reason: s for s in assembler.skips.snapshot()}
    assert skipped["missing_sku"].count == 2
    assert skipped["invalid_id"].count == 2
    assert "variant 18014398509481985" in skipped["invalid_id"].examples[0]
    assert "'SHIRT M/BLK'" in skipped["invalid_id"].examples[0]
    assert skipped["missing_sku"].examples[0].startswith("variant 2 of 'Café Crème Shirt ☕'")
    assert assembler.skips.items == 4


def test_value_longer_than_5000_characters_skips_the_variants() -> None:
    long_title = PRODUCT.replace("Café Crème Shirt ☕", "é" * 5001)
    batches, assembler, _ = assemble(long_title, VARIANT, VARIANT_NO_SKU, identifier=Identifier.SHOPIFY_VARIANT_ID)
    assert all_items(batches) == []
    [skip] = assembler.skips.snapshot()
    assert (skip.reason, skip.count) == ("value_too_long", 2)
    assert "product_title" in skip.examples[0]

    exactly_5000 = PRODUCT.replace("Café Crème Shirt ☕", "é" * 5000)
    long_value = VARIANT.replace('"value":"Black"', '"value":"' + "x" * 5001 + '"')
    batches, assembler, _ = assemble(exactly_5000, VARIANT_NO_SKU, long_value, identifier=Identifier.SHOPIFY_VARIANT_ID)
    assert [i.id for i in all_items(batches)] == ["2"]
    [skip] = assembler.skips.snapshot()
    assert "option_values" in skip.examples[0]


def test_variant_image_first_media_line_is_set_in_the_pending_batch() -> None:
    second_media = MEDIA.replace("m-black.jpg", "other.jpg").replace("MediaImage/11", "MediaImage/12")
    batches, _, _ = assemble(PRODUCT, VARIANT, MEDIA, second_media)
    [batch] = batches
    assert batch.items[0].variant_image_url == "https://cdn.shopify.com/s/files/m-black.jpg"
    assert batch.images == []


def test_variant_image_after_the_batch_was_cut_becomes_a_patch_once() -> None:
    other = VARIANT_NO_SKU.replace('"sku":""', '"sku":"SHIRT-L-BLK"')
    second_media = MEDIA.replace("m-black.jpg", "other.jpg").replace("MediaImage/11", "MediaImage/12")
    batches, _, _ = assemble(PRODUCT, VARIANT, other, MEDIA, second_media, batch_size=1)
    assert [[i.id for i in b.items] for b in batches] == [["SHIRT-M-BLK"], ["SHIRT-L-BLK"], []]
    assert batches[0].items[0].variant_image_url is None
    patches = [p for b in batches for p in b.images]
    assert patches == [VariantImage("18014398509481985", "https://cdn.shopify.com/s/files/m-black.jpg")]
    assert batches[2].images == patches  # applied after the batch that wrote the item


def test_held_batches_take_late_images_in_place() -> None:
    other = VARIANT_NO_SKU.replace('"sku":""', '"sku":"SHIRT-L-BLK"')
    batches, _, _ = assemble(PRODUCT, VARIANT, other, MEDIA, batch_size=1, hold_batches=2)
    assert [[i.id for i in b.items] for b in batches] == [["SHIRT-M-BLK"], ["SHIRT-L-BLK"]]
    assert batches[0].items[0].variant_image_url == "https://cdn.shopify.com/s/files/m-black.jpg"
    assert [p for b in batches for p in b.images] == []


def test_batches_are_released_after_hold_batches_more_are_full() -> None:
    variants = [
        VARIANT.replace("18014398509481985", str(n)).replace("SHIRT-M-BLK", f"SKU-{n}") for n in range(1, 8)
    ]
    assembler = Assembler(identifier=Identifier.SKU, shop_domain=SHOP, store_name=STORE, batch_size=2,
                          hold_batches=2, on_bad_line=lambda n, r: None)
    released = assembler.feed(lines(PRODUCT, *variants), lambda i: i + 1)
    assert [[i.id for i in b.items] for b in released] == [["SKU-1", "SKU-2"]]
    assert [[i.id for i in b.items] for b in assembler.flush()] == [["SKU-3", "SKU-4"], ["SKU-5", "SKU-6"], ["SKU-7"]]
    assert assembler.flush() == []


def test_media_of_a_skipped_variant_is_not_patched() -> None:
    media_of_skipped = MEDIA.replace("18014398509481985", "2")
    batches, _, _ = assemble(PRODUCT, VARIANT_NO_SKU, VARIANT, media_of_skipped, batch_size=1)
    assert [p for b in batches for p in b.images] == []


def test_variant_whose_product_is_unknown_is_counted() -> None:
    batches, assembler, bad = assemble(VARIANT, DRAFT_PRODUCT, DRAFT_VARIANT, identifier=Identifier.SHOPIFY_VARIANT_ID)
    assert [i.id for i in all_items(batches)] == ["6"]
    [skip] = assembler.skips.snapshot()
    assert (skip.reason, skip.count) == (UNKNOWN_PRODUCT, 1)
    assert "gid://shopify/Product/9007199254740993" in skip.examples[0]
    assert bad == []


def test_children_are_joined_by_parent_id_not_by_adjacency() -> None:
    # groupObjects: false: a variant may come after other products' lines
    batches, _, _ = assemble(PRODUCT, DRAFT_PRODUCT, DRAFT_VARIANT, MEDIA.replace("18014398509481985", "6"), VARIANT,
                             identifier=Identifier.SHOPIFY_VARIANT_ID)
    items = {i.id: i for i in all_items(batches)}
    assert items["18014398509481985"].product_title == "Café Crème Shirt ☕"
    assert items["6"].product_title == "Draft thing"
    assert items["6"].variant_image_url == "https://cdn.shopify.com/s/files/m-black.jpg"


def test_unknown_line_types_are_ignored() -> None:
    video = '{"__parentId":"gid://shopify/ProductVariant/18014398509481985"}'
    collection = '{"id":"gid://shopify/Collection/1","title":"All"}'
    model = '{"id":"gid://shopify/Model3d/4","__parentId":"gid://shopify/ProductVariant/18014398509481985"}'
    batches, assembler, bad = assemble(PRODUCT, video, collection, VARIANT, model)
    assert len(all_items(batches)) == 1 and bad == []
    assert assembler.ignored_lines == 3 and assembler.skips.snapshot() == []


def test_unusable_lines_are_reported_with_their_line_number() -> None:
    bad_money = VARIANT.replace('"0.10"', '"ten"')
    bad_gid = VARIANT.replace("gid://shopify/ProductVariant/18014398509481985", "gid://shopify/ProductVariant/x1")
    no_title = PRODUCT.replace('"title":"Café Crème Shirt ☕",', "")
    batches, _, bad = assemble(PRODUCT, bad_money, bad_gid, no_title, VARIANT)
    assert [n for n, _ in bad] == [2, 3, 4]
    assert "price 'ten' is not a decimal amount" in bad[0][1]
    assert len(all_items(batches)) == 1  # the good line after the bad ones still counts


def test_money_is_kept_exactly_as_written() -> None:
    record = product_record(lines(PRODUCT)[0], SHOP)
    for raw in ("0.10", "19.990", "1000000000000000000.01", "-3"):
        item = variant_item(lines(VARIANT.replace('"0.10"', f'"{raw}"'))[0], record, Identifier.SKU, STORE)
        assert isinstance(item, CatalogItem) and item.price == raw


def test_non_decimal_money_is_a_line_error() -> None:
    record = product_record(lines(PRODUCT)[0], SHOP)
    with pytest.raises(LineError, match="compareAtPrice"):
        variant_item(lines(VARIANT.replace('"19.90"', '"NaN"'))[0], record, Identifier.SKU, STORE)


def test_batches_are_cut_at_batch_size() -> None:
    variants = [
        VARIANT.replace("18014398509481985", str(n)).replace("SHIRT-M-BLK", f"SKU-{n}").replace("MediaImage/11", "x")
        for n in range(1, 8)
    ]
    batches, assembler, _ = assemble(PRODUCT, *variants, batch_size=3)
    assert [len(b.items) for b in batches] == [3, 3, 1]
    assert assembler.variants == 7 and assembler.product_count == 1


def test_option_values_follow_the_product_option_order() -> None:
    three = PRODUCT.replace('"options":[{"name":"Size"},{"name":"Color"}]',
                            '"options":[{"name":"Size"},{"name":"Color"},{"name":"Fit"}]')
    selected = '[{"name":"Fit","value":"Slim"},{"name":"Size","value":"M"},{"name":"Color","value":"Black"}]'
    shuffled = VARIANT.replace(VARIANT[VARIANT.index('[{"name":"Size"'):VARIANT.index(',"inventoryItem"')], selected)
    in_order = VARIANT.replace(VARIANT[VARIANT.index('[{"name":"Size"'):VARIANT.index(',"inventoryItem"')],
                               '[{"name":"Size","value":"M"},{"name":"Color","value":"Black"},{"name":"Fit","value":"Slim"}]')
    record = product_record(lines(three)[0], SHOP)
    for raw in (shuffled, in_order):
        item = variant_item(lines(raw)[0], record, Identifier.SKU, STORE)
        assert isinstance(item, CatalogItem) and item.option_values == ("M", "Black", "Slim")
    four = lines(PRODUCT.replace('"options":[{"name":"Size"},{"name":"Color"}]',
                                 '"options":[{"name":"A"},{"name":"B"},{"name":"C"},{"name":"D"}]'))[0]
    selected4 = '[{"name":"D","value":"4"},{"name":"A","value":"1"},{"name":"C","value":"3"},{"name":"B","value":"2"}]'
    raw4 = VARIANT.replace(VARIANT[VARIANT.index('[{"name":"Size"'):VARIANT.index(',"inventoryItem"')], selected4)
    item = variant_item(lines(raw4)[0], product_record(four, SHOP), Identifier.SKU, STORE)
    assert isinstance(item, CatalogItem) and item.option_values == ("1", "2", "3", "4")


@pytest.mark.parametrize(
    ("raw", "prefix", "number"),
    [
        ("gid://shopify/ProductVariant/123", VARIANT_PREFIX, "123"),
        ("gid://shopify/ProductVariant/9007199254740993", VARIANT_PREFIX, "9007199254740993"),  # 2^53 + 1, exact
        ("gid://shopify/Product/18446744073709551615", PRODUCT_PREFIX, "18446744073709551615"),
    ],
)
def test_gid_number_is_exact(raw: str, prefix: str, number: str) -> None:
    assert gid_number(raw, prefix) == number


@pytest.mark.parametrize(
    "raw",
    ["gid://shopify/Product/abc", "gid://shopify/Product/", "", "12.5", "-3", "gid://shopify/Product/-3",
     "gid://shopify/Product/\u0661\u0662", "gid://shopify/ProductVariant/1", None, 123],
)
def test_gid_number_refuses_non_ids(raw: object) -> None:
    assert gid_number(raw, PRODUCT_PREFIX) is None
