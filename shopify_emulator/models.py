"""The emulated shop's objects: plain records, treated as immutable once installed in a store
(mutations build a copy and install it), so a bulk export running in a thread never sees half a change.

Timestamps are integer Unix seconds (Shopify's precision); formatting happens at the edges.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import ClassVar, NamedTuple
from zoneinfo import ZoneInfo

_GID = re.compile(r"^gid://shopify/([A-Za-z]+)/(\d+)(?:\?.*)?$")


def gid(type_name: str, number: int) -> str:
    return f"gid://shopify/{type_name}/{number}"


def parse_gid(value: str | int, type_name: str | None = None) -> tuple[str, int] | None:
    """`("Product", 123)` from a gid, a numeric string or an int (typed as `type_name`); None if malformed."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return (type_name or "", value) if value > 0 else None
    text = str(value).strip()
    if text.isdigit():
        return (type_name or "", int(text)) if int(text) > 0 else None
    match = _GID.match(text)
    if not match or (type_name and match.group(1) != type_name):
        return None
    return match.group(1), int(match.group(2))


def iso_utc(ts: int | None) -> str | None:
    """GraphQL DateTime: `2026-01-15T10:00:00Z`."""
    if ts is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def iso_local(ts: int | None, tz: ZoneInfo) -> str | None:
    """REST timestamp in the shop's time zone: `2026-01-15T05:00:00-05:00`."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz).isoformat()


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(slots=True, eq=False)
class MediaImage:
    TYPENAME: ClassVar[str] = "MediaImage"
    id: int
    url: str
    alt: str
    width: int
    height: int
    created_at: int

    @property
    def gid(self) -> str:
        return gid("MediaImage", self.id)


@dataclass(slots=True, eq=False)
class Video:
    """A product video: only ever a product's featured media; its preview is an image."""

    TYPENAME: ClassVar[str] = "Video"
    id: int
    preview_url: str
    alt: str
    created_at: int

    @property
    def gid(self) -> str:
        return gid("Video", self.id)


@dataclass(slots=True, eq=False)
class ProductOption:
    TYPENAME: ClassVar[str] = "ProductOption"
    id: int
    name: str
    position: int
    values: tuple[str, ...]

    @property
    def gid(self) -> str:
        return gid("ProductOption", self.id)


@dataclass(slots=True, eq=False)
class Variant:
    TYPENAME: ClassVar[str] = "ProductVariant"
    id: int
    position: int
    option_values: tuple[str, ...]
    sku: str | None
    barcode: str | None
    price: str
    compare_at_price: str | None
    inventory_quantity: int
    inventory_item_id: int
    image: MediaImage | None
    created_at: int
    updated_at: int
    taxable: bool = True
    inventory_policy: str = "DENY"
    product: Product = field(default=None, repr=False)  # type: ignore[assignment]

    @property
    def gid(self) -> str:
        return gid("ProductVariant", self.id)

    @property
    def title(self) -> str:
        return " / ".join(self.option_values)


@dataclass(slots=True, eq=False)
class Product:
    TYPENAME: ClassVar[str] = "Product"
    id: int
    title: str
    handle: str
    vendor: str
    product_type: str
    status: str
    tags: tuple[str, ...]
    description_html: str
    created_at: int
    updated_at: int
    published_at: int | None
    options: tuple[ProductOption, ...]
    variants: tuple[Variant, ...]
    featured_media: MediaImage | Video | None  # the product's own picture; GraphQL featuredMedia is media[0]

    def __post_init__(self) -> None:
        for variant in self.variants:
            variant.product = self

    @property
    def gid(self) -> str:
        return gid("Product", self.id)

    @property
    def media(self) -> tuple[MediaImage | Video, ...]:
        """All product media: the featured one first, then the variants' own images."""
        seen: dict[int, MediaImage | Video] = {}
        if self.featured_media is not None:
            seen[self.featured_media.id] = self.featured_media
        for variant in self.variants:
            if variant.image is not None:
                seen.setdefault(variant.image.id, variant.image)
        return tuple(seen.values())

    def copy(self) -> Product:
        """A copy whose variants are copies too (to mutate before installing it)."""
        variants = tuple(
            Variant(
                v.id, v.position, v.option_values, v.sku, v.barcode, v.price, v.compare_at_price,
                v.inventory_quantity, v.inventory_item_id, v.image, v.created_at, v.updated_at,
                v.taxable, v.inventory_policy,
            )
            for v in self.variants
        )
        return Product(
            self.id, self.title, self.handle, self.vendor, self.product_type, self.status, self.tags,
            self.description_html, self.created_at, self.updated_at, self.published_at, self.options,
            variants, self.featured_media,
        )


class SelectedOption(NamedTuple):
    name: str
    value: str
    option_id: int
    TYPENAME = "SelectedOption"


class InventoryItem(NamedTuple):
    variant: Variant
    TYPENAME = "InventoryItem"

    @property
    def gid(self) -> str:
        return gid("InventoryItem", self.variant.inventory_item_id)


class Image(NamedTuple):
    """`Image` as GraphQL exposes it: the picture of a MediaImage (or a Video's preview)."""

    id: int | None
    url: str
    width: int
    height: int
    alt: str
    TYPENAME = "Image"


class MediaPreviewImage(NamedTuple):
    image: Image
    TYPENAME = "MediaPreviewImage"


def image_of(media: MediaImage | Video) -> Image:
    if isinstance(media, MediaImage):
        return Image(media.id, media.url, media.width, media.height, media.alt)
    return Image(None, media.preview_url, 1280, 720, media.alt)


def published(product: Product) -> bool:
    """Visible on the online store: the only case with an onlineStoreUrl and REST published_scope."""
    return product.published_at is not None and product.status in ("ACTIVE", "UNLISTED")
