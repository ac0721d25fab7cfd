"""End to end: ShopifyClient and BulkOperationRunner against the Shopify emulator on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import logging

import aiohttp
import pytest

from bulk.errors import BulkOperationFailed, ShopifyAccessDenied, ShopifyUserError
from bulk.full_sync.operation import BulkOperationRunner
from bulk.outcomes import sync_error_code
from bulk.shopify import documents
from bulk.shopify.client import RetryPolicy, ShopifyClient
from catalog_store.models import SyncErrorCode
from shopify_emulator import Emulator

SHOP = "demo.myshopify.com"
TOKEN = "shpat_emulator_test"
RETRY = RetryPolicy(max_attempts=4, base_delay=0.001, max_delay=0.005, min_throttle_delay=0.01)


@pytest.fixture
async def emu():
    emulator = Emulator(api_secret="whsec_test", bulk_duration=0)
    emulator.add_shop(SHOP, access_token=TOKEN, variants=30, seed=7, name="Demo Store")
    await emulator.start()
    yield emulator
    await emulator.close()


@pytest.fixture
async def client(emu):
    async with ShopifyClient(SHOP, TOKEN, url_template=emu.admin_api_url_template, retry=RETRY) as shopify:
        yield shopify


def runner_for(client: ShopifyClient, **kwargs) -> BulkOperationRunner:
    return BulkOperationRunner(client, poll_interval=0.01, max_poll_interval=0.05, **kwargs)


async def download(url: str) -> list[dict]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        response.raise_for_status()
        return [json.loads(line) for line in (await response.text()).splitlines()]


async def test_shop_info(client):
    info = await client.shop_info()
    assert (info.name, info.myshopify_domain) == ("Demo Store", SHOP)


async def test_a_full_bulk_run_completes_with_a_downloadable_result(emu, client):
    states = []

    async def on_update(state):
        states.append(state.status)

    result = await runner_for(client, on_update=on_update).run(documents.PRODUCTS_BULK_QUERY)
    lines = await download(result.url)
    assert len(lines) == result.object_count > 0
    products = {line["id"] for line in lines if line["id"].startswith("gid://shopify/Product/")}
    variants = [line for line in lines if line["id"].startswith("gid://shopify/ProductVariant/")]
    assert len(products) == result.root_object_count == emu.shop(SHOP).product_count
    assert len(variants) == 30 and all(v["__parentId"] in products for v in variants)
    assert states[0] == "CREATED" and states[-1] == "COMPLETED"


async def test_webhooks_are_created_and_deleted(emu, client):
    shop = emu.shop(SHOP)
    subscription = await client.create_webhook("products/update", "https://gateway.example/webhooks/shopify")
    finish = await client.create_webhook("BULK_OPERATIONS_FINISH", "https://gateway.example/webhooks/shopify")
    assert sorted((s.topic, s.uri) for s in shop.webhook_subscriptions()) == [
        ("BULK_OPERATIONS_FINISH", "https://gateway.example/webhooks/shopify"),
        ("PRODUCTS_UPDATE", "https://gateway.example/webhooks/shopify")]
    # the same topic and address twice: Shopify says the address is taken; the existing one is adopted
    assert await client.create_webhook("products/update", "https://gateway.example/webhooks/shopify") == subscription
    assert len(shop.webhook_subscriptions()) == 2
    with pytest.raises(ShopifyUserError, match="invalid"):
        await client.create_webhook("products/update", "not a url")
    await client.delete_webhook(subscription)
    await client.delete_webhook(finish)
    assert shop.webhook_subscriptions() == []
    with pytest.raises(ShopifyUserError, match="does not exist"):
        await client.delete_webhook(subscription)


async def test_5xx_and_throttling_are_retried(emu, client):
    errors = emu.faults.http_error(503, times=2)
    throttles = emu.faults.throttle(times=2)
    assert (await client.shop_info()).name == "Demo Store"
    assert (errors.fired, throttles.fired) == (2, 2)


async def test_pacing_keeps_calls_under_a_small_bucket(emu, client, caplog):
    emu.faults.small_bucket(maximum=30, restore_rate=200)
    caplog.set_level(logging.INFO, logger="bulk.shopify.client")
    page = "query Page { products(first: 10) { edges { node { id } } } }"  # costs 12
    for _ in range(8):
        await client.execute(page)
    assert "THROTTLED" not in caplog.text


async def test_a_revoked_token_is_access_denied(emu, client):
    emu.faults.revoke_token(SHOP)
    with pytest.raises(ShopifyAccessDenied):
        await client.shop_info()


async def test_a_failed_bulk_operation_is_rerun(emu, client):
    emu.faults.fail_bulk("INTERNAL_SERVER_ERROR", times=1)
    result = await runner_for(client).run(documents.PRODUCTS_BULK_QUERY)
    assert result.attempts == 2 and len(await download(result.url)) == result.object_count


async def test_an_expired_bulk_operation_is_rerun(emu, client):
    emu.faults.expire_bulk(times=1)
    result = await runner_for(client).run(documents.PRODUCTS_BULK_QUERY)
    assert result.attempts == 2 and result.url


async def test_bulk_access_denied_fails_the_run(emu, client):
    emu.faults.fail_bulk("ACCESS_DENIED")
    with pytest.raises(BulkOperationFailed) as caught:
        await runner_for(client).run(documents.PRODUCTS_BULK_QUERY)
    assert sync_error_code(caught.value) == SyncErrorCode.ACCESS_DENIED


async def test_a_run_cancels_the_bulk_query_an_interrupted_run_left_running(emu):
    """An interrupted start can leave an operation running on Shopify that no run knows; the next run
    cancels it instead of waiting for it to finish."""
    shop = emu.shops[SHOP]
    shop.bulk_duration = 3600.0  # the orphan would block the start for an hour
    async with ShopifyClient(SHOP, TOKEN, url_template=emu.admin_api_url_template, retry=RETRY) as shopify:
        orphan = await shopify.run_bulk_query(documents.PRODUCTS_BULK_QUERY)
        assert orphan.operation_id and (await shopify.newest_bulk_query()).id == orphan.operation_id
        shop.bulk_duration = 0.0
        result = await asyncio.wait_for(runner_for(shopify).run(documents.PRODUCTS_BULK_QUERY), 30)
        assert result.url and result.operation_id != orphan.operation_id
        assert (await shopify.bulk_operation(orphan.operation_id)).status == "CANCELED"
        assert (await shopify.newest_bulk_query()).id == result.operation_id  # newest first
