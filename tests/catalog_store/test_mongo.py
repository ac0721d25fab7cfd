"""MongoCatalogStore specifics: indexes, document layout, errors, and writes racing other writers
(the server-side `_rev` guard and the settle-by-token path)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from catalog_store import MemoryCatalogStore, MongoCatalogStore, open_store
from catalog_store.errors import StoreError, StoreUnavailable
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
from tests.conftest import MongoStoreFactory
from tests.secantus import free_port


@pytest.fixture
async def mongo(mongo_store_factory: MongoStoreFactory) -> MongoCatalogStore:
    store = await mongo_store_factory()
    await store.ensure_catalog(CATALOG, SHOP, "Demo Store")
    return store


@pytest.fixture
async def rival(mongo: MongoCatalogStore, mongo_store_factory: MongoStoreFactory) -> MongoCatalogStore:
    """A second store (another gateway process) on the same database."""
    return await mongo_store_factory(database=mongo.database.name)


def race_after_first_read(
    monkeypatch: pytest.MonkeyPatch, store: MongoCatalogStore, interfere: Callable[[], Awaitable[object]]
) -> None:
    """Run `interfere` right after `store` first reads the batch's stored items, before it writes."""
    writer = store._items
    original = writer.snapshot
    calls = 0

    async def snapshot(*args: object, **options: object):  # type: ignore[no-untyped-def]
        nonlocal calls
        result = await original(*args, **options)  # type: ignore[arg-type]
        calls += 1
        if calls == 1:
            await interfere()
        return result

    monkeypatch.setattr(writer, "snapshot", snapshot)


async def test_indexes_are_created_idempotently(mongo: MongoCatalogStore, rival: MongoCatalogStore) -> None:
    await mongo.start()  # started twice, and `rival` started on the same database
    names = {
        collection: {index["name"] async for index in await mongo.database[collection].list_indexes()}
        for collection in ("items", "tombstones", "runs", "notifications")
    }
    assert names["items"] >= {"catalog_item_id", "catalog_product", "catalog_inventory_item"}
    assert "catalog_product" in names["tombstones"]
    assert "shop_started" in names["runs"] and "created" in names["notifications"]


async def test_documents_keep_money_as_numbers_and_exact_strings(mongo: MongoCatalogStore) -> None:
    item = make_item(str(2**53 + 1), price="19.99", compare_at_price="0.10")
    await mongo.write_items(CATALOG, [item], run_id="r1")
    doc = await mongo.database["items"].find_one({"shopify_variant_id": str(2**53 + 1)})
    assert (doc["price"], doc["_price"]) == (19.99, "19.99")
    assert (doc["compare_at_price"], doc["_compare_at_price"]) == (0.1, "0.10")
    assert doc["_id"] == f"{CATALOG}/{2**53 + 1}" and doc["shopify_variant_id"] == str(2**53 + 1)
    assert (doc["_size"], doc["_run_id"]) == (size_of(item), "r1")


