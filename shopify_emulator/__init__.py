"""A faithful local Shopify Admin GraphQL API (2026-01) with signed webhooks.

    async with Emulator(api_secret="whsec_test", bulk_duration=0) as emu:
        shop = emu.add_shop("demo.myshopify.com", access_token="shpat_test", variants=100, seed=1)
        url = emu.admin_api_url("demo.myshopify.com")          # POST GraphQL here
        shop.set_price(variant_id, "12.50"); shop.set_inventory(variant_id, 0)
        emu.faults.fail_bulk("TIMEOUT", times=1)               # see faults.py

It imports nothing of the project but the stored schema (`bulk.shopify.schema`).
"""

from .emulator import Emulator
from .errors import EmulatorError, InvalidInput, NotFound, NotStarted, UnknownShop
from .faults import FaultRule, Faults
from .serve import serve
from .shop import EmulatedShop
from .webhooks import Delivery, sign

__all__ = [
    "Delivery", "EmulatedShop", "Emulator", "EmulatorError", "FaultRule", "Faults", "InvalidInput", "NotFound",
    "NotStarted", "UnknownShop", "serve", "sign",
]
