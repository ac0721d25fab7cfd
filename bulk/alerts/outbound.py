"""The outbound alert webhook: what is POSTed for an event and how it is signed. Pure code.

The body is the JSON of the event's GraphQL fields (camelCase); `X-Catalog-Gateway-Hmac-Sha256`
is base64(HMAC-SHA256(raw body, secret)), as Shopify signs its own webhooks, so a receiver verifies
it the same way; `X-Catalog-Gateway-Event-Id` lets a receiver drop a redelivery (at-least-once).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import orjson

from catalog_store.alerts import AlertEvent

SIGNATURE_HEADER = "X-Catalog-Gateway-Hmac-Sha256"
EVENT_ID_HEADER = "X-Catalog-Gateway-Event-Id"


def event_payload(event: AlertEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "catalogName": event.catalog,
        "itemId": event.item_id,
        "type": event.type.value,
        "previousValue": event.previous_value,
        "newValue": event.new_value,
        "userIds": list(event.user_ids),
        "source": event.source.value,
        "createdAt": event.created_at.isoformat(),  # as the GraphQL DateTime shows it
    }


def event_body(event: AlertEvent) -> bytes:
    return orjson.dumps(event_payload(event))


def signature(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def verified(body: bytes, header: str | None, secret: str) -> bool:
    """Constant-time check of a received signature (what a receiver does)."""
    return header is not None and hmac.compare_digest(header.encode(), signature(body, secret).encode())


def headers(event: AlertEvent, body: bytes, secret: str) -> dict[str, str]:
    return {"Content-Type": "application/json", SIGNATURE_HEADER: signature(body, secret), EVENT_ID_HEADER: event.id}
