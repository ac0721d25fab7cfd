"""GraphQL of alerts: the types, the Catalog fields (rules, subscriptions, events), the mutations
and the `itemAlerts` subscription. Names are fixed (frontends depend on them)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime
from decimal import Decimal

import strawberry
from strawberry.types import Info

from catalog_store import alerts as model
from catalog_store.store import MAX_PAGE_SIZE
from gateway.errors import BadUserInput, NotFoundError
from gateway.graphql.alerts_live import watch_alerts
from gateway.graphql.context import Context

AlertType = strawberry.enum(model.AlertType, description="What an alert is about.")
DEFAULT_PAGE_SIZE = 50


@strawberry.type(description="A catalog's alert rules (all off until setAlertRules turns them on).")
class AlertRules:
    back_in_stock: bool
    back_in_stock_threshold: int = strawberry.field(
        description="Fires when inventory goes from at or below this to above it.")
    price_drop: bool
    price_drop_min_percent: float | None = strawberry.field(description="Either bound met fires (none: any drop).")
    price_drop_min_amount: Decimal | None
    max_events_per_minute: int = strawberry.field(
        description="Per catalog; events beyond it wait for a later minute, none is dropped.")

    @classmethod
    def from_model(cls, rules: model.AlertRules) -> AlertRules:
        amount = rules.price_drop_min_amount
        return cls(back_in_stock=rules.back_in_stock, back_in_stock_threshold=rules.back_in_stock_threshold,
                   price_drop=rules.price_drop, price_drop_min_percent=rules.price_drop_min_percent,
                   price_drop_min_amount=None if amount is None else Decimal(amount),
                   max_events_per_minute=rules.max_events_per_minute)


@strawberry.input(description="Fields left out keep their value; a bound set to null is removed.")
class AlertRulesInput:
    back_in_stock: bool | None = strawberry.UNSET
    back_in_stock_threshold: int | None = strawberry.UNSET
    price_drop: bool | None = strawberry.UNSET
    price_drop_min_percent: float | None = strawberry.UNSET
    price_drop_min_amount: Decimal | None = strawberry.UNSET
    max_events_per_minute: int | None = strawberry.UNSET

    def to_update(self) -> model.RulesUpdate:
        update = model.RulesUpdate()
        for name in ("back_in_stock", "back_in_stock_threshold", "price_drop", "max_events_per_minute"):
            value = getattr(self, name)
            if value is None:
                raise BadUserInput(f"`{name}` cannot be null", fix="Leave the field out to keep its value.")
            if value is not strawberry.UNSET:
                setattr(update, name, value)
        for name in ("price_drop_min_percent", "price_drop_min_amount"):
            value = getattr(self, name)
            if value is None:
                update.cleared.add(name)
            elif value is not strawberry.UNSET:
                setattr(update, name, str(value) if isinstance(value, Decimal) else value)
        return update


@strawberry.type(description="A user's subscription to an item's alerts; expires 90 days after creation.")
class AlertSubscription:
    id: strawberry.ID
    catalog_name: str
    item_id: str
    user_id: str
    types: list[AlertType] = strawberry.field(description="The types not yet notified.")  # type: ignore[valid-type]
    created_at: datetime
    expires_at: datetime

    @classmethod
    def from_model(cls, sub: model.AlertSubscription) -> AlertSubscription:
        return cls(id=strawberry.ID(sub.id), catalog_name=sub.catalog, item_id=sub.item_id, user_id=sub.user_id,
                   types=list(sub.types), created_at=sub.created_at, expires_at=sub.expires_at)


@strawberry.type(description="A qualifying change of an item, with the subscribers it notified.")
class AlertEvent:
    id: strawberry.ID
    catalog_name: str
    item_id: str
    type: AlertType  # type: ignore[valid-type]
    previous_value: str = strawberry.field(description="A quantity, or a price exactly as Shopify wrote it.")
    new_value: str
    user_ids: list[str]
    source: str = strawberry.field(description="sync | webhook | reconcile")
    created_at: datetime

    @classmethod
    def from_model(cls, event: model.AlertEvent) -> AlertEvent:
        return cls(id=strawberry.ID(event.id), catalog_name=event.catalog, item_id=event.item_id, type=event.type,
                   previous_value=event.previous_value, new_value=event.new_value, user_ids=list(event.user_ids),
                   source=event.source.value, created_at=event.created_at)


@strawberry.input
class SubscribeToItemAlertsInput:
    catalog_name: str
    item_id: str
    user_id: str
    types: list[AlertType]  # type: ignore[valid-type]


def _first(first: int | None) -> int:
    first = DEFAULT_PAGE_SIZE if first is None else first
    if first < 0 or first > MAX_PAGE_SIZE:
        raise BadUserInput(f"`first` must be between 0 and {MAX_PAGE_SIZE} (got {first})")
    return first


async def _require_catalog(info: Info[Context, None], name: str) -> None:
    if await info.context.loaders.catalogs.load(name) is None:
        raise NotFoundError(f"catalog {name[:300]!r} does not exist", fix="Use a name listed by `catalogs`.")


# -- the Catalog fields (types.Catalog delegates to these) -------------------------------------


async def catalog_alert_rules(info: Info[Context, None], catalog: str) -> AlertRules:
    return AlertRules.from_model(await info.context.services.store.get_alert_rules(catalog))


async def catalog_alert_subscriptions(
    info: Info[Context, None], catalog: str, first: int | None, item_id: str | None, user_id: str | None
) -> list[AlertSubscription]:
    found = await info.context.services.store.list_alert_subscriptions(
        catalog, first=_first(first), item_id=item_id, user_id=user_id)
    return [AlertSubscription.from_model(s) for s in found]


async def catalog_alert_events(
    info: Info[Context, None], catalog: str, first: int | None, type: model.AlertType | None
) -> list[AlertEvent]:
    found = await info.context.services.store.list_alert_events(catalog, first=_first(first), type=type)
    return [AlertEvent.from_model(e) for e in found]


@strawberry.type
class AlertMutations:
    @strawberry.mutation(description="Change a catalog's alert rules (fields left out keep their value).")
    async def set_alert_rules(self, info: Info[Context, None], catalog_name: str, rules: AlertRulesInput) -> AlertRules:
        info.context.require_admin("setAlertRules")
        store = info.context.services.store
        await _require_catalog(info, catalog_name)
        updated = model.updated_rules(await store.get_alert_rules(catalog_name), rules.to_update())
        return AlertRules.from_model(await store.set_alert_rules(catalog_name, updated))

    @strawberry.mutation(description="Subscribe a user to an item's alerts (ITEM_IN_STOCK: BACK_IN_STOCK "
                         "needs the item at or below the threshold).")
    async def subscribe_to_item_alerts(
        self, info: Info[Context, None], input: SubscribeToItemAlertsInput
    ) -> AlertSubscription:
        info.context.require_admin("subscribeToItemAlerts")
        subscription = await info.context.services.store.subscribe_to_alerts(
            input.catalog_name, input.item_id, input.user_id, tuple(model.AlertType(t) for t in input.types))
        return AlertSubscription.from_model(subscription)

    @strawberry.mutation(description="End a subscription; false when it was unknown, consumed or expired.")
    async def unsubscribe_from_item_alerts(self, info: Info[Context, None], id: strawberry.ID) -> bool:
        info.context.require_admin("unsubscribeFromItemAlerts")
        return await info.context.services.store.unsubscribe_from_alerts(str(id))


@strawberry.type
class AlertSubscriptions:
    @strawberry.subscription(description="Each alert event of the catalog as it is released (any process).")
    async def item_alerts(self, info: Info[Context, None], catalog_name: str) -> AsyncGenerator[AlertEvent, None]:
        await _require_catalog(info, catalog_name)
        services = info.context.services
        async for event in watch_alerts(services.store, catalog_name, services.live.store_poll_interval):
            yield AlertEvent.from_model(event)
