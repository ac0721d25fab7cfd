"""Shopify webhooks → catalog changes. Pure code: no I/O.

- `verify_hmac`: `X-Shopify-Hmac-Sha256` is base64(HMAC-SHA256(raw body, app client secret)); checked
  with a constant-time compare against each configured secret (two during a rotation).
- `parse_webhook`: a decoded payload, once its topic's strict schema (`bulk.mapping.payload_schemas`)
  accepted it → one change: a `ProductSnapshot` (products/create|update), a `ProductDeleted`, an
  `InventoryLevelChanged` or a `BulkOperationFinished`. A payload that does not fit is refused whole.
- `product_items`: a snapshot → catalog items.

REST payloads (integer ids, lower-case enums, `option1..3`, `images`/`media`) and Admin GraphQL product
nodes are both turned into the bulk query's line shapes (`bulk.mapping.variants.BulkLine`) and mapped by the
bulk path's own `product_record`/`variant_item`: one product gives the same items whichever way it
arrives, with the same skip rules (invalid id, missing SKU, values over 5,000 characters).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import msgspec
import orjson

from bulk.errors import InvalidWebhookPayload
from bulk.mapping.payload_schemas import (
    BULK_OPERATIONS_FINISH,
    INVENTORY_LEVELS_UPDATE,
    PRODUCTS_CREATE,
    PRODUCTS_DELETE,
    PRODUCTS_UPDATE,
    TOPICS,
    RestInventoryLevel,
    RestProduct,
    RestProductDeleted,
    RestVariant,
    check_not_future,
    validate,
)
from bulk.mapping.variants import (
    INVENTORY_ITEM_PREFIX,
    PRODUCT_PREFIX,
    VARIANT_PREFIX,
    BulkLine,
    FeaturedMedia,
    Image,
    LineError,
    OptionName,
    Preview,
    Ref,
    SelectedOption,
    Skip,
    gid_id,
    gid_number,
    product_record,
    variant_item,
)
from catalog_store.items import CatalogItem, Identifier
from catalog_store.rules import MAX_VALUE_CHARS

__all__ = [
    "BULK_OPERATIONS_FINISH", "INVENTORY_LEVELS_UPDATE", "MALFORMED_VARIANT", "MAX_PAYLOAD_VARIANTS", "PRODUCTS_CREATE",
    "PRODUCTS_DELETE", "PRODUCTS_UPDATE", "TOPICS", "BulkOperationFinished", "Change", "InventoryLevelChanged",
    "ProductDeleted", "ProductItems", "ProductSnapshot", "decode_payload", "parse_webhook", "product_from_graphql",
    "product_from_rest", "product_items", "sign", "verify_hmac",
]

MAX_PAYLOAD_VARIANTS: Final = 100  # Shopify sends full objects for a product's first 100 variants only
MALFORMED_VARIANT: Final = "malformed_variant"  # skip reason: a variant Shopify would never describe so


# -- signatures ------------------------------------------------------------------------------------


def sign(body: bytes, secret: str) -> str:
    """The `X-Shopify-Hmac-Sha256` header Shopify sends for `body`."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def verify_hmac(body: bytes, signature: str | None, secrets: Sequence[str]) -> bool:
    """True when `signature` is the HMAC of `body` under one of `secrets` (constant-time compares;
    every secret is tried, so the time does not tell which one matched)."""
    if not signature or not secrets:
        return False
    try:
        given = base64.b64decode(signature.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    if len(given) != hashlib.sha256().digest_size:
        return False
    matched = False
    for secret in secrets:
        expected = hmac.new(secret.encode(), body, hashlib.sha256).digest()
        matched |= hmac.compare_digest(expected, given)
    return matched


def decode_payload(body: bytes) -> dict[str, Any]:
    """The JSON object of a webhook body (integers of any size stay exact)."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidWebhookPayload(f"webhook body is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise InvalidWebhookPayload(f"webhook body is a JSON {type(payload).__name__}, not an object")
    return payload


# -- changes ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class ProductSnapshot:
    """A product as Shopify described it, in the bulk query's line shapes.

    `complete` is False when the description lists only some of its variants (a webhook payload of a
    product with more than 100 variants): the product must then be read through the Admin API.
    """

    product: BulkLine
    variants: list[BulkLine]
    variant_images: dict[str, str] = field(default_factory=dict)  # variant id → image URL
    complete: bool = True

    @property
    def product_id(self) -> str:
        return gid_id(self.product.id, PRODUCT_PREFIX)

    @property
    def updated_at(self) -> datetime:
        assert self.product.updated_at is not None  # checked when the snapshot is built
        return self.product.updated_at

    @property
    def variant_ids(self) -> list[str]:
        """The numeric ids of the variants described (a malformed one is left out: it maps to a skip)."""
        numbers = (gid_number(variant.id, VARIANT_PREFIX) for variant in self.variants)
        return [number for number in numbers if number is not None]


@dataclass(frozen=True, slots=True)
class ProductDeleted:
    product_id: str


@dataclass(frozen=True, slots=True)
class InventoryLevelChanged:
    """One location's level changed; the items need the variant's total, read through the Admin API."""

    inventory_item_id: str
    location_id: str | None
    available: int | None


@dataclass(frozen=True, slots=True)
class BulkOperationFinished:
    operation_id: str
    status: str | None
    error_code: str | None


Change = ProductSnapshot | ProductDeleted | InventoryLevelChanged | BulkOperationFinished


def parse_webhook(topic: str, payload: Mapping[str, Any], *, received_at: datetime | None = None) -> Change:
    """The change a webhook payload describes, after its topic's schema (`payload_schemas`) accepted
    it. `received_at`: when the delivery arrived (a product's `updated_at` may not be later, beyond
    the clock skew allowed). Raises InvalidWebhookPayload (unknown topic included): nothing is applied."""
    body = validate(topic, payload)
    if isinstance(body, RestProduct):
        snapshot = _snapshot(body)
        check_not_future(body.updated_at, received_at, f"product {body.id}")
        return snapshot
    if isinstance(body, RestProductDeleted):
        return ProductDeleted(str(body.id))
    if isinstance(body, RestInventoryLevel):
        return InventoryLevelChanged(str(body.inventory_item_id), str(body.location_id), body.available)
    return BulkOperationFinished(body.admin_graphql_api_id, body.status.upper(),
                                 None if body.error_code is None else body.error_code.upper())


def product_from_rest(payload: Mapping[str, Any]) -> ProductSnapshot:
    """A products/create or products/update payload → a snapshot. Raises InvalidWebhookPayload."""
    body = validate(PRODUCTS_UPDATE, payload)
    assert isinstance(body, RestProduct)
    return _snapshot(body)


def _by_position(position: int | None) -> int:
    return position if position is not None else 0


def _featured_image(product: RestProduct) -> str | None:
    """The product's featured media: the first of `media` (an image, or a video's preview image), as
    GraphQL's `featuredMedia`; payloads without `media` give their first image."""
    if product.media is not None:
        media = sorted(product.media, key=lambda m: _by_position(m.position))
        url = media[0].preview_image.src if media and media[0].preview_image is not None else None
    else:
        url = product.image.src if product.image is not None else None
    return url or None


