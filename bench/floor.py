"""Where the ingest's time goes, and how low it could go: `python -m bench.floor [--variants N]`.

The emulator (its own process) generates a shop and runs the products bulk query; the result file is
read once into memory, then each stage below runs on it in this process, without HTTP, best of
`--repeat` runs, so only the CPU work differs:

- orjson:     `orjson.loads` of every line (the ingest benchmark's baseline, without the download);
- typed:      the pipeline's typed msgspec decoding, one call per 32 KiB piece;
- typed+meta: the same with the item rules msgspec could check in C during decoding
              (`msgspec.Meta`: 5,000-character values, money as a decimal pattern); meta-length:
              the length bounds only. Kept out of the pipeline: see docs/benchmarks.md;
- typed+keep: the same, keeping every decoded line (what retaining objects costs: allocation);
- floor:      typed decoding + the least any item mapping does: join each variant to its product by
              `__parentId` and keep one 22-field struct per variant in a dict; no checks, no index;
- assemble:   typed decoding + `bulk.mapping.assemble.Assembler` (the real mapping, items discarded);
- memory:     the same + `MemoryCatalogStore.write_items` (checks, sizes, indexes).

`ratio` is the orjson stage's time divided by the stage's: the share of the baseline's throughput
the stage would leave (download excluded, so a little higher than over HTTP).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
from collections.abc import Callable
from datetime import datetime
from typing import Annotated

import aiohttp
import msgspec
import orjson

from bench.ingest import _bulk_result, _emulator
from bulk.full_sync.jsonl import Block, LineDecoder, MalformedLines
from bulk.mapping.assemble import Assembler
from bulk.mapping.variants import (
    PRODUCT_PREFIX,
    VARIANT_PREFIX,
    BulkLine,
    FeaturedMedia,
    Image,
    OptionName,
    Ref,
    SelectedOption,
)
from catalog_store.items import Identifier
from catalog_store.memory import MemoryCatalogStore

SHOP = "bench.myshopify.com"
CATALOG = "shopify_bench"


class _Item(msgspec.Struct, gc=False):
    """As many fields as a CatalogItem."""

    id: str
    store_name: str
    product_id: str
    variant_id: str
    product_title: str | None
    variant_title: str | None
    status: str | None
    product_image_url: str | None
    variant_image_url: str | None
    vendor: str | None
    product_type: str | None
    product_url: str | None
    handle: str | None
    published_scope: str | None
    price: str | None
    compare_at_price: str | None
    inventory_quantity: int | None
    options: tuple[str, ...]
    option_values: tuple[str, ...]
    sku: str | None
    updated_at: datetime | None
    inventory_item_id: str | None


_Long = Annotated[str, msgspec.Meta(max_length=5000)]
_Money = Annotated[str, msgspec.Meta(pattern=r"^-?[0-9]{1,20}(\.[0-9]{1,10})?$")]


def _constrained_line(money: type) -> type[msgspec.Struct]:
    """`BulkLine` with the rules msgspec can check while decoding: value lengths, and `money` for prices."""
    fields: list[tuple[str, object, object]] = [
        (name, _Long | None, None) for name in ("title", "handle", "vendor", "product_type", "sku")]
    fields += [(name, money | None, None) for name in ("price", "compare_at_price")]
    fields += [(name, kind, None) for name, kind in (
        ("id", str | None), ("parent_id", str | None), ("status", str | None), ("updated_at", datetime | None),
        ("published_at", str | None), ("online_store_url", str | None), ("options", list[OptionName] | None),
        ("featured_media", FeaturedMedia | None), ("inventory_quantity", int | None),
        ("selected_options", list[SelectedOption] | None), ("inventory_item", Ref | None),
        ("image", Image | None))]
    return msgspec.defstruct("ConstrainedLine", fields, gc=False, rename=dict(zip(BulkLine.__struct_fields__, BulkLine.__struct_encode_fields__)))


def _stages(data: bytes) -> dict[str, Callable[[], object]]:
    pieces = [piece.data for piece in Block(data, 1, data.count(b"\n")).pieces()]
    decoder = msgspec.json.Decoder(BulkLine)

    def parse_orjson() -> object:
        loads = orjson.loads
        for line in data.splitlines():
            loads(line)
        return None

    def typed() -> object:
        for piece in pieces:
            decoder.decode_lines(piece)
        return None

    constrained = msgspec.json.Decoder(_constrained_line(_Money))
    lengths_only = msgspec.json.Decoder(_constrained_line(str))

    def typed_meta() -> object:
        for piece in pieces:
            constrained.decode_lines(piece)
        return None

    def meta_length() -> object:
        for piece in pieces:
            lengths_only.decode_lines(piece)
        return None

    def typed_keep() -> object:
        return [decoder.decode_lines(piece) for piece in pieces]

    def floor() -> object:
        products: dict[str, BulkLine] = {}
        items: dict[str, _Item] = {}
        skip = len(VARIANT_PREFIX)
        for piece in pieces:
            for line in decoder.decode_lines(piece):
                gid = line.id or ""
                if line.parent_id is None:
                    if gid.startswith(PRODUCT_PREFIX):
                        products[gid] = line
                elif gid.startswith(VARIANT_PREFIX):
                    product = products[line.parent_id]
                    variant_id = gid[skip:]
                    values = tuple([o.value for o in line.selected_options or ()])
                    items[variant_id] = _Item(
                        variant_id, "Bench Store", product.id or "", variant_id, product.title, line.title,
                        product.status, None, None, product.vendor, product.product_type, product.online_store_url,
                        product.handle, None, line.price, line.compare_at_price, line.inventory_quantity, (),
                        values, line.sku, product.updated_at, None,
                    )
        return items

    def assembler() -> Assembler:
        return Assembler(identifier=Identifier.SHOPIFY_VARIANT_ID, shop_domain=SHOP, store_name="Bench Store",
                         on_bad_line=lambda line, reason: None)

    def assemble() -> object:
        lines = LineDecoder(BulkLine, MalformedLines())
        mapper = assembler()
        for piece in Block(data, 1, data.count(b"\n")).pieces():
            mapper.feed(*lines.decode(piece))
        mapper.flush()
        return None

    def memory() -> object:
        async def ingest() -> MemoryCatalogStore:
            store = MemoryCatalogStore()
            await store.ensure_catalog(CATALOG, SHOP, "Bench Store")
            lines = LineDecoder(BulkLine, MalformedLines())
            mapper = assembler()
            for piece in Block(data, 1, data.count(b"\n")).pieces():
                for batch in mapper.feed(*lines.decode(piece)):
                    await store.write_items(CATALOG, batch.items, run_id="bench")
            for batch in mapper.flush():
                await store.write_items(CATALOG, batch.items, run_id="bench")
            return store

        return asyncio.run(ingest())

    return {"orjson": parse_orjson, "typed": typed, "typed+meta": typed_meta, "meta-length": meta_length,
            "typed+keep": typed_keep, "floor": floor,
            "assemble": assemble, "memory": memory}


def _best(stage: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        started = time.perf_counter()
        kept = stage()
        best = min(best, time.perf_counter() - started)
        del kept
    return best


async def _download(url: str) -> bytes:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        response.raise_for_status()
        return await response.read()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with _emulator(args.variants) as base_url:
        url, _, _ = asyncio.run(_bulk_result(base_url))
        data = asyncio.run(_download(url))
    gc.set_threshold(20_000, 10, 10)  # what run_ingest sets while it runs
    print(f"{args.variants:,} variants, {len(data) / 1e6:.0f} MB of JSONL; best of {args.repeat}")
    print(f"{'stage':12s} {'time':>8s} {'µs/variant':>11s} {'ratio':>6s}")
    reference = None
    for name, stage in _stages(data).items():
        seconds = _best(stage, args.repeat)
        reference = reference or seconds
        print(f"{name:12s} {seconds:7.3f}s {seconds / args.variants * 1e6:10.2f} {reference / seconds:6.2f}",
              flush=True)


if __name__ == "__main__":
    main()
