"""Stored documents of the records besides items: sync configurations, runs, notifications, catalogs.

Both stores go through these codecs, so they hold the same values (datetimes in UTC milliseconds, as
MongoDB keeps them; enums by value) and never share a mutable object with their callers.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from catalog_store.items import Identifier
from catalog_store.models import (
    CatalogInfo,
    EmailStatus,
    Notification,
    NotificationLevel,
    RunStatus,
    SkipCount,
    SyncConfig,
    SyncErrorCode,
    SyncRun,
    SyncStatus,
)
from catalog_store.rules import utc_millis

Document = dict[str, Any]


def _time(value: datetime | None) -> datetime | None:
    return None if value is None else utc_millis(value)


def _code(value: str | None) -> SyncErrorCode | None:
    return None if value is None else SyncErrorCode(value)


def sync_to_document(config: SyncConfig) -> Document:
    return {
        "_id": config.shop_domain,
        "shop_domain": config.shop_domain,
        "catalog_name": config.catalog_name,
        "identifier": str(config.identifier),
        "access_token": config.access_token,
        "status": str(config.status),
        "active": config.active,
        "error_code": None if config.error_code is None else str(config.error_code),
        "error_message": config.error_message,
        "store_name": config.store_name,
        "webhook_ids": list(config.webhook_ids),
        "cancel_requested_run": config.cancel_requested_run,
        "reconciled_at": None if config.reconciled_at is None else _time(config.reconciled_at),
        "created_at": _time(config.created_at),
        "updated_at": _time(config.updated_at),
    }


def changed_sync_fields(config: SyncConfig, change: Callable[[SyncConfig], object]) -> Document:
    """Apply `change` to `config` and return the document fields it changed (to `$set` alone, so a
    field another process saved meanwhile, such as a new access token, is left as it is)."""
    before = sync_to_document(config)
    change(config)
    after = sync_to_document(config)
    return {name: value for name, value in after.items() if before.get(name) != value}


def sync_from_document(doc: Document) -> SyncConfig:
    return SyncConfig(
        shop_domain=doc["shop_domain"],
        catalog_name=doc["catalog_name"],
        identifier=Identifier(doc["identifier"]),
        access_token=doc["access_token"],
        status=SyncStatus(doc["status"]),
        active=doc["active"],
        error_code=_code(doc.get("error_code")),
        error_message=doc.get("error_message"),
        store_name=doc.get("store_name"),
        webhook_ids=list(doc.get("webhook_ids") or []),
        cancel_requested_run=doc.get("cancel_requested_run"),
        reconciled_at=doc.get("reconciled_at"),
        created_at=doc["created_at"],
        updated_at=doc["updated_at"],
    )


def run_to_document(run: SyncRun) -> Document:
    return {
        "_id": run.id,
        "id": run.id,
        "shop_domain": run.shop_domain,
        "status": str(run.status),
        "phase": run.phase,
        "object_count": run.object_count,
        "bytes_downloaded": run.bytes_downloaded,
        "file_size": run.file_size,
        "items_written": run.items_written,
        "items_skipped": run.items_skipped,
        "skipped": [{"reason": s.reason, "count": s.count, "examples": list(s.examples)} for s in run.skipped],
        "malformed_lines": run.malformed_lines,
        "malformed_examples": list(run.malformed_examples),
        "started_at": _time(run.started_at),
        "finished_at": _time(run.finished_at),
        "error_code": None if run.error_code is None else str(run.error_code),
        "error_message": run.error_message,
        "bulk_operation_id": run.bulk_operation_id,
        "bulk_status": run.bulk_status,
        "bulk_url": run.bulk_url,
        "owner": run.owner,
    }


def run_from_document(doc: Document) -> SyncRun:
    return SyncRun(
        id=doc["id"],
        shop_domain=doc["shop_domain"],
        status=RunStatus(doc["status"]),
        phase=doc["phase"],
        object_count=doc["object_count"],
        bytes_downloaded=doc["bytes_downloaded"],
        file_size=doc.get("file_size"),
        items_written=doc["items_written"],
        items_skipped=doc["items_skipped"],
        skipped=[SkipCount(s["reason"], s["count"], list(s["examples"])) for s in doc.get("skipped") or []],
        malformed_lines=doc["malformed_lines"],
        malformed_examples=list(doc.get("malformed_examples") or []),
        started_at=doc["started_at"],
        finished_at=doc.get("finished_at"),
        error_code=_code(doc.get("error_code")),
        error_message=doc.get("error_message"),
        bulk_operation_id=doc.get("bulk_operation_id"),
        bulk_status=doc.get("bulk_status"),
        bulk_url=doc.get("bulk_url"),
        owner=doc.get("owner"),
    )


def notification_to_document(notification: Notification) -> Document:
    return {
        "_id": notification.id,
        "id": notification.id,
        "shop_domain": notification.shop_domain,
        "level": str(notification.level),
        "title": notification.title,
        "message": notification.message,
        "created_at": _time(notification.created_at),
        "read": notification.read,
        "email_status": str(notification.email_status),
        "email_error": notification.email_error,
    }


def notification_from_document(doc: Document) -> Notification:
    return Notification(
        id=doc["id"],
        shop_domain=doc.get("shop_domain"),
        level=NotificationLevel(doc["level"]),
        title=doc["title"],
        message=doc["message"],
        created_at=doc["created_at"],
        read=doc["read"],
        email_status=EmailStatus(doc["email_status"]),
        email_error=doc.get("email_error"),
    )


def catalog_from_document(doc: Document) -> CatalogInfo:
    return CatalogInfo(
        name=doc["_id"],
        shop_domain=doc["shop_domain"],
        store_name=doc["store_name"],
        item_count=doc.get("item_count", 0),
        storage_bytes=doc.get("storage_bytes", 0),
        created_at=doc["created_at"],
    )


def lease_expiry(now: datetime, ttl_seconds: float) -> datetime:
    """When a lease taken or renewed `now` for `ttl_seconds` expires."""
    if isinstance(ttl_seconds, bool) or not isinstance(ttl_seconds, int | float) or not ttl_seconds > 0:
        raise ValueError(f"lease ttl must be a number of seconds > 0, got {ttl_seconds!r}")
    return utc_millis(now + timedelta(seconds=ttl_seconds))
