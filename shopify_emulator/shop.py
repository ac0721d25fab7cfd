"""One emulated shop: its products (mutable at run time), API credentials, cost bucket, bulk
operations and webhook subscriptions. Every product change bumps the product's updatedAt (an
inventory change only its variant's) and sends the webhooks Shopify would send to the subscriptions
of that topic.
"""

from __future__ import annotations

import itertools
import re
import time
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar
from zoneinfo import ZoneInfo

from .cost import LeakyBucket
from .errors import InvalidInput, Unsupported
from .execute import Record
from .models import InventoryItem, Product, Variant, parse_gid
from .payloads import bulk_finish_payload, inventory_level_payload, product_delete_payload, product_payload
from .store import UNSET, ProductStore
from .webhooks import TOPICS, WebhookSender, WebhookSubscription

if TYPE_CHECKING:
    from .bulk import BulkOperation

_DOMAIN = re.compile(r"^[a-z0-9][a-z0-9-]*\.myshopify\.com$")
_subscription_ids = itertools.count(1_402_000_001)


def validate_domain(domain: str) -> str:
    if not isinstance(domain, str) or not _DOMAIN.match(domain):
        raise InvalidInput(f"shop domain must look like 'name.myshopify.com', got {domain!r}")
    return domain


class EmulatedShop:
    """A shop served by the emulator (create it with `Emulator.add_shop`)."""

    TYPENAME: ClassVar[str] = "Shop"

    def __init__(self, domain: str, *, access_token: str, variants: int, seed: int, name: str | None,
                 sender: WebhookSender, bulk_duration: float, timezone: str = "America/New_York",
                 email: str | None = None, currency: str = "USD", bulk_concurrency: int = 1,
                 clock: Callable[[], float] = time.time) -> None:
        self.domain = validate_domain(domain)
        if not access_token:
            raise InvalidInput("access_token must be a non-empty string")
        if bulk_concurrency < 1:
            raise InvalidInput("bulk_concurrency must be >= 1")
        self.access_token = access_token
        self.name = name or domain.split(".")[0].replace("-", " ").title()
        self.shop_id = 60_000_000_000 + zlib.crc32(domain.encode()) % 1_000_000_000
        self.email = email or f"owner@{domain}"
        self.currency = currency
        self.tz = ZoneInfo(timezone)
        self.created_at = 1_690_000_000
        self.bulk_duration = bulk_duration
        self.bulk_concurrency = bulk_concurrency
        self.store = ProductStore(seed, variants, clock)
        self.bucket = LeakyBucket()
        self.operations: list[BulkOperation] = []
        self.subscriptions: dict[int, WebhookSubscription] = {}
        self._sender = sender
        self._clock = clock

    def __repr__(self) -> str:
        return f"<EmulatedShop {self.domain} products={self.store.product_count}>"

    # -- reading the store (tests, demo) -------------------------------------------------------------

    def product(self, product_id: str | int) -> Product | None:
        return self.store.product(product_id)

    def variant(self, variant_id: str | int) -> Variant | None:
        return self.store.variant(variant_id)

    def products(self) -> Iterator[Product]:
        """Every product in id order (generated lazily: cheap to stop early)."""
        return self.store.iter_products()

    def variant_ids(self) -> Iterator[int]:
        return self.store.variant_ids()

    @property
    def product_count(self) -> int:
        return self.store.product_count

    # -- run-time changes ------------------------------------------------------------------------------

    def set_price(self, variant_id: str | int, price: str | int | Decimal,
                  compare_at_price: str | int | Decimal | None = UNSET) -> Variant:
        """Change a variant's price (and compare-at price when given; None clears it). products/update."""
        variant = self.store.set_price(variant_id, price, compare_at_price)
        self._product_changed("products/update", variant.product)
        return variant

    def set_inventory(self, variant_id: str | int, quantity: int) -> Variant:
        """Set the available quantity (negative allowed). inventory_levels/update only: the product's
        updatedAt does not move (the variant's does)."""
        variant = self.store.set_inventory(variant_id, quantity)
        self._send("inventory_levels/update", lambda: inventory_level_payload(variant, self.tz))
        return variant

    def set_sku(self, variant_id: str | int, sku: str | None) -> Variant:
        """Any SKU, duplicates and invalid ones included. products/update."""
        variant = self.store.set_sku(variant_id, sku)
        self._product_changed("products/update", variant.product)
        return variant

    def update_title(self, product_id: str | int, title: str) -> Product:
        """products/update."""
        return self.update_product(product_id, title=title)

    def set_status(self, product_id: str | int, status: str) -> Product:
        """ACTIVE, DRAFT, ARCHIVED or UNLISTED. products/update."""
        return self.update_product(product_id, status=status)

    def update_product(self, product_id: str | int, *, title: str | None = None, status: str | None = None,
                       vendor: str | None = None, product_type: str | None = None) -> Product:
        product = self.store.update_product(product_id, title=title, status=status, vendor=vendor,
                                            product_type=product_type)
        self._product_changed("products/update", product)
        return product

    def add_product(self, title: str, *, variants: int | Sequence[Mapping[str, Any]] = 1,
                    option_names: Sequence[str] | None = None, vendor: str = "Emulator Goods",
                    product_type: str = "", status: str = "ACTIVE", handle: str | None = None,
                    tags: Sequence[str] = (), published: bool = True, image: bool = True) -> Product:
        """Create a product. products/create.

        `variants`: a count, or one mapping per variant with any of `price` ("10.00"),
        `compare_at_price` (None), `sku` ("EMU-<variant id>"), `inventory_quantity` (10),
        `options` (values, one per name of `option_names`), `image` (False).
        """
        product = self.store.add_product(title, variants=variants, option_names=option_names, vendor=vendor,
                                         product_type=product_type, status=status, handle=handle, tags=tags,
                                         published=published, image=image)
        self._product_changed("products/create", product)
        return product

    def delete_variant(self, variant_id: str | int) -> Product:
        """Remove one variant from its product. products/update, as Shopify sends after a variant delete."""
        product = self.store.delete_variant(variant_id)
        self._product_changed("products/update", product)
        return product

    def delete_product(self, product_id: str | int) -> int:
        """Delete a product; returns its numeric id. products/delete {"id": N}."""
        number = self.store.delete_product(product_id)
        self._send("products/delete", lambda: product_delete_payload(number))
        return number

    def _product_changed(self, topic: str, product: Product) -> None:
        self._send(topic, lambda: product_payload(product, self.tz))

    def _send(self, topic: str, payload: Callable[[], dict[str, Any]]) -> None:
        """Deliver to the subscriptions of `topic` (the payload is only built when there are some)."""
        subscribers = [s for s in self.subscriptions.values() if TOPICS[s.topic] == topic]
        if subscribers:
            self._sender.send(self.domain, topic, payload(), subscribers)

    # -- bulk operations ----------------------------------------------------------------------------

    def bulk_operation(self, operation_id: str | int) -> BulkOperation | None:
        parsed = parse_gid(operation_id, "BulkOperation")
        if parsed is None:
            return None
        return next((op for op in self.operations if op.number == parsed[1]), None)

    def current_bulk_operation(self, operation_type: str = "QUERY") -> BulkOperation | None:
        return next((op for op in reversed(self.operations) if op.type == operation_type), None)

    def bulk_operations(self, *, reverse: bool = False) -> list[BulkOperation]:
        """Newest first, as Shopify lists them by default; `reverse` gives the oldest first."""
        return list(self.operations) if reverse else list(reversed(self.operations))

    def bulk_finished(self, operation: BulkOperation) -> None:
        self._send("bulk_operations/finish", lambda: bulk_finish_payload(operation, self.tz))

    # -- webhook subscriptions ----------------------------------------------------------------------

    def webhook_subscription(self, subscription_id: str) -> WebhookSubscription | None:
        parsed = parse_gid(subscription_id, "WebhookSubscription")
        return self.subscriptions.get(parsed[1]) if parsed else None

    def webhook_subscriptions(self, *, topics: Sequence[str] | None = None, uri: str | None = None) -> list[WebhookSubscription]:
        return [s for s in self.subscriptions.values()
                if (not topics or s.topic in topics) and (uri is None or s.uri == uri)]

    def create_webhook_subscription(self, topic: str, spec: Mapping[str, Any], api_version: str) -> Record:
        """webhookSubscriptionCreate for an HTTP(S) endpoint."""

        def refused(field: list[str], message: str) -> Record:
            return Record("WebhookSubscriptionCreatePayload", webhookSubscription=None,
                          userErrors=[Record("UserError", field=field, message=message)])

        if topic not in TOPICS:
            raise Unsupported(f"the webhook topic {topic} (supported: {', '.join(TOPICS)})")
        for name in ("filter", "metafieldNamespaces", "metafields"):
            if spec.get(name):
                raise Unsupported(f"`{name}` in webhook subscriptions")
        if spec.get("format") not in (None, "JSON"):
            raise Unsupported(f"webhook format {spec['format']}")
        include = tuple(spec.get("includeFields") or ())
        if any("." in f for f in include):
            raise Unsupported("nested `includeFields` (only top-level payload keys)")
        uri = spec.get("uri") or spec.get("callbackUrl")
        field = ["webhookSubscription", "uri" if spec.get("uri") else "callbackUrl"]
        if not uri:
            return refused(["webhookSubscription", "uri"], "Address can't be blank")
        if not re.match(r"^https?://[^\s/]+", uri):
            if re.match(r"^(pubsub|arn):", uri):
                raise Unsupported("Pub/Sub and EventBridge webhook endpoints")
            return refused(field, "Address is invalid")
        if any(s.topic == topic and s.uri == uri for s in self.subscriptions.values()):
            return refused(field, "Address for this topic has already been taken")
        now = int(self._clock())
        subscription = WebhookSubscription(next(_subscription_ids), topic, uri, api_version, now, now, include)
        self.subscriptions[subscription.id] = subscription
        return Record("WebhookSubscriptionCreatePayload", webhookSubscription=subscription, userErrors=[])

    def delete_webhook_subscription(self, subscription_id: str) -> Record:
        subscription = self.webhook_subscription(subscription_id)
        if subscription is None:
            return Record("WebhookSubscriptionDeletePayload", deletedWebhookSubscriptionId=None,
                          userErrors=[Record("UserError", field=["id"], message="Webhook subscription does not exist")])
        del self.subscriptions[subscription.id]
        return Record("WebhookSubscriptionDeletePayload", deletedWebhookSubscriptionId=subscription.gid, userErrors=[])

    # -- node(id:) ------------------------------------------------------------------------------------

    def find_node(self, value: str) -> Any:
        parsed = parse_gid(value)
        if parsed is None:
            return None
        kind = parsed[0]
        if kind == "Product":
            return self.store.product(value)
        if kind == "ProductVariant":
            return self.store.variant(value)
        if kind == "InventoryItem":
            variant = self.store.variant_by_inventory_item(value)
            return InventoryItem(variant) if variant is not None else None
        if kind == "BulkOperation":
            return self.bulk_operation(value)
        if kind == "WebhookSubscription":
            return self.webhook_subscription(value)
        if kind == "Shop":
            return self if parsed[1] == self.shop_id else None
        if kind in ("MediaImage", "Video"):
            return self.store.media(kind, parsed[1])
        return None
