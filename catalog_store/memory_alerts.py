"""Alerts of the in-memory store: rules, subscriptions, events and their outbound deliveries in dicts.

Every method runs without awaiting, so each is atomic on the event loop (the memory store serves
one process): a subscription consumed by one event cannot be named by another. Expired
subscriptions are skipped by every read and forgotten by `sweep_expired` (on a subscribe, at most once
a minute).
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

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
from catalog_store.filters import page_size
from catalog_store.items import CatalogItem

ItemLookup = Callable[[str, str], CatalogItem | None]  # (catalog, item id) -> item
Landed = tuple[CatalogItem, CatalogItem]  # (the item replaced, the item that replaced it)
SWEEP_EVERY = timedelta(minutes=1)  # expired subscriptions are forgotten at most this often (reads skip them)


@dataclass(slots=True)
class _Delivery:
    state: DeliveryState
    attempts: int
    due_at: datetime
    lease_until: datetime | None
    last_error: str | None = None


class MemoryAlerts:
    """The alert records of a MemoryCatalogStore. `now` is the store's clock (UTC milliseconds)."""

    def __init__(self, now: Callable[[], datetime], item: ItemLookup, exists: Callable[[str], bool]) -> None:
        self._now = now
        self._item = item
        self._exists = exists
        self._rules: dict[str, AlertRules] = {}
        self._subscriptions: dict[str, AlertSubscription] = {}
        self._by_item: dict[str, dict[str, set[str]]] = {}  # catalog -> item id -> subscription ids
        self._events: dict[str, list[AlertEvent]] = {}  # per catalog, in creation order
        self._deliveries: dict[str, _Delivery] = {}
        self._event_by_id: dict[str, AlertEvent] = {}
        self._minutes: dict[tuple[str, datetime], int] = {}
        self._revisions = itertools.count()
        self._swept_at: datetime | None = None

    # -- rules -----------------------------------------------------------------------------

    def rules(self, catalog: str) -> AlertRules:
        return self._rules.get(catalog, AlertRules())

    def set_rules(self, catalog: str, rules: AlertRules) -> AlertRules:
        self._require_catalog(catalog)
        self._rules[catalog] = rules
        return rules

    # -- subscriptions ---------------------------------------------------------------------

    def subscribe(self, catalog: str, item_id: str, user_id: str, types: tuple[AlertType, ...]) -> AlertSubscription:
        check_subscription_input(item_id, user_id, types)
        self._require_catalog(catalog)
        item = self._item(catalog, item_id)
        if item is None:
            raise AlertTargetNotFound(f"catalog {catalog!r} has no item {item_id!r}",
                                      fix="Use an item id listed by Catalog.items.")
        refuse_in_stock(item, self.rules(catalog), types)
        now = self._now()
        if self._swept_at is None or now - self._swept_at >= SWEEP_EVERY:
            self.sweep_expired()
            self._swept_at = now
        for existing in self._active(catalog, item_id):
            if existing.user_id == user_id:  # one active subscription per (user, item): add the types
                merged = replace(existing, types=tuple(dict.fromkeys(existing.types + types)))
                self._subscriptions[merged.id] = merged
                return merged
        subscription = AlertSubscription(secrets.token_hex(12), catalog, item_id, user_id,
                                         tuple(dict.fromkeys(types)), now, now + SUBSCRIPTION_LIFETIME)
        self._subscriptions[subscription.id] = subscription
        self._by_item.setdefault(catalog, {}).setdefault(item_id, set()).add(subscription.id)
        return subscription

    def unsubscribe(self, subscription_id: str) -> bool:
        subscription = self._subscriptions.pop(subscription_id, None)
        if subscription is None:
            return False
        self._unindex(subscription)
        return subscription.expires_at > self._now()

    def subscriptions(self, catalog: str, *, first: int, item_id: str | None, user_id: str | None
                      ) -> list[AlertSubscription]:
        now = self._now()
        found = [s for s in self._subscriptions.values()
                 if s.catalog == catalog and s.expires_at > now and s.types
                 and (item_id is None or s.item_id == item_id) and (user_id is None or s.user_id == user_id)]
        found.sort(key=lambda s: (s.created_at, s.id))
        return found[:first]

    def count_subscriptions(self, catalog: str) -> int:
        now = self._now()
        return sum(1 for s in self._subscriptions.values() if s.catalog == catalog and s.expires_at > now and s.types)

    def sweep_expired(self) -> int:
        now = self._now()
        doomed = [s for s in self._subscriptions.values() if s.expires_at <= now or not s.types]
        for subscription in doomed:
            del self._subscriptions[subscription.id]
            self._unindex(subscription)
        return len(doomed)

    def end_item_subscriptions(self, catalog: str, item_ids: Sequence[str]) -> None:
        """Items deleted from the catalog end their subscriptions."""
        for item_id in item_ids:
            for subscription_id in self._by_item.get(catalog, {}).pop(item_id, set()):
                self._subscriptions.pop(subscription_id, None)
        if not self._by_item.get(catalog, True):
            del self._by_item[catalog]

    def end_orphans(self) -> int:
        ended = 0
        for catalog, items in list(self._by_item.items()):
            missing = [item_id for item_id in items if self._item(catalog, item_id) is None]
            ended += sum(len(items[item_id]) for item_id in missing)
            self.end_item_subscriptions(catalog, missing)
        return ended

    def delete_catalog(self, catalog: str) -> None:
        self._rules.pop(catalog, None)
        for subscription in [s for s in self._subscriptions.values() if s.catalog == catalog]:
            del self._subscriptions[subscription.id]
            self._unindex(subscription)
        for event in self._events.pop(catalog, []):
            self._deliveries.pop(event.id, None)
            self._event_by_id.pop(event.id, None)
        self._minutes = {key: n for key, n in self._minutes.items() if key[0] != catalog}

    # -- detection (called by the store's write path for the writes that landed) -----------

    def watching(self, catalog: str) -> AlertRules | None:
        """The catalog's rules when a write could fire an event (rules on, someone subscribed)."""
        rules = self._rules.get(catalog)
        if rules is None or not rules.enabled or not self._by_item.get(catalog):
            return None
        return rules

    def on_landed(self, catalog: str, rules: AlertRules, landed: Sequence[Landed], source: AlertSource) -> list[AlertEvent]:
        created: list[AlertEvent] = []
        subscribed = self._by_item.get(catalog, {})
        for previous, new in landed:
            if new.id not in subscribed:
                continue
            changes = transitions(rules, previous.price, previous.inventory_quantity, new)
            if not changes:
                continue
            revision = f"m{next(self._revisions)}"
            for change in changes:
                users = self._consume(catalog, change.item_id, change.type)
                if not users:
                    continue
                now = self._now()
                event = AlertEvent(event_id(catalog, change.variant_id, revision, change.type), catalog,
                                   change.item_id, change.type, change.previous_value, change.new_value,
                                   tuple(users), source, now, self._release(catalog, rules, now))
                self._events.setdefault(catalog, []).append(event)
                self._event_by_id[event.id] = event
                self._deliveries[event.id] = _Delivery(DeliveryState.PENDING, 0, event.release_at, None)
                created.append(event)
        return created

    def _consume(self, catalog: str, item_id: str, type_: AlertType) -> list[str]:
        users: list[str] = []
        for subscription in self._active(catalog, item_id):
            if type_ in subscription.types:
                remaining = tuple(t for t in subscription.types if t != type_)
                users.append(subscription.user_id)
                if remaining:
                    self._subscriptions[subscription.id] = replace(subscription, types=remaining)
                else:
                    del self._subscriptions[subscription.id]
                    self._unindex(subscription)
        return sorted(users)

    def _release(self, catalog: str, rules: AlertRules, now: datetime) -> datetime:
        minute = minute_of(now)
        while self._minutes.get((catalog, minute), 0) >= rules.max_events_per_minute:
            minute += MINUTE
        self._minutes[(catalog, minute)] = self._minutes.get((catalog, minute), 0) + 1
        if len(self._minutes) > 10_000:  # forget the minutes long past
            self._minutes = {k: n for k, n in self._minutes.items() if k[1] >= minute_of(now) - MINUTE}
        return release_time(now, minute)

    # -- events ----------------------------------------------------------------------------

    def events(self, catalog: str, *, first: int, type_: AlertType | None) -> list[AlertEvent]:
        found = [e for e in reversed(self._events.get(catalog, [])) if type_ is None or e.type == type_]
        return found[:first]

    def released(self, catalog: str, since: datetime, until: datetime) -> list[AlertEvent]:
        """Events released in [since, until], in release order."""
        found = [e for e in self._events.get(catalog, []) if since <= e.release_at <= until]
        found.sort(key=lambda e: (e.release_at, e.id))
        return found

    # -- outbound deliveries ---------------------------------------------------------------

    def claim_deliveries(self, limit: int, lease: timedelta) -> list[PendingDelivery]:
        now = self._now()
        due = [(d.due_at, event_id_) for event_id_, d in self._deliveries.items()
               if d.state is DeliveryState.PENDING and d.due_at <= now
               and (d.lease_until is None or d.lease_until <= now)]
        due.sort()
        claimed: list[PendingDelivery] = []
        for _, event_id_ in due[:limit]:
            delivery = self._deliveries[event_id_]
            delivery.lease_until = now + lease
            claimed.append(PendingDelivery(self._event_by_id[event_id_], delivery.attempts))
        return claimed

    def finish_delivery(self, event_id_: str, *, delivered: bool, retry_at: datetime | None, error: str | None
                        ) -> DeliveryState | None:
        delivery = self._deliveries.get(event_id_)
        if delivery is None:
            return None
        if delivered:
            delivery.state = DeliveryState.DELIVERED
        else:
            delivery.attempts += 1
            delivery.last_error = error
            event = self._event_by_id[event_id_]
            if retry_at is None or retry_at > event.release_at + DELIVERY_WINDOW:
                delivery.state = DeliveryState.FAILED
            else:
                delivery.due_at = retry_at
        delivery.lease_until = None
        return delivery.state

    def delivery_state(self, event_id_: str) -> tuple[DeliveryState, int] | None:
        delivery = self._deliveries.get(event_id_)
        return None if delivery is None else (delivery.state, delivery.attempts)

    # -- helpers ---------------------------------------------------------------------------

    def _active(self, catalog: str, item_id: str) -> list[AlertSubscription]:
        now = self._now()
        found = [self._subscriptions[i] for i in self._by_item.get(catalog, {}).get(item_id, ())]
        return sorted((s for s in found if s.expires_at > now and s.types), key=lambda s: (s.created_at, s.id))

    def _unindex(self, subscription: AlertSubscription) -> None:
        items = self._by_item.get(subscription.catalog, {})
        ids = items.get(subscription.item_id)
        if ids is not None:
            ids.discard(subscription.id)
            if not ids:
                del items[subscription.item_id]
        if not items:
            self._by_item.pop(subscription.catalog, None)

    def _require_catalog(self, catalog: str) -> None:
        if not self._exists(catalog):
            raise AlertTargetNotFound(f"catalog {catalog!r} does not exist",
                                      fix="Use a catalog name listed by `catalogs` (shopify_<shop>).")


