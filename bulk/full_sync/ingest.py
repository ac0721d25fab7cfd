"""The ingest pipeline: bulk JSONL → catalog items, streamed.

Three tasks overlap, joined by bounded queues (back-pressure: a slow store stops the decoder, a
stopped decoder stops reading the socket):

    download (JsonlDownload) ─[≤ 4 blocks of ~0.25–1 MiB]→ decode + assemble ─[≤ 2 batches]→ writes

Memory grows with the number of products only (the assembler's compact records). Everything else
is bounded: blocks and batches by the queues, items by the batches the assembler holds back for
late variant images (`Assembler.hold_batches`), deferred writes by the SKU conflicts met.

SKU mode conflicts: `write_items` refuses an item whose id is held by another variant. When this
run wrote the holder, two variants of the file share the SKU: a genuine duplicate. Otherwise the
holder may be a stale item (its variant changed SKU or was deleted); the write is deferred and
retried after the sweep, and a retry that still conflicts is a duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp
import msgspec

from bulk.full_sync.jsonl import Block, DownloadRetry, JsonlDownload, LineDecoder, MalformedLines
from bulk.mapping.assemble import Assembler, Batch
from bulk.mapping.variants import IMAGE_TOO_LONG, BulkLine, VariantImage
from catalog_store.errors import InvalidItem
from catalog_store.items import CatalogItem, Identifier
from catalog_store.models import Conflict, SkipCount, WriteResult
from catalog_store.rules import item_problem
from catalog_store.store import CatalogStore

__all__ = ["DuplicateSku", "IngestOutcome", "IngestProgress", "IngestTarget", "run_ingest"]

SKU_CONFLICT = "sku_conflict"  # skip reason: SKU held by an item this run could not sweep
STALE = "stale"  # skip reason: the catalog holds newer data for the product (a later change, a deletion)
INVALID_VALUE = "invalid_value"  # skip reason: an item the store refused (a check the assembler lacks)
BLOCK_QUEUE = 4
BATCH_QUEUE = 2
IMAGE_CONCURRENCY = 64


@dataclass(slots=True)
class IngestProgress:
    """A running ingest's counters, passed to `on_progress` (~every 0.2 s and once at the end)."""

    bytes_downloaded: int
    file_size: int | None
    items_written: int
    items_skipped: int
    skipped: list[SkipCount]
    malformed_lines: int


@dataclass(slots=True)
class DuplicateSku:
    """Variants sharing one SKU (SKU mode): none of them overwrote another."""

    sku: str
    variant_ids: list[str]


@dataclass(slots=True)
class IngestOutcome:
    """How an ingest ended. `items_written` counts items this file wrote (or found already equal);
    those the store refused as stale are skipped (`STALE`); `swept` the items removed by the sweep."""

    items_written: int
    skipped: list[SkipCount]
    malformed_lines: int
    malformed_examples: list[str]
    duplicate_skus: list[DuplicateSku]
    limit_reached: bool
    swept: int
    bytes_downloaded: int

    @property
    def items_skipped(self) -> int:
        return sum(s.count for s in self.skipped if s.reason != IMAGE_TOO_LONG)


GC_GEN0_THRESHOLD = 20_000
_gc_users = 0
_gc_saved: tuple[int, int, int] | None = None


@contextlib.contextmanager
def _fewer_gc_passes() -> Iterator[None]:
    """Raise CPython's gen-0 collection threshold while any ingest runs (restored by the last one).

    Items live a few thousand allocations, until their batch is written; with the default
    threshold (700) each is traversed by gen-0 and gen-1 collections, which measured 20% of the
    ingest time at 1M variants (0.2% with 20,000). Process-wide, so it is reference counted and
    left alone if someone else changed the threshold meanwhile.
    """
    global _gc_users, _gc_saved
    if _gc_users == 0:
        _gc_saved = gc.get_threshold()
        if _gc_saved[0] < GC_GEN0_THRESHOLD:
            gc.set_threshold(GC_GEN0_THRESHOLD, *_gc_saved[1:])
    _gc_users += 1
    try:
        yield
    finally:
        _gc_users -= 1
        if _gc_users == 0 and _gc_saved is not None:
            ours = max(GC_GEN0_THRESHOLD, _gc_saved[0])
            if gc.get_threshold()[0] == ours:  # nobody changed it meanwhile
                gc.set_threshold(*_gc_saved)
            _gc_saved = None


class _End:
    """Queue sentinel: the producer is done."""


_END = _End()


