"""`catalog-gateway sync`: one full sync against the emulator, its summary and exit codes."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import pytest
from rich.console import Console

from catalog_store.items import Identifier
from catalog_store.memory import MemoryCatalogStore
from gateway.cli.sync import sync_once
from gateway.settings import Settings
from shopify_emulator import Emulator

SHOP = "terminal.myshopify.com"
TOKEN = "shpat_terminal_secret_token"


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with Emulator("whsec_t") as emu:
        emu.add_shop(SHOP, access_token=TOKEN, variants=60, seed=5, name="Terminal Store")
        yield emu


def console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=140, force_terminal=False), out


async def test_a_full_sync_prints_progress_and_a_summary(emulator: Emulator) -> None:
    shop = emulator.shop(SHOP)
    variants = list(shop.variant_ids())
    shop.set_sku(variants[0], None)  # skipped in SKU mode: missing_sku, with the variant as example
    store = MemoryCatalogStore()
    settings = Settings(shopify_admin_api_url=emulator.admin_api_url_template)
    con, out = console()
    code = await sync_once(store, settings, SHOP, TOKEN, Identifier.SKU, con)
    text = out.getvalue()
    assert code == 0, text
    assert "COMPLETED" in text
    assert "items written" in text and "skipped: missing_sku" in text
    assert str(variants[0]) in text
    assert TOKEN not in text


async def test_a_failed_sync_exits_non_zero_with_the_fix(emulator: Emulator) -> None:
    emulator.faults.revoke_token(SHOP)
    con, out = console()
    settings = Settings(shopify_admin_api_url=emulator.admin_api_url_template)
    code = await sync_once(MemoryCatalogStore(), settings, SHOP, TOKEN, Identifier.SHOPIFY_VARIANT_ID, con)
    text = out.getvalue()
    assert code == 1
    assert "ACCESS_DENIED" in text and "fix" in text and "Reinstall" in text
    assert TOKEN not in text
