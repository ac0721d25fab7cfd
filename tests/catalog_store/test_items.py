"""Pure catalog rules: ids, value limits, exact money, Shopify ids, shop domains, document sizes,
and the write planner. Literal fixtures, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import bson
import msgspec
import pytest

from catalog_store.checks import check_batch, item_size
from catalog_store.errors import InvalidItem, InvalidQuery
from catalog_store.filters import check_filter, cursor, page_size
from catalog_store.items import (
    DOCUMENT_KEYS,
    CatalogItem,
    Identifier,
    SkipReason,
    catalog_name,
    document_size,
    normalize_shop_domain,
    product_url,
)
from catalog_store.models import Conflict, ItemFilter
from catalog_store.rules import choose_item_id, parse_money, too_long_field, utc_millis, valid_item_id
from catalog_store.writes import StoredState, item_digest, plan_writes, prepare_items
from tests.catalog_store.helpers import CATALOG, at, make_item, size_of

# -- item ids -------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["abc_DEF-123", "1", "x" * 250, "44012345678901234567"])
def test_valid_item_ids(value: str) -> None:
    assert valid_item_id(value)


@pytest.mark.parametrize("value", ["", "x" * 251, "a b", "a.b", "a/b", "café", "sku#1", "a\n"])
def test_invalid_item_ids(value: str) -> None:
    assert not valid_item_id(value)


def test_choose_item_id_by_identifier() -> None:
    assert choose_item_id(Identifier.SHOPIFY_VARIANT_ID, "9007199254740993", "ANY SKU") == "9007199254740993"
    assert choose_item_id(Identifier.SKU, "1", "TSHIRT-M_blue") == "TSHIRT-M_blue"
    assert choose_item_id(Identifier.SKU, "1", None) is SkipReason.MISSING_SKU
    assert choose_item_id(Identifier.SKU, "1", "") is SkipReason.MISSING_SKU
    assert choose_item_id(Identifier.SKU, "1", "   ") is SkipReason.MISSING_SKU
    assert choose_item_id(Identifier.SKU, "1", "TSHIRT M") is SkipReason.INVALID_ID
    assert choose_item_id(Identifier.SKU, "1", "x" * 251) is SkipReason.INVALID_ID


# -- value limits ---------------------------------------------------------------------------------


def test_values_up_to_5000_characters_pass() -> None:
    assert too_long_field(make_item("1", title="t" * 5000)) is None
    item = msgspec.structs.replace(make_item("1"), option_values=("v" * 5000,))
    assert too_long_field(item) is None
    assert check_batch(CATALOG, [item])[0] == [item]


def test_first_value_over_5000_characters_is_named() -> None:
    assert too_long_field(make_item("1", title="t" * 5001)) == "product_title"
    assert too_long_field(make_item("1", sku="s" * 5001)) == "sku"
    item = msgspec.structs.replace(make_item("1"), option_values=("M", "v" * 5001))
    assert too_long_field(item) == "option_values"
    with pytest.raises(InvalidItem, match="option_values is longer than 5000"):
        check_batch(CATALOG, [make_item("2"), item])


# -- money ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "exact"),
    [("19.99", "19.99"), ("0.10", "0.10"), ("5", "5"), (" 1.50 ", "1.50"), (12, "12"), (0.1, "0.1"),
     ("1e3", "1e3"), ("-2.00", "-2.00"), (None, None)],
)
def test_money_keeps_the_exact_decimal_string(raw: object, exact: str | None) -> None:
    assert parse_money(raw) == exact


@pytest.mark.parametrize("raw", ["abc", "", "NaN", "Infinity", "1,50", True, float("nan")])
def test_money_that_is_not_a_finite_decimal_is_refused(raw: object) -> None:
    with pytest.raises(ValueError):
        parse_money(raw)


def test_document_stores_money_as_numbers_and_gives_back_the_exact_strings() -> None:
    item = make_item("1", price="19.99", compare_at_price="0.10")
    doc = item.to_document(CATALOG)
    assert (doc["price"], doc["_price"], doc["compare_at_price"], doc["_compare_at_price"]) == (
        19.99, "19.99", 0.1, "0.10")
    assert isinstance(doc["price"], float)
    back = CatalogItem.from_document(doc)
    assert (back.price, back.compare_at_price) == ("19.99", "0.10")
    assert back == item
    assert make_item("1", compare_at_price=None).to_document(CATALOG)["compare_at_price"] is None


# -- shops ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "domain"),
    [
        ("Foo", "foo.myshopify.com"),
        ("foo.myshopify.com", "foo.myshopify.com"),
        ("https://My-Store.myshopify.com/", "my-store.myshopify.com"),
        ("  http://shop9.myshopify.com  ", "shop9.myshopify.com"),
    ],
)
def test_shop_domains_are_normalised(raw: str, domain: str) -> None:
    assert normalize_shop_domain(raw) == domain


@pytest.mark.parametrize("raw", ["", "foo.example.com", "-foo", "foo bar", "foo.myshopify.com.evil.com", "a" * 61])
def test_bad_shop_domains_say_what_is_expected(raw: str) -> None:
    with pytest.raises(ValueError, match="myshopify"):
        normalize_shop_domain(raw)


def test_catalog_name_and_product_url() -> None:
    assert catalog_name("https://My-Store.myshopify.com") == "shopify_my-store"
    assert catalog_name("demo") == "shopify_demo"
    assert product_url("demo.myshopify.com", "red-shirt", None) == "https://demo.myshopify.com/products/red-shirt"
    assert product_url("demo.myshopify.com", "red-shirt", "https://shop.example/p/1") == "https://shop.example/p/1"
    assert product_url("demo.myshopify.com", None, None) is None


# -- sizes ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "item",
    [
        make_item("1"),
        make_item("2", compare_at_price="0.10", quantity=2**40, sku="é€😀", variant_title=None, image="x" * 300),
        make_item("3", quantity=-(2**31)),
        make_item("4", quantity=2**31),
        msgspec.structs.replace(make_item("5"), options=(), option_values=("v",) * 12, inventory_item_id=None,
                                inventory_quantity=None, vendor=None, product_type=None),
    ],
    ids=["plain", "unicode-and-big", "int32-min", "int64", "sparse"],
)
def test_stored_size_is_the_bson_size(item: CatalogItem) -> None:
    assert tuple(item.to_document(CATALOG)) == DOCUMENT_KEYS
    expected = len(bson.encode(item.to_document(CATALOG)))
    assert document_size(item.to_document(CATALOG)) == expected == item_size(CATALOG, item)
    twin = msgspec.structs.replace(item, id="x1", shopify_variant_id="x1", sku="é")  # shares the product values
    assert check_batch(CATALOG, [item, twin])[1] == [expected, len(bson.encode(twin.to_document(CATALOG)))]


def test_items_are_immutable_and_change_by_replacement() -> None:
    item = make_item("1")
    with pytest.raises(AttributeError):
        item.price = "1.00"  # type: ignore[misc]
    changed = msgspec.structs.replace(item, price="1.00")
    assert changed.price == "1.00" and item == make_item("1")


# -- write preparation ----------------------------------------------------------------------------


def test_prepare_normalises_updated_at_to_utc_milliseconds_without_touching_the_input() -> None:
    plus_two = timezone(timedelta(hours=2))
    item = msgspec.structs.replace(make_item("1"), updated_at=datetime(2026, 5, 1, 10, 0, 0, 999999, tzinfo=plus_two))
    (prepared,) = prepare_items(CATALOG, [item])
    assert prepared.item.updated_at == datetime(2026, 5, 1, 8, 0, 0, 999000, tzinfo=UTC)
    assert item.updated_at.microsecond == 999999
    assert prepared.size == size_of(item) and prepared.document == prepared.item.to_document(CATALOG)
    (sized_only,) = prepare_items(CATALOG, [item], documents=False)
    assert (sized_only.document, sized_only.size) == (None, prepared.size)


def test_prepare_refuses_naive_datetimes_and_names_the_bad_item() -> None:
    with pytest.raises(ValueError):
        utc_millis(datetime(2026, 1, 1))
    with pytest.raises(InvalidItem, match=r"item 1 .*variant '7'.*no time zone"):
        prepare_items(CATALOG, [make_item("1"), msgspec.structs.replace(make_item("7"), updated_at=datetime(2026, 1, 1))])
    with pytest.raises(InvalidItem, match="not a CatalogItem"):
        prepare_items(CATALOG, [{"id": "1"}])  # type: ignore[list-item]
    with pytest.raises(InvalidItem, match="shopify_variant_id"):
        prepare_items(CATALOG, [msgspec.structs.replace(make_item("1"), shopify_variant_id=123)])  # type: ignore[arg-type]


# -- the write planner ----------------------------------------------------------------------------


def _state(variant: str, item_id: str, updated: float, size: int = 100, run_id: str | None = "r0") -> StoredState:
    return StoredState(variant, item_id, "100", at(updated), size, run_id)


def _plan(items: list[CatalogItem], stored: list[StoredState], **kwargs: object):  # type: ignore[no-untyped-def]
    states = {s.variant_id: s for s in stored}
    holders = {s.item_id: s.variant_id for s in stored}
    defaults: dict[str, object] = {"tombstones": {}, "run_id": "r1"}
    defaults.update(kwargs)
    return plan_writes(prepare_items(CATALOG, items), stored=states.get, holder=holders.get, **defaults)  # type: ignore[arg-type]


def test_planner_orders_stale_before_conflict_and_keeps_the_previous_state() -> None:
    plan = _plan(
        [make_item("1", updated=5), make_item("2", id="A", updated=50), make_item("3", updated=5)],
        [_state("1", "1", 10), _state("9", "A", 0, run_id="r0")],
    )
    assert (plan.stale, plan.conflicts) == (1, [Conflict("A", "2", "9", "r0")])
    assert [(w.index, w.previous) for w in plan.writes] == [(2, None)]
    assert plan.writes[0].state == StoredState("3", "3", "100", at(5), size_of(make_item("3")), "r1",
                                               digest=item_digest(make_item("3", updated=5)), inventory_quantity=5,
                                               inventory_at=at(5))


def test_planner_tombstone_refuses_writes_not_newer_than_the_delete() -> None:
    plan = _plan([make_item("1", updated=10), make_item("2", updated=11)], [], tombstones={"100": at(10)})
    assert (plan.stale, [w.index for w in plan.writes]) == (1, [1])


def test_planner_limit_counts_growth_only() -> None:
    one = size_of(make_item("1"))
    plan = _plan([make_item("1"), make_item("2")], [], total_bytes=1000, limit_bytes=1000 + one)
    assert (len(plan.writes), plan.limit_reached, plan.written_upto) == (1, True, 1)
    shrink = _plan([make_item("1")], [_state("1", "1", 0, size=one + 50)], total_bytes=10**6, limit_bytes=10)
    assert (len(shrink.writes), shrink.limit_reached, shrink.written_upto) == (1, False, 1)


# -- read arguments -------------------------------------------------------------------------------


def test_read_arguments_are_checked() -> None:
    assert page_size(0) == 0 and page_size(10_000) == 250
    for bad in (-1, True, 2.5, "5"):
        with pytest.raises(InvalidQuery):
            page_size(bad)  # type: ignore[arg-type]
    assert cursor(None) is None and cursor("SKU-1") == "SKU-1"
    with pytest.raises(InvalidQuery):
        cursor("")
    checked = check_filter(ItemFilter(price_min=Decimal("19.99"), search="a.b(c"))
    assert checked.price_min == 19.99 and checked.search is not None
    assert checked.search.search("xA.B(Cx") and not checked.search.search("aXb(c")
    assert check_filter(None).empty and not checked.empty
    with pytest.raises(InvalidQuery):
        check_filter(ItemFilter(price_max=Decimal("Infinity")))


def _stored(item: CatalogItem, run_id: str | None, digest: bytes | None = None) -> StoredState:
    return StoredState(item.shopify_variant_id, item.id, item.shopify_product_id, item.updated_at,  # type: ignore[arg-type]
                       size_of(item), run_id, digest=item_digest(item) if digest is None else digest,
                       inventory_quantity=item.inventory_quantity)


@pytest.mark.parametrize("incoming_run, stored_run, expect", [
    ("r1", None, "written"),  # a full sync's snapshot is the reference at an equal time
    ("r1", "r0", "written"),
    (None, "r0", "stale"),  # a webhook never replaces a full sync's item at an equal time
])
def test_planner_ties_between_a_full_sync_and_a_webhook(incoming_run: str | None, stored_run: str | None,
                                                        expect: str) -> None:
    stored, incoming = make_item("1", updated=5, price="1.00"), make_item("1", updated=5, price="2.00")
    plan = _plan([incoming], [_stored(stored, stored_run)], run_id=incoming_run)
    assert ("written" if plan.writes else "stale" if plan.stale else "?") == expect


def test_planner_ties_between_webhooks_keep_the_higher_digest_and_apply_quantities() -> None:
    low, high = sorted([make_item("1", updated=5, price="1.00"), make_item("1", updated=5, price="2.00")],
                       key=item_digest)
    assert len(_plan([high], [_stored(low, None)], run_id=None).writes) == 1
    assert _plan([low], [_stored(high, None)], run_id=None).stale == 1
    counted = make_item("1", updated=5, price="1.00", quantity=99)
    assert len(_plan([counted], [_stored(low if low.price == "1.00" else high, "r0")], run_id=None).writes) == 1
    # a digest stored before ties were broken (16 bytes, quantity included) decides nothing: written
    assert len(_plan([low], [_stored(high, "r0", digest=b"\xff" * 16)], run_id=None).writes) == 1


def test_planner_does_not_trust_stored_times_in_the_future() -> None:
    now = at(100)
    future = make_item("1", updated=100 + 301, price="1.00")
    plan = _plan([make_item("1", updated=50)], [_stored(future, None)], now=now)
    assert len(plan.writes) == 1
    assert _plan([make_item("1", updated=50)], [_stored(future, None)]).stale == 1  # without a clock: trusted
    assert len(_plan([make_item("2", updated=50)], [], tombstones={"100": at(100 + 301)}, now=now).writes) == 1
    assert _plan([make_item("2", updated=50)], [], tombstones={"100": at(100 + 299)}, now=now).stale == 1
