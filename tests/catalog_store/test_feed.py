"""The change feed (catalog_store.feed): pure decisions, then two stores ("two processes") on one
database of the real server, by change stream and by forced polling, and the in-memory store.

Latencies are measured from just before the writing call to the delivery callback and printed
(`pytest -s`); the median of several samples is held to bounds that tell a push from a poll on a
loaded machine (STREAM_BOUND, POLL_BOUND), not to the targets themselves (100 ms, one interval).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, Generic, TypeVar

import pytest
from pymongo import AsyncMongoClient
from pymongo.errors import OperationFailure

from catalog_store.feed import CatalogChange, FeedMode, Gap, Inbox, RunChange, SeenIds, Topic
from catalog_store.memory import MemoryCatalogStore
from catalog_store.models import Notification, NotificationLevel, SyncRun
from catalog_store.mongo.feed import MongoChangeFeed
from catalog_store.mongo.store import MongoCatalogStore
from catalog_store.polling_feed import PollingFeed, WriteTracker, WrittenItem, run_change
from tests.catalog_store.helpers import CATALOG, SHOP, T0, at, make_item
from tests.conftest import MongoStoreFactory

T = TypeVar("T")
COMMAND_NOT_FOUND = 59
POLL = 0.25  # poll interval of the polling feeds under test
# Bounds on the median latency: what tells a change stream (pushed at once: the target is 100 ms) and
# polling (within one interval) apart from a feed that waits for something else, with room for a
# loaded machine. The measured figures are printed (`pytest -s`); timing itself is for benchmarks.
STREAM_BOUND = 0.5
POLL_BOUND = 2 * POLL + 0.25
SAMPLES = 6
TIMEOUT = 15.0  # liveness only


# -- pure decisions ------------------------------------------------------------------------------


def written(variant: str, seconds: float, revision: object = None) -> WrittenItem:
    return WrittenItem(variant, "id-" + variant, at(seconds), revision if revision is not None else seconds)


def test_write_tracker_reports_each_write_once() -> None:
    tracker = WriteTracker(at(10), timedelta(seconds=2))
    assert tracker.since() == at(8)
    first = tracker.offer([written("1", 9.5), written("2", 10.1)], at(10.5))
    assert [w.variant_id for w in first] == ["1", "2"]
    assert tracker.since() == at(8.5)
    # The overlap brings both back at the next poll: not news. A rewrite of "1" is.
    again = tracker.offer([written("1", 9.5), written("2", 10.1), written("1", 10.6)], at(11))
    assert [(w.variant_id, w.written_at) for w in again] == [("1", at(10.6))]


def test_write_tracker_forgets_writes_older_than_any_poll_asks_for() -> None:
    tracker = WriteTracker(at(0), timedelta(seconds=1))
    tracker.offer([written("1", 0.5)], at(1))
    tracker.offer([], at(5))  # now asks from 4 s: the write at 0.5 s cannot come back
    assert tracker.since() == at(4)
    assert tracker.offer([written("1", 4.5, revision="b")], at(6))[0].revision == "b"


def test_a_write_stamped_before_it_lands_is_caught_by_the_overlap() -> None:
    tracker = WriteTracker(at(10), timedelta(seconds=2))
    tracker.offer([], at(11))  # this poll ran while the write (stamped 10.9) was still on its way
    assert [w.variant_id for w in tracker.offer([written("7", 10.9)], at(12))] == ["7"]


def test_run_change_between_polls() -> None:
    run = SyncRun(id="r1", shop_domain=SHOP, started_at=T0)
    later = replace(run, items_written=5)
    assert run_change(SHOP, None, None) is None
    assert run_change(SHOP, None, run) == RunChange("r1", SHOP, run)
    assert run_change(SHOP, run, replace(run)) is None  # equal state: nothing new
    assert run_change(SHOP, run, later) == RunChange("r1", SHOP, later)
    assert run_change(SHOP, later, None) == RunChange("r1", SHOP, None)  # deleted: the sync was disabled
    newer = SyncRun(id="r2", shop_domain=SHOP, started_at=at(60))
    assert run_change(SHOP, later, newer) == RunChange("r2", SHOP, newer)


async def test_a_topic_opens_its_source_for_the_first_subscriber_and_closes_it_after_the_last() -> None:
    events: list[str] = []

    async def opened(key: object) -> None:
        events.append(f"open {key}")

    topic = Topic[int]("test", opened, lambda key: events.append(f"close {key}"))
    got: list[int] = []

    def broken(value: int) -> None:
        raise RuntimeError("a broken subscriber")

    async with topic.subscribe("a", got.append), topic.subscribe("a", broken), topic.subscribe("b", got.append):
        assert len(topic) == 3 and sorted(map(str, topic.keys())) == ["a", "b"]
        topic.publish("a", 1)  # the broken one is logged; the others still get it
        topic.publish_all(2)
    assert got == [1, 2, 2]
    assert events == ["open a", "open b", "close b", "close a"] and len(topic) == 0


async def test_inbox_drops_the_oldest_when_full_and_gives_up_after_a_timeout() -> None:
    inbox = Inbox[int](2)
    for value in (1, 2, 3):
        inbox.put(value)
    assert [await inbox.get(0), await inbox.get(0)] == [2, 3]
    started = time.perf_counter()
    assert await inbox.get(0.05) is None
    assert time.perf_counter() - started >= 0.04
    seen = SeenIds(capacity=2)
    assert seen.add("a") and not seen.add("a") and seen.add("b") and seen.add("c") and seen.add("a")


# -- one feed, written to by another store -------------------------------------------------------


class Arrivals(Generic[T]):
    """A feed subscriber that records each event with the time it was delivered."""

    def __init__(self) -> None:
        self.events: list[tuple[float, T]] = []
        self._changed = asyncio.Event()

    def put(self, event: T) -> None:
        self.events.append((time.perf_counter(), event))
        self._changed.set()

    def values(self) -> list[T]:
        return [event for _, event in self.events]

    async def first(self, match: Callable[[T], bool], after: int = 0, timeout: float = TIMEOUT) -> tuple[float, T]:
        """The first event from position `after` on that matches, and when it arrived."""
        async with asyncio.timeout(timeout):
            while True:
                for arrived, event in self.events[after:]:
                    if match(event):
                        return arrived, event
                self._changed.clear()
                await self._changed.wait()


async def latencies(arrivals: Arrivals[T], write: Callable[[int], Awaitable[object]],
                    match: Callable[[T, int], bool], pause: float) -> list[float]:
    """Seconds from each write to its delivery; writes start at random moments (a poll's phase)."""
    measured: list[float] = []
    for i in range(SAMPLES):
        await asyncio.sleep(random.uniform(0, pause))
        mark = len(arrivals.events)
        started = time.perf_counter()
        await write(i)
        arrived, _ = await arrivals.first(lambda event, i=i: match(event, i), after=mark)
        measured.append(arrived - started)
    return measured


def summary(kind: str, values: list[float]) -> str:
    ms = sorted(round(v * 1000, 1) for v in values)
    return f"{kind}: median {statistics.median(ms):.1f} ms, max {ms[-1]:.1f} ms, all {ms}"


@dataclass
class Pair:
    """A writing store and the feed of a reading one (the same store when in memory)."""

    label: str
    writer: MemoryCatalogStore | MongoCatalogStore
    reader: MemoryCatalogStore | MongoCatalogStore
    feed: MongoChangeFeed | PollingFeed
    mode: FeedMode
    bound: float


@pytest.fixture(params=["mongo-change-stream", "mongo-polling", "memory"])
async def pair(request: pytest.FixtureRequest) -> AsyncIterator[Pair]:
    opened: list[MongoCatalogStore] = []
    if request.param == "memory":
        memory = MemoryCatalogStore()
        await memory.start()
        made = Pair("memory (polling)", memory, memory, memory.feed(poll_interval=POLL), FeedMode.POLLING, POLL)
    else:
        uri: str = request.getfixturevalue("mongodb_uri")  # (an async fixture cannot ask for an async one)
        database = f"test_{uuid.uuid4().hex[:16]}"
        opened = [MongoCatalogStore(uri, database), MongoCatalogStore(uri, database)]
        for store in opened:
            await store.start()
        writer, reader = opened
        polling = request.param == "mongo-polling"
        made = Pair(request.param, writer, reader, reader.feed(poll_interval=POLL, polling=polling),
                    FeedMode.POLLING if polling else FeedMode.CHANGE_STREAM, POLL_BOUND if polling else STREAM_BOUND)
    await made.writer.ensure_catalog(CATALOG, SHOP, "Demo Store")
    await made.feed.start()
    try:
        yield made
    finally:
        await made.feed.close()
        if opened:
            await opened[0].database.client.drop_database(opened[0].database.name)
        for store in opened:
            await store.close()


async def test_changes_written_by_one_store_reach_the_feed_of_another(pair: Pair) -> None:
    feed, writer = pair.feed, pair.writer
    assert feed.mode is pair.mode
    runs, notes, items = Arrivals[Any](), Arrivals[Any](), Arrivals[Any]()
    async with feed.runs(SHOP, runs.put), feed.notifications(notes.put), feed.catalog_changes(CATALOG, items.put):
        run = SyncRun(id="run-1", shop_domain=SHOP)

        async def save_run(i: int) -> None:
            run.items_written = i + 1
            await writer.save_run(run)

        def is_run(event: object, i: int) -> bool:
            return isinstance(event, RunChange) and event.run is not None and event.run.items_written == i + 1

        async def add_notification(i: int) -> None:
            await writer.add_notification(Notification(f"note-{i}", SHOP, NotificationLevel.INFO, "Title", f"#{i}"))

        async def write_item(i: int) -> None:
            await writer.write_items(CATALOG, [make_item(f"4400{i}", id=f"sku-{i}", updated=i)])

        def is_item(event: object, i: int) -> bool:
            return isinstance(event, CatalogChange) and f"4400{i}" in event.written

        pause = POLL if pair.mode is FeedMode.POLLING else 0.02
        measured = {
            "run saved": await latencies(runs, save_run, is_run, pause),
            "notification added": await latencies(
                notes, add_notification, lambda e, i: isinstance(e, Notification) and e.id == f"note-{i}", pause),
            "items written": await latencies(items, write_item, is_item, pause),
        }
        print(f"\n[{pair.label}] feed latency, {SAMPLES} samples each:")
        for kind, values in measured.items():
            print("  " + summary(kind, values))
        for kind, values in measured.items():
            assert statistics.median(values) <= pair.bound, summary(kind, values)

        # What each event says.
        _, change = await items.first(lambda e: isinstance(e, CatalogChange) and "44000" in e.written)
        assert isinstance(change, CatalogChange) and change.catalog == CATALOG and "sku-0" in change.item_ids
        assert [e.id for e in notes.values() if isinstance(e, Notification)] == [f"note-{i}" for i in range(SAMPLES)]
        assert all(isinstance(e, RunChange) and e.shop_domain == SHOP and e.run_id == "run-1" for e in runs.values())

        # Deletions: a product's items; then the run (the sync was disabled).
        mark = len(items.events)
        await writer.delete_product(CATALOG, "100", at(3600))
        if pair.mode is FeedMode.CHANGE_STREAM:
            expected = {f"4400{i}" for i in range(SAMPLES)}

            def deletions() -> set[str]:
                return {v for e in items.values()[mark:] if isinstance(e, CatalogChange) for v in e.deleted}

            await wait_until(lambda: deletions() == expected)
        else:  # polling cannot list deletions: it sees the item count fall
            _, deleted = await items.first(lambda e: isinstance(e, CatalogChange) and e.partial, after=mark)
            assert isinstance(deleted, CatalogChange) and deleted.deleted == ()
        mark = len(runs.events)
        await writer.delete_runs(SHOP)
        _, gone = await runs.first(lambda e: isinstance(e, RunChange) and e.run is None, after=mark)
        assert isinstance(gone, RunChange) and gone.run_id == "run-1"
        assert feed.subscriber_count() == 3
    assert feed.subscriber_count() == 0


async def test_subscribers_that_leave_free_the_feeds_resources(pair: Pair) -> None:
    feed = pair.feed
    inbox = Inbox[Any]()
    async with feed.runs(SHOP, inbox.put):
        assert feed.subscriber_count() == 1
        assert watching(feed)

    waiting = asyncio.Event()

    async def subscriber() -> None:  # a client that goes away while waiting (its task is cancelled)
        async with feed.notifications(inbox.put), feed.catalog_changes(CATALOG, inbox.put):
            waiting.set()
            await inbox.get()
            await inbox.get()

    task = asyncio.create_task(subscriber())
    await waiting.wait()
    assert feed.subscriber_count() == 2 and watching(feed)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert feed.subscriber_count() == 0
    await wait_until(lambda: not watching(feed) and not feed_tasks())


def watching(feed: MongoChangeFeed | PollingFeed) -> bool:
    """True while the feed holds a stream or a poll task."""
    if isinstance(feed, MongoChangeFeed):
        polling = feed.polling_feed
        return bool(feed.open_streams) if polling is None else polling.polling
    return feed.polling


def feed_tasks() -> list[str]:
    return [t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith(("change-stream:", "change-feed"))]


async def wait_until(condition: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


# -- change streams on the real server -----------------------------------------------------------


@pytest.fixture
async def stores(mongo_store_factory: MongoStoreFactory) -> tuple[MongoCatalogStore, MongoCatalogStore]:
    writer = await mongo_store_factory()
    await writer.ensure_catalog(CATALOG, SHOP, "Demo Store")
    return writer, await mongo_store_factory(database=writer.database.name)


@pytest.fixture
async def stream_feed(stores: tuple[MongoCatalogStore, MongoCatalogStore]) -> AsyncIterator[MongoChangeFeed]:
    """The reader's feed, with short getMore waits so that a failpoint on getMore fires soon."""
    reader = stores[1]
    feed = MongoChangeFeed(reader.database, reader, poll_interval=POLL, max_await_ms=100)
    await feed.start()
    assert feed.mode is FeedMode.CHANGE_STREAM
    try:
        yield feed
    finally:
        await feed.close()


@pytest.fixture
async def admin(mongodb_uri: str) -> AsyncIterator[AsyncMongoClient[dict[str, Any]]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_uri, appname="feed-tests")
    try:
        yield client
    finally:
        await client.close()


@contextlib.asynccontextmanager
async def failpoint(admin: AsyncMongoClient[dict[str, Any]], mode: object, **data: object) -> AsyncIterator[None]:
    """`failCommand` on the stores' connections (appName catalog-gateway) only; off again after."""
    try:
        await admin.admin.command({"configureFailPoint": "failCommand", "mode": mode,
                                   "data": {"appName": "catalog-gateway", **data}})
    except OperationFailure as exc:
        if exc.code != COMMAND_NOT_FOUND:
            raise
        pytest.fail("this test drops change streams with the failCommand failpoint, which the server at "
                    "MONGODB_URI does not offer. To fix: start it with test commands enabled (mongod "
                    "--setParameter enableTestCommands=1; secantusd-py --enable-test-commands).", pytrace=False)
    try:
        yield
    finally:
        await admin.admin.command({"configureFailPoint": "failCommand", "mode": "off"})


def items_written(arrivals: Arrivals[Any]) -> list[int]:
    return [e.run.items_written for e in arrivals.values() if isinstance(e, RunChange) and e.run is not None]


async def test_one_stream_per_kind_serves_every_subscriber(stream_feed: MongoChangeFeed,
                                                           stores: tuple[MongoCatalogStore, MongoCatalogStore]) -> None:
    writer = stores[0]
    subscribers = [Arrivals[Any]() for _ in range(4)]
    other_shop = "other.myshopify.com"
    async with contextlib.AsyncExitStack() as stack:
        for i, arrivals in enumerate(subscribers[:3]):
            await stack.enter_async_context(stream_feed.runs(SHOP if i < 2 else other_shop, arrivals.put))
        await stack.enter_async_context(stream_feed.notifications(subscribers[3].put))
        assert stream_feed.open_streams == ["runs", "notifications"]
        assert sorted(feed_tasks()) == ["change-stream:notifications", "change-stream:runs"]
        await writer.save_run(SyncRun(id="a", shop_domain=SHOP))
        await writer.save_run(SyncRun(id="b", shop_domain=other_shop))
        for arrivals, run_id in zip(subscribers[:3], ["a", "a", "b"]):
            _, change = await arrivals.first(lambda e: isinstance(e, RunChange))
            assert isinstance(change, RunChange) and change.run_id == run_id
        assert [e.run_id for e in subscribers[0].values()] == ["a"]  # the other shop's run is not its business
    assert stream_feed.open_streams == [] and stream_feed.subscriber_count() == 0


@pytest.mark.parametrize("drop", ["connection", "error"])
async def test_a_dropped_stream_resumes_without_losing_or_repeating_a_change(
    drop: str, stream_feed: MongoChangeFeed, stores: tuple[MongoCatalogStore, MongoCatalogStore],
    admin: AsyncMongoClient[dict[str, Any]],
) -> None:
    """`connection`: the server drops the connection once (PyMongo resumes by itself). `error`: the
    stream fails (no resumable label) and cannot be reopened while runs are saved, then the server
    recovers: the feed reopens it from its resume token (backing off meanwhile)."""
    writer = stores[0]
    arrivals = Arrivals[Any]()
    run = SyncRun(id="run-1", shop_domain=SHOP)
    async with stream_feed.runs(SHOP, arrivals.put):
        run.items_written = 1
        await writer.save_run(run)
        await arrivals.first(lambda e: True)
        if drop == "connection":
            async with failpoint(admin, {"times": 1}, failCommands=["getMore"], closeConnection=True):
                await asyncio.sleep(0.3)  # the next getMore is dropped
                for count in (2, 3, 4):
                    run.items_written = count
                    await writer.save_run(run)
            assert stream_feed.stream_reopens("runs") == 0
        else:
            async with failpoint(admin, "alwaysOn", failCommands=["getMore", "aggregate"], errorCode=2,
                                 errorLabels=[]):
                await asyncio.sleep(0.3)  # the getMore fails, and so does every reopening
                for count in (2, 3, 4):
                    run.items_written = count
                    await writer.save_run(run)
                await asyncio.sleep(0.3)
                assert items_written(arrivals) == [1]  # nothing gets through while it fails
        await arrivals.first(lambda e: isinstance(e, RunChange) and e.run is not None and e.run.items_written == 4)
        run.items_written = 5
        await writer.save_run(run)
        await arrivals.first(lambda e: isinstance(e, RunChange) and e.run is not None and e.run.items_written == 5)
    assert items_written(arrivals) == [1, 2, 3, 4, 5]
    assert stream_feed.stream_reopens("runs") == (0 if drop == "connection" else 1)


async def test_a_stream_that_cannot_resume_restarts_and_reports_a_gap(
    stream_feed: MongoChangeFeed, stores: tuple[MongoCatalogStore, MongoCatalogStore],
    admin: AsyncMongoClient[dict[str, Any]],
) -> None:
    writer = stores[0]
    arrivals = Arrivals[Any]()
    async with stream_feed.notifications(arrivals.put):
        # The getMore fails, then resuming from the token fails as if the oplog had rolled past it.
        async with failpoint(admin, {"times": 2}, failCommands=["getMore", "aggregate"], errorCode=286,
                             errorLabels=[]):
            _, gap = await arrivals.first(lambda e: isinstance(e, Gap))
        assert isinstance(gap, Gap) and "lost its history" in gap.reason
        await writer.add_notification(Notification("after-gap", None, NotificationLevel.INFO, "T", "M"))
        await arrivals.first(lambda e: isinstance(e, Notification) and e.id == "after-gap")


async def test_a_dropped_collection_ends_the_stream_and_the_feed_reopens_it(
    stream_feed: MongoChangeFeed, stores: tuple[MongoCatalogStore, MongoCatalogStore],
) -> None:
    writer = stores[0]
    arrivals = Arrivals[Any]()
    async with stream_feed.runs(SHOP, arrivals.put):
        await writer.save_run(SyncRun(id="before", shop_domain=SHOP))
        await arrivals.first(lambda e: True)
        await writer.database.drop_collection("runs")  # the server invalidates the stream
        await wait_until(lambda: stream_feed.stream_reopens("runs") >= 1)
        await writer.save_run(SyncRun(id="after", shop_domain=SHOP))
        await arrivals.first(lambda e: isinstance(e, RunChange) and e.run_id == "after")


async def test_an_image_set_in_place_is_a_change_and_marking_items_seen_is_not(
    stream_feed: MongoChangeFeed, stores: tuple[MongoCatalogStore, MongoCatalogStore],
) -> None:
    writer = stores[0]
    await writer.write_items(CATALOG, [make_item("1"), make_item("2")])
    arrivals = Arrivals[Any]()
    async with stream_feed.catalog_changes(CATALOG, arrivals.put):
        await writer.mark_seen(CATALOG, ["1", "2"], "run-9")
        assert await writer.set_variant_image(CATALOG, "2", "https://cdn.example/v2.png")
        _, change = await arrivals.first(lambda e: True)
        await asyncio.sleep(0.2)
    assert change == CatalogChange(CATALOG, written=("2",))
    assert len(arrivals.events) == 1


# -- deciding between change streams and polling -------------------------------------------------


class _FakeCollection:
    def __init__(self, database: _FakeDatabase) -> None:
        self._database = database

    async def watch(self, *args: object, **kwargs: object) -> None:
        raise self._database.refusal or AssertionError("no stream expected")


class _FakeDatabase:
    """What detection asks of a server: its `hello`, and whether a stream opens."""

    def __init__(self, hello: dict[str, object], refusal: Exception | None = None) -> None:
        self.hello = hello
        self.refusal = refusal

    def __getitem__(self, name: str) -> _FakeCollection:
        return _FakeCollection(self)

    async def command(self, name: str) -> dict[str, object]:
        assert name == "hello"
        return self.hello


@pytest.mark.parametrize("hello, refusal", [
    ({"isWritablePrimary": True}, None),  # a standalone mongod: no set name, not a mongos
    ({"isWritablePrimary": True, "setName": "rs0"},
     OperationFailure("The $changeStream stage is only supported on replica sets", 40573)),
    ({"msg": "isdbgrid"}, OperationFailure("not authorized to watch", 13)),
])
async def test_servers_without_change_streams_are_polled(hello: dict[str, object], refusal: Exception | None) -> None:
    feed = MongoChangeFeed(_FakeDatabase(hello, refusal), MemoryCatalogStore(), poll_interval=POLL)  # type: ignore[arg-type]
    await feed.start()
    assert feed.mode is FeedMode.POLLING and feed.polling_feed is not None
    await feed.close()


async def test_the_real_server_offers_change_streams_unless_polling_is_forced(
    stores: tuple[MongoCatalogStore, MongoCatalogStore],
) -> None:
    reader = stores[1]
    offered, forced = reader.feed(), reader.feed(polling=True)
    await offered.start()
    await forced.start()
    assert (offered.mode, forced.mode) == (FeedMode.CHANGE_STREAM, FeedMode.POLLING)
    await offered.close()
    await forced.close()
