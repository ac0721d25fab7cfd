"""The CatalogStore contract: every test runs against the memory store and the MongoDB store."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import msgspec
import pytest

import catalog_store.documents as records
from catalog_store.errors import InvalidItem, InvalidQuery, StoreError, UnknownCatalog
from catalog_store.items import CatalogItem, Identifier
from catalog_store.models import (
    Conflict,
    EmailStatus,
    ItemFilter,
    Notification,
    NotificationLevel,
    RunStatus,
    SkipCount,
    SyncConfig,
    SyncErrorCode,
    SyncRun,
    SyncStatus,
)
from catalog_store.store import MAX_PAGE_SIZE, CatalogStore
from catalog_store.writes import item_digest
from tests.catalog_store.helpers import (
    CATALOG,
    SHOP,
    Clock,
    all_items,
    assert_counters_exact,
    at,
    make_item,
    size_of,
)


@pytest.fixture
async def catalog(store: CatalogStore) -> str:
    await store.ensure_catalog(CATALOG, SHOP, "Demo Store")
    return CATALOG


@pytest.fixture
def clock(store: CatalogStore) -> Clock:
    clock = Clock()
    store.clock = clock  # type: ignore[attr-defined]
    return clock


# -- writes, reads and exact values ---------------------------------------------------------------


async def test_written_item_reads_back_identical_with_exact_money_and_big_ids(store: CatalogStore, catalog: str) -> None:
    big = str(2**53 + 1)
    item = make_item(big, id=big, product=str(2**60 + 7), price="0.10", compare_at_price="19.99",
                     inventory_item=str(2**62 + 3))
    result = await store.write_items(catalog, [item], run_id="r1")
    assert (result.written, result.stale, result.conflicts) == (1, 0, [])
    assert result.bytes_delta == size_of(item)
    assert (result.limit_reached, result.written_upto) == (False, 1)
    stored = await store.get_item(catalog, big)
    assert stored == item
    assert (stored.price, stored.compare_at_price) == ("0.10", "19.99")
    assert stored.shopify_product_id == str(2**60 + 7) and stored.inventory_item_id == str(2**62 + 3)
    assert stored.updated_at == at(0) and stored.updated_at.utcoffset() == timedelta(0)
    assert await store.get_items_by_variant(catalog, [big]) == [item]


async def test_updated_at_is_kept_in_utc_milliseconds(store: CatalogStore, catalog: str) -> None:
    paris = timezone(timedelta(hours=2))
    item = msgspec.structs.replace(make_item("1"), updated_at=datetime(2026, 3, 1, 14, 0, 0, 123456, tzinfo=paris))
    await store.write_items(catalog, [item])
    stored = await store.get_item(catalog, "1")
    assert stored.updated_at == datetime(2026, 3, 1, 12, 0, 0, 123000, tzinfo=UTC)
    assert stored.updated_at.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "bad",
    [
        {"id": "has space"},
        {"id": ""},
        {"id": "x" * 251},
        {"product_title": "t" * 5001},
        {"option_values": ["v" * 5001]},
        {"updated_at": None},
        {"updated_at": datetime(2026, 1, 1)},
        {"price": "abc"},
        {"price": "NaN"},
        {"compare_at_price": "1,5"},
        {"inventory_quantity": 1.5},
    ],
    ids=lambda bad: next(iter(bad)),
)
async def test_invalid_item_is_refused_and_nothing_of_the_batch_is_written(
    store: CatalogStore, catalog: str, bad: dict[str, object]
) -> None:
    good = make_item("1")
    broken = msgspec.structs.replace(make_item("2"), **bad)
    with pytest.raises(InvalidItem) as raised:
        await store.write_items(catalog, [good, broken])
    assert "variant '2'" in str(raised.value) and "nothing was written" in str(raised.value)
    assert await all_items(store) == []
    assert (await store.get_catalog(catalog)).item_count == 0


async def test_writing_to_an_unknown_catalog_is_refused(store: CatalogStore) -> None:
    with pytest.raises(UnknownCatalog):
        await store.write_items("shopify_nope", [make_item("1")])
    assert await store.get_catalog("shopify_nope") is None
    assert await store.total_storage_bytes() == 0


async def test_a_caller_cannot_change_a_stored_item(store: CatalogStore, catalog: str) -> None:
    options, values = ["Size"], ["M"]  # lists from a careless caller: the store keeps tuples
    await store.write_items(catalog, [msgspec.structs.replace(make_item("1"), options=options, option_values=values)])
    options.append("changed by caller")
    values.append("changed by caller")
    stored = await store.get_item(catalog, "1")
    assert stored == make_item("1")
    with pytest.raises(AttributeError):
        stored.product_title = "changed by reader"  # type: ignore[misc]
    assert await store.get_item(catalog, "1") == make_item("1")


# -- the updated_at guard -------------------------------------------------------------------------


async def test_replay_is_idempotent(store: CatalogStore, catalog: str) -> None:
    item = make_item("1", updated=10)
    await store.write_items(catalog, [item])
    again = await store.write_items(catalog, [item])
    assert (again.written, again.stale, again.bytes_delta) == (1, 0, 0)
    assert await all_items(store) == [item]
    await assert_counters_exact(store)


async def test_older_write_arriving_late_is_stale(store: CatalogStore, catalog: str) -> None:
    await store.write_items(catalog, [make_item("1", updated=20, price="12.50")])
    late = await store.write_items(catalog, [make_item("1", updated=10, price="99.00")])
    assert (late.written, late.stale, late.bytes_delta) == (0, 1, 0)
    assert (await store.get_item(catalog, "1")).price == "12.50"
    replay = await store.write_items(catalog, [make_item("1", updated=20, price="12.50")])
    assert (replay.written, replay.stale) == (1, 0)  # an equal item at an equal time: idempotent


async def _final_item(store: CatalogStore, name: str, writes: list[tuple[CatalogItem, str | None]]) -> CatalogItem:
    await store.ensure_catalog(name, SHOP, "Demo Store")
    for item, run_id in writes:
        await store.write_items(name, [item], run_id=run_id)
    (item,) = await all_items(store, name)
    return item


async def test_equal_updated_at_with_different_content_converges_whatever_the_order(store: CatalogStore) -> None:
    a = make_item("1", updated=20, price="13.00", title="A")
    b = make_item("1", updated=20, price="14.00", title="B")
    c = make_item("1", updated=20, price="15.00", title="C")
    finals = [await _final_item(store, f"shopify_order{n}", [(item, None) for item in order])
              for n, order in enumerate([[a, b, c], [c, b, a], [b, a, c], [c, a, b]])]
    assert len({f.product_title for f in finals}) == 1, finals  # every arrival order keeps the same item
    assert finals[0].product_title == max((a, b, c), key=item_digest).product_title
    # concurrent writers (the guarded write re-plans what a concurrent one overtook) converge too
    await store.ensure_catalog("shopify_race", SHOP, "Demo Store")
    await asyncio.gather(*(store.write_items("shopify_race", [item]) for item in (a, b, c, b, a, c)))
    assert [i.product_title for i in await all_items(store, "shopify_race")] == [finals[0].product_title]


async def test_at_equal_updated_at_a_full_syncs_item_wins_and_quantities_still_apply(store: CatalogStore) -> None:
    webhook = make_item("1", updated=20, price="13.00")
    synced = make_item("1", updated=20, price="14.00")  # e.g. read after the shop was renamed
    assert (await _final_item(store, "shopify_ws", [(webhook, None), (synced, "run-1")])).price == "14.00"
    assert (await _final_item(store, "shopify_sw", [(synced, "run-1"), (webhook, None)])).price == "14.00"
    # a quantity changes without the product's updated_at: it applies at an equal time
    counted = msgspec.structs.replace(synced, inventory_quantity=99)
    assert (await _final_item(store, "shopify_sq", [(synced, "run-1"), (counted, None)])).inventory_quantity == 99


async def test_a_stored_time_in_the_far_future_locks_nothing(store: CatalogStore, catalog: str) -> None:
    far = datetime(9999, 12, 31, tzinfo=UTC)
    await store.write_items(catalog, [msgspec.structs.replace(make_item("1", price="1.00"), updated_at=far)])
    assert (await store.write_items(catalog, [make_item("1", updated=10, price="2.00")])).written == 1
    assert (await store.get_item(catalog, "1")).price == "2.00"
    await store.delete_product(catalog, "100", datetime(2099, 1, 1, tzinfo=UTC))  # e.g. a forged header
    assert (await store.write_items(catalog, [make_item("1", updated=11, price="3.00")])).written == 1
    await assert_counters_exact(store)


async def test_a_full_sync_started_after_a_tombstone_ends_it(store: CatalogStore, catalog: str, clock: Clock) -> None:
    await store.write_items(catalog, [make_item("1", updated=10)])
    clock.advance(100)
    await store.delete_product(catalog, "100", clock())  # recorded at T0+100 s
    before = clock() - timedelta(seconds=1)
    refused = await store.write_items(catalog, [make_item("1", updated=10)], run_id="r1", listed_after=before)
    assert (refused.written, refused.stale) == (0, 1)  # that run's read may predate the deletion
    clock.advance(5)
    after = clock()
    listed = await store.write_items(catalog, [make_item("1", updated=10)], run_id="r2", listed_after=after)
    assert (listed.written, listed.stale) == (1, 0)  # the product exists: ids are never reused
    # the tombstone is gone, not just passed over: a webhook write of the product applies again
    assert (await store.write_items(catalog, [make_item("2", updated=12)])).written == 1
    assert [i.id for i in await all_items(store)] == ["1", "2"]
    await assert_counters_exact(store)


async def test_out_of_order_writes_in_one_batch_keep_the_newest(store: CatalogStore, catalog: str) -> None:
    result = await store.write_items(
        catalog, [make_item("1", updated=20, price="2.00"), make_item("1", updated=10, price="1.00")]
    )
    assert (result.written, result.stale) == (1, 1)
    assert (await store.get_item(catalog, "1")).price == "2.00"
    await assert_counters_exact(store)


async def test_tombstone_refuses_late_updates_and_older_snapshots(store: CatalogStore, catalog: str) -> None:
    await store.write_items(catalog, [make_item("1", updated=10), make_item("2", updated=10)], run_id="r1")
    assert await store.delete_product(catalog, "100", at(30)) == 2
    assert await all_items(store) == []
    late = await store.write_items(catalog, [make_item("1", updated=20), make_item("2", updated=30)])
    assert (late.written, late.stale) == (0, 2)
    assert await all_items(store) == []
    await store.delete_product(catalog, "100", at(5))  # an older delete does not move the tombstone back
    assert (await store.write_items(catalog, [make_item("1", updated=29)])).stale == 1
    newer = await store.write_items(catalog, [make_item("1", updated=31)])
    assert newer.written == 1
    assert [i.id for i in await all_items(store)] == ["1"]
    await assert_counters_exact(store)


async def test_delete_product_removes_only_that_products_items(store: CatalogStore, catalog: str) -> None:
    await store.write_items(
        catalog, [make_item("1", product="100"), make_item("2", product="100"), make_item("3", product="200")]
    )
    assert await store.delete_product(catalog, "100", at(60)) == 2
    assert [i.id for i in await all_items(store)] == ["3"]
    assert await store.delete_product(catalog, "999", at(60)) == 0
    await assert_counters_exact(store)
    with pytest.raises(UnknownCatalog):
        await store.delete_product("shopify_nope", "100", at(60))


# -- unique item ids (SKU mode) -------------------------------------------------------------------


async def test_second_variant_claiming_an_id_is_a_conflict_not_an_overwrite(store: CatalogStore, catalog: str) -> None:
    holder = make_item("1", id="SKU-1", sku="SKU-1", title="Original")
    await store.write_items(catalog, [holder], run_id="r1")
    claim = make_item("2", id="SKU-1", sku="SKU-1", title="Intruder", updated=50)
    result = await store.write_items(catalog, [claim], run_id="r2")
    assert result.written == 0
    assert result.conflicts == [Conflict(item_id="SKU-1", variant_id="2", existing_variant_id="1", existing_run_id="r1")]
    assert await store.get_item(catalog, "SKU-1") == holder
    assert await store.get_items_by_variant(catalog, ["2"]) == []
    await assert_counters_exact(store)


async def test_duplicate_ids_within_one_batch_name_both_variants(store: CatalogStore, catalog: str) -> None:
    result = await store.write_items(
        catalog, [make_item("1", id="DUP", sku="DUP"), make_item("2", id="DUP", sku="DUP")], run_id="r1"
    )
    assert result.written == 1
    assert result.conflicts == [Conflict("DUP", "2", "1", "r1")]
    assert [i.shopify_variant_id for i in await all_items(store)] == ["1"]


async def test_conflicting_variant_keeps_its_own_previous_item(store: CatalogStore, catalog: str) -> None:
    await store.write_items(catalog, [make_item("1", id="A"), make_item("2", id="B")], run_id="r1")
    result = await store.write_items(catalog, [make_item("2", id="A", updated=5)], run_id="r2")
    assert [(c.variant_id, c.existing_variant_id) for c in result.conflicts] == [("2", "1")]
    assert [(i.id, i.shopify_variant_id) for i in await all_items(store)] == [("A", "1"), ("B", "2")]


async def test_changed_sku_replaces_the_variants_old_item(store: CatalogStore, catalog: str) -> None:
    await store.write_items(catalog, [make_item("1", id="OLD", sku="OLD")])
    renamed = make_item("1", id="NEW", sku="NEW", updated=10)
    result = await store.write_items(catalog, [renamed])
    assert (result.written, result.conflicts) == (1, [])
    assert await store.get_item(catalog, "OLD") is None
    assert await store.get_item(catalog, "NEW") == renamed
    assert (await store.get_catalog(catalog)).item_count == 1
    await assert_counters_exact(store)


async def test_an_id_equal_to_another_variants_id_is_held_by_that_variant(store: CatalogStore, catalog: str) -> None:
    await store.write_items(catalog, [make_item("1"), make_item("5", id="A")], run_id="r1")  # item "1" is variant 1's
    result = await store.write_items(catalog, [make_item("2", id="1", sku="1"), make_item("3", id="5")], run_id="r2")
    assert result.written == 1 and result.conflicts == [Conflict("1", "2", "1", "r1")]  # "5" is free: variant 5 is "A"
    assert (await store.get_item(catalog, "5")).shopify_variant_id == "3"  # type: ignore[union-attr]
    await store.write_items(catalog, [make_item("1", id="B", updated=10)])  # variant 1 lets "1" go
    assert (await store.write_items(catalog, [make_item("2", id="1", sku="1", updated=10)])).written == 1
    assert (await store.get_item(catalog, "1")).shopify_variant_id == "2"  # type: ignore[union-attr]
    assert [(i.id, i.shopify_variant_id) for i in await all_items(store)] == [("1", "2"), ("5", "3"), ("A", "5"),
                                                                              ("B", "1")]
    await assert_counters_exact(store)


async def test_ids_freed_earlier_in_a_batch_can_be_taken_later_in_it(store: CatalogStore, catalog: str) -> None:
    await store.write_items(catalog, [make_item("1", id="X"), make_item("2", id="Z")])
    swap = [make_item("1", id="Y", updated=10), make_item("2", id="X", updated=10)]
    result = await store.write_items(catalog, swap)
    assert (result.written, result.conflicts) == (2, [])
    assert [(i.id, i.shopify_variant_id) for i in await all_items(store)] == [("X", "2"), ("Y", "1")]
    # in the other order the id is still held when claimed: a conflict, decided item by item
    reverse = [make_item("2", id="Y", updated=20), make_item("1", id="W", updated=20)]
    result = await store.write_items(catalog, reverse)
    assert [(c.item_id, c.variant_id, c.existing_variant_id) for c in result.conflicts] == [("Y", "2", "1")]
    assert [(i.id, i.shopify_variant_id) for i in await all_items(store)] == [("W", "1"), ("X", "2")]
    await assert_counters_exact(store)


# -- mark and sweep -------------------------------------------------------------------------------


async def test_sweep_deletes_only_unseen_items_written_before_the_run(
    store: CatalogStore, catalog: str, clock: Clock
) -> None:
    await store.write_items(catalog, [make_item(v) for v in ("1", "2", "3", "4")], run_id="r1")
    clock.advance(60)
    started_at = clock()
    clock.advance(1)
    await store.write_items(catalog, [make_item("1", updated=60)], run_id="r2")  # seen by the run
    await store.mark_seen(catalog, ["2", "404"], "r2")  # stale in the run: seen, not rewritten
    await store.write_items(catalog, [make_item("3", updated=61, price="1.00")])  # a webhook, during the run
    assert await store.sweep(catalog, "r2", started_at) == 1
    assert [i.shopify_variant_id for i in await all_items(store)] == ["1", "2", "3"]
    assert (await store.get_item(catalog, "2")) == make_item("2")
    assert await store.sweep(catalog, "r2", started_at) == 0
    await assert_counters_exact(store)


async def test_sweep_keeps_items_written_at_or_after_the_start(store: CatalogStore, catalog: str, clock: Clock) -> None:
    await store.write_items(catalog, [make_item("1")])  # written before the run, by a webhook, unseen
    started_at = clock.advance(1)
    await store.write_items(catalog, [make_item("2")])  # written at the very start
    assert await store.sweep(catalog, "r1", started_at) == 1
    assert [i.id for i in await all_items(store)] == ["2"]
    assert await store.sweep("shopify_nope", "r1", started_at) == 0


# -- variant images and lookups -------------------------------------------------------------------


async def test_set_variant_image_only_fills_a_missing_image(store: CatalogStore, catalog: str) -> None:
    await store.write_items(catalog, [make_item("1"), make_item("2", image="https://cdn.example/2.png")])
    before = (await store.get_catalog(catalog)).storage_bytes
    assert await store.set_variant_image(catalog, "1", "https://cdn.example/1.png") is True
    assert (await store.get_item(catalog, "1")).variant_image_url == "https://cdn.example/1.png"
    grown = (await store.get_catalog(catalog)).storage_bytes
    assert grown - before == size_of(make_item("1", image="https://cdn.example/1.png")) - size_of(make_item("1"))
    assert await store.set_variant_image(catalog, "1", "https://cdn.example/other.png") is False
    assert await store.set_variant_image(catalog, "2", "https://cdn.example/other.png") is False
    assert await store.set_variant_image(catalog, "404", "https://cdn.example/x.png") is False
    assert (await store.get_item(catalog, "2")).variant_image_url == "https://cdn.example/2.png"
    with pytest.raises(InvalidItem):
        await store.set_variant_image(catalog, "1", "u" * 5001)
    await assert_counters_exact(store)


async def test_lookups_by_variant_and_inventory_item(store: CatalogStore, catalog: str) -> None:
    await store.write_items(
        catalog,
        [make_item("1", inventory_item="77"), make_item("2", inventory_item="77"), make_item("3")],
    )
    found = await store.get_items_by_variant(catalog, ["3", "404", "1", "3"])
    assert [i.shopify_variant_id for i in found] == ["3", "1"]
    assert [i.id for i in await store.find_by_inventory_item(catalog, "77")] == ["1", "2"]
    assert await store.find_by_inventory_item(catalog, "404") == []
    assert await store.get_item(catalog, "404") is None
    # later writes and deletes show in the lookup (the memory store builds its index on first use)
    await store.write_items(catalog, [make_item("4", product="400", inventory_item="77"),
                                      make_item("2", inventory_item="78", updated=5)])
    assert [i.id for i in await store.find_by_inventory_item(catalog, "77")] == ["1", "4"]
    assert [i.id for i in await store.find_by_inventory_item(catalog, "78")] == ["2"]
    await store.delete_product(catalog, "400", at(9))
    assert [i.id for i in await store.find_by_inventory_item(catalog, "77")] == ["1"]


async def test_lookup_by_product_lists_its_items_sorted_by_id(store: CatalogStore, catalog: str) -> None:
    await store.write_items(catalog, [make_item("3", id="c"), make_item("1", id="a"), make_item("2", product="200"),
                                      make_item("4", id="b")])
    assert [i.id for i in await store.get_items_by_product(catalog, "100")] == ["a", "b", "c"]
    assert [i.id for i in await store.get_items_by_product(catalog, "200")] == ["2"]
    await store.delete_product(catalog, "100", at(1))
    assert await store.get_items_by_product(catalog, "100") == []
    assert await store.get_items_by_product("shopify_nothing", "100") == []
    assert await store.get_item("shopify_nope", "1") is None


# -- listing: keyset pagination, filters, counts --------------------------------------------------


async def test_pages_follow_ascending_ids_with_total_count(store: CatalogStore, catalog: str) -> None:
    ids = ["g", "a", "e", "c", "b", "f", "d"]
    await store.write_items(catalog, [make_item(str(n), id=i) for n, i in enumerate(ids)])
    page = await store.list_items(catalog, first=3)
    assert ([i.id for i in page.items], page.has_next_page, page.total_count) == (["a", "b", "c"], True, 7)
    page = await store.list_items(catalog, first=3, after="c")
    assert ([i.id for i in page.items], page.has_next_page) == (["d", "e", "f"], True)
    page = await store.list_items(catalog, first=3, after="f")
    assert ([i.id for i in page.items], page.has_next_page, page.total_count) == (["g"], False, 7)
    empty = await store.list_items(catalog, first=0)
    assert (empty.items, empty.has_next_page, empty.total_count) == ([], True, 7)
    nothing = await store.list_items("shopify_nope")
    assert (nothing.items, nothing.has_next_page, nothing.total_count) == ([], False, 0)


async def test_page_size_is_capped_and_bad_arguments_are_refused(store: CatalogStore, catalog: str) -> None:
    await store.write_items(catalog, [make_item(str(n), id=f"id-{n:04}") for n in range(MAX_PAGE_SIZE + 5)])
    page = await store.list_items(catalog, first=10_000)
    assert (len(page.items), page.has_next_page, page.total_count) == (MAX_PAGE_SIZE, True, MAX_PAGE_SIZE + 5)
    with pytest.raises(ValueError):
        await store.list_items(catalog, first=-1)
    with pytest.raises(InvalidQuery):
        await store.list_items(catalog, after="not a cursor!")
    with pytest.raises(InvalidQuery):
        await store.list_items(catalog, filter=ItemFilter(price_min=Decimal("NaN")))


async def test_pagination_is_stable_under_concurrent_inserts(store: CatalogStore, catalog: str) -> None:
    await store.write_items(catalog, [make_item(str(n), id=i) for n, i in enumerate(["b", "d", "f", "h", "j"])])
    first = await store.list_items(catalog, first=2)
    assert [i.id for i in first.items] == ["b", "d"]
    await store.write_items(catalog, [make_item("10", id="a"), make_item("11", id="e")])
    second = await store.list_items(catalog, first=2, after=first.items[-1].id)
    assert ([i.id for i in second.items], second.total_count) == (["e", "f"], 7)
    third = await store.list_items(catalog, first=2, after=second.items[-1].id)
    assert ([i.id for i in third.items], third.has_next_page) == (["h", "j"], False)


FILTER_ITEMS = [
    make_item("1", id="A", title="Red Shirt", variant_title="Small", sku="RS-S", price="19.99", quantity=5),
    make_item("2", id="B", title="Blue Shirt", variant_title="Large", sku="BS-L", price="25.00", quantity=0),
    make_item("3", id="C", title="Green Hat", variant_title=None, sku=None, status="draft", vendor="Hatter",
              product_type="Hat", price="0.10", quantity=None),
    make_item("4", id="D", title="Sock (wool)", variant_title="One size", sku="SOCK.1", status="archived",
              product_type="Sock", price="5", quantity=-1),
    make_item("5", id="E", title="Mug", variant_title="Default Title", sku="mug-red", vendor="Potter",
              product_type="Mug", price="19.990", quantity=12),
]


@pytest.mark.parametrize(
    ("filter", "expected"),
    [
        (ItemFilter(status="active"), ["A", "B", "E"]),
        (ItemFilter(status="ACTIVE"), ["A", "B", "E"]),  # Shopify's enum spelling: any case matches
        (ItemFilter(status="Draft"), ["C"]),
        (ItemFilter(vendor="Acme"), ["A", "B", "D"]),
        (ItemFilter(product_type="Hat"), ["C"]),
        (ItemFilter(in_stock=True), ["A", "E"]),
        (ItemFilter(in_stock=False), ["B", "C", "D"]),
        (ItemFilter(price_min=Decimal("19.99")), ["A", "B", "E"]),
        (ItemFilter(price_max=Decimal("19.99")), ["A", "C", "D", "E"]),
        (ItemFilter(price_min=Decimal("1"), price_max=Decimal("20")), ["A", "D", "E"]),
        (ItemFilter(search="RED"), ["A", "E"]),
        (ItemFilter(search="small"), ["A"]),
        (ItemFilter(search="(wool)"), ["D"]),
        (ItemFilter(search="."), ["D"]),
        (ItemFilter(search="nothing like it"), []),
        (ItemFilter(status="active", in_stock=True, search="r"), ["A", "E"]),
        (ItemFilter(in_stock=False, search="s"), ["B", "D"]),
        (ItemFilter(), ["A", "B", "C", "D", "E"]),
    ],
    ids=lambda value: repr(value) if isinstance(value, list) else None,
)
async def test_filters_select_items_and_count_them(
    store: CatalogStore, catalog: str, filter: ItemFilter, expected: list[str]
) -> None:
    await store.write_items(catalog, FILTER_ITEMS)
    page = await store.list_items(catalog, first=50, filter=filter)
    assert ([i.id for i in page.items], page.total_count, page.has_next_page) == (expected, len(expected), False)


async def test_filtered_pages_continue_after_the_cursor(store: CatalogStore, catalog: str) -> None:
    await store.write_items(catalog, FILTER_ITEMS)
    page = await store.list_items(catalog, first=2, filter=ItemFilter(vendor="Acme"))
    assert ([i.id for i in page.items], page.has_next_page, page.total_count) == (["A", "B"], True, 3)
    page = await store.list_items(catalog, first=2, after="B", filter=ItemFilter(vendor="Acme"))
    assert ([i.id for i in page.items], page.has_next_page, page.total_count) == (["D"], False, 3)


# -- storage accounting and the limit -------------------------------------------------------------


async def test_storage_limit_stops_before_the_first_item_that_would_exceed_it(
    store: CatalogStore, catalog: str
) -> None:
    await store.ensure_catalog("shopify_other", "other.myshopify.com", "Other")
    await store.write_items("shopify_other", [make_item("9")])
    other = size_of(make_item("9"), "shopify_other")
    one = size_of(make_item("1"))
    limit = other + 2 * one + one // 2
    result = await store.write_items(catalog, [make_item(v) for v in ("1", "2", "3", "4")], limit_bytes=limit)
    assert (result.written, result.limit_reached, result.written_upto) == (2, True, 2)
    assert await store.total_storage_bytes() == other + 2 * one <= limit
    assert [i.id for i in await all_items(store)] == ["1", "2"]
    # stale and conflicting items are considered (they take no space) before the stop
    result = await store.write_items(
        catalog,
        [make_item("1", updated=-5), make_item("8", id="2"), make_item("3")],
        limit_bytes=limit,
    )
    assert (result.written, result.stale, len(result.conflicts)) == (0, 1, 1)
    assert (result.limit_reached, result.written_upto) == (True, 2)
    # a write that does not grow the catalog is allowed even at the limit
    result = await store.write_items(catalog, [make_item("1", updated=1)], limit_bytes=other)
    assert (result.written, result.limit_reached, result.written_upto) == (1, False, 1)
    await assert_counters_exact(store)


async def test_catalog_counters_follow_every_change(store: CatalogStore, catalog: str, clock: Clock) -> None:
    info = await store.get_catalog(catalog)
    assert (info.name, info.shop_domain, info.store_name, info.item_count, info.storage_bytes) == (
        CATALOG, SHOP, "Demo Store", 0, 0)
    await store.write_items(catalog, [make_item(str(v), product=str(v % 3)) for v in range(10)], run_id="r1")
    await assert_counters_exact(store)
    await store.write_items(catalog, [make_item("1", id="renamed-sku", updated=5, title="Longer title now")])
    await store.set_variant_image(catalog, "2", "https://cdn.example/2.png")
    await store.delete_product(catalog, "0", at(10))
    await assert_counters_exact(store)
    started_at = clock.advance(60)
    await store.write_items(catalog, [make_item("1", id="renamed-sku", updated=70)], run_id="r2")
    await store.sweep(catalog, "r2", started_at)
    await assert_counters_exact(store)
    info = await store.get_catalog(catalog)
    assert info.item_count == 1
    assert await store.total_storage_bytes() == info.storage_bytes


async def test_catalogs_are_created_once_listed_and_deleted_with_their_items(
    store: CatalogStore, catalog: str
) -> None:
    with pytest.raises(ValueError, match="catalog name"):
        await store.ensure_catalog("shopify/evil", SHOP, "Evil")
    again = await store.ensure_catalog(CATALOG, SHOP, "Renamed Store")
    assert (again.store_name, again.item_count) == ("Renamed Store", 0)
    await store.ensure_catalog("shopify_another", "another.myshopify.com", "Another")
    assert [c.name for c in await store.list_catalogs()] == ["shopify_another", CATALOG]
    await store.write_items(catalog, [make_item("1"), make_item("2", product="200")])
    await store.write_items("shopify_another", [make_item("1")])
    await store.delete_product(catalog, "200", at(100))
    assert await store.delete_catalog(catalog) == 1
    assert await store.get_catalog(catalog) is None
    assert await store.delete_catalog(catalog) == 0
    assert await store.total_storage_bytes() == size_of(make_item("1"), "shopify_another")
    # re-created empty, without the old tombstones
    await store.ensure_catalog(CATALOG, SHOP, "Demo Store")
    assert await all_items(store) == []
    assert (await store.write_items(catalog, [make_item("2", product="200", updated=50)])).written == 1
    assert [i.id for i in await all_items(store, "shopify_another")] == ["1"]


# -- runs, sync configurations, notifications -----------------------------------------------------


def _run(run_id: str, shop: str = SHOP, started: float = 0) -> SyncRun:
    return SyncRun(id=run_id, shop_domain=shop, started_at=at(started))


async def test_runs_are_saved_replaced_listed_newest_first_and_deleted(store: CatalogStore) -> None:
    for run in (_run("r1", started=0), _run("r2", started=10), _run("r3", shop="other.myshopify.com")):
        await store.save_run(run)
    finished = dataclasses.replace(
        _run("r1"),
        status=RunStatus.FAILED,
        phase="failed",
        object_count=12,
        bytes_downloaded=2048,
        file_size=4096,
        items_written=10,
        items_skipped=2,
        skipped=[SkipCount("missing_sku", 2, ["variant 5", "variant 6"])],
        malformed_lines=1,
        malformed_examples=["line 3: not JSON"],
        finished_at=at(20),
        error_code=SyncErrorCode.DUPLICATE_SKU,
        error_message="two variants share SKU X",
        bulk_operation_id="gid://shopify/BulkOperation/1",
        bulk_status="COMPLETED",
        bulk_url="https://files.example/1.jsonl",
        owner="gateway-1",
    )
    await store.save_run(finished)
    assert await store.get_run("r1") == finished
    assert [r.id for r in await store.list_runs(SHOP)] == ["r2", "r1"]
    assert [r.id for r in await store.list_runs(SHOP, last=1)] == ["r2"]
    assert await store.get_run("nope") is None
    assert await store.delete_runs(SHOP) == 2
    assert await store.list_runs(SHOP) == []
    assert [r.id for r in await store.list_runs("other.myshopify.com")] == ["r3"]


async def test_sync_configurations_round_trip(store: CatalogStore) -> None:
    config = SyncConfig(
        shop_domain="b-shop.myshopify.com",
        catalog_name="shopify_b-shop",
        identifier=Identifier.SKU,
        access_token="shpat_secret",
        status=SyncStatus.ERROR,
        active=False,
        error_code=SyncErrorCode.CATALOG_LIMIT_EXCEEDED,
        error_message="limit",
        store_name="B",
        webhook_ids=["gid://shopify/WebhookSubscription/1"],
        created_at=at(0),
        updated_at=at(5),
    )
    other = SyncConfig("a-shop.myshopify.com", "shopify_a-shop", Identifier.SHOPIFY_VARIANT_ID, "shpat_a",
                       created_at=at(0), updated_at=at(0))
    await store.save_sync(config)
    await store.save_sync(other)
    assert await store.get_sync("b-shop.myshopify.com") == config
    assert (await store.get_sync("b-shop.myshopify.com")).access_token == "shpat_secret"
    assert [c.shop_domain for c in await store.list_syncs()] == ["a-shop.myshopify.com", "b-shop.myshopify.com"]
    replaced = dataclasses.replace(other, status=SyncStatus.SYNCED, updated_at=at(9))
    await store.save_sync(replaced)
    assert await store.get_sync("a-shop.myshopify.com") == replaced
    assert await store.delete_sync("a-shop.myshopify.com") is True
    assert await store.delete_sync("a-shop.myshopify.com") is False
    assert await store.get_sync("a-shop.myshopify.com") is None


async def test_reconciliation_mark_only_moves_forward_and_touches_nothing_else(store: CatalogStore) -> None:
    config = SyncConfig(SHOP, CATALOG, Identifier.SKU, "shpat_x", status=SyncStatus.SYNCED,
                        created_at=at(0), updated_at=at(0))
    await store.save_sync(config)
    assert await store.mark_reconciled(SHOP, at(10)) is True
    assert await store.mark_reconciled(SHOP, at(5)) is False  # an older pass finishing late
    assert await store.get_sync(SHOP) == dataclasses.replace(config, reconciled_at=at(10))
    assert await store.mark_reconciled(SHOP, at(20)) is True
    assert (await store.get_sync(SHOP)).reconciled_at == at(20)
    assert await store.mark_reconciled("nobody.myshopify.com", at(30)) is False
    assert await store.get_sync("nobody.myshopify.com") is None


async def test_a_configuration_update_writes_only_the_fields_it_changes(store: CatalogStore) -> None:
    config = SyncConfig(SHOP, CATALOG, Identifier.SKU, "shpat_old", status=SyncStatus.IN_PROGRESS,
                        created_at=at(0), updated_at=at(0))
    await store.save_sync(config)
    seen: list[str] = []

    def finish(stored: SyncConfig) -> None:
        seen.append(stored.access_token)
        stored.status = SyncStatus.SYNCED
        stored.webhook_ids.append("gid://shopify/WebhookSubscription/1")

    assert await store.update_sync(SHOP, finish) is True
    assert seen == ["shpat_old"]
    assert await store.get_sync(SHOP) == dataclasses.replace(
        config, status=SyncStatus.SYNCED, webhook_ids=["gid://shopify/WebhookSubscription/1"])
    assert await store.update_sync("nobody.myshopify.com", finish) is False
    assert await store.get_sync("nobody.myshopify.com") is None


async def test_a_configuration_update_keeps_a_token_saved_while_it_was_decided(
    store: CatalogStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run recording its outcome decides on the configuration it read; an `enable` that saved a new
    access token after that read keeps it (simulated: the store decodes the token as it was)."""
    await store.save_sync(SyncConfig(SHOP, CATALOG, Identifier.SKU, "shpat_new", created_at=at(0), updated_at=at(0)))
    read_before_the_save = records.sync_from_document

    def decode(doc: dict[str, object]) -> SyncConfig:
        return dataclasses.replace(read_before_the_save(doc), access_token="shpat_old")

    for module in ("catalog_store.memory", "catalog_store.mongo.store"):
        monkeypatch.setattr(f"{module}.sync_from_document", decode)
    assert await store.update_sync(SHOP, lambda stored: setattr(stored, "status", SyncStatus.SYNCED))
    monkeypatch.undo()
    stored = await store.get_sync(SHOP)
    assert stored is not None and (stored.access_token, stored.status) == ("shpat_new", SyncStatus.SYNCED)