class _Ingest:
    """State of one run_ingest call (see its docstring)."""

    def __init__(
        self,
        store: CatalogStore,
        catalog: str,
        run_id: str,
        run_started_at: datetime,
        limit_bytes: int | None,
        assembler: Assembler,
        malformed: MalformedLines,
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.run_id = run_id
        self.run_started_at = run_started_at
        self.limit_bytes = limit_bytes
        self.assembler = assembler
        self.malformed = malformed
        self.download: JsonlDownload | None = None
        self.items_written = 0
        self.limit_reached = False
        self.duplicates: dict[str, list[str]] = {}
        self.deferred: dict[str, CatalogItem] = {}  # variant id → item refused by a stale holder

    # -- stages ----------------------------------------------------------------------------------

    async def assemble(self, blocks: asyncio.Queue[Block | _End], batches: asyncio.Queue[Batch | _End]) -> None:
        decoder = LineDecoder(BulkLine, self.malformed)
        while True:
            block = await blocks.get()
            if isinstance(block, _End):
                break
            for piece in block.pieces():
                lines, line_number = decoder.decode(piece)
                for batch in self.assembler.feed(lines, line_number):
                    await batches.put(batch)
        for batch in self.assembler.flush():
            await batches.put(batch)
        await batches.put(_END)

    async def write(self, batches: asyncio.Queue[Batch | _End], producers: Sequence[asyncio.Task[Any]]) -> None:
        while True:
            batch = await batches.get()
            if isinstance(batch, _End):
                return
            await self.write_batch(batch)
            if self.limit_reached:  # stop reading: nothing more may be written
                for task in producers:
                    task.cancel()
                return

    async def write_batch(self, batch: Batch) -> None:
        items = batch.items
        if items:
            try:
                result = await self._write_items(items)
            except InvalidItem:  # the store refuses the whole batch for one item: skip that one
                items = self._drop_invalid(items)
                result = await self._write_items(items)
            self._count(result)
            considered = items[: result.written_upto] if result.limit_reached else items
            if result.conflicts:
                # Deferred variants are not marked seen: their old items must go in the sweep, or two
                # variants swapping SKUs would block each other (and look like duplicates).
                self._conflicts(result.conflicts, considered, final=False)
            if result.stale:
                refused = {c.variant_id for c in result.conflicts}
                await self.store.mark_seen(
                    self.catalog,
                    [i.shopify_variant_id for i in considered if i.shopify_variant_id not in refused],
                    self.run_id,
                )
            if result.limit_reached:
                self.limit_reached = True
                return
        if batch.images:
            await self._set_images(batch.images)

    async def retry_deferred(self, *, swept: bool) -> None:
        """Write the deferred items again. After a sweep no stale holder is left, so a conflict
        is a duplicate; without one, only holders written by this run are known duplicates."""
        items = list(self.deferred.values())
        self.deferred.clear()
        if not items:
            return
        result = await self._write_items(items)
        self._count(result)
        self._conflicts(result.conflicts, items, final=True, swept=swept)
        self.limit_reached = self.limit_reached or result.limit_reached

    # -- helpers ---------------------------------------------------------------------------------

    async def _write_items(self, items: Sequence[CatalogItem]) -> WriteResult:
        return await self.store.write_items(self.catalog, items, run_id=self.run_id, limit_bytes=self.limit_bytes,
                                            listed_after=self.run_started_at)

    def _count(self, result: WriteResult) -> None:
        """Written items count as written; stale ones (refused: newer data, or the product's
        tombstone) as skipped, so written + skipped is what the file described."""
        self.items_written += result.written
        if result.stale:
            self.assembler.skips.add(
                STALE, "the catalog already held newer data for these items' products (a later change or a "
                "deletion, applied by a webhook during the run): kept", count=result.stale)

    def _conflicts(
        self, conflicts: Sequence[Conflict], items: Sequence[CatalogItem], *, final: bool, swept: bool = False
    ) -> None:
        by_variant = {i.shopify_variant_id: i for i in items}
        for conflict in conflicts:
            if conflict.existing_run_id == self.run_id or swept:
                ids = self.duplicates.setdefault(conflict.item_id, [])
                for variant_id in (conflict.existing_variant_id, conflict.variant_id):
                    if variant_id not in ids:
                        ids.append(variant_id)
            elif final:
                self.assembler.skips.add(
                    SKU_CONFLICT,
                    f"variant {conflict.variant_id}: SKU {conflict.item_id!r} is still held by variant "
                    f"{conflict.existing_variant_id}, which this run did not see (not removed: the run "
                    "did not complete)",
                )
            else:
                item = by_variant.get(conflict.variant_id)
                if item is not None:
                    self.deferred[conflict.variant_id] = item

    def _drop_invalid(self, items: Sequence[CatalogItem]) -> list[CatalogItem]:
        kept: list[CatalogItem] = []
        for item in items:
            problem = item_problem(item)
            if problem is None:
                kept.append(item)
            else:
                self.assembler.skips.add(INVALID_VALUE, f"variant {item.shopify_variant_id}: {problem}")
        return kept

    async def _set_images(self, patches: Sequence[VariantImage]) -> None:
        remote: list[VariantImage] = []
        for patch in patches:
            item = self.deferred.get(patch.variant_id)
            if item is None:
                remote.append(patch)
            elif item.variant_image_url is None:
                self.deferred[patch.variant_id] = msgspec.structs.replace(item, variant_image_url=patch.url)
        for start in range(0, len(remote), IMAGE_CONCURRENCY):
            await asyncio.gather(
                *(
                    self.store.set_variant_image(self.catalog, p.variant_id, p.url)
                    for p in remote[start : start + IMAGE_CONCURRENCY]
                )
            )

    def progress(self) -> IngestProgress:
        download = self.download
        return IngestProgress(
            bytes_downloaded=download.bytes_downloaded if download else 0,
            file_size=download.file_size if download else None,
            items_written=self.items_written,
            items_skipped=self.assembler.skips.items,
            skipped=self.assembler.skips.snapshot(),
            malformed_lines=self.malformed.count,
        )


@dataclass(frozen=True, slots=True)
class IngestTarget:
    """Where one run's items go and what marks them as this run's (the sweep removes the rest).

    One object, so the service, the tests and the benchmarks describe a run the same way. The
    catalog must exist (`CatalogStore.ensure_catalog`): the run creates it once, before its bulk
    operation.
    """

    store: CatalogStore
    catalog: str
    identifier: Identifier
    shop_domain: str
    store_name: str
    run_id: str
    run_started_at: datetime  # before the bulk operation started: it also ends older tombstones it lists
    limit_bytes: int | None = None
    batch_size: int = 1000
    progress_interval: float = 0.2
    retry: DownloadRetry = DownloadRetry()


async def run_ingest(
    url: str | None,
    session: aiohttp.ClientSession,
    target: IngestTarget,
    on_progress: Callable[[IngestProgress], Awaitable[object]] | None = None,
) -> IngestOutcome:
    """Stream the bulk result at `url` into `target.catalog` and, on a clean end, sweep the items of
    variants this run did not see (written before `run_started_at` and not by `run_id`).

    `url=None` means the bulk query matched nothing: every older item is swept. Returns the
    outcome; raises DownloadError (or DownloadRefused) when the file cannot be read, store errors
    as raised by the store. Items already written stay: a new run converges (writes are idempotent).
    """
    store, catalog = target.store, target.catalog
    malformed = MalformedLines()
    assembler = Assembler(
        identifier=target.identifier,
        shop_domain=target.shop_domain,
        store_name=target.store_name,
        batch_size=target.batch_size,
        on_bad_line=malformed.add,
    )
    state = _Ingest(store, catalog, target.run_id, target.run_started_at, target.limit_bytes, assembler, malformed)

    if url is not None:
        with _fewer_gc_passes():
            await _stream(state, session, url, target.retry, on_progress, target.progress_interval)

    swept = 0
    clean = not state.limit_reached and not state.duplicates
    if clean:
        swept = await store.sweep(catalog, target.run_id, target.run_started_at)
    if not state.limit_reached:
        await state.retry_deferred(swept=clean)
    if on_progress is not None:
        await on_progress(state.progress())
    return IngestOutcome(
        items_written=state.items_written,
        skipped=assembler.skips.snapshot(),
        malformed_lines=malformed.count,
        malformed_examples=list(malformed.examples),
        duplicate_skus=[DuplicateSku(sku, ids) for sku, ids in state.duplicates.items()],
        limit_reached=state.limit_reached,
        swept=swept,
        bytes_downloaded=state.download.bytes_downloaded if state.download else 0,
    )


async def _stream(
    state: _Ingest,
    session: aiohttp.ClientSession,
    url: str,
    retry: DownloadRetry,
    on_progress: Callable[[IngestProgress], Awaitable[object]] | None,
    progress_interval: float,
) -> None:
    """download ∥ decode + assemble ∥ write, until the file is written or the limit is reached."""
    download = state.download = JsonlDownload(session, url, retry=retry)
    blocks: asyncio.Queue[Block | _End] = asyncio.Queue(BLOCK_QUEUE)
    batches: asyncio.Queue[Batch | _End] = asyncio.Queue(BATCH_QUEUE)

    async def fetch() -> None:
        await download.run(blocks.put)
        await blocks.put(_END)

    producers = [asyncio.create_task(fetch()), asyncio.create_task(state.assemble(blocks, batches))]
    helpers = list(producers)
    if on_progress is not None:
        helpers.append(asyncio.create_task(_report(state, on_progress, progress_interval)))
    await _supervise(asyncio.create_task(state.write(batches, producers)), helpers)


async def _supervise(main: asyncio.Task[None], helpers: list[asyncio.Task[Any]]) -> None:
    """Wait for `main`; the first failure of any task cancels the others and is raised. Helpers
    cancelled on purpose (storage limit) are not failures; helpers still running when `main` ends
    (the progress reporter) are cancelled."""
    tasks = [main, *helpers]
    try:
        pending = set(tasks)
        while not main.done():
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _report(
    state: _Ingest, on_progress: Callable[[IngestProgress], Awaitable[object]], interval: float
) -> None:
    """Report every `interval` seconds while something changed (a slow callback delays the next)."""
    last: IngestProgress | None = None
    while True:
        await asyncio.sleep(interval)
        snapshot = state.progress()
        if snapshot != last:
            await on_progress(snapshot)
            last = snapshot
