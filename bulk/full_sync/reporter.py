"""A run's progress reporter: bulk-operation and ingest progress applied to the run, published to
this process's subscribers on every change and persisted at a bounded rate (so other processes,
through the change feed, and a process taking the run over see it too)."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable

from bulk.full_sync.ingest import IngestOutcome, IngestProgress
from bulk.progress import Broadcaster
from bulk.shopify.bulk_operations import BulkOperationState
from catalog_store.models import SyncConfig, SyncRun, utcnow
from catalog_store.store import CatalogStore


class RunReporter:
    """Applies bulk/ingest progress to the run; publishes every change, persists at a bounded rate."""

    def __init__(self, store: CatalogStore, progress: Broadcaster[SyncRun], persist_interval: float,
                 run: SyncRun) -> None:
        self._store = store
        self._progress = progress
        self._persist_interval = persist_interval
        self._run = run
        self._last_persist = 0.0
        self._persist_lock = asyncio.Lock()

    @property
    def store(self) -> CatalogStore:
        """The store the run is reported to (and whose catalog it writes)."""
        return self._store

    async def _persist(self, save: Callable[[], Awaitable[object]]) -> None:
        """Run a store write to its end even if the run is cancelled meanwhile, and in order: a write
        cut off by a cancel must not land after the final state written by the cancel handling."""
        async def ordered() -> None:
            async with self._persist_lock:
                await save()

        await asyncio.shield(asyncio.ensure_future(ordered()))

    async def update_config(self, change: Callable[[SyncConfig], object]) -> None:
        """Apply `change` to the STORED configuration and save it (another process, a webhook or an
        `enable` may have changed other fields during the run). Nothing when the sync was disabled."""
        store = self._store

        def changed(stored: SyncConfig) -> None:
            change(stored)
            stored.updated_at = utcnow()

        await self._persist(lambda: store.update_sync(self._run.shop_domain, changed))

    async def set_phase(self, phase: str) -> None:
        self._run.phase = phase
        await self._emit(force=True)

    async def bulk_update(self, state: BulkOperationState) -> None:
        run = self._run
        changed_operation = run.bulk_operation_id != state.id or run.bulk_status != state.status
        if run.bulk_operation_id is not None and run.bulk_operation_id != state.id:
            run.bytes_downloaded = 0  # a new operation: a new file to download
        if not state.finished and run.phase != "bulk_running":
            run.phase = "bulk_running"  # a resumed operation still running, or a new one
        run.bulk_operation_id = state.id
        run.bulk_status = str(state.status)
        run.object_count = state.object_count
        run.file_size = state.file_size
        await self._emit(force=changed_operation)

    async def ingest_progress(self, progress: IngestProgress) -> None:
        """A resumed run (its process stopped, another took it over) reads its file again from the
        start: the progress it showed stays shown until this attempt passes it, so that no subscriber,
        in any process, sees it go back. The outcome sets the exact figures at the end."""
        run = self._run
        run.bytes_downloaded = max(run.bytes_downloaded, progress.bytes_downloaded)
        if progress.file_size is not None:
            run.file_size = progress.file_size
        run.items_written = max(run.items_written, progress.items_written)
        if progress.items_skipped >= run.items_skipped:
            run.items_skipped = progress.items_skipped
            run.skipped = [copy.copy(s) for s in progress.skipped]
        run.malformed_lines = max(run.malformed_lines, progress.malformed_lines)
        await self._emit(force=False)

    def apply_outcome(self, outcome: IngestOutcome) -> None:
        run = self._run
        run.items_written = outcome.items_written
        run.skipped = [copy.copy(s) for s in outcome.skipped]
        run.items_skipped = sum(s.count for s in outcome.skipped)
        run.malformed_lines = outcome.malformed_lines
        run.malformed_examples = list(outcome.malformed_examples[:10])
        run.bytes_downloaded = outcome.bytes_downloaded

    async def _emit(self, *, force: bool) -> None:
        """Persist (when due) before publishing: a snapshot a subscriber saw, such as a new bulk
        operation id, is never lost by a process stopped right after."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        if force or now - self._last_persist >= self._persist_interval:
            self._last_persist = now
            await self._persist(lambda: self._store.save_run(self._run))
        self._progress.publish(self._run.shop_domain, snapshot_of(self._run))


def snapshot_of(run: SyncRun) -> SyncRun:
    """An independent copy for subscribers (the live run keeps changing)."""
    snapshot = copy.copy(run)
    snapshot.skipped = [copy.copy(s) for s in run.skipped]
    snapshot.malformed_examples = list(run.malformed_examples)
    return snapshot
