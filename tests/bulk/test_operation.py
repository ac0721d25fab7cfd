"""Bulk operation lifecycle: `next_action` on literal states, and the runner against a scripted API."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from itertools import islice

import pytest

from bulk.errors import BulkOperationCanceled, BulkOperationFailed, ShopifyRequestError, ShopifyUserError
from bulk.full_sync.operation import (
    BulkOperationRunner,
    Canceled,
    Download,
    EmptyResult,
    Fail,
    Poll,
    Rerun,
    next_action,
    poll_delays,
)
from bulk.outcomes import sync_error_code
from bulk.shopify import documents
from bulk.shopify.bulk_operations import BulkOperationState, BulkResult, result_url_usable
from bulk.shopify.client import RetryPolicy, ShopifyClient
from catalog_store.models import SyncErrorCode
from tests.bulk.scripted_shopify import Recorded, Reply, ScriptedShopify, ok

OP = "gid://shopify/BulkOperation/1"
OP2 = "gid://shopify/BulkOperation/2"
OP3 = "gid://shopify/BulkOperation/3"
URL = "https://storage.example/bulk/1.jsonl?signature=abc"
NOW = datetime(2026, 2, 1, 12, 0, tzinfo=UTC)


def state(status: str, error_code: str | None = None, url: str | None = None, **fields) -> BulkOperationState:
    return BulkOperationState(id=OP, status=status, error_code=error_code, url=url, **fields)


# -- next_action ---------------------------------------------------------------------------------


@pytest.mark.parametrize("observed, attempt, expected", [
    (state("CREATED"), 1, Poll()),
    (state("RUNNING", object_count=120), 1, Poll()),
    (state("CANCELING"), 1, Poll()),
    (state("COMPLETED", url=URL), 1, Download(URL)),
    (state("COMPLETED", url=None), 1, EmptyResult()),
    (state("CANCELED"), 1, Canceled()),
    (state("FAILED", "INTERNAL_SERVER_ERROR"), 1, Rerun(f"bulk operation {OP} FAILED with INTERNAL_SERVER_ERROR")),
    (state("FAILED", "TIMEOUT"), 2, Rerun(f"bulk operation {OP} FAILED with TIMEOUT")),
    (state("EXPIRED"), 1, Rerun(f"bulk operation {OP} EXPIRED")),
])
def test_next_action(observed, attempt, expected):
    assert next_action(observed, attempt, max_attempts=3) == expected


@pytest.mark.parametrize("error_code", ["INTERNAL_SERVER_ERROR", "TIMEOUT"])
def test_retryable_failure_on_the_last_attempt_is_a_server_error(error_code):
    action = next_action(state("FAILED", error_code, partial_data_url="https://storage.example/p.jsonl"),
                         attempt=3, max_attempts=3)
    assert isinstance(action, Fail)
    assert (action.code, action.error_code, action.partial_data_url) == (
        SyncErrorCode.SERVER_ERROR, error_code, "https://storage.example/p.jsonl")
    assert "3 times" in action.message


def test_access_denied_fails_at_once_with_access_denied():
    action = next_action(state("FAILED", "ACCESS_DENIED"), attempt=1, max_attempts=3)
    assert isinstance(action, Fail) and action.code == SyncErrorCode.ACCESS_DENIED


def test_expired_on_the_last_attempt_is_a_server_error():
    action = next_action(state("EXPIRED"), attempt=2, max_attempts=2)
    assert isinstance(action, Fail) and action.code == SyncErrorCode.SERVER_ERROR


def test_failed_with_an_unknown_code_is_rerun_like_a_shopify_failure():
    assert isinstance(next_action(state("FAILED", None), 1, 3), Rerun)
    assert isinstance(next_action(state("FAILED", "SOMETHING_NEW"), 1, 3), Rerun)


def test_an_unknown_status_fails_instead_of_polling_forever():
    action = next_action(state("PAUSED"), attempt=1, max_attempts=3)
    assert isinstance(action, Fail) and "PAUSED" in action.message


def test_state_from_node_parses_uint64_strings_and_rejects_garbage():
    parsed = BulkOperationState.from_node({
        "id": OP, "status": "RUNNING", "errorCode": None, "objectCount": "9007199254740993",
        "rootObjectCount": "3", "fileSize": None, "url": None, "partialDataUrl": None,
        "createdAt": "2026-01-15T10:00:00Z", "completedAt": None})
    assert parsed.object_count == 9007199254740993 and parsed.file_size is None
    assert parsed.created_at == datetime(2026, 1, 15, 10, 0, tzinfo=UTC)
    for bad in ({"id": OP, "status": "RUNNING", "objectCount": "many"},
                {"id": OP, "status": "RUNNING", "objectCount": "-1"},
                {"status": "RUNNING"}):
        with pytest.raises(ValueError):
            BulkOperationState.from_node(bad)


def test_result_url_usable_until_seven_days_minus_the_margin():
    done = state("COMPLETED", url=URL, completed_at=NOW)
    margin = timedelta(hours=1)
    assert result_url_usable(done, now=NOW + timedelta(days=6, hours=22), margin=margin)
    assert not result_url_usable(done, now=NOW + timedelta(days=6, hours=23), margin=margin)
    assert not result_url_usable(state("COMPLETED", url=None, completed_at=NOW), now=NOW)
    assert not result_url_usable(state("FAILED", url=URL, completed_at=NOW), now=NOW)
    result = BulkResult(operation_id=OP, url=URL, object_count=1, file_size=10, completed_at=NOW)
    assert result_url_usable(result, now=NOW + timedelta(days=1))


def test_poll_delays_grow_to_the_cap():
    assert list(islice(poll_delays(1.0, 10.0, 2.0), 6)) == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert list(islice(poll_delays(5.0, 2.0, 1.5), 2)) == [2.0, 2.0]


# -- the runner against a scripted Admin API -----------------------------------------------------


def started(operation_id: str = OP) -> Reply:
    return ok({"bulkOperationRunQuery": {"bulkOperation": {"id": operation_id, "status": "CREATED"},
                                         "userErrors": []}})


def rejected(code: str, message: str) -> Reply:
    return ok({"bulkOperationRunQuery": {"bulkOperation": None,
                                         "userErrors": [{"field": None, "message": message, "code": code}]}})


def node(status: str, operation_id: str = OP, *, error_code: str | None = None, objects: int = 0,
         url: str | None = None, completed_at: datetime | None = None) -> Reply:
    finished = status in ("COMPLETED", "FAILED", "CANCELED", "EXPIRED")
    completed = completed_at or (NOW if finished else None)
    return ok({"node": {
        "id": operation_id, "status": status, "errorCode": error_code, "objectCount": str(objects),
        "rootObjectCount": str(objects // 2), "fileSize": str(objects * 100) if url else None, "url": url,
        "partialDataUrl": None, "createdAt": "2026-02-01T11:00:00Z",
        "completedAt": completed.isoformat().replace("+00:00", "Z") if completed else None}})


def newest(status: str | None, operation_id: str = OP) -> Reply:
    """The app's newest bulk query (NewestBulkQuery); None: it never ran one."""
    nodes = [] if status is None else [node(status, operation_id).body["data"]["node"]]
    return ok({"bulkOperations": {"nodes": nodes}})


