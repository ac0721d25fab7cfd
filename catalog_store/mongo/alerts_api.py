"""The alert methods of the CatalogStore protocol on MongoDB, delegating to catalog_store.mongo.alerts."""

from __future__ import annotations

from datetime import datetime, timedelta

from catalog_store.alerts import AlertEvent, AlertRules, AlertSubscription, AlertType, DeliveryState, PendingDelivery
from catalog_store.errors import StoreError
from catalog_store.filters import page_size
from catalog_store.mongo.alerts import MongoAlerts


class MongoAlertsApi:
    """The alert methods of the CatalogStore protocol for a store holding a MongoAlerts (`alerts`)."""

    _alerts: MongoAlerts | None  # set by the store's start()

    @property
    def alerts(self) -> MongoAlerts:
        if self._alerts is None:
            raise StoreError("the MongoDB store is not started", fix="Call and await start() first.")
        return self._alerts

    async def get_alert_rules(self, catalog: str) -> AlertRules:
        return await self.alerts.rules(catalog)

    async def set_alert_rules(self, catalog: str, rules: AlertRules) -> AlertRules:
        return await self.alerts.set_rules(catalog, rules)

    async def subscribe_to_alerts(
        self, catalog: str, item_id: str, user_id: str, types: tuple[AlertType, ...]
    ) -> AlertSubscription:
        return await self.alerts.subscribe(catalog, item_id, user_id, types)

    async def unsubscribe_from_alerts(self, subscription_id: str) -> bool:
        return await self.alerts.unsubscribe(subscription_id)

    async def list_alert_subscriptions(
        self, catalog: str, *, first: int = 50, item_id: str | None = None, user_id: str | None = None
    ) -> list[AlertSubscription]:
        return await self.alerts.subscriptions(catalog, first=page_size(first), item_id=item_id, user_id=user_id)

    async def count_alert_subscriptions(self, catalog: str) -> int:
        return await self.alerts.count_subscriptions(catalog)

    async def list_alert_events(
        self, catalog: str, *, first: int = 50, type: AlertType | None = None
    ) -> list[AlertEvent]:
        return await self.alerts.events(catalog, first=page_size(first), type_=type)

    async def released_alert_events(self, catalog: str, since: datetime, until: datetime) -> list[AlertEvent]:
        return await self.alerts.released(catalog, since, until)

    async def claim_alert_deliveries(self, *, limit: int, lease_seconds: float) -> list[PendingDelivery]:
        return await self.alerts.claim_deliveries(limit, timedelta(seconds=lease_seconds))

    async def finish_alert_delivery(
        self, event_id: str, *, delivered: bool, retry_at: datetime | None = None, error: str | None = None
    ) -> DeliveryState | None:
        return await self.alerts.finish_delivery(event_id, delivered=delivered, retry_at=retry_at, error=error)

    async def recover_alert_events(self, older_than_seconds: float) -> int:
        return await self.alerts.recover(timedelta(seconds=older_than_seconds))

    async def end_orphaned_alert_subscriptions(self) -> int:
        return await self.alerts.end_orphans()
