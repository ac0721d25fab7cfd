"""Sync lifecycle: enable, re-sync, cancel, disable, and each run's task (its steps in `steps.py`,
its lease in `lease.py`, its ending in `finish.py`).

A run is: lease → shop info → webhooks → bulk operation → download + ingest → finalise. Its state is
persisted on the `SyncRun` (bulk operation id and status included), so a process that restarts, or
another process whose lease takes over, resumes the same run instead of losing it. Progress snapshots
are published to in-process subscribers on every change and persisted at most once per
`persist_interval` (and at every phase change).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass

import aiohttp

from bulk import log_context
from bulk.errors import (
    BulkError,
    BulkOperationCanceled,
    IdentifierChangeRequiresDisable,
    InvalidInput,
    NotFound,
    ShopifyError,
    SyncAlreadyRunning,
)
from bulk.full_sync.finish import finish_canceled, finish_failed, finish_outcome
from bulk.full_sync.lease import ActiveRun, default_owner_id, heartbeat
from bulk.full_sync.registration import delete_webhooks
from bulk.full_sync.reporter import RunReporter, snapshot_of
from bulk.full_sync.settings import SyncSettings
from bulk.full_sync.steps import full_sync
from bulk.notifications import Notifier
from bulk.outcomes import sync_error_code
from bulk.progress import Broadcaster
from bulk.shopify.budget import BudgetRegistry, Priority
from bulk.shopify.client import ShopifyClient, client_for
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

__all__ = ["DisableResult", "SyncService", "SyncSettings"]


@dataclass(frozen=True, slots=True)
class DisableResult:
    shop_domain: str
    items_deleted: int
    alert_subscriptions_affected: int


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
        budgets: BudgetRegistry | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.notifier = notifier
        self.progress: Broadcaster[SyncRun] = progress or Broadcaster()
        self.owner_id = owner_id or default_owner_id()
        self._session = session
        self._own_session = session is None
        self._client_factory = client_factory or self._make_client
        self.budgets = budgets or BudgetRegistry()  # shared with the webhook path (gateway.wiring)
        self._active: dict[str, ActiveRun] = {}
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
        return client_for(config.shop_domain, config.access_token, self.settings, self._session,
                          budget=self.budgets.for_shop(config.shop_domain), priority=Priority.BULK_POLL)

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
            subscriptions = await self.store.count_alert_subscriptions(config.catalog_name)
            items_deleted = await self.store.delete_catalog(config.catalog_name)
            await self.store.delete_runs(shop)
            await self.store.delete_sync(shop)
            # Webhook deliveries still waiting would only find no sync: dropped, in one line.
            dropped = await self.store.inbox_drop_shop(shop)
        log.info("%s: sync disabled; %d pending webhook deliveries dropped", shop, dropped)
        message = f"Sync of {shop} is disabled; catalog {config.catalog_name} and its {items_deleted} items were deleted."
        if webhook_problems:
            message += " Some webhooks could not be removed in Shopify: " + "; ".join(webhook_problems)
        await self.notifier.notify(shop, NotificationLevel.INFO, "Shopify product sync disabled", message)
        return DisableResult(shop_domain=shop, items_deleted=items_deleted, alert_subscriptions_affected=subscriptions)

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
        self._active[config.shop_domain] = ActiveRun(run=run, task=task)
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
        log_context.bind(shop, run.id)  # this task's log lines (and its children's) name both
        reporter = RunReporter(self.store, self.progress, self.settings.persist_interval, run)
        beat = heartbeat(self.store, shop, run, self.owner_id, self.settings.lease_ttl, self._active)
        heartbeat_task = asyncio.create_task(beat, name=f"lease:{shop}")
        client = self._client_factory(config)
        entry = self._active[shop]
        try:
            assert self._session is not None
            outcome = await full_sync(self.store, self.settings, self._session, config, entry, client, reporter)
            entry.stop.finish()
        except (asyncio.CancelledError, BulkOperationCanceled):
            entry.stop.finish()
            if entry.stop.leave_running(shutting_down=self._closed):
                raise  # shutting down: leave the run RUNNING for resumption
            task = asyncio.current_task()
            if task is not None:
                while task.uncancel():  # the cancel is handled: let the bookkeeping below run
                    pass
            await finish_canceled(config, run, reporter, self.notifier, self.store)
        except ShopifyError as exc:
            entry.stop.finish()
            await finish_failed(config, run, reporter, self.notifier, sync_error_code(exc), str(exc))
        except Exception as exc:  # a bug or an unreachable store: report, never leave RUNNING forever
            entry.stop.finish()
            log.exception("sync run %s of %s failed unexpectedly", run.id, shop)
            await finish_failed(config, run, reporter, self.notifier, SyncErrorCode.SERVER_ERROR,
                                f"Unexpected error: {type(exc).__name__}")
        else:
            await finish_outcome(config, run, reporter, self.notifier, outcome, self.settings.storage_limit_bytes)
        finally:
            heartbeat_task.cancel()
            await asyncio.gather(heartbeat_task, return_exceptions=True)
            await client.close()
            if self._active.get(shop) is not None and self._active[shop].run is run:
                del self._active[shop]
            if run.finished:
                await self.store.release_lease(shop, self.owner_id)
        return snapshot_of(run)

    async def _delete_webhooks(self, config: SyncConfig) -> list[str]:
        if not config.webhook_ids:
            return []
        client = self._client_factory(config)
        try:
            return await delete_webhooks(config, client)
        finally:
            await client.close()


def _shop(shop_domain: str) -> str:
    try:
        return normalize_shop_domain(shop_domain)
    except ValueError as exc:
        raise InvalidInput(str(exc), fix="Use the shop's myshopify domain, e.g. my-store.myshopify.com.") from None
