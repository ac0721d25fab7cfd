"""PollingFeed: the change feed found by re-reading the store at one interval, where no change
stream is offered (standalone mongod, FerretDB), for the in-memory store, or when polling is forced.

One poll task per feed, running while anyone subscribes; each poll reads, per watched key, the
shop's latest run, the most recent notifications, and each watched catalog's items written since the
previous poll (minus an overlap) plus its item count. What changed since the previous poll is
decided by pure functions and trackers (`run_change`, `WriteTracker`); a change thus reaches
subscribers within one interval (plus the poll's own reads). Polling cannot list deleted items: a
catalog whose item count fell gets a `partial` CatalogChange.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Hashable, Iterable, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from catalog_store.errors import StoreError
from catalog_store.feed import (
    CatalogChange,
    CatalogEvent,
    FeedMode,
    NotificationEvent,
    RunChange,
    RunEvent,
    SeenIds,
    Topic,
)
from catalog_store.models import CatalogInfo, Notification, SyncRun, utcnow

log = logging.getLogger(__name__)

NOTIFICATION_POLL_SIZE = 50
NOTIFICATIONS = "notifications"  # the one key of the notification topic


@dataclass(frozen=True, slots=True)
class WrittenItem:
    """One stored item as a poll sees it: `revision` differs between two writes of the variant."""

    variant_id: str
    item_id: str
    written_at: datetime
    revision: Hashable


# The items of a catalog written at or after a time (each store answers it from its own layout).
WrittenSince = Callable[[str, datetime], Awaitable[list[WrittenItem]]]


class PollReads(Protocol):
    """The reads a poll makes of a store (every CatalogStore has them)."""

    def list_runs(self, shop_domain: str, last: int = 10) -> Awaitable[list[SyncRun]]: ...

    def list_notifications(self, *, first: int = 20, unread_only: bool = False) -> Awaitable[list[Notification]]: ...

    def get_catalog(self, name: str) -> Awaitable[CatalogInfo | None]: ...


def run_change(shop_domain: str, previous: SyncRun | None, latest: SyncRun | None) -> RunChange | None:
    """The change between two polls of a shop's latest run, if any: a new state (or a newer run),
    or the deletion of the run seen last (the sync was disabled)."""
    if latest is None:
        return None if previous is None else RunChange(previous.id, shop_domain, None)
    return None if latest == previous else RunChange(latest.id, shop_domain, latest)


class WriteTracker:
    """Which polled item writes are new. Pure: the caller passes the poll times.

    A poll asks for the items written at or after `since()`, the previous poll's time minus
    `overlap`: the overlap covers writes stamped before they land and writers whose clocks lag. Writes
    in the overlap come back at the next poll too and are told apart by revision."""

    def __init__(self, started_at: datetime, overlap: timedelta) -> None:
        self._polled_at = started_at
        self._overlap = overlap
        self._seen: dict[str, tuple[Hashable, datetime]] = {}  # variant id -> revision, written_at

    def since(self) -> datetime:
        return self._polled_at - self._overlap

    def offer(self, rows: Iterable[WrittenItem], polled_at: datetime) -> list[WrittenItem]:
        """The writes not reported before, from a poll that started at `polled_at`."""
        new: list[WrittenItem] = []
        for row in rows:
            seen = self._seen.get(row.variant_id)
            if seen is not None and seen[0] == row.revision:
                continue
            self._seen[row.variant_id] = (row.revision, row.written_at)
            new.append(row)
        self._polled_at = max(self._polled_at, polled_at)
        horizon = self.since()
        for variant_id in [v for v, (_, at) in self._seen.items() if at < horizon]:
            del self._seen[variant_id]  # older than any later poll asks for
        return new


@dataclass(slots=True)
class _CatalogState:
    tracker: WriteTracker
    item_count: int | None  # None: the catalog does not exist


@dataclass(slots=True)
class _PollState:
    runs: dict[str, SyncRun | None] = field(default_factory=dict)  # shop -> latest run seen
    notifications: SeenIds = field(default_factory=lambda: SeenIds(4 * NOTIFICATION_POLL_SIZE))
    catalogs: dict[str, _CatalogState] = field(default_factory=dict)


class PollingFeed:
    """ChangeFeed that polls `store` every `interval` seconds while it has subscribers. `now` (UTC,
    the clock the store stamps item writes with) and `clock` (monotonic, the schedule) are
    injectable; `overlap` (see WriteTracker) should exceed the writers' clock differences."""

    def __init__(
        self,
        store: PollReads,
        written_since: WrittenSince,
        *,
        interval: float = 1.0,
        overlap: timedelta = timedelta(seconds=2),
        now: Callable[[], datetime] = utcnow,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if interval <= 0:
            raise ValueError("the poll interval must be positive")
        self.interval = interval
        self._store = store
        self._written_since = written_since
        self._overlap = overlap
        self._now = now
        self._clock = clock
        self._state = _PollState()
        self._runs = Topic[RunEvent]("run", self._open_shop, self._shop_left)
        self._notifications = Topic[NotificationEvent]("notification", self._open_notifications, self._left)
        self._catalogs = Topic[CatalogEvent]("catalog", self._open_catalog, self._catalog_left)
        self._task: asyncio.Task[None] | None = None
        self._stopping: set[asyncio.Task[None]] = set()  # cancelled poll tasks, until they have ended
        self._closed = False

    @property
    def mode(self) -> FeedMode:
        return FeedMode.POLLING

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        self._closed = True
        await self._stop()

    def subscriber_count(self) -> int:
        return len(self._runs) + len(self._notifications) + len(self._catalogs)

    @property
    def polling(self) -> bool:
        """True while the poll task runs (someone subscribes)."""
        return self._task is not None and not self._task.done()

    def runs(self, shop_domain: str, deliver: Callable[[RunEvent], None]) -> AbstractAsyncContextManager[None]:
        return self._runs.subscribe(shop_domain, deliver)

    def notifications(self, deliver: Callable[[NotificationEvent], None]) -> AbstractAsyncContextManager[None]:
        return self._notifications.subscribe(NOTIFICATIONS, deliver)

    def catalog_changes(
        self, catalog: str, deliver: Callable[[CatalogEvent], None]
    ) -> AbstractAsyncContextManager[None]:
        return self._catalogs.subscribe(catalog, deliver)

    # -- subscribers come and go -------------------------------------------------------------

    async def _open_shop(self, key: Hashable) -> None:
        self._check_open()
        shop = str(key)
        self._state.runs[shop] = await self._latest_run(shop)
        self._ensure_polling()

    async def _open_notifications(self, key: Hashable) -> None:
        self._check_open()
        for notification in await self._store.list_notifications(first=NOTIFICATION_POLL_SIZE):
            self._state.notifications.add(notification.id)
        self._ensure_polling()

    async def _open_catalog(self, key: Hashable) -> None:
        self._check_open()
        catalog = str(key)
        started_at = self._now()
        tracker = WriteTracker(started_at, self._overlap)
        tracker.offer(await self._written_since(catalog, tracker.since()), started_at)  # seen: not news
        info = await self._store.get_catalog(catalog)
        self._state.catalogs[catalog] = _CatalogState(tracker, None if info is None else info.item_count)
        self._ensure_polling()

    def _shop_left(self, key: Hashable) -> None:
        self._state.runs.pop(str(key), None)
        self._left(key)

    def _catalog_left(self, key: Hashable) -> None:
        self._state.catalogs.pop(str(key), None)
        self._left(key)

    def _left(self, key: Hashable) -> None:
        if self.subscriber_count() == 0 and self._task is not None:
            self._task.cancel()  # it ends at its next await; close() waits for it
            self._stopping.add(self._task)
            self._task.add_done_callback(self._stopping.discard)
            self._task = None

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the change feed is closed", fix="Subscribe before the gateway shuts down.")

    def _ensure_polling(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._poll_loop(), name="change-feed-poll")

    async def _stop(self) -> None:
        tasks = {*self._stopping, *([self._task] if self._task is not None else [])}
        self._task = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- polling -----------------------------------------------------------------------------

    async def _poll_loop(self) -> None:
        next_poll = self._clock() + self.interval
        while True:
            await asyncio.sleep(max(0.0, next_poll - self._clock()))
            next_poll = max(next_poll + self.interval, self._clock())  # fixed rate; no burst after a stall
            await self.poll()

    async def poll(self) -> None:
        """One poll of everything watched; a failing read is logged and retried at the next poll."""
        await asyncio.gather(
            *(self._poll_shop(str(shop)) for shop in self._runs.keys()),
            *([self._poll_notifications()] if len(self._notifications) else []),
            *(self._poll_catalog(str(catalog)) for catalog in self._catalogs.keys()),
        )

    async def _latest_run(self, shop: str) -> SyncRun | None:
        found = await self._store.list_runs(shop, last=1)
        return found[0] if found else None

    async def _poll_shop(self, shop: str) -> None:
        with _logged("runs of " + shop):
            latest = await self._latest_run(shop)
            if shop not in self._state.runs:
                return  # its last subscriber left during the read
            change = run_change(shop, self._state.runs[shop], latest)
            self._state.runs[shop] = latest
            if change is not None:
                self._runs.publish(shop, change)

    async def _poll_notifications(self) -> None:
        with _logged("notifications"):
            recent = await self._store.list_notifications(first=NOTIFICATION_POLL_SIZE)
            fresh: list[Notification] = [n for n in reversed(recent) if self._state.notifications.add(n.id)]
            for notification in fresh:  # oldest first
                self._notifications.publish(NOTIFICATIONS, notification)

    async def _poll_catalog(self, catalog: str) -> None:
        with _logged("catalog " + catalog):
            state = self._state.catalogs.get(catalog)
            if state is None:
                return
            polled_at = self._now()
            rows, info = await asyncio.gather(
                self._written_since(catalog, state.tracker.since()), self._store.get_catalog(catalog)
            )
            if self._state.catalogs.get(catalog) is not state:
                return
            new = state.tracker.offer(rows, polled_at)
            count = None if info is None else info.item_count
            fell = state.item_count is not None and (count is None or count < state.item_count)
            state.item_count = count
            if new or fell:
                self._catalogs.publish(catalog, CatalogChange(
                    catalog,
                    written=tuple(row.variant_id for row in new),
                    item_ids=tuple(row.item_id for row in new),
                    partial=fell,
                ))


@contextlib.contextmanager
def _logged(what: str) -> Iterator[None]:
    """A poll that fails is logged; the next one tries again (the feed must outlive outages)."""
    try:
        yield
    except StoreError as exc:
        log.warning("change feed: polling %s failed (%s); retrying in the next poll", what, exc)
    except Exception:
        log.exception("change feed: polling %s failed unexpectedly; retrying in the next poll", what)
