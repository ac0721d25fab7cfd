"""The Admin API calls the service makes by name (shop info, bulk operations, webhook subscriptions):
a base of `ShopifyClient`, each call one document of `bulk.shopify.documents` sent through its
cost-paced `execute`, each answer checked and turned into the service's values."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graphql import GraphQLEnumType

from bulk.errors import ShopifyRequestError, ShopifyServerError, ShopifyUserError
from bulk.shopify import documents
from bulk.shopify.budget import Priority
from bulk.shopify.bulk_operations import (
    BulkCancelResult,
    BulkOperationState,
    BulkRunRejected,
    BulkRunStarted,
    UserError,
)
from bulk.shopify.query_rules import check_bulk_query
from bulk.shopify.schema import load_admin_schema

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ShopInfo:
    name: str
    myshopify_domain: str


def webhook_topic(topic: str) -> str:
    """`products/update` or `PRODUCTS_UPDATE` → `PRODUCTS_UPDATE`, checked against the schema."""
    candidate = topic.strip().replace("/", "_").upper()
    enum = load_admin_schema().get_type("WebhookSubscriptionTopic")
    assert isinstance(enum, GraphQLEnumType)
    if candidate not in enum.values:
        raise ShopifyRequestError(f"Unknown Shopify webhook topic {topic!r}",
                                  fix="Use a topic such as products/update (see WebhookSubscriptionTopic).")
    return candidate


class AdminCalls:
    """The named calls; `execute` and `_connect` are the client's."""

    async def execute(self, document: str, variables: Mapping[str, Any] | None = None, *,
                      priority: Priority | None = None, cost: float | None = None) -> dict[str, Any]:
        raise NotImplementedError  # ShopifyClient's

    async def _connect(self) -> Any:
        raise NotImplementedError  # ShopifyClient's

    async def shop_info(self) -> ShopInfo:
        data = await self.execute(documents.SHOP_INFO)
        shop = _get(data, "shop", "ShopInfo")
        return ShopInfo(name=shop["name"], myshopify_domain=shop["myshopifyDomain"])

    async def run_bulk_query(self, query: str, group_objects: bool = False) -> BulkRunStarted | BulkRunRejected:
        """Start a bulk query. The query is checked locally first (schema and bulk rules)."""
        await self._connect()  # loads the schema off the event loop
        check = check_bulk_query(query)
        if check.problems:
            raise ShopifyRequestError("Bulk query rejected locally, not sent: " + "; ".join(check.problems))
        if check.deprecated_fields:
            log.warning("bulk query uses deprecated fields: %s", ", ".join(check.deprecated_fields))
        data = await self.execute(documents.BULK_RUN_QUERY, {"query": query, "groupObjects": group_objects})
        payload = _get(data, "bulkOperationRunQuery", "RunBulkQuery")
        user_errors = tuple(UserError.from_dict(e) for e in payload.get("userErrors") or ())
        operation = payload.get("bulkOperation")
        if user_errors or not operation:
            return BulkRunRejected(user_errors or (UserError("Shopify created no bulk operation"),))
        return BulkRunStarted(operation_id=operation["id"], status=operation["status"])

    async def bulk_operation(self, operation_id: str) -> BulkOperationState | None:
        """The operation's current state, or None when Shopify does not know the id."""
        data = await self.execute(documents.BULK_OPERATION_NODE, {"id": operation_id})
        node = data.get("node")
        if not node:
            return None
        try:
            return BulkOperationState.from_node(node)
        except ValueError as exc:
            raise ShopifyServerError(f"Unreadable bulk operation {operation_id} from Shopify: {exc}") from None

    async def newest_bulk_query(self) -> BulkOperationState | None:
        """The app's most recent bulk query operation on this shop, finished or not (None: never ran one)."""
        data = await self.execute(documents.NEWEST_BULK_QUERY)
        nodes = (data.get("bulkOperations") or {}).get("nodes") or []
        if not nodes:
            return None
        try:
            return BulkOperationState.from_node(nodes[0])
        except ValueError as exc:
            raise ShopifyServerError(f"Unreadable bulk operation from Shopify: {exc}") from None

    async def cancel_bulk_operation(self, operation_id: str) -> BulkCancelResult:
        """bulkOperationCancel; an already finished operation comes back as `user_errors`."""
        data = await self.execute(documents.BULK_OPERATION_CANCEL, {"id": operation_id})
        payload = _get(data, "bulkOperationCancel", "CancelBulkOperation")
        operation = payload.get("bulkOperation") or {}
        return BulkCancelResult(status=operation.get("status"),
                                user_errors=tuple(UserError.from_dict(e) for e in payload.get("userErrors") or ()))

    async def create_webhook(self, topic: str, callback_url: str) -> str:
        """Subscribe `callback_url` to `topic` (JSON); returns the subscription gid. When Shopify says
        the address is already taken for that topic (a subscription left by an earlier install), that
        subscription's gid is returned: it delivers to the same place, and disabling must delete it."""
        await self._connect()
        variables = {"topic": webhook_topic(topic), "webhookSubscription": {"uri": callback_url, "format": "JSON"}}
        data = await self.execute(documents.WEBHOOK_SUBSCRIPTION_CREATE, variables)
        payload = _get(data, "webhookSubscriptionCreate", "CreateWebhook")
        errors = payload.get("userErrors") or ()
        if errors and all(isinstance(e, Mapping) and "already been taken" in str(e.get("message")) for e in errors):
            existing = await self.find_webhook(topic, callback_url)
            if existing is not None:
                return existing
        _raise_user_errors(payload, f"Shopify refused the {topic} webhook")
        subscription = payload.get("webhookSubscription") or {}
        if not subscription.get("id"):
            raise ShopifyServerError("Shopify created no webhook subscription and reported no error")
        return str(subscription["id"])

    async def find_webhook(self, topic: str, callback_url: str) -> str | None:
        """The gid of the subscription delivering `topic` to `callback_url`, if there is one."""
        data = await self.execute(documents.WEBHOOK_SUBSCRIPTIONS, {"topics": [webhook_topic(topic)], "uri": callback_url})
        connection = _get(data, "webhookSubscriptions", "WebhookSubscriptions")
        for node in connection.get("nodes") or ():
            if isinstance(node, Mapping) and node.get("uri") == callback_url and node.get("id"):
                return str(node["id"])
        return None

    async def delete_webhook(self, subscription_id: str) -> None:
        """webhookSubscriptionDelete; an unknown id raises ShopifyUserError ("does not exist")."""
        data = await self.execute(documents.WEBHOOK_SUBSCRIPTION_DELETE, {"id": subscription_id})
        payload = _get(data, "webhookSubscriptionDelete", "DeleteWebhook")
        _raise_user_errors(payload, f"Shopify did not delete webhook {subscription_id}")


def _get(data: Mapping[str, Any] | None, key: str, operation: str) -> Mapping[str, Any]:
    value = (data or {}).get(key)
    if not isinstance(value, Mapping):
        raise ShopifyServerError(f"Shopify's answer to {operation} has no {key}")
    return value


def _raise_user_errors(payload: Mapping[str, Any], what: str) -> None:
    user_errors = tuple(UserError.from_dict(e) for e in payload.get("userErrors") or ())
    if user_errors:
        raise ShopifyUserError(f"{what}: " + "; ".join(e.message for e in user_errors), user_errors=user_errors)
