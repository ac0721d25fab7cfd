"""What the emulator serves: per GraphQL type, the fields it implements and how.

A field missing here is refused with a clear `Unsupported` error rather than answered wrongly.
Root fields reach the shop and the bulk runner through the compile-time context
(`ctx.shop`, `ctx.bulk`, `ctx.api_version`: bulk.RequestContext).
"""

from __future__ import annotations

import html
import re
import zlib
from collections.abc import Callable, Iterable
from operator import attrgetter
from typing import Any

from .errors import Unsupported
from .execute import FieldSpec, Record, generic_table
from .models import (
    InventoryItem,
    MediaImage,
    MediaPreviewImage,
    Product,
    SelectedOption,
    Variant,
    gid,
    image_of,
    iso_utc,
    published,
)
from .search import BULK_OPERATION_SEARCH, PRODUCT_SEARCH, VARIANT_SEARCH, parse_search, product_title, variant_title


class Root:
    """The root object of an operation (QueryRoot or Mutation)."""

    __slots__ = ("TYPENAME",)

    def __init__(self, typename: str) -> None:
        self.TYPENAME = typename


def F(getter: Callable[[Any], Any]) -> FieldSpec:
    """A field computed from the object alone."""
    return FieldSpec(lambda _args, _ctx: getter)


def A(fn: Callable[[Any, dict[str, Any]], Any], *args: str) -> FieldSpec:
    """A field that reads its (honoured) arguments."""
    return FieldSpec(lambda a, _ctx: lambda o: fn(o, a), frozenset(args))


def C(fn: Callable[[Any, dict[str, Any], Any], Any], *args: str, handles_after: bool = False) -> FieldSpec:
    """A field that needs the request context (shop, services)."""
    return FieldSpec(lambda a, ctx: lambda o: fn(o, a, ctx), frozenset(args), handles_after)


def _iso(name: str) -> FieldSpec:
    get = attrgetter(name)
    return F(lambda o: iso_utc(get(o)))


def _legacy(o: Any) -> str:
    return str(o.id)


def _count(n: int, limit: int | None = None) -> Record:
    """Shopify's Count: capped at `limit` (then AT_LEAST) unless the limit is null."""
    if limit is not None and n > limit:
        return Record("Count", count=limit, precision="AT_LEAST")
    return Record("Count", count=n, precision="EXACT")


def _option_value(name: str, option_id: int) -> Record:
    return Record("ProductOptionValue", id=gid("ProductOptionValue", option_id * 100 + zlib.crc32(name.encode()) % 100),
                  name=name, hasVariants=True)


def _plain(text: str, truncate: int | None) -> str:
    plain = html.unescape(re.sub(r"<[^>]+>", "", text)).strip()
    return plain if truncate is None or len(plain) <= truncate else plain[:truncate].rstrip() + "…"


def _search(items: Iterable[Any], query: str | None, fields: Any, free_text: Any) -> Iterable[Any]:
    search = parse_search(query, fields, free_text=free_text)
    return items if not search.predicates else (i for i in items if search.matches(i))


def _products(_root: Any, a: dict[str, Any], ctx: Any) -> Iterable[Product]:
    _check_sort(a, "ID")
    search = parse_search(a.get("query"), PRODUCT_SEARCH, free_text=product_title)
    products = ctx.shop.store.iter_products(after_id=a.get("after_id"), reverse=bool(a.get("reverse")),
                                            updated_since=search.updated_since)
    return products if not search.predicates else (p for p in products if search.matches(p))


def _variants(_root: Any, a: dict[str, Any], ctx: Any) -> Iterable[Variant]:
    _check_sort(a, "ID")
    search = parse_search(a.get("query"), VARIANT_SEARCH, free_text=variant_title)
    after_id = a.get("after_id")
    reverse = bool(a.get("reverse"))

    def gen() -> Iterable[Variant]:
        # A variant is never updated after its product was last installed, so products skipped by
        # the hint hold no variant updated since either.
        for product in ctx.shop.store.iter_products(reverse=reverse, updated_since=search.updated_since):
            for variant in (reversed(product.variants) if reverse else product.variants):
                if search.matches(variant):
                    yield variant

    items = gen()
    if after_id is not None:
        items = _after(items, after_id)
    return items


