"""The alert part of the CatalogStore contract, on both stores: rules, subscriptions, detection on
the write path, the per-minute cap and outbound delivery bookkeeping."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from catalog_store.alerts import (
    AlertRules,
    AlertSource,
    AlertTargetNotFound,
    AlertType,
    DeliveryState,
    InvalidAlertInput,
    ItemInStock,
)
from catalog_store.store import CatalogStore
from tests.catalog_store.helpers import CATALOG, SHOP, Clock, make_item

BIS = AlertType.BACK_IN_STOCK
DROP = AlertType.PRICE_DROP
ON = AlertRules(back_in_stock=True, price_drop=True, price_drop_min_percent=10.0)


@pytest.fixture
async def catalog(store: CatalogStore, clock: Clock) -> str:
    await store.ensure_catalog(CATALOG, SHOP, "Demo Store")
    await store.write_items(CATALOG, [make_item("1", price="100.00", quantity=0),
                                      make_item("2", price="50.00", quantity=3)])
    return CATALOG


@pytest.fixture
def clock(store: CatalogStore) -> Clock:
    clock = Clock()
    store.clock = clock  # type: ignore[attr-defined]
    return clock


async def test_rules_default_off_and_set(store: CatalogStore, catalog: str) -> None:
    assert await store.get_alert_rules(catalog) == AlertRules()
    assert not (await store.get_alert_rules(catalog)).enabled
    assert await store.set_alert_rules(catalog, ON) == ON
    assert await store.get_alert_rules(catalog) == ON
    with pytest.raises(AlertTargetNotFound):
        await store.set_alert_rules("shopify_nope", ON)


async def test_subscribe_refusals(store: CatalogStore, catalog: str) -> None:
    with pytest.raises(ItemInStock):
        await store.subscribe_to_alerts(catalog, "2", "u1", (BIS,))
    with pytest.raises(AlertTargetNotFound):
        await store.subscribe_to_alerts(catalog, "404", "u1", (DROP,))
    with pytest.raises(AlertTargetNotFound):
        await store.subscribe_to_alerts("shopify_nope", "1", "u1", (DROP,))
    with pytest.raises(InvalidAlertInput):
        await store.subscribe_to_alerts(catalog, "1", "u1", ())
    # a price-drop subscription is accepted in stock; raising the threshold makes "2" out of stock
    assert (await store.subscribe_to_alerts(catalog, "2", "u1", (DROP,))).types == (DROP,)
    await store.set_alert_rules(catalog, AlertRules(back_in_stock=True, back_in_stock_threshold=3))
    assert set((await store.subscribe_to_alerts(catalog, "2", "u1", (BIS,))).types) == {BIS, DROP}
    assert len(await store.list_alert_subscriptions(catalog)) == 1  # one per (user, item)


async def test_price_drop_fires_once_for_its_subscribers(store: CatalogStore, catalog: str, clock: Clock) -> None:
    await store.set_alert_rules(catalog, ON)
    a = await store.subscribe_to_alerts(catalog, "1", "alice", (DROP, BIS))
    await store.subscribe_to_alerts(catalog, "1", "bob", (DROP,))
    await store.subscribe_to_alerts(catalog, "2", "carol", (DROP,))
    clock.advance(1)
    # 100.00 -> 95.00 is a 5 % drop: below the bound, no event
    await store.write_items(catalog, [make_item("1", price="95.00", quantity=0, updated=1)])
    assert await store.list_alert_events(catalog) == []
    # 95.00 -> 85.50 is exactly 10 %: fires, names both, consumes their PRICE_DROP
    await store.write_items(catalog, [make_item("1", price="85.50", quantity=0, updated=2)])
    [event] = await store.list_alert_events(catalog)
    assert (event.type, event.previous_value, event.new_value) == (DROP, "95.00", "85.50")
    assert event.user_ids == ("alice", "bob") and event.source is AlertSource.WEBHOOK
    # the same write replayed and a further drop fire nothing: the subscribers were consumed
    await store.write_items(catalog, [make_item("1", price="85.50", quantity=0, updated=2)])
    await store.write_items(catalog, [make_item("1", price="10.00", quantity=0, updated=3)])
    assert len(await store.list_alert_events(catalog)) == 1
    [left] = await store.list_alert_subscriptions(catalog, item_id="1")
    assert left.id == a.id and left.types == (BIS,)
    # a price rise and a stale write fire nothing either
    await store.write_items(catalog, [make_item("2", price="60.00", updated=4)])
    await store.write_items(catalog, [make_item("2", price="1.00", updated=3)])
    assert len(await store.list_alert_events(catalog)) == 1


async def test_back_in_stock_from_a_sync(store: CatalogStore, catalog: str) -> None:
    await store.set_alert_rules(catalog, AlertRules(back_in_stock=True, back_in_stock_threshold=2))
    await store.subscribe_to_alerts(catalog, "1", "alice", (BIS,))
    await store.write_items(catalog, [make_item("1", price="100.00", quantity=2, updated=1)], run_id="r1")
    assert await store.list_alert_events(catalog) == []  # 0 -> 2 stays at the threshold
    await store.write_items(catalog, [make_item("1", price="100.00", quantity=7, updated=2)], run_id="r1")
    [event] = await store.list_alert_events(catalog, type=BIS)
    assert (event.previous_value, event.new_value, event.source) == ("2", "7", AlertSource.SYNC)
    assert await store.list_alert_events(catalog, type=DROP) == []
    assert await store.list_alert_subscriptions(catalog) == []
    assert await store.count_alert_subscriptions(catalog) == 0


async def test_alerts_off_fire_nothing(store: CatalogStore, catalog: str) -> None:
    await store.subscribe_to_alerts(catalog, "1", "alice", (DROP,))
    await store.write_items(catalog, [make_item("1", price="1.00", quantity=0, updated=1)],
                            source=AlertSource.RECONCILE)
    assert await store.list_alert_events(catalog) == []
    assert await store.count_alert_subscriptions(catalog) == 1


async def test_expired_subscriptions_never_fire(store: CatalogStore, catalog: str, clock: Clock) -> None:
    await store.set_alert_rules(catalog, ON)
    await store.subscribe_to_alerts(catalog, "1", "alice", (DROP,))
    clock.advance(timedelta(days=90).total_seconds())
    assert await store.list_alert_subscriptions(catalog) == []
    await store.write_items(catalog, [make_item("1", price="1.00", quantity=0, updated=1)])
    assert await store.list_alert_events(catalog) == []


async def test_cap_makes_events_wait(store: CatalogStore, catalog: str, clock: Clock) -> None:
    await store.set_alert_rules(catalog, AlertRules(price_drop=True, max_events_per_minute=2))
    for n in range(5):
        await store.write_items(catalog, [make_item(f"c{n}", product=f"p{n}", price="10.00")])
        await store.subscribe_to_alerts(catalog, f"c{n}", "u", (DROP,))
    now = clock.now
    await store.write_items(catalog, [make_item(f"c{n}", product=f"p{n}", price="9.00", updated=1) for n in range(5)])
    events = await store.list_alert_events(catalog)
    assert len(events) == 5  # none dropped
    releases = sorted(e.release_at for e in events)
    minute = now.replace(second=0, microsecond=0)
    assert releases[:2] == [now, now]
    assert releases[2:] == [minute + timedelta(minutes=1)] * 2 + [minute + timedelta(minutes=2)]
    assert len(await store.released_alert_events(catalog, now, now)) == 2
    assert await store.claim_alert_deliveries(limit=10, lease_seconds=30) != []


async def test_deliveries_claimed_once_retried_and_given_up(store: CatalogStore, catalog: str, clock: Clock) -> None:
    await store.set_alert_rules(catalog, ON)
    await store.subscribe_to_alerts(catalog, "1", "alice", (DROP,))
    await store.write_items(catalog, [make_item("1", price="1.00", quantity=0, updated=1)])
    [event] = await store.list_alert_events(catalog)
    first, second = await asyncio.gather(store.claim_alert_deliveries(limit=5, lease_seconds=30),
                                         store.claim_alert_deliveries(limit=5, lease_seconds=30))
    assert [d.event.id for d in first + second] == [event.id]
    retry = clock.now + timedelta(seconds=10)
    assert await store.finish_alert_delivery(event.id, delivered=False, retry_at=retry, error="503") \
        is DeliveryState.PENDING
    assert await store.claim_alert_deliveries(limit=5, lease_seconds=30) == []
    clock.advance(10)
    [again] = await store.claim_alert_deliveries(limit=5, lease_seconds=30)
    assert again.attempts == 1
    late = event.release_at + timedelta(hours=25)
    assert await store.finish_alert_delivery(event.id, delivered=False, retry_at=late) is DeliveryState.FAILED
    clock.advance(timedelta(hours=30).total_seconds())
    assert await store.claim_alert_deliveries(limit=5, lease_seconds=30) == []


async def test_delete_catalog_ends_everything(store: CatalogStore, catalog: str) -> None:
    await store.set_alert_rules(catalog, ON)
    await store.subscribe_to_alerts(catalog, "1", "alice", (DROP, BIS))
    await store.subscribe_to_alerts(catalog, "2", "bob", (DROP,))
    assert await store.count_alert_subscriptions(catalog) == 2
    await store.delete_catalog(catalog)
    await store.ensure_catalog(CATALOG, SHOP, "Demo Store")
    assert await store.count_alert_subscriptions(catalog) == 0
    assert await store.get_alert_rules(catalog) == AlertRules()


async def test_swept_items_end_their_subscriptions(store: CatalogStore, catalog: str, clock: Clock) -> None:
    await store.subscribe_to_alerts(catalog, "1", "alice", (DROP,))
    clock.advance(5)
    await store.write_items(catalog, [make_item("2", price="50.00", quantity=3, updated=1)], run_id="r2")
    assert await store.sweep(catalog, "r2", clock.now) == 1
    assert await store.list_alert_subscriptions(catalog) == []


async def test_deleted_products_end_their_subscriptions_later(store: CatalogStore, catalog: str) -> None:
    await store.subscribe_to_alerts(catalog, "1", "alice", (DROP,))
    await store.subscribe_to_alerts(catalog, "2", "bob", (DROP,))
    await store.delete_product(catalog, "100", make_item("1").updated_at)  # type: ignore[arg-type]
    # a webhook rewrites the kept variant right after the delete (as for a removed variant)
    await store.write_items(catalog, [make_item("2", price="50.00", quantity=3, updated=1)])
    assert await store.end_orphaned_alert_subscriptions() == 1
    assert [s.user_id for s in await store.list_alert_subscriptions(catalog)] == ["bob"]
    assert await store.end_orphaned_alert_subscriptions() == 0
