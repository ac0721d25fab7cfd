"""Every fault switch, observed as a client would observe it."""

from __future__ import annotations

import asyncio

import aiohttp
import orjson
import pytest

from bulk.shopify.documents import SHOP_INFO, WEBHOOK_SUBSCRIPTION_CREATE
from shopify_emulator import Emulator

from .conftest import DOMAIN, Admin, Receiver


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_next_requests_answer_5xx_then_recover(emu: Emulator, admin: Admin, status: int):
    rule = emu.faults.http_error(status, times=2)
    assert (await admin.post(SHOP_INFO))[0] == status
    assert (await admin.post(SHOP_INFO))[0] == status
    assert (await admin.post(SHOP_INFO))[0] == 200
    assert rule.fired == 2


async def test_faults_are_per_shop(emu: Emulator, admin: Admin, session):
    emu.add_shop("calm.myshopify.com", access_token="calm")
    calm = Admin(session, emu.admin_api_url("calm.myshopify.com"), token="calm")
    emu.faults.http_error(503, times=None, shop=DOMAIN)
    assert (await calm.post(SHOP_INFO))[0] == 200
    assert (await admin.post(SHOP_INFO))[0] == 503
    emu.faults.clear()
    assert (await admin.post(SHOP_INFO))[0] == 200


async def test_throttle_for_the_next_calls(emu: Emulator, admin: Admin):
    emu.faults.throttle(times=1)
    status, body = await admin.post(SHOP_INFO)
    assert status == 200 and "data" not in body
    assert body["errors"][0]["message"] == "Throttled"
    assert body["errors"][0]["extensions"]["code"] == "THROTTLED"
    cost = body["extensions"]["cost"]
    assert cost["actualQueryCost"] is None and cost["throttleStatus"]["currentlyAvailable"] <= 10, "bucket drained"


async def test_small_bucket_throttles_for_real(emu: Emulator, admin: Admin):
    emu.faults.small_bucket(maximum=25, restore_rate=1)
    outcomes = []
    for _ in range(4):
        _, body = await admin.post("mutation($q: String!) { bulkOperationRunQuery(query: $q, groupObjects: false) "
                                   "{ userErrors { code } } }", {"q": "{ shop { name } }"})
        outcomes.append("errors" in body and body["errors"][0]["extensions"]["code"])
    assert outcomes[:2] == [False, False] and "THROTTLED" in outcomes
    assert body["extensions"]["cost"]["throttleStatus"]["maximumAvailable"] == 25.0


async def test_revoked_token_is_401_on_everything(emu: Emulator, admin: Admin):
    emu.faults.revoke_token(DOMAIN)
    assert (await admin.post(SHOP_INFO))[0] == 401
    assert (await admin.post("{ shop { nope } }"))[0] == 401
    emu.faults.restore_token(DOMAIN)
    assert (await admin.post(SHOP_INFO))[0] == 200


@pytest.mark.parametrize("code", ["INTERNAL_SERVER_ERROR", "TIMEOUT", "ACCESS_DENIED"])
async def test_bulk_fails_with_partial_data_then_a_retry_succeeds(emu: Emulator, admin: Admin, code: str):
    emu.faults.fail_bulk(code, times=1)
    failed = await admin.run_bulk()
    assert (failed["status"], failed["errorCode"], failed["url"]) == ("FAILED", code, None)
    partial = await admin.download(failed["partialDataUrl"])
    assert partial.endswith(b"\n") and partial.count(b"\n") == int(failed["objectCount"]) > 0
    retried = await admin.run_bulk()
    assert retried["status"] == "COMPLETED"
    full = await admin.download(retried["url"])
    assert full.startswith(partial) and len(full) > len(partial)


async def test_bulk_fails_every_time_until_cleared(emu: Emulator, admin: Admin):
    emu.faults.fail_bulk("TIMEOUT")
    assert (await admin.run_bulk())["status"] == "FAILED"
    assert (await admin.run_bulk())["status"] == "FAILED"
    emu.faults.clear()
    assert (await admin.run_bulk())["status"] == "COMPLETED"


async def test_bulk_ends_expired(emu: Emulator, admin: Admin, receiver: Receiver):
    await admin.data(WEBHOOK_SUBSCRIPTION_CREATE, {"topic": "BULK_OPERATIONS_FINISH",
                                                   "webhookSubscription": {"uri": receiver.url}})
    emu.faults.expire_bulk(times=1)
    expired = await admin.run_bulk()
    assert (expired["status"], expired["url"]) == ("EXPIRED", None)
    [received] = await receiver.wait_for(1)
    assert orjson.loads(received.body)["status"] == "expired"


