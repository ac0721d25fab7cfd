"""Store changes made at a given rate, as a busy shop makes them: price moves (products/update) and
inventory changes (inventory_levels/update only: the product's updated_at stays), each through the shop's own
setters so it sends the webhooks Shopify would. Each change made is recorded (when, which variant,
which field, the new value), so a benchmark can time delivery → visible per change.

    changes = await drive_changes(shop, rate=50, inventory_share=0.2, duration=30, rng=random.Random(1))
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Literal

from .generate import PRODUCT_ID_BASE

if TYPE_CHECKING:
    from .models import Variant
    from .shop import EmulatedShop

ChangeField = Literal["price", "inventory"]
PICK_ATTEMPTS = 20  # random product ids tried before giving up (deleted products leave holes)
PRICE_FACTORS = (0.8, 0.9, 1.1, 1.2)
MIN_PRICE_CENTS = 10
MAX_RESTOCK = 50


@dataclass(frozen=True, slots=True)
class StoreChange:
    """One change made: `at` is the driver's clock when its webhooks were queued."""

    at: float
    product_id: int
    variant_id: int
    field: ChangeField
    value: str | int  # the new price ("12.50") or the new available quantity

    def describe(self) -> str:
        return f"{self.field} of variant {self.variant_id} -> {self.value}"


def _pick_variant(shop: EmulatedShop, rng: random.Random) -> Variant | None:
    products = max(1, shop.store.catalog.n_products)
    for _ in range(PICK_ATTEMPTS):
        product = shop.store.product(PRODUCT_ID_BASE + rng.randrange(products))
        if product is not None and product.variants:
            return rng.choice(product.variants)
    return None


def _new_price(current: str, rng: random.Random) -> str:
    """A plausible new price that differs from `current` (so the change is visible)."""
    cents = int(Decimal(current) * 100)
    new = max(MIN_PRICE_CENTS, int(cents * rng.choice(PRICE_FACTORS)))
    if new == cents:
        new = cents + 1
    return f"{new // 100}.{new % 100:02d}"


def _new_quantity(current: int, rng: random.Random) -> int:
    """A sell-out or a restock; never the current quantity."""
    if current > 0 and rng.random() < 0.5:
        return 0
    new = rng.randint(1, MAX_RESTOCK)
    return new if new != current else new % MAX_RESTOCK + 1


def make_change(shop: EmulatedShop, rng: random.Random, inventory_share: float,
                clock: Callable[[], float] = time.monotonic) -> StoreChange | None:
    """One change to a random variant: its inventory with probability `inventory_share`, else its
    price. None when the shop has no product left."""
    variant = _pick_variant(shop, rng)
    if variant is None:
        return None
    value: str | int
    if rng.random() < inventory_share:
        field: ChangeField = "inventory"
        value = _new_quantity(variant.inventory_quantity, rng)
        at = clock()
        shop.set_inventory(variant.id, value)
    else:
        field, value = "price", _new_price(variant.price, rng)
        at = clock()
        shop.set_price(variant.id, value)
    return StoreChange(at, variant.product.id, variant.id, field, value)


def check_rate(rate: float, inventory_share: float) -> None:
    """ValueError saying what is wrong with a rate (changes/s) or an inventory share."""
    if not (math.isfinite(rate) and rate > 0):
        raise ValueError(f"the change rate must be a positive number of changes per second, got {rate}")
    if not 0.0 <= inventory_share <= 1.0:
        raise ValueError(f"the inventory share must be between 0 and 1, got {inventory_share}")


async def drive_changes(shop: EmulatedShop, *, rate: float, inventory_share: float, duration: float,
                        rng: random.Random, clock: Callable[[], float] = time.monotonic,
                        on_change: Callable[[StoreChange], None] | None = None,
                        keep: bool = True) -> list[StoreChange]:
    """Make changes at `rate` per second for `duration` seconds (math.inf: until cancelled), change
    i due at start + i / rate. The schedule is absolute: a late change is made at once and the
    ones after it keep their times, so the rate holds on average and none is ever early. Returns
    the changes made (`keep=False`: none are kept, for a driver that runs for ever; `on_change` still
    sees each)."""
    check_rate(rate, inventory_share)
    made: list[StoreChange] = []
    start = clock()
    index = 0
    while (due := index / rate) < duration:
        await asyncio.sleep(max(0.0, start + due - clock()))  # sleep(0) too: let deliveries go out
        change = make_change(shop, rng, inventory_share, clock)
        index += 1
        if change is None:
            continue
        if keep:
            made.append(change)
        if on_change is not None:
            on_change(change)
    return made


# -- for the command line: `catalog-gateway emulator`, `catalog-gateway demo`, `python -m shopify_emulator` --

DEFAULT_INVENTORY_SHARE = 0.2  # a busy shop's mix: mostly price moves
PRINT_EACH_UP_TO = 2.0  # changes/s: up to this rate each change gets its own line
SUMMARY_EVERY = 10.0  # seconds between summary lines at higher rates


async def keep_changing(shop: EmulatedShop, *, rate: float, inventory_share: float, rng: random.Random,
                        print_fn: Callable[[str], None], clock: Callable[[], float] = time.monotonic) -> None:
    """Change the store until cancelled, saying what changed: each change at low rates, else one
    line per SUMMARY_EVERY seconds with the counts."""
    start = clock()
    counts: dict[ChangeField, int] = {"price": 0, "inventory": 0}

    def report(change: StoreChange) -> None:
        nonlocal start
        if rate <= PRINT_EACH_UP_TO:
            print_fn(f"  store change: {change.describe()}")
            return
        counts[change.field] += 1
        elapsed = change.at - start
        if elapsed >= SUMMARY_EVERY:
            total = counts["price"] + counts["inventory"]
            print_fn(f"  store changes: {total} in {elapsed:.0f} s ({total / elapsed:.1f}/s; "
                     f"{counts['price']} price, {counts['inventory']} inventory)")
            start, counts["price"], counts["inventory"] = change.at, 0, 0

    await drive_changes(shop, rate=rate, inventory_share=inventory_share, duration=math.inf, rng=rng,
                        clock=clock, on_change=report, keep=False)
