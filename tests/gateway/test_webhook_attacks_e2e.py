"""Signed webhooks with impossible shapes or unsigned headers that lie, sent over HTTP the way they
were reported as attacks: each is refused or harmless, with the catalog unchanged, and the product
stays in sync afterwards (later changes apply, a full sync lists it again)."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import msgspec
import orjson
import pytest

from catalog_store.items import CatalogItem
from catalog_store.store import CatalogStore
from shopify_emulator.payloads import product_payload
from tests.catalog_store.helpers import all_items
from tests.gateway.e2e import NOTIFICATIONS, wait_finished
from tests.gateway.test_webhooks_e2e import (
    CATALOG,
    SECRET,
    SHOP,
    Hooks,
    eventually,
    hooked,
    product_with_variants,
    sign,
    store,  # noqa: F401  (the memory and mongo store fixture)
)

REFUSED_TITLE = "Shopify update not applied: invalid webhook payload"


async def post(hooks: Hooks, topic: str, body: bytes, **headers: str) -> tuple[int, str]:
    """A delivery signed with the app's secret; `headers` add or override Shopify's (unsigned) ones."""
    sent = {"Content-Type": "application/json", "X-Shopify-Topic": topic, "X-Shopify-Shop-Domain": SHOP,
            "X-Shopify-Webhook-Id": str(uuid.uuid4()), "X-Shopify-Hmac-Sha256": sign(body, SECRET),
            "X-Shopify-Triggered-At": datetime.now(UTC).isoformat(), **headers}
    async with aiohttp.ClientSession() as session:
        async with session.post(hooks.running.base_url + "/webhooks/shopify", data=body, headers=sent) as response:
            return response.status, sent["X-Shopify-Webhook-Id"]


async def dump(hooks: Hooks) -> list[CatalogItem]:
    return await all_items(hooks.store, CATALOG)


async def refusal_notices(hooks: Hooks) -> list[dict[str, Any]]:
    notifications = (await hooks.running.query(NOTIFICATIONS))["notifications"]
    return [n for n in notifications if n["title"] == REFUSED_TITLE]


def later(payload: dict[str, Any], seconds: int = 1) -> str:
    return (datetime.fromisoformat(payload["updated_at"]) + timedelta(seconds=seconds)).isoformat()


async def resync(hooks: Hooks) -> dict[str, Any]:
    await hooks.running.query("mutation($s: String!) { resyncShopifyCatalog(shopDomain: $s) { id } }", {"s": SHOP})
    return (await wait_finished(hooks.running, SHOP))["lastRun"]


async def test_impossible_product_shapes_change_nothing_and_are_notified_once_per_product(
        caplog: pytest.LogCaptureFixture) -> None:
    async with hooked() as hooks:
        product = product_with_variants(hooks.shop)
        genuine = product_payload(product, hooks.shop.tz)
        before = await dump(hooks)
        assert len([i for i in before if i.shopify_product_id == str(product.id)]) == len(product.variants)

        def shaped(**changes: Any) -> bytes:
            # the standard encoder, which writes integers of any size (2^64 included)
            return json.dumps({**genuine, "updated_at": later(genuine), **changes}).encode()

        every_price_invalid = [{**v, "price": "9" * 400} for v in genuine["variants"]]
        bodies = [shaped(variants=None), shaped(variants=[]), shaped(variants=every_price_invalid),
                  shaped(variants="nope"), shaped(updated_at="9999-12-31T23:59:59Z")]
        ids = [shaped(id=2**64), shaped(id="abc"), shaped(id=-5), shaped(id=0), shaped(id=float(product.id))]
        webhook_ids = []
        with caplog.at_level(logging.ERROR, logger="bulk.webhooks"):
            for body in bodies + ids:
                status, webhook_id = await post(hooks, "products/update", body)
                assert status == 200  # signed: accepted, then refused by the worker (Shopify must not retry)
                webhook_ids.append(webhook_id)
            await hooks.settle()
        assert await dump(hooks) == before
        assert hooks.processor.stats["refused"] == len(bodies) + len(ids)
        assert (await hooks.store.inbox_status(SHOP)).failed_total == len(bodies) + len(ids)  # realtime.failedTotal
        logged = caplog.text
        assert all(webhook_id in logged for webhook_id in webhook_ids)  # each refusal is logged with its id
        notices = await refusal_notices(hooks)
        about_product = [n for n in notices if f"product {product.id} " in n["message"]]
        assert len(about_product) == 1, notices  # five refused bodies of one product: one notice
        notifications = (await hooks.running.query(NOTIFICATIONS))["notifications"]
        assert not [n for n in notifications if n["title"] == "Shopify change not applied"]  # not one per delivery
        assert webhook_ids[0] in about_product[0]["message"] and "How to fix" in about_product[0]["message"]
        # The product still follows Shopify.
        hooks.shop.set_price(product.variants[0].id, "3.21")
        await eventually(lambda: hooks.item(product.variants[0].id), lambda i: i.price == "3.21", "later change")


@pytest.mark.parametrize("topic", ["products/delete", "inventory_levels/update", "bulk_operations/finish"])
async def test_a_product_body_under_another_topic_is_refused(topic: str) -> None:
    async with hooked() as hooks:
        product = product_with_variants(hooks.shop)
        before = await dump(hooks)
        status, _ = await post(hooks, topic, orjson.dumps(product_payload(product, hooks.shop.tz)))
        assert status == 200
        await hooks.settle()
        assert hooks.processor.stats["refused"] == 1
        assert await dump(hooks) == before


async def test_a_forged_triggered_at_does_not_lock_a_product_and_a_full_sync_lists_it_again(
        store: CatalogStore) -> None:  # noqa: F811
    async with hooked(store) as hooks:
        product = product_with_variants(hooks.shop)
        variant_ids = [v.id for v in product.variants]
        before = await dump(hooks)
        # A signed delete (the body is only the id) with a Triggered-At far in the future.
        status, _ = await post(hooks, "products/delete", orjson.dumps({"id": product.id}),
                               **{"X-Shopify-Triggered-At": "2099-01-01T00:00:00Z"})
        assert status == 200
        await hooks.settle()
        assert await hooks.items(variant_ids) == []
        # The product exists in Shopify: its next change applies (the tombstone is at the receive time) ...
        await asyncio.sleep(1.1)  # Shopify's updated_at has second precision
        hooks.shop.set_price(variant_ids[0], "7.77")
        await eventually(lambda: hooks.item(variant_ids[0]), lambda i: i is not None and i.price == "7.77",
                         "update after a delete with a forged time")
        # ... and a full sync started after the tombstone lists the whole product again, counted honestly.
        run = await resync(hooks)
        assert run["status"] == "COMPLETED"
        after = await dump(hooks)
        assert sorted(i.shopify_variant_id for i in after) == sorted(i.shopify_variant_id for i in before)
        assert run["itemsWritten"] == len(after) and run["itemsSkipped"] == len(list(hooks.shop.variant_ids())) - len(after)
        assert "stale" not in {s["reason"] for s in run["skipped"]}


async def test_a_far_future_updated_at_stored_before_is_replaced_by_the_next_change_and_full_sync() -> None:
    async with hooked() as hooks:
        product = product_with_variants(hooks.shop)
        variant = product.variants[0]
        stored = await hooks.item(variant.id)
        assert stored is not None
        # What the year-9999 payload left in the catalog before payloads were checked against the clock.
        locked = msgspec.structs.replace(stored, price="0.01", updated_at=datetime(9999, 12, 31, tzinfo=UTC))
        await hooks.store.write_items(CATALOG, [locked])
        hooks.shop.set_price(variant.id, "4.44")
        await eventually(lambda: hooks.item(variant.id), lambda i: i.price == "4.44", "change after year 9999")
        await hooks.store.write_items(CATALOG, [locked])
        run = await resync(hooks)
        assert run["status"] == "COMPLETED"
        assert (await hooks.item(variant.id)).price == "4.44"


async def test_stale_writes_of_a_full_sync_are_counted_as_skipped(store: CatalogStore) -> None:  # noqa: F811
    async with hooked(store) as hooks:
        shop, running = hooks.shop, hooks.running
        product = product_with_variants(shop)
        first = shop.current_bulk_operation()
        hooks.emulator.faults.slow_bulk(0.5, times=1, shop=SHOP)
        await running.query("mutation($s: String!) { resyncShopifyCatalog(shopDomain: $s) { id } }", {"s": SHOP})
        await eventually(lambda: _value(shop.current_bulk_operation()),
                         lambda op: op is not first and op is not None and op.produced > 0, "bulk snapshot")
        shop.delete_product(product.id)  # during the run: its snapshot still lists the product
        await eventually(lambda: hooks.items([v.id for v in product.variants]), lambda items: items == [],
                         "delete applied")
        run = (await wait_finished(running, SHOP))["lastRun"]
        assert run["status"] == "COMPLETED"
        stale = {s["reason"]: s["count"] for s in run["skipped"]}.get("stale", 0)
        assert stale == len(product.variants)  # refused by the tombstone: skipped, not written
        assert run["itemsWritten"] == (await store.get_catalog(CATALOG)).item_count


async def _value(value: Any) -> Any:
    return value
