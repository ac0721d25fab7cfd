"""`serve()`: the emulator alone, as `catalog-gateway emulator` runs it."""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp

from bulk.shopify.documents import SHOP_INFO
from shopify_emulator import Emulator, serve


async def test_serve_prints_how_to_connect_and_keeps_the_store_changing():
    printed: list[str] = []
    ready: asyncio.Future[Emulator] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve("127.0.0.1", 0, variants=30, seed=2, shop_domain="solo.myshopify.com",
                                     access_token="shpat_solo", changes_per_second=2, print_fn=printed.append,
                                     on_ready=ready.set_result))
    try:
        emulator = await asyncio.wait_for(ready, 10)
        assert any(emulator.admin_api_url_template in line for line in printed)
        assert any("solo.myshopify.com" in line for line in printed)
        assert any("shpat_solo" in line for line in printed)
        async with aiohttp.ClientSession() as session:
            async with session.post(emulator.admin_api_url("solo.myshopify.com"), json={"query": SHOP_INFO},
                                    headers={"X-Shopify-Access-Token": "shpat_solo"}) as response:
                assert (await response.json())["data"]["shop"]["myshopifyDomain"] == "solo.myshopify.com"
        shop = emulator.shop("solo.myshopify.com")
        for _ in range(200):
            if shop.store.version >= 2:
                break
            await asyncio.sleep(0.01)
        assert shop.store.version >= 2 and any(line.startswith("  store change") for line in printed)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert task.cancelled()
