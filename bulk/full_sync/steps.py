"""One full sync's steps, in order: shop info → catalog name → webhooks → bulk operation → ingest.

The service around it owns the lease, the run's task and its ending (`finish.py`).
"""

from __future__ import annotations

import aiohttp

from bulk.full_sync.ingest import IngestOutcome, IngestTarget, run_ingest
from bulk.full_sync.lease import ActiveRun
from bulk.full_sync.operation import BulkOperationRunner
from bulk.full_sync.registration import register_webhooks
from bulk.full_sync.reporter import RunReporter
from bulk.full_sync.settings import SyncSettings
from bulk.shopify.client import ShopifyClient
from bulk.shopify.documents import PRODUCTS_BULK_QUERY
from catalog_store.models import SyncConfig
from catalog_store.store import CatalogStore


async def full_sync(store: CatalogStore, settings: SyncSettings, session: aiohttp.ClientSession, config: SyncConfig,
                    entry: ActiveRun, client: ShopifyClient, reporter: RunReporter) -> IngestOutcome:
    """Run `entry.run` to its ingest's outcome (resuming its bulk operation when it has one)."""
    run = entry.run
    info = await client.shop_info()
    store_name = info.name or config.shop_domain
    if config.store_name != store_name:  # the catalog exists (`_begin_run`): it takes the shop's new name
        config.store_name = store_name
        await reporter.update_config(lambda stored: setattr(stored, "store_name", store_name))
        await store.ensure_catalog(config.catalog_name, config.shop_domain, store_name)
    await register_webhooks(config, client, reporter, settings.public_url)

    runner = BulkOperationRunner(
        client,
        poll_interval=settings.poll_interval,
        max_poll_interval=settings.max_poll_interval,
        max_attempts=settings.max_bulk_attempts,
        on_update=reporter.bulk_update,
    )
    entry.runner = runner
    resume_id = run.bulk_operation_id if run.bulk_status not in (None, "EXPIRED") else None
    if resume_id is None:
        await reporter.set_phase("bulk_running")
    # else the run keeps its phase (e.g. ingesting) while its operation is looked up again: bulk_update
    # sets bulk_running only if that operation, or a new one, is still running.
    result = await runner.run(PRODUCTS_BULK_QUERY, group_objects=settings.group_objects,
                              resume_operation_id=resume_id)
    entry.runner = None
    run.file_size = result.file_size
    run.bulk_url = result.url
    run.object_count = result.object_count
    await reporter.set_phase("ingesting" if result.url else "finalizing")
    target = IngestTarget(
        store=store,
        catalog=config.catalog_name,
        identifier=config.identifier,
        shop_domain=config.shop_domain,
        store_name=store_name,
        run_id=run.id,
        run_started_at=run.started_at,
        limit_bytes=settings.storage_limit_bytes,
        batch_size=settings.batch_size,
        retry=settings.download_retry,
    )
    return await run_ingest(result.url, session, target, reporter.ingest_progress)
