"""End to end: every sync error code (SERVER_ERROR, DUPLICATE_SKU, CATALOG_LIMIT_EXCEEDED, ACCESS_DENIED)
reaches the API, the notifications and the mailbox."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from catalog_store.memory import MemoryCatalogStore
from gateway.settings import Settings
from shopify_emulator import Emulator
from tests.gateway.e2e import (
    NOTIFICATIONS,
    SHOP,
    SHOP_TOKEN,
    TIMEOUT,
    VARIANTS,
    enable,
    gateway_settings,
    wait_finished,
    wait_notification,
)
from tests.gateway.harness import ADMIN_TOKEN, serve_gateway
from tests.gateway.smtp import smtp_server


def _server_error(emulator: Emulator) -> str:
    emulator.faults.fail_bulk("INTERNAL_SERVER_ERROR", times=None, shop=SHOP)
    return "SHOPIFY_VARIANT_ID"


def _duplicate_sku(emulator: Emulator) -> str:
    shop = emulator.shop(SHOP)
    first, second = list(shop.variant_ids())[:2]
    shop.set_sku(first, "DUP-SKU-1")
    shop.set_sku(second, "DUP-SKU-1")
    return "SKU"


def _access_denied(emulator: Emulator) -> str:
    emulator.faults.revoke_token(SHOP)
    return "SHOPIFY_VARIANT_ID"


@pytest.mark.parametrize(
    ("code", "arrange", "limit"),
    [
        ("SERVER_ERROR", _server_error, None),
        ("DUPLICATE_SKU", _duplicate_sku, None),
        ("CATALOG_LIMIT_EXCEEDED", lambda emulator: "SHOPIFY_VARIANT_ID", 30_000),
        ("ACCESS_DENIED", _access_denied, None),
    ],
)
async def test_sync_errors_reach_the_api_notifications_and_email(
    emulator: Emulator, code: str, arrange: Any, limit: int | None
) -> None:
    identifier = arrange(emulator)
    async with smtp_server() as inbox:
        overrides = {"storage_limit_bytes": limit} if limit else {}
        async with serve_gateway(MemoryCatalogStore(), settings=gateway_settings(emulator, inbox),
                                 sync_overrides=overrides) as running:
            await enable(running, identifier)
            sync = await wait_finished(running)
            assert sync["status"] == "ERROR"
            assert sync["errorCode"] == code
            assert sync["lastRun"]["status"] == "FAILED" and sync["lastRun"]["errorCode"] == code
            assert sync["errorMessage"]
            if code == "DUPLICATE_SKU":
                assert "DUP-SKU-1" in sync["errorMessage"]
            if code == "CATALOG_LIMIT_EXCEEDED":
                assert sync["active"] is False
                assert 0 < sync["lastRun"]["itemsWritten"] < VARIANTS
            error = await wait_notification(running, "error")
            stored = (await running.query(NOTIFICATIONS))["notifications"]
            assert "How to fix" in error["message"]
            assert error["emailStatus"] == "SENT"
            await asyncio.wait_for(inbox.arrived.wait(), TIMEOUT)
            assert any(error["title"] in s for s in inbox.subjects())
            assert SHOP_TOKEN not in str(stored)


async def test_email_not_configured_is_recorded(emulator: Emulator) -> None:
    settings = Settings(admin_token=ADMIN_TOKEN, shopify_admin_api_url=emulator.admin_api_url_template)
    async with serve_gateway(MemoryCatalogStore(), settings=settings) as running:
        await enable(running)
        await wait_finished(running)
        complete = await wait_notification(running, "success", "Shopify product sync complete")
        assert complete["emailStatus"] == "NOT_SENT" and "SMTP" in complete["emailError"]


# -- mutations' own errors -------------------------------------------------------------------------
