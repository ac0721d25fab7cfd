"""The demo's alert part and `catalog-gateway alert-receiver`."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from bulk.alerts.outbound import EVENT_ID_HEADER, SIGNATURE_HEADER, signature
from catalog_store.alerts import AlertType
from catalog_store.memory import MemoryCatalogStore
from gateway.cli.demo_alerts import alert_receiver, describe, subscribe_demo_users, wait_for_items
from tests.catalog_store.helpers import CATALOG, SHOP, make_item
from tests.secantus import free_port


async def test_demo_users_are_subscribed_and_events_described() -> None:
    store = MemoryCatalogStore()
    await store.ensure_catalog(CATALOG, SHOP, "Demo Store")
    await store.write_items(CATALOG, [make_item(str(n), product=str(n), price="20.00", quantity=n % 2 * 5)
                                      for n in range(10)])
    items = await wait_for_items(store, CATALOG, timeout=1)
    sold_out, in_stock = await subscribe_demo_users(store, CATALOG, items)
    assert [i.id for i in sold_out] == ["0", "2", "4"] and [i.id for i in in_stock] == ["1", "3", "5"]
    await store.write_items(CATALOG, [make_item("0", product="0", price="20.00", quantity=3, updated=1),
                                      make_item("1", product="1", price="16.00", quantity=5, updated=1)])
    events = await store.list_alert_events(CATALOG)
    assert sorted(describe(e) for e in events) == [
        "  alert: BACK_IN_STOCK item 0 0 -> 3 for demo-user-1 (webhook)",
        "  alert: PRICE_DROP item 1 20.00 -> 16.00 for demo-user-1 (webhook)",
    ]
    assert {e.type for e in events} == {AlertType.BACK_IN_STOCK, AlertType.PRICE_DROP}


async def test_alert_receiver_prints_verified_alerts_and_refuses_others(capsys) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    task = asyncio.create_task(alert_receiver("127.0.0.1", port, "s3cret"))
    try:
        body = b'{"id":"e1","type":"PRICE_DROP"}'
        async with aiohttp.ClientSession() as session:
            for _ in range(100):
                try:
                    async with session.post(f"http://127.0.0.1:{port}/", data=body, headers={
                            SIGNATURE_HEADER: signature(body, "s3cret"), EVENT_ID_HEADER: "e1"}) as good:
                        assert good.status == 204
                    break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
            async with session.post(f"http://127.0.0.1:{port}/", data=body,
                                    headers={SIGNATURE_HEADER: signature(body, "wrong")}) as bad:
                assert bad.status == 401
    finally:
        task.cancel()
    out = capsys.readouterr()
    assert "verified alert e1" in out.out and "bad signature" in out.err


async def test_every_subscribed_item_is_changed_when_the_kinds_differ_in_number(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """One sold-out item and three in-stock ones: all four change (pairing them stopped at one)."""
    import random

    from gateway.cli import demo_alerts

    class Shop:
        def __init__(self) -> None:
            self.changes: list[tuple[str, str]] = []

        def set_price(self, variant_id: str | int, price: str) -> object:
            self.changes.append(("price", str(variant_id)))
            return None

        def set_inventory(self, variant_id: str | int, quantity: int) -> object:
            self.changes.append(("inventory", str(variant_id)))
            return None

    async def no_wait(_: float) -> None:
        return None

    monkeypatch.setattr(demo_alerts, "FIRST_CHANGE_AFTER", 0.0)
    monkeypatch.setattr(demo_alerts.asyncio, "sleep", no_wait)
    shop = Shop()
    sold_out = [make_item("0", quantity=0)]
    in_stock = [make_item(str(n), price="20.00", quantity=5) for n in (1, 2, 3)]
    await demo_alerts.change_subscribed_items(shop, sold_out, in_stock, random.Random(1))
    assert sorted(shop.changes) == [("inventory", "0"), ("price", "1"), ("price", "2"), ("price", "3")]
