"""MongoCatalogStore: the CatalogStore on MongoDB (4.4+, standalone, replica set or sharded) through
PyMongo's async API.

Collections of the database:
- `items`: one document per variant, `_id` = "<catalog>/<variant id>": the catalog fields (money as
  numbers plus the exact strings `_price`/`_compare_at_price`) and `_catalog`, `_updated_at`,
  `_inventory_item_id`, `_run_id`, `_written_at`, `_size` (items.document_size of the catalog document)
  `_rev`, a fresh token set by every write that changes the document, and `_digest`
  (writes.item_digest, without the quantity: an item equal to the stored one is marked as seen, not
  rewritten; at an equal `updated_at` it breaks the tie, `writes.break_tie`).
- `tombstones` (`_id` = "<catalog>/<product id>"; `deleted_at`, and `recorded_at` by this store's
  clock, which a full sync started later ends), `catalogs` (`_id` = name; `item_count` and
  `storage_bytes` kept by `$inc`, healed by `sweep` after a crashed writer: mongo.counters), `syncs`, `runs`,
  `notifications`, `leases` (`_id` = the lease's name: one compare-and-set document each),
  `inbox` and `inbox_counters` (the webhook inbox, catalog_store.mongo.inbox).

Item writes (a few round trips per batch, guarded on the server) live in catalog_store.mongo.items.
A batch that read a product's tombstones just before a concurrent `delete_product` wrote them can
still land its items after the delete; the next completed full sync sweeps them (the product is gone).

Every read of `CatalogItemFilter` and the default page order are served by an index of `items` (see
INDEXES; tests/catalog_store/test_indexes.py checks the query plans). `search` is a case-insensitive
substring match read through the trigrams of the text's words (mongo.indexes); a text without a word of
three characters or more walks the catalog's id index and tests each item.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import ConfigurationError, ConnectionFailure, PyMongoError

from catalog_store.alerts import AlertSource, default_source
from catalog_store.documents import (
    catalog_from_document,
    changed_sync_fields,
    sync_from_document,
    sync_to_document,
)
from catalog_store.errors import StoreError, StoreUnavailable, UnknownCatalog
from catalog_store.filters import check_filter, cursor, page_size
from catalog_store.items import CatalogItem
from catalog_store.models import (
    CatalogInfo,
    ItemFilter,
    ItemPage,
    SyncConfig,
    WriteResult,
    utcnow,
)
from catalog_store.mongo.alerts import MongoAlerts
from catalog_store.mongo.alerts_api import MongoAlertsApi
from catalog_store.mongo.feed import MongoChangeFeed
from catalog_store.mongo.grams import add_missing_grams
from catalog_store.mongo.inbox import MongoInbox, inbox_write_concern
from catalog_store.mongo.indexes import INDEXES, ITEM_FIELDS, filter_query, index_for
from catalog_store.mongo.items import ItemWriter, LandedWrite, in_chunks, item_key
from catalog_store.mongo.records import MongoRecords
from catalog_store.mongo.syncs import opened, reseal, reseal_all, sealed_fields
from catalog_store.mongo.translate import translated as _translated
from catalog_store.rules import check_catalog_name, check_image_url, utc_millis
from catalog_store.token_cipher import TokenCipher
from catalog_store.writes import prepare_items

Document = dict[str, Any]

class MongoCatalogStore(MongoRecords, MongoAlertsApi):
    """CatalogStore on MongoDB. `clock` (UTC now) is injectable for tests."""

    def __init__(
        self,
        uri: str,
        database: str = "catalog_gateway",
        *,
        clock: Callable[[], datetime] = utcnow,
        server_selection_timeout: float = 10.0,
        cipher: TokenCipher | None = None,
    ) -> None:
        self.clock = clock
        self._cipher = cipher  # None: access tokens are stored as given (tests, tools; `serve` always has one)
        self._uri = uri
        self._database_name = database
        self._timeout_ms = int(server_selection_timeout * 1000)
        self._client: AsyncMongoClient[Document] | None = None
        self._db: AsyncDatabase[Document] | None = None
        self._writer: ItemWriter | None = None
        self._inbox_impl: MongoInbox | None = None
        self._alerts: MongoAlerts | None = None

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        if self._db is not None:
            return
        client = self._connect()
        db = client[self._database_name]
        try:
            await db.command("ping")
            await asyncio.gather(*(db[name].create_indexes(indexes) for name, indexes in INDEXES.items()))
            inbox_concern = await inbox_write_concern(db)
            alerts = MongoAlerts(db, self._now)
            await alerts.create_indexes()
            await add_missing_grams(db)
        except ConnectionFailure as exc:
            await client.close()
            raise StoreUnavailable(f"MongoDB is unreachable: {exc}") from exc
        except PyMongoError as exc:
            await client.close()
            raise StoreError(f"MongoDB could not be prepared (indexes): {exc}") from exc
        self._client, self._db = client, db
        self._writer = ItemWriter(db, self._now)
        self._inbox_impl = MongoInbox(db, self._now, inbox_concern)
        self._alerts = alerts

    def _connect(self, **options: Any) -> AsyncMongoClient[Document]:
        try:
            return AsyncMongoClient(
                self._uri,
                tz_aware=True,
                tzinfo=UTC,
                serverSelectionTimeoutMS=self._timeout_ms,
                appname="catalog-gateway",
                **options,
            )
        except (ConfigurationError, ValueError, TypeError) as exc:
            raise StoreUnavailable(
                f"invalid MongoDB URI: {exc}", fix="Set MONGODB_URI to a mongodb:// or mongodb+srv:// URI."
            ) from exc

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
        self._client = self._db = None
        self._writer = None
        self._inbox_impl = None
        self._alerts = None

    @property
    def persistent(self) -> bool:
        return True

    def feed(self, *, poll_interval: float = 1.0, polling: bool = False) -> MongoChangeFeed:
        """Changes written to this database by any process: change streams, else polling (catalog_store.mongo.feed)."""
        return MongoChangeFeed(self.database, self, poll_interval=poll_interval, polling=polling, now=self._now)

    @property
    def database(self) -> AsyncDatabase[Document]:
        if self._db is None:
            raise StoreError("the MongoDB store is not started", fix="Call and await start() first.")
        return self._db

    @property
    def _items(self) -> ItemWriter:
        if self._writer is None:
            raise StoreError("the MongoDB store is not started", fix="Call and await start() first.")
        return self._writer

    def _coll(self, name: str) -> AsyncCollection[Document]:
        return self.database[name]

    def _now(self) -> datetime:
        return utc_millis(self.clock())

    # -- sync configurations ---------------------------------------------------------------

    @_translated
    async def save_sync(self, config: SyncConfig) -> None:
        doc = sealed_fields(sync_to_document(config), self._cipher)
        await self._coll("syncs").replace_one({"_id": doc["_id"]}, doc, upsert=True)

    @_translated
    async def get_sync(self, shop_domain: str) -> SyncConfig | None:
        doc = await self._coll("syncs").find_one({"_id": shop_domain})
        return None if doc is None else sync_from_document(opened(doc, self._cipher))

    @_translated
    async def update_sync(self, shop_domain: str, change: Callable[[SyncConfig], object]) -> bool:
        doc = await self._coll("syncs").find_one({"_id": shop_domain})
        if doc is None:
            return False
        changed = changed_sync_fields(sync_from_document(opened(doc, self._cipher)), change)
        if "access_token" not in changed:
            await reseal(self._coll("syncs"), doc, self._cipher)  # a plain or old-key token: sealed now
        if changed:
            result = await self._coll("syncs").update_one({"_id": shop_domain},
                                                          {"$set": sealed_fields(changed, self._cipher)})
            return result.matched_count == 1
        return True

    @_translated
    async def list_syncs(self) -> list[SyncConfig]:
        docs = await self._coll("syncs").find({}).sort("_id", ASCENDING).to_list()
        return [sync_from_document(opened(doc, self._cipher)) for doc in docs]

    @_translated
    async def reseal_tokens(self) -> int:
        """Re-encrypt every access token with the writing key (see catalog_store.mongo.syncs)."""
        return await reseal_all(self._coll("syncs"), self._cipher)

    @_translated
    async def delete_sync(self, shop_domain: str) -> bool:
        result = await self._coll("syncs").delete_one({"_id": shop_domain})
        return result.deleted_count == 1

    @_translated
    async def mark_reconciled(self, shop_domain: str, at: datetime) -> bool:
        at = utc_millis(at)
        query = {"_id": shop_domain, "$or": [{"reconciled_at": None}, {"reconciled_at": {"$lt": at}}]}
        result = await self._coll("syncs").update_one(query, {"$set": {"reconciled_at": at}})
        return result.modified_count == 1

    # -- catalogs --------------------------------------------------------------------------

    @_translated
    async def ensure_catalog(self, name: str, shop_domain: str, store_name: str) -> CatalogInfo:
        check_catalog_name(name)
        catalogs = self._coll("catalogs")
        await catalogs.update_one(
            {"_id": name},
            {
                "$set": {"shop_domain": shop_domain, "store_name": store_name},
                "$setOnInsert": {"item_count": 0, "storage_bytes": 0, "created_at": self._now(), "search_grams": True},
            },
            upsert=True,
        )
        doc = await catalogs.find_one({"_id": name})
        if doc is None:
            raise StoreError(f"catalog {name!r} vanished while being created (deleted concurrently?)")
        return catalog_from_document(doc)

    @_translated
    async def get_catalog(self, name: str) -> CatalogInfo | None:
        doc = await self._coll("catalogs").find_one({"_id": name})
        return None if doc is None else catalog_from_document(doc)

    @_translated
    async def list_catalogs(self) -> list[CatalogInfo]:
        docs = await self._coll("catalogs").find({}).sort("_id", ASCENDING).to_list()
        return [catalog_from_document(doc) for doc in docs]

    @_translated
    async def delete_catalog(self, name: str) -> int:
        result = await self._coll("items").delete_many({"_catalog": name})
        await self._coll("tombstones").delete_many({"_catalog": name})
        await self._coll("catalogs").delete_one({"_id": name})
        await self.alerts.delete_catalog(name)
        return result.deleted_count

    @_translated
    async def total_storage_bytes(self) -> int:
        docs = await self._coll("catalogs").find({}, {"storage_bytes": 1}).to_list()
        return sum(doc.get("storage_bytes", 0) for doc in docs)

    async def _require_catalog(self, name: str) -> None:
        if await self._coll("catalogs").find_one({"_id": name}, {"_id": 1}) is None:
            raise UnknownCatalog(f"catalog {name!r} does not exist")

    # -- items: writes ---------------------------------------------------------------------

    @_translated
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
        listed_after = None if listed_after is None else utc_millis(listed_after)
        prepared = prepare_items(catalog, items)
        rules = await self.alerts.watching(catalog)
        subscribed = set() if rules is None else await self.alerts.subscribed_items(catalog, {p.item.id for p in prepared})
        intent = self.alerts.intent_hook(catalog, rules if subscribed else None, subscribed,
                                         default_source(source, run_id))
        landed: list[LandedWrite] = []
        try:
            return await self._items.write(catalog, prepared, run_id, limit_bytes, listed_after, landed, intent)
        finally:
            await self.alerts.settle(catalog, landed)

    @_translated
    async def mark_seen(self, catalog: str, variant_ids: Sequence[str], run_id: str) -> None:
        await self._items.mark_seen(catalog, variant_ids, run_id)

    @_translated
    async def set_variant_image(self, catalog: str, variant_id: str, url: str) -> bool:
        check_image_url(url)
        return await self._items.set_variant_image(catalog, variant_id, url)

    @_translated
    async def delete_product(self, catalog: str, product_id: str, deleted_at: datetime) -> int:
        deleted_at = utc_millis(deleted_at)
        await self._require_catalog(catalog)
        await self._coll("tombstones").update_one(
            {"_id": item_key(catalog, product_id)},
            {"$max": {"deleted_at": deleted_at, "recorded_at": self._now()},
             "$setOnInsert": {"_catalog": catalog, "product_id": product_id}},
            upsert=True,
        )
        return await self._items.delete(catalog, {"_catalog": catalog, "shopify_product_id": product_id}, {})

    @_translated
    async def sweep(self, catalog: str, run_id: str, started_at: datetime) -> int:
        started_at = utc_millis(started_at)
        unmarked = {"_run_id": {"$ne": run_id}}
        query = {"_catalog": catalog, **unmarked, "_written_at": {"$lt": started_at}}
        deleted = await self._items.delete(catalog, query, unmarked, rounds=1)
        await self._items.counters.heal(catalog, run_id)
        if deleted:
            await self.alerts.end_missing_items(catalog)
        return deleted

    # -- items: reads ----------------------------------------------------------------------

    @_translated
    async def get_item(self, catalog: str, item_id: str) -> CatalogItem | None:
        doc = await self._coll("items").find_one({"_catalog": catalog, "id": item_id}, ITEM_FIELDS)
        return None if doc is None else CatalogItem.from_document(doc)

    @_translated
    async def get_items_by_variant(self, catalog: str, variant_ids: Sequence[str]) -> list[CatalogItem]:
        wanted = list(dict.fromkeys(variant_ids))
        if not wanted:
            return []
        found = await asyncio.gather(*(self._coll("items").find({"_id": {"$in": chunk}}, ITEM_FIELDS).to_list()
                                       for chunk in in_chunks(item_key(catalog, v) for v in wanted)))
        by_variant = {doc["shopify_variant_id"]: doc for docs in found for doc in docs}
        return [CatalogItem.from_document(by_variant[v]) for v in wanted if v in by_variant]

    @_translated
    async def get_items_by_product(self, catalog: str, product_id: str) -> list[CatalogItem]:
        query = {"_catalog": catalog, "shopify_product_id": product_id}
        docs = await self._coll("items").find(query, ITEM_FIELDS).sort("id", ASCENDING).to_list()
        return [CatalogItem.from_document(doc) for doc in docs]

    @_translated
    async def find_by_inventory_item(self, catalog: str, inventory_item_id: str) -> list[CatalogItem]:
        query = {"_catalog": catalog, "_inventory_item_id": inventory_item_id}
        docs = await self._coll("items").find(query, ITEM_FIELDS).sort("id", ASCENDING).to_list()
        return [CatalogItem.from_document(doc) for doc in docs]

    @_translated
    async def list_items(
        self,
        catalog: str,
        *,
        first: int = 50,
        after: str | None = None,
        filter: ItemFilter | None = None,
    ) -> ItemPage:
        size = page_size(first)
        after = cursor(after)
        checked = check_filter(filter)
        query = filter_query(catalog, checked)
        hint = index_for(checked, paged=after is not None)
        hinted: dict[str, Any] = {} if hint is None else {"hint": hint}
        page_query = query if after is None else {"$and": [query, {"id": {"$gt": after}}]}
        items = self._coll("items")
        # Unfiltered, the catalog's kept counter is the count (no pass over its index).
        total: Awaitable[int] = (self._item_count(catalog) if checked.empty
                                 else items.count_documents(query, **hinted))
        page = items.find(page_query, ITEM_FIELDS, sort=[("id", ASCENDING)], limit=size + 1, **hinted)
        docs, count = await asyncio.gather(page.to_list(), total)
        return ItemPage([CatalogItem.from_document(doc) for doc in docs[:size]], len(docs) > size, count)

    async def _item_count(self, catalog: str) -> int:
        doc = await self._coll("catalogs").find_one({"_id": catalog}, {"item_count": 1})
        return 0 if doc is None else int(doc.get("item_count", 0))

    # -- inventory reads and product ids (webhook batches, reconciliation) -------------------

    @_translated
    async def find_by_inventory_items(self, catalog: str, inventory_item_ids: Sequence[str]) -> list[CatalogItem]:
        chunks = in_chunks(dict.fromkeys(inventory_item_ids))
        found = await asyncio.gather(*(self._coll("items").find(
            {"_catalog": catalog, "_inventory_item_id": {"$in": chunk}}, ITEM_FIELDS).to_list() for chunk in chunks))
        return sorted((CatalogItem.from_document(doc) for docs in found for doc in docs), key=lambda item: item.id)

    @_translated
    async def list_product_ids(self, catalog: str) -> list[str]:
        # Answered from the (catalog, product) index alone: no item document is read.
        cursor_ = await self._coll("items").aggregate([
            {"$match": {"_catalog": catalog}}, {"$group": {"_id": "$shopify_product_id"}}, {"$sort": {"_id": 1}}])
        return [str(doc["_id"]) for doc in await cursor_.to_list()]
