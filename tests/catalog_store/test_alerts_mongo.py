"""Alerts on MongoDB with two gateway processes (two stores on one database): one event per change,
naming each subscriber once, whichever process lands the write; and the expiry index."""

from __future__ import annotations

import asyncio

import pytest

from catalog_store import MongoCatalogStore
from catalog_store.alerts import AlertRules, AlertType
from tests.catalog_store.helpers import CATALOG, SHOP, make_item
from tests.catalog_store.test_mongo import race_after_first_read
from tests.conftest import MongoStoreFactory

DROP = AlertType.PRICE_DROP


@pytest.fixture
async def pair(mongo_store_factory: MongoStoreFactory) -> tuple[MongoCatalogStore, MongoCatalogStore]:
    one = await mongo_store_factory()
    await one.ensure_catalog(CATALOG, SHOP, "Demo Store")
    two = await mongo_store_factory(database=one.database.name)
    await one.write_items(CATALOG, [make_item(str(n), product=str(n), price="100.00") for n in range(20)])
    await one.set_alert_rules(CATALOG, AlertRules(price_drop=True))
    for n in range(20):
        for user in ("alice", "bob"):
            await one.subscribe_to_alerts(CATALOG, str(n), user, (DROP,))
    return one, two


async def test_two_processes_writing_the_same_changes_make_each_event_once(
    pair: tuple[MongoCatalogStore, MongoCatalogStore],
) -> None:
    one, two = pair
    drops = [make_item(str(n), product=str(n), price="50.00", updated=1) for n in range(20)]
    # the same changes, e.g. a webhook and its redelivery applied by two processes at once
    await asyncio.gather(one.write_items(CATALOG, drops), two.write_items(CATALOG, list(reversed(drops))))
    events = await one.list_alert_events(CATALOG, first=100)
    assert sorted(e.item_id for e in events) == sorted(str(n) for n in range(20))
    assert all(e.user_ids == ("alice", "bob") for e in events)
    assert await one.count_alert_subscriptions(CATALOG) == 0


async def test_a_write_lost_to_a_newer_one_fires_only_for_what_landed(
    pair: tuple[MongoCatalogStore, MongoCatalogStore], monkeypatch: pytest.MonkeyPatch,
) -> None:
    one, two = pair

    async def newer() -> None:  # lands between our read and our write: ours is refused as stale
        await two.write_items(CATALOG, [make_item("0", product="0", price="10.00", updated=2)])

    race_after_first_read(monkeypatch, one, newer)
    await one.write_items(CATALOG, [make_item("0", product="0", price="60.00", updated=1)])
    [event] = await one.list_alert_events(CATALOG)
    assert (event.previous_value, event.new_value) == ("100.00", "10.00")


async def test_expiry_index(pair: tuple[MongoCatalogStore, MongoCatalogStore]) -> None:
    one, _ = pair
    indexes = {i["name"]: i async for i in await one.database["alert_subscriptions"].list_indexes()}
    assert indexes["expiry"].get("expireAfterSeconds") == 0
    assert indexes["key"].get("unique") is True


async def test_a_process_stopping_after_the_item_write_loses_no_event(
    pair: tuple[MongoCatalogStore, MongoCatalogStore], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The intent is written with the item: when the writer stops before making the event, another
    process makes it, once, naming the subscribers; a later write of the item keeps the intent."""
    one, two = pair

    async def stopped(catalog: str, landed: object) -> list[object]:  # the process dies here
        return []

    monkeypatch.setattr(one.alerts, "settle", stopped)
    await one.write_items(CATALOG, [make_item("0", product="0", price="50.00", updated=1),
                                    make_item("1", product="1", price="40.00", updated=1)])
    assert await two.list_alert_events(CATALOG) == []
    # another process writes item 1 again (a later change) before any recovery: the intent goes along
    await two.write_items(CATALOG, [make_item("1", product="1", price="40.00", title="Renamed", updated=2)])
    assert {e.item_id for e in await two.list_alert_events(CATALOG)} == {"1"}
    assert await two.recover_alert_events(0) == 1  # item 0's event
    assert await two.recover_alert_events(0) == 0  # once
    events = await two.list_alert_events(CATALOG)
    assert sorted((e.item_id, e.previous_value, e.new_value, e.user_ids) for e in events) == [
        ("0", "100.00", "50.00", ("alice", "bob")), ("1", "100.00", "40.00", ("alice", "bob"))]
    assert await two.database["items"].count_documents({"_alerts": {"$exists": True}}) == 0
