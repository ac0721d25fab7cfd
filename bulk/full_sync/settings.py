"""The full sync's settings: the Admin API it calls, its pacing, its lease and its storage limit.

A module of its own so the composition root builds them without importing the service.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bulk.full_sync.jsonl import DownloadRetry
from bulk.shopify.client import RetryPolicy


@dataclass(frozen=True, slots=True)
class SyncSettings:
    api_version: str = "2026-01"
    admin_api_url_template: str = "https://{shop}/admin/api/{version}/graphql.json"
    storage_limit_bytes: int = 104_857_600
    public_url: str | None = None  # base URL Shopify calls for webhooks; None: none registered
    group_objects: bool = False
    poll_interval: float = 1.0
    max_poll_interval: float = 30.0
    max_bulk_attempts: int = 3
    lease_ttl: float = 60.0
    persist_interval: float = 1.0
    batch_size: int = 1000
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    download_retry: DownloadRetry = field(default_factory=DownloadRetry)
