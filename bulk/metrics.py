"""What the sync paths count, for `/metrics`: process-wide Prometheus counters (the standard
client's default registry; a scrape of one process shows that process). Each helper is one call at
the place the event happens, so the sync code stays free of metric names and labels."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prometheus_client import Counter, Gauge

from catalog_store.models import SyncRun

SYNC_RUNS = Counter("catalog_gateway_sync_runs", "Full-sync runs that ended, by status.", ["status"])
ITEMS_WRITTEN = Counter("catalog_gateway_items_written", "Catalog items written by full syncs that ended.")
ITEMS_SKIPPED = Counter("catalog_gateway_items_skipped", "Variants skipped by full syncs that ended, by reason.",
                        ["reason"])
INGEST_RATE = Gauge("catalog_gateway_ingest_items_per_second",
                    "Items written per second by the last full sync that ended, per shop.", ["shop"])
BULK_POLLS = Counter("catalog_gateway_bulk_polls", "Polls of Shopify bulk operations, by the status seen.",
                     ["status"])
ADMIN_COST = Counter("catalog_gateway_shopify_cost_used",
                     "Shopify Admin API cost points used (actualQueryCost of each answer).")
ADMIN_THROTTLES = Counter("catalog_gateway_shopify_throttles",
                          "Shopify Admin API throttles: GraphQL THROTTLED or HTTP 429.", ["kind"])


def run_ended(run: SyncRun) -> None:
    """Counts a run that reached its end (completed, failed or canceled)."""
    SYNC_RUNS.labels(status=run.status.value).inc()
    ITEMS_WRITTEN.inc(run.items_written)
    for skip in run.skipped:
        ITEMS_SKIPPED.labels(reason=skip.reason).inc(skip.count)
    if run.finished_at is not None:
        seconds = (run.finished_at - run.started_at).total_seconds()
        if seconds > 0:
            INGEST_RATE.labels(shop=run.shop_domain).set(run.items_written / seconds)


def bulk_polled(status: str) -> None:
    BULK_POLLS.labels(status=status).inc()


def admin_answered(extensions: Mapping[str, Any] | None) -> None:
    """The cost Shopify charged for one answer, when it says."""
    try:
        cost = float(extensions["cost"]["actualQueryCost"])  # type: ignore[index]
    except (KeyError, TypeError, ValueError):
        return
    if cost > 0:
        ADMIN_COST.inc(cost)


def admin_throttled(kind: str) -> None:
    ADMIN_THROTTLES.labels(kind=kind).inc()
