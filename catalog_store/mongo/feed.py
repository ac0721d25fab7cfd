"""MongoChangeFeed: the change feed on MongoDB. Change streams where the deployment offers them,
else polling (catalog_store.polling_feed).

`start()` decides: `hello` names a replica set (`setName`) or a mongos (`msg: isdbgrid`) and a
change stream opens → change streams. Otherwise polling: a standalone mongod answers a stream with
code 40573 ("The $changeStream stage is only supported on replica sets"), FerretDB has none, and a
user may lack the privilege. `polling=True` forces polling (tests, or a deployment whose streams
misbehave).

With change streams there is one stream per kind of change and process, opened when the kind's
first subscriber arrives and closed when its last one leaves, fanned out to every subscriber:
- `runs`: every run write, whole (`fullDocument: updateLookup`, so an in-place update would be too);
  a deleted run is known by id only and goes to every run subscriber;
- `notifications`: inserts only (updates mark them read or record their email);
- `items`: projected server-side to the key (`<catalog>/<variant id>`) and the item id: an item is
  never shipped whole; an update of `_run_id` alone (a run marking items seen) is no change. The events
  of one server batch are merged into one CatalogChange per catalog.
Resuming: PyMongo resumes a stream once by itself after a resumable error (a dropped connection, a
stepdown). When that fails, or the server ends the stream (its collection was dropped: `invalidate`),
the pump reopens it with `startAfter` = the last resume token, backing off while the server is
unreachable; if the server no longer has that history, it opens afresh and publishes a `Gap`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pymongo.asynchronous.change_stream import AsyncChangeStream
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import ConnectionFailure, OperationFailure, PyMongoError

from catalog_store.documents import notification_from_document, run_from_document
from catalog_store.errors import StoreError, StoreUnavailable
from catalog_store.feed import (
    CatalogChange,
    CatalogEvent,
    FeedMode,
    Gap,
    NotificationEvent,
    RunChange,
    RunEvent,
    Topic,
)
from catalog_store.models import utcnow
from catalog_store.polling_feed import NOTIFICATIONS, PollingFeed, PollReads, WrittenItem, WrittenSince

log = logging.getLogger(__name__)

Document = dict[str, Any]

# A resume token the server can no longer resume from: capped position lost (oplog rolled over),
# invalid token, fatal stream error, history lost.
HISTORY_LOST = frozenset({136, 260, 280, 286})
BOOKKEEPING_FIELDS = frozenset({"_run_id", "_grams"})  # updated alone, an item is unchanged (mark_seen, grams)
ITEM_PIPELINE: list[Document] = [
    {"$project": {"operationType": 1, "documentKey": 1, "fullDocument.id": 1,
                  "updateDescription.updatedFields": 1, "updateDescription.removedFields": 1}},
]
# `invalidate` always passes: a stream whose invalidate is filtered out would end unseen.
NOTIFICATION_PIPELINE: list[Document] = [{"$match": {"operationType": {"$in": ["insert", "invalidate"]}}}]


def written_since(database: AsyncDatabase[Document]) -> WrittenSince:
    """The polling query of item writes on MongoDB: by `_catalog` (indexed) and `_written_at` (not:
    a poll reads the catalog's index entries, which is what polling costs without change streams)."""
    items = database["items"]

    async def query(catalog: str, since: datetime) -> list[WrittenItem]:
        try:
            docs = await items.find(
                {"_catalog": catalog, "_written_at": {"$gte": since}}, {"_id": 1, "id": 1, "_rev": 1, "_written_at": 1}
            ).to_list()
        except PyMongoError as exc:
            raise StoreError(f"MongoDB refused the poll of {catalog!r}'s item writes: {exc}") from exc
        return [WrittenItem(doc["_id"].split("/", 1)[1], doc["id"], doc["_written_at"], doc.get("_rev"))
                for doc in docs]

    return query


@dataclass(slots=True)
class _Batch:
    """One catalog's item events of one server batch, merged."""

    written: dict[str, None] = field(default_factory=dict)  # variant ids, in order, once each
    item_ids: dict[str, None] = field(default_factory=dict)
    deleted: dict[str, None] = field(default_factory=dict)

    def change(self, catalog: str) -> CatalogChange:
        return CatalogChange(catalog, tuple(self.written), tuple(self.item_ids), tuple(self.deleted))


class _Stream:
    """One collection's change stream, opened on demand, pumped by one task into `handle`."""

    def __init__(
        self,
        name: str,
        collection: AsyncCollection[Document],
        pipeline: list[Document],
        handle: Callable[[Document], None],
        on_gap: Callable[[Gap], None],
        *,
        full_document: str | None = None,
        max_await_ms: int = 1000,
        retry_delay: float = 0.1,
        max_retry_delay: float = 5.0,
    ) -> None:
        self.name = name
        self._collection = collection
        self._pipeline = pipeline
        self._handle = handle
        self._on_gap = on_gap
        self._full_document = full_document
        self._max_await_ms = max_await_ms
        self._retry_delay = retry_delay
        self._max_retry_delay = max_retry_delay
        self._task: asyncio.Task[None] | None = None
        self._stopping: set[asyncio.Task[None]] = set()
        self.reopened = 0  # times the pump reopened the stream itself (PyMongo's own resumes excluded)
        self.gaps = 0

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def open(self) -> None:
        """Open the stream (changes from now on reach `handle`) unless it is open."""
        if self.running:
            return
        try:
            stream = await self._watch(None)
        except ConnectionFailure as exc:
            raise StoreUnavailable(f"MongoDB is unreachable: {exc}") from exc
        except PyMongoError as exc:
            raise StoreError(f"MongoDB refused to open the {self.name} change stream: {exc}") from exc
        self._task = asyncio.create_task(self._pump(stream), name=f"change-stream:{self.name}")

    def stop(self) -> None:
        """Stop pumping (the task ends at its next await and closes the stream; `close` waits)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            self._stopping.add(task)
            task.add_done_callback(self._stopping.discard)

    async def close(self) -> None:
        self.stop()
        tasks = set(self._stopping)
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _watch(self, token: Mapping[str, Any] | None) -> AsyncChangeStream[Document]:
        return await self._collection.watch(
            self._pipeline, full_document=self._full_document, start_after=token, max_await_time_ms=self._max_await_ms
        )

    async def _pump(self, stream: AsyncChangeStream[Document]) -> None:
        failures = 0  # in a row: a stream that fails again as soon as it is reopened waits longer each time
        try:
            while True:
                if not stream.alive:  # the server ended it (invalidate: the collection was dropped)
                    stream = await self._reopen(stream, "the server closed it", failures)
                    continue
                try:
                    change = await stream.try_next()
                except PyMongoError as exc:  # PyMongo could not resume it by itself
                    failures += 1
                    stream = await self._reopen(stream, f"{type(exc).__name__}: {exc}", failures)
                    continue
                failures = 0
                if change is not None:
                    try:
                        self._handle(change)
                    except Exception:  # one undecodable change must not end the feed
                        log.exception("change feed: a %s change could not be handled: %.300r", self.name, change)
        finally:
            with contextlib.suppress(PyMongoError):
                await stream.close()

    def _delay(self, failures: int) -> float:
        return float(min(self._retry_delay * 2 ** max(0, failures - 1), self._max_retry_delay))

    async def _reopen(self, stream: AsyncChangeStream[Document], why: str, failures: int) -> AsyncChangeStream[Document]:
        """The stream again from its last resume token (after `failures` failures in a row: first
        waits), or afresh with a Gap when the server no longer has that history."""
        token = stream.resume_token
        with contextlib.suppress(PyMongoError):
            await stream.close()
        log.info("change feed: the %s stream ended (%s); resuming", self.name, why)
        gap: Gap | None = None
        while True:
            if failures > 1:
                await asyncio.sleep(self._delay(failures - 1))
            try:
                fresh = await self._watch(token)
            except OperationFailure as exc:
                if token is not None and exc.code in HISTORY_LOST:
                    log.warning("change feed: the %s stream cannot resume (%s); restarting it, subscribers "
                                "re-read the store", self.name, exc)
                    token, gap = None, Gap(f"the {self.name} change stream lost its history: {exc}")
                    continue
                failures += 1
                log.warning("change feed: reopening the %s stream failed (%s); retrying in %.1f s",
                            self.name, exc, self._delay(failures - 1))
            except PyMongoError as exc:
                failures += 1
                log.warning("change feed: reopening the %s stream failed (%s); retrying in %.1f s",
                            self.name, exc, self._delay(failures - 1))
            else:
                self.reopened += 1
                if gap is not None:  # only now: a subscriber's re-read must come after the new start
                    self.gaps += 1
                    self._on_gap(gap)
                return fresh


class MongoChangeFeed:
    """ChangeFeed of one MongoDB database (see the module doc). `store` (on that database) and
    `now` (its write clock) serve the polling fallback."""

    def __init__(
        self,
        database: AsyncDatabase[Document],
        store: PollReads,
        *,
        poll_interval: float = 1.0,
        polling: bool = False,
        now: Callable[[], datetime] = utcnow,
        poll_overlap: timedelta = timedelta(seconds=2),
        max_await_ms: int = 1000,
    ) -> None:
        self._database = database
        self._store = store
        self._poll_interval = poll_interval
        self._force_polling = polling
        self._now = now
        self._poll_overlap = poll_overlap
        self._mode: FeedMode | None = None
        self._polling: PollingFeed | None = None
        self._start_lock = asyncio.Lock()
        self._closed = False
        self._runs = Topic[RunEvent]("run", self._opener("runs"), self._closer("runs"))
        self._notifications = Topic[NotificationEvent](
            "notification", self._opener("notifications"), self._closer("notifications"))
        self._catalogs = Topic[CatalogEvent]("catalog", self._opener("items"), self._closer("items"))
        self._topics: dict[str, Topic[Any]] = {
            "runs": self._runs, "notifications": self._notifications, "items": self._catalogs}
        self._streams = {
            "runs": _Stream("runs", database["runs"], [], self._on_run, self._runs.publish_all,
                            full_document="updateLookup", max_await_ms=max_await_ms),
            "notifications": _Stream("notifications", database["notifications"], NOTIFICATION_PIPELINE,
                                     self._on_notification, self._notifications.publish_all,
                                     max_await_ms=max_await_ms),
            "items": _Stream("items", database["items"], ITEM_PIPELINE, self._on_item, self._catalogs.publish_all,
                             max_await_ms=max_await_ms),
        }
        self._batches: dict[str, _Batch] = {}
        self._flush_scheduled = False

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def mode(self) -> FeedMode | None:
        return self._mode

    async def start(self) -> None:
        async with self._start_lock:
            if self._mode is not None:
                return
            if self._closed:
                raise StoreError("the change feed is closed", fix="Subscribe before the gateway shuts down.")
            try:
                mode = await self._detect()
            except ConnectionFailure as exc:
                raise StoreUnavailable(f"MongoDB is unreachable: {exc}") from exc
            except PyMongoError as exc:
                raise StoreError(f"MongoDB refused the change feed's checks: {exc}") from exc
            if mode is FeedMode.POLLING:
                self._polling = PollingFeed(self._store, written_since(self._database), interval=self._poll_interval,
                                            overlap=self._poll_overlap, now=self._now)
            self._mode = mode

    async def _detect(self) -> FeedMode:
        if self._force_polling:
            log.info("change feed: polling forced, every %.2f s", self._poll_interval)
            return FeedMode.POLLING
        hello = await self._database.command("hello")
        if "setName" not in hello and hello.get("msg") != "isdbgrid":
            log.info("change feed: MongoDB is standalone (no replica set, no mongos): no change streams, "
                     "polling every %.2f s", self._poll_interval)
            return FeedMode.POLLING
        try:
            probe = await self._database["runs"].watch(max_await_time_ms=1)
            await probe.close()
        except OperationFailure as exc:
            log.info("change feed: MongoDB refused a change stream (%s): polling every %.2f s",
                     exc, self._poll_interval)
            return FeedMode.POLLING
        log.info("change feed: change streams (replica set %s)", hello.get("setName", "via mongos"))
        return FeedMode.CHANGE_STREAM

    async def close(self) -> None:
        self._closed = True
        await asyncio.gather(*(stream.close() for stream in self._streams.values()))
        if self._polling is not None:
            await self._polling.close()

    def subscriber_count(self) -> int:
        if self._polling is not None:
            return self._polling.subscriber_count()
        return sum(len(topic) for topic in self._topics.values())

    @property
    def open_streams(self) -> list[str]:
        """The kinds whose change stream is open (each has subscribers)."""
        return [name for name, stream in self._streams.items() if stream.running]

    @property
    def polling_feed(self) -> PollingFeed | None:
        """The fallback in use (None with change streams)."""
        return self._polling

    def stream_reopens(self, kind: str) -> int:
        """How often the pump of `kind`'s stream reopened it (PyMongo's own resumes are not counted)."""
        return self._streams[kind].reopened

    # -- subscribing ---------------------------------------------------------------------------

    def runs(self, shop_domain: str, deliver: Callable[[RunEvent], None]) -> AbstractAsyncContextManager[None]:
        return self._subscribe("runs", shop_domain, deliver)

    def notifications(self, deliver: Callable[[NotificationEvent], None]) -> AbstractAsyncContextManager[None]:
        return self._subscribe("notifications", NOTIFICATIONS, deliver)

    def catalog_changes(
        self, catalog: str, deliver: Callable[[CatalogEvent], None]
    ) -> AbstractAsyncContextManager[None]:
        return self._subscribe("items", catalog, deliver)

    @asynccontextmanager
    async def _subscribe(self, kind: str, key: str, deliver: Callable[[Any], None]) -> AsyncIterator[None]:
        await self.start()
        polling = self._polling
        if polling is not None:
            subscription = (polling.runs(key, deliver) if kind == "runs"
                            else polling.notifications(deliver) if kind == "notifications"
                            else polling.catalog_changes(key, deliver))
        else:
            subscription = self._topics[kind].subscribe(key, deliver)
        async with subscription:
            yield

    def _opener(self, kind: str) -> Callable[[Hashable], Awaitable[None]]:
        async def opened(key: Hashable) -> None:
            if self._closed:
                raise StoreError("the change feed is closed", fix="Subscribe before the gateway shuts down.")
            await self._streams[kind].open()

        return opened

    def _closer(self, kind: str) -> Callable[[Hashable], None]:
        def closed(key: Hashable) -> None:
            if len(self._topics[kind]) == 0:
                self._streams[kind].stop()

        return closed

    # -- changes -------------------------------------------------------------------------------

    def _on_run(self, change: Document) -> None:
        operation = change["operationType"]
        if operation in ("insert", "replace", "update"):
            doc = change.get("fullDocument")
            if doc is None:  # deleted before the lookup: its delete event follows
                return
            run = run_from_document(doc)
            self._runs.publish(run.shop_domain, RunChange(run.id, run.shop_domain, run))
        elif operation == "delete":
            self._runs.publish_all(RunChange(str(change["documentKey"]["_id"]), None, None))

    def _on_notification(self, change: Document) -> None:
        doc = change.get("fullDocument")
        if change["operationType"] == "insert" and doc is not None:
            self._notifications.publish(NOTIFICATIONS, notification_from_document(doc))

    def _on_item(self, change: Document) -> None:
        operation = change["operationType"]
        if operation in ("drop", "rename", "dropDatabase"):
            self._catalogs.publish_all(Gap(f"the items collection was {operation}ped"))  # every item went
            return
        key = (change.get("documentKey") or {}).get("_id")
        if not isinstance(key, str) or "/" not in key:
            return
        catalog, variant_id = key.split("/", 1)
        batch = self._batches.get(catalog)
        if batch is None:
            batch = self._batches[catalog] = _Batch()
        if operation in ("insert", "replace"):
            batch.written[variant_id] = None
            item_id = (change.get("fullDocument") or {}).get("id")
            if isinstance(item_id, str):
                batch.item_ids[item_id] = None
        elif operation == "update":
            description = change.get("updateDescription") or {}
            changed = {*(description.get("updatedFields") or {}), *(description.get("removedFields") or ())}
            if changed <= BOOKKEEPING_FIELDS:
                return
            batch.written[variant_id] = None
        elif operation == "delete":
            batch.deleted[variant_id] = None
        if not self._flush_scheduled:
            # Runs once the pump waits for the server: the rest of this batch (handed out without
            # waiting) is merged in first.
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush_items)

    def _flush_items(self) -> None:
        batches, self._batches, self._flush_scheduled = self._batches, {}, False
        for catalog, batch in batches.items():
            if batch.written or batch.deleted:
                self._catalogs.publish(catalog, batch.change(catalog))
