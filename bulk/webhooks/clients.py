"""One Admin API client per shop for the webhook path, kept between deliveries; every call draws on the
shop's scheduler of the process-wide registry (shared with the full sync's bulk polling), webhook
reads at their priority and reconciliation at its own. A new access token gets a new client."""

from __future__ import annotations

from collections.abc import Callable

import aiohttp

from bulk.shopify.budget import BudgetRegistry
from bulk.shopify.client import ShopifyClient, client_for
from bulk.webhooks.link import SyncLimits
from catalog_store.models import SyncConfig

ClientFactory = Callable[[SyncConfig], ShopifyClient]


class ShopClients:
    """The webhook path's Admin API clients, by shop. `close()` after use."""

    def __init__(self, settings: SyncLimits, factory: ClientFactory | None = None,
                 budgets: BudgetRegistry | None = None) -> None:
        self._settings = settings
        self.budgets = budgets or BudgetRegistry()
        self._factory = factory
        self._clients: dict[str, tuple[str, ShopifyClient]] = {}
        self._session: aiohttp.ClientSession | None = None

    async def client(self, config: SyncConfig) -> ShopifyClient:
        cached = self._clients.pop(config.shop_domain, None)
        if cached is not None and cached[0] == config.access_token:
            self._clients[config.shop_domain] = cached
            return cached[1]
        if cached is not None:
            await cached[1].close()
        if self._factory is not None:
            client = self._factory(config)
        else:
            if self._session is None:
                self._session = aiohttp.ClientSession()
            client = client_for(config.shop_domain, config.access_token, self._settings, self._session,
                                budget=self.budgets.for_shop(config.shop_domain))
        self._clients[config.shop_domain] = (config.access_token, client)
        return client

    async def close(self) -> None:
        for _, client in self._clients.values():
            await client.close()
        self._clients.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None
