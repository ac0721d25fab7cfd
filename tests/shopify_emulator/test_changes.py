"""The change driver: store changes on schedule at a rate, with an inventory share, deterministic with
a seed, each sent through the webhook path Shopify uses for it (real deliveries on loopback)."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Callable

import pytest

from shopify_emulator import Emulator
from shopify_emulator.changes import StoreChange, drive_changes, keep_changing

from .conftest import DOMAIN, Admin, Receiver
from .test_webhooks import subscribe, verified


def fresh_shop(seed: int = 7, variants: int = 200):
    return Emulator("whsec_x").add_shop(DOMAIN, access_token="shpat_x", variants=variants, seed=seed)


def what(changes: list[StoreChange]) -> list[tuple[int, str, str | int]]:
    return [(c.variant_id, c.field, c.value) for c in changes]


async def test_changes_are_made_on_schedule_at_the_rate_and_never_early() -> None:
    shop, rate, duration = fresh_shop(), 40.0, 1.0
    before = time.monotonic()
    changes = await drive_changes(shop, rate=rate, inventory_share=0.2, duration=duration, rng=random.Random(1))
    after = time.monotonic()
    assert len(changes) == 40  # every due change is made, a late one at once
    for i, change in enumerate(changes):
        assert change.at >= before + i / rate - 1e-6, (i, change.at - before)  # never ahead of its slot
    assert [c.at for c in changes] == sorted(c.at for c in changes)
    assert after - before < duration + 3.0  # loose: a loaded machine may run late, never this late
    span = changes[-1].at - changes[0].at
    assert span >= (len(changes) - 1) / rate - 1e-6  # not faster than asked


async def test_the_inventory_share_and_every_change_is_in_the_store() -> None:
    shop = fresh_shop()
    changes = await drive_changes(shop, rate=100_000, inventory_share=0.2, duration=0.01, rng=random.Random(2))
    assert len(changes) == 1000
    share = sum(c.field == "inventory" for c in changes) / len(changes)
    assert 0.15 <= share <= 0.25, share
    last: dict[tuple[int, str], str | int] = {(c.variant_id, c.field): c.value for c in changes}
    for (variant_id, field), value in last.items():
        variant = shop.variant(variant_id)
        assert (variant.inventory_quantity if field == "inventory" else variant.price) == value
    for share_, expected in ((0.0, {"price"}), (1.0, {"inventory"})):
        some = await drive_changes(shop, rate=100_000, inventory_share=share_, duration=0.001, rng=random.Random(3))
        assert {c.field for c in some} == expected


async def test_a_change_always_changes_the_value() -> None:
    shop = fresh_shop(variants=3)  # few variants: the same one changes again and again
    previous: dict[tuple[int, str], str | int] = {}
    for v in shop.variant_ids():
        previous[v, "price"], previous[v, "inventory"] = shop.variant(v).price, shop.variant(v).inventory_quantity
    changes = await drive_changes(shop, rate=100_000, inventory_share=0.5, duration=0.002, rng=random.Random(4))
    assert len(changes) == 200
    for change in changes:
        assert change.value != previous[change.variant_id, change.field], change
        previous[change.variant_id, change.field] = change.value


async def test_the_same_seed_makes_the_same_changes() -> None:
    runs = [await drive_changes(fresh_shop(), rate=100_000, inventory_share=0.3, duration=0.002,
                                rng=random.Random(seed)) for seed in (5, 5, 6)]
    assert len(runs[0]) == 200
    assert what(runs[0]) == what(runs[1])
    assert what(runs[0]) != what(runs[2])


@pytest.mark.parametrize("rate, share", [(0, 0.2), (-1, 0.2), (float("nan"), 0.2), (10, 1.5)])
async def test_a_bad_rate_or_share_is_refused(rate: float, share: float) -> None:
    with pytest.raises(ValueError):
        await drive_changes(fresh_shop(), rate=rate, inventory_share=share, duration=1, rng=random.Random(1))


async def test_inventory_changes_go_out_as_inventory_levels_update_and_prices_as_products_update(
        emu: Emulator, admin: Admin, shop, receiver: Receiver) -> None:
    await subscribe(admin, receiver.url, ["PRODUCTS_UPDATE", "INVENTORY_LEVELS_UPDATE"])
    changes = await drive_changes(shop, rate=200, inventory_share=0.5, duration=0.1, rng=random.Random(8))
    inventory = [c for c in changes if c.field == "inventory"]
    assert inventory and len(inventory) < len(changes)
    # An inventory change sends one inventory_levels/update (it leaves the product's updated_at alone);
    # a price change one products/update.
    received = await receiver.wait_for(len(changes))
    by_topic: dict[str, list[dict]] = {}
    for delivery in received:
        by_topic.setdefault(delivery.headers["X-Shopify-Topic"], []).append(verified(delivery))
    levels = {(p["inventory_item_id"], p["available"]) for p in by_topic["inventory_levels/update"]}
    for change in inventory:
        assert (shop.variant(change.variant_id).inventory_item_id, change.value) in levels
    priced = {(v["id"], v["price"]) for p in by_topic["products/update"] for v in p["variants"]}
    for change in changes:
        if change.field == "price":
            assert (change.variant_id, change.value) in priced
    assert len(by_topic["products/update"]) == len(changes) - len(inventory)
    assert len(by_topic["inventory_levels/update"]) == len(inventory)


async def _printed(rate: float, clock: Callable[[], float], wait: float) -> list[str]:
    printed: list[str] = []
    task = asyncio.create_task(keep_changing(fresh_shop(), rate=rate, inventory_share=0.2, rng=random.Random(1),
                                             print_fn=printed.append, clock=clock))
    await asyncio.sleep(wait)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return printed


async def test_keep_changing_says_each_change_at_a_low_rate_and_sums_up_at_a_high_one() -> None:
    low = await _printed(2.0, time.monotonic, 0.3)  # the first change is due at once
    assert low and all(line.startswith("  store change: ") for line in low), low
    ticks = itertools.count()
    fake = await _printed(50.0, lambda: next(ticks) * 0.01, 0.5)  # 10 ms per clock read: 10 s fly by
    assert fake and all(line.startswith("  store changes: ") for line in fake), fake[:3]
    assert "price" in fake[0] and "inventory" in fake[0] and "/s" in fake[0]
