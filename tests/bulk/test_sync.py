"""End to end over real HTTP: Shopify emulator ↔ client ↔ sync service ↔ store (both stores).

Expected catalogs are computed from the emulator's own products, independently of `bulk.mapping.assemble`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from bulk.errors import IdentifierChangeRequiresDisable, InvalidInput, NotFound, SyncAlreadyRunning
from bulk.full_sync.jsonl import DownloadRetry
from bulk.full_sync.service import SyncService, SyncSettings
from bulk.notifications import NoEmail, Notifier
from bulk.progress import Broadcaster
from bulk.shopify.client import RetryPolicy
from catalog_store.items import Identifier
from catalog_store.models import EmailStatus, RunStatus, SyncErrorCode, SyncRun, SyncStatus
from catalog_store.store import CatalogStore
from shopify_emulator import Emulator

SHOP = "sync-test.myshopify.com"
CATALOG = "shopify_sync-test"
TOKEN = "shpat_sync_test_token"
ID_RE = re.compile(r"[A-Za-z0-9_-]{1,250}")


def fast_settings(emu: Emulator, **overrides: object) -> SyncSettings:
    values: dict[str, object] = dict(
        admin_api_url_template=emu.admin_api_url_template,
        poll_interval=0.01,
        max_poll_interval=0.05,
        lease_ttl=5.0,
        persist_interval=0.05,
        batch_size=100,
        retry=RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02, min_throttle_delay=0.01),
        download_retry=DownloadRetry(attempts=3, base_delay=0.01, max_delay=0.02),
    )
    values.update(overrides)
    return SyncSettings(**values)  # type: ignore[arg-type]


@dataclass
class Env:
    emu: Emulator
    store: CatalogStore
    service: SyncService

    @property
    def shop(self):  # type: ignore[no-untyped-def]
        return self.emu.shop(SHOP)

    async def restart(self, **overrides: object) -> SyncService:
        """A new service (as after a process restart) on the same store."""
        service = SyncService(self.store, settings=fast_settings(self.emu, **overrides),
                              notifier=Notifier(self.store, NoEmail(), Broadcaster()))
        await service.start()
        self.service = service
        return service

    async def sync(self, identifier: Identifier = Identifier.SHOPIFY_VARIANT_ID) -> SyncRun:
        await self.service.enable(SHOP, TOKEN, identifier)
        return await self.last_run_finished()

    async def last_run_finished(self) -> SyncRun:
        runs = await self.store.list_runs(SHOP, last=1)
        return await self.service.wait_for_run(runs[0].id, timeout=30)


@pytest.fixture
async def env(store: CatalogStore) -> AsyncIterator[Env]:
    async with Emulator(api_secret="whsec_sync", bulk_duration=0.0) as emu:
        emu.add_shop(SHOP, access_token=TOKEN, variants=120, seed=7, name="Sync Test Store")
        environment = Env(emu, store, None)  # type: ignore[arg-type]
        await environment.restart()
        yield environment
        await environment.service.close()


def expected_ids(shop, identifier: Identifier) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """item id → variant id, as the item id rules say, from the emulator's data."""
    expected: dict[str, str] = {}
    for product in shop.products():
        for variant in product.variants:
            candidate = str(variant.id) if identifier is Identifier.SHOPIFY_VARIANT_ID else (variant.sku or "")
            if ID_RE.fullmatch(candidate):
                expected[candidate] = str(variant.id)
    return expected


async def catalog_ids(store: CatalogStore) -> dict[str, str]:
    ids: dict[str, str] = {}
    after = None
    while True:
        page = await store.list_items(CATALOG, first=250, after=after)
        for item in page.items:
            assert item.id not in ids, f"duplicate item {item.id}"
            ids[item.id] = item.shopify_variant_id
        if not page.has_next_page:
            return ids
        after = page.items[-1].id


@pytest.mark.parametrize("identifier", [Identifier.SHOPIFY_VARIANT_ID, Identifier.SKU])
async def test_full_sync_writes_exactly_the_expected_items(env: Env, identifier: Identifier) -> None:
    run = await env.sync(identifier)

    assert run.status is RunStatus.COMPLETED, run.error_message
    expected = expected_ids(env.shop, identifier)
    assert await catalog_ids(env.store) == expected
    total_variants = sum(len(p.variants) for p in env.shop.products())
    assert run.items_written == len(expected)
    assert run.items_skipped == total_variants - len(expected)
    if identifier is Identifier.SKU:
        reasons = {s.reason: s for s in run.skipped}
        assert set(reasons) <= {"missing_sku", "invalid_id"} and reasons, "the generated store has bad SKUs"
        assert all(s.examples for s in run.skipped)
    config = await env.store.get_sync(SHOP)
    assert config is not None and config.status is SyncStatus.SYNCED and config.store_name == "Sync Test Store"

    variant = next(v for p in env.shop.products() for v in p.variants if v.id > 2**53)
    item = (await env.store.get_items_by_variant(CATALOG, [str(variant.id)]))[0]
    assert item.shopify_variant_id == str(variant.id)  # exact above 2^53
    assert item.price == variant.price and item.inventory_quantity == variant.inventory_quantity
    assert item.store_name == "Sync Test Store"

    notes = await env.store.list_notifications()
    assert [n.title for n in notes[:2]] == ["Shopify product sync complete", "Shopify product sync in progress"]
    assert notes[0].email_status is EmailStatus.NOT_SENT  # no SMTP: recorded, not dropped