async def test_download_cut_mid_body_once(emu: Emulator, admin: Admin, session):
    url = (await admin.run_bulk())["url"]
    emu.faults.cut_download(100, times=1)
    with pytest.raises(aiohttp.ClientPayloadError):
        async with session.get(url) as response:
            assert response.headers["Content-Length"] != "100"
            await response.read()
    whole = await admin.download(url)
    async with session.get(url, headers={"Range": "bytes=100-"}) as response:
        assert await response.read() == whole[100:], "the client can resume where the cut happened"


async def test_download_cut_every_time(emu: Emulator, admin: Admin, session):
    url = (await admin.run_bulk())["url"]
    emu.faults.cut_download(10, times=None)
    for _ in range(2):
        with pytest.raises(aiohttp.ClientPayloadError):
            async with session.get(url) as response:
                await response.read()


async def test_download_slowed_once(emu: Emulator, admin: Admin, session):
    url = (await admin.run_bulk())["url"]
    whole = await admin.download(url)
    rate = len(whole) * 4  # the whole file in ~0.25 s
    emu.faults.slow_download(rate, times=1)
    loop = asyncio.get_running_loop()
    began = loop.time()
    async with session.get(url) as response:
        assert await response.read() == whole, "slowed, the body is still complete"
    assert loop.time() - began >= 0.9 * len(whole) / rate
    began = loop.time()
    assert await admin.download(url) == whole
    assert loop.time() - began < len(whole) / rate, "only the next download is slowed"


async def test_download_5xx(emu: Emulator, admin: Admin, session):
    url = (await admin.run_bulk())["url"]
    emu.faults.http_error(503, target="download")
    async with session.get(url) as response:
        assert response.status == 503
    assert len(await admin.download(url)) > 0


async def test_malformed_lines_injected(emu: Emulator, admin: Admin):
    clean = await admin.download((await admin.run_bulk())["url"])
    emu.faults.corrupt_jsonl([0, 3], kind="truncate", times=1)
    emu.shop(DOMAIN).set_price(next(emu.shop(DOMAIN).variant_ids()), "1.00")
    truncated = await admin.run_bulk()
    lines = (await admin.download(truncated["url"])).splitlines()
    assert len(lines) == int(truncated["objectCount"])
    for n, line in enumerate(lines):
        if n in (0, 3):
            with pytest.raises(orjson.JSONDecodeError):
                orjson.loads(line)
        else:
            orjson.loads(line)

    emu.faults.corrupt_jsonl([2], kind="garbage", times=1)
    garbage = await admin.run_bulk()
    lines = (await admin.download(garbage["url"])).splitlines()
    assert len(lines) == int(garbage["objectCount"]) + 1
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(lines[2])
    assert len(clean.splitlines()) == int(garbage["objectCount"])


async def test_slow_bulk_stays_running(emu: Emulator, admin: Admin):
    emu.faults.slow_bulk(30, times=1)
    operation_id = (await admin.start_bulk())["bulkOperation"]["id"]
    assert (await admin.poll(operation_id))["status"] == "RUNNING"
    await admin.data("mutation($id: ID!) { bulkOperationCancel(id: $id) { userErrors { message } } }",
                     {"id": operation_id})
    assert (await admin.wait(operation_id))["status"] == "CANCELED"


async def test_webhook_duplicates_and_drops(emu: Emulator, admin: Admin, receiver: Receiver):
    shop = emu.shop(DOMAIN)
    await admin.data(WEBHOOK_SUBSCRIPTION_CREATE, {"topic": "PRODUCTS_UPDATE", "webhookSubscription": {"uri": receiver.url}})
    emu.faults.duplicate_webhooks(times=1)
    shop.update_title(next(shop.products()).id, "Twice")
    first, second = await receiver.wait_for(2)
    assert first.headers["X-Shopify-Webhook-Id"] == second.headers["X-Shopify-Webhook-Id"]
    assert first.body == second.body
    emu.faults.drop_webhooks(times=1)
    shop.update_title(next(shop.products()).id, "Never")
    await emu.drain_webhooks()
    assert emu.deliveries[-1].state == "dropped" and len(receiver.received) == 2