def canceled_ok(recorded: Recorded) -> Reply:
    return ok({"bulkOperationCancel": {"bulkOperation": {"id": recorded.variables["id"], "status": "CANCELING"},
                                       "userErrors": []}})


@pytest.fixture
async def shopify():
    async with ScriptedShopify() as server:
        yield server


@pytest.fixture
async def client(shopify):
    retry = RetryPolicy(max_attempts=2, base_delay=0.001, max_delay=0.001, min_throttle_delay=0.001)
    async with ShopifyClient("demo.myshopify.com", "shpat_test", url_template=shopify.url_template,
                             retry=retry) as shopify_client:
        yield shopify_client


class Updates(list):
    async def __call__(self, observed: BulkOperationState) -> None:
        self.append(observed)

    @property
    def statuses(self) -> list[tuple[str, str]]:
        return [(s.id, s.status) for s in self]


def runner_for(client: ShopifyClient, updates: Updates | None = None, **kwargs) -> BulkOperationRunner:
    kwargs = {"poll_interval": 0.001, "max_poll_interval": 0.004, "max_attempts": 3, **kwargs}
    return BulkOperationRunner(client, on_update=updates, now=lambda: NOW + timedelta(hours=1), **kwargs)


async def test_runs_to_completion_and_reports_each_new_state(shopify, client):
    shopify.script("RunBulkQuery", started())
    shopify.script("BulkOperationStatus", node("CREATED"), node("RUNNING", objects=10), node("RUNNING", objects=10),
                   node("RUNNING", objects=20), node("COMPLETED", objects=30, url=URL))
    updates = Updates()
    result = await runner_for(client, updates).run(documents.PRODUCTS_BULK_QUERY)
    assert result == BulkResult(operation_id=OP, url=URL, object_count=30, file_size=3000, root_object_count=15,
                                completed_at=NOW, attempts=1)
    assert [(s.status, s.object_count) for s in updates] == [
        ("CREATED", 0), ("CREATED", 0), ("RUNNING", 10), ("RUNNING", 20), ("COMPLETED", 30)]
    assert updates[0] == BulkOperationState(id=OP, status="CREATED")  # persisted before the first poll
    [run] = [r for r in shopify.requests if r.operation == "RunBulkQuery"]
    assert run.variables == {"query": documents.PRODUCTS_BULK_QUERY, "groupObjects": False}


