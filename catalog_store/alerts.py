"""Back-in-stock and price-drop alerts: the records, and every alert rule once. Pure code, no I/O.

A store compares the item it held with the one that replaced it (`transitions`) only for writes that
landed, and only while the catalog's rules are on and the item has active subscribers; the events it
then stores name the subscribers it consumed (each subscription's type fires once). Prices compare as
exact decimals of the strings Shopify wrote; a null inventory counts as 0 (not tracked: not in stock).
Event ids derive from the write that caused them (`event_id`), so a retried step cannot make a second
event of one change. Delivery of an event (to GraphQL subscribers and to the outbound webhook) waits
until its `release_at`: the catalog's per-minute cap spreads events over later minutes, never drops one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from catalog_store.errors import StoreError
from catalog_store.items import CatalogItem

SUBSCRIPTION_LIFETIME = timedelta(days=90)
DEFAULT_MAX_EVENTS_PER_MINUTE = 1000
MAX_EVENTS_PER_MINUTE = 1_000_000
MAX_THRESHOLD = 1_000_000_000
MAX_USER_ID_LENGTH = 250
DELIVERY_WINDOW = timedelta(hours=24)  # outbound retries stop this long after an event's release
MINUTE = timedelta(minutes=1)


class AlertType(StrEnum):
    BACK_IN_STOCK = "BACK_IN_STOCK"
    PRICE_DROP = "PRICE_DROP"


class AlertSource(StrEnum):
    """The write path that made a change (as events report it)."""

    SYNC = "sync"
    WEBHOOK = "webhook"
    RECONCILE = "reconcile"


class DeliveryState(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"  # given up after DELIVERY_WINDOW


class AlertError(StoreError):
    """An alert request the store refuses; `code` is the API's error code."""

    code = "BAD_USER_INPUT"

    def __init__(self, message: str, fix: str) -> None:
        super().__init__(message, fix=fix)


class InvalidAlertInput(AlertError):
    code = "BAD_USER_INPUT"


class AlertTargetNotFound(AlertError):
    code = "NOT_FOUND"


class ItemInStock(AlertError):
    code = "ITEM_IN_STOCK"


@dataclass(frozen=True, slots=True)
class AlertRules:
    back_in_stock: bool = False
    back_in_stock_threshold: int = 0
    price_drop: bool = False
    price_drop_min_percent: float | None = None
    price_drop_min_amount: str | None = None  # an exact decimal string
    max_events_per_minute: int = DEFAULT_MAX_EVENTS_PER_MINUTE

    @property
    def enabled(self) -> bool:
        return self.back_in_stock or self.price_drop


@dataclass(frozen=True, slots=True)
class AlertSubscription:
    id: str
    catalog: str
    item_id: str
    user_id: str
    types: tuple[AlertType, ...]  # the types not yet notified
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class AlertEvent:
    id: str
    catalog: str
    item_id: str
    type: AlertType
    previous_value: str
    new_value: str
    user_ids: tuple[str, ...]
    source: AlertSource
    created_at: datetime
    release_at: datetime  # when the per-minute cap lets it out (== created_at unless it waited)


@dataclass(frozen=True, slots=True)
class PendingDelivery:
    """An event to POST to the outbound webhook, claimed by one worker until `lease_until`."""

    event: AlertEvent
    attempts: int  # failed attempts so far


@dataclass(frozen=True, slots=True)
class Transition:
    """A qualifying change of one item (before subscribers are looked up)."""

    item_id: str
    variant_id: str
    type: AlertType
    previous_value: str
    new_value: str


@dataclass(slots=True)
class RulesUpdate:
    """The fields of an AlertRulesInput that were given (None: keep the current value); the two
    bounds may also be cleared (`clear_percent`, `clear_amount`)."""

    back_in_stock: bool | None = None
    back_in_stock_threshold: int | None = None
    price_drop: bool | None = None
    price_drop_min_percent: float | None = None
    price_drop_min_amount: str | None = None
    max_events_per_minute: int | None = None
    cleared: set[str] = field(default_factory=set)


def updated_rules(current: AlertRules, update: RulesUpdate) -> AlertRules:
    """`current` with the given fields of `update`, checked. Raises InvalidAlertInput."""
    values = {name: getattr(update, name) for name in (
        "back_in_stock", "back_in_stock_threshold", "price_drop", "price_drop_min_percent",
        "price_drop_min_amount", "max_events_per_minute") if getattr(update, name) is not None}
    for name in update.cleared:
        values[name] = None
    rules = replace(current, **values)
    check_rules(rules)
    if rules.price_drop_min_amount is not None:
        rules = replace(rules, price_drop_min_amount=str(Decimal(rules.price_drop_min_amount)))
    return rules


