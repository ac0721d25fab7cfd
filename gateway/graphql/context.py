"""What a GraphQL resolver may use: the services, the caller's role, per-request DataLoaders."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Protocol

from strawberry.dataloader import DataLoader

from bulk.notifications import Notifier
from bulk.progress import Broadcaster
from bulk.webhooks.realtime import DEFAULT_LAG_ALERT_SECONDS
from catalog_store.errors import StoreError
from catalog_store.feed import ChangeFeed
from catalog_store.items import Identifier
from catalog_store.models import CatalogInfo, SyncConfig, SyncRun
from catalog_store.store import CatalogStore
from gateway.errors import Forbidden
from gateway.graphql.auth import Role
from gateway.settings import DEFAULT_STORAGE_LIMIT


class DisableOutcome(Protocol):
    """What a disable reports (read-only: the service may answer with a frozen value)."""

    @property
    def shop_domain(self) -> str: ...
    @property
    def items_deleted(self) -> int: ...
    @property
    def alert_subscriptions_affected(self) -> int: ...


class SyncOperations(Protocol):
    """The part of `bulk.full_sync.service.SyncService` the API calls: the schema depends on these few methods, not
    on the service, so tests can drive the API with a double."""

    progress: Broadcaster[SyncRun]
    notifier: Notifier

    async def enable(self, shop_domain: str, access_token: str, identifier: Identifier) -> SyncConfig: ...

    async def resync(self, shop_domain: str) -> SyncRun: ...

    async def cancel(self, shop_domain: str) -> SyncRun | None: ...

    async def disable(self, shop_domain: str) -> DisableOutcome: ...


@dataclass(slots=True)
class LiveSettings:
    """Subscription pacing: at most one progress snapshot per `progress_interval` (phase changes and
    the final snapshot are immediate). Runs and notifications of other processes come from the
    store's change feed: change streams where MongoDB offers them, else a poll every
    `store_poll_interval` (`force_polling`: poll even where streams are offered)."""

    progress_interval: float = 0.2
    store_poll_interval: float = 1.0
    force_polling: bool = False


@dataclass(slots=True)
class Services:
    store: CatalogStore
    sync: SyncOperations
    live: LiveSettings = field(default_factory=LiveSettings)
    feed: ChangeFeed | None = None  # set by Gateway.start: a MongoDB feed needs the connected database
    storage_limit_bytes: int = DEFAULT_STORAGE_LIMIT  # shared by all catalogs (CATALOG_STORAGE_LIMIT_BYTES)
    realtime_lag_alert_seconds: float = DEFAULT_LAG_ALERT_SECONDS  # `RealtimeStatus.healthy` turns false beyond

    def change_feed(self) -> ChangeFeed:
        """The started feed; subscriptions need it."""
        if self.feed is None:
            raise StoreError("the gateway is not started: it has no change feed yet", fix="Start the gateway first.")
        return self.feed


class Loaders:
    """DataLoaders of one request. `cache=False` (WebSocket connections, which live long) keeps the
    batching but never serves a stale value to a later operation."""

    def __init__(self, store: CatalogStore, *, cache: bool = True) -> None:
        self._store = store
        self._cache = cache
        self._runs: DataLoader[tuple[str, int], list[SyncRun]] | None = None
        self._catalogs: DataLoader[str, CatalogInfo | None] | None = None

    # Made on first use: most requests need one loader or none.
    @property
    def runs(self) -> DataLoader[tuple[str, int], list[SyncRun]]:
        if self._runs is None:
            self._runs = DataLoader(self._load_runs, cache=self._cache)
        return self._runs

    @property
    def catalogs(self) -> DataLoader[str, CatalogInfo | None]:
        if self._catalogs is None:
            self._catalogs = DataLoader(self._load_catalogs, cache=self._cache)
        return self._catalogs

    async def _load_runs(self, keys: list[tuple[str, int]]) -> list[list[SyncRun]]:
        # One query per distinct shop, for the largest `last` asked; concurrent, not per row.
        wanted: dict[str, int] = {}
        for shop, last in keys:
            wanted[shop] = max(last, wanted.get(shop, 0))
        shops = list(wanted)
        results = await asyncio.gather(*(self._store.list_runs(s, last=wanted[s]) for s in shops))
        by_shop = dict(zip(shops, results, strict=True))
        return [by_shop[shop][:last] for shop, last in keys]

    async def _load_catalogs(self, names: list[str]) -> list[CatalogInfo | None]:
        distinct = list(dict.fromkeys(names))
        results = await asyncio.gather(*(self._store.get_catalog(n) for n in distinct))
        by_name = dict(zip(distinct, results, strict=True))
        return [by_name[n] for n in names]


@dataclass(slots=True)
class Context:
    services: Services
    role: Role | None
    loaders: Loaders
    request: Any = None
    response: Any = None
    connection_params: dict[str, Any] | None = None
    # catalogs a read plan (gateway.graphql.fastpath) read in this request, by name
    plan_catalogs: dict[str, CatalogInfo | None] = field(default_factory=dict)

    def require_admin(self, action: str) -> None:
        """Raise FORBIDDEN unless the caller holds the admin token."""
        if self.role is not Role.ADMIN:
            raise Forbidden(
                f"{action} needs the admin token: the read token only allows queries and subscriptions."
            )
