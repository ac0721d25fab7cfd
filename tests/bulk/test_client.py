"""ShopifyClient against scripted Admin API servers on 127.0.0.1: retries, pacing, typed errors."""

from __future__ import annotations

import asyncio
import logging
import traceback
from datetime import UTC, datetime

import aiohttp
import pytest

from bulk.errors import (
    ShopifyAccessDenied,
    ShopifyError,
    ShopifyNetworkError,
    ShopifyRequestError,
    ShopifyServerError,
    ShopifyThrottled,
    ShopifyUserError,
    ShopNotFound,
)
from bulk.outcomes import sync_error_code
from bulk.shopify import documents
from bulk.shopify.bulk_operations import BulkOperationState, BulkRunRejected, BulkRunStarted
from bulk.shopify.client import RetryPolicy, ShopifyClient, webhook_topic
from tests.bulk.scripted_shopify import (
    Reply,
    ScriptedShopify,
    closed_port,
    cost,
    graphql_error,
    http,
    ok,
    throttled,
)

SHOP = "demo.myshopify.com"
TOKEN = "shpat_s3cr3t_token_value_0123456789"
SHOP_DATA = {"shop": {"name": "Demo Store", "myshopifyDomain": SHOP}}
FAST = RetryPolicy(max_attempts=3, base_delay=0.001, max_delay=0.002, max_throttled_attempts=4,
                   min_throttle_delay=0.001)