async def test_completed_without_url_is_an_empty_result(shopify, client):
    shopify.script("RunBulkQuery", started())
    shopify.script("BulkOperationStatus", node("COMPLETED", url=None))
    result = await runner_for(client).run(documents.PRODUCTS_BULK_QUERY, group_objects=True)
    assert (result.url, result.object_count) == (None, 0)
    assert shopify.requests[0].variables["groupObjects"] is True


@pytest.mark.parametrize("code", ["OPERATION_IN_PROGRESS", "LIMIT_REACHED"])
async def test_start_waits_while_shopify_cannot_take_another_operation(shopify, client, code):
    shopify.script("RunBulkQuery", rejected(code, "A bulk query operation for this app and shop is already in "
                                                  "progress"), rejected(code, "still busy"), started())
    shopify.default("NewestBulkQuery", newest("COMPLETED", OP2))  # finished: nothing to cancel
    shopify.script("BulkOperationStatus", node("COMPLETED", url=URL))
    result = await runner_for(client).run(documents.PRODUCTS_BULK_QUERY)
    assert result.url == URL
    assert shopify.count("RunBulkQuery") == 3
    assert shopify.count("CancelBulkOperation") == 0


async def test_an_unfinished_bulk_query_in_the_way_of_the_start_is_canceled_once(shopify, client):
    shopify.script("RunBulkQuery", *[rejected("OPERATION_IN_PROGRESS", "busy")] * 3, started(OP))
    shopify.script("NewestBulkQuery", newest("RUNNING", OP2), newest("CANCELING", OP2), newest("CANCELING", OP2))
    shopify.default("CancelBulkOperation", canceled_ok)
    shopify.script("BulkOperationStatus", node("COMPLETED", OP, url=URL))
    result = await runner_for(client).run(documents.PRODUCTS_BULK_QUERY)
    assert (result.operation_id, result.url) == (OP, URL)
    assert [r.variables for r in shopify.requests if r.operation == "CancelBulkOperation"] == [{"id": OP2}]


async def test_a_failed_lookup_of_the_operation_in_the_way_only_delays_the_start(shopify, client):
    shopify.script("RunBulkQuery", rejected("OPERATION_IN_PROGRESS", "busy"), started(OP))
    shopify.script("NewestBulkQuery", Reply(status=500, body="down"), Reply(status=500, body="down"))
    shopify.script("BulkOperationStatus", node("COMPLETED", OP, url=URL))
    result = await runner_for(client).run(documents.PRODUCTS_BULK_QUERY)
    assert result.url == URL and shopify.count("CancelBulkOperation") == 0