def _variant_images(product: RestProduct) -> dict[str, str]:
    """Variant id → the variant's own image URL (its `image_id` in `images`, else a media naming it)."""
    by_image_id: dict[int, str] = {}
    for image in sorted(product.images or (), key=lambda i: _by_position(i.position)):
        if image.id is not None and image.src:
            by_image_id.setdefault(image.id, image.src)
    by_variant: dict[int, str] = {}
    for media in sorted(product.media or (), key=lambda m: _by_position(m.position)):
        url = media.preview_image.src if media.preview_image is not None else None
        if media.media_content_type in (None, "IMAGE") and url:
            for variant_id in media.variant_ids or ():
                by_variant.setdefault(variant_id, url)
    found: dict[str, str] = {}
    for variant in product.variants:
        if variant.image_id is msgspec.UNSET:
            url = by_variant.get(variant.id)
        else:
            url = by_image_id.get(variant.image_id) if variant.image_id is not None else None
        if url is not None:
            found[str(variant.id)] = url
    return found


def _snapshot(body: RestProduct) -> ProductSnapshot:
    product_id = str(body.id)
    names = [o.name for o in sorted(body.options or (), key=lambda o: _by_position(o.position))]
    image_url = _featured_image(body)
    product = BulkLine(
        id=PRODUCT_PREFIX + product_id,
        title=body.title,
        handle=body.handle,
        vendor=body.vendor,
        product_type=body.product_type,
        status=body.status,
        updated_at=body.updated_at,
        # REST's published_scope ("web" or "global") says where a product would be published; it is
        # on the online store when it has a published_at, which is what GraphQL's publishedAt gives.
        published_at=body.published_at,
        online_store_url=None,
        options=[OptionName(n) for n in names],
        featured_media=FeaturedMedia(Preview(Image(image_url))) if image_url is not None else None,
    )
    variants = [_rest_variant(v, product_id, names) for v in body.variants]
    listed = body.variant_gids
    complete = len(body.variants) < MAX_PAYLOAD_VARIANTS and not (listed is not None and len(listed) > len(variants))
    return ProductSnapshot(product, variants, _variant_images(body), complete)