async def test_resync_applies_changes_and_removes_deleted_products(env: Env) -> None:
    await env.sync()
    products = list(env.shop.products())
    deleted = products[0]
    changed = products[1].variants[0]
    env.shop.delete_product(deleted.id)
    env.shop.set_price(changed.id, "0.10")

    run = await env.service.resync(SHOP)
    run = await env.service.wait_for_run(run.id, timeout=30)

    assert run.status is RunStatus.COMPLETED
    ids = await catalog_ids(env.store)
    assert ids == expected_ids(env.shop, Identifier.SHOPIFY_VARIANT_ID)
    assert not set(ids) & {str(v.id) for v in deleted.variants}
    assert (await env.store.get_item(CATALOG, str(changed.id))).price == "0.10"  # type: ignore[union-attr]
    assert "removed" in (await env.store.list_notifications())[0].message


async def test_duplicate_sku_fails_naming_both_variants_and_overwrites_nothing(env: Env) -> None:
    products = list(env.shop.products())
    first = next(v for v in products[0].variants if v.sku and ID_RE.fullmatch(v.sku))
    second = products[1].variants[0]
    env.shop.set_sku(second.id, first.sku)

    run = await env.sync(Identifier.SKU)

    assert run.status is RunStatus.FAILED and run.error_code is SyncErrorCode.DUPLICATE_SKU
    assert first.sku in run.error_message and str(first.id) in run.error_message
    assert str(second.id) in run.error_message
    holder = await env.store.get_item(CATALOG, first.sku)
    assert holder is not None and holder.shopify_variant_id in {str(first.id), str(second.id)}
    config = await env.store.get_sync(SHOP)
    assert config.status is SyncStatus.ERROR and config.error_code is SyncErrorCode.DUPLICATE_SKU
    note = (await env.store.list_notifications())[0]
    assert note.level == "error" and "unique" in note.message


async def test_storage_limit_stops_writing_and_deactivates(env: Env) -> None:
    await env.service.close()
    limit = 40_000
    await env.restart(storage_limit_bytes=limit)

    run = await env.sync()

    assert run.status is RunStatus.FAILED and run.error_code is SyncErrorCode.CATALOG_LIMIT_EXCEEDED
    catalog = await env.store.get_catalog(CATALOG)
    assert 0 < catalog.storage_bytes <= limit
    assert catalog.item_count == run.items_written < len(expected_ids(env.shop, Identifier.SHOPIFY_VARIANT_ID))
    config = await env.store.get_sync(SHOP)
    assert config.active is False and config.error_code is SyncErrorCode.CATALOG_LIMIT_EXCEEDED


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        ("internal_error", SyncErrorCode.SERVER_ERROR),
        ("bulk_access_denied", SyncErrorCode.ACCESS_DENIED),
        ("revoked_token", SyncErrorCode.ACCESS_DENIED),
        ("http_503", SyncErrorCode.SERVER_ERROR),
    ],
)
async def test_failures_end_in_the_right_error_and_a_rerun_converges(env: Env, fault: str, code: SyncErrorCode) -> None:
    faults = env.emu.faults
    if fault == "internal_error":
        faults.fail_bulk("INTERNAL_SERVER_ERROR", times=None)
    elif fault == "bulk_access_denied":
        faults.fail_bulk("ACCESS_DENIED", times=None)
    elif fault == "revoked_token":
        faults.revoke_token(SHOP)
    else:
        faults.http_error(503, times=None)

    run = await env.sync()

    assert run.status is RunStatus.FAILED and run.error_code is code, run.error_message
    config = await env.store.get_sync(SHOP)
    assert config.status is SyncStatus.ERROR and config.error_code is code
    note = (await env.store.list_notifications())[0]
    assert note.level == "error" and "How to fix" in note.message and note.email_status is EmailStatus.NOT_SENT
    assert TOKEN not in (run.error_message or "") and TOKEN not in note.message

    faults.clear()
    faults.restore_token(SHOP)
    rerun = await env.service.resync(SHOP)
    rerun = await env.service.wait_for_run(rerun.id, timeout=30)
    assert rerun.status is RunStatus.COMPLETED
    assert await catalog_ids(env.store) == expected_ids(env.shop, Identifier.SHOPIFY_VARIANT_ID)


