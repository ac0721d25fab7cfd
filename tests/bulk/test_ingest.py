"""run_ingest end to end: JSONL served over HTTP on 127.0.0.1 → a real catalog store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import orjson
import pytest

from bulk.errors import DownloadRefused
from bulk.full_sync.ingest import DuplicateSku, IngestOutcome, IngestProgress, IngestTarget, run_ingest
from bulk.full_sync.jsonl import DownloadRetry
from catalog_store.items import CatalogItem, Identifier, document_size
from catalog_store.store import CatalogStore
from tests.bulk.file_server import FileServer, serving

SHOP = "demo.myshopify.com"
CATALOG = "shopify_demo"
T0 = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)


# -- a tiny JSONL writer in Shopify's bulk format ---------------------------------------------------


def product(n: int, *, title: str | None = None, options: Sequence[str] = ("Size",), status: str = "ACTIVE",
            updated: str = "2026-01-05T10:00:00Z", online: bool = False, image: bool = True) -> dict[str, Any]:
    handle = f"product-{n}"
    return {
        "id": f"gid://shopify/Product/{n}", "legacyResourceId": str(n), "title": title or f"Product {n}",
        "handle": handle, "vendor": "Acme", "productType": "Shirts", "status": status, "updatedAt": updated,
        "publishedAt": "2026-01-01T00:00:00Z" if online else None,
        "onlineStoreUrl": f"https://shop.example.com/products/{handle}" if online else None,
        "options": [{"name": o} for o in options],
        "featuredMedia": {"preview": {"image": {"url": f"https://cdn.example.com/p{n}.jpg"}}} if image else None,
    }


def variant(n: int, product_n: int, *, sku: str | None = "auto", price: str = "10.00",
            compare_at: str | None = None, values: Sequence[str] = ("M",), option_names: Sequence[str] = ("Size",),
            inventory: int | None = 5) -> dict[str, Any]:
    return {
        "id": f"gid://shopify/ProductVariant/{n}", "legacyResourceId": str(n), "title": " / ".join(values),
        "sku": f"SKU-{n}" if sku == "auto" else sku, "price": price, "compareAtPrice": compare_at,
        "inventoryQuantity": inventory,
        "selectedOptions": [{"name": k, "value": v} for k, v in zip(option_names, values)],
        "inventoryItem": {"id": f"gid://shopify/InventoryItem/{n + 500}"},
        "__parentId": f"gid://shopify/Product/{product_n}",
    }


def media(n: int, variant_n: int) -> dict[str, Any]:
    return {"id": f"gid://shopify/MediaImage/{n}", "image": {"url": f"https://cdn.example.com/v{variant_n}-{n}.jpg"},
            "__parentId": f"gid://shopify/ProductVariant/{variant_n}"}


def jsonl(*nodes: dict[str, Any] | bytes) -> bytes:
    return b"".join((n if isinstance(n, bytes) else orjson.dumps(n)) + b"\n" for n in nodes)


def big_file(products: int, per_product: int = 10) -> bytes:
    nodes: list[dict[str, Any]] = []
    for p in range(1, products + 1):
        nodes.append(product(p))
        nodes.extend(variant(p * 100 + v, p, values=(f"V{v}",)) for v in range(per_product))
    return jsonl(*nodes)


# -- fixtures ---------------------------------------------------------------------------------------


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[FileServer], Awaitable[FileServer]]]:
    async with serving() as start:
        yield start


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


Ingest = Callable[..., Awaitable[IngestOutcome]]


@pytest.fixture
def ingest(store: CatalogStore, serve: Callable[[FileServer], Awaitable[FileServer]],
           session: aiohttp.ClientSession) -> Ingest:
    """Serve `body` and ingest it (body None: the bulk query matched nothing)."""
    runs = iter(range(1, 1000))

    async def run(body: bytes | None, *, identifier: Identifier = Identifier.SKU, catalog: str = CATALOG,
                  **kwargs: Any) -> IngestOutcome:
        url = None if body is None else (await serve(FileServer(body))).url
        number = next(runs)
        kwargs.setdefault("run_id", f"run-{number}")
        on_progress = kwargs.pop("on_progress", None)
        await store.ensure_catalog(catalog, SHOP, "Demo Store")  # the sync service's step before an ingest
        await asyncio.sleep(0.002)  # a run starts after the previous one's writes (stores keep milliseconds)
        target = IngestTarget(
            store=store, catalog=catalog, identifier=identifier, shop_domain=SHOP, store_name="Demo Store",
            run_started_at=datetime.now(UTC), retry=DownloadRetry(attempts=2, base_delay=0.001), **kwargs,
        )
        return await run_ingest(url, session, target, on_progress)

    return run


async def all_items(store: CatalogStore) -> dict[str, CatalogItem]:
    items: dict[str, CatalogItem] = {}
    after: str | None = None
    while True:
        page = await store.list_items(CATALOG, first=250, after=after)
        items.update((i.id, i) for i in page.items)
        if not page.has_next_page:
            return items
        after = page.items[-1].id


# -- tests ------------------------------------------------------------------------------------------


async def test_items_are_written_exactly(ingest: Ingest, store: CatalogStore) -> None:
    body = jsonl(
        product(1, title="Café Crème ☕", options=("Size", "Color"), online=True),
        product(2, status="DRAFT", image=False, options=("Title",)),
        variant(11, 1, price="0.10", compare_at="19.90", values=("M", "Black"), option_names=("Size", "Color")),
        variant(21, 2, sku="DEFAULT-21", price="5", values=("Default Title",), option_names=("Title",), inventory=None),
        variant(2**60 + 7, 1, values=("L", "Black"), option_names=("Size", "Color")),
        media(1, 11),
        media(2, 11),  # not the first image: ignored
    )
    outcome = await ingest(body)
    assert (outcome.items_written, outcome.skipped, outcome.malformed_lines) == (3, [], 0)
    assert outcome.duplicate_skus == [] and not outcome.limit_reached and outcome.bytes_downloaded == len(body)
    items = await all_items(store)
    assert sorted(items) == ["DEFAULT-21", "SKU-11", f"SKU-{2**60 + 7}"]
    assert items["SKU-11"] == CatalogItem(
        id="SKU-11", store_name="Demo Store", shopify_product_id="1", shopify_variant_id="11",
        product_title="Café Crème ☕", variant_title="M / Black", status="active",
        product_image_url="https://cdn.example.com/p1.jpg", variant_image_url="https://cdn.example.com/v11-1.jpg",
        vendor="Acme", product_type="Shirts", product_url="https://shop.example.com/products/product-1",
        product_handle="product-1", published_scope="web", price="0.10", compare_at_price="19.90",
        inventory_quantity=5, options=("Size", "Color"), option_values=("M", "Black"), sku="SKU-11",
        updated_at=datetime(2026, 1, 5, 10, 0, tzinfo=UTC), inventory_item_id="511",
    )
    draft = items["DEFAULT-21"]
    assert (draft.status, draft.published_scope, draft.product_image_url, draft.variant_image_url) == (
        "draft", None, None, None)
    assert draft.product_url == f"https://{SHOP}/products/product-2" and draft.inventory_quantity is None
    assert items[f"SKU-{2**60 + 7}"].shopify_variant_id == str(2**60 + 7)


async def test_variant_id_identifier(ingest: Ingest, store: CatalogStore) -> None:
    body = jsonl(product(1), variant(11, 1, sku=None), variant(12, 1, sku="has sku"))
    outcome = await ingest(body, identifier=Identifier.SHOPIFY_VARIANT_ID)
    assert outcome.items_written == 2 and outcome.skipped == []
    assert sorted(await all_items(store)) == ["11", "12"]


async def test_image_arriving_after_its_batch_is_patched(ingest: Ingest, store: CatalogStore) -> None:
    # batch_size 1: the variant's batch is long written when its media line comes
    body = jsonl(product(1), *(variant(n, 1) for n in range(1, 9)), media(1, 2), media(2, 2))
    outcome = await ingest(body, batch_size=1)
    assert outcome.items_written == 8
    items = await all_items(store)
    assert items["SKU-2"].variant_image_url == "https://cdn.example.com/v2-1.jpg"
    assert [i.id for i in items.values() if i.variant_image_url] == ["SKU-2"]


async def test_skips_and_malformed_lines_are_counted_and_reported(ingest: Ingest, store: CatalogStore) -> None:
    body = jsonl(
        product(1),
        variant(11, 1, sku=None),
        variant(12, 1, sku=""),
        variant(13, 1, sku="bad sku!"),
        b'{"id":"gid://shopify/ProductVariant/14",',
        variant(15, 1, values=("x" * 5001,)),
        variant(16, 99),
        variant(17, 1),
    )
    progress: list[IngestProgress] = []

    async def on_progress(p: IngestProgress) -> None:
        progress.append(p)

    outcome = await ingest(body, on_progress=on_progress)
    assert outcome.items_written == 1
    skipped = {s.reason: (s.count, s.examples) for s in outcome.skipped}
    assert {reason: count for reason, (count, _) in skipped.items()} == {
        "missing_sku": 2, "invalid_id": 1, "value_too_long": 1, "unknown_product": 1}
    assert "variant 13" in skipped["invalid_id"][1][0]
    assert outcome.malformed_lines == 1 and outcome.malformed_examples[0].startswith("line 5: ")
    assert outcome.items_skipped == 5
    final = progress[-1]
    assert (final.items_written, final.items_skipped, final.malformed_lines) == (1, 5, 1)
    assert final.bytes_downloaded == final.file_size == len(body)
    assert list(await all_items(store)) == ["SKU-17"]


async def test_progress_is_throttled_and_monotonic(ingest: Ingest, store: CatalogStore) -> None:
    reports: list[tuple[float, IngestProgress]] = []
    loop = asyncio.get_running_loop()

    async def on_progress(p: IngestProgress) -> None:
        reports.append((loop.time(), p))

    original = store.write_items

    async def slow_write(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0.01)  # a store slower than the file: the run spans several reports
        return await original(*args, **kwargs)

    store.write_items = slow_write  # type: ignore[method-assign]
    outcome = await ingest(big_file(40), on_progress=on_progress, batch_size=20, progress_interval=0.05)
    written = [p.items_written for _, p in reports]
    assert written == sorted(written) and written[-1] == outcome.items_written == 400
    assert len(reports) >= 2
    gaps = [b - a for (a, _), (b, _) in zip(reports[:-2], reports[1:-1])]  # the final report comes at once
    assert all(gap >= 0.045 for gap in gaps)


async def test_duplicate_skus_are_reported_and_never_overwrite(ingest: Ingest, store: CatalogStore) -> None:
    await ingest(jsonl(product(9), variant(91, 9)))  # an item of a product deleted later
    body = jsonl(product(1), product(2), variant(11, 1, sku="DUP", price="1.00"), variant(21, 2, sku="DUP", price="2.00"),
                 variant(12, 1), variant(22, 2, sku="DUP", price="3.00"))
    outcome = await ingest(body, batch_size=2)
    assert outcome.duplicate_skus == [DuplicateSku("DUP", ["11", "21", "22"])]
    assert outcome.swept == 0  # a failed run sweeps nothing
    items = await all_items(store)
    assert items["DUP"].shopify_variant_id == "11" and items["DUP"].price == "1.00"
    assert sorted(items) == ["DUP", "SKU-12", "SKU-91"]


async def test_duplicates_within_one_batch(ingest: Ingest, store: CatalogStore) -> None:
    outcome = await ingest(jsonl(product(1), variant(11, 1, sku="DUP"), variant(12, 1, sku="DUP")))
    assert outcome.duplicate_skus == [DuplicateSku("DUP", ["11", "12"])]
    assert (await store.get_item(CATALOG, "DUP")).shopify_variant_id == "11"  # type: ignore[union-attr]


async def test_storage_limit_stops_writing_and_the_download(ingest: Ingest, store: CatalogStore) -> None:
    await ingest(jsonl(product(9), variant(91, 9)))
    before = await store.total_storage_bytes()
    body = big_file(3000)  # 30,000 variants, ~13 MB
    one_item = document_size(CatalogItem(
        "SKU-10000", "Demo Store", "100", "10000", "Product 100", "V0", "active", "https://cdn.example.com/p100.jpg",
        None, "Acme", "Shirts", f"https://{SHOP}/products/product-100", "product-100", None, "10.00", None, 5,
        ["Size"], ["V0"], "SKU-10000", T0, "10500").to_document(CATALOG))
    limit = before + 50 * one_item
    outcome = await ingest(body, limit_bytes=limit, batch_size=20)
    assert outcome.limit_reached and outcome.swept == 0
    assert 0 < outcome.items_written < 60
    assert await store.total_storage_bytes() <= limit
    assert len(await all_items(store)) == outcome.items_written + 1  # nothing beyond the limit; old item kept
    assert outcome.bytes_downloaded < len(body)  # the download stopped too


async def test_items_of_deleted_products_are_swept(ingest: Ingest, store: CatalogStore) -> None:
    first = await ingest(jsonl(product(1), product(2), variant(11, 1), variant(12, 1), variant(21, 2)))
    assert first.items_written == 3
    second = await ingest(jsonl(product(1), variant(11, 1)))
    assert second.swept == 2
    assert sorted(await all_items(store)) == ["SKU-11"]


async def test_empty_result_sweeps_everything(ingest: Ingest, store: CatalogStore) -> None:
    await ingest(jsonl(product(1), variant(11, 1), variant(12, 1)))
    outcome = await ingest(None)
    assert (outcome.swept, outcome.items_written, outcome.bytes_downloaded) == (2, 0, 0)
    assert await all_items(store) == {}


async def test_rerun_converges_to_the_same_catalog(ingest: Ingest, store: CatalogStore) -> None:
    body = big_file(10, per_product=3) + jsonl(media(1, 101), media(2, 1002))
    first = await ingest(body, batch_size=4)
    snapshot = await all_items(store)
    second = await ingest(body, batch_size=4)
    assert (first.items_written, second.items_written, second.swept) == (30, 30, 0)
    assert await all_items(store) == snapshot
    assert snapshot["SKU-101"].variant_image_url == "https://cdn.example.com/v101-1.jpg"


async def test_rerun_after_a_killed_ingest_converges_without_duplicates(
    ingest: Ingest, store: CatalogStore
) -> None:
    old = jsonl(product(1), variant(11, 1, sku="A"), variant(12, 1, sku="B"), product(2), variant(21, 2, sku="C"))
    await ingest(old)
    # Shopify now: variant 12 took SKU "A" (listed first), 11 moved to "D", product 2 is gone, many new ones.
    new = jsonl(product(1), variant(12, 1, sku="A"), variant(11, 1, sku="D")) + big_file(40, per_product=5)
    writes = 0
    killed = asyncio.Event()
    original = store.write_items

    async def write_then_die(*args: Any, **kwargs: Any) -> Any:
        nonlocal writes
        writes += 1
        if writes == 3:
            killed.set()
            await asyncio.sleep(3600)  # the process is killed during this write
        return await original(*args, **kwargs)

    store.write_items = write_then_die  # type: ignore[method-assign]
    run = asyncio.create_task(ingest(new, batch_size=20))
    await asyncio.wait_for(killed.wait(), 10)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    store.write_items = original  # type: ignore[method-assign]
    assert 0 < len(await all_items(store)) < 202

    outcome = await ingest(new, batch_size=20)
    assert outcome.duplicate_skus == [] and outcome.items_written == 202
    items = await all_items(store)
    assert len(items) == 202
    assert items["A"].shopify_variant_id == "12" and items["D"].shopify_variant_id == "11"
    assert "B" not in items and "C" not in items
    assert len({i.shopify_variant_id for i in items.values()}) == 202


async def test_sku_moved_to_another_variant_is_not_a_duplicate(ingest: Ingest, store: CatalogStore) -> None:
    await ingest(jsonl(product(1), variant(11, 1, sku="A"), product(2), variant(21, 2, sku="B")))
    # 21 now has SKU "A" and comes first; 11 (the old holder of "A") was deleted with its product
    outcome = await ingest(jsonl(product(2), variant(21, 2, sku="A")))
    # swept: 11's item, and 21's old item "B" (replaced right after by its new one)
    assert outcome.duplicate_skus == [] and outcome.items_written == 1 and outcome.swept == 2
    items = await all_items(store)
    assert list(items) == ["A"] and items["A"].shopify_variant_id == "21"


async def test_variants_swapping_skus_are_not_duplicates(ingest: Ingest, store: CatalogStore) -> None:
    await ingest(jsonl(product(1), variant(11, 1, sku="A"), variant(12, 1, sku="B"), variant(13, 1, sku="C")))
    # 11 and 12 swap; 13 gives "C" to a new variant 14 and takes "D"
    outcome = await ingest(jsonl(product(1), variant(11, 1, sku="B"), variant(12, 1, sku="A"),
                                 variant(14, 1, sku="C"), variant(13, 1, sku="D")), batch_size=1)
    assert outcome.duplicate_skus == [] and outcome.items_written == 4
    items = await all_items(store)
    assert {sku: item.shopify_variant_id for sku, item in items.items()} == {"A": "12", "B": "11", "C": "14", "D": "13"}


async def test_duplicate_behind_a_stale_holder_is_found_after_the_sweep(ingest: Ingest, store: CatalogStore) -> None:
    await ingest(jsonl(product(9), variant(91, 9, sku="X")))
    outcome = await ingest(jsonl(product(1), variant(11, 1, sku="X"), variant(12, 1, sku="X")))
    assert outcome.duplicate_skus == [DuplicateSku("X", ["11", "12"])]
    assert (await store.get_item(CATALOG, "X")).shopify_variant_id == "11"  # type: ignore[union-attr]


async def test_download_failure_raises_and_keeps_the_catalog(ingest: Ingest, store: CatalogStore,
                                                              serve: Callable[[FileServer], Awaitable[FileServer]],
                                                              session: aiohttp.ClientSession) -> None:
    await ingest(jsonl(product(1), variant(11, 1)))
    server = await serve(FileServer(b"", statuses=[403]))
    with pytest.raises(DownloadRefused):
        await run_ingest(server.url, session, IngestTarget(
            store=store, catalog=CATALOG, identifier=Identifier.SKU, shop_domain=SHOP, store_name="Demo Store",
            run_id="failing", run_started_at=datetime.now(UTC) + timedelta(days=1)))
    assert list(await all_items(store)) == ["SKU-11"]


async def test_connection_cut_during_ingest_resumes_without_duplicates(
    store: CatalogStore, serve: Callable[[FileServer], Awaitable[FileServer]], session: aiohttp.ClientSession
) -> None:
    body = big_file(30)
    server = await serve(FileServer(body, cuts=[len(body) // 3]))
    await store.ensure_catalog(CATALOG, SHOP, "Demo Store")
    outcome = await run_ingest(server.url, session, IngestTarget(
        store=store, catalog=CATALOG, identifier=Identifier.SKU, shop_domain=SHOP, store_name="Demo Store",
        run_id="cut", run_started_at=datetime.now(UTC), retry=DownloadRetry(attempts=2, base_delay=0.001)))
    assert outcome.items_written == 300 and len(server.requests) == 2
    assert "Range" in server.requests[1]
    assert len(await all_items(store)) == 300


async def test_gc_threshold_is_raised_during_ingest_and_restored(ingest: Ingest, store: CatalogStore) -> None:
    import gc

    seen: list[int] = []
    original = store.write_items

    async def recording_write(*args: Any, **kwargs: Any) -> Any:
        seen.append(gc.get_threshold()[0])
        await asyncio.sleep(0.01)
        return await original(*args, **kwargs)

    store.write_items = recording_write  # type: ignore[method-assign]
    before = gc.get_threshold()
    first = asyncio.create_task(ingest(big_file(2), batch_size=10, catalog="shopify_first"))
    second = asyncio.create_task(ingest(big_file(8), batch_size=10, catalog="shopify_second"))
    await first
    assert gc.get_threshold()[0] > before[0]  # still raised: the second run is going on
    await second
    assert gc.get_threshold() == before
    assert seen and min(seen) > before[0]


async def test_an_item_the_store_refuses_is_skipped_not_fatal(ingest: Ingest, store: CatalogStore,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import bulk.mapping.variants

    # a rule the store enforces but the assembler does not know (simulated by relaxing the assembler)
    monkeypatch.setattr(bulk.mapping.variants, "MAX_VALUE_CHARS", 10**9)
    body = jsonl(product(1), variant(11, 1), variant(12, 1, values=("x" * 5001,)), variant(13, 1))
    outcome = await ingest(body)
    assert outcome.items_written == 2
    [skip] = outcome.skipped
    assert (skip.reason, skip.count) == ("invalid_value", 1) and "variant 12" in skip.examples[0]
    assert sorted(await all_items(store)) == ["SKU-11", "SKU-13"]
