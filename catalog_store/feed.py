"""The change feed: how changes written to the store by any process (several gateways may share one
MongoDB) are found, behind one interface.

`ChangeFeed` (from `store.feed()`) delivers three kinds of change to subscribers:
- `runs(shop)`: sync runs saved or deleted (`RunChange`), i.e. progress snapshots;
- `notifications()`: dashboard notifications added;
- `catalog_changes(catalog)`: items written or deleted (`CatalogChange`).

Two implementations: on MongoDB deployments that offer change streams (replica sets, sharded
clusters) one change stream per kind and process, fanned out to its subscribers
(catalog_store.mongo.feed); otherwise, and for the in-memory store, one poll of the store per
interval (catalog_store.polling_feed). Either way a subscriber registers a non-blocking callback
(usually `Inbox.put`) for as long as an `async with` block lasts; on entry the feed is watching, so
a subscriber that reads the current state inside the block misses nothing after that read. A
`Gap` says changes may have been missed (a stream could not be resumed): re-read the store.
Values handed out are shared by the subscribers of one change: do not mutate them.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, Protocol, TypeVar, runtime_checkable

from catalog_store.models import Notification, SyncRun

log = logging.getLogger(__name__)

T = TypeVar("T")


class FeedMode(StrEnum):
    CHANGE_STREAM = "change_stream"
    POLLING = "polling"


@dataclass(frozen=True, slots=True)
class Gap:
    """Changes of this kind may have been missed (e.g. a change stream's history was lost while it
    was down): the subscriber should re-read what it shows from the store."""

    reason: str


@dataclass(frozen=True, slots=True)
class RunChange:
    """A sync run was saved (`run` is its new state) or deleted (`run` is None). A deletion seen by
    a change stream does not know its shop (`shop_domain` None) and goes to every run subscriber."""

    run_id: str
    shop_domain: str | None
    run: SyncRun | None


@dataclass(frozen=True, slots=True)
class CatalogChange:
    """Items of one catalog written or deleted, by Shopify variant id (the item key). `item_ids`
    lists the catalog item ids of written items where the writer stored them whole (an in-place
    update, e.g. an image set, names its variant only). `partial`: more may have changed than is
    listed (polling cannot list deletions; it only sees the item count fall): re-read the catalog."""

    catalog: str
    written: tuple[str, ...] = ()
    item_ids: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()
    partial: bool = False


RunEvent = RunChange | Gap
NotificationEvent = Notification | Gap
CatalogEvent = CatalogChange | Gap


@runtime_checkable
class ChangeFeed(Protocol):
    """Changes written by any process, pushed to in-process subscribers (see the module doc)."""

    @property
    def mode(self) -> FeedMode | None:
        """How changes are found; None until `start()` has decided."""

    async def start(self) -> None:
        """Decide how changes are found (idempotent; subscribing starts the feed too). Watching
        begins only when a first subscriber arrives and ends when the last one leaves."""

    async def close(self) -> None:
        """Stop watching and wait for it; blocks still open receive nothing more."""

    def subscriber_count(self) -> int:
        """Subscribers of every kind (a subscriber that left is no longer counted)."""

    def runs(self, shop_domain: str, deliver: Callable[[RunEvent], None]) -> AbstractAsyncContextManager[None]:
        """Within the block, `deliver` gets every change of the shop's runs (and every run deletion)."""

    def notifications(self, deliver: Callable[[NotificationEvent], None]) -> AbstractAsyncContextManager[None]:
        """Within the block, `deliver` gets each notification added (possibly twice: dedupe by id)."""

    def catalog_changes(
        self, catalog: str, deliver: Callable[[CatalogEvent], None]
    ) -> AbstractAsyncContextManager[None]:
        """Within the block, `deliver` gets the catalog's item writes and deletions."""


class Inbox(Generic[T]):
    """A subscriber's bounded queue: `put` never blocks (when full the oldest value is dropped:
    for snapshots a newer one supersedes it), `get` waits at most a timeout."""

    def __init__(self, capacity: int = 64) -> None:
        self._queue: asyncio.Queue[T] = asyncio.Queue(capacity)

    def put(self, value: T) -> None:
        if self._queue.full():
            self._queue.get_nowait()
            log.debug("an inbox was full: its oldest value was dropped")
        self._queue.put_nowait(value)

    def __len__(self) -> int:
        return self._queue.qsize()

    async def get(self, timeout: float | None = None) -> T | None:
        """The next value, or None after `timeout` seconds (None: wait as long as it takes).
        `asyncio.timeout`, not `wait_for`: on Python 3.11 `wait_for` can swallow a cancel that
        arrives as the value does, and a subscription the client left would then go on forever."""
        if timeout is None:
            return await self._queue.get()
        try:
            async with asyncio.timeout(max(0.0, timeout)):
                return await self._queue.get()
        except TimeoutError:
            return None


class SeenIds:
    """A bounded set of recently seen ids (a notification may arrive by two paths, or twice)."""

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


class Topic(Generic[T]):
    """The subscribers of one kind of change, by key, and the hooks that start and stop watching:
    `opened(key)` is awaited before the first subscriber of a key is registered (open a stream, seed
    a poll); `closed(key)` runs, synchronously, after the last subscriber of a key left, so leaving
    never waits on I/O and cannot be interrupted halfway."""

    def __init__(
        self,
        name: str,
        opened: Callable[[Hashable], Awaitable[None]],
        closed: Callable[[Hashable], None],
    ) -> None:
        self.name = name
        self._opened = opened
        self._closed = closed
        self._subscribers: dict[Hashable, list[Callable[[T], None]]] = {}
        self._lock = asyncio.Lock()

    def __len__(self) -> int:
        return sum(len(subscribers) for subscribers in self._subscribers.values())

    def keys(self) -> list[Hashable]:
        return list(self._subscribers)

    @asynccontextmanager
    async def subscribe(self, key: Hashable, deliver: Callable[[T], None]) -> AsyncIterator[None]:
        async with self._lock:  # a second subscriber waits until the first one's source is open
            subscribers = self._subscribers.get(key)
            if subscribers is None:
                await self._opened(key)
                subscribers = self._subscribers[key] = []
            subscribers.append(deliver)
        try:
            yield
        finally:
            subscribers.remove(deliver)
            if not subscribers and self._subscribers.get(key) is subscribers:
                del self._subscribers[key]
                self._closed(key)

    def publish(self, key: Hashable, value: T) -> None:
        for deliver in tuple(self._subscribers.get(key, ())):
            self._deliver(deliver, value)

    def publish_all(self, value: T) -> None:
        for subscribers in tuple(self._subscribers.values()):
            for deliver in tuple(subscribers):
                self._deliver(deliver, value)

    def _deliver(self, deliver: Callable[[T], None], value: T) -> None:
        try:
            deliver(value)
        except Exception:  # a broken subscriber must not stop the feed or the others
            log.exception("a %s subscriber failed to take a change", self.name)
