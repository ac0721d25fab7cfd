"""Progress pacing (pure): the Coalescer, the staleness rule for store snapshots and what a feed
event means; then the subscription loops on a change feed the test drives (gaps, deletions, leaving)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from bulk.progress import Broadcaster
from catalog_store.feed import CatalogEvent, FeedMode, Gap, NotificationEvent, RunChange, RunEvent, Topic
from catalog_store.memory import MemoryCatalogStore
from catalog_store.models import Notification, NotificationLevel, RunStatus, SyncRun
from gateway.graphql.context import LiveSettings
from gateway.graphql.live import RUN_GONE, Coalescer, is_behind, run_candidate, watch_notifications, watch_run

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def run(**changes: object) -> SyncRun:
    base = SyncRun(id="r1", shop_domain="demo.myshopify.com", phase="ingesting", started_at=T0)
    return replace(base, **changes)  # type: ignore[arg-type]


def test_first_snapshot_goes_out_at_once() -> None:
    c = Coalescer(0.2)
    first = run(items_written=1)
    assert c.offer(first, 100.0) is first


def test_changes_are_paced_and_the_newest_held_snapshot_is_sent_when_due() -> None:
    c = Coalescer(0.2)
    c.offer(run(items_written=1), 100.0)
    assert c.offer(run(items_written=2), 100.05) is None
    assert c.offer(run(items_written=3), 100.10) is None
    assert c.deadline() == 100.2
    assert c.due(100.15) is None
    sent = c.due(100.2)
    assert sent is not None and sent.items_written == 3
    assert c.deadline() is None and c.due(101.0) is None


def test_a_change_after_the_interval_goes_out_at_once() -> None:
    c = Coalescer(0.2)
    c.offer(run(items_written=1), 100.0)
    later = run(items_written=2)
    assert c.offer(later, 100.3) is later


def test_phase_changes_and_the_final_snapshot_are_never_held() -> None:
    c = Coalescer(0.2)
    c.offer(run(phase="bulk_running"), 100.0)
    downloading = run(phase="downloading")
    assert c.offer(downloading, 100.01) is downloading
    assert c.offer(run(phase="downloading", bytes_downloaded=10), 100.02) is None
    final = run(phase="completed", status=RunStatus.COMPLETED, finished_at=T0 + timedelta(seconds=5))
    assert c.offer(final, 100.03) is final
    assert c.pending is None


def test_unchanged_snapshots_are_dropped() -> None:
    c = Coalescer(0.2)
    c.offer(run(items_written=5), 100.0)
    assert c.offer(run(items_written=5), 101.0) is None


def test_at_most_one_snapshot_per_interval_under_a_flood() -> None:
    c = Coalescer(0.2)
    sent = []
    now = 100.0
    for i in range(1, 1001):  # 1000 updates in one second
        now = 100.0 + i / 1000
        out = c.offer(run(items_written=i), now)
        if out is None:
            out = c.due(now)
        if out is not None:
            sent.append(out.items_written)
    assert len(sent) <= 6
    tail = c.due(now + 1)
    assert (tail.items_written if tail else sent[-1]) == 1000  # the last state is never lost


def test_a_new_run_is_sent_at_once_and_an_older_one_ignored() -> None:
    c = Coalescer(0.2)
    c.offer(run(), 100.0)
    newer = run(id="r2", started_at=T0 + timedelta(minutes=1), phase="starting")
    assert c.offer(newer, 100.01) is newer
    assert c.offer(run(items_written=99), 100.5) is None


def test_store_snapshots_behind_the_sent_one_are_stale() -> None:
    sent = run(phase="ingesting", items_written=500, bytes_downloaded=1000)
    assert is_behind(run(phase="ingesting", items_written=400, bytes_downloaded=1000), sent)
    assert is_behind(run(phase="downloading"), sent)
    assert not is_behind(run(phase="ingesting", items_written=600, bytes_downloaded=1200), sent)
    assert not is_behind(run(phase="finalizing"), sent)
    assert not is_behind(run(status=RunStatus.FAILED, phase="failed"), sent)
    finished = run(status=RunStatus.COMPLETED, phase="completed")
    assert is_behind(run(items_written=900), finished)
    assert is_behind(run(id="old", started_at=T0 - timedelta(hours=1)), sent)


# -- the subscription loops, on a feed the test drives ---------------------------------------------

SHOP = "demo.myshopify.com"
NOW_LIVE = LiveSettings(progress_interval=0.0)  # nothing held back: each change goes out at once


class ScriptedFeed:
    """A ChangeFeed whose changes the test pushes (what another process wrote)."""

    def __init__(self) -> None:
        async def opened(key: object) -> None:
            return None

        self.run_topic = Topic[RunEvent]("run", opened, lambda key: None)
        self.notification_topic = Topic[NotificationEvent]("notification", opened, lambda key: None)
        self.catalog_topic = Topic[CatalogEvent]("catalog", opened, lambda key: None)

    @property
    def mode(self) -> FeedMode:
        return FeedMode.CHANGE_STREAM

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def subscriber_count(self) -> int:
        return len(self.run_topic) + len(self.notification_topic) + len(self.catalog_topic)

    def runs(self, shop_domain: str, deliver: Callable[[RunEvent], None]) -> AbstractAsyncContextManager[None]:
        return self.run_topic.subscribe(shop_domain, deliver)

    def notifications(self, deliver: Callable[[NotificationEvent], None]) -> AbstractAsyncContextManager[None]:
        return self.notification_topic.subscribe("all", deliver)

    def catalog_changes(self, catalog: str,
                        deliver: Callable[[CatalogEvent], None]) -> AbstractAsyncContextManager[None]:
        return self.catalog_topic.subscribe(catalog, deliver)


class Consumer:
    """Drains a subscription's generator in a task (as the GraphQL server does); `stop` cancels it,
    as a client leaving does."""

    END = object()

    def __init__(self, stream: AsyncIterator[object]) -> None:
        self.received: asyncio.Queue[object] = asyncio.Queue()

        async def drain() -> None:
            async for value in stream:
                self.received.put_nowait(value)
            self.received.put_nowait(self.END)

        self.task = asyncio.create_task(drain())

    async def next(self, timeout: float = 5.0) -> object:
        async with asyncio.timeout(timeout):
            return await self.received.get()

    async def quiet(self, wait: float = 0.1) -> bool:
        """True when nothing arrives within `wait`."""
        await asyncio.sleep(wait)
        return self.received.empty()

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


def test_what_a_run_event_means_to_a_subscriber() -> None:
    sent = run(items_written=500, bytes_downloaded=1000)
    local = run(items_written=400)
    assert run_candidate(local, sent) is local  # published here, in order: never second-guessed
    ahead = run(items_written=600, bytes_downloaded=1000)
    assert run_candidate(RunChange("r1", SHOP, ahead), sent) is ahead
    assert run_candidate(RunChange("r1", SHOP, run(items_written=400, bytes_downloaded=1000)), sent) is None
    assert run_candidate(RunChange("r1", None, None), sent) is RUN_GONE
    assert run_candidate(RunChange("other", None, None), sent) is None
    assert run_candidate(RunChange("r1", None, None), None) is None
    newer = run(id="r2", started_at=T0 + timedelta(minutes=5), phase="starting")
    assert run_candidate(RunChange("r2", SHOP, newer), sent) is newer


async def test_progress_follows_the_feed_rereads_after_a_gap_and_frees_the_feed_when_left() -> None:
    store, feed, progress = MemoryCatalogStore(), ScriptedFeed(), Broadcaster[SyncRun]()
    current = run(items_written=1)
    await store.save_run(current)
    stream = Consumer(watch_run(store, feed, progress, SHOP, NOW_LIVE))
    assert (await stream.next()) == current
    assert feed.subscriber_count() == 1 and progress.subscriber_count(SHOP) == 1
    feed.run_topic.publish(SHOP, RunChange("r1", SHOP, run(items_written=5)))
    assert (await stream.next()).items_written == 5
    feed.run_topic.publish(SHOP, RunChange("r1", SHOP, run(items_written=3)))  # behind what was sent
    assert await stream.quiet()
    progress.publish(SHOP, run(items_written=6))  # this process's own publication
    assert (await stream.next()).items_written == 6
    # The feed missed changes: the store says the run has finished.
    final = run(status=RunStatus.COMPLETED, phase="completed", items_written=9, finished_at=T0 + timedelta(1))
    await store.save_run(final)
    feed.run_topic.publish_all(Gap("history lost"))
    assert (await stream.next()) == final
    assert await stream.quiet()  # the final snapshot does not end it: later runs follow
    assert feed.subscriber_count() == 1 and progress.subscriber_count(SHOP) == 1
    await stream.stop()
    assert feed.subscriber_count() == 0 and progress.subscriber_count(SHOP) == 0


def finished(run_id: str, minutes: int, items: int) -> SyncRun:
    return run(id=run_id, started_at=T0 + timedelta(minutes=minutes), status=RunStatus.COMPLETED,
               phase="completed", items_written=items, finished_at=T0 + timedelta(minutes=minutes, seconds=30))


async def test_progress_follows_each_later_run_after_the_old_final_snapshot() -> None:
    """Subscribed while the last run is long finished: each re-sync, published here or written by
    another process, streams in the same subscription, and nothing of an older run comes back."""
    store, feed, progress = MemoryCatalogStore(), ScriptedFeed(), Broadcaster[SyncRun]()
    old = finished("r1", 0, 9)
    await store.save_run(old)
    stream = Consumer(watch_run(store, feed, progress, SHOP, NOW_LIVE))
    assert (await stream.next()) == old  # the last run, at once
    # A re-sync run by this process.
    second = run(id="r2", started_at=T0 + timedelta(minutes=1), phase="starting")
    progress.publish(SHOP, second)
    assert (await stream.next()).id == "r2"
    progress.publish(SHOP, replace(second, phase="ingesting", items_written=4))
    assert (await stream.next()).items_written == 4
    feed.run_topic.publish(SHOP, RunChange("r1", SHOP, old))  # a late change of the older run
    feed.run_topic.publish(SHOP, RunChange("r2", SHOP, replace(second, phase="ingesting", items_written=2)))
    assert await stream.quiet()  # neither goes backwards
    progress.publish(SHOP, finished("r2", 1, 10))
    assert (await stream.next()).status is RunStatus.COMPLETED
    # A second re-sync, run by another process: only its persisted state reaches this one.
    third = run(id="r3", started_at=T0 + timedelta(minutes=2), phase="bulk_running")
    feed.run_topic.publish(SHOP, RunChange("r3", SHOP, third))
    assert (await stream.next()) == third
    await store.save_run(finished("r3", 2, 11))
    feed.run_topic.publish_all(Gap("history lost"))  # missed its end: read back from the store
    last = await stream.next()
    assert (last.id, last.status, last.items_written) == ("r3", RunStatus.COMPLETED, 11)
    assert await stream.quiet()
    await stream.stop()
    assert feed.subscriber_count() == 0 and progress.subscriber_count(SHOP) == 0


async def test_progress_ends_when_the_followed_run_is_deleted_elsewhere() -> None:
    store, feed, progress = MemoryCatalogStore(), ScriptedFeed(), Broadcaster[SyncRun]()
    await store.save_run(run())
    stream = Consumer(watch_run(store, feed, progress, SHOP, NOW_LIVE))
    await stream.next()
    feed.run_topic.publish_all(RunChange("another-shops-run", None, None))
    assert await stream.quiet()
    feed.run_topic.publish_all(RunChange("r1", None, None))  # the sync was disabled by another process
    assert (await stream.next()) is Consumer.END
    assert feed.subscriber_count() == 0 and progress.subscriber_count(SHOP) == 0


async def test_a_subscriber_that_leaves_frees_the_feed_and_the_hub() -> None:
    store, feed, progress = MemoryCatalogStore(), ScriptedFeed(), Broadcaster[SyncRun]()
    stream = Consumer(watch_run(store, feed, progress, SHOP, NOW_LIVE))  # no run yet: waits for one
    assert await stream.quiet()
    assert feed.subscriber_count() == 1 and progress.subscriber_count(SHOP) == 1
    await stream.stop()
    assert feed.subscriber_count() == 0 and progress.subscriber_count(SHOP) == 0


async def test_notifications_arrive_once_by_any_path_and_after_a_gap() -> None:
    store, feed, hub = MemoryCatalogStore(), ScriptedFeed(), Broadcaster[Notification]()

    def note(i: int) -> Notification:
        return Notification(f"n{i}", SHOP, NotificationLevel.INFO, "T", f"#{i}", created_at=T0 + timedelta(seconds=i))

    await store.add_notification(note(0))  # before the subscription: not news
    stream = Consumer(watch_notifications(store, feed, hub))
    assert await stream.quiet()
    hub.publish(SHOP, note(1))
    feed.notification_topic.publish("all", note(1))  # the same one, through the store's feed
    assert (await stream.next()).id == "n1"
    for i in (2, 3):
        await store.add_notification(note(i))
    feed.notification_topic.publish("all", Gap("history lost"))
    assert [(await stream.next()).id for _ in range(2)] == ["n2", "n3"]
    assert await stream.quiet()
    assert feed.subscriber_count() == 1 and hub.subscriber_count() == 1
    await stream.stop()
    assert feed.subscriber_count() == 0 and hub.subscriber_count() == 0
