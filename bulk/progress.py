"""In-process publish/subscribe for run snapshots and notifications.

Subscribers never slow the publisher: each has a small queue, and when it is full the oldest
snapshot is dropped (a newer snapshot supersedes it). Processes that do not run a shop's sync see its
progress by reading the persisted run from the store (see `gateway`), so this hub stays in-process.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Generic, Hashable, TypeVar

T = TypeVar("T")

ALL = "*"  # subscribe to every key


class Broadcaster(Generic[T]):
    """Fan-out of values by key. `subscribe(key)` yields values published for `key` (or all)."""

    def __init__(self, queue_size: int = 64) -> None:
        self._queue_size = queue_size
        self._subscribers: dict[Hashable, set[asyncio.Queue[T]]] = {}

    def publish(self, key: Hashable, value: T) -> None:
        for target in (key, ALL):
            for queue in self._subscribers.get(target, ()):
                if queue.full():
                    queue.get_nowait()
                queue.put_nowait(value)

    def subscriber_count(self, key: Hashable = ALL) -> int:
        return len(self._subscribers.get(key, ()))

    @asynccontextmanager
    async def subscribe(self, key: Hashable = ALL) -> AsyncIterator[asyncio.Queue[T]]:
        """A queue receiving values for `key`, unregistered when the block exits."""
        queue: asyncio.Queue[T] = asyncio.Queue(self._queue_size)
        self._subscribers.setdefault(key, set()).add(queue)
        try:
            yield queue
        finally:
            subscribers = self._subscribers.get(key)
            if subscribers is not None:
                subscribers.discard(queue)
                if not subscribers:
                    del self._subscribers[key]
