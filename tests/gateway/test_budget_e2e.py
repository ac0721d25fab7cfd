"""End to end over real HTTP, on both stores: inventory changes read only their variants' quantities
(a batch in one call), are versioned on their own, and reconciliation brings in every kind of change
no webhook brought (product changes, inventory changes, creates, deletes), so the catalog ends equal
to the emulator's store after any interleaving of webhooks, lost webhooks, passes and a full sync."""

from __future__ import annotations

import random
from typing import Any

import orjson

from bulk.mapping.payloads import product_from_rest, product_items
from bulk.shopify.budget import Priority
from bulk.webhooks.delivery import Outcome, WebhookDelivery
from catalog_store.items import CATALOG_FIELDS, CatalogItem, Identifier
from catalog_store.store import CatalogStore
from shopify_emulator.payloads import inventory_level_payload, product_payload
from tests.gateway.e2e import wait_finished
from tests.gateway.test_webhooks_e2e import CATALOG, SHOP, Hooks, eventually, hooked, product_with_variants
from tests.gateway.test_webhooks_e2e import store as store  # the fixture of both stores


async def catalog_items(hooks: Hooks) -> dict[str, dict[str, Any]]:
    """Every item of the catalog, its catalog fields by variant id."""
    found: dict[str, dict[str, Any]] = {}
    after = None
    while True:
        page = await hooks.store.list_items(CATALOG, first=250, after=after)
        for item in page.items:
            found[item.shopify_variant_id] = _fields(item)
        if not page.has_next_page:
            return found
        after = page.items[-1].id


def shop_items(hooks: Hooks) -> dict[str, dict[str, Any]]:
    """What the catalog must hold for the emulator's store as it is now."""
    expected: dict[str, dict[str, Any]] = {}
    for product in hooks.shop.products():
        mapped = product_items(product_from_rest(product_payload(product, hooks.shop.tz)),
                               identifier=Identifier.SHOPIFY_VARIANT_ID, shop_domain=SHOP, store_name="Hooks Store")
        expected.update((i.shopify_variant_id, _fields(i)) for i in mapped.items)
    return expected


def _fields(item: CatalogItem) -> dict[str, Any]:
    return {name: getattr(item, name) for name in CATALOG_FIELDS}


async def assert_catalog_is_the_shop(hooks: Hooks) -> None:
    expected = shop_items(hooks)
    assert expected
    actual = await catalog_items(hooks)
    assert actual.keys() == expected.keys()
    differ = {v: (actual[v], expected[v]) for v in expected if actual[v] != expected[v]}
    assert differ == {}


async def test_an_inventory_batch_costs_one_call_and_never_reads_a_product(store: CatalogStore) -> None:
    async with hooked(store) as hooks:
        shop = hooks.shop
        for subscription in shop.webhook_subscriptions(topics=["INVENTORY_LEVELS_UPDATE"]):
            shop.delete_webhook_subscription(subscription.gid)  # the batch below is the only way in
        variants = [v for p in shop.products() for v in p.variants][:20]
        deliveries = []
        for n, variant in enumerate(variants):
            shop.set_inventory(variant.id, 100 + n)
            deliveries.append(WebhookDelivery("inventory_levels/update", SHOP,
                                              inventory_level_payload(shop.variant(variant.id), shop.tz)))
        deliveries.append(WebhookDelivery("inventory_levels/update", SHOP, {  # an item the catalog lacks
            "inventory_item_id": 46999999999999999, "location_id": 1, "available": 5}))
        budget = hooks.running.gateway.budgets.for_shop(SHOP)
        calls, spent = budget.calls[Priority.WEBHOOK], budget.spent[Priority.WEBHOOK]
        outcomes = await hooks.processor.applier.apply_batch(deliveries)
        assert outcomes == [Outcome.APPLIED] * 20 + [Outcome.IGNORED]
        assert budget.calls[Priority.WEBHOOK] - calls == 1  # one nodes(ids:) call for the batch
        assert budget.spent[Priority.WEBHOOK] - spent == 20  # 1 point a variant, not ~360 a product
        for n, variant in enumerate(variants):
            item = await hooks.item(variant.id)
            assert item is not None and item.inventory_quantity == 100 + n
        again = await hooks.processor.applier.apply_batch(deliveries[:3])
        assert again == [Outcome.UNCHANGED] * 3


