"""The `itemAlerts` stream: events read back from the store as they are released, so an event made
by any gateway process reaches every subscriber, after the per-minute cap let it out.

Each poll asks for the events released since the previous poll minus an overlap (a writer may stamp
an event just before it lands); ids seen recently are skipped, so an event is sent once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator
from datetime import timedelta

from catalog_store.alerts import AlertEvent
from catalog_store.errors import StoreError
from catalog_store.feed import SeenIds
from catalog_store.models import utcnow
from catalog_store.rules import utc_millis
from catalog_store.store import CatalogStore

log = logging.getLogger(__name__)

OVERLAP = timedelta(seconds=2)


async def watch_alerts(store: CatalogStore, catalog: str, interval: float) -> AsyncGenerator[AlertEvent, None]:
    """Events of `catalog` released from now on, each once, until the consumer leaves."""
    seen = SeenIds(10_000)
    since = start = utc_millis(utcnow())
    while True:
        until = utc_millis(utcnow())
        try:
            released = await store.released_alert_events(catalog, since - OVERLAP, until)
        except StoreError as exc:  # the store is briefly unreachable: keep the subscription, try again
            log.warning("itemAlerts(%s): could not read events: %s", catalog, exc)
            released = []
        else:
            since = until
        for event in released:
            if event.release_at >= start and seen.add(event.id):
                yield event
        await asyncio.sleep(interval)
