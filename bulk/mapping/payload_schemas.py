"""The webhook bodies Shopify sends, one strict msgspec schema per topic. Pure code: no I/O.

A body that does not fit its topic's schema is refused whole (`InvalidWebhookPayload`), before
anything is mapped: a signed body is still only as good as its shape, and the topic header is not
signed, so a body must also look like its topic (a products/delete body is `{"id": N}` and nothing
else; a product body has a title, a status, an `updated_at` and at least one variant).

- ids are JSON integers from 1 to 2^63-1 (Shopify's ids are 64-bit; strings, floats, booleans, 0 and
  negative numbers are refused, and so is 2^64, which a JSON decoder can only give as a float);
- money is a decimal string as Shopify writes it (`"19.90"`): non-negative, at most 18 digits before
  the point and 9 after, no exponent;
- quantities are integers within ±1,000,000,000 (Shopify's own bound);
- timestamps have a time zone, and a product's `updated_at` may not lie in the future beyond
  `MAX_CLOCK_SKEW` of the time the delivery was received (`check_not_future`);
- unknown fields are allowed (Shopify adds fields in new API versions), except in products/delete.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Annotated, Any, Final

import msgspec

from bulk.errors import InvalidWebhookPayload

PRODUCTS_CREATE: Final = "products/create"
PRODUCTS_UPDATE: Final = "products/update"
PRODUCTS_DELETE: Final = "products/delete"
INVENTORY_LEVELS_UPDATE: Final = "inventory_levels/update"
BULK_OPERATIONS_FINISH: Final = "bulk_operations/finish"
# Every topic the gateway subscribes to (in registration order) and accepts.
TOPICS: Final = (PRODUCTS_CREATE, PRODUCTS_UPDATE, PRODUCTS_DELETE, INVENTORY_LEVELS_UPDATE, BULK_OPERATIONS_FINISH)

MAX_ID: Final = 2**63 - 1
MAX_QUANTITY: Final = 1_000_000_000
MAX_VARIANTS: Final = 2048  # Shopify's limit of variants per product
MAX_CLOCK_SKEW: Final = timedelta(minutes=5)  # a Shopify time later than receipt by more is refused

Id = Annotated[int, msgspec.Meta(ge=1, le=MAX_ID)]
# \A and \Z, not ^ and $: `$` also matches before a trailing newline ("1.00\n")
Money = Annotated[str, msgspec.Meta(pattern=r"\A[0-9]{1,18}(\.[0-9]{1,9})?\Z")]
Quantity = Annotated[int, msgspec.Meta(ge=-MAX_QUANTITY, le=MAX_QUANTITY)]
Timestamp = Annotated[datetime, msgspec.Meta(tz=True)]


class RestOption(msgspec.Struct):
    name: str
    position: int | None = None


class RestImage(msgspec.Struct):
    id: Id | None = None
    src: str | None = None
    position: int | None = None


class RestPreview(msgspec.Struct):
    src: str | None = None


class RestMedia(msgspec.Struct):
    position: int | None = None
    media_content_type: str | None = None
    preview_image: RestPreview | None = None
    variant_ids: list[Id] | None = None


class RestVariant(msgspec.Struct):
    id: Id
    price: Money
    compare_at_price: Money | None = None
    title: str | None = None
    sku: str | None = None
    option1: str | None = None
    option2: str | None = None
    option3: str | None = None
    inventory_quantity: Quantity | None = None
    inventory_item_id: Id | None = None
    updated_at: Timestamp | None = None  # when the variant last changed: its quantity's time
    # Absent (UNSET): the payload predates `image_id`; the variant's image is then found in `media`.
    image_id: Id | None | msgspec.UnsetType = msgspec.UNSET


class RestProduct(msgspec.Struct):
    """products/create and products/update (the REST product resource)."""

    id: Id
    title: str
    status: str
    updated_at: Timestamp
    variants: Annotated[list[RestVariant], msgspec.Meta(min_length=1, max_length=MAX_VARIANTS)]
    handle: str | None = None
    vendor: str | None = None
    product_type: str | None = None
    published_at: str | None = None
    options: list[RestOption] | None = None
    images: list[RestImage] | None = None
    image: RestImage | None = None
    media: list[RestMedia] | None = None  # None: a payload without `media` (its `image` is featured)
    variant_gids: list[Any] | None = None  # every variant of the product (payloads carry the first 100)


class RestProductDeleted(msgspec.Struct, forbid_unknown_fields=True):
    """products/delete: Shopify sends the deleted product's id and nothing else."""

    id: Id


class RestInventoryLevel(msgspec.Struct):
    """inventory_levels/update: one location's level of one inventory item."""

    inventory_item_id: Id
    location_id: Id
    available: Quantity | None = None
    updated_at: Timestamp | None = None


class RestBulkOperationFinished(msgspec.Struct):
    """bulk_operations/finish: the operation's gid and its lower-case status and error code."""

    admin_graphql_api_id: Annotated[str, msgspec.Meta(pattern=r"\Agid://shopify/BulkOperation/[1-9][0-9]{0,18}\Z")]
    status: Annotated[str, msgspec.Meta(pattern=r"\A[a-z_]{1,40}\Z")]
    error_code: Annotated[str, msgspec.Meta(pattern=r"\A[a-z_]{1,60}\Z")] | None = None


Schema = RestProduct | RestProductDeleted | RestInventoryLevel | RestBulkOperationFinished

SCHEMAS: Final[dict[str, type[Schema]]] = {
    PRODUCTS_CREATE: RestProduct,
    PRODUCTS_UPDATE: RestProduct,
    PRODUCTS_DELETE: RestProductDeleted,
    INVENTORY_LEVELS_UPDATE: RestInventoryLevel,
    BULK_OPERATIONS_FINISH: RestBulkOperationFinished,
}


def validate(topic: str, payload: Mapping[str, Any]) -> Schema:
    """The payload as its topic's schema. Raises InvalidWebhookPayload saying what does not fit."""
    schema = SCHEMAS.get(topic)
    if schema is None:
        raise InvalidWebhookPayload(f"unsupported webhook topic {topic!r:.80}",
                                    fix=f"Subscribe only to {', '.join(sorted(TOPICS))}.")
    try:
        return msgspec.convert(payload, schema, strict=True)
    except msgspec.ValidationError as exc:
        raise InvalidWebhookPayload(f"{topic} body does not fit Shopify's {topic} payload: {str(exc)[:300]}") from None


def check_not_future(updated_at: datetime, received_at: datetime | None, what: str) -> None:
    """Refuse a Shopify time later than receipt by more than MAX_CLOCK_SKEW: Shopify stamps a change
    before it sends it, and a time in the future would make every later real change look older."""
    if received_at is not None and updated_at > received_at + MAX_CLOCK_SKEW:
        raise InvalidWebhookPayload(
            f"{what} updated_at {updated_at.isoformat()} is later than the delivery was received "
            f"({received_at.isoformat()}) by more than {int(MAX_CLOCK_SKEW.total_seconds())} s")


def subject_id(topic: str, payload: Mapping[str, Any]) -> str | None:
    """What a (possibly invalid) payload is about, for notices: the product id of a product topic,
    the inventory item of a level, the operation of a bulk finish; None when it names none."""
    key = {INVENTORY_LEVELS_UPDATE: "inventory_item_id", BULK_OPERATIONS_FINISH: "admin_graphql_api_id"}.get(topic, "id")
    value = payload.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return None
    return str(value)[:80]