async def test_newer_concurrent_write_wins_over_ours(
    mongo: MongoCatalogStore, rival: MongoCatalogStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    await mongo.write_items(CATALOG, [make_item("1", updated=0), make_item("2", updated=0)])
    race_after_first_read(monkeypatch, mongo, lambda: rival.write_items(CATALOG, [make_item("1", updated=20)]))
    result = await mongo.write_items(CATALOG, [make_item("1", updated=10), make_item("2", updated=10)])
    assert (result.written, result.stale) == (1, 1)
    assert [i.updated_at for i in await all_items(mongo)] == [at(20), at(10)]
    await assert_counters_exact(mongo)


async def test_id_taken_concurrently_becomes_a_conflict(
    mongo: MongoCatalogStore, rival: MongoCatalogStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    race_after_first_read(
        monkeypatch, mongo, lambda: rival.write_items(CATALOG, [make_item("9", id="X")], run_id="rival")
    )
    result = await mongo.write_items(CATALOG, [make_item("10"), make_item("11", id="X"), make_item("12")])
    assert result.written == 2
    assert [(c.item_id, c.variant_id, c.existing_variant_id, c.existing_run_id) for c in result.conflicts] == [
        ("X", "11", "9", "rival")]
    assert sorted(i.shopify_variant_id for i in await all_items(mongo)) == ["10", "12", "9"]
    await assert_counters_exact(mongo)


async def test_replacement_hitting_a_concurrent_id_leaves_the_rest_of_the_batch_written(
    mongo: MongoCatalogStore, rival: MongoCatalogStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The unordered bulk write reports the refused write and goes on: every other write of the batch
    lands, and the loser is a conflict."""
    await mongo.write_items(CATALOG, [make_item(v) for v in ("1", "2", "3", "4")])
    race_after_first_read(monkeypatch, mongo, lambda: rival.write_items(CATALOG, [make_item("9", id="Y")]))
    batch = [make_item("1", id="Y", updated=5)] + [make_item(v, updated=5, price="1.00") for v in ("2", "3", "4")]
    result = await mongo.write_items(CATALOG, batch)
    assert (result.written, [c.variant_id for c in result.conflicts]) == (3, ["1"])
    stored = {i.shopify_variant_id: i for i in await all_items(mongo)}
    assert stored["1"] == make_item("1") and stored["9"].id == "Y"
    assert all(stored[v].price == "1.00" for v in ("2", "3", "4"))
    await assert_counters_exact(mongo)


async def test_a_variant_written_twice_in_a_batch_counts_both_writes_when_the_last_landed(
    mongo: MongoCatalogStore, rival: MongoCatalogStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    await mongo.write_items(CATALOG, [make_item("1"), make_item("2")])
    writer = mongo._items
    original = writer._bulk
    calls = 0

    async def bulk(*args: object) -> bool:
        nonlocal calls
        landed = await original(*args)  # type: ignore[arg-type]
        calls += 1
        if calls == 1:  # between the batch's first and second writes of each variant
            await rival.write_items(CATALOG, [make_item("2", updated=20)])
        return landed

    monkeypatch.setattr(writer, "_bulk", bulk)
    batch = [make_item("1", updated=5), make_item("2", updated=5), make_item("1", updated=10),
             make_item("2", updated=10)]
    result = await mongo.write_items(CATALOG, batch)
    assert (result.written, result.stale) == (2, 2)
    assert [i.updated_at for i in await all_items(mongo)] == [at(10), at(20)]
    await assert_counters_exact(mongo)


async def test_concurrent_insert_of_the_same_variant_is_replaced_when_older(
    mongo: MongoCatalogStore, rival: MongoCatalogStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    race_after_first_read(monkeypatch, mongo, lambda: rival.write_items(CATALOG, [make_item("1", updated=0)]))
    result = await mongo.write_items(CATALOG, [make_item("1", updated=10, price="3.00")])
    grown = size_of(make_item("1", price="3.00")) - size_of(make_item("1"))
    assert (result.written, result.stale, result.bytes_delta) == (1, 0, grown)
    assert await all_items(mongo) == [make_item("1", updated=10, price="3.00")]
    await assert_counters_exact(mongo)


async def _write_rounds_concurrently(stores: list[MongoCatalogStore]) -> None:
    variants = [str(v) for v in range(1, 31)]
    await asyncio.gather(
        *(
            stores[round_ % len(stores)].write_items(
                CATALOG, [make_item(v, updated=round_, price=f"{round_}.00") for v in variants]
            )
            for round_ in range(6)
        )
    )
    stored = await all_items(stores[0])
    assert {(i.updated_at, i.price) for i in stored} == {(at(5), "5.00")}
    assert sorted(i.shopify_variant_id for i in stored) == sorted(str(v) for v in range(1, 31))
    await assert_counters_exact(stores[0])


async def test_concurrent_batches_of_one_process_converge_to_the_newest(mongo: MongoCatalogStore) -> None:
    await _write_rounds_concurrently([mongo])


async def test_two_processes_writing_the_same_variants_converge_to_the_newest(
    mongo: MongoCatalogStore, rival: MongoCatalogStore
) -> None:
    await _write_rounds_concurrently([mongo, rival])


async def test_one_contender_wins_an_expired_lease(mongo_store_factory: MongoStoreFactory) -> None:
    first = await mongo_store_factory(clock=Clock())
    others = [await mongo_store_factory(database=first.database.name, clock=first.clock) for _ in range(5)]
    assert await first.acquire_lease(SHOP, "first", 10)
    first.clock.advance(11)  # type: ignore[attr-defined]
    for _ in range(5):
        won = await asyncio.gather(*(s.acquire_lease(SHOP, f"p{n}", 10) for n, s in enumerate(others)))
        assert sum(won) == 1
        winner = f"p{won.index(True)}"
        assert await first.lease_owner(SHOP) == winner
        assert await others[won.index(True)].renew_lease(SHOP, winner, 10)
        first.clock.advance(11)  # type: ignore[attr-defined]


async def test_unreachable_or_invalid_server_is_reported_as_unavailable() -> None:
    unreachable = MongoCatalogStore(f"mongodb://127.0.0.1:{free_port()}/", server_selection_timeout=0.3)
    with pytest.raises(StoreUnavailable) as raised:
        await unreachable.start()
    assert raised.value.retryable and "MONGODB_URI" in raised.value.fix
    with pytest.raises(StoreUnavailable):
        await MongoCatalogStore("http://not-mongo").start()
    with pytest.raises(StoreError, match="not started"):
        await MongoCatalogStore("mongodb://127.0.0.1/").get_sync(SHOP)


def test_open_store_picks_the_implementation() -> None:
    assert isinstance(open_store(None), MemoryCatalogStore) and not open_store(None).persistent
    store = open_store("mongodb://127.0.0.1:27017/", "gateway_db")
    assert isinstance(store, MongoCatalogStore) and store.persistent


# -- counters: sweep's recount never overwrites a concurrent writer's $inc ------------------------------


async def test_a_recount_waits_for_a_live_writer_between_its_writes_and_its_count(
    mongo: MongoCatalogStore, rival: MongoCatalogStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = datetime.now(UTC) - timedelta(hours=1)
    await mongo.write_items(CATALOG, [make_item("1"), make_item("2")], run_id="run-1")
    landed, release = asyncio.Event(), asyncio.Event()
    send = rival._items._send

    async def send_then_pause(*args: Any, **kwargs: Any) -> bool:
        result = await send(*args, **kwargs)
        landed.set()  # the item is stored, its count not yet moved: where a crash or a recount hurts
        await release.wait()
        return result

    monkeypatch.setattr(rival._items, "_send", send_then_pause)
    # A writer of the run's previous holder died before its count: the sweep must recount.
    await mongo.database["catalogs"].update_one({"_id": CATALOG}, {
        "$inc": {"item_count": -1}, "$push": {"_moving": {"t": 1, "run": "run-1", "at": datetime.now(UTC)}}})
    webhook = asyncio.create_task(rival.write_items(CATALOG, [make_item("3", product="200")]))
    await landed.wait()
    sweep = asyncio.create_task(mongo.sweep(CATALOG, "run-1", started))
    await asyncio.sleep(0.3)
    assert not sweep.done()  # it waits for the writer instead of counting under it
    release.set()
    await asyncio.gather(webhook, sweep)
    await assert_counters_exact(mongo)
    assert (await mongo.get_catalog(CATALOG)).item_count == 3  # type: ignore[union-attr]


async def test_a_recount_heals_counters_a_dead_writer_left_short(mongo: MongoCatalogStore) -> None:
    started = datetime.now(UTC) - timedelta(hours=1)
    await mongo.write_items(CATALOG, [make_item("1"), make_item("2")], run_id="run-1")
    catalogs = mongo.database["catalogs"]
    now = datetime.now(UTC)
    # Two writers died between their writes and their count: the run's previous holder (its
    # registration is dead as soon as the run sweeps) and a webhook worker, long ago.
    await catalogs.update_one({"_id": CATALOG}, {
        "$inc": {"item_count": -2, "storage_bytes": -100},
        "$push": {"_moving": {"$each": [{"t": 1, "run": "run-1", "at": now},
                                        {"t": 2, "run": None, "at": now - timedelta(minutes=5)}]}}})
    await asyncio.wait_for(mongo.sweep(CATALOG, "run-1", started), 5)  # no wait for the dead
    await assert_counters_exact(mongo)
    assert (await catalogs.find_one({"_id": CATALOG}))["_moving"] == []  # type: ignore[index]
