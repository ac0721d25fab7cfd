"""The outbound delivery worker: POSTs each released alert event to ALERT_WEBHOOK_URL.

Deliveries are state in the store (each event carries its own), so a restart resumes them; a worker
claims a few due ones with a lease (several processes share the work, each delivery goes to one at a
time), POSTs them, and records the outcome. A non-2xx answer or none is retried with backoff
(alerts.retry_delay) until 24 h after the event's release; each failed attempt is logged, and a
delivery given up is an error notification.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import aiohttp

from bulk.alerts.loop import BackgroundLoop
from bulk.alerts.outbound import event_body, headers
from bulk.notifications import Notifier
from catalog_store.alerts import DeliveryState, PendingDelivery, retry_delay
from catalog_store.errors import StoreError
from catalog_store.models import NotificationLevel, utcnow
from catalog_store.store import CatalogStore

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DeliverySettings:
    url: str
    secret: str
    interval: float = 1.0  # seconds between looks for due deliveries when none was found
    timeout: float = 10.0  # seconds for one POST
    lease_seconds: float = 60.0  # a claimed delivery is not handed to another worker for this long
    batch: int = 20


class AlertDeliveryWorker(BackgroundLoop):
    """One process's outbound delivery loop (started and stopped by the composition root)."""

    task_name = "alert-delivery"

    def __init__(self, store: CatalogStore, settings: DeliverySettings, notifier: Notifier,
                 session: aiohttp.ClientSession | None = None) -> None:
        self.store = store
        self.settings = settings
        self.notifier = notifier
        self._session = session
        self._own_session = session is None
        self.delivered = 0
        self.failed_attempts = 0

    async def _opening(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession()

    async def _closed(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def _run(self) -> None:
        while True:
            try:
                sent = await self.run_once()
            except StoreError as exc:
                log.warning("alert delivery: the store could not be read: %s", exc)
                sent = 0
            except Exception:  # a bug must not end delivery for good
                log.exception("alert delivery failed unexpectedly")
                sent = 0
            if sent == 0:
                await asyncio.sleep(self.settings.interval)

    async def run_once(self) -> int:
        """Claim the due deliveries and attempt each once (concurrently). Returns how many were tried."""
        claimed = await self.store.claim_alert_deliveries(limit=self.settings.batch,
                                                          lease_seconds=self.settings.lease_seconds)
        await asyncio.gather(*(self._attempt(d) for d in claimed))
        return len(claimed)

    async def _attempt(self, delivery: PendingDelivery) -> None:
        event = delivery.event
        error = await self._post(delivery)
        if error is None:
            self.delivered += 1
            await self.store.finish_alert_delivery(event.id, delivered=True)
            return
        self.failed_attempts += 1
        attempts = delivery.attempts + 1
        retry_at = utcnow() + retry_delay(attempts)
        log.warning("alert event %s: outbound attempt %d to %s failed: %s", event.id, attempts,
                    self.settings.url, error)
        state = await self.store.finish_alert_delivery(event.id, delivered=False, retry_at=retry_at, error=error)
        if state is DeliveryState.FAILED:
            await self.notifier.notify(
                None, NotificationLevel.ERROR, "Alert delivery given up",
                f"Alert event {event.id} ({event.type.value} of item {event.item_id} in {event.catalog}) could "
                f"not be delivered to the alert webhook after {attempts} attempts over 24 hours (last error: "
                f"{error}). Check that ALERT_WEBHOOK_URL answers 2xx; the event stays listed in alertEvents.",
            )

    async def _post(self, delivery: PendingDelivery) -> str | None:
        """None when the receiver answered 2xx, else what went wrong."""
        assert self._session is not None
        body = event_body(delivery.event)
        try:
            async with self._session.post(
                self.settings.url, data=body, headers=headers(delivery.event, body, self.settings.secret),
                timeout=aiohttp.ClientTimeout(total=self.settings.timeout), allow_redirects=False,
            ) as response:
                await response.read()
                if 200 <= response.status < 300:
                    return None
                return f"HTTP {response.status}"
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