class FakeTime:
    """Injected clock and sleep: sleeps are recorded and advance the clock instantly."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


@pytest.fixture
async def shopify():
    async with ScriptedShopify() as server:
        yield server


def make_client(server: ScriptedShopify, retry: RetryPolicy = FAST, fake: FakeTime | None = None,
                **kwargs) -> ShopifyClient:
    if fake is not None:
        kwargs.update(sleep=fake.sleep, clock=fake.clock)
    return ShopifyClient(SHOP, TOKEN, url_template=server.url_template, retry=retry, **kwargs)


# -- requests ------------------------------------------------------------------------------------


async def test_shop_info_goes_to_the_versioned_endpoint_with_the_token_header(shopify):
    shopify.script("ShopInfo", ok(SHOP_DATA))
    async with make_client(shopify, api_version="2025-10") as client:
        info = await client.shop_info()
    assert (info.name, info.myshopify_domain) == ("Demo Store", SHOP)
    [request] = shopify.requests
    assert request.path == f"/shops/{SHOP}/admin/api/2025-10/graphql.json"
    assert request.headers["X-Shopify-Access-Token"] == TOKEN


async def test_calls_reuse_one_connection(shopify):
    shopify.default("ShopInfo", ok(SHOP_DATA))
    async with make_client(shopify) as client:
        for _ in range(3):
            await client.shop_info()
    # aiohttp keeps the connection alive: one TCP peer port for all three requests
    assert shopify.count("ShopInfo") == 3
    assert len({r.peer for r in shopify.requests}) == 1


async def test_an_injected_session_is_used_and_left_open(shopify):
    shopify.default("ShopInfo", ok(SHOP_DATA))
    async with aiohttp.ClientSession() as session:
        client = make_client(shopify, session=session)
        await client.shop_info()
        await client.close()
        assert not session.closed
        assert "X-Shopify-Access-Token" not in session.headers
        other = ShopifyClient("other.myshopify.com", "shpat_other", url_template=shopify.url_template,
                              session=session, retry=FAST)
        shopify.script("ShopInfo", ok({"shop": {"name": "Other", "myshopifyDomain": "other.myshopify.com"}}))
        assert (await other.shop_info()).name == "Other"
        await other.close()
    assert [r.headers["X-Shopify-Access-Token"] for r in shopify.requests] == [TOKEN, "shpat_other"]


async def test_a_closed_client_refuses_calls(shopify):
    client = make_client(shopify)
    await client.close()
    with pytest.raises(RuntimeError):
        await client.shop_info()
    assert shopify.requests == []


@pytest.mark.parametrize("document, variables", [
    ("query { shop { name doesNotExist } }", None),
    ("query { shop { name ", None),
    (documents.WEBHOOK_SUBSCRIPTION_CREATE, {"topic": "NOT_A_TOPIC", "webhookSubscription": {"uri": "http://x"}}),
    (documents.BULK_RUN_QUERY, {"query": "{ products { edges { node { id } } } }", "groupObjects": "yes"}),
])
async def test_a_locally_invalid_request_is_rejected_before_sending(shopify, document, variables):
    async with make_client(shopify) as client:
        with pytest.raises(ShopifyRequestError):
            await client.execute(document, variables)
    assert shopify.requests == []


async def test_a_bulk_query_breaking_bulk_rules_is_rejected_before_sending(shopify):
    too_deep = ("{ collections { edges { node { products { edges { node { variants { edges { node {"
                " media { edges { node { id } } } } } } } } } } } } }")
    async with make_client(shopify) as client:
        with pytest.raises(ShopifyRequestError, match="nested 3 levels"):
            await client.run_bulk_query(too_deep)
    assert shopify.requests == []


# -- throttling and pacing -----------------------------------------------------------------------


async def test_throttled_waits_the_cost_deficit_then_succeeds(shopify):
    fake = FakeTime()
    shopify.script("ShopInfo", throttled(requested=50, available=10, restore=20), ok(SHOP_DATA, cost(50, 1950)))
    async with make_client(shopify, RetryPolicy(min_throttle_delay=1.0), fake) as client:
        assert (await client.shop_info()).name == "Demo Store"
    assert shopify.count() == 2
    assert fake.sleeps == [pytest.approx(2.0)]  # (50 - 10) / 20 points per second


async def test_throttled_waits_at_least_one_second(shopify):
    fake = FakeTime()
    shopify.script("ShopInfo", throttled(requested=50, available=45, restore=100), ok(SHOP_DATA))
    async with make_client(shopify, RetryPolicy(), fake) as client:
        await client.shop_info()
    assert fake.sleeps == [1.0]


async def test_throttled_forever_raises_shopify_throttled_after_the_bound(shopify):
    fake = FakeTime()
    shopify.default("ShopInfo", throttled())
    async with make_client(shopify, fake=fake) as client:
        with pytest.raises(ShopifyThrottled) as caught:
            await client.shop_info()
    assert shopify.count() == FAST.max_throttled_attempts == caught.value.attempts
    assert caught.value.retryable


async def test_http_429_is_treated_as_throttling_with_retry_after(shopify):
    fake = FakeTime()
    shopify.script("ShopInfo", http(429, headers={"Retry-After": "2.5"}), ok(SHOP_DATA))
    async with make_client(shopify, fake=fake) as client:
        await client.shop_info()
    assert fake.sleeps == [2.5]


async def test_calls_are_paced_by_the_reported_bucket(shopify):
    fake = FakeTime()
    shopify.script("ShopInfo",
                   ok(SHOP_DATA, cost(requested=20, available=5, maximum=100, restore=10)),
                   ok(SHOP_DATA, cost(requested=20, available=100, maximum=100, restore=10)),
                   ok(SHOP_DATA, cost(requested=20, available=100, maximum=100, restore=10)))
    async with make_client(shopify, fake=fake) as client:
        await client.shop_info()
        assert fake.sleeps == []  # nothing known before the first answer
        await client.shop_info()
        assert fake.sleeps == [pytest.approx(1.5)]  # (20 - 5) / 10
        await client.shop_info()
        assert fake.sleeps == [pytest.approx(1.5)]  # bucket full again: no wait
    assert shopify.count() == 3


# -- server and network errors -------------------------------------------------------------------


async def test_502_then_ok_retries_with_bounded_backoff(shopify):
    fake = FakeTime()
    shopify.script("ShopInfo", http(502, "<html>Bad gateway</html>"), ok(SHOP_DATA))
    async with make_client(shopify, fake=fake) as client:
        assert (await client.shop_info()).name == "Demo Store"
    assert shopify.count() == 2
    assert len(fake.sleeps) == 1 and 0 <= fake.sleeps[0] <= FAST.base_delay


async def test_503_forever_raises_server_error_after_max_attempts(shopify):
    fake = FakeTime()
    shopify.default("ShopInfo", http(503))
    async with make_client(shopify, RetryPolicy(max_attempts=4, base_delay=1, max_delay=3), fake) as client:
        with pytest.raises(ShopifyServerError) as caught:
            await client.shop_info()
    assert shopify.count() == 4
    assert (caught.value.attempts, caught.value.status) == (4, 503)
    assert len(fake.sleeps) == 3
    assert all(0 <= delay <= bound for delay, bound in zip(fake.sleeps, [1, 2, 3]))


def test_backoff_is_full_jitter_capped_at_max_delay():
    policy = RetryPolicy(base_delay=0.5, max_delay=3.0)
    assert [policy.backoff(n, rand=lambda: 1.0) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert policy.backoff(4, rand=lambda: 0.0) == 0.0
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


@pytest.mark.parametrize("status", [401, 403])
async def test_access_denied_is_never_retried(shopify, status):
    shopify.default("ShopInfo", http(status, {"errors": "[API] Invalid API key or access token"}))
    async with make_client(shopify) as client:
        with pytest.raises(ShopifyAccessDenied) as caught:
            await client.shop_info()
    assert shopify.count() == 1
    assert caught.value.status == status and not caught.value.retryable
    assert sync_error_code(caught.value) == "ACCESS_DENIED"


async def test_404_is_shop_not_found(shopify):
    shopify.default("ShopInfo", http(404, "Not Found"))
    async with make_client(shopify) as client:
        with pytest.raises(ShopNotFound):
            await client.shop_info()
    assert shopify.count() == 1


async def test_other_4xx_is_a_request_error_with_the_detail(shopify):
    shopify.default("ShopInfo", http(400, {"errors": {"query": "Required parameter missing or invalid"}}))
    async with make_client(shopify) as client:
        with pytest.raises(ShopifyRequestError, match="HTTP 400.*Required parameter missing") as caught:
            await client.shop_info()
    assert shopify.count() == 1 and not caught.value.retryable


async def test_graphql_errors_in_our_document_are_not_retried(shopify):
    shopify.default("ShopInfo", graphql_error("Field 'shop' doesn't accept argument 'x'", "argumentNotAccepted"))
    async with make_client(shopify) as client:
        with pytest.raises(ShopifyRequestError, match="doesn't accept argument"):
            await client.shop_info()
    assert shopify.count() == 1


async def test_graphql_access_denied_error_is_access_denied(shopify):
    shopify.default("ShopInfo", graphql_error("Access denied for shop field.", "ACCESS_DENIED"))
    async with make_client(shopify) as client:
        with pytest.raises(ShopifyAccessDenied):
            await client.shop_info()
    assert shopify.count() == 1


async def test_graphql_internal_server_error_is_retried(shopify):
    shopify.script("ShopInfo", graphql_error("Internal error. Looks like something went wrong on our end.",
                                             "INTERNAL_SERVER_ERROR"), ok(SHOP_DATA))
    async with make_client(shopify) as client:
        await client.shop_info()
    assert shopify.count() == 2


async def test_dropped_connection_is_retried(shopify):
    shopify.script("ShopInfo", Reply(drop=True), ok(SHOP_DATA))
    async with make_client(shopify) as client:
        assert (await client.shop_info()).name == "Demo Store"
    assert shopify.count() == 2


async def test_connection_dropped_every_time_raises_network_error(shopify):
    shopify.default("ShopInfo", Reply(drop=True))
    async with make_client(shopify) as client:
        with pytest.raises(ShopifyNetworkError) as caught:
            await client.shop_info()
    assert shopify.count() == 3 == caught.value.attempts


async def test_connection_refused_raises_network_error_after_retries():
    fake = FakeTime()
    template = f"http://127.0.0.1:{closed_port()}/shops/{{shop}}/admin/api/{{version}}/graphql.json"
    async with ShopifyClient(SHOP, TOKEN, url_template=template, retry=FAST, sleep=fake.sleep) as client:
        with pytest.raises(ShopifyNetworkError) as caught:
            await client.shop_info()
    assert caught.value.attempts == 3 and len(fake.sleeps) == 2


async def test_a_timeout_is_retried(shopify):
    shopify.script("ShopInfo", Reply(delay=0.5, body={"data": SHOP_DATA}), ok(SHOP_DATA))
    async with make_client(shopify, request_timeout=0.1) as client:
        assert (await client.shop_info()).name == "Demo Store"
    assert shopify.count() == 2


async def test_a_non_graphql_200_answer_is_a_retried_server_error(shopify):
    shopify.default("ShopInfo", Reply(body="<html>maintenance</html>"))
    async with make_client(shopify) as client:
        with pytest.raises(ShopifyServerError):
            await client.shop_info()
    assert shopify.count() == 3


async def test_the_token_never_appears_in_errors_reprs_or_logs(shopify, caplog):
    caplog.set_level(logging.DEBUG)
    echo = {"errors": f"bad token {TOKEN}"}  # even a server echoing it back
    shopify.script(None, http(400, echo), http(401, echo), http(503, echo), http(503, echo), http(503, echo),
                   graphql_error(f"nope {TOKEN}", "SOMETHING"), Reply(drop=True), Reply(drop=True),
                   Reply(drop=True), throttled(), throttled(), throttled(), throttled())
    raised: list[ShopifyError] = []
    async with make_client(shopify, fake=FakeTime()) as client:
        assert TOKEN not in repr(client) and TOKEN not in str(vars(client))
        for _ in range(6):
            with pytest.raises(ShopifyError) as caught:
                await client.shop_info()
            raised.append(caught.value)
    assert [type(e) for e in raised] == [ShopifyRequestError, ShopifyAccessDenied, ShopifyServerError,
                                         ShopifyRequestError, ShopifyNetworkError, ShopifyThrottled]
    for error in raised:
        text = str(error) + repr(error) + "".join(traceback.format_exception(error))
        assert TOKEN not in text
    assert "[redacted]" in str(raised[0])
    assert caplog.records and TOKEN not in caplog.text


def test_a_bad_shop_domain_or_empty_token_is_refused():
    with pytest.raises(ValueError):
        ShopifyClient("https://demo.myshopify.com/admin", TOKEN)
    with pytest.raises(ValueError):
        ShopifyClient(SHOP, "")


# -- convenience methods -------------------------------------------------------------------------


async def test_run_bulk_query_returns_the_operation_or_typed_user_errors(shopify):
    shopify.script("RunBulkQuery",
                   ok({"bulkOperationRunQuery": {"bulkOperation": {"id": "gid://shopify/BulkOperation/1",
                                                                   "status": "CREATED"}, "userErrors": []}}),
                   ok({"bulkOperationRunQuery": {"bulkOperation": None, "userErrors": [
                       {"field": None, "message": "A bulk query operation for this app and shop is already "
                                                  "in progress", "code": "OPERATION_IN_PROGRESS"}]}}))
    async with make_client(shopify) as client:
        started = await client.run_bulk_query(documents.PRODUCTS_BULK_QUERY, group_objects=False)
        rejected = await client.run_bulk_query(documents.PRODUCTS_BULK_QUERY, group_objects=True)
    assert started == BulkRunStarted("gid://shopify/BulkOperation/1", "CREATED")
    assert isinstance(rejected, BulkRunRejected) and rejected.codes == {"OPERATION_IN_PROGRESS"}
    assert [r.variables for r in shopify.requests] == [
        {"query": documents.PRODUCTS_BULK_QUERY, "groupObjects": False},
        {"query": documents.PRODUCTS_BULK_QUERY, "groupObjects": True}]


async def test_bulk_operation_parses_uint64_strings_and_datetimes(shopify):
    node = {"id": "gid://shopify/BulkOperation/7", "status": "COMPLETED", "errorCode": None,
            "objectCount": "18446744073709551615", "rootObjectCount": "12", "fileSize": "4096",
            "url": "https://storage.example/r.jsonl", "partialDataUrl": None,
            "createdAt": "2026-01-15T10:00:00Z", "completedAt": "2026-01-15T10:05:30Z"}
    shopify.script("BulkOperationStatus", ok({"node": node}), ok({"node": None}))
    async with make_client(shopify) as client:
        state = await client.bulk_operation("gid://shopify/BulkOperation/7")
        missing = await client.bulk_operation("gid://shopify/BulkOperation/8")
    assert state == BulkOperationState(
        id="gid://shopify/BulkOperation/7", status="COMPLETED", error_code=None,
        object_count=18446744073709551615, root_object_count=12, file_size=4096,
        url="https://storage.example/r.jsonl", partial_data_url=None,
        created_at=datetime(2026, 1, 15, 10, 0, tzinfo=UTC), completed_at=datetime(2026, 1, 15, 10, 5, 30, tzinfo=UTC))
    assert missing is None


async def test_cancel_bulk_operation_reports_status_or_user_errors(shopify):
    shopify.script("CancelBulkOperation",
                   ok({"bulkOperationCancel": {"bulkOperation": {"id": "gid://shopify/BulkOperation/1",
                                                                 "status": "CANCELING"}, "userErrors": []}}),
                   ok({"bulkOperationCancel": {"bulkOperation": None, "userErrors": [
                       {"field": ["id"], "message": "A bulk operation cannot be canceled when it is completed"}]}}))
    async with make_client(shopify) as client:
        first = await client.cancel_bulk_operation("gid://shopify/BulkOperation/1")
        second = await client.cancel_bulk_operation("gid://shopify/BulkOperation/1")
    assert first.ok and first.status == "CANCELING"
    assert not second.ok and second.user_errors[0].field == ("id",)


@pytest.mark.parametrize("topic", ["products/update", "PRODUCTS_UPDATE"])
async def test_create_webhook_accepts_both_topic_spellings(shopify, topic):
    shopify.script("CreateWebhook", ok({"webhookSubscriptionCreate": {
        "webhookSubscription": {"id": "gid://shopify/WebhookSubscription/9", "topic": "PRODUCTS_UPDATE"},
        "userErrors": []}}))
    async with make_client(shopify) as client:
        subscription = await client.create_webhook(topic, "https://gw.example/webhooks/shopify")
    assert subscription == "gid://shopify/WebhookSubscription/9"
    assert shopify.requests[0].variables == {
        "topic": "PRODUCTS_UPDATE",
        "webhookSubscription": {"uri": "https://gw.example/webhooks/shopify", "format": "JSON"}}


async def test_webhook_user_errors_raise_with_the_errors(shopify):
    taken = ok({"webhookSubscriptionCreate": {"webhookSubscription": None, "userErrors": [
        {"field": ["webhookSubscription", "callbackUrl"], "message": "Address for this topic has already been taken"}]}})
    shopify.script("CreateWebhook", taken, taken)
    shopify.script("WebhookSubscriptions", ok({"webhookSubscriptions": {"nodes": []}}),
                   ok({"webhookSubscriptions": {"nodes": [
                       {"id": "gid://shopify/WebhookSubscription/5", "topic": "BULK_OPERATIONS_FINISH",
                        "uri": "https://other.example/hooks"},
                       {"id": "gid://shopify/WebhookSubscription/7", "topic": "BULK_OPERATIONS_FINISH",
                        "uri": "https://gw.example/webhooks/shopify"}]}}))
    shopify.script("DeleteWebhook", ok({"webhookSubscriptionDelete": {"deletedWebhookSubscriptionId": None,
                                                                      "userErrors": [{"field": ["id"],
                                                                                      "message": "Webhook subscription does not exist"}]}}),
                   ok({"webhookSubscriptionDelete": {"deletedWebhookSubscriptionId": "gid://shopify/WebhookSubscription/9",
                                                     "userErrors": []}}))
    async with make_client(shopify) as client:
        with pytest.raises(ShopifyUserError, match="already been taken") as caught:
            await client.create_webhook("bulk_operations/finish", "https://gw.example/webhooks/shopify")
        assert caught.value.user_errors[0].field == ("webhookSubscription", "callbackUrl")
        # taken by a subscription to this very address (an earlier install): adopted
        assert await client.create_webhook("bulk_operations/finish", "https://gw.example/webhooks/shopify") == \
            "gid://shopify/WebhookSubscription/7"
        with pytest.raises(ShopifyUserError, match="does not exist"):
            await client.delete_webhook("gid://shopify/WebhookSubscription/404")
        assert await client.delete_webhook("gid://shopify/WebhookSubscription/9") is None
    assert shopify.requests[0].variables["topic"] == "BULK_OPERATIONS_FINISH"


def test_webhook_topic_normalises_and_rejects_unknown_topics():
    assert webhook_topic("inventory_levels/update") == "INVENTORY_LEVELS_UPDATE"
    assert webhook_topic("products/delete") == "PRODUCTS_DELETE"
    with pytest.raises(ShopifyRequestError, match="Unknown Shopify webhook topic"):
        webhook_topic("products/explode")