async def test_a_late_product_update_never_regresses_the_quantity(store: CatalogStore) -> None:
    async with hooked(store) as hooks:
        shop = hooks.shop
        variant = product_with_variants(shop).variants[0]
        before = product_payload(shop.variant(variant.id).product, shop.tz)  # quantity as it is now
        shop.set_inventory(variant.id, 77)
        await eventually(lambda: hooks.item(variant.id), lambda i: i is not None and i.inventory_quantity == 77,
                         "inventory change")
        status, _ = await hooks.post("products/update", orjson.dumps(before))  # delivered late
        assert status == 200
        await hooks.settle()
        item = await hooks.item(variant.id)
        assert item is not None and item.inventory_quantity == 77
        shop.set_price(variant.id, "3.33")  # a newer product change carries the quantity it saw
        await eventually(lambda: hooks.item(variant.id), lambda i: i is not None and i.price == "3.33", "price")
        assert (await hooks.item(variant.id)).inventory_quantity == 77  # type: ignore[union-attr]


async def test_reconciliation_catches_every_kind_of_missed_change(store: CatalogStore) -> None:
    async with hooked(store) as hooks:
        shop, faults = hooks.shop, hooks.emulator.faults
        several = next(p for p in shop.products() if len(p.variants) >= 2)
        products = [p for p in shop.products() if p.id != several.id]
        faults.drop_webhooks(shop=SHOP)  # every webhook from now on is lost
        shop.set_inventory(products[0].variants[0].id, 0)  # the product's updatedAt does not move
        shop.set_price(products[1].variants[-1].id, "1.23")
        shop.delete_product(products[2].id)
        shop.delete_variant(several.variants[0].id)
        shop.add_product("Never Announced", variants=[{"price": "2.50", "sku": "NA-1"}])
        await hooks.settle()
        assert await catalog_items(hooks) != shop_items(hooks)
        result = await hooks.processor.reconcile(SHOP)
        assert result.deleted == 1 and result.inventory_applied >= 1
        assert 0 < result.cost < 2_000  # a pass of this small shop fits the Standard bucket
        await assert_catalog_is_the_shop(hooks)


async def test_catalog_equals_the_store_after_any_interleaving(store: CatalogStore) -> None:
    rng = random.Random(20261202)
    async with hooked(store) as hooks:
        shop, faults = hooks.shop, hooks.emulator.faults
        for step in range(60):
            variants = [v for p in shop.products() for v in p.variants]
            variant = rng.choice(variants)
            action = rng.random()
            if action < 0.15:
                faults.drop_webhooks(times=1, shop=SHOP)  # the next delivery is lost
            elif action < 0.25:
                faults.delay_webhooks(rng.uniform(0.01, 0.2), times=1, shop=SHOP)  # and may arrive late
            if rng.random() < 0.5:
                shop.set_inventory(variant.id, rng.randint(0, 60))
            else:
                shop.set_price(variant.id, f"{rng.randint(1, 99)}.{rng.randint(0, 99):02d}")
            if step == 20:
                await hooks.processor.reconcile(SHOP)
            if step == 35:  # a full sync in the middle of it all
                await hooks.running.gateway.sync.resync(SHOP)
                assert (await wait_finished(hooks.running, SHOP))["status"] == "SYNCED"
            if step == 50:
                shop.delete_product(next(p for p in shop.products() if p.id != variant.product.id).id)
        await hooks.settle()
        faults.clear()
        await hooks.processor.reconcile(SHOP)
        await assert_catalog_is_the_shop(hooks)
