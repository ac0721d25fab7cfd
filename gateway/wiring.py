"""The composition root: the one place that builds a gateway process's parts from the settings.
`serve`, `demo` and the tests run a whole `Gateway`; `sync` runs only the sync service, built by the
same functions, so each command runs the same objects configured the same way."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from bulk.alerts.delivery import AlertDeliveryWorker, DeliverySettings
from bulk.alerts.recovery import AlertRecovery
from bulk.full_sync.service import SyncService, SyncSettings
from bulk.notifications import EmailSender, Notifier
from bulk.progress import Broadcaster
from bulk.shopify.budget import BudgetRegistry
from bulk.webhooks.processor import ProcessorSettings, WebhookProcessor
from bulk.webhooks.realtime import LagMonitor
from catalog_store.feed import ChangeFeed
from catalog_store.models import Notification, SyncRun
from catalog_store.store import CatalogStore
from gateway.email import email_sender
from gateway.graphql.auth import Authenticator
from gateway.graphql.context import LiveSettings, Services
from gateway.graphql.schema import GatewaySchema
from gateway.graphql.schema import schema as default_schema
from gateway.settings import Settings


def sync_settings_for(settings: Settings, **overrides: Any) -> SyncSettings:
    """SyncSettings from the gateway's environment. Webhooks are registered only when a secret to
    verify them is configured (SHOPIFY_API_SECRET): without one they would be refused anyway."""
    values: dict[str, Any] = {
        "api_version": settings.shopify_api_version,
        "admin_api_url_template": settings.shopify_admin_api_url,
        "storage_limit_bytes": settings.catalog_storage_limit_bytes,
        "public_url": settings.effective_public_url if settings.shopify_api_secrets else None,
        "lease_ttl": float(settings.lease_ttl_seconds),
        "batch_size": settings.ingest_batch_size,
    }
    values.update(overrides)
    return SyncSettings(**values)


def processor_settings_for(settings: Settings) -> ProcessorSettings:
    """The webhook workers from the gateway's environment: as many direct workers as configured and
    half as many read workers (each applies batches of up to 250 reads; at least one when any)."""
    workers = settings.webhook_workers
    return ProcessorSettings(workers=workers, read_workers=(workers + 1) // 2,
                             claim_ttl=settings.webhook_claim_ttl_seconds)


def notifier_for(settings: Settings, store: CatalogStore, email: EmailSender | None = None) -> Notifier:
    """Dashboard notifications in the store, emails through SMTP when configured (else recorded as
    not sent)."""
    return Notifier(store, email if email is not None else email_sender(settings.smtp), Broadcaster[Notification]())


def sync_service_for(
    store: CatalogStore,
    notifier: Notifier,
    sync_settings: SyncSettings,
    *,
    session: aiohttp.ClientSession | None = None,
    owner_id: str | None = None,
    budgets: BudgetRegistry | None = None,
) -> SyncService:
    """The full-sync service, publishing progress to this process's subscribers (its bulk polling
    drawing on `budgets`, the process's per-shop cost schedulers)."""
    return SyncService(store, settings=sync_settings, notifier=notifier, progress=Broadcaster[SyncRun](),
                       session=session, owner_id=owner_id, budgets=budgets)


def alert_delivery_for(settings: Settings) -> DeliverySettings | None:
    """Outbound alert delivery when ALERT_WEBHOOK_URL (and its secret) are set."""
    if settings.alert_webhook_url is None or settings.alert_webhook_secret is None:
        return None
    return DeliverySettings(url=settings.alert_webhook_url, secret=settings.alert_webhook_secret)


class Gateway:
    """One gateway process: the store, the sync service, notifications, and their lifecycle."""

    def __init__(
        self,
        settings: Settings,
        store: CatalogStore,
        *,
        auth: bool = True,
        email: EmailSender | None = None,
        sync_settings: SyncSettings | None = None,
        live: LiveSettings | None = None,
        session: aiohttp.ClientSession | None = None,
        owner_id: str | None = None,
        schema: GatewaySchema = default_schema,
        webhook_settings: ProcessorSettings | None = None,
        alert_delivery: DeliverySettings | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.schema = schema
        self.notifier = notifier_for(settings, store, email)
        # One cost scheduler per shop for every Admin API call of this process: webhook reads,
        # reconciliation and the full sync's bulk polling draw on the same model of the bucket.
        self.budgets = BudgetRegistry()
        self.sync = sync_service_for(store, self.notifier, sync_settings or sync_settings_for(settings),
                                     session=session, owner_id=owner_id, budgets=self.budgets)
        self.webhooks = WebhookProcessor(store, self.sync, settings=webhook_settings or processor_settings_for(settings),
                                         budgets=self.budgets)
        self.services = Services(store=store, sync=self.sync, live=live or LiveSettings(),
                                 storage_limit_bytes=self.sync.settings.storage_limit_bytes,
                                 realtime_lag_alert_seconds=settings.realtime_lag_alert_seconds)
        self.lag_monitor = LagMonitor(store, self.notifier, settings.realtime_lag_alert_seconds, self.sync.owner_id)
        self._monitor: asyncio.Task[None] | None = None
        self.feed: ChangeFeed | None = None  # created by start(), from the connected store
        self.authenticator = Authenticator(settings.admin_token, settings.read_token, enabled=auth)
        self.started = False  # start() finished and close() not begun: /readyz
        delivery = alert_delivery or alert_delivery_for(settings)
        self.alert_delivery = None if delivery is None else AlertDeliveryWorker(store, delivery, self.notifier)
        self.alert_recovery = AlertRecovery(store)

    async def start(self) -> None:
        await self.store.start()
        live = self.services.live
        feed = self.store.feed(poll_interval=live.store_poll_interval, polling=live.force_polling)
        await feed.start()
        self.feed = self.services.feed = feed
        await self.sync.start()
        await self.webhooks.start()
        self._monitor = asyncio.create_task(self.lag_monitor.run(), name="realtime-monitor")
        await self.alert_recovery.start()
        if self.alert_delivery is not None:
            await self.alert_delivery.start()
        self.started = True

    async def close(self) -> None:
        self.started = False
        try:
            if self._monitor is not None:
                self._monitor.cancel()
                await asyncio.gather(self._monitor, return_exceptions=True)
                self._monitor = None
            if self.feed is not None:
                await self.feed.close()
            if self.alert_delivery is not None:
                await self.alert_delivery.close()
            await self.alert_recovery.close()
            await self.webhooks.close()
            await self.sync.close()
        finally:
            await self.store.close()

    async def check_store(self) -> None:
        """Raises when the store cannot answer a trivial read."""
        await self.store.get_sync("healthz.myshopify.com")
