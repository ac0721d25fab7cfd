"""Live streams behind the GraphQL subscriptions: sync progress (coalesced) and notifications.

Snapshots come from this process's Broadcasters; runs and notifications of other gateway processes
(several may share one MongoDB, only one runs a shop's sync) are found by re-reading the store.
"""

from __future__ import annotations

import asyncio
import copy
import math
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable

from bulk.progress import Broadcaster
from catalog_store.models import Notification, SyncRun
from catalog_store.store import CatalogStore
from gateway.context import LiveSettings

Clock = Callable[[], float]

# Order of the phases of a running run (a retried bulk operation may go back; broadcasts say so).
PHASE_ORDER = {"starting": 0, "bulk_running": 1, "downloading": 2, "ingesting": 3, "finalizing": 4}
NOTIFICATION_POLL_SIZE = 50


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


async def _next(queue: asyncio.Queue[object], timeout: float) -> object | None:
    """The next queued value, or None after `timeout` seconds. `asyncio.timeout`, not `wait_for`:
    on Python 3.11 `wait_for` can swallow a cancel that arrives as the value does, and then a
    subscription the client left would go on (and stay subscribed) forever."""
    try:
        async with asyncio.timeout(max(0.0, timeout)):
            return await queue.get()
    except TimeoutError:
        return None


async def watch_run(
    store: CatalogStore,
    progress: Broadcaster[SyncRun],
    shop_domain: str,
    live: LiveSettings,
    clock: Clock = time.monotonic,
) -> AsyncIterator[SyncRun]:
    """Snapshots of the shop's current run: the current state at once, then each change (paced by
    a `Coalescer`); ends after the final snapshot, or when the run disappears (sync disabled)."""
    coalescer = Coalescer(live.progress_interval)
    async with progress.subscribe(shop_domain) as queue:
        latest = await store.list_runs(shop_domain, last=1)
        if latest:
            first = coalescer.offer(copy.deepcopy(latest[0]), clock())
            assert first is not None
            yield first
            if first.finished:
                return
        next_poll = clock() + live.store_poll_interval
        local_seen_at = -math.inf
        while True:
            deadline = coalescer.deadline()
            wake = next_poll if deadline is None else min(next_poll, deadline)
            received = await _next(queue, wake - clock())  # type: ignore[arg-type]
            now = clock()
            candidate: SyncRun | None = None
            if isinstance(received, SyncRun):
                candidate = copy.deepcopy(received)
                local_seen_at = now
            elif now >= next_poll:
                next_poll = now + live.store_poll_interval
                if now - local_seen_at >= live.store_poll_interval:  # nobody publishes it here
                    last = coalescer.last
                    if last is None:
                        found = await store.list_runs(shop_domain, last=1)
                        candidate = found[0] if found else None
                    else:
                        candidate = await store.get_run(last.id)
                        if candidate is None:
                            return
                        newer = await store.list_runs(shop_domain, last=1)
                        if newer and newer[0].id != last.id and newer[0].started_at >= last.started_at:
                            candidate = newer[0]  # our run was superseded by a newer one
                    if candidate is not None and last is not None and is_behind(candidate, last):
                        candidate = None
            out = coalescer.offer(candidate, now) if candidate is not None else coalescer.due(now)
            if out is not None:
                yield out
                if out.finished:
                    return


class _Seen:
    """A bounded set of recently seen ids."""

    def __init__(self, capacity: int = 2000) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._capacity = capacity

    def add(self, item_id: str) -> bool:
        """True when `item_id` is new."""
        if item_id in self._ids:
            return False
        self._ids[item_id] = None
        if len(self._ids) > self._capacity:
            self._ids.popitem(last=False)
        return True


async def watch_notifications(
    store: CatalogStore,
    hub: Broadcaster[Notification],
    live: LiveSettings,
    clock: Clock = time.monotonic,
) -> AsyncIterator[Notification]:
    """Each dashboard notification created after the call, once, oldest first."""
    # Seeded before subscribing: one created in between is found by the next store poll.
    seen = _Seen()
    for existing in await store.list_notifications(first=NOTIFICATION_POLL_SIZE):
        seen.add(existing.id)
    async with hub.subscribe() as queue:
        next_poll = clock() + live.store_poll_interval
        while True:
            received = await _next(queue, next_poll - clock())  # type: ignore[arg-type]
            if isinstance(received, Notification):
                if seen.add(received.id):
                    yield copy.deepcopy(received)
                continue
            if clock() < next_poll:
                continue
            next_poll = clock() + live.store_poll_interval
            recent = await store.list_notifications(first=NOTIFICATION_POLL_SIZE)
            for notification in reversed(recent):
                if seen.add(notification.id):
                    yield notification
