"""Fixtures of the gateway tests: the Shopify emulator, a served gateway with an SMTP server, logs."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator

import pytest

from catalog_store.memory import MemoryCatalogStore
from shopify_emulator import Emulator
from tests.gateway.e2e import SHOP, SHOP_TOKEN, VARIANTS, World, gateway_settings
from tests.gateway.harness import serve_gateway
from tests.gateway.smtp import smtp_server


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    emu = Emulator(api_secret="whsec_e2e")
    emu.add_shop(SHOP, access_token=SHOP_TOKEN, variants=VARIANTS, seed=7, name="E2E Store")
    await emu.start()
    try:
        yield emu
    finally:
        await emu.close()


@pytest.fixture
async def world(emulator: Emulator) -> AsyncIterator[World]:
    async with smtp_server() as inbox:
        async with serve_gateway(MemoryCatalogStore(), settings=gateway_settings(emulator, inbox)) as running:
            yield World(emulator, inbox, running)


@pytest.fixture
def secret_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every log record of every logger, at DEBUG (to prove secrets never reach a log line)."""
    with caplog.at_level(logging.DEBUG):
        yield caplog
