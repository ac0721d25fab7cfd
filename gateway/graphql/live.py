"""Live streams behind the GraphQL subscriptions: sync progress (coalesced) and notifications.

Each subscription merges two sources in one inbox: this process's Broadcasters (every progress change
of the syncs it runs, published before the run is persisted at a lower rate, and its notifications
at once) and the store's change feed (catalog_store.feed: what any gateway process wrote, by change
stream within milliseconds, or by a poll every `store_poll_interval`). What to send is decided by pure
functions (`run_candidate`, `is_behind`, `Coalescer`); the generators only wait and read.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass

from bulk.progress import ALL, Broadcaster
from catalog_store.feed import ChangeFeed, Gap, Inbox, NotificationEvent, RunChange, RunEvent, SeenIds
from catalog_store.models import Notification, SyncRun
from catalog_store.store import CatalogStore
from gateway.graphql.context import LiveSettings

Clock = Callable[[], float]

# Order of the phases of a running run (a retried bulk operation may go back; broadcasts say so).
PHASE_ORDER = {"starting": 0, "bulk_running": 1, "downloading": 2, "ingesting": 3, "finalizing": 4}
NOTIFICATION_POLL_SIZE = 50  # notifications re-read after a feed gap (and seen at the start)
NOTIFICATION_INBOX = 256  # unlike snapshots, a dropped notification is lost: room for a burst


def progress_key(run: SyncRun) -> tuple[object, ...]:
    """Everything a client sees change in a run (two snapshots with one key are the same)."""
    return (
        run.id, run.status, run.phase, run.object_count, run.bytes_downloaded, run.file_size,
        run.items_written, run.items_skipped, run.malformed_lines, run.error_code, run.error_message,
        run.finished_at, tuple((s.reason, s.count) for s in run.skipped),
    )


def is_behind(candidate: SyncRun, last: SyncRun) -> bool:
    """True when `candidate` (read from the store) is older than the snapshot `last` already sent:
    the process running a sync may persist its progress less often than it publishes it."""
    if candidate.id != last.id:
        return candidate.started_at < last.started_at
    if last.finished:
        return True
    if candidate.finished:
        return False
    rank, last_rank = PHASE_ORDER.get(candidate.phase, -1), PHASE_ORDER.get(last.phase, -1)
    if rank != last_rank:
        return rank < last_rank
    return (
        candidate.object_count < last.object_count
        or candidate.bytes_downloaded < last.bytes_downloaded
        or candidate.items_written < last.items_written
        or candidate.items_skipped < last.items_skipped
    )


class Coalescer:
    """Paces the snapshots of a shop's run: at most one per `interval`. The first snapshot, a phase
    change, a new run and the final snapshot go out at once; a held snapshot is replaced by newer
    ones and goes out when its slot comes (`deadline`). Pure: the caller passes the time."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.last: SyncRun | None = None
        self._last_key: tuple[object, ...] | None = None
        self._sent_at = -math.inf
        self.pending: SyncRun | None = None

    def offer(self, run: SyncRun, now: float) -> SyncRun | None:
        """The snapshot to send now (`run`), or None when it is held or changes nothing."""
        last = self.last
        if last is not None and run.id != last.id and run.started_at < last.started_at:
            return None  # a late snapshot of an older run
        if progress_key(run) == self._last_key:
            self.pending = None
            return None
        urgent = last is None or run.id != last.id or run.phase != last.phase or run.finished
        if urgent or now - self._sent_at >= self.interval:
            return self._send(run, now)
        self.pending = run
        return None

    def due(self, now: float) -> SyncRun | None:
        """The held snapshot once its slot has come, else None."""
        if self.pending is not None and now >= self._sent_at + self.interval:  # same sum as deadline()
            return self._send(self.pending, now)
        return None

    def deadline(self) -> float | None:
        """When the held snapshot is due (None: nothing held)."""
        return None if self.pending is None else self._sent_at + self.interval

    def _send(self, run: SyncRun, now: float) -> SyncRun:
        self.last, self._last_key, self._sent_at, self.pending = run, progress_key(run), now, None
        return run


