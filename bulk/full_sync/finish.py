"""How a full-sync run ends: completed, failed or canceled, each recorded on the run, the sync config
and as a notification.

Kept apart from the service so the three endings (and the wording users read) sit side by side.
"""

from __future__ import annotations

from bulk import metrics
from bulk.full_sync.ingest import IngestOutcome
from bulk.full_sync.reporter import RunReporter
from bulk.notifications import Notifier
from bulk.outcomes import failure_notice, record_failure
from catalog_store.models import NotificationLevel, RunStatus, SyncConfig, SyncErrorCode, SyncRun, SyncStatus, utcnow
from catalog_store.store import CatalogStore

SHOWN_DUPLICATES = 10


async def finish_outcome(config: SyncConfig, run: SyncRun, reporter: RunReporter, notifier: Notifier,
                         outcome: IngestOutcome, storage_limit_bytes: int) -> None:
    """An ingest that returned: completed, unless duplicate SKUs or the storage limit failed it."""
    reporter.apply_outcome(outcome)
    if outcome.duplicate_skus:
        shown = "; ".join(
            f"SKU {d.sku!r} on variants {', '.join(d.variant_ids)}"
            for d in outcome.duplicate_skus[:SHOWN_DUPLICATES]
        )
        more = len(outcome.duplicate_skus) - SHOWN_DUPLICATES
        message = f"{len(outcome.duplicate_skus)} SKUs are used by several variants: {shown}"
        if more > 0:
            message += f" (and {more} more)"
        await finish_failed(config, run, reporter, notifier, SyncErrorCode.DUPLICATE_SKU, message + ".")
        return
    if outcome.limit_reached:
        message = (
            f"The storage limit of {storage_limit_bytes} bytes for all catalogs was reached; "
            f"{run.items_written} items were written and syncing stopped."
        )
        await finish_failed(config, run, reporter, notifier, SyncErrorCode.CATALOG_LIMIT_EXCEEDED, message)
        return
    run.status = RunStatus.COMPLETED
    run.finished_at = utcnow()
    await reporter.set_phase("completed")
    metrics.run_ended(run)

    def completed(stored: SyncConfig) -> None:
        stored.cancel_requested_run = None
        if stored.active:  # deactivated meanwhile (limit reached by a webhook): stays in error
            stored.status = SyncStatus.SYNCED
            stored.error_code = stored.error_message = None

    await reporter.update_config(completed)
    catalog = await reporter.store.get_catalog(config.catalog_name)
    held = f" ({catalog.item_count} in the catalog)" if catalog is not None else ""
    parts = [f"{run.items_written} items written to catalog {config.catalog_name}{held}"]
    if run.items_skipped:
        reasons = ", ".join(f"{s.count} {s.reason}" for s in run.skipped)
        parts.append(f"{run.items_skipped} variants were skipped ({reasons})")
    if outcome.swept:
        parts.append(f"{outcome.swept} items of products deleted in Shopify were removed")
    if run.malformed_lines:
        parts.append(f"{run.malformed_lines} malformed lines in Shopify's file were skipped")
    await notifier.notify(config.shop_domain, NotificationLevel.SUCCESS, "Shopify product sync complete",
                          f"The sync of {config.shop_domain} completed: " + "; ".join(parts) + ".",
                          email=True)


async def finish_failed(config: SyncConfig, run: SyncRun, reporter: RunReporter, notifier: Notifier,
                        code: SyncErrorCode, message: str) -> None:
    run.status = RunStatus.FAILED
    run.error_code = code
    run.error_message = message
    run.finished_at = utcnow()
    await reporter.set_phase("failed")
    metrics.run_ended(run)

    def failed(stored: SyncConfig) -> None:
        record_failure(stored, code, message)
        stored.cancel_requested_run = None

    await reporter.update_config(failed)
    title, body = failure_notice(code, message)
    await notifier.notify(config.shop_domain, NotificationLevel.ERROR, title, body, email=True)


async def finish_canceled(config: SyncConfig, run: SyncRun, reporter: RunReporter, notifier: Notifier,
                          store: CatalogStore) -> None:
    """A canceled run leaves the sync SYNCED if an earlier run completed (its catalog stands)."""
    run.status = RunStatus.CANCELED
    run.finished_at = utcnow()
    await reporter.set_phase("canceled")
    metrics.run_ended(run)
    previous = [r for r in await store.list_runs(config.shop_domain, last=10)
                if r.status is RunStatus.COMPLETED]

    def canceled(stored: SyncConfig) -> None:
        stored.cancel_requested_run = None
        if previous:
            stored.status = SyncStatus.SYNCED
            stored.error_code = stored.error_message = None
        else:
            stored.status = SyncStatus.ERROR
            stored.error_code = None
            stored.error_message = "The initial sync was canceled before it completed; re-sync to finish it."

    await reporter.update_config(canceled)
    await notifier.notify(config.shop_domain, NotificationLevel.INFO, "Shopify product sync canceled",
                          f"The sync run of {config.shop_domain} was canceled; "
                          f"{run.items_written} items had been written.")
