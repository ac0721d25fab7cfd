"""The webhook inbox's contract (catalog_store.inbox), on both stores: what is put survives until it
is done, is accepted once per webhook id, is held by one claim at a time, and comes back when a
claim expires or is released; the counters are the store's, so every process reports them."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from catalog_store.inbox import DEDUPE_TTL, InboxDelivery, InboxLane
from catalog_store.mongo.inbox import MongoInbox
from catalog_store.store import CatalogStore
from tests.catalog_store.helpers import Clock
from tests.conftest import MongoStoreFactory

SHOP = "inbox-store.myshopify.com"
OTHER = "other-store.myshopify.com"


@pytest.fixture
def clock(store: CatalogStore) -> Clock:
    clock = Clock()
    store.clock = clock  # type: ignore[attr-defined]
    return clock


def delivery(clock: Clock, webhook_id: str | None, *, shop: str = SHOP, lane: InboxLane = InboxLane.DIRECT,
             body: bytes = b'{"id": 1}') -> InboxDelivery:
    return InboxDelivery(shop_domain=shop, topic="products/update", webhook_id=webhook_id, body=body,
                         triggered_at=clock() - timedelta(seconds=1), received_at=clock(), lane=lane)


async def test_a_put_delivery_is_claimed_with_its_body_and_done_once(store: CatalogStore, clock: Clock) -> None:
    put = delivery(clock, "w-1", body=b'{"id": 7, "title": "Lamp \xc3\xa9"}')
    assert await store.inbox_put(put) is True
    assert (await store.inbox_status(SHOP)).backlog == 1
    [entry] = await store.inbox_claim(InboxLane.DIRECT, "worker-a", 10, 30)
    assert entry.delivery == put and entry.attempts == 0
    assert await store.inbox_claim(InboxLane.DIRECT, "worker-b", 10, 30) == []  # held by worker-a
    assert await store.inbox_done("worker-b", [entry.id]) == 0  # not its claim: nothing counted
    clock.advance(1)
    assert await store.inbox_done("worker-a", [entry.id]) == 1
    assert await store.inbox_done("worker-a", [entry.id]) == 0  # done once
    status = await store.inbox_status(SHOP)
    assert (status.backlog, status.oldest_received_at, status.applied_total, status.failed_total) == (0, None, 1, 0)
    assert status.last_applied_at == clock()
    assert await store.inbox_claim(InboxLane.DIRECT, "worker-a", 10, 30) == []


async def test_a_webhook_id_is_accepted_once_per_shop_for_48_hours(store: CatalogStore, clock: Clock) -> None:
    assert await store.inbox_put(delivery(clock, "w-1")) is True
    assert await store.inbox_put(delivery(clock, "w-1")) is False  # pending: a redelivery
    assert await store.inbox_put(delivery(clock, "w-1", shop=OTHER)) is True  # ids are per shop
    assert await store.inbox_put(delivery(clock, None)) is True  # no id: always new
    assert await store.inbox_put(delivery(clock, None)) is True
    entries = await store.inbox_claim(InboxLane.DIRECT, "w", 10, 30)
    assert {e.delivery.webhook_id for e in entries} == {"w-1", None} and len(entries) == 3
    await store.inbox_done("w", [e.id for e in entries])
    clock.advance(DEDUPE_TTL.total_seconds() - 60)
    assert await store.inbox_put(delivery(clock, "w-1")) is False  # done, still remembered
    clock.advance(120)
    assert await store.inbox_put(delivery(clock, "w-1")) is True  # forgotten after 48 h
    assert (await store.inbox_status(SHOP)).backlog == 1


async def test_a_claim_takes_one_shop_oldest_first_within_its_lane(store: CatalogStore, clock: Clock) -> None:
    for n in range(3):
        await store.inbox_put(delivery(clock, f"a-{n}"))
        clock.advance(1)
        await store.inbox_put(delivery(clock, f"b-{n}", shop=OTHER))
        clock.advance(1)
    await store.inbox_put(delivery(clock, "read-1", lane=InboxLane.READ))
    first = await store.inbox_claim(InboxLane.DIRECT, "w", 2, 30)
    assert [e.delivery.webhook_id for e in first] == ["a-0", "a-1"]  # the longest-waiting shop, limit 2
    second = await store.inbox_claim(InboxLane.DIRECT, "w", 10, 30)
    assert [e.delivery.webhook_id for e in second] == ["b-0", "b-1", "b-2"]
    third = await store.inbox_claim(InboxLane.DIRECT, "w", 10, 30)
    assert [e.delivery.webhook_id for e in third] == ["a-2"]
    [read] = await store.inbox_claim(InboxLane.READ, "r", 250, 30)
    assert read.delivery.webhook_id == "read-1" and read.delivery.lane is InboxLane.READ
    with pytest.raises(ValueError):
        await store.inbox_claim(InboxLane.DIRECT, "w", 0, 30)
    with pytest.raises(ValueError):
        await store.inbox_claim(InboxLane.DIRECT, "w", 1, 0)


async def test_an_expired_claim_returns_to_other_workers(store: CatalogStore, clock: Clock) -> None:
    await store.inbox_put(delivery(clock, "w-1"))
    [held] = await store.inbox_claim(InboxLane.DIRECT, "killed", 10, 30)
    clock.advance(29)
    assert await store.inbox_claim(InboxLane.DIRECT, "other", 10, 30) == []
    clock.advance(2)
    [taken] = await store.inbox_claim(InboxLane.DIRECT, "other", 10, 30)
    assert taken.id == held.id
    assert await store.inbox_done("killed", [held.id]) == 0  # the old claim is gone
    assert await store.inbox_done("other", [held.id]) == 1
    assert (await store.inbox_status(SHOP)).applied_total == 1


async def test_a_renewed_claim_is_kept_past_its_first_expiry(store: CatalogStore, clock: Clock) -> None:
    await store.inbox_put(delivery(clock, "w-1"))
    [held] = await store.inbox_claim(InboxLane.DIRECT, "slow", 10, 30)
    clock.advance(20)
    assert await store.inbox_renew("slow", [held.id], 30) == 1
    clock.advance(20)  # 40 s after the claim, 20 s after the renewal
    assert await store.inbox_claim(InboxLane.DIRECT, "other", 10, 30) == []
    assert await store.inbox_renew("other", [held.id], 30) == 0
    clock.advance(11)
    assert [e.id for e in await store.inbox_claim(InboxLane.DIRECT, "other", 10, 30)] == [held.id]
    assert await store.inbox_renew("slow", [held.id], 30) == 0  # lost: another worker holds it


async def test_release_and_retry_with_backoff_count_failed_attempts(store: CatalogStore, clock: Clock) -> None:
    await store.inbox_put(delivery(clock, "w-1"))
    [entry] = await store.inbox_claim(InboxLane.DIRECT, "w", 10, 30)
    assert await store.inbox_release("w", [entry.id], retry_in=5) == 1
    assert await store.inbox_claim(InboxLane.DIRECT, "w", 10, 30) == []  # backing off
    clock.advance(5)
    [again] = await store.inbox_claim(InboxLane.DIRECT, "w", 10, 30)
    assert again.attempts == 1
    assert await store.inbox_release("w", [again.id]) == 1  # shutting down: no attempt counted
    [third] = await store.inbox_claim(InboxLane.DIRECT, "v", 10, 30)
    assert third.attempts == 1
    assert await store.inbox_release("w", [third.id]) == 0  # not w's any more
    assert await store.inbox_done("v", [], failed=[third.id]) == 1
    status = await store.inbox_status(SHOP)
    assert (status.backlog, status.applied_total, status.failed_total, status.last_applied_at) == (0, 0, 1, None)


async def test_backlog_and_oldest_delivery_per_shop_and_dropping_a_shop(store: CatalogStore, clock: Clock) -> None:
    oldest = clock()
    for n in range(4):
        await store.inbox_put(delivery(clock, f"a-{n}", lane=InboxLane.READ if n % 2 else InboxLane.DIRECT))
        clock.advance(1)
    await store.inbox_put(delivery(clock, "b-0", shop=OTHER))
    [done] = await store.inbox_claim(InboxLane.DIRECT, "w", 1, 30)
    await store.inbox_done("w", [done.id])
    status = await store.inbox_status(SHOP)
    assert (status.backlog, status.oldest_received_at, status.applied_total) == (3, oldest + timedelta(seconds=1), 1)
    await store.inbox_claim(InboxLane.READ, "w", 1, 30)  # a claimed entry is still backlog
    assert (await store.inbox_status(SHOP)).backlog == 3
    assert await store.inbox_drop_shop(SHOP) == 3
    after = await store.inbox_status(SHOP)
    assert (after.backlog, after.oldest_received_at, after.applied_total, after.failed_total) == (0, None, 0, 0)
    assert (await store.inbox_status(OTHER)).backlog == 1
    assert [e.delivery.shop_domain for e in await store.inbox_claim(InboxLane.DIRECT, "w", 10, 30)] == [OTHER]
    assert await store.inbox_drop_shop("never.myshopify.com") == 0


async def test_concurrent_claimers_of_several_processes_never_share_an_entry(
    mongo_store_factory: MongoStoreFactory,
) -> None:
    first = await mongo_store_factory()
    others = [await mongo_store_factory(database=first.database.name) for _ in range(4)]
    stores = [first, *others]
    ids = [f"w-{n}" for n in range(60)]
    for webhook_id in ids:
        assert await first.inbox_put(InboxDelivery(SHOP, "products/update", webhook_id, b"{}", None,
                                                   first.clock(), InboxLane.DIRECT))
    # the same delivery put through every process at once is stored once
    raced = await asyncio.gather(*(s.inbox_put(InboxDelivery(SHOP, "products/update", "raced", b"{}", None,
                                                             s.clock(), InboxLane.DIRECT)) for s in stores))
    assert sum(raced) == 1
    claimed: list[str] = []
    while True:
        rounds = await asyncio.gather(*(s.inbox_claim(InboxLane.DIRECT, f"p{n}", 7, 60) for n, s in enumerate(stores)))
        if not any(rounds):
            break
        for n, (store, entries) in enumerate(zip(stores, rounds, strict=True)):
            claimed += [e.delivery.webhook_id or "" for e in entries]
            assert await store.inbox_done(f"p{n}", [e.id for e in entries]) == len(entries)
    assert sorted(claimed) == sorted([*ids, "raced"])
    assert (await others[0].inbox_status(SHOP)).applied_total == 61


async def test_a_done_call_killed_before_counting_is_counted_once_later(
    mongo_store_factory: MongoStoreFactory, monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock()
    store = await mongo_store_factory(clock=clock)
    other = await mongo_store_factory(database=store.database.name, clock=clock)  # another process
    for n in range(3):
        await store.inbox_put(delivery(clock, f"w-{n}"))
    entries = await store.inbox_claim(InboxLane.DIRECT, "killed", 10, 30)
    counting = MongoInbox._count

    async def killed(self: MongoInbox, token: str) -> None:
        raise SystemExit("killed between marking the entries done and counting them")

    monkeypatch.setattr(MongoInbox, "_count", killed)
    with pytest.raises(SystemExit):
        await store.inbox_done("killed", [e.id for e in entries[:2]], failed=[entries[2].id])
    monkeypatch.setattr(MongoInbox, "_count", counting)
    status = await other.inbox_status(SHOP)
    assert (status.backlog, status.applied_total) == (0, 0)  # done; its count is not settled yet
    clock.advance(6)
    settled = await asyncio.gather(other.inbox_status(SHOP), store.inbox_status(SHOP))  # both settle: once
    assert {(s.applied_total, s.failed_total) for s in settled} <= {(2, 1), (0, 0)}
    final = await other.inbox_status(SHOP)
    assert (final.backlog, final.applied_total, final.failed_total) == (0, 2, 1)
    assert final.last_applied_at == clock() - timedelta(seconds=6)
