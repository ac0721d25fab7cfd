"""Shared pieces of the end-to-end tests: the documents a frontend sends, and polling helpers."""

from __future__ import annotations

import asyncio
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from gql import GraphQLRequest

from gateway.settings import Settings, SmtpSettings
from shopify_emulator import Emulator
from tests.gateway.harness import ADMIN_TOKEN, READ_TOKEN, Running
from tests.gateway.smtp import Inbox

SHOP = "e2e-store.myshopify.com"
SHOP_TOKEN = "shpat_e2e_5ecret_t0ken_do_not_leak"
VARIANTS = 120
TIMEOUT = 30.0
CLIENT_SIDE_LOGGERS = ("gql", "websockets.client", "shopify_emulator", "aiohttp.access", "aiohttp.server",
                       "aiohttp.web")

ENABLE = """
mutation Enable($input: EnableShopifySyncInput!) {
  enableShopifySync(input: $input) { shopDomain catalogName identifier status active errorCode }
}"""
SYNC = """
query Sync($shop: String!) {
  shopifySync(shopDomain: $shop) {
    shopDomain catalogName identifier status active errorCode errorMessage
    lastRun { id status phase objectCount bytesDownloaded fileSize itemsWritten itemsSkipped
              skipped { reason count examples } startedAt finishedAt errorCode errorMessage }
    runs(last: 5) { id status }
  }
}"""
PROGRESS = """
subscription Progress($shop: String!) {
  syncProgress(shopDomain: $shop) { id status phase objectCount bytesDownloaded fileSize itemsWritten
                                    itemsSkipped errorCode }
}"""
ITEMS = """
query Items($catalog: String!, $first: Int, $after: String, $filter: CatalogItemFilter) {
  catalog(name: $catalog) {
    name storeName itemCount storageBytes
    items(first: $first, after: $after, filter: $filter) {
      totalCount
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
      edges { cursor node { id storeName shopifyProductId shopifyVariantId productTitle variantTitle status
                            vendor productType price compareAtPrice inventoryQuantity options optionValues sku } }
    }
  }
}"""
NOTIFICATIONS = """
query Notifications($unread: Boolean) {
  notifications(first: 50, unreadOnly: $unread) {
    id shopDomain level title message createdAt read emailStatus emailError
  }
}"""


@dataclass
class World:
    emulator: Emulator
    inbox: Inbox
    running: Running


def gateway_settings(emulator: Emulator, inbox: Inbox) -> Settings:
    return Settings(
        admin_token=ADMIN_TOKEN,
        read_token=READ_TOKEN,
        shopify_admin_api_url=emulator.admin_api_url_template,
        smtp=SmtpSettings(host="127.0.0.1", port=inbox.port, sender="catalog@example.com",
                          recipients=("ops@example.com",)),
    )


async def enable(running: Running, identifier: str = "SHOPIFY_VARIANT_ID", shop: str = SHOP,
                 token: str = SHOP_TOKEN) -> dict[str, Any]:
    result = await running.query(ENABLE, {"input": {"shopDomain": shop, "accessToken": token,
                                                    "identifier": identifier}})
    return result["enableShopifySync"]


async def wait_finished(running: Running, shop: str = SHOP) -> dict[str, Any]:
    """The shop's sync once its last run has finished and the sync has its final status (polling)."""
    async def poll() -> dict[str, Any]:
        while True:
            sync = (await running.query(SYNC, {"shop": shop}))["shopifySync"]
            # The run is saved finished just before the configuration gets its final status.
            if sync["lastRun"] and sync["lastRun"]["status"] != "RUNNING" and sync["status"] != "IN_PROGRESS":
                return sync
            await asyncio.sleep(0.05)

    return await asyncio.wait_for(poll(), TIMEOUT)


async def wait_notification(running: Running, level: str, title: str | None = None) -> dict[str, Any]:
    """The newest notification of `level` (and `title`) once its email was handled."""
    async def poll() -> dict[str, Any]:
        while True:
            for n in (await running.query(NOTIFICATIONS))["notifications"]:
                if n["level"] == level and title in (None, n["title"]) and n["emailStatus"] != "PENDING":
                    return n
            await asyncio.sleep(0.05)

    return await asyncio.wait_for(poll(), TIMEOUT)


def is_final(snapshot: dict[str, Any]) -> bool:
    """A run's last snapshot: the subscription goes on with the shop's later runs, a client stops here."""
    return bool(snapshot["status"] != "RUNNING")


async def progress_of(live: Any, shop: str = SHOP, runs: int = 1) -> list[dict[str, Any]]:
    """Every syncProgress snapshot up to the final snapshot of the `runs`-th run the subscription shows
    (the subscription itself never completes: it follows the shop's later runs)."""
    request = GraphQLRequest(PROGRESS, variable_values={"shop": shop})
    snapshots: list[dict[str, Any]] = []
    async with aclosing(live.subscribe(request)) as events:
        async for event in events:
            snapshots.append(event["syncProgress"])
            if is_final(snapshots[-1]) and len({s["id"] for s in snapshots}) == runs:
                return snapshots
    raise AssertionError(f"the subscription ended after {snapshots}")


async def all_items(running: Running, catalog: str, page: int = 17, filter: dict | None = None) -> list[dict]:
    nodes: list[dict] = []
    after = None
    while True:
        data = await running.query(ITEMS, {"catalog": catalog, "first": page, "after": after, "filter": filter})
        items = data["catalog"]["items"]
        nodes.extend(edge["node"] for edge in items["edges"])
        assert items["pageInfo"]["hasPreviousPage"] is (after is not None)
        if not items["pageInfo"]["hasNextPage"]:
            assert len(nodes) == items["totalCount"]
            return nodes
        after = items["pageInfo"]["endCursor"]
        assert after == items["edges"][-1]["cursor"]
