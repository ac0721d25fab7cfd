"""Shopify webhooks → catalog changes. Pure code: no I/O.

- `verify_hmac`: `X-Shopify-Hmac-Sha256` is base64(HMAC-SHA256(raw body, app client secret)); checked
  with a constant-time compare against each configured secret (two during a rotation).
- `parse_webhook`: a decoded payload → one change: a `ProductSnapshot` (products/create|update), a
  `ProductDeleted`, an `InventoryLevelChanged` or a `BulkOperationFinished`.
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

PRODUCTS_CREATE: Final = "products/create"
PRODUCTS_UPDATE: Final = "products/update"
PRODUCTS_DELETE: Final = "products/delete"
INVENTORY_LEVELS_UPDATE: Final = "inventory_levels/update"
BULK_OPERATIONS_FINISH: Final = "bulk_operations/finish"
# Every topic the gateway subscribes to (in registration order) and accepts.
TOPICS: Final = (PRODUCTS_CREATE, PRODUCTS_UPDATE, PRODUCTS_DELETE, INVENTORY_LEVELS_UPDATE, BULK_OPERATIONS_FINISH)

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


def parse_webhook(topic: str, payload: Mapping[str, Any]) -> Change:
    """The change a webhook payload describes. Raises InvalidWebhookPayload (unknown topic included)."""
    if topic in (PRODUCTS_CREATE, PRODUCTS_UPDATE):
        return product_from_rest(payload)
    if topic == PRODUCTS_DELETE:
        return ProductDeleted(_rest_id(payload.get("id"), "product id"))
    if topic == INVENTORY_LEVELS_UPDATE:
        available = payload.get("available")
        if available is not None and (isinstance(available, bool) or not isinstance(available, int)):
            raise InvalidWebhookPayload(f"inventory level 'available' {available!r} is not an integer")
        location = payload.get("location_id")
        return InventoryLevelChanged(
            _rest_id(payload.get("inventory_item_id"), "inventory_item_id"),
            None if location is None else _rest_id(location, "location_id"),
            available,
        )
    if topic == BULK_OPERATIONS_FINISH:
        operation_id = payload.get("admin_graphql_api_id")
        if not isinstance(operation_id, str) or not operation_id.startswith("gid://shopify/BulkOperation/"):
            raise InvalidWebhookPayload(f"bulk_operations/finish without a BulkOperation id: {operation_id!r:.80}")
        status, code = payload.get("status"), payload.get("error_code")
        return BulkOperationFinished(operation_id, status.upper() if isinstance(status, str) else None,
                                     code.upper() if isinstance(code, str) else None)
    raise InvalidWebhookPayload(f"unsupported webhook topic {topic!r:.80}",
                                fix=f"Subscribe only to {', '.join(sorted(TOPICS))}.")


def _rest_id(value: Any, what: str) -> str:
    """A REST id (a JSON integer, exact at any size; or a digit string) → its decimal string."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return str(value)
    if isinstance(value, str) and value.isascii() and value.isdigit() and value.strip("0"):
        return value
    raise InvalidWebhookPayload(f"{what} {value!r:.80} is not a Shopify id")


def _text(payload: Mapping[str, Any], key: str, what: str) -> str | None:
    value = payload.get(key)
    if value is None or isinstance(value, str):
        return value
    raise InvalidWebhookPayload(f"{what} {key} {value!r:.80} is not a string")


def _money(value: Any) -> str | None:
    """REST money is a decimal string (kept as written); anything else becomes text that `variant_item`
    validates exactly like a bulk line's (an integer is exact; a float or a bool is refused there)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return f"<{type(value).__name__} {value!r:.40}>"


def _timestamp(value: Any, what: str) -> datetime:
    if not isinstance(value, str):
        raise InvalidWebhookPayload(f"{what} {value!r:.80} is not a timestamp")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidWebhookPayload(f"{what} {value!r:.80} is not an ISO 8601 timestamp") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise InvalidWebhookPayload(f"{what} {value!r:.80} has no time zone")
    return parsed


def _positioned(entries: Any, what: str) -> list[Mapping[str, Any]]:
    if entries is None:
        return []
    if not isinstance(entries, list) or not all(isinstance(e, Mapping) for e in entries):
        raise InvalidWebhookPayload(f"product {what} is not a list of objects")
    return sorted(entries, key=lambda e: e.get("position") if isinstance(e.get("position"), int) else 0)


def _featured_image(payload: Mapping[str, Any]) -> str | None:
    """The product's featured media: the first of `media` (an image, or a video's preview image), as
    GraphQL's `featuredMedia`; payloads without `media` give their first image."""
    if "media" in payload:
        media = _positioned(payload.get("media"), "media")
        preview = media[0].get("preview_image") if media else None
        url = preview.get("src") if isinstance(preview, Mapping) else None
        return url if isinstance(url, str) and url else None
    image = payload.get("image")
    url = image.get("src") if isinstance(image, Mapping) else None
    return url if isinstance(url, str) and url else None


