"""What the webhook path needs from the full sync, as protocols: the webhook path never imports
the sync service."""

from __future__ import annotations

from typing import Protocol

from bulk.notifications import Notifier
from bulk.shopify.client import AdminApiAccess
from catalog_store.models import SyncRun


class SyncLimits(AdminApiAccess, Protocol):
    """The sync settings the webhook path reads: how to reach the Admin API, and the storage limit."""

    @property
    def storage_limit_bytes(self) -> int: ...


class FullSyncLink(Protocol):
    """All the webhook path needs from the full sync (`bulk.full_sync.service.SyncService` is one),
    so that it never depends on the service: its settings, its notifier, this process's id, the
    run it executes for a shop (reconciliation waits for it) and a wake-up for a finished bulk
    operation."""

    @property
    def settings(self) -> SyncLimits: ...

    @property
    def notifier(self) -> Notifier: ...

    @property
    def owner_id(self) -> str: ...

    def bulk_finished(self, shop_domain: str, operation_id: str | None = None) -> None: ...

    def local_run(self, shop_domain: str) -> SyncRun | None: ...
