"""Run the emulator alone (`catalog-gateway emulator`, `python -m shopify_emulator`)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

from bulk.shopify.schema import SCHEMA_VERSION

from .changes import DEFAULT_INVENTORY_SHARE, keep_changing
from .emulator import Emulator


async def serve(host: str = "127.0.0.1", port: int = 0, *, variants: int = 1000, seed: int = 1,
                shop_domain: str = "demo.myshopify.com", access_token: str = "shpat_emulator",
                api_secret: str = "whsec_emulator", name: str = "Demo Store", bulk_duration: float = 2.0,
                changes_per_second: float | None = None, inventory_share: float = DEFAULT_INVENTORY_SHARE,
                print_fn: Callable[[str], None] = print,
                on_ready: Callable[[Emulator], None] | None = None) -> None:
    """Serve one generated shop until cancelled, printing how to reach it.

    `changes_per_second`: store changes made at that rate (`inventory_share` of them inventory
    changes, the rest price moves), each sending its webhooks; None keeps the store still. `on_ready(emulator)` is called once
    listening (to add shops, switch faults or read `base_url`).
    """
    emulator = Emulator(api_secret, bulk_duration=bulk_duration)
    shop = emulator.add_shop(shop_domain, access_token=access_token, variants=variants, seed=seed, name=name)
    try:
        await emulator.start(host, port)
        print_fn(f"Shopify emulator listening on {emulator.base_url}")
        print_fn(f"  admin API URL template: {emulator.admin_api_url_template}")
        print_fn(f"  shop domain:            {shop.domain} ({shop.name}, {variants:,} variants, seed {seed})")
        print_fn(f"  access token:           {access_token}")
        print_fn(f"  webhook secret:         {api_secret}")
        print_fn(f"  e.g. SHOPIFY_ADMIN_API_URL={emulator.admin_api_url_template} "
                 f"SHOPIFY_API_VERSION={SCHEMA_VERSION} SHOPIFY_API_SECRET={api_secret}")
        if on_ready is not None:
            on_ready(emulator)
        if changes_per_second:
            await keep_changing(shop, rate=changes_per_second, inventory_share=inventory_share,
                                rng=random.Random(seed), print_fn=print_fn)
        while True:
            await asyncio.sleep(3600)
    finally:
        await emulator.close()
