"""The shop's webhook subscriptions: registered by a full sync, deleted by a disable.

Apart from the service because it is the one place that speaks to Shopify about subscriptions.
"""

from __future__ import annotations

import functools
import logging

from bulk.errors import ShopifyError, ShopifyUserError
from bulk.full_sync.reporter import RunReporter
from bulk.mapping.payloads import TOPICS
from bulk.shopify.client import ShopifyClient
from catalog_store.models import SyncConfig

log = logging.getLogger("bulk.full_sync.service")


def _add_webhook_id(stored: SyncConfig, webhook_id: str) -> None:
    stored.webhook_ids.append(webhook_id)


async def register_webhooks(config: SyncConfig, client: ShopifyClient, reporter: RunReporter,
                            public_url: str | None) -> None:
    """Subscribe to every topic once per shop (none without a public URL Shopify can call)."""
    if not public_url or config.webhook_ids:
        return
    callback = public_url.rstrip("/") + "/webhooks/shopify"
    for topic in TOPICS:
        try:
            webhook_id = await client.create_webhook(topic, callback)
        except ShopifyUserError as exc:  # refused (an address already taken is adopted by the client)
            log.warning("webhook %s for %s not created: %s", topic, config.shop_domain, exc)
            continue
        config.webhook_ids.append(webhook_id)
        # recorded at once, so that a disable during registration deletes what was created
        await reporter.update_config(functools.partial(_add_webhook_id, webhook_id=webhook_id))


async def delete_webhooks(config: SyncConfig, client: ShopifyClient) -> list[str]:
    """Delete the shop's subscriptions; returns the problems (one already gone is none)."""
    problems: list[str] = []
    for webhook_id in config.webhook_ids:
        try:
            await client.delete_webhook(webhook_id)
        except ShopifyUserError as exc:
            if "not exist" not in str(exc).lower():
                problems.append(f"{webhook_id}: {exc}")
        except ShopifyError as exc:
            problems.append(f"{webhook_id}: {exc}")
    return problems
