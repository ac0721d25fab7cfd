"""Sync lifecycle: enable, re-sync, cancel, disable, and the full-sync run itself.

A run is: lease → shop info → webhooks → bulk operation → download + ingest → finalise. Its state is
persisted on the `SyncRun` (bulk operation id and status included), so a process that restarts, or
another process whose lease takes over, resumes the same run instead of losing it. Progress snapshots
are published to in-process subscribers on every change and persisted at most once per
`persist_interval` (and at every phase change).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import socket
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

import aiohttp

from bulk.errors import (
    BulkError,
    BulkOperationCanceled,
    IdentifierChangeRequiresDisable,
    InvalidInput,
    NotFound,
    ShopifyError,
    ShopifyUserError,
    SyncAlreadyRunning,
)
from bulk.full_sync.ingest import IngestOutcome, IngestTarget, run_ingest
from bulk.full_sync.jsonl import DownloadRetry
from bulk.full_sync.operation import BulkOperationRunner
from bulk.full_sync.reporter import RunReporter, snapshot_of
from bulk.full_sync.stop import RunStop
from bulk.mapping.payloads import TOPICS
from bulk.notifications import Notifier
from bulk.outcomes import failure_notice, record_failure, sync_error_code
from bulk.progress import Broadcaster
from bulk.shopify.client import RetryPolicy, ShopifyClient, client_for
from bulk.shopify.documents import PRODUCTS_BULK_QUERY
from catalog_store.items import Identifier, catalog_name, normalize_shop_domain
from catalog_store.models import (
    NotificationLevel,
    RunStatus,
    SyncConfig,
    SyncErrorCode,
    SyncRun,
    SyncStatus,
    utcnow,
)
from catalog_store.store import CatalogStore

log = logging.getLogger(__name__)

@dataclass(frozen=True, slots=True)
class SyncSettings:
    api_version: str = "2026-01"
    admin_api_url_template: str = "https://{shop}/admin/api/{version}/graphql.json"
    storage_limit_bytes: int = 104_857_600
    public_url: str | None = None  # base URL Shopify calls for webhooks; None: none registered
    group_objects: bool = False
    poll_interval: float = 1.0
    max_poll_interval: float = 30.0
    max_bulk_attempts: int = 3
    lease_ttl: float = 60.0
    persist_interval: float = 1.0
    batch_size: int = 1000
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    download_retry: DownloadRetry = field(default_factory=DownloadRetry)


@dataclass(frozen=True, slots=True)
class DisableResult:
    shop_domain: str
    items_deleted: int
    alert_subscriptions_affected: int


def _add_webhook_id(stored: SyncConfig, webhook_id: str) -> None:
    stored.webhook_ids.append(webhook_id)


def default_owner_id() -> str:
    """Identifies this process as a lease owner: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(slots=True)
class _ActiveRun:
    run: SyncRun
    task: asyncio.Task[SyncRun]
    runner: BulkOperationRunner | None = None
    stop: RunStop = field(default_factory=RunStop)