def _note(note_id: str, created: float) -> Notification:
    return Notification(note_id, SHOP, NotificationLevel.INFO, f"title {note_id}", "message", created_at=at(created))


async def test_notifications_newest_first_unread_filter_and_mark_read(store: CatalogStore) -> None:
    for note in (_note("n1", 0), _note("n2", 1), _note("n3", 2), _note("n4", 3), _note("n5", 3)):
        await store.add_notification(note)
    assert [n.id for n in await store.list_notifications()] == ["n5", "n4", "n3", "n2", "n1"]
    assert [n.id for n in await store.list_notifications(first=2)] == ["n5", "n4"]
    marked = await store.mark_notification_read("n2")
    assert marked == dataclasses.replace(_note("n2", 1), read=True)
    assert [n.id for n in await store.list_notifications(unread_only=True)] == ["n5", "n4", "n3", "n1"]
    assert await store.mark_notification_read("nope") is None
    sent = dataclasses.replace(_note("n1", 0), email_status=EmailStatus.FAILED, email_error="smtp down")
    await store.save_notification(sent)
    assert (await store.list_notifications())[-1] == sent
    with pytest.raises(StoreError):
        await store.add_notification(_note("n1", 9))
    with pytest.raises(ValueError):
        await store.list_notifications(first=-1)


