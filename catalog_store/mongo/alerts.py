"""Alerts on MongoDB: rules, subscriptions, events (each carrying its outbound delivery state) and
the per-minute counters of the cap.

Collections: `alert_rules` (`_id` = catalog), `alert_subscriptions` (`key` = catalog/item/user,
unique: one subscription per user and item; a TTL index on `expires_at` removes expired ones, and
every read also skips them), `alert_events` (`_id` = alerts.event_id of the write that caused it, so
an event is stored once; `delivery` holds the outbound state, so an event and its pending delivery are
one atomic insert and survive restarts), `alert_minutes` (one counter per catalog and minute).

Several processes may detect changes at once, but a write lands in exactly one of them (guarded
item writes), and each subscription is consumed by a guarded `$pull` of the type: a user is named by
one event per type, whichever process gets there first.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from catalog_store.alerts import (
    DELIVERY_WINDOW,
    MINUTE,
    SUBSCRIPTION_LIFETIME,
    AlertEvent,
    AlertRules,
    AlertSource,
    AlertSubscription,
    AlertTargetNotFound,
    AlertType,
    DeliveryState,
    PendingDelivery,
    check_subscription_input,
    event_id,
    minute_of,
    refuse_in_stock,
    release_time,
    transitions,
)
from catalog_store.items import CatalogItem
from catalog_store.mongo.indexes import ITEM_FIELDS
from catalog_store.mongo.items import IntentFor, LandedWrite, in_chunks
from catalog_store.writes import PlannedWrite

Document = dict[str, Any]
NEVER = datetime(1970, 1, 1, tzinfo=UTC)  # lease_until of an unclaimed delivery
MAX_MINUTES_AHEAD = 100_000  # a cap search stops there (about ten weeks of full minutes)

ALERT_INDEXES: dict[str, list[IndexModel]] = {
    "alert_subscriptions": [
        IndexModel([("key", ASCENDING)], unique=True, name="key"),
        IndexModel([("catalog", ASCENDING), ("item_id", ASCENDING)], name="catalog_item"),
        IndexModel([("catalog", ASCENDING), ("created_at", ASCENDING)], name="catalog_created"),
        IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0, name="expiry"),
    ],
    "alert_events": [
        IndexModel([("catalog", ASCENDING), ("created_at", DESCENDING)], name="catalog_created"),
        IndexModel([("catalog", ASCENDING), ("release_at", ASCENDING)], name="catalog_release"),
        IndexModel([("delivery.state", ASCENDING), ("delivery.due_at", ASCENDING)], name="delivery_due"),
    ],
    "alert_minutes": [IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0, name="expiry")],
    # items whose document carries unsettled alert intents (almost none: settled right after the write)
    "items": [IndexModel([("_written_at", ASCENDING)], name="alert_intents",
                         partialFilterExpression={"_alerts": {"$exists": True}})],
}

_RULE_FIELDS = ("back_in_stock", "back_in_stock_threshold", "price_drop", "price_drop_min_percent",
                "price_drop_min_amount", "max_events_per_minute")


class MongoAlerts:
    """The alert collections of one database. `now` is the store's clock (UTC milliseconds)."""

    def __init__(self, db: AsyncDatabase[Document], now: Callable[[], datetime]) -> None:
        self._now = now
        self._db = db
        self._rules = db["alert_rules"]
        self._subscriptions = db["alert_subscriptions"]
        self._events = db["alert_events"]
        self._minutes = db["alert_minutes"]

    async def create_indexes(self) -> None:
        for name, indexes in ALERT_INDEXES.items():
            await self._db[name].create_indexes(indexes)

    # -- rules -----------------------------------------------------------------------------

    async def rules(self, catalog: str) -> AlertRules:
        doc = await self._rules.find_one({"_id": catalog})
        return AlertRules() if doc is None else AlertRules(**{f: doc[f] for f in _RULE_FIELDS if f in doc})

    async def set_rules(self, catalog: str, rules: AlertRules) -> AlertRules:
        await self._require_catalog(catalog)
        doc = {f: getattr(rules, f) for f in _RULE_FIELDS}
        await self._rules.replace_one({"_id": catalog}, {"_id": catalog, **doc}, upsert=True)
        return rules

    async def watching(self, catalog: str) -> AlertRules | None:
        rules = await self.rules(catalog)
        return rules if rules.enabled else None

    # -- subscriptions ---------------------------------------------------------------------

    async def subscribe(self, catalog: str, item_id: str, user_id: str, types: tuple[AlertType, ...]
                        ) -> AlertSubscription:
        check_subscription_input(item_id, user_id, types)
        await self._require_catalog(catalog)
        doc = await self._db["items"].find_one({"_catalog": catalog, "id": item_id}, ITEM_FIELDS)
        if doc is None:
            raise AlertTargetNotFound(f"catalog {catalog!r} has no item {item_id!r}",
                                      fix="Use an item id listed by Catalog.items.")
        refuse_in_stock(CatalogItem.from_document(doc), await self.rules(catalog), types)
        key = f"{catalog}/{item_id}/{user_id}"
        wanted = [t.value for t in dict.fromkeys(types)]
        for _ in range(5):
            now = self._now()
            merged = await self._subscriptions.find_one_and_update(
                {"key": key, "expires_at": {"$gt": now}, "types.0": {"$exists": True}},
                {"$addToSet": {"types": {"$each": wanted}}},
                return_document=ReturnDocument.AFTER,
            )
            if merged is not None:
                return _subscription(merged)
            await self._subscriptions.delete_many({"key": key, "$or": [{"expires_at": {"$lte": now}}, {"types": []}]})
            new = {"_id": secrets.token_hex(12), "key": key, "catalog": catalog, "item_id": item_id,
                   "user_id": user_id, "types": wanted, "created_at": now, "expires_at": now + SUBSCRIPTION_LIFETIME}
            try:
                await self._subscriptions.insert_one(new)
            except DuplicateKeyError:  # another request subscribed the same user meanwhile: merge
                continue
            return _subscription(new)
        raise AlertTargetNotFound(f"the subscription of {user_id!r} to {item_id!r} kept changing",
                                  fix="Retry the request.")

    async def unsubscribe(self, subscription_id: str) -> bool:
        result = await self._subscriptions.delete_one(
            {"_id": subscription_id, "expires_at": {"$gt": self._now()}, "types.0": {"$exists": True}})
        if result.deleted_count == 0:
            await self._subscriptions.delete_one({"_id": subscription_id})
        return result.deleted_count == 1

    async def subscriptions(self, catalog: str, *, first: int, item_id: str | None, user_id: str | None
                            ) -> list[AlertSubscription]:
        if first == 0:
            return []
        query = self._active_query(catalog)
        if item_id is not None:
            query["item_id"] = item_id
        if user_id is not None:
            query["user_id"] = user_id
        docs = await self._subscriptions.find(query).sort([("created_at", ASCENDING), ("_id", ASCENDING)]
                                                           ).limit(first).to_list()
        return [_subscription(doc) for doc in docs]

    async def count_subscriptions(self, catalog: str) -> int:
        return await self._subscriptions.count_documents(self._active_query(catalog))

    async def end_missing_items(self, catalog: str) -> int:
        """Subscriptions of items no longer in the catalog end (after a sweep deleted items)."""
        item_ids = await self._subscriptions.distinct("item_id", {"catalog": catalog})
        ended = 0
        for chunk in in_chunks(item_ids):
            present = await self._db["items"].distinct("id", {"_catalog": catalog, "id": {"$in": chunk}})
            gone = set(chunk) - set(present)
            if gone:
                result = await self._subscriptions.delete_many({"catalog": catalog, "item_id": {"$in": sorted(gone)}})
                ended += result.deleted_count
        return ended

    async def end_orphans(self) -> int:
        ended = 0
        for catalog in await self._subscriptions.distinct("catalog"):
            ended += await self.end_missing_items(catalog)
        return ended

    async def delete_catalog(self, catalog: str) -> None:
        await self._rules.delete_one({"_id": catalog})
        await self._subscriptions.delete_many({"catalog": catalog})
        await self._events.delete_many({"catalog": catalog})
        await self._minutes.delete_many({"catalog": catalog})

    def _active_query(self, catalog: str) -> Document:
        return {"catalog": catalog, "expires_at": {"$gt": self._now()}, "types.0": {"$exists": True}}

    # -- detection: intents written with the item, then settled ---------------------------------

    async def subscribed_items(self, catalog: str, item_ids: set[str]) -> set[str]:
        """The batch's item ids someone is subscribed to (only those are compared)."""
        found: set[str] = set()
        for chunk in in_chunks(sorted(item_ids)):
            query = {**self._active_query(catalog), "item_id": {"$in": chunk}}
            found.update(await self._subscriptions.distinct("item_id", query))
        return found

    @staticmethod
    def intent_hook(catalog: str, rules: AlertRules | None, subscribed: set[str], source: AlertSource) -> IntentFor:
        """What each item document carries: the qualifying changes of subscribed items (each with the id
        of the event it becomes) plus the intents of the document it replaces not yet settled."""

        def intent(write: PlannedWrite, token: ObjectId) -> list[Document] | None:
            previous = write.previous
            if previous is None:
                return None
            carried: list[Document] = list(previous.alerts or ())
            item = write.prepared.item
            if rules is not None and item.id in subscribed and previous.price is not None:
                carried.extend(
                    {"id": event_id(catalog, change.variant_id, str(token), change.type), "type": change.type.value,
                     "item_id": change.item_id, "previous": change.previous_value, "new": change.new_value,
                     "source": source.value}
                    for change in transitions(rules, previous.price, previous.inventory_quantity, item))
            return carried or None

        return intent

    async def settle(self, catalog: str, landed: Sequence[LandedWrite]) -> list[AlertEvent]:
        """Turn the intents of writes that landed into events, then clear them from the item (only
        while it is still that write's document: a replacement carried them over)."""
        created: list[AlertEvent] = []
        if not landed:
            return created
        rules = await self.rules(catalog)
        for write in landed:
            for intent in write.intents:
                event = await self._settle_intent(catalog, rules, intent)
                if event is not None:
                    created.append(event)
            await self._db["items"].update_one({"_id": f"{catalog}/{write.variant_id}", "_rev": write.token},
                                               {"$unset": {"_alerts": 1}})
        return created

    async def recover(self, older_than: timedelta) -> int:
        """Settle intents a process wrote and did not settle (it stopped between the item write and
        the event): idempotent, so a process still settling them does no harm. Returns events made."""
        query = {"_alerts": {"$exists": True}, "_written_at": {"$lt": self._now() - older_than}}
        made = 0
        for doc in await self._db["items"].find(query, {"_catalog": 1, "shopify_variant_id": 1, "_rev": 1,
                                                          "_alerts": 1}).limit(1000).to_list():
            landed = [LandedWrite(doc["shopify_variant_id"], doc["_rev"], doc["_alerts"])]
            made += len(await self.settle(doc["_catalog"], landed))
        return made

    async def _settle_intent(self, catalog: str, rules: AlertRules, intent: Document) -> AlertEvent | None:
        """One intent to its event, idempotently: subscribers are consumed with the event's id, so a
        second settlement finds the same users, and the event is inserted once."""
        id_, type_ = intent["id"], intent["type"]
        existing = await self._events.find_one({"_id": id_})
        if existing is not None:
            return None
        item_id = intent["item_id"]
        candidates = await self._subscriptions.find(
            {**self._active_query(catalog), "item_id": item_id, "types": type_}, {"_id": 1}).to_list()
        for doc in candidates:
            await self._subscriptions.update_one(
                {"_id": doc["_id"], "types": type_, "expires_at": {"$gt": self._now()}},
                {"$pull": {"types": type_}, "$set": {f"consumed.{type_}": id_}},
            )
        named = await self._subscriptions.find({"catalog": catalog, "item_id": item_id, f"consumed.{type_}": id_},
                                               {"user_id": 1}).to_list()
        if not named:
            return None
        now = self._now()
        event = AlertEvent(id_, catalog, item_id, AlertType(type_), intent["previous"], intent["new"],
                           tuple(sorted({d["user_id"] for d in named})), AlertSource(intent["source"]), now,
                           await self._release(catalog, rules, now))
        await self._events.update_one({"_id": id_}, {"$setOnInsert": _event_document(event)}, upsert=True)
        await self._subscriptions.delete_many({"_id": {"$in": [d["_id"] for d in named]}, "types": []})
        return event

    async def _release(self, catalog: str, rules: AlertRules, now: datetime) -> datetime:
        """Count the event in the first minute from now with room under the cap."""
        minute = minute_of(now)
        for _ in range(MAX_MINUTES_AHEAD):
            try:
                await self._minutes.update_one(
                    {"_id": f"{catalog}/{minute.isoformat()}", "count": {"$lt": rules.max_events_per_minute}},
                    {"$inc": {"count": 1},
                     "$setOnInsert": {"catalog": catalog, "expires_at": minute + timedelta(days=1)}},
                    upsert=True,
                )
                return release_time(now, minute)
            except DuplicateKeyError:  # that minute is full
                minute += MINUTE
        return release_time(now, minute)

    # -- events ----------------------------------------------------------------------------

    async def events(self, catalog: str, *, first: int, type_: AlertType | None) -> list[AlertEvent]:
        if first == 0:
            return []
        query: Document = {"catalog": catalog}
        if type_ is not None:
            query["type"] = type_.value
        docs = await self._events.find(query).sort([("created_at", DESCENDING), ("_id", DESCENDING)]
                                                    ).limit(first).to_list()
        return [_event(doc) for doc in docs]

    async def released(self, catalog: str, since: datetime, until: datetime) -> list[AlertEvent]:
        query = {"catalog": catalog, "release_at": {"$gte": since, "$lte": until}}
        docs = await self._events.find(query).sort([("release_at", ASCENDING), ("_id", ASCENDING)]).to_list()
        return [_event(doc) for doc in docs]

    # -- outbound deliveries ---------------------------------------------------------------

    async def claim_deliveries(self, limit: int, lease: timedelta) -> list[PendingDelivery]:
        claimed: list[PendingDelivery] = []
        now = self._now()
        for _ in range(limit):
            doc = await self._events.find_one_and_update(
                {"delivery.state": DeliveryState.PENDING.value, "delivery.due_at": {"$lte": now},
                 "delivery.lease_until": {"$lte": now}},
                {"$set": {"delivery.lease_until": now + lease}},
                sort=[("delivery.due_at", ASCENDING)],
                return_document=ReturnDocument.AFTER,
            )
            if doc is None:
                break
            claimed.append(PendingDelivery(_event(doc), int(doc["delivery"]["attempts"])))
        return claimed

    async def finish_delivery(self, event_id_: str, *, delivered: bool, retry_at: datetime | None,
                              error: str | None) -> DeliveryState | None:
        doc = await self._events.find_one({"_id": event_id_}, {"release_at": 1})
        if doc is None:
            return None
        change: Document
        if delivered:
            state, change = DeliveryState.DELIVERED, {"delivery.state": DeliveryState.DELIVERED.value}
        elif retry_at is None or retry_at > doc["release_at"] + DELIVERY_WINDOW:
            state, change = DeliveryState.FAILED, {"delivery.state": DeliveryState.FAILED.value}
        else:
            state, change = DeliveryState.PENDING, {"delivery.due_at": retry_at}
        update: Document = {"$set": {**change, "delivery.lease_until": NEVER}}
        if not delivered:
            update["$inc"] = {"delivery.attempts": 1}
            update["$set"]["delivery.last_error"] = (error or "")[:1000]
        await self._events.update_one({"_id": event_id_}, update)
        return state

    async def _require_catalog(self, catalog: str) -> None:
        if await self._db["catalogs"].find_one({"_id": catalog}, {"_id": 1}) is None:
            raise AlertTargetNotFound(f"catalog {catalog!r} does not exist",
                                      fix="Use a catalog name listed by `catalogs` (shopify_<shop>).")


def _subscription(doc: Document) -> AlertSubscription:
    return AlertSubscription(doc["_id"], doc["catalog"], doc["item_id"], doc["user_id"],
                             tuple(AlertType(t) for t in doc["types"]), doc["created_at"], doc["expires_at"])


def _event_document(event: AlertEvent) -> Document:
    return {
        "catalog": event.catalog, "item_id": event.item_id, "type": event.type.value,
        "previous_value": event.previous_value, "new_value": event.new_value, "user_ids": list(event.user_ids),
        "source": event.source.value, "created_at": event.created_at, "release_at": event.release_at,
        "delivery": {"state": DeliveryState.PENDING.value, "attempts": 0, "due_at": event.release_at,
                     "lease_until": NEVER},
    }


def _event(doc: Document) -> AlertEvent:
    return AlertEvent(doc["_id"], doc["catalog"], doc["item_id"], AlertType(doc["type"]), doc["previous_value"],
                      doc["new_value"], tuple(doc["user_ids"]), AlertSource(doc["source"]), doc["created_at"],
                      doc["release_at"])