def _after(items: Iterable[Any], after_id: int) -> Iterable[Any]:
    iterator = iter(items)
    for item in iterator:
        if item.id == after_id:
            break
    return iterator


def _check_sort(a: dict[str, Any], default: str) -> None:
    key = a.get("sortKey")
    if key is not None and key != default:
        raise Unsupported(f"sortKey {key} (only {default})")


def _node(ctx: Any, value: str) -> Any:
    return ctx.shop.find_node(value)


QUERY_ROOT = {
    "shop": C(lambda _r, _a, ctx: ctx.shop),
    "node": C(lambda _r, a, ctx: _node(ctx, a["id"]), "id"),
    "nodes": C(lambda _r, a, ctx: [_node(ctx, i) for i in a["ids"]], "ids"),
    "product": C(lambda _r, a, ctx: ctx.shop.store.product(a["id"]), "id"),
    "productVariant": C(lambda _r, a, ctx: ctx.shop.store.variant(a["id"]), "id"),
    "products": C(_products, "query", "reverse", "sortKey", handles_after=True),
    "productVariants": C(_variants, "query", "reverse", "sortKey", handles_after=True),
    "productsCount": C(lambda _r, a, ctx: _count(
        ctx.shop.store.product_count if not a.get("query") else sum(1 for _ in _products(None, a, ctx)),
        a.get("limit", 10_000)), "query", "limit"),
    "bulkOperation": C(lambda _r, a, ctx: ctx.shop.bulk_operation(a["id"]), "id"),
    "currentBulkOperation": C(lambda _r, a, ctx: ctx.shop.current_bulk_operation(a.get("type") or "QUERY"), "type"),
    "bulkOperations": C(lambda _r, a, ctx: _search(
        ctx.shop.bulk_operations(reverse=bool(a.get("reverse"))), a.get("query"), BULK_OPERATION_SEARCH, None),
        "query", "reverse"),
    "webhookSubscription": C(lambda _r, a, ctx: ctx.shop.webhook_subscription(a["id"]), "id"),
    "webhookSubscriptions": C(lambda _r, a, ctx: ctx.shop.webhook_subscriptions(
        topics=a.get("topics"), uri=a.get("uri") or a.get("callbackUrl")), "topics", "uri", "callbackUrl"),
}

MUTATION = {
    "bulkOperationRunQuery": C(lambda _r, a, ctx: ctx.bulk.run_query(ctx.shop, a["query"], a["groupObjects"]),
                               "query", "groupObjects"),
    "bulkOperationCancel": C(lambda _r, a, ctx: ctx.bulk.cancel(ctx.shop, a["id"]), "id"),
    "webhookSubscriptionCreate": C(lambda _r, a, ctx: ctx.shop.create_webhook_subscription(
        a["topic"], a["webhookSubscription"], ctx.api_version), "topic", "webhookSubscription"),
    "webhookSubscriptionDelete": C(lambda _r, a, ctx: ctx.shop.delete_webhook_subscription(a["id"]), "id"),
}

SHOP = {
    "id": F(lambda s: gid("Shop", s.shop_id)),
    "name": F(attrgetter("name")),
    "myshopifyDomain": F(attrgetter("domain")),
    "email": F(attrgetter("email")),
    "contactEmail": F(attrgetter("email")),
    "currencyCode": F(attrgetter("currency")),
    "ianaTimezone": F(lambda s: s.tz.key),
    "url": F(lambda s: f"https://{s.domain}"),
    "description": F(lambda s: None),
    "createdAt": _iso("created_at"),
    "primaryDomain": F(lambda s: Record("Domain", id=gid("Domain", s.shop_id), host=s.domain,
                                        url=f"https://{s.domain}", sslEnabled=True)),
}