class MemoryAlertsApi:
    """The alert methods of the CatalogStore protocol for a store holding a MemoryAlerts."""

    alerts: MemoryAlerts

    async def get_alert_rules(self, catalog: str) -> AlertRules:
        return self.alerts.rules(catalog)

    async def set_alert_rules(self, catalog: str, rules: AlertRules) -> AlertRules:
        return self.alerts.set_rules(catalog, rules)

    async def subscribe_to_alerts(
        self, catalog: str, item_id: str, user_id: str, types: tuple[AlertType, ...]
    ) -> AlertSubscription:
        return self.alerts.subscribe(catalog, item_id, user_id, types)

    async def unsubscribe_from_alerts(self, subscription_id: str) -> bool:
        return self.alerts.unsubscribe(subscription_id)

    async def list_alert_subscriptions(
        self, catalog: str, *, first: int = 50, item_id: str | None = None, user_id: str | None = None
    ) -> list[AlertSubscription]:
        return self.alerts.subscriptions(catalog, first=page_size(first), item_id=item_id, user_id=user_id)

    async def count_alert_subscriptions(self, catalog: str) -> int:
        return self.alerts.count_subscriptions(catalog)

    async def list_alert_events(
        self, catalog: str, *, first: int = 50, type: AlertType | None = None
    ) -> list[AlertEvent]:
        return self.alerts.events(catalog, first=page_size(first), type_=type)

    async def released_alert_events(self, catalog: str, since: datetime, until: datetime) -> list[AlertEvent]:
        return self.alerts.released(catalog, since, until)

    async def claim_alert_deliveries(self, *, limit: int, lease_seconds: float) -> list[PendingDelivery]:
        return self.alerts.claim_deliveries(limit, timedelta(seconds=lease_seconds))

    async def finish_alert_delivery(
        self, event_id: str, *, delivered: bool, retry_at: datetime | None = None, error: str | None = None
    ) -> DeliveryState | None:
        return self.alerts.finish_delivery(event_id, delivered=delivered, retry_at=retry_at, error=error)

    async def recover_alert_events(self, older_than_seconds: float) -> int:
        """Nothing to recover: item writes and their events happen in one step, and a stopped process
        loses both."""
        return 0

    async def end_orphaned_alert_subscriptions(self) -> int:
        return self.alerts.end_orphans()