def _variant_images(payload: Mapping[str, Any], variants: list[Mapping[str, Any]]) -> dict[str, str]:
    """Variant id → the variant's own image URL (its `image_id` in `images`, else a media naming it)."""
    by_image_id: dict[int, str] = {}
    for image in _positioned(payload.get("images"), "images"):
        if isinstance(image.get("id"), int) and isinstance(image.get("src"), str) and image["src"]:
            by_image_id.setdefault(image["id"], image["src"])
    by_variant: dict[int, str] = {}
    for media in _positioned(payload.get("media"), "media"):
        preview = media.get("preview_image")
        url = preview.get("src") if isinstance(preview, Mapping) else None
        if media.get("media_content_type") in (None, "IMAGE") and isinstance(url, str) and url:
            for variant_id in media.get("variant_ids") or ():
                if isinstance(variant_id, int):
                    by_variant.setdefault(variant_id, url)
    found: dict[str, str] = {}
    for variant in variants:
        variant_id = variant.get("id")
        if "image_id" in variant:
            url = by_image_id.get(variant["image_id"]) if variant["image_id"] is not None else None
        else:
            url = by_variant.get(variant_id) if isinstance(variant_id, int) else None
        if url is not None:
            found[_rest_id(variant_id, "variant id")] = url
    return found


def product_from_rest(payload: Mapping[str, Any]) -> ProductSnapshot:
    """A products/create or products/update payload → a snapshot. Raises InvalidWebhookPayload."""
    product_id = _rest_id(payload.get("id"), "product id")
    options = _positioned(payload.get("options"), "options")
    names: list[str] = []
    for option in options:
        name = option.get("name")
        if not isinstance(name, str):
            raise InvalidWebhookPayload(f"product {product_id}: option name {name!r:.80} is not a string")
        names.append(name)
    image_url = _featured_image(payload)
    status = _text(payload, "status", "product")
    product = BulkLine(
        id=PRODUCT_PREFIX + product_id,
        title=_text(payload, "title", "product"),
        handle=_text(payload, "handle", "product"),
        vendor=_text(payload, "vendor", "product"),
        product_type=_text(payload, "product_type", "product"),
        status=status,
        updated_at=_timestamp(payload.get("updated_at"), f"product {product_id} updated_at"),
        # REST's published_scope ("web" or "global") says where a product would be published; it is
        # on the online store when it has a published_at, which is what GraphQL's publishedAt gives.
        published_at=_text(payload, "published_at", "product"),
        online_store_url=None,
        options=[OptionName(n) for n in names],
        featured_media=FeaturedMedia(Preview(Image(image_url))) if image_url is not None else None,
    )
    raw_variants = payload.get("variants")
    if raw_variants is None:
        raw_variants = []
    if not isinstance(raw_variants, list) or not all(isinstance(v, Mapping) for v in raw_variants):
        raise InvalidWebhookPayload(f"product {product_id}: variants is not a list of objects")
    variants = [_rest_variant(v, product_id, names) for v in raw_variants]
    listed = payload.get("variant_gids")
    complete = len(raw_variants) < MAX_PAYLOAD_VARIANTS and not (
        isinstance(listed, list) and len(listed) > len(raw_variants)
    )
    return ProductSnapshot(product, variants, _variant_images(payload, raw_variants), complete)


def _rest_variant(variant: Mapping[str, Any], product_id: str, option_names: list[str]) -> BulkLine:
    variant_id = _rest_id(variant.get("id"), f"product {product_id}: variant id")
    selected = []
    for position, name in enumerate(option_names[:3], start=1):
        value = variant.get(f"option{position}")
        if value is not None:
            if not isinstance(value, str):
                raise InvalidWebhookPayload(f"variant {variant_id}: option{position} {value!r:.80} is not a string")
            selected.append(SelectedOption(name, value))
    quantity = variant.get("inventory_quantity")
    if quantity is not None and (isinstance(quantity, bool) or not isinstance(quantity, int)):
        raise InvalidWebhookPayload(f"variant {variant_id}: inventory_quantity {quantity!r:.80} is not an integer")
    inventory_item = variant.get("inventory_item_id")
    return BulkLine(
        id=VARIANT_PREFIX + variant_id,
        parent_id=PRODUCT_PREFIX + product_id,
        title=_text(variant, "title", f"variant {variant_id}"),
        sku=_text(variant, "sku", f"variant {variant_id}"),
        price=_money(variant.get("price")),
        compare_at_price=_money(variant.get("compare_at_price")),
        inventory_quantity=quantity,
        updated_at=_timestamp(variant["updated_at"], f"variant {variant_id} updated_at")
        if variant.get("updated_at") is not None else None,
        selected_options=selected,
        inventory_item=None if inventory_item is None else Ref(
            INVENTORY_ITEM_PREFIX + _rest_id(inventory_item, f"variant {variant_id}: inventory_item_id")),
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