PRODUCT = {
    "id": F(attrgetter("gid")),
    "legacyResourceId": F(_legacy),
    "title": F(attrgetter("title")),
    "handle": F(attrgetter("handle")),
    "vendor": F(attrgetter("vendor")),
    "productType": F(attrgetter("product_type")),
    "status": F(attrgetter("status")),
    "tags": F(lambda p: list(p.tags)),
    "description": A(lambda p, a: _plain(p.description_html, a.get("truncateAt")), "truncateAt"),
    "descriptionHtml": F(attrgetter("description_html")),
    "createdAt": _iso("created_at"),
    "updatedAt": _iso("updated_at"),
    "publishedAt": F(lambda p: iso_utc(p.published_at) if published(p) else None),
    "onlineStoreUrl": C(lambda p, _a, ctx: f"https://{ctx.shop.domain}/products/{p.handle}" if published(p) else None),
    "options": A(lambda p, a: p.options[: a["first"]] if a.get("first") is not None else p.options, "first"),
    "featuredMedia": F(lambda p: next(iter(p.media), None)),
    "featuredImage": F(lambda p: next((image_of(m) for m in p.media if isinstance(m, MediaImage)), None)),
    "media": F(attrgetter("media")),
    "images": F(lambda p: [image_of(m) for m in p.media if isinstance(m, MediaImage)]),
    "variants": F(attrgetter("variants")),
    "variantsCount": F(lambda p: _count(len(p.variants))),
    "mediaCount": F(lambda p: _count(len(p.media))),
    "totalInventory": F(lambda p: sum(v.inventory_quantity for v in p.variants)),
    "tracksInventory": F(lambda p: True),
    "hasOnlyDefaultVariant": F(lambda p: len(p.variants) == 1 and p.variants[0].option_values == ("Default Title",)),
    "hasOutOfStockVariants": F(lambda p: any(v.inventory_quantity <= 0 for v in p.variants)),
    "isGiftCard": F(lambda p: False),
    "templateSuffix": F(lambda p: None),
}

VARIANT = {
    "id": F(attrgetter("gid")),
    "legacyResourceId": F(_legacy),
    "title": F(attrgetter("title")),
    "displayName": F(lambda v: f"{v.product.title} - {v.title}"),
    "sku": F(attrgetter("sku")),
    "barcode": F(attrgetter("barcode")),
    "price": F(attrgetter("price")),
    "compareAtPrice": F(attrgetter("compare_at_price")),
    "inventoryQuantity": F(attrgetter("inventory_quantity")),
    "inventoryPolicy": F(attrgetter("inventory_policy")),
    "availableForSale": F(lambda v: v.product.status == "ACTIVE" and (v.inventory_quantity > 0 or v.inventory_policy == "CONTINUE")),
    "position": F(attrgetter("position")),
    "taxable": F(attrgetter("taxable")),
    "createdAt": _iso("created_at"),
    "updatedAt": _iso("updated_at"),
    "selectedOptions": F(lambda v: [SelectedOption(o.name, value, o.id)
                                    for o, value in zip(v.product.options, v.option_values)]),
    "inventoryItem": F(InventoryItem),
    "media": F(lambda v: (v.image,) if v.image is not None else ()),
    "image": F(lambda v: image_of(v.image) if v.image is not None else None),
    "product": F(attrgetter("product")),
}

INVENTORY_ITEM = {
    "id": F(attrgetter("gid")),
    "legacyResourceId": F(lambda i: str(i.variant.inventory_item_id)),
    "sku": F(lambda i: i.variant.sku),
    "tracked": F(lambda i: True),
    "requiresShipping": F(lambda i: True),
    "createdAt": F(lambda i: iso_utc(i.variant.created_at)),
    "updatedAt": F(lambda i: iso_utc(i.variant.updated_at)),
    "variant": F(lambda i: i.variant),
}

PRODUCT_OPTION = {
    "id": F(attrgetter("gid")),
    "name": F(attrgetter("name")),
    "position": F(attrgetter("position")),
    "values": F(lambda o: list(o.values)),
    "optionValues": F(lambda o: [_option_value(v, o.id) for v in o.values]),
}

SELECTED_OPTION = {
    "name": F(attrgetter("name")),
    "value": F(attrgetter("value")),
    "optionValue": F(lambda s: _option_value(s.value, s.option_id)),
}

_MEDIA_COMMON = {
    "id": F(attrgetter("gid")),
    "alt": F(attrgetter("alt")),
    "status": F(lambda m: "READY"),
    "fileStatus": F(lambda m: "READY"),
    "mediaErrors": F(lambda m: []),
    "mediaWarnings": F(lambda m: []),
    "createdAt": _iso("created_at"),
    "updatedAt": _iso("created_at"),
    "preview": F(lambda m: MediaPreviewImage(image_of(m))),
}
MEDIA_IMAGE = {
    **_MEDIA_COMMON,
    "mediaContentType": F(lambda m: "IMAGE"),
    "mimeType": F(lambda m: "image/jpeg"),
    "image": F(image_of),
}
VIDEO = {**_MEDIA_COMMON, "mediaContentType": F(lambda m: "VIDEO")}