async def test_an_invalid_query_is_a_request_error_with_shopifys_message(shopify, client):
    shopify.script("RunBulkQuery", rejected("INVALID", "Invalid bulk query: Field 'foo' doesn't exist"))
    with pytest.raises(ShopifyRequestError, match="Field 'foo' doesn't exist") as caught:
        await runner_for(client).run(documents.PRODUCTS_BULK_QUERY)
    assert isinstance(caught.value, ShopifyUserError) and caught.value.codes == ["INVALID"]
    assert shopify.count("RunBulkQuery") == 1


async def test_internal_server_error_is_rerun_then_completes(shopify, client):
    shopify.script("RunBulkQuery", started(OP), started(OP2))
    shopify.script("BulkOperationStatus", node("RUNNING"), node("FAILED", error_code="INTERNAL_SERVER_ERROR"),
                   node("COMPLETED", OP2, url=URL, objects=4))
    updates = Updates()
    result = await runner_for(client, updates).run(documents.PRODUCTS_BULK_QUERY)
    assert (result.operation_id, result.url, result.attempts) == (OP2, URL, 2)
    assert [r.variables["id"] for r in shopify.requests if r.operation == "BulkOperationStatus"] == [OP, OP, OP2]
    assert updates.statuses == [(OP, "CREATED"), (OP, "RUNNING"), (OP, "FAILED"), (OP2, "CREATED"), (OP2, "COMPLETED")]


async def test_repeated_timeouts_fail_with_server_error_after_max_attempts(shopify, client):
    shopify.script("RunBulkQuery", started(OP), started(OP2))
    shopify.script("BulkOperationStatus", node("FAILED", error_code="TIMEOUT"),
                   node("FAILED", OP2, error_code="TIMEOUT"))
    with pytest.raises(BulkOperationFailed) as caught:
        await runner_for(client, max_attempts=2).run(documents.PRODUCTS_BULK_QUERY)
    assert sync_error_code(caught.value) == SyncErrorCode.SERVER_ERROR
    assert caught.value.error_code == "TIMEOUT"
    assert shopify.count("RunBulkQuery") == 2


async def test_access_denied_fails_without_rerun(shopify, client):
    shopify.script("RunBulkQuery", started())
    shopify.script("BulkOperationStatus", node("FAILED", error_code="ACCESS_DENIED"))
    with pytest.raises(BulkOperationFailed) as caught:
        await runner_for(client).run(documents.PRODUCTS_BULK_QUERY)
    assert sync_error_code(caught.value) == SyncErrorCode.ACCESS_DENIED
    assert shopify.count("RunBulkQuery") == 1


async def test_expired_is_rerun(shopify, client):
    shopify.script("RunBulkQuery", started(OP), started(OP2))
    shopify.script("BulkOperationStatus", node("EXPIRED"), node("COMPLETED", OP2, url=URL))
    result = await runner_for(client).run(documents.PRODUCTS_BULK_QUERY)
    assert (result.operation_id, result.attempts) == (OP2, 2)


async def test_an_operation_vanishing_while_polled_is_rerun(shopify, client):
    shopify.script("RunBulkQuery", started(OP), started(OP2))
    shopify.script("BulkOperationStatus", ok({"node": None}), node("COMPLETED", OP2, url=URL))
    assert (await runner_for(client).run(documents.PRODUCTS_BULK_QUERY)).operation_id == OP2


async def test_resume_polls_the_existing_operation_without_starting_one(shopify, client):
    shopify.script("BulkOperationStatus", node("RUNNING", objects=5), node("COMPLETED", url=URL, objects=9))
    updates = Updates()
    result = await runner_for(client, updates).run(documents.PRODUCTS_BULK_QUERY, resume_operation_id=OP)
    assert (result.operation_id, result.object_count) == (OP, 9)
    assert shopify.count("RunBulkQuery") == 0
    assert updates.statuses == [(OP, "RUNNING"), (OP, "COMPLETED")]


async def test_resume_of_a_recently_completed_operation_returns_its_url(shopify, client):
    shopify.script("BulkOperationStatus", node("COMPLETED", url=URL, completed_at=NOW - timedelta(days=2)))
    result = await runner_for(client).run(documents.PRODUCTS_BULK_QUERY, resume_operation_id=OP)
    assert (result.operation_id, result.url) == (OP, URL)
    assert shopify.count() == 1


