"""How close to real time the catalog is, per shop and across every process sharing the store: the
inbox's backlog, the age of its oldest delivery (the lag), and the outcome counters; and the monitor
that tells the merchant when the lag passes the alert threshold and when it is caught up again.

One process monitors (the holder of the `realtime-monitor` lease), so each transition is notified
once. The state it compares with lives in that process: a process taking the lease over while a shop
is still late notifies that once more.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from bulk.notifications import Notifier
from catalog_store.errors import CatalogGatewayError
from catalog_store.inbox import InboxStatus
from catalog_store.models import NotificationLevel, utcnow
from catalog_store.store import CatalogStore

log = logging.getLogger(__name__)

DEFAULT_LAG_ALERT_SECONDS = 60.0
MONITOR_LEASE = "realtime-monitor"


@dataclass(frozen=True, slots=True)
class RealtimeFigures:
    backlog: int  # deliveries answered 200 and not yet applied
    lag_seconds: float  # age of the oldest of them; 0 when none
    last_applied_at: datetime | None
    applied_total: int  # since the sync was enabled
    failed_total: int
    healthy: bool  # False while lag_seconds exceeds the alert threshold


def realtime_figures(status: InboxStatus, now: datetime, alert_seconds: float) -> RealtimeFigures:
    oldest = status.oldest_received_at
    lag = 0.0 if oldest is None else max(0.0, (now - oldest).total_seconds())
    return RealtimeFigures(status.backlog, lag, status.last_applied_at, status.applied_total, status.failed_total,
                           healthy=lag <= alert_seconds)


def status_line(figures: RealtimeFigures) -> str:
    """One line for a console: backlog, lag, applied, failed, healthy."""
    return (f"backlog {figures.backlog}, lag {figures.lag_seconds:.1f} s, applied {figures.applied_total}, "
            f"failed {figures.failed_total}, {'healthy' if figures.healthy else 'LATE'}")


async def realtime_status(store: CatalogStore, shop_domain: str, alert_seconds: float,
                          now: Callable[[], datetime] = utcnow) -> RealtimeFigures:
    return realtime_figures(await store.inbox_status(shop_domain), now(), alert_seconds)


class Transition(StrEnum):
    LATE = "late"
    CAUGHT_UP = "caught_up"


def transition(was_late: bool, figures: RealtimeFigures, alert_seconds: float) -> Transition | None:
    """LATE when the lag just passed the threshold; CAUGHT_UP when a late shop's backlog is gone or
    its lag is back under half the threshold (under steady traffic the backlog is rarely empty; the
    margin keeps a lag hovering at the threshold from notifying at every check)."""
    if not was_late and not figures.healthy:
        return Transition.LATE
    if was_late and (figures.backlog == 0 or figures.lag_seconds <= alert_seconds / 2):
        return Transition.CAUGHT_UP
    return None


def monitor_interval(alert_seconds: float) -> float:
    """Often enough to notice the lag soon after it passes the threshold, at most every 5 s."""
    return min(5.0, max(0.2, alert_seconds / 5))


class LagMonitor:
    """Checks every shop's lag and notifies its transitions (WARNING with email when late, SUCCESS
    when caught up), in the one process holding the monitor lease."""

    def __init__(self, store: CatalogStore, notifier: Notifier, alert_seconds: float, owner_id: str,
                 *, interval: float | None = None, now: Callable[[], datetime] = utcnow) -> None:
        self.store = store
        self.notifier = notifier
        self.alert_seconds = alert_seconds
        self.owner_id = owner_id
        self.interval = interval if interval is not None else monitor_interval(alert_seconds)
        self.now = now
        self.late: dict[str, RealtimeFigures] = {}  # shop → its figures when it became late

    async def run(self) -> None:
        ttl = max(3 * self.interval, 10.0)
        try:
            while True:
                try:
                    if await self.store.acquire_lease(MONITOR_LEASE, self.owner_id, ttl):
                        await self.check()
                    else:
                        self.late.clear()  # another process watches (and notifies) now
                except CatalogGatewayError as exc:
                    log.warning("realtime monitor: %s; next check in %.1fs", exc, self.interval)
                await asyncio.sleep(self.interval)
        finally:
            try:
                await self.store.release_lease(MONITOR_LEASE, self.owner_id)
            except Exception as exc:  # it then expires
                log.debug("realtime monitor lease not released: %s", exc)

    async def check(self) -> None:
        """One pass over every enabled shop."""
        shops = [c.shop_domain for c in await self.store.list_syncs()]
        for shop in list(self.late):
            if shop not in shops:  # disabled meanwhile
                del self.late[shop]
        for shop in shops:
            figures = await realtime_status(self.store, shop, self.alert_seconds, self.now)
            change = transition(shop in self.late, figures, self.alert_seconds)
            if change is Transition.LATE:
                self.late[shop] = figures
                await self._notify_late(shop, figures)
            elif change is Transition.CAUGHT_UP:
                del self.late[shop]
                await self._notify_caught_up(shop, figures)

    async def _notify_late(self, shop: str, figures: RealtimeFigures) -> None:
        message = (
            f"{figures.backlog} Shopify change(s) of {shop} are waiting to reach the catalog; the oldest arrived "
            f"{figures.lag_seconds:.0f} s ago (alert threshold {self.alert_seconds:g} s, "
            "REALTIME_LAG_ALERT_SECONDS). Nothing is lost: they are applied as soon as the gateway can.\n"
            "How to fix: check that a gateway process with webhook workers is running and that MongoDB and "
            "the Shopify Admin API answer (the gateway log says which one fails); a notification follows when "
            "the catalog is caught up."
        )
        log.warning("%s", message.split("\n")[0])
        await self.notifier.notify(shop, NotificationLevel.WARNING, "Shopify changes are running late", message,
                                   email=True)

    async def _notify_caught_up(self, shop: str, figures: RealtimeFigures) -> None:
        message = (f"Every Shopify change of {shop} received so far is in the catalog "
                   f"({figures.applied_total} applied, {figures.failed_total} failed since the sync was enabled).")
        log.info("%s", message)
        await self.notifier.notify(shop, NotificationLevel.SUCCESS, "Shopify changes caught up", message,
                                   email=True)
