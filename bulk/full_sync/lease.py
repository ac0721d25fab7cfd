"""A run this process executes, and the heartbeat that keeps its lease.

The lease lets several gateway processes share one database: one runs a shop's sync, the others
take the run over once its lease is not renewed for a whole TTL.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

from bulk.full_sync.operation import BulkOperationRunner
from bulk.full_sync.stop import RunStop
from catalog_store.models import SyncRun
from catalog_store.store import CatalogStore

log = logging.getLogger("bulk.full_sync.service")


def default_owner_id() -> str:
    """Identifies this process as a lease owner: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(slots=True)
class ActiveRun:
    """A run's task in this process, its bulk operation while one runs, and how it may be stopped."""

    run: SyncRun
    task: asyncio.Task[SyncRun]
    runner: BulkOperationRunner | None = None
    stop: RunStop = field(default_factory=RunStop)


async def heartbeat(store: CatalogStore, shop: str, run: SyncRun, owner_id: str, lease_ttl: float,
                    active: Mapping[str, ActiveRun]) -> None:
    """Renew the lease; stop the run when it was lost or another process asked to cancel it.

    A store error is retried at the next beat; the lease counts as lost once it could not be
    renewed for a whole TTL (another process may then have taken the run over).
    """
    loop = asyncio.get_running_loop()
    interval = lease_ttl / 3
    renewed_at = loop.time()
    while True:
        await asyncio.sleep(interval)
        entry = active.get(shop)
        if entry is None or not entry.stop.interruptible:
            return
        try:
            renewed: bool | None = await store.renew_lease(shop, owner_id, lease_ttl)
        except Exception as exc:
            log.warning("renewing the sync lease of %s failed (retrying): %s", shop, exc)
            renewed = None
        if renewed:
            renewed_at = loop.time()
        elif renewed is False or loop.time() - renewed_at >= lease_ttl:
            log.error("lost the sync lease of %s; stopping run %s", shop, run.id)
            entry.stop.lose_lease()
            entry.task.cancel()
            return
        try:
            stored = await store.get_sync(shop)
            if stored is None or stored.cancel_requested_run == run.id:
                entry.stop.request_cancel()
                if entry.runner is not None:
                    await entry.runner.cancel()
                if entry.stop.interruptible:
                    entry.task.cancel()
                return
        except Exception as exc:
            log.warning("checking for a cancel request of %s failed (retrying): %s", shop, exc)