@pytest.mark.parametrize("fault", ["transient_timeout", "expired", "throttled", "cut_download", "flaky_http"])
async def test_recoverable_faults_still_sync_exactly(env: Env, fault: str) -> None:
    faults = env.emu.faults
    if fault == "transient_timeout":
        faults.fail_bulk("TIMEOUT", times=1)
    elif fault == "expired":
        faults.expire_bulk(times=1)
    elif fault == "throttled":
        faults.throttle(times=3)
    elif fault == "cut_download":
        faults.cut_download(20_000, times=2)
    else:
        faults.http_error(502, times=2)

    run = await env.sync()

    assert run.status is RunStatus.COMPLETED, run.error_message
    assert await catalog_ids(env.store) == expected_ids(env.shop, Identifier.SHOPIFY_VARIANT_ID)


async def test_malformed_lines_are_counted_and_skipped(env: Env) -> None:
    env.emu.faults.corrupt_jsonl([3, 10], kind="garbage", times=1)

    run = await env.sync()

    assert run.status is RunStatus.COMPLETED
    assert run.malformed_lines == 2
    assert any("line" in example for example in run.malformed_examples)
    ids = await catalog_ids(env.store)
    assert set(ids) <= set(expected_ids(env.shop, Identifier.SHOPIFY_VARIANT_ID))


async def test_cancel_stops_the_run_and_a_resync_completes(env: Env) -> None:
    env.emu.faults.slow_bulk(30, times=1)
    async with env.service.progress.subscribe(SHOP) as updates:
        await env.service.enable(SHOP, TOKEN, Identifier.SHOPIFY_VARIANT_ID)
        while not (await asyncio.wait_for(updates.get(), 10)).bulk_operation_id:
            pass  # cancel the running bulk operation, not a run still starting one

    canceled = await env.service.cancel(SHOP)

    assert canceled is not None and canceled.status is RunStatus.CANCELED
    config = await env.store.get_sync(SHOP)
    assert config.status is SyncStatus.ERROR and "canceled" in (config.error_message or "")
    assert await env.service.cancel(SHOP) is None  # nothing running any more
    run = await env.service.resync(SHOP)
    run = await env.service.wait_for_run(run.id, timeout=30)
    assert run.status is RunStatus.COMPLETED


async def test_guards_identifier_change_running_resync_and_unknown_shops(env: Env) -> None:
    env.emu.faults.slow_bulk(30, times=1)
    await env.service.enable(SHOP, TOKEN, Identifier.SHOPIFY_VARIANT_ID)
    with pytest.raises(SyncAlreadyRunning):
        await env.service.resync(SHOP)
    with pytest.raises(IdentifierChangeRequiresDisable) as refused:
        await env.service.enable(SHOP, TOKEN, Identifier.SKU)
    assert "disable" in refused.value.fix.lower()
    with pytest.raises(NotFound):
        await env.service.resync("unknown-shop.myshopify.com")
    with pytest.raises(InvalidInput):
        await env.service.enable("not a shop!", TOKEN, Identifier.SKU)
    with pytest.raises(InvalidInput):
        await env.service.enable(SHOP, " ", Identifier.SHOPIFY_VARIANT_ID)

    result = await env.service.disable(SHOP)

    assert result.shop_domain == SHOP
    assert await env.store.get_sync(SHOP) is None and await env.store.get_catalog(CATALOG) is None
    assert await env.store.list_runs(SHOP) == []


async def test_disable_deletes_catalog_and_webhooks(env: Env) -> None:
    await env.service.close()
    await env.restart(public_url="http://127.0.0.1:9")
    await env.sync()
    assert len(env.shop.webhook_subscriptions()) == 5
    items = len(await catalog_ids(env.store))

    result = await env.service.disable(SHOP)

    assert result.items_deleted == items > 0
    assert env.shop.webhook_subscriptions() == []
    assert await env.store.get_catalog(CATALOG) is None
    assert (await env.store.list_notifications())[0].title == "Shopify product sync disabled"


