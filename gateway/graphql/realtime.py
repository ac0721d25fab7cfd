"""`ShopifySync.realtime`: how close to real time the shop's catalog is, across every gateway process
(figures from the store's inbox, see bulk.webhooks.realtime)."""

from __future__ import annotations

from datetime import datetime

import strawberry

from bulk.webhooks.realtime import RealtimeFigures


@strawberry.type(description="Near-real-time health of a shop's webhook path, across all gateway processes.")
class RealtimeStatus:
    backlog: int = strawberry.field(description="Deliveries accepted (answered 200) and not yet applied.")
    lag_seconds: float = strawberry.field(description="Age of the oldest unapplied delivery; 0 when none.")
    last_applied_at: datetime | None
    applied_total: int = strawberry.field(description="Deliveries applied since the sync was enabled.")
    failed_total: int = strawberry.field(
        description="Deliveries that could not be applied after their retries (each also notified).")
    healthy: bool = strawberry.field(description="False while lagSeconds exceeds REALTIME_LAG_ALERT_SECONDS.")

    @classmethod
    def from_figures(cls, figures: RealtimeFigures) -> RealtimeStatus:
        return cls(backlog=figures.backlog, lag_seconds=figures.lag_seconds, last_applied_at=figures.last_applied_at,
                   applied_total=figures.applied_total, failed_total=figures.failed_total, healthy=figures.healthy)
