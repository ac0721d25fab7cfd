"""Webhook subscriptions and signed deliveries to a real aiohttp receiver on loopback."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

from bulk.shopify.documents import WEBHOOK_SUBSCRIPTION_CREATE, WEBHOOK_SUBSCRIPTION_DELETE
from shopify_emulator import Emulator

from .conftest import DOMAIN, SECRET, Admin, Receiver

TOPICS = ("PRODUCTS_CREATE", "PRODUCTS_UPDATE", "PRODUCTS_DELETE", "INVENTORY_LEVELS_UPDATE", "BULK_OPERATIONS_FINISH")


def verified(received, secret: str = SECRET) -> dict:
    expected = base64.b64encode(hmac.new(secret.encode(), received.body, hashlib.sha256).digest()).decode()
    assert hmac.compare_digest(received.headers["X-Shopify-Hmac-Sha256"], expected)
    return json.loads(received.body)


async def subscribe(admin: Admin, uri: str, topics=TOPICS) -> list[str]:
    ids = []
    for topic in topics:
        created = (await admin.data(WEBHOOK_SUBSCRIPTION_CREATE, {"topic": topic, "webhookSubscription": {"uri": uri}}))
        assert created["webhookSubscriptionCreate"]["userErrors"] == []
        ids.append(created["webhookSubscriptionCreate"]["webhookSubscription"]["id"])
    return ids


async def test_subscription_user_errors(admin: Admin, receiver: Receiver):
    await subscribe(admin, receiver.url, ["PRODUCTS_UPDATE"])
    again = await admin.data(WEBHOOK_SUBSCRIPTION_CREATE, {"topic": "PRODUCTS_UPDATE",
                                                           "webhookSubscription": {"uri": receiver.url}})
    assert again["webhookSubscriptionCreate"]["userErrors"][0]["message"] == "Address for this topic has already been taken"
    blank = await admin.data(WEBHOOK_SUBSCRIPTION_CREATE, {"topic": "PRODUCTS_CREATE", "webhookSubscription": {}})
    assert blank["webhookSubscriptionCreate"]["userErrors"][0]["message"] == "Address can't be blank"
    gone = await admin.data(WEBHOOK_SUBSCRIPTION_DELETE, {"id": "gid://shopify/WebhookSubscription/1"})
    assert gone["webhookSubscriptionDelete"]["deletedWebhookSubscriptionId"] is None
    status, body = await admin.post(WEBHOOK_SUBSCRIPTION_CREATE, {"topic": "ORDERS_CREATE",
                                                                  "webhookSubscription": {"uri": receiver.url}})
    assert body["errors"][0]["extensions"]["code"] == "EMULATOR_UNSUPPORTED"


async def test_price_change_sends_signed_products_update(emu: Emulator, admin: Admin, shop, receiver: Receiver):
    await subscribe(admin, receiver.url, ["PRODUCTS_UPDATE"])
    product = next(p for p in shop.products() if any(v.id > 2**53 for v in p.variants))
    variant = product.variants[1]
    shop.set_price(variant.id, "12.50", compare_at_price="15")
    [received] = await receiver.wait_for(1)
    payload = verified(received)
    headers = received.headers
    assert headers["X-Shopify-Topic"] == "products/update"
    assert headers["X-Shopify-Shop-Domain"] == DOMAIN and headers["X-Shopify-API-Version"] == "2026-01"
    assert {"X-Shopify-Webhook-Id", "X-Shopify-Triggered-At", "X-Shopify-Event-Id"} <= set(headers)
    assert payload["id"] == product.id and payload["admin_graphql_api_id"] == product.gid
    [sent] = [v for v in payload["variants"] if v["id"] == variant.id]
    assert variant.id > 2**53 and f'"id":{variant.id},'.encode() in received.body, "exact integer, not a float"
    assert (sent["price"], sent["compare_at_price"]) == ("12.50", "15.00")
    assert sent["inventory_item_id"] == variant.inventory_item_id and sent["product_id"] == product.id
    assert payload["status"] == product.status.lower()
    assert payload["published_scope"] in ("web", None)
    assert [o["name"] for o in payload["options"]] == [o.name for o in product.options]
    assert payload["updated_at"][-6] in "+-", "shop-local offset, as REST payloads carry"
    await emu.drain_webhooks()
    [delivery] = emu.deliveries
    assert delivery.state == "delivered" and delivery.payload()["id"] == product.id


async def test_inventory_change_sends_only_the_inventory_level(emu: Emulator, admin: Admin, shop, receiver: Receiver):
    await subscribe(admin, receiver.url, ["INVENTORY_LEVELS_UPDATE", "PRODUCTS_UPDATE"])
    variant = next(shop.products()).variants[0]
    shop.set_inventory(variant.id, 0)
    received = await receiver.wait_for(1)
    await emu.drain_webhooks()
    assert [d.topic for d in emu.deliveries] == ["inventory_levels/update"], "the product did not change"
    level = verified(received[0])
    assert level["inventory_item_id"] == variant.inventory_item_id and level["available"] == 0
    assert isinstance(level["location_id"], int) and "variant_id" not in level
    assert shop.variant(variant.id).updated_at > shop.variant(variant.id).product.updated_at - 1
    assert shop.product(variant.product.id).updated_at == variant.product.updated_at


async def test_create_delete_and_bulk_finish(emu: Emulator, admin: Admin, shop, receiver: Receiver):
    await subscribe(admin, receiver.url)
    added = shop.add_product("Webhook Tee", variants=[{"price": "9.5", "sku": "WT-1", "options": ("S",)}],
                             option_names=["Size"])
    shop.delete_product(added.id)
    done = await admin.run_bulk()
    received = await receiver.wait_for(3)
    by_topic = {r.headers["X-Shopify-Topic"]: verified(r) for r in received}
    assert by_topic["products/create"]["variants"][0]["price"] == "9.50"
    assert by_topic["products/create"]["variants"][0]["sku"] == "WT-1"
    assert by_topic["products/delete"] == {"id": added.id}
    finish = by_topic["bulk_operations/finish"]
    assert finish["admin_graphql_api_id"] == done["id"]
    assert (finish["status"], finish["error_code"], finish["type"]) == ("completed", None, "query")
    assert set(finish) == {"admin_graphql_api_id", "completed_at", "created_at", "error_code", "status", "type"}


async def test_products_over_100_variants_carry_the_first_100(admin: Admin, shop, receiver: Receiver):
    await subscribe(admin, receiver.url, ["PRODUCTS_CREATE"])
    added = shop.add_product("Huge", variants=130)
    [received] = await receiver.wait_for(1)
    payload = verified(received)
    assert [v["id"] for v in payload["variants"]] == [v.id for v in added.variants[:100]]
    assert len(payload["variant_gids"]) == 130


async def test_failed_deliveries_are_retried(emu: Emulator, admin: Admin, shop, receiver: Receiver):
    await subscribe(admin, receiver.url, ["PRODUCTS_UPDATE"])
    receiver.fail_next = [500, 302]
    shop.update_title(next(shop.products()).id, "Retried")
    [received] = await receiver.wait_for(1)
    assert verified(received)["title"] == "Retried"
    await emu.drain_webhooks()
    [delivery] = emu.deliveries
    assert [a.status for a in delivery.attempts] == [500, 302, 200] and delivery.state == "delivered"


async def test_unreachable_endpoint_fails_after_bounded_retries(emu: Emulator, admin: Admin, shop):
    await subscribe(admin, "http://127.0.0.1:9/nothing-listens-here", ["PRODUCTS_UPDATE"])
    shop.update_title(next(shop.products()).id, "Lost")
    await emu.drain_webhooks()
    [delivery] = emu.deliveries
    assert delivery.state == "failed" and len(delivery.attempts) == 4
    assert all(a.error for a in delivery.attempts)


async def test_no_subscription_no_delivery_and_unsubscribe_stops_them(emu: Emulator, admin: Admin, shop, receiver):
    shop.set_inventory(next(shop.variant_ids()), 3)
    assert emu.deliveries == []
    [subscription_id] = await subscribe(admin, receiver.url, ["PRODUCTS_UPDATE"])
    await admin.data(WEBHOOK_SUBSCRIPTION_DELETE, {"id": subscription_id})
    shop.set_inventory(next(shop.variant_ids()), 4)
    assert emu.deliveries == []


async def test_secret_rotation_signs_with_the_new_secret(emu: Emulator, admin: Admin, shop, receiver: Receiver):
    await subscribe(admin, receiver.url, ["PRODUCTS_UPDATE"])
    emu.api_secret = "whsec_rotated"
    shop.update_title(next(shop.products()).id, "Rotated")
    [received] = await receiver.wait_for(1)
    assert verified(received, "whsec_rotated")["title"] == "Rotated"


async def test_include_fields(admin: Admin, shop, receiver: Receiver):
    await admin.data(WEBHOOK_SUBSCRIPTION_CREATE, {"topic": "PRODUCTS_UPDATE", "webhookSubscription": {
        "uri": receiver.url, "includeFields": ["id", "updated_at"]}})
    shop.update_title(next(shop.products()).id, "Trimmed")
    [received] = await receiver.wait_for(1)
    assert set(verified(received)) == {"id", "updated_at"}
