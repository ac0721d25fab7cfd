"""Records the store keeps besides items: sync configurations, runs, catalogs, notifications."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum

from catalog_store.items import CatalogItem, Identifier
from catalog_store.rules import utc_millis


def utcnow() -> datetime:
    """Now, in UTC, truncated to milliseconds (what MongoDB stores), so both stores agree."""
    return utc_millis(datetime.now(UTC))


class SyncStatus(StrEnum):
    IN_PROGRESS = "IN_PROGRESS"
    SYNCED = "SYNCED"
    ERROR = "ERROR"


class SyncErrorCode(StrEnum):
    SERVER_ERROR = "SERVER_ERROR"
    DUPLICATE_SKU = "DUPLICATE_SKU"
    CATALOG_LIMIT_EXCEEDED = "CATALOG_LIMIT_EXCEEDED"
    ACCESS_DENIED = "ACCESS_DENIED"


class RunStatus(StrEnum):
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"


class NotificationLevel(StrEnum):
    INFO = "info"
    SUCCESS = "success"
    WARNING = "warning"  # something needs watching but nothing failed (e.g. webhook changes running late)
    ERROR = "error"


class EmailStatus(StrEnum):
    NONE = "none"  # no email for this notification
    PENDING = "pending"
    SENT = "sent"
    NOT_SENT = "not_sent"  # no SMTP configured: recorded, never silently dropped
    FAILED = "failed"


@dataclass(slots=True)
class SyncConfig:
    """One shop's sync configuration. `access_token` is write-only: never returned by the API."""

    shop_domain: str
    catalog_name: str
    identifier: Identifier
    access_token: str = field(repr=False)
    status: SyncStatus = SyncStatus.IN_PROGRESS
    active: bool = True  # False once a later change pushed the catalog over the limit
    error_code: SyncErrorCode | None = None
    error_message: str | None = None
    store_name: str | None = None
    webhook_ids: list[str] = field(default_factory=list)
    cancel_requested_run: str | None = None  # a cancel asked by a process that does not run the sync
    reconciled_at: datetime | None = None  # start of the last reconciliation pass (its next window's start)
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)


@dataclass(slots=True)
class SkipCount:
    reason: str
    count: int = 0
    examples: list[str] = field(default_factory=list)


@dataclass(slots=True)
class SyncRun:
    """One full sync run with its persisted progress and bulk-operation state (for resumption)."""

    id: str
    shop_domain: str
    status: RunStatus = RunStatus.RUNNING
    phase: str = "starting"  # starting|bulk_running|downloading|ingesting|finalizing|completed|failed|canceled
    object_count: int = 0
    bytes_downloaded: int = 0
    file_size: int | None = None
    items_written: int = 0
    items_skipped: int = 0
    skipped: list[SkipCount] = field(default_factory=list)
    malformed_lines: int = 0
    malformed_examples: list[str] = field(default_factory=list)  # "line 12: <reason>"
    started_at: datetime = field(default_factory=utcnow)
    finished_at: datetime | None = None
    error_code: SyncErrorCode | None = None
    error_message: str | None = None
    bulk_operation_id: str | None = None
    bulk_status: str | None = None
    bulk_url: str | None = None
    owner: str | None = None  # the process (lease owner) running it

    @property
    def finished(self) -> bool:
        return self.status is not RunStatus.RUNNING


@dataclass(slots=True)
class Notification:
    id: str
    shop_domain: str | None
    level: NotificationLevel
    title: str
    message: str
    created_at: datetime = field(default_factory=utcnow)
    read: bool = False
    email_status: EmailStatus = EmailStatus.NONE
    email_error: str | None = None


@dataclass(slots=True)
class CatalogInfo:
    name: str
    shop_domain: str
    store_name: str
    item_count: int = 0
    storage_bytes: int = 0
    created_at: datetime = field(default_factory=utcnow)


@dataclass(slots=True, frozen=True)
class ItemFilter:
    """Catalog item filter. `search`: case-insensitive substring of titles and SKU."""

    status: str | None = None
    vendor: str | None = None
    product_type: str | None = None
    in_stock: bool | None = None  # True: inventory_quantity > 0; False: <= 0 or null
    price_min: Decimal | None = None
    price_max: Decimal | None = None
    search: str | None = None


@dataclass(slots=True)
class ItemPage:
    """A page of items in ascending `id` order. `end_cursor` is the last item's id (opaque to callers)."""

    items: list[CatalogItem]
    has_next_page: bool
    total_count: int


@dataclass(slots=True, frozen=True)
class Conflict:
    """An item write refused because another variant holds the same item id (SKU mode)."""

    item_id: str
    variant_id: str
    existing_variant_id: str
    existing_run_id: str | None  # run that last wrote the holder (None: a webhook or unknown)


@dataclass(slots=True)
class WriteResult:
    written: int = 0  # inserted or replaced
    stale: int = 0  # refused: stored data (or a tombstone) is newer
    conflicts: list[Conflict] = field(default_factory=list)
    bytes_delta: int = 0
    limit_reached: bool = False  # items from index `written_upto` on were not written
    written_upto: int = 0  # number of leading input items that were considered