@dataclass(frozen=True, slots=True)
class RunGone:
    """The run a subscriber follows was deleted (the sync was disabled): the stream ends."""


RUN_GONE = RunGone()


def run_candidate(event: SyncRun | RunChange, last: SyncRun | None) -> SyncRun | RunGone | None:
    """What an event means to a subscriber whose last snapshot sent is `last`: a snapshot for the
    Coalescer, RUN_GONE, or None (another run's deletion; a persisted snapshot behind the one sent,
    as the process running a sync publishes more often than it persists)."""
    if isinstance(event, SyncRun):
        return event  # published here, in order
    if event.run is None:
        return RUN_GONE if last is not None and event.run_id == last.id else None
    if last is not None and is_behind(event.run, last):
        return None
    return event.run


async def reread_run(store: CatalogStore, shop_domain: str, last: SyncRun | None) -> RunChange | None:
    """After a feed gap: what may have been missed, as a change (the shop's newer run, or the
    followed run's current state, or its deletion)."""
    found = await store.list_runs(shop_domain, last=1)
    newest = found[0] if found else None
    if last is None or (newest is not None and newest.id != last.id and newest.started_at >= last.started_at):
        return None if newest is None else RunChange(newest.id, shop_domain, newest)
    return RunChange(last.id, shop_domain, await store.get_run(last.id))


async def watch_run(
    store: CatalogStore,
    feed: ChangeFeed,
    progress: Broadcaster[SyncRun],
    shop_domain: str,
    live: LiveSettings,
    clock: Clock = time.monotonic,
) -> AsyncGenerator[SyncRun, None]:
    """Snapshots of the shop's runs: the current (or last) one at once, then each change (paced by
    a `Coalescer`), then every later run of the shop, so a client that subscribes once sees each
    re-sync. Ends only when the client leaves or the followed run disappears (sync disabled)."""
    coalescer = Coalescer(live.progress_interval)
    inbox: Inbox[SyncRun | RunEvent] = Inbox()
    with progress.listen(shop_domain, inbox.put):
        async with feed.runs(shop_domain, inbox.put):  # watching before the read: nothing falls between
            latest = await store.list_runs(shop_domain, last=1)
            if latest:
                first = coalescer.offer(copy.deepcopy(latest[0]), clock())
                assert first is not None
                yield first
            while True:
                deadline = coalescer.deadline()
                received = await inbox.get(None if deadline is None else deadline - clock())
                if isinstance(received, Gap):
                    received = await reread_run(store, shop_domain, coalescer.last)
                if isinstance(received, SyncRun):
                    received = copy.deepcopy(received)  # ours: the running sync's objects stay its own
                now = clock()
                candidate = None if received is None else run_candidate(received, coalescer.last)
                if isinstance(candidate, RunGone):
                    return
                out = coalescer.offer(candidate, now) if candidate is not None else coalescer.due(now)
                if out is not None:
                    yield out


async def watch_notifications(
    store: CatalogStore,
    feed: ChangeFeed,
    hub: Broadcaster[Notification],
) -> AsyncGenerator[Notification, None]:
    """Each dashboard notification created after the call, once, in the order they arrive."""
    seen = SeenIds()
    inbox: Inbox[NotificationEvent] = Inbox(NOTIFICATION_INBOX)
    with hub.listen(ALL, inbox.put):
        async with feed.notifications(inbox.put):
            # Seen once watching: one added meanwhile is either read here (old) or arrives (new).
            for existing in await store.list_notifications(first=NOTIFICATION_POLL_SIZE):
                seen.add(existing.id)
            while True:
                received = await inbox.get()
                if isinstance(received, Gap):
                    fresh = list(reversed(await store.list_notifications(first=NOTIFICATION_POLL_SIZE)))
                else:
                    fresh = [] if received is None else [received]
                for notification in fresh:
                    if seen.add(notification.id):
                        yield copy.deepcopy(notification)  # local ones are the notifier's own objects