@pytest.mark.parametrize("found", [
    ok({"node": None}),
    node("EXPIRED"),
    node("COMPLETED", url=URL, completed_at=NOW - timedelta(days=7)),
], ids=["unknown", "expired", "url-too-old"])
async def test_resume_starts_a_new_operation_when_the_old_one_is_unusable(shopify, client, found):
    shopify.script("BulkOperationStatus", found, node("COMPLETED", OP3, url=URL))
    shopify.script("RunBulkQuery", started(OP3))
    result = await runner_for(client).run(documents.PRODUCTS_BULK_QUERY, resume_operation_id=OP)
    assert (result.operation_id, result.attempts) == (OP3, 1)


async def test_wake_makes_the_next_poll_immediate(shopify, client):
    finished = asyncio.Event()
    shopify.script("RunBulkQuery", started())
    shopify.default("BulkOperationStatus",
                    lambda _: node("COMPLETED", url=URL) if finished.is_set() else node("RUNNING"))
    updates = Updates()
    runner = runner_for(client, updates, poll_interval=60.0, max_poll_interval=60.0)
    task = asyncio.create_task(runner.run(documents.PRODUCTS_BULK_QUERY))
    while not updates or updates[-1].status != "CREATED":
        await asyncio.sleep(0.001)
    finished.set()
    runner.wake()  # the bulk_operations/finish webhook arrived
    result = await asyncio.wait_for(task, timeout=10)  # without wake the next poll is 60 s away
    assert result.url == URL
    assert shopify.count("BulkOperationStatus") == 1


async def test_cancel_sends_bulk_operation_cancel_and_ends_the_run_canceled(shopify, client):
    shopify.script("RunBulkQuery", started())
    shopify.default("BulkOperationStatus", node("RUNNING"))
    shopify.default("CancelBulkOperation", canceled_ok)
    updates = Updates()
    runner = runner_for(client, updates)
    task = asyncio.create_task(runner.run(documents.PRODUCTS_BULK_QUERY))
    while len(updates) < 2:
        await asyncio.sleep(0.001)
    await runner.cancel()
    with pytest.raises(BulkOperationCanceled) as caught:
        await asyncio.wait_for(task, timeout=10)
    assert (caught.value.operation_id, caught.value.requested) == (OP, True)
    assert [r.variables for r in shopify.requests if r.operation == "CancelBulkOperation"] == [{"id": OP}]


async def test_cancel_while_waiting_to_start_ends_without_an_operation(shopify, client):
    shopify.default("RunBulkQuery", rejected("OPERATION_IN_PROGRESS", "busy"))
    shopify.default("NewestBulkQuery", newest("CANCELING", OP2))
    runner = runner_for(client, poll_interval=60.0, max_poll_interval=60.0)
    task = asyncio.create_task(runner.run(documents.PRODUCTS_BULK_QUERY))
    while shopify.count("RunBulkQuery") < 1:
        await asyncio.sleep(0.001)
    await runner.cancel()
    with pytest.raises(BulkOperationCanceled) as caught:
        await asyncio.wait_for(task, timeout=10)
    assert caught.value.operation_id is None
    assert shopify.count("CancelBulkOperation") == 0 and shopify.count("RunBulkQuery") == 1


async def test_an_operation_canceled_elsewhere_ends_the_run_canceled(shopify, client):
    shopify.script("RunBulkQuery", started())
    shopify.script("BulkOperationStatus", node("CANCELING"), node("CANCELED"))
    with pytest.raises(BulkOperationCanceled) as caught:
        await runner_for(client).run(documents.PRODUCTS_BULK_QUERY)
    assert caught.value.requested is False


def test_runner_rejects_nonsense_settings(client):
    with pytest.raises(ValueError):
        BulkOperationRunner(client, poll_interval=5, max_poll_interval=1)
    with pytest.raises(ValueError):
        BulkOperationRunner(client, max_attempts=0)
