"""Events of item writes whose process stopped before storing them: every gateway process looks for
such writes now and then (the store keeps the intent with the item, atomically) and makes their events;
a write is only looked at once it is old enough that its own process would have settled it. The
same loop ends the subscriptions of items deleted from their catalogs."""

from __future__ import annotations

import asyncio
import logging

from bulk.alerts.loop import BackgroundLoop
from catalog_store.errors import StoreError
from catalog_store.store import CatalogStore

log = logging.getLogger(__name__)

RECOVERY_INTERVAL = 30.0  # seconds between looks
SETTLED_WITHIN = 30.0  # a write's own process settles its intents well within this many seconds


class AlertRecovery(BackgroundLoop):
    task_name = "alert-recovery"

    def __init__(self, store: CatalogStore, *, interval: float = RECOVERY_INTERVAL,
                 older_than: float = SETTLED_WITHIN) -> None:
        self.store = store
        self.interval = interval
        self.older_than = older_than

    async def _run(self) -> None:
        while True:
            try:
                made = await self.store.recover_alert_events(self.older_than)
                if made:
                    log.warning("made %d alert events of item writes whose process had stopped", made)
                ended = await self.store.end_orphaned_alert_subscriptions()
                if ended:
                    log.info("ended %d alert subscriptions of items deleted from their catalogs", ended)
            except StoreError as exc:
                log.warning("alert recovery: the store could not be read: %s", exc)
            except Exception:  # a bug must not end recovery for good
                log.exception("alert recovery failed unexpectedly")
            await asyncio.sleep(self.interval)
