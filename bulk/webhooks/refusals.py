"""A signed webhook whose payload was refused (`InvalidWebhookPayload`) tells the merchant once per
product: Shopify retries a refused delivery, and a product edited often sends many, so the notices
are deduplicated per (shop, topic, what the payload is about) in a bounded LRU of this process."""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Final

from bulk.errors import InvalidWebhookPayload
from bulk.mapping.payload_schemas import subject_id
from bulk.notifications import Notifier
from bulk.webhooks.delivery import WebhookDelivery
from catalog_store.models import NotificationLevel, SyncConfig

log = logging.getLogger(__name__)

REMEMBERED: Final = 1000


class RefusalNotices:
    """Error notifications for refused payloads, at most one per (shop, topic, subject)."""

    def __init__(self, notifier: Notifier, size: int = REMEMBERED) -> None:
        self._notifier = notifier
        self._size = size
        self._notified: OrderedDict[tuple[str, str, str | None], None] = OrderedDict()

    async def refused(self, config: SyncConfig, delivery: WebhookDelivery, error: InvalidWebhookPayload) -> bool:
        """Notify the shop of `error` unless this subject was notified already; True when notified."""
        subject = subject_id(delivery.topic, delivery.payload)
        key = (config.shop_domain, delivery.topic.split("/", 1)[0], subject)
        if key in self._notified:
            self._notified.move_to_end(key)
            return False
        self._notified[key] = None
        if len(self._notified) > self._size:
            self._notified.popitem(last=False)
        what = {"inventory_levels/update": "inventory item", "bulk_operations/finish": "bulk operation"}.get(
            delivery.topic, "product")
        try:
            await self._notifier.notify(
                config.shop_domain,
                NotificationLevel.ERROR,
                "Shopify update not applied: invalid webhook payload",
                f"A signed {delivery.topic} webhook (id {delivery.webhook_id or 'unknown'}) for {what} "
                f"{subject or 'unknown'} was refused and changed nothing in catalog {config.catalog_name}: "
                f"{error.reason}\nHow to fix: {error.fix} Further refusals for this {what} are only logged.",
            )
        except Exception as exc:  # the refusal itself is logged by the caller; a notice must not hide it
            log.warning("could not notify %s of refused webhook %s: %s", config.shop_domain, delivery.webhook_id, exc)
        return True