def _rest_variant(variant: RestVariant, product_id: str, option_names: list[str]) -> BulkLine:
    values = (variant.option1, variant.option2, variant.option3)
    selected = [SelectedOption(name, value) for name, value in zip(option_names[:3], values) if value is not None]
    return BulkLine(
        id=VARIANT_PREFIX + str(variant.id),
        parent_id=PRODUCT_PREFIX + product_id,
        title=variant.title,
        sku=variant.sku,
        price=variant.price,
        compare_at_price=variant.compare_at_price,
        inventory_quantity=variant.inventory_quantity,
        updated_at=variant.updated_at,
        selected_options=selected,
        inventory_item=None if variant.inventory_item_id is None else Ref(
            INVENTORY_ITEM_PREFIX + str(variant.inventory_item_id)),
    )


def product_from_graphql(node: Mapping[str, Any], variant_nodes: Sequence[Mapping[str, Any]]) -> ProductSnapshot:
    """An Admin GraphQL product (the `CatalogProductFields` of bulk.shopify.documents) and all its variants
    (`CatalogVariantFields`) → a complete snapshot. Raises InvalidWebhookPayload."""
    try:
        product = msgspec.convert(node, BulkLine, strict=False)
        variants = [msgspec.convert(v, BulkLine, strict=False) for v in variant_nodes]
    except msgspec.ValidationError as exc:
        raise InvalidWebhookPayload(f"Shopify's product {str(node.get('id'))[:80]} is not readable: {exc}") from None
    if product.updated_at is None or product.updated_at.tzinfo is None:
        raise InvalidWebhookPayload(f"Shopify's product {str(node.get('id'))[:80]} has no updatedAt")
    try:
        gid_id(product.id, PRODUCT_PREFIX)
    except LineError as exc:
        raise InvalidWebhookPayload(str(exc)) from None
    images: dict[str, str] = {}
    for line, raw in zip(variants, variant_nodes):
        line.parent_id = product.id
        media = raw.get("media")
        for entry in (media.get("nodes") or ()) if isinstance(media, Mapping) else ():
            image = entry.get("image") if isinstance(entry, Mapping) else None
            url = image.get("url") if isinstance(image, Mapping) else None
            variant_number = gid_number(line.id, VARIANT_PREFIX)
            if isinstance(url, str) and url and variant_number is not None:
                images[variant_number] = url
                break
    return ProductSnapshot(product, variants, images, complete=True)


# -- items ------------------------------------------------------------------------------------------


@dataclass(slots=True)
class ProductItems:
    """The items of a product snapshot and the variants skipped (with why, as in a full sync)."""

    product_id: str
    updated_at: datetime
    items: list[CatalogItem]
    skips: list[Skip]

    @property
    def skipped_variant_ids(self) -> list[str]:
        return [s.variant_id for s in self.skips]


def product_items(
    snapshot: ProductSnapshot,
    *,
    identifier: Identifier,
    shop_domain: str,
    store_name: str,
    online_store_url: str | None = None,
) -> ProductItems:
    """Catalog items of a snapshot, by the bulk path's rules.

    `online_store_url`: the product's URL as the bulk query last read it (`onlineStoreUrl`, e.g. on a
    custom domain), which webhook payloads lack; used only while the product is published.
    Raises InvalidWebhookPayload when the product itself is unusable (no title, status or updated_at).
    """
    line = snapshot.product
    if online_store_url is not None and line.published_at and not line.online_store_url:
        line = msgspec.structs.replace(line, online_store_url=online_store_url)
    try:
        record = product_record(line, shop_domain, store_name)
    except LineError as exc:
        raise InvalidWebhookPayload(f"product {snapshot.product.id}: {exc}") from None
    items: list[CatalogItem] = []
    skips: list[Skip] = []
    for variant in snapshot.variants:
        try:
            result = variant_item(variant, record, identifier, store_name)
        except LineError as exc:
            variant_id = (variant.id or "?").rsplit("/", 1)[-1]
            skips.append(Skip(variant_id, MALFORMED_VARIANT, f"variant {variant_id[:40]}: {exc}"))
            continue
        if isinstance(result, Skip):
            skips.append(result)
            continue
        url = snapshot.variant_images.get(result.shopify_variant_id)
        if url is not None and len(url) <= MAX_VALUE_CHARS:  # a longer one is dropped, as in a full sync
            result = msgspec.structs.replace(result, variant_image_url=url)
        items.append(result)
    return ProductItems(record.product_id, record.updated_at, items, skips)
