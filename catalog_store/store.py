"""The CatalogStore protocol: everything the rest of the code may ask of storage.

Two implementations answer the same contract tests: `MemoryCatalogStore` (demo, fast tests) and
`MongoCatalogStore` (production: MongoDB 4.4+ through PyMongo async; tested on SecantusDB or $MONGODB_URI).

Item writes are idempotent and guarded by Shopify's product `updated_at`, so bulk snapshots,
webhooks, retries and replays can interleave in any order and converge:
- a write applies only when the stored item is not newer (`stored._updated_at <= new.updated_at`);
- a product delete leaves a tombstone; a write for that product whose `updated_at` is not newer
  than the tombstone is refused (a late update or an older bulk snapshot cannot resurrect it),
  until a full sync started after the tombstone lists the product again (ids are never reused);
- equal `updated_at`, different content: `writes.break_tie` decides, alike in every process;
- items are keyed by (catalog, shopify_variant_id); item `id` is unique per catalog, so two
  variants claiming one SKU produce a `Conflict`, never a silent overwrite.

Times are stored in UTC, truncated to milliseconds (as MongoDB keeps them); naive datetimes are
refused. An item's stored size is `items.document_size(item.to_document(catalog))` (computed without
encoding by `checks.check_batch`): the catalog document, not the store's bookkeeping.
Both implementations take a `clock` (UTC now, attribute of the same name) used for write times and
lease expiry. Rules shared by both live in catalog_store.writes (item writes), .queries (read
arguments) and .records (record documents).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from catalog_store.alerts import (
    AlertEvent,
    AlertRules,
    AlertSource,
    AlertSubscription,
    AlertType,
    DeliveryState,
    PendingDelivery,
)
from catalog_store.feed import ChangeFeed
from catalog_store.inbox import InboxDelivery, InboxEntry, InboxLane, InboxStatus
from catalog_store.items import CatalogItem
from catalog_store.models import (
    CatalogInfo,
    ItemFilter,
    ItemPage,
    Notification,
    SyncConfig,
    SyncRun,
    WriteResult,
)

MAX_PAGE_SIZE = 250


@runtime_checkable
class CatalogStore(Protocol):
    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        """Connect and create indexes (idempotent). Raises StoreUnavailable when unreachable."""

    async def close(self) -> None: ...

    @property
    def persistent(self) -> bool:
        """False for the in-memory store (data is lost at exit)."""

    def feed(self, *, poll_interval: float = 1.0, polling: bool = False) -> ChangeFeed:
        """The feed of changes written to this store by any process (catalog_store.feed), not yet
        started. Change streams where the server offers them, else a poll every `poll_interval`
        seconds; `polling` forces the poll. Call after `start()`."""

    # -- sync configurations -----------------------------------------------------------------
    async def save_sync(self, config: SyncConfig) -> None:
        """Insert or replace the configuration of `config.shop_domain`."""

    async def get_sync(self, shop_domain: str) -> SyncConfig | None: ...

    async def update_sync(self, shop_domain: str, change: Callable[[SyncConfig], object]) -> bool:
        """Apply `change` to the stored configuration and write only the fields it changed (the
        others stay as another process may have just saved them). False when there is none."""

    async def list_syncs(self) -> list[SyncConfig]:
        """All configurations, ordered by shop domain."""

    async def delete_sync(self, shop_domain: str) -> bool: ...

    async def mark_reconciled(self, shop_domain: str, at: datetime) -> bool:
        """Set the configuration's `reconciled_at` to `at` unless it is already later (one field,
        atomically: the rest of the configuration is left as another process may have just saved
        it). False when there is no configuration or it was later."""

    # -- catalogs ----------------------------------------------------------------------------
    async def ensure_catalog(self, name: str, shop_domain: str, store_name: str) -> CatalogInfo:
        """Create the catalog if missing (updating store_name otherwise) and return it."""

    async def get_catalog(self, name: str) -> CatalogInfo | None:
        """With exact `item_count` and `storage_bytes`."""

    async def list_catalogs(self) -> list[CatalogInfo]: ...

    async def delete_catalog(self, name: str) -> int:
        """Delete the catalog, all its items and tombstones. Returns the number of items deleted."""

    async def total_storage_bytes(self) -> int:
        """Stored size of all items of all catalogs (what the storage limit is checked against)."""

    # -- items -------------------------------------------------------------------------------
    async def write_items(
        self,
        catalog: str,
        items: Sequence[CatalogItem],
        *,
        run_id: str | None = None,
        limit_bytes: int | None = None,
        listed_after: datetime | None = None,
        source: AlertSource | None = None,
    ) -> WriteResult:
        """Upsert a batch of items (one unordered round trip or a few, never one per item).

        Each item is keyed by (catalog, shopify_variant_id) and written only if not stale (see
        module doc). Written items are marked with `run_id` (for `sweep`) and the write time.
        A variant whose id changed (new SKU) replaces its old item. An item whose `id` is held by
        another variant is not written and is reported in `conflicts`.
        With `limit_bytes`, items are considered in order and writing stops before the first item
        that would bring `total_storage_bytes()` above the limit: `limit_reached` is then True and
        `written_upto` is the count of leading items considered (written, stale or conflicting).
        Items are decided in order: an id freed earlier in the batch can be taken later in it.
        `listed_after`: the items come from a Shopify read started after this time (a full sync's
        start): the tombstones of their products recorded before it end (`writes.ended_tombstones`).
        Raises InvalidItem (nothing written) when an item breaks a rule of catalog_store.items or has
        no tz-aware `updated_at`, and UnknownCatalog for a catalog `ensure_catalog` did not create.
        Each replacement that landed is checked against the catalog's alert rules (see the alerts
        block); `source` is what its events report (default: `sync` with a run id, else `webhook`).
        """

    async def mark_seen(self, catalog: str, variant_ids: Sequence[str], run_id: str) -> None:
        """Mark existing items as seen by `run_id` without rewriting them (e.g. stale in a run)."""

    async def set_variant_image(self, catalog: str, variant_id: str, url: str) -> bool:
        """Set `variant_image_url` of a variant's item if it has none yet. True when changed."""

    async def delete_product(self, catalog: str, product_id: str, deleted_at: datetime) -> int:
        """Delete all items of a product and leave a tombstone (a later delete never moves it back).
        Returns items deleted. Raises UnknownCatalog."""

    async def sweep(self, catalog: str, run_id: str, started_at: datetime) -> int:
        """After a completed full sync: delete items not marked by `run_id` and last written before
        `started_at` (items written since by webhooks survive). Returns items deleted."""

    async def get_item(self, catalog: str, item_id: str) -> CatalogItem | None: ...

    async def get_items_by_variant(self, catalog: str, variant_ids: Sequence[str]) -> list[CatalogItem]: ...

    async def get_items_by_product(self, catalog: str, product_id: str) -> list[CatalogItem]:
        """Every item of a product, sorted by item id (a webhook compares them with the product's
        current variants to find the ones removed from it)."""

    async def find_by_inventory_item(self, catalog: str, inventory_item_id: str) -> list[CatalogItem]: ...

    async def list_items(
        self,
        catalog: str,
        *,
        first: int = 50,
        after: str | None = None,
        filter: ItemFilter | None = None,
    ) -> ItemPage:
        """Keyset pagination in ascending item `id`: items with id > `after`. `first` is capped at
        MAX_PAGE_SIZE (ValueError below 0). `total_count` counts all items matching `filter`.
        Invalid `first`, `after` (not an item id) or filter prices raise InvalidQuery (a ValueError).
        Prices compare as numbers; `in_stock=False` includes a null quantity; `search` is a literal."""

    # -- runs --------------------------------------------------------------------------------
    async def save_run(self, run: SyncRun) -> None:
        """Insert or replace a run (progress is persisted by saving the run)."""

    async def get_run(self, run_id: str) -> SyncRun | None: ...

    async def list_runs(self, shop_domain: str, last: int = 10) -> list[SyncRun]:
        """The shop's most recent runs, newest first."""

    async def delete_runs(self, shop_domain: str) -> int: ...

    # -- notifications -----------------------------------------------------------------------
    async def add_notification(self, notification: Notification) -> None:
        """Store a new notification; StoreError if its id is taken (use save_notification)."""

    async def save_notification(self, notification: Notification) -> None:
        """Replace a stored notification (e.g. its email status), or add it if missing."""

    async def list_notifications(self, *, first: int = 20, unread_only: bool = False) -> list[Notification]:
        """Newest first; `first` capped at MAX_PAGE_SIZE."""

    async def mark_notification_read(self, notification_id: str) -> Notification | None: ...

    # -- lease (one process runs a shop's sync) ----------------------------------------------
    async def acquire_lease(self, shop_domain: str, owner: str, ttl_seconds: float) -> bool:
        """Take the shop's lease if free, expired, or already ours (then renewed). Among contenders
        for a free or expired lease exactly one wins. ValueError unless ttl_seconds > 0."""

    async def renew_lease(self, shop_domain: str, owner: str, ttl_seconds: float) -> bool:
        """Extend our lease; False if it was lost (another owner took it after expiry)."""

    async def release_lease(self, shop_domain: str, owner: str) -> None: ...

    async def lease_owner(self, shop_domain: str) -> str | None:
        """The current unexpired owner, or None."""

    # -- webhook inbox (catalog_store.inbox: the rules; each delivery applied once, by any process) --
    async def inbox_put(self, delivery: InboxDelivery) -> bool:
        """Store a verified delivery durably (it survives a crash once this returns). False when its
        (shop, webhook id) was put before (pending, or done within DEDUPE_TTL): nothing stored."""

    async def inbox_claim(self, lane: InboxLane, owner: str, limit: int, ttl_seconds: float) -> list[InboxEntry]:
        """Claim up to `limit` claimable entries of `lane`, all of one shop (the one whose entry waits
        longest), oldest first, for `ttl_seconds`; after that they are claimable by anyone again.
        An entry is never held by two claims. ValueError unless limit >= 1 and ttl_seconds > 0."""

    async def inbox_renew(self, owner: str, entry_ids: Sequence[str], ttl_seconds: float) -> int:
        """Extend `owner`'s claims of these entries to `ttl_seconds` from now (a long batch keeps
        them). Returns the number still held and extended."""

    async def inbox_done(self, owner: str, applied: Sequence[str], failed: Sequence[str] = ()) -> int:
        """Finish entries `owner` still holds: removed from the backlog (their ids kept for dedupe),
        counted per shop as applied (and lastAppliedAt) or failed. Returns the number finished."""

    async def inbox_release(self, owner: str, entry_ids: Sequence[str], *, retry_in: float | None = None) -> int:
        """Give back entries `owner` still holds: claimable at once (`retry_in` None, nothing counted),
        or after `retry_in` seconds with one more failed attempt. Returns the number released."""

    async def inbox_drop_shop(self, shop_domain: str) -> int:
        """Forget the shop's pending entries and its counters (the sync was disabled). Returns the
        number of entries dropped."""

    async def inbox_status(self, shop_domain: str) -> InboxStatus:
        """Backlog, oldest pending entry and outcome counters of one shop."""

    # -- alerts (catalog_store.alerts: rules, subscriptions, events, outbound deliveries) ------
    async def get_alert_rules(self, catalog: str) -> AlertRules:
        """The catalog's rules; the defaults (all off) until set."""

    async def set_alert_rules(self, catalog: str, rules: AlertRules) -> AlertRules:
        """Replace the catalog's rules (checked by the caller: alerts.updated_rules). Raises
        AlertTargetNotFound for an unknown catalog."""

    async def subscribe_to_alerts(
        self, catalog: str, item_id: str, user_id: str, types: tuple[AlertType, ...]
    ) -> AlertSubscription:
        """A subscription expiring 90 days later; a user's active subscription to the item gets the
        types added instead (one per user and item). Raises AlertTargetNotFound (catalog or item),
        ItemInStock (BACK_IN_STOCK above the threshold), InvalidAlertInput."""

    async def unsubscribe_from_alerts(self, subscription_id: str) -> bool:
        """End a subscription; False when it is unknown, consumed or expired."""

    async def list_alert_subscriptions(
        self, catalog: str, *, first: int = 50, item_id: str | None = None, user_id: str | None = None
    ) -> list[AlertSubscription]:
        """Active subscriptions (types left, not expired), oldest first."""

    async def count_alert_subscriptions(self, catalog: str) -> int:
        """Active subscriptions of the catalog (what disabling it affects)."""

    async def list_alert_events(
        self, catalog: str, *, first: int = 50, type: AlertType | None = None
    ) -> list[AlertEvent]:
        """Newest first."""

    async def released_alert_events(self, catalog: str, since: datetime, until: datetime) -> list[AlertEvent]:
        """Events whose `release_at` is in [since, until], oldest first (what live subscribers get)."""

    async def claim_alert_deliveries(self, *, limit: int, lease_seconds: float) -> list[PendingDelivery]:
        """Up to `limit` pending outbound deliveries that are due, each claimed by the caller (in any
        process) for `lease_seconds`: another claim gets it again only after the lease ran out."""

    async def finish_alert_delivery(
        self, event_id: str, *, delivered: bool, retry_at: datetime | None = None, error: str | None = None
    ) -> DeliveryState | None:
        """Record an attempt: delivered, or failed (retried at `retry_at`; given up, FAILED, when
        that is past the delivery window or None). None for an unknown event."""

    async def recover_alert_events(self, older_than_seconds: float) -> int:
        """Make the events of item writes that landed more than `older_than_seconds` ago while the
        process writing them stopped before their events were stored (idempotent). Returns how many."""

    async def end_orphaned_alert_subscriptions(self) -> int:
        """End the subscriptions of items no longer in their catalog (a deleted product; a full sync's
        sweep ends them at once). Called now and then, not on the delete itself: a webhook replacing a
        product's items deletes and rewrites them. Returns how many ended."""

    # -- inventory reads and product ids (webhook batches, reconciliation) -------------------
    async def find_by_inventory_items(self, catalog: str, inventory_item_ids: Sequence[str]) -> list[CatalogItem]:
        """The items of all these inventory items (one read, however many), sorted by item id."""

    async def list_product_ids(self, catalog: str) -> list[str]:
        """Every product id the catalog holds items of, sorted (what reconciliation compares with
        Shopify's product ids to find the deletes no webhook brought). Cheap: no item is decoded."""
