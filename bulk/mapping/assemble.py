"""Bulk JSONL lines → batches of catalog items: the join of children to parents. Pure code: no I/O.

The products bulk query (`bulk.shopify.documents.PRODUCTS_BULK_QUERY`) yields three kinds of lines: Product,
ProductVariant (`__parentId` = product gid) and MediaImage (`__parentId` = variant gid). With
`groupObjects: false` children come after their parent but not next to it, so children are joined
by `__parentId` through a dict of compact `ProductRecord`s: the only state that grows with the file
(one record per product, never one per variant).

A variant becomes an item (`bulk.mapping.variants.variant_item`) as soon as its line is read. Its
image (the first MediaImage line of the variant) arrives later: while the item is still held by the
assembler (the batch being filled and `hold_batches` full ones) it replaces the held item; otherwise
it is emitted as a `VariantImage` patch for `CatalogStore.set_variant_image`, which the writer
applies after the batch holding the item.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import msgspec

from bulk.mapping.variants import (
    IMAGE_TOO_LONG,
    MAX_EXAMPLES,
    MEDIA_IMAGE_PREFIX,
    PRODUCT_PREFIX,
    UNKNOWN_PRODUCT,
    VARIANT_PREFIX,
    BulkLine,
    LineError,
    ProductRecord,
    Skip,
    VariantImage,
    gid_id,
    product_record,
    variant_image,
    variant_item,
)
from catalog_store.items import CatalogItem, Identifier
from catalog_store.models import SkipCount
from catalog_store.rules import MAX_VALUE_CHARS


@dataclass(slots=True)
class Batch:
    """Items to write together, then image patches for variants of earlier batches."""

    items: list[CatalogItem] = field(default_factory=list)
    images: list[VariantImage] = field(default_factory=list)


@dataclass(slots=True)
class SkipTally:
    """Skipped variants counted by reason, with a few examples each (for the merchant)."""

    max_examples: int = MAX_EXAMPLES
    by_reason: dict[str, SkipCount] = field(default_factory=dict)
    items: int = 0  # variants skipped (an image dropped from a kept item is listed, not counted here)

    def add(self, reason: str, example: str, *, item: bool = True, count: int = 1) -> None:
        entry = self.by_reason.get(reason)
        if entry is None:
            entry = self.by_reason[reason] = SkipCount(reason=reason)
        entry.count += count
        self.items += item * count
        if len(entry.examples) < self.max_examples and example not in entry.examples:
            entry.examples.append(example)

    def snapshot(self) -> list[SkipCount]:
        return [SkipCount(s.reason, s.count, list(s.examples)) for s in self.by_reason.values()]


# -- the assembler ---------------------------------------------------------------------------------


LineNumber = Callable[[int], int]


class _Generations:
    """Bounded memory of recent keys: two generations of at most `size` entries each."""

    __slots__ = ("size", "_new", "_old")

    def __init__(self, size: int) -> None:
        self.size = size
        self._new: dict[str, None] = {}
        self._old: dict[str, None] = {}

    def add(self, key: str) -> None:
        self._new[key] = None
        if len(self._new) >= self.size:
            self._old, self._new = self._new, {}

    def __contains__(self, key: str) -> bool:
        return key in self._new or key in self._old


class Assembler:
    """Joins lines by `__parentId` and cuts the resulting items into batches of `batch_size`.

    Feed decoded lines in file order with `feed`; take released batches from its return value and
    the rest from `flush`. Unusable lines go to `on_bad_line(line_number, reason)`.

    Full batches are held back `hold_batches` batches before release, so that a variant's image
    line arriving soon after it (Shopify writes a chunk of products, then their variants, then
    their media) is merged into the item instead of costing a store round trip.
    """

    def __init__(
        self,
        *,
        identifier: Identifier,
        shop_domain: str,
        store_name: str,
        on_bad_line: Callable[[int, str], None],
        batch_size: int = 1000,
        hold_batches: int = 4,
        max_examples: int = MAX_EXAMPLES,
    ) -> None:
        if batch_size < 1 or hold_batches < 0:
            raise ValueError("batch_size must be at least 1 and hold_batches at least 0")
        self.identifier = identifier
        self.shop_domain = shop_domain
        self.store_name = store_name
        self.batch_size = batch_size
        self.hold_batches = hold_batches
        self.skips = SkipTally(max_examples)
        self.variants = 0  # variant lines read
        self.ignored_lines = 0  # lines of other node types (e.g. a non-image media)
        self._on_bad_line = on_bad_line
        self._products: dict[str, ProductRecord] = {}
        self._shared: dict[object, object] = {}
        self._filling: dict[str, CatalogItem] = {}  # the batch being filled, by variant id
        self._held: deque[dict[str, CatalogItem]] = deque()  # full batches not released yet
        self._images: list[VariantImage] = []  # patches for variants of released batches
        # What later media lines need to know about recent variants, in bounded memory:
        self._released: tuple[dict[str, CatalogItem], ...] = ()  # the last two released batches
        window = (hold_batches + 2) * batch_size
        self._patched = _Generations(window)  # variants whose first image patch is emitted
        self._skipped = _Generations(window)  # variants skipped lately

    @property
    def product_count(self) -> int:
        return len(self._products)

    def feed(self, lines: Sequence[BulkLine], line_number: LineNumber) -> list[Batch]:
        """Consume decoded lines; `line_number(i)` gives the file line of `lines[i]` (for reports)."""
        done: list[Batch] = []
        products = self._products
        identifier, store_name, batch_size = self.identifier, self.store_name, self.batch_size
        filling = self._filling
        variants = 0
        for index, line in enumerate(lines):
            parent = line.parent_id
            gid = line.id or ""
            try:
                if parent is None:
                    if gid.startswith(PRODUCT_PREFIX):
                        self._add_product(line)
                    else:
                        self.ignored_lines += 1
                elif gid.startswith(VARIANT_PREFIX):
                    variants += 1
                    product = products.get(parent)
                    if product is None:
                        variant_id = gid_id(gid, VARIANT_PREFIX)
                        self._skip(Skip(variant_id, UNKNOWN_PRODUCT, f"variant {variant_id}: product {parent[:80]} is not in the file"))
                        continue
                    result = variant_item(line, product, identifier, store_name)
                    if type(result) is CatalogItem:
                        filling[result.shopify_variant_id] = result
                        if len(filling) >= batch_size:
                            self._held.append(filling)
                            filling = self._filling = {}
                            if len(self._held) > self.hold_batches:
                                done.append(self._release(self._held.popleft()))
                    else:
                        self._skip(result)  # type: ignore[arg-type]
                elif gid.startswith(MEDIA_IMAGE_PREFIX):
                    patch = variant_image(line)
                    if patch is not None:
                        self._add_image(patch)
                else:
                    self.ignored_lines += 1
            except LineError as exc:
                self._on_bad_line(line_number(index), str(exc))
        self.variants += variants
        return done

    def flush(self) -> list[Batch]:
        """Release everything still held (at the end of the file)."""
        chunks = [*self._held, self._filling]
        self._held.clear()
        self._filling = {}
        batches = [self._release(chunk) for chunk in chunks if chunk]
        if self._images:  # patches only: their variants are in batches released earlier
            batches.append(self._release({}))
        return batches

    def _release(self, chunk: dict[str, CatalogItem]) -> Batch:
        batch = Batch(list(chunk.values()), self._images)
        self._released = (chunk, *self._released[:1])
        self._images = []
        return batch

    def _skip(self, skip: Skip) -> None:
        self.skips.add(skip.reason, skip.example)
        self._skipped.add(skip.variant_id)

    def _add_product(self, line: BulkLine) -> None:
        record = product_record(line, self.shop_domain, self.store_name)
        shared = self._shared
        record.vendor = shared.setdefault(record.vendor, record.vendor)  # type: ignore[assignment]
        record.product_type = shared.setdefault(record.product_type, record.product_type)  # type: ignore[assignment]
        record.status = shared.setdefault(record.status, record.status)  # type: ignore[assignment]
        record.options = shared.setdefault(record.options, record.options)  # type: ignore[assignment]
        self._products[line.id] = record  # type: ignore[index]

    def _add_image(self, patch: VariantImage) -> None:
        variant_id = patch.variant_id
        if len(patch.url) > MAX_VALUE_CHARS:
            self.skips.add(
                IMAGE_TOO_LONG,
                f"variant {variant_id}: image URL longer than {MAX_VALUE_CHARS:,} characters (not set)",
                item=False,
            )
            return
        holder = self._filling
        item = holder.get(variant_id)
        if item is None:
            for holder in reversed(self._held):  # media follow their variants closely: newest first
                item = holder.get(variant_id)
                if item is not None:
                    break
        if item is not None:  # not released yet: set it in the held item
            if item.variant_image_url is None:
                holder[variant_id] = msgspec.structs.replace(item, variant_image_url=patch.url)
            return
        for chunk in self._released:
            item = chunk.get(variant_id)
            if item is not None and item.variant_image_url is not None:
                return  # released with its first image
        if variant_id in self._patched or variant_id in self._skipped:
            return
        self._patched.add(variant_id)
        self._images.append(patch)