MEDIA_PREVIEW_IMAGE = {"image": F(attrgetter("image")), "status": F(lambda p: "READY")}

IMAGE = {
    "id": F(lambda i: gid("ProductImage", i.id) if i.id is not None else None),
    "url": F(attrgetter("url")),
    "src": F(attrgetter("url")),
    "originalSrc": F(attrgetter("url")),
    "altText": F(attrgetter("alt")),
    "width": F(attrgetter("width")),
    "height": F(attrgetter("height")),
}

BULK_OPERATION = {
    "id": F(attrgetter("gid")),
    "status": F(attrgetter("status")),
    "errorCode": F(attrgetter("error_code")),
    "objectCount": F(lambda op: str(op.visible_object_count())),
    "rootObjectCount": F(lambda op: str(op.visible_root_object_count())),
    "fileSize": F(lambda op: None if op.file_size is None else str(op.file_size)),
    "url": F(attrgetter("url")),
    "partialDataUrl": F(attrgetter("partial_data_url")),
    "createdAt": _iso("created_at"),
    "completedAt": _iso("completed_at"),
    "query": F(attrgetter("query")),
    "type": F(attrgetter("type")),
}

WEBHOOK_SUBSCRIPTION = {
    "id": F(attrgetter("gid")),
    "legacyResourceId": F(_legacy),
    "topic": F(attrgetter("topic")),
    "uri": F(attrgetter("uri")),
    "callbackUrl": F(attrgetter("uri")),
    "endpoint": F(lambda s: Record("WebhookHttpEndpoint", callbackUrl=s.uri)),
    "format": F(lambda s: "JSON"),
    "includeFields": F(lambda s: list(s.include_fields)),
    "metafieldNamespaces": F(lambda s: []),
    "filter": F(lambda s: None),
    "createdAt": _iso("created_at"),
    "updatedAt": _iso("updated_at"),
    "apiVersion": F(lambda s: Record("ApiVersion", handle=s.api_version, displayName=s.api_version, supported=True)),
}

RECORDS = {
    "BulkOperationRunQueryPayload": ("bulkOperation", "userErrors"),
    "BulkOperationCancelPayload": ("bulkOperation", "userErrors"),
    "BulkOperationUserError": ("field", "message", "code"),
    "UserError": ("field", "message"),
    "WebhookSubscriptionCreatePayload": ("webhookSubscription", "userErrors"),
    "WebhookSubscriptionDeletePayload": ("deletedWebhookSubscriptionId", "userErrors"),
    "Count": ("count", "precision"),
    "Domain": ("id", "host", "url", "sslEnabled"),
    "ApiVersion": ("handle", "displayName", "supported"),
    "WebhookHttpEndpoint": ("callbackUrl",),
    "ProductOptionValue": ("id", "name", "hasVariants"),
}

TABLES: dict[str, dict[str, FieldSpec]] = {
    "QueryRoot": QUERY_ROOT,
    "Mutation": MUTATION,
    "Shop": SHOP,
    "Product": PRODUCT,
    "ProductVariant": VARIANT,
    "InventoryItem": INVENTORY_ITEM,
    "ProductOption": PRODUCT_OPTION,
    "SelectedOption": SELECTED_OPTION,
    "MediaImage": MEDIA_IMAGE,
    "Video": VIDEO,
    "MediaPreviewImage": MEDIA_PREVIEW_IMAGE,
    "Image": IMAGE,
    "BulkOperation": BULK_OPERATION,
    "WebhookSubscription": WEBHOOK_SUBSCRIPTION,
    **{name: {f: F(lambda r, f=f: r.data[f]) for f in fields} for name, fields in RECORDS.items()},
}

def table(type_name: str) -> dict[str, FieldSpec] | None:
    """The fields the emulator serves for `type_name` (None: a type it never produces)."""
    return TABLES.get(type_name) or generic_table(type_name)

