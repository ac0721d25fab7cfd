"""Webhook bodies, REST-shaped as Shopify sends them: integer ids, lower-case enums, money as strings,
timestamps in the shop's time zone; products carry full objects for their first 100 variants only
(`variant_gids` lists all of them).
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from .generate import LOCATION_ID
from .models import MediaImage, Product, Variant, gid, iso_local, iso_utc, published

MAX_PAYLOAD_VARIANTS = 100


def _variant(variant: Variant, product: Product, tz: ZoneInfo) -> dict[str, Any]:
    values = list(variant.option_values) + [None] * (3 - len(variant.option_values))
    return {
        "admin_graphql_api_id": variant.gid,
        "barcode": variant.barcode,
        "compare_at_price": variant.compare_at_price,
        "created_at": iso_local(variant.created_at, tz),
        "id": variant.id,
        "inventory_policy": variant.inventory_policy.lower(),
        "position": variant.position,
        "price": variant.price,
        "product_id": product.id,
        "sku": variant.sku,
        "taxable": variant.taxable,
        "title": variant.title,
        "updated_at": iso_local(variant.updated_at, tz),
        "option1": values[0],
        "option2": values[1],
        "option3": values[2],
        "image_id": variant.image.id if variant.image is not None else None,
        "inventory_item_id": variant.inventory_item_id,
        "inventory_quantity": variant.inventory_quantity,
        "old_inventory_quantity": variant.inventory_quantity,
    }


def product_payload(product: Product, tz: ZoneInfo) -> dict[str, Any]:
    """products/create and products/update."""
    images = []
    for position, media in enumerate((m for m in product.media if isinstance(m, MediaImage)), start=1):
        images.append({
            "id": media.id,
            "alt": media.alt,
            "position": position,
            "product_id": product.id,
            "created_at": iso_local(media.created_at, tz),
            "updated_at": iso_local(media.created_at, tz),
            "admin_graphql_api_id": gid("ProductImage", media.id),
            "width": media.width,
            "height": media.height,
            "src": media.url,
            "variant_ids": [v.id for v in product.variants if v.image is not None and v.image.id == media.id],
        })
    media_list = [{
        "id": m.id,
        "product_id": product.id,
        "position": position,
        "created_at": iso_local(m.created_at, tz),
        "updated_at": iso_local(m.created_at, tz),
        "alt": m.alt,
        "status": "ready",
        "media_content_type": "IMAGE" if isinstance(m, MediaImage) else "VIDEO",
        "preview_image": {"width": getattr(m, "width", 1280), "height": getattr(m, "height", 720),
                          "src": m.url if isinstance(m, MediaImage) else m.preview_url, "status": "ready"},
        "variant_ids": [v.id for v in product.variants if v.image is not None and v.image.id == m.id],
        "admin_graphql_api_id": m.gid,
    } for position, m in enumerate(product.media, start=1)]
    is_published = published(product)
    return {
        "admin_graphql_api_id": product.gid,
        "body_html": product.description_html,
        "created_at": iso_local(product.created_at, tz),
        "handle": product.handle,
        "id": product.id,
        "product_type": product.product_type,
        "published_at": iso_local(product.published_at, tz) if is_published else None,
        "template_suffix": None,
        "title": product.title,
        "updated_at": iso_local(product.updated_at, tz),
        "vendor": product.vendor,
        "status": product.status.lower(),
        "published_scope": "web" if is_published else None,
        "tags": ", ".join(product.tags),
        "variants": [_variant(v, product, tz) for v in product.variants[:MAX_PAYLOAD_VARIANTS]],
        "options": [{"name": o.name, "id": o.id, "product_id": product.id, "position": o.position,
                     "values": list(o.values)} for o in product.options],
        "images": images,
        "image": images[0] if images else None,
        "media": media_list,
        "variant_gids": [{"admin_graphql_api_id": v.gid, "updated_at": iso_utc(v.updated_at)}
                         for v in product.variants],
        "has_variants_that_requires_components": False,
        "category": None,
    }


def product_delete_payload(product_id: int) -> dict[str, Any]:
    return {"id": product_id}


def inventory_level_payload(variant: Variant, tz: ZoneInfo) -> dict[str, Any]:
    """inventory_levels/update: the (single) location's level; no variant id, as Shopify sends it."""
    return {
        "inventory_item_id": variant.inventory_item_id,
        "location_id": LOCATION_ID,
        "available": variant.inventory_quantity,
        "updated_at": iso_local(variant.updated_at, tz),
        "admin_graphql_api_id": f"gid://shopify/InventoryLevel/{LOCATION_ID}?inventory_item_id={variant.inventory_item_id}",
    }


def bulk_finish_payload(operation: Any, tz: ZoneInfo) -> dict[str, Any]:
    """bulk_operations/finish: lower-case status and error code, no URL (poll the operation for it)."""
    return {
        "admin_graphql_api_id": operation.gid,
        "completed_at": iso_local(operation.completed_at, tz),
        "created_at": iso_local(operation.created_at, tz),
        "error_code": operation.error_code.lower() if operation.error_code else None,
        "status": operation.status.lower(),
        "type": operation.type.lower(),
    }