def check_rules(rules: AlertRules) -> None:
    if not 0 <= rules.back_in_stock_threshold <= MAX_THRESHOLD:
        raise InvalidAlertInput(f"backInStockThreshold must be between 0 and {MAX_THRESHOLD}",
                                fix="Pass the inventory level at or below which an item counts as out of stock.")
    if not 1 <= rules.max_events_per_minute <= MAX_EVENTS_PER_MINUTE:
        raise InvalidAlertInput(f"maxEventsPerMinute must be between 1 and {MAX_EVENTS_PER_MINUTE}",
                                fix="Pass how many events per minute the catalog may release (default 1000).")
    percent = rules.price_drop_min_percent
    if percent is not None and not 0 < percent <= 100:
        raise InvalidAlertInput("priceDropMinPercent must be above 0 and at most 100",
                                fix="Pass a percentage such as 10 (a drop of at least 10 %), or null for no bound.")
    amount = rules.price_drop_min_amount
    if amount is not None:
        value = _decimal(amount)
        if value is None or not value.is_finite() or value <= 0:
            raise InvalidAlertInput("priceDropMinAmount must be a positive decimal",
                                    fix="Pass an amount such as \"5.00\", or null for no bound.")


def check_subscription_input(item_id: str, user_id: str, types: tuple[AlertType, ...]) -> None:
    if not types:
        raise InvalidAlertInput("types is empty", fix="Pass BACK_IN_STOCK, PRICE_DROP or both.")
    if not user_id.strip() or len(user_id) > MAX_USER_ID_LENGTH:
        raise InvalidAlertInput(f"userId must be 1 to {MAX_USER_ID_LENGTH} characters",
                                fix="Pass the id your messaging system knows the user by.")
    if not item_id or len(item_id) > 250:
        raise InvalidAlertInput("itemId must be 1 to 250 characters", fix="Pass an item id of the catalog.")


def refuse_in_stock(item: CatalogItem, rules: AlertRules, types: tuple[AlertType, ...]) -> None:
    """A back-in-stock subscription is accepted only while the item is at or below the threshold."""
    quantity = item.inventory_quantity or 0
    if AlertType.BACK_IN_STOCK in types and quantity > rules.back_in_stock_threshold:
        raise ItemInStock(
            f"item {item.id!r} is in stock ({quantity} > threshold {rules.back_in_stock_threshold})",
            fix="Subscribe to BACK_IN_STOCK only for items that are out of stock (PRICE_DROP is always accepted).",
        )


def transitions(
    rules: AlertRules, previous_price: str, previous_quantity: int | None, new: CatalogItem
) -> list[Transition]:
    """The qualifying changes from the item a write replaced (its price and quantity) to `new`.
    An inserted item has none (the caller skips it): nobody can have subscribed to it."""
    found: list[Transition] = []
    variant_id = new.shopify_variant_id
    if rules.back_in_stock:
        before, after = previous_quantity or 0, new.inventory_quantity or 0
        threshold = rules.back_in_stock_threshold
        if before <= threshold < after:
            found.append(Transition(new.id, variant_id, AlertType.BACK_IN_STOCK, str(before), str(after)))
    if rules.price_drop and previous_price != new.price and price_drop_qualifies(rules, previous_price, new.price):
        found.append(Transition(new.id, variant_id, AlertType.PRICE_DROP, previous_price, new.price))
    return found


def price_drop_qualifies(rules: AlertRules, old_price: str, new_price: str) -> bool:
    """A drop meeting either bound (any drop when neither is set), in exact decimals."""
    old, new = _decimal(old_price), _decimal(new_price)
    if old is None or new is None or not new < old:
        return False
    drop = old - new
    percent, amount = rules.price_drop_min_percent, rules.price_drop_min_amount
    if percent is None and amount is None:
        return True
    if amount is not None and drop >= Decimal(amount):
        return True
    return percent is not None and old > 0 and drop * 100 >= Decimal(repr(percent)) * old


def default_source(source: AlertSource | None, run_id: str | None) -> AlertSource:
    """A write with a run id comes from a full sync, one without from a webhook, unless told."""
    if source is not None:
        return source
    return AlertSource.SYNC if run_id is not None else AlertSource.WEBHOOK


def event_id(catalog: str, variant_id: str, revision: str, type_: AlertType) -> str:
    """The id of the event of one write (`revision`: a token unique to the write) and type."""
    key = f"{catalog}\x00{variant_id}\x00{revision}\x00{type_.value}".encode()
    return hashlib.blake2b(key, digest_size=12).hexdigest()


def minute_of(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


def release_time(now: datetime, minute: datetime) -> datetime:
    """When an event counted in `minute` is released: now, or the start of that later minute."""
    return now if minute <= now else minute


def retry_delay(attempts: int) -> timedelta:
    """Backoff after `attempts` failed outbound attempts: 1 s doubling, at most 10 minutes."""
    return timedelta(seconds=min(600.0, 2.0 ** max(0, attempts - 1)))


def _decimal(value: str) -> Decimal | None:
    try:
        return Decimal(value)
    except (InvalidOperation, ValueError, TypeError):
        return None