# -- the lease ------------------------------------------------------------------------------------


async def test_lease_is_exclusive_until_it_expires_then_hands_over(store: CatalogStore, clock: Clock) -> None:
    assert await store.acquire_lease(SHOP, "A", 30) is True
    assert await store.acquire_lease(SHOP, "B", 30) is False
    assert await store.lease_owner(SHOP) == "A"
    assert await store.acquire_lease(SHOP, "A", 30) is True  # already ours: renewed
    clock.advance(20)
    assert await store.renew_lease(SHOP, "A", 30) is True
    clock.advance(29)
    assert await store.lease_owner(SHOP) == "A"
    assert await store.acquire_lease(SHOP, "B", 30) is False
    clock.advance(2)
    assert await store.lease_owner(SHOP) is None  # expired
    assert await store.acquire_lease(SHOP, "B", 30) is True
    assert await store.renew_lease(SHOP, "A", 30) is False  # lost
    assert await store.acquire_lease(SHOP, "A", 30) is False
    await store.release_lease(SHOP, "A")  # not the owner: no effect
    assert await store.lease_owner(SHOP) == "B"
    await store.release_lease(SHOP, "B")
    assert await store.lease_owner(SHOP) is None
    assert await store.acquire_lease(SHOP, "A", 30) is True
    assert await store.lease_owner("other.myshopify.com") is None
    with pytest.raises(ValueError):
        await store.acquire_lease(SHOP, "A", 0)