class GatedStore:
    """The real store, except that item writes block after `open_batches` batches (a process that
    is about to be stopped mid-ingest)."""

    def __init__(self, inner: CatalogStore, open_batches: int) -> None:
        self._inner = inner
        self._open = open_batches
        self.blocked = asyncio.Event()

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)

    async def write_items(self, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        if self._open <= 0:
            self.blocked.set()
            await asyncio.Event().wait()  # until the task is cancelled
        self._open -= 1
        return await self._inner.write_items(*args, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("stop_phase", ["bulk_running", "ingesting"])
async def test_a_stopped_process_run_is_resumed_by_the_next(env: Env, stop_phase: str) -> None:
    real_store = env.store
    await env.service.close()
    if stop_phase == "bulk_running":
        env.emu.faults.slow_bulk(0.5, times=1)
        service = await env.restart()
        async with service.progress.subscribe(SHOP) as updates:
            await service.enable(SHOP, TOKEN, Identifier.SHOPIFY_VARIANT_ID)
            while not (await asyncio.wait_for(updates.get(), 10)).bulk_operation_id:
                pass
    else:
        gated = GatedStore(real_store, open_batches=2)
        env.store = gated  # type: ignore[assignment]
        service = await env.restart(batch_size=10)
        await service.enable(SHOP, TOKEN, Identifier.SHOPIFY_VARIANT_ID)
        await asyncio.wait_for(gated.blocked.wait(), 10)
        env.store = real_store
    await service.close()  # the process stops mid-run
    stopped = (await real_store.list_runs(SHOP, last=1))[0]
    assert stopped.status is RunStatus.RUNNING and stopped.bulk_operation_id
    if stop_phase == "ingesting":
        assert 0 < len(await catalog_ids(real_store)) < len(expected_ids(env.shop, Identifier.SHOPIFY_VARIANT_ID))

    next_process = SyncService(real_store, settings=fast_settings(env.emu),
                               notifier=Notifier(real_store, NoEmail(), Broadcaster()))
    shown: list[SyncRun] = []
    async with next_process.progress.subscribe(SHOP) as updates:
        await next_process.start()
        env.service = next_process
        while not shown or not shown[-1].finished:
            shown.append(await asyncio.wait_for(updates.get(), 30))
    resumed = await env.service.wait_for_run(stopped.id, timeout=30)

    # Its subscribers never see the run go back, though it reads its file again from the start.
    phases = ["starting", "bulk_running", "ingesting", "finalizing", "completed"]
    for figure in (lambda r: phases.index(r.phase), lambda r: r.items_written, lambda r: r.bytes_downloaded):
        values = [figure(run) for run in [stopped, *shown]]
        assert values == sorted(values), values
    assert resumed.status is RunStatus.COMPLETED
    assert resumed.bulk_operation_id == stopped.bulk_operation_id  # the same operation, not a new one
    assert await catalog_ids(real_store) == expected_ids(env.shop, Identifier.SHOPIFY_VARIANT_ID)
    assert [r.id for r in await real_store.list_runs(SHOP)] == [stopped.id]


async def test_a_new_access_token_given_during_a_run_is_kept_after_it(env: Env) -> None:
    env.emu.faults.slow_bulk(0.3, times=1)
    await env.service.enable(SHOP, TOKEN, Identifier.SHOPIFY_VARIANT_ID)
    rotated = await env.service.enable(SHOP, "shpat_rotated_token", Identifier.SHOPIFY_VARIANT_ID)
    assert rotated.status is SyncStatus.IN_PROGRESS  # the running sync goes on; no second run

    run = await env.last_run_finished()

    assert run.status is RunStatus.COMPLETED
    config = await env.store.get_sync(SHOP)
    assert config.access_token == "shpat_rotated_token" and config.status is SyncStatus.SYNCED
    assert len(await env.store.list_runs(SHOP)) == 1


async def test_resync_refused_by_a_held_lease_changes_nothing(env: Env) -> None:
    await env.sync()
    before = await env.store.get_sync(SHOP)
    assert await env.store.acquire_lease(SHOP, "another-process", 30)  # e.g. finishing its own run

    with pytest.raises(SyncAlreadyRunning):
        await env.service.resync(SHOP)

    after = await env.store.get_sync(SHOP)
    assert after.status is SyncStatus.SYNCED and after.updated_at == before.updated_at
    assert [r.status for r in await env.store.list_runs(SHOP)] == [RunStatus.COMPLETED]


async def test_webhooks_already_registered_for_the_gateway_are_adopted_and_deleted_on_disable(env: Env) -> None:
    await env.service.close()
    await env.restart(public_url="http://127.0.0.1:9")
    leftover = env.shop.create_webhook_subscription(  # e.g. from an earlier install whose record was lost
        "PRODUCTS_UPDATE", {"uri": "http://127.0.0.1:9/webhooks/shopify"}, "2026-01").data["webhookSubscription"]
    unrelated = env.shop.create_webhook_subscription(
        "PRODUCTS_UPDATE", {"uri": "https://elsewhere.example/hooks"}, "2026-01").data["webhookSubscription"]
    await env.sync()

    config = await env.store.get_sync(SHOP)
    assert leftover.gid in config.webhook_ids and len(config.webhook_ids) == 5
    assert len(env.shop.webhook_subscriptions(uri="http://127.0.0.1:9/webhooks/shopify")) == 5

    await env.service.disable(SHOP)
    assert env.shop.webhook_subscriptions() == [unrelated]  # ours are gone, someone else's stays