class SyncService:
    """The Python API the GraphQL layer and the CLI call. One instance per gateway process."""

    def __init__(
        self,
        store: CatalogStore,
        *,
        settings: SyncSettings,
        notifier: Notifier,
        progress: Broadcaster[SyncRun] | None = None,
        session: aiohttp.ClientSession | None = None,
        owner_id: str | None = None,
        client_factory: Callable[[SyncConfig], ShopifyClient] | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.notifier = notifier
        self.progress: Broadcaster[SyncRun] = progress or Broadcaster()
        self.owner_id = owner_id or default_owner_id()
        self._session = session
        self._own_session = session is None
        self._client_factory = client_factory or self._make_client
        self._active: dict[str, _ActiveRun] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._watcher: asyncio.Task[None] | None = None
        self._only_shops: frozenset[str] | None = None
        self._closed = False

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self, *, only_shops: Collection[str] | None = None) -> None:
        """Resume runs left RUNNING by a stopped process, and watch for abandoned runs (of `only_shops`
        when given: a one-shot `catalog-gateway sync` must not take over other shops' runs)."""
        self._only_shops = None if only_shops is None else frozenset(only_shops)
        if self._session is None:
            self._session = aiohttp.ClientSession()
        await self.resume_abandoned_runs()
        self._watcher = asyncio.create_task(self._watch_abandoned(), name="sync-lease-watcher")

    async def close(self) -> None:
        """Stop local runs without marking them failed: another process (or a restart) resumes them."""
        self._closed = True
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
        active = list(self._active.values())
        for entry in active:
            if entry.stop.interruptible:  # a run recording its outcome is let finish (config, notification)
                entry.task.cancel()
        _, late = await asyncio.wait([entry.task for entry in active], timeout=30) if active else (set(), set())
        for task in late:
            task.cancel()
        await asyncio.gather(*(entry.task for entry in active), return_exceptions=True)
        for entry in active:
            await self.store.release_lease(entry.run.shop_domain, self.owner_id)
        if self._own_session and self._session is not None:
            await self._session.close()

    def _lock(self, shop_domain: str) -> asyncio.Lock:
        return self._locks.setdefault(shop_domain, asyncio.Lock())

    def _make_client(self, config: SyncConfig) -> ShopifyClient:
        return client_for(config.shop_domain, config.access_token, self.settings, self._session)

    # -- public API --------------------------------------------------------------------------------

    async def enable(self, shop_domain: str, access_token: str, identifier: Identifier | str) -> SyncConfig:
        """Store the shop's configuration and start its initial full sync.

        Enabling an already enabled shop with the same identifier updates its access token and
        re-syncs (unless a sync is running). A different identifier is refused.
        """
        shop = _shop(shop_domain)
        if not access_token or not access_token.strip():
            raise InvalidInput("accessToken is empty.", fix="Pass the shop's Admin API access token (shpat_…).")
        try:
            identifier = Identifier(identifier)
        except ValueError:
            raise InvalidInput(
                f"identifier must be one of {', '.join(i.value for i in Identifier)}.",
                fix="Choose SHOPIFY_VARIANT_ID or SKU.",
            ) from None
        async with self._lock(shop):
            existing = await self.store.get_sync(shop)
            if existing is not None and existing.identifier is not identifier:
                raise IdentifierChangeRequiresDisable(
                    f"{shop} already syncs with identifier {existing.identifier.value}; the identifier of an "
                    f"active sync cannot change to {identifier.value}."
                )
            config = existing or SyncConfig(
                shop_domain=shop, catalog_name=catalog_name(shop), identifier=identifier, access_token=access_token
            )
            config.access_token = access_token.strip()
            if await self._running_run(shop) is not None:
                await self.store.save_sync(config)
                return config
            await self._begin_run(config)
        await self.notifier.notify(
            shop,
            NotificationLevel.INFO,
            "Shopify product sync in progress",
            f"The initial sync of {shop} into catalog {config.catalog_name} has started "
            f"(identifier: {identifier.value}). You will be notified when it completes.",
        )
        return config

    async def resync(self, shop_domain: str) -> SyncRun:
        """Start a new full sync of an enabled shop."""
        shop = _shop(shop_domain)
        async with self._lock(shop):
            config = await self._config(shop)
            if await self._running_run(shop) is not None:
                raise SyncAlreadyRunning(f"A sync of {shop} is already running.")
            run = await self._begin_run(config)
        await self.notifier.notify(shop, NotificationLevel.INFO, "Shopify product re-sync started",
                                   f"A full re-sync of {shop} has started.")
        return run

    async def cancel(self, shop_domain: str) -> SyncRun | None:
        """Cancel the running sync of a shop (None when none runs). Items already written stay."""
        shop = _shop(shop_domain)
        await self._config(shop)
        entry = self._active.get(shop)
        if entry is not None:
            entry.stop.request_cancel()
            if entry.runner is not None:
                try:
                    await entry.runner.cancel()
                except BulkError as exc:
                    log.warning("could not cancel the bulk operation of %s: %s", shop, exc)
            if entry.stop.interruptible:
                entry.task.cancel()
            await asyncio.gather(entry.task, return_exceptions=True)
            return await self.store.get_run(entry.run.id)
        run = await self._running_run(shop)
        if run is None:
            return None
        # Owned by another process: it sees the request at its next lease renewal.
        config = await self._config(shop)
        config.cancel_requested_run = run.id
        await self.store.save_sync(config)
        return await self.wait_for_run(run.id, timeout=self.settings.lease_ttl * 2)

    async def disable(self, shop_domain: str) -> DisableResult:
        """Cancel any running sync, delete the webhooks, and delete the catalog with all its items."""
        shop = _shop(shop_domain)
        await self._config(shop)
        if await self._running_run(shop) is not None:
            await self.cancel(shop)
        async with self._lock(shop):
            config = await self._config(shop)  # re-read: the run may have registered webhooks meanwhile
            webhook_problems = await self._delete_webhooks(config)
            items_deleted = await self.store.delete_catalog(config.catalog_name)
            await self.store.delete_runs(shop)
            await self.store.delete_sync(shop)
        message = f"Sync of {shop} is disabled; catalog {config.catalog_name} and its {items_deleted} items were deleted."
        if webhook_problems:
            message += " Some webhooks could not be removed in Shopify: " + "; ".join(webhook_problems)
        await self.notifier.notify(shop, NotificationLevel.INFO, "Shopify product sync disabled", message)
        return DisableResult(shop_domain=shop, items_deleted=items_deleted, alert_subscriptions_affected=0)

    async def wait_for_run(self, run_id: str, *, timeout: float | None = None) -> SyncRun:
        """The run once finished (waits on the local task, else polls the store)."""
        async def wait() -> SyncRun:
            for entry in list(self._active.values()):
                if entry.run.id == run_id:
                    await asyncio.gather(entry.task, return_exceptions=True)
            while True:
                run = await self.store.get_run(run_id)
                if run is None:
                    raise NotFound(f"Run {run_id} does not exist (the sync may have been disabled).")
                if run.finished:
                    return run
                await asyncio.sleep(min(self.settings.poll_interval, 1.0))

        return await asyncio.wait_for(wait(), timeout)

    def bulk_finished(self, shop_domain: str, operation_id: str | None = None) -> None:
        """A `bulk_operations/finish` webhook arrived: poll the operation now."""
        entry = self._active.get(shop_domain)
        if entry is not None and entry.runner is not None:
            if operation_id is None or operation_id == entry.runner.operation_id:
                entry.runner.wake()

    def local_run(self, shop_domain: str) -> SyncRun | None:
        """The live snapshot of a run this process is executing, if any."""
        entry = self._active.get(shop_domain)
        return snapshot_of(entry.run) if entry is not None else None

    # -- runs ------------------------------------------------------------------------------------

    async def _config(self, shop: str) -> SyncConfig:
        config = await self.store.get_sync(shop)
        if config is None:
            raise NotFound(f"Shopify sync is not enabled for {shop}.")
        return config

    async def _running_run(self, shop: str) -> SyncRun | None:
        if shop in self._active:
            return self._active[shop].run
        runs = await self.store.list_runs(shop, last=1)
        if runs and not runs[0].finished and await self.store.lease_owner(shop) is not None:
            return runs[0]
        return None

    async def _begin_run(self, config: SyncConfig) -> SyncRun:
        """Take the lease first (nothing changes when another process holds it), then mark the sync
        IN_PROGRESS and start a new run."""
        shop = config.shop_domain
        await self._take_lease(shop)
        try:
            config.status = SyncStatus.IN_PROGRESS
            config.error_code = config.error_message = None
            config.active = True
            config.updated_at = utcnow()
            await self.store.save_sync(config)
            # the run's one ensure_catalog (a resumed run's catalog exists): visible from now on
            await self.store.ensure_catalog(config.catalog_name, shop, config.store_name or shop)
            return await self._start_run(config, lease_held=True)
        except BaseException:
            await self.store.release_lease(shop, self.owner_id)
            raise

    async def _take_lease(self, shop: str) -> None:
        if not await self.store.acquire_lease(shop, self.owner_id, self.settings.lease_ttl):
            raise SyncAlreadyRunning(f"Another gateway process is running the sync of {shop}.")

    async def _start_run(self, config: SyncConfig, run: SyncRun | None = None, *, lease_held: bool = False) -> SyncRun:
        if not lease_held:
            await self._take_lease(config.shop_domain)
        if run is None:
            await self._close_abandoned(config.shop_domain)
            run = SyncRun(id=uuid.uuid4().hex, shop_domain=config.shop_domain, owner=self.owner_id)
        run.owner = self.owner_id
        await self.store.save_run(run)
        task = asyncio.create_task(self._execute(config, run), name=f"sync:{config.shop_domain}")
        self._active[config.shop_domain] = _ActiveRun(run=run, task=task)
        self.progress.publish(config.shop_domain, snapshot_of(run))
        return snapshot_of(run)

    async def _close_abandoned(self, shop: str) -> None:
        """A new run supersedes an unfinished one whose process stopped: record it as canceled."""
        for previous in await self.store.list_runs(shop, last=3):
            if not previous.finished:
                previous.status = RunStatus.CANCELED
                previous.phase = "canceled"
                previous.finished_at = utcnow()
                previous.error_message = "Superseded by a new run after its gateway process stopped."
                await self.store.save_run(previous)

    async def resume_abandoned_runs(self) -> int:
        """Take over runs left RUNNING whose lease expired (their process stopped). Returns how many."""
        resumed = 0
        for config in await self.store.list_syncs():
            shop = config.shop_domain
            if self._only_shops is not None and shop not in self._only_shops:
                continue
            if shop in self._active or await self.store.lease_owner(shop) is not None:
                continue
            runs = await self.store.list_runs(shop, last=1)
            if not runs or runs[0].finished:
                continue
            async with self._lock(shop):
                try:
                    await self._start_run(config, runs[0])
                except SyncAlreadyRunning:
                    continue
            log.info("resuming sync run %s of %s (phase %s)", runs[0].id, shop, runs[0].phase)
            resumed += 1
        return resumed

    async def _watch_abandoned(self) -> None:
        """Look for runs whose process stopped every tenth of the lease TTL (at most 5 s): a run is
        taken over soon after its lease expires, which is at most one TTL after its last renewal."""
        interval = min(max(self.settings.lease_ttl / 10, 0.1), 5.0)
        while not self._closed:
            await asyncio.sleep(interval)
            try:
                await self.resume_abandoned_runs()
            except Exception:
                log.exception("checking for abandoned sync runs failed")

    async def _execute(self, config: SyncConfig, run: SyncRun) -> SyncRun:
        shop = config.shop_domain
        reporter = RunReporter(self.store, self.progress, self.settings.persist_interval, run)
        heartbeat = asyncio.create_task(self._heartbeat(shop, run), name=f"lease:{shop}")
        client = self._client_factory(config)
        entry = self._active[shop]
        try:
            outcome = await self._full_sync(config, run, client, reporter)
            entry.stop.finish()
        except (asyncio.CancelledError, BulkOperationCanceled):
            entry.stop.finish()
            if entry.stop.leave_running(shutting_down=self._closed):
                raise  # shutting down: leave the run RUNNING for resumption
            task = asyncio.current_task()
            if task is not None:
                while task.uncancel():  # the cancel is handled: let the bookkeeping below run
                    pass
            await self._finish_canceled(config, run, reporter)
        except ShopifyError as exc:
            entry.stop.finish()
            await self._finish_failed(config, run, reporter, sync_error_code(exc), str(exc))
        except Exception as exc:  # a bug or an unreachable store: report, never leave RUNNING forever
            entry.stop.finish()
            log.exception("sync run %s of %s failed unexpectedly", run.id, shop)
            await self._finish_failed(config, run, reporter, SyncErrorCode.SERVER_ERROR,
                                      f"Unexpected error: {type(exc).__name__}")
        else:
            await self._finish_outcome(config, run, reporter, outcome)
        finally:
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)
            await client.close()
            if self._active.get(shop) is not None and self._active[shop].run is run:
                del self._active[shop]
            if run.finished:
                await self.store.release_lease(shop, self.owner_id)
        return snapshot_of(run)

    async def _full_sync(self, config: SyncConfig, run: SyncRun, client: ShopifyClient,
                         reporter: RunReporter) -> IngestOutcome:
        info = await client.shop_info()
        store_name = info.name or config.shop_domain
        if config.store_name != store_name:  # the catalog exists (`_begin_run`): it takes the shop's new name
            config.store_name = store_name
            await reporter.update_config(lambda stored: setattr(stored, "store_name", store_name))
            await self.store.ensure_catalog(config.catalog_name, config.shop_domain, store_name)
        await self._register_webhooks(config, client, reporter)

        entry = self._active[config.shop_domain]
        runner = BulkOperationRunner(
            client,
            poll_interval=self.settings.poll_interval,
            max_poll_interval=self.settings.max_poll_interval,
            max_attempts=self.settings.max_bulk_attempts,
            on_update=reporter.bulk_update,
        )
        entry.runner = runner
        resume_id = run.bulk_operation_id if run.bulk_status not in (None, "EXPIRED") else None
        if resume_id is None:
            await reporter.set_phase("bulk_running")
        # else the run keeps its phase (e.g. ingesting) while its operation is looked up again: bulk_update
        # sets bulk_running only if that operation, or a new one, is still running.
        result = await runner.run(PRODUCTS_BULK_QUERY, group_objects=self.settings.group_objects,
                                  resume_operation_id=resume_id)
        entry.runner = None
        run.file_size = result.file_size
        run.bulk_url = result.url
        run.object_count = result.object_count
        await reporter.set_phase("ingesting" if result.url else "finalizing")
        assert self._session is not None
        target = IngestTarget(
            store=self.store,
            catalog=config.catalog_name,
            identifier=config.identifier,
            shop_domain=config.shop_domain,
            store_name=store_name,
            run_id=run.id,
            run_started_at=run.started_at,
            limit_bytes=self.settings.storage_limit_bytes,
            batch_size=self.settings.batch_size,
            retry=self.settings.download_retry,
        )
        return await run_ingest(result.url, self._session, target, reporter.ingest_progress)

    async def _heartbeat(self, shop: str, run: SyncRun) -> None:
        """Renew the lease; stop the run when it was lost or another process asked to cancel it.

        A store error is retried at the next beat; the lease counts as lost once it could not be
        renewed for a whole TTL (another process may then have taken the run over).
        """
        loop = asyncio.get_running_loop()
        interval = self.settings.lease_ttl / 3
        renewed_at = loop.time()
        while True:
            await asyncio.sleep(interval)
            entry = self._active.get(shop)
            if entry is None or not entry.stop.interruptible:
                return
            try:
                renewed: bool | None = await self.store.renew_lease(shop, self.owner_id, self.settings.lease_ttl)
            except Exception as exc:
                log.warning("renewing the sync lease of %s failed (retrying): %s", shop, exc)
                renewed = None
            if renewed:
                renewed_at = loop.time()
            elif renewed is False or loop.time() - renewed_at >= self.settings.lease_ttl:
                log.error("lost the sync lease of %s; stopping run %s", shop, run.id)
                entry.stop.lose_lease()
                entry.task.cancel()
                return
            try:
                stored = await self.store.get_sync(shop)
                if stored is None or stored.cancel_requested_run == run.id:
                    entry.stop.request_cancel()
                    if entry.runner is not None:
                        await entry.runner.cancel()
                    if entry.stop.interruptible:
                        entry.task.cancel()
                    return
            except Exception as exc:
                log.warning("checking for a cancel request of %s failed (retrying): %s", shop, exc)

    # -- finishing -------------------------------------------------------------------------------

    async def _finish_outcome(self, config: SyncConfig, run: SyncRun, reporter: RunReporter,
                              outcome: IngestOutcome) -> None:
        reporter.apply_outcome(outcome)
        if outcome.duplicate_skus:
            shown = "; ".join(
                f"SKU {d.sku!r} on variants {', '.join(d.variant_ids)}" for d in outcome.duplicate_skus[:10]
            )
            more = len(outcome.duplicate_skus) - 10
            message = f"{len(outcome.duplicate_skus)} SKUs are used by several variants: {shown}"
            if more > 0:
                message += f" (and {more} more)"
            await self._finish_failed(config, run, reporter, SyncErrorCode.DUPLICATE_SKU, message + ".")
            return
        if outcome.limit_reached:
            message = (
                f"The storage limit of {self.settings.storage_limit_bytes} bytes for all catalogs was reached; "
                f"{run.items_written} items were written and syncing stopped."
            )
            await self._finish_failed(config, run, reporter, SyncErrorCode.CATALOG_LIMIT_EXCEEDED, message)
            return
        run.status = RunStatus.COMPLETED
        run.finished_at = utcnow()
        await reporter.set_phase("completed")

        def completed(stored: SyncConfig) -> None:
            stored.cancel_requested_run = None
            if stored.active:  # deactivated meanwhile (limit reached by a webhook): stays in error
                stored.status = SyncStatus.SYNCED
                stored.error_code = stored.error_message = None

        await reporter.update_config(completed)
        parts = [f"{run.items_written} items are in catalog {config.catalog_name}"]
        if run.items_skipped:
            reasons = ", ".join(f"{s.count} {s.reason}" for s in run.skipped)
            parts.append(f"{run.items_skipped} variants were skipped ({reasons})")
        if outcome.swept:
            parts.append(f"{outcome.swept} items of products deleted in Shopify were removed")
        if run.malformed_lines:
            parts.append(f"{run.malformed_lines} malformed lines in Shopify's file were skipped")
        await self.notifier.notify(config.shop_domain, NotificationLevel.SUCCESS, "Shopify product sync complete",
                                   f"The sync of {config.shop_domain} completed: " + "; ".join(parts) + ".",
                                   email=True)

    async def _finish_failed(self, config: SyncConfig, run: SyncRun, reporter: RunReporter,
                             code: SyncErrorCode, message: str) -> None:
        run.status = RunStatus.FAILED
        run.error_code = code
        run.error_message = message
        run.finished_at = utcnow()
        await reporter.set_phase("failed")

        def failed(stored: SyncConfig) -> None:
            record_failure(stored, code, message)
            stored.cancel_requested_run = None

        await reporter.update_config(failed)
        title, body = failure_notice(code, message)
        await self.notifier.notify(config.shop_domain, NotificationLevel.ERROR, title, body, email=True)

    async def _finish_canceled(self, config: SyncConfig, run: SyncRun, reporter: RunReporter) -> None:
        run.status = RunStatus.CANCELED
        run.finished_at = utcnow()
        await reporter.set_phase("canceled")
        previous = [r for r in await self.store.list_runs(config.shop_domain, last=10)
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
        await self.notifier.notify(config.shop_domain, NotificationLevel.INFO, "Shopify product sync canceled",
                                   f"The sync run of {config.shop_domain} was canceled; "
                                   f"{run.items_written} items had been written.")

    # -- webhooks --------------------------------------------------------------------------------

    async def _register_webhooks(self, config: SyncConfig, client: ShopifyClient, reporter: RunReporter) -> None:
        if not self.settings.public_url or config.webhook_ids:
            return
        callback = self.settings.public_url.rstrip("/") + "/webhooks/shopify"
        for topic in TOPICS:
            try:
                webhook_id = await client.create_webhook(topic, callback)
            except ShopifyUserError as exc:  # refused (an address already taken is adopted by the client)
                log.warning("webhook %s for %s not created: %s", topic, config.shop_domain, exc)
                continue
            config.webhook_ids.append(webhook_id)
            # recorded at once, so that a disable during registration deletes what was created
            await reporter.update_config(functools.partial(_add_webhook_id, webhook_id=webhook_id))

    async def _delete_webhooks(self, config: SyncConfig) -> list[str]:
        if not config.webhook_ids:
            return []
        problems: list[str] = []
        client = self._client_factory(config)
        try:
            for webhook_id in config.webhook_ids:
                try:
                    await client.delete_webhook(webhook_id)
                except ShopifyUserError as exc:
                    if "not exist" not in str(exc).lower():
                        problems.append(f"{webhook_id}: {exc}")
                except ShopifyError as exc:
                    problems.append(f"{webhook_id}: {exc}")
        finally:
            await client.close()
        return problems


def _shop(shop_domain: str) -> str:
    try:
        return normalize_shop_domain(shop_domain)
    except ValueError as exc:
        raise InvalidInput(str(exc), fix="Use the shop's myshopify domain, e.g. my-store.myshopify.com.") from None
