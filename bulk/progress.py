"""In-process publish/subscribe for run snapshots and notifications.

Subscribers never slow the publisher: each has a small queue, and when it is full the oldest
snapshot is dropped (a newer snapshot supersedes it), or a callback that must not block. Other
processes' runs and notifications reach subscribers through the store's change feed
(catalog_store.feed, see `gateway.graphql.live`), so this hub stays in-process: it is the fast path for what
this process itself publishes (every progress change, while the run is persisted less often).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Hashable, Iterator
from contextlib import asynccontextmanager
from typing import Generic, TypeVar

T = TypeVar("T")

ALL = "*"  # subscribe to every key

log = logging.getLogger(__name__)


class Broadcaster(Generic[T]):
    """Fan-out of values by key. `subscribe(key)` yields values published for `key` (or all)."""

    def __init__(self, queue_size: int = 64) -> None:
        self._queue_size = queue_size
        self._subscribers: dict[Hashable, set[Callable[[T], None]]] = {}

    def publish(self, key: Hashable, value: T) -> None:
        for target in (key, ALL):
            for deliver in tuple(self._subscribers.get(target, ())):
                try:
                    deliver(value)
                except Exception:  # one broken subscriber must not stop the publisher or the others
                    log.exception("a subscriber of %r failed to take a value", target)

    def subscriber_count(self, key: Hashable = ALL) -> int:
        return len(self._subscribers.get(key, ()))

    @contextlib.contextmanager
    def listen(self, key: Hashable, deliver: Callable[[T], None]) -> Iterator[None]:
        """Call `deliver` (synchronously, from `publish`: it must not block) with each value for
        `key` until the block exits. Lets a subscriber merge this hub with other sources."""
        self._subscribers.setdefault(key, set()).add(deliver)
        try:
            yield
        finally:
            subscribers = self._subscribers.get(key)
            if subscribers is not None:
                subscribers.discard(deliver)
                if not subscribers:
                    del self._subscribers[key]

    @asynccontextmanager
    async def subscribe(self, key: Hashable = ALL) -> AsyncIterator[asyncio.Queue[T]]:
        """A queue receiving values for `key`, unregistered when the block exits."""
        queue: asyncio.Queue[T] = asyncio.Queue(self._queue_size)

        def deliver(value: T) -> None:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(value)

        with self.listen(key, deliver):
            yield queue
