"""`POST /webhooks/shopify`: verify Shopify's signature, store the delivery in the inbox, answer.

- no secret configured (SHOPIFY_API_SECRET unset) → 503: webhooks are refused, with the fix;
- a body over MAX_BODY_BYTES → 413 from `gateway.body.BodyLimits` in front of every route, declared
  or chunked: it stops reading at the limit, before the signature is checked;
- a missing, malformed or wrong `X-Shopify-Hmac-Sha256` (checked on the raw body against each
  configured secret, constant-time) → 401; nothing changes;
- a signed delivery without Shopify's headers or with a body that is not a JSON object → 400;
- a topic this gateway does not handle → 200, ignored (Shopify must not retry it);
- otherwise the delivery is put in the store's inbox (`bulk.webhooks.processor.WebhookProcessor`)
  and 200 is answered only once it is stored (a duplicate `X-Shopify-Webhook-Id` → 200 too); a store
  that cannot take it, or a gateway shutting down → 503 with Retry-After, so Shopify delivers it again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bulk.errors import InvalidWebhookPayload
from bulk.mapping.payloads import TOPICS, decode_payload, verify_hmac
from bulk.webhooks.processor import SubmitResult, WebhookDelivery, WebhookProcessor
from catalog_store.items import normalize_shop_domain
from gateway.metrics import counted_webhooks

log = logging.getLogger(__name__)

PATH = "/webhooks/shopify"
MAX_BODY_BYTES = 10 * 1024 * 1024  # Shopify's payloads stay far below (100 variants at most)
RETRY_AFTER_SECONDS = 5
NO_SECRET = (
    "Shopify webhooks are refused: SHOPIFY_API_SECRET is not configured. Set it to the app's client secret "
    "(comma-separated with the previous one during a rotation) and restart the gateway."
)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status, headers=headers)


def _triggered_at(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def webhook_route(processor: WebhookProcessor, secrets: Sequence[str]) -> Route:
    """The Starlette route receiving Shopify's webhooks for `processor`."""
    secrets = tuple(secrets)

    async def receive(request: Request) -> Response:
        if not secrets:
            return _error(503, NO_SECRET)
        body = await request.body()  # at most MAX_BODY_BYTES: gateway.body stops reading there (413)
        headers = request.headers
        topic = headers.get("x-shopify-topic", "")
        if not verify_hmac(body, headers.get("x-shopify-hmac-sha256"), secrets):
            log.warning("webhook refused: missing or invalid X-Shopify-Hmac-Sha256 (topic %.60r, shop %.80r)",
                        topic, headers.get("x-shopify-shop-domain"))
            return _error(401, "invalid webhook signature")
        try:
            shop = normalize_shop_domain(headers.get("x-shopify-shop-domain", ""))
        except ValueError:
            return _error(400, "X-Shopify-Shop-Domain is missing or not a myshopify domain")
        if not topic:
            return _error(400, "X-Shopify-Topic is missing")
        if topic not in TOPICS:
            log.info("webhook %.60r for %s ignored: not a topic this gateway handles", topic, shop)
            return JSONResponse({"status": "ignored"})
        try:
            payload = decode_payload(body)
        except InvalidWebhookPayload as exc:
            log.error("signed webhook %s for %s refused: %s", topic, shop, exc)
            return _error(400, str(exc))
        delivery = WebhookDelivery(topic, shop, payload, headers.get("x-shopify-webhook-id") or None,
                                   _triggered_at(headers.get("x-shopify-triggered-at")), body=body)
        result = await processor.submit(delivery)
        if result in (SubmitResult.UNAVAILABLE, SubmitResult.CLOSED):
            return _error(503, "the gateway cannot take this webhook now; Shopify delivers it again",
                          {"Retry-After": str(RETRY_AFTER_SECONDS)})
        return JSONResponse({"status": str(result)})

    return Route(PATH, counted_webhooks(receive), methods=["POST"])
