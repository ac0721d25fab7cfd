"""The GraphQL schema: queries, mutations, subscriptions (names fixed: frontends depend on them;
`tests/gateway/spec_schema.graphql` holds them), limits and error policy."""

from __future__ import annotations

import logging
import traceback
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

import strawberry
from graphql import GraphQLError, GraphQLSyntaxError
from strawberry.extensions import MaskErrors
from strawberry.printer import print_schema
from strawberry.schema.schema import StreamResult
from strawberry.types import ExecutionResult, Info
from strawberry.types.execution import PreExecutionError

from bulk.outcomes import ERROR_FIXES
from catalog_store.items import normalize_shop_domain
from catalog_store.store import MAX_PAGE_SIZE
from gateway.errors import ApiError, BadUserInput, NotFoundError, api_error_for
from gateway.graphql.alerts import AlertMutations, AlertSubscriptions
from gateway.graphql.context import Context
from gateway.graphql.documents import DocumentCache, cached_documents
from gateway.graphql.fastpath import read_fast_path
from gateway.graphql.limits import (
    MAX_ALIASES,
    MAX_DEPTH,
    MAX_TOKENS,
    QueryLimits,
    check_query_text,
    token_limit,
)
from gateway.graphql.live import watch_notifications, watch_run
from gateway.graphql.types import (
    Catalog,
    DisableResult,
    EnableShopifySyncInput,
    Notification,
    ShopifySync,
    SyncErrorInfo,
    SyncRun,
)
from gateway.redaction import SecretInputs, redact, request_secrets

log = logging.getLogger("gateway.graphql")

MAX_ACCESS_TOKEN_LENGTH = 1000
UNEXPECTED = "Unexpected error."


def shop_domain_arg(value: str) -> str:
    """Normalised myshopify domain, or BAD_USER_INPUT."""
    try:
        return normalize_shop_domain(value)
    except ValueError as exc:
        raise BadUserInput(str(exc), fix="Use the store's myshopify domain, e.g. my-store.myshopify.com.") from None


def _check_access_token(token: str) -> None:
    # Never echo the value: it is a secret.
    if not token.strip():
        raise BadUserInput("`accessToken` is empty", fix="Pass the app's Admin API access token (shpat_…).")
    if len(token) > MAX_ACCESS_TOKEN_LENGTH or any(ch.isspace() for ch in token):
        raise BadUserInput(
            "`accessToken` is not an Admin API access token (it contains whitespace or is too long)",
            fix="Pass the app's Admin API access token (shpat_…) exactly as Shopify shows it.",
        )


async def _require_sync(info: Info[Context, None], shop: str) -> None:
    if await info.context.services.store.get_sync(shop) is None:
        raise NotFoundError(
            f"Shopify sync is not enabled for {shop}",
            fix="Enable Shopify sync for this shop first (enableShopifySync).",
        )


@strawberry.type
class Query:
    @strawberry.field(description="Every shop's sync configuration, by shop domain.")
    async def shopify_syncs(self, info: Info[Context, None]) -> list[ShopifySync]:
        return [ShopifySync.from_model(c) for c in await info.context.services.store.list_syncs()]

    @strawberry.field
    async def shopify_sync(self, info: Info[Context, None], shop_domain: str) -> ShopifySync | None:
        config = await info.context.services.store.get_sync(shop_domain_arg(shop_domain))
        return None if config is None else ShopifySync.from_model(config)

    @strawberry.field
    async def catalogs(self, info: Info[Context, None]) -> list[Catalog]:
        return [Catalog.from_model(c) for c in await info.context.services.store.list_catalogs()]

    @strawberry.field
    async def catalog(self, info: Info[Context, None], name: str) -> Catalog | None:
        found = await info.context.loaders.catalogs.load(name)
        return None if found is None else Catalog.from_model(found)

    @strawberry.field(description=f"Dashboard notifications, newest first (`first` ≤ {MAX_PAGE_SIZE}).")
    async def notifications(
        self, info: Info[Context, None], first: int | None = 20, unread_only: bool | None = False
    ) -> list[Notification]:
        first = 20 if first is None else first
        if first < 0 or first > MAX_PAGE_SIZE:
            raise BadUserInput(f"`first` must be between 0 and {MAX_PAGE_SIZE} (got {first})")
        if first == 0:
            return []
        found = await info.context.services.store.list_notifications(first=first, unread_only=bool(unread_only))
        return [Notification.from_model(n) for n in found]

    @strawberry.field(description="Every sync error code with its fix (for help pages and dashboards).")
    def sync_error_codes(self) -> list[SyncErrorInfo]:
        return [SyncErrorInfo(code=code, fix=fix) for code, fix in ERROR_FIXES.items()]


@strawberry.type
class Mutation(AlertMutations):
    @strawberry.mutation(description="Store the shop and its token, register webhooks, start the first sync.")
    async def enable_shopify_sync(self, info: Info[Context, None], input: EnableShopifySyncInput) -> ShopifySync:
        info.context.require_admin("enableShopifySync")
        shop = shop_domain_arg(input.shop_domain)
        _check_access_token(input.access_token)
        config = await info.context.services.sync.enable(shop, input.access_token, input.identifier)
        return ShopifySync.from_model(config)

    @strawberry.mutation(description="Start a new full sync (SYNC_ALREADY_RUNNING if one runs).")
    async def resync_shopify_catalog(self, info: Info[Context, None], shop_domain: str) -> SyncRun:
        info.context.require_admin("resyncShopifyCatalog")
        run = await info.context.services.sync.resync(shop_domain_arg(shop_domain))
        return SyncRun.from_model(run)

    @strawberry.mutation(description="Cancel the running full sync; null when none was running.")
    async def cancel_shopify_sync(self, info: Info[Context, None], shop_domain: str) -> SyncRun | None:
        info.context.require_admin("cancelShopifySync")
        run = await info.context.services.sync.cancel(shop_domain_arg(shop_domain))
        return None if run is None else SyncRun.from_model(run)

    @strawberry.mutation(description="Stop syncing, delete the webhooks, the catalog and all its items.")
    async def disable_shopify_sync(self, info: Info[Context, None], shop_domain: str) -> DisableResult:
        info.context.require_admin("disableShopifySync")
        result = await info.context.services.sync.disable(shop_domain_arg(shop_domain))
        return DisableResult(
            shop_domain=result.shop_domain,
            items_deleted=result.items_deleted,
            alert_subscriptions_affected=result.alert_subscriptions_affected,
        )

    @strawberry.mutation
    async def mark_notification_read(self, info: Info[Context, None], id: strawberry.ID) -> Notification | None:
        info.context.require_admin("markNotificationRead")
        found = await info.context.services.store.mark_notification_read(str(id))
        if found is None:
            raise NotFoundError(f"no notification with id {str(id)[:100]!r}", fix="Use an id from `notifications`.")
        return Notification.from_model(found)


@strawberry.type
class Subscription(AlertSubscriptions):
    @strawberry.subscription(
        description="The shop's current (or last) run at once, then a snapshot on every change (at most "
        "~5 per second; phase changes at once), then every later run of the shop (each re-sync) until "
        "the client leaves. A run's final snapshot has a status other than RUNNING."
    )
    async def sync_progress(self, info: Info[Context, None], shop_domain: str) -> AsyncGenerator[SyncRun, None]:
        shop = shop_domain_arg(shop_domain)
        await _require_sync(info, shop)
        services = info.context.services
        runs_of_shop = watch_run(services.store, services.change_feed(), services.sync.progress, shop, services.live)
        async with aclosing(runs_of_shop) as runs:
            async for run in runs:
                yield SyncRun.from_model(run)

    @strawberry.subscription(description="Each new dashboard notification.")
    async def notifications(self, info: Info[Context, None]) -> AsyncGenerator[Notification, None]:
        services = info.context.services
        stream = watch_notifications(services.store, services.change_feed(), services.sync.notifier.hub)
        async with aclosing(stream) as notifications:
            async for notification in notifications:
                yield Notification.from_model(notification)


# -- error policy ----------------------------------------------------------------------------


def _located(error: GraphQLError, message: str, extensions: dict[str, object]) -> GraphQLError:
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions=extensions,
    )


def public_error(error: GraphQLError) -> GraphQLError:
    """What a client may see of `error`: coded domain errors with their fix, request errors with a
    code, anything unexpected masked as INTERNAL_SERVER_ERROR (the original is only logged)."""
    original = error.original_error
    if isinstance(original, ApiError):
        return error
    if original is None or isinstance(original, GraphQLError) and error.path is None:
        if (error.extensions or {}).get("code"):
            return error
        if isinstance(error, GraphQLSyntaxError) or isinstance(original, GraphQLSyntaxError):
            code = "GRAPHQL_PARSE_FAILED"
        elif error.path is None and error.message.startswith("Variable '$"):
            code = "BAD_USER_INPUT"
        elif error.path is None:
            code = "GRAPHQL_VALIDATION_FAILED"
        else:
            return error
        return _located(error, error.message, {**(error.extensions or {}), "code": code})
    api = api_error_for(original)
    if api is not None:
        return _located(error, api.message, api.extensions)
    return _located(error, UNEXPECTED, {"code": "INTERNAL_SERVER_ERROR"})


def request_secrets_of(execution_context: object) -> frozenset[str]:
    """The secrets one request carried (see gateway.redaction), from Strawberry's execution context."""
    schema = getattr(execution_context, "schema", None)
    if not isinstance(schema, GatewaySchema):
        return frozenset()
    return request_secrets(
        schema._schema,
        schema.secret_inputs,
        getattr(execution_context, "query", None),
        getattr(execution_context, "graphql_document", None),
        getattr(execution_context, "variables", None),
    )


def redacted(error: GraphQLError, secrets: frozenset[str]) -> GraphQLError:
    """`error` without any of `secrets` in its message."""
    message = redact(error.message, secrets) if secrets else error.message
    return error if message == error.message else _located(error, message, dict(error.extensions or {}))


class PublicErrors(MaskErrors):
    """Every error leaves through `public_error`, without the secrets of the request."""

    def __init__(self) -> None:
        super().__init__(error_message=UNEXPECTED)

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        secrets = request_secrets_of(self.execution_context)
        return [redacted(public_error(error), secrets) for error in errors]


class GatewaySchema(strawberry.Schema):
    """The schema with the gateway's limits and error policy."""

    def __init__(
        self, *args: Any, limits: QueryLimits = QueryLimits(), documents: DocumentCache | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits
        self.documents = documents if documents is not None else DocumentCache()
        self.secret_inputs = SecretInputs.of(self._schema)

    async def execute(self, query: str | None, *args: Any, **kwargs: Any) -> ExecutionResult:
        refused = check_query_text(query, self.limits)
        if refused is not None:
            return ExecutionResult(data=None, errors=[refused])
        fast = await read_fast_path(self._schema, self.documents, query, *args, **kwargs)
        if fast is not None:
            return ExecutionResult(data=fast, errors=None)
        return await super().execute(query, *args, **kwargs)

    async def stream(self, query: str | None, *args: Any, **kwargs: Any) -> StreamResult:
        """WebSocket operations (and subscriptions) come through here; over-long texts are refused
        before they reach the parser, as for `execute`."""
        refused = check_query_text(query, self.limits)
        if refused is None:
            return await super().stream(query, *args, **kwargs)

        async def refusal() -> AsyncGenerator[ExecutionResult, None]:
            yield PreExecutionError(data=None, errors=[refused])

        return refusal()

    def process_errors(self, errors: list[GraphQLError], execution_context: object = None) -> None:
        """Log errors without the request's source text and without its secrets; the traceback only
        for unexpected errors (formatted here, so it is redacted too)."""
        secrets = request_secrets_of(execution_context)
        for error in errors:
            path = ".".join(str(p) for p in error.path) if error.path else "-"
            original = error.original_error
            if original is not None and not isinstance(original, GraphQLError) and api_error_for(original) is None:
                trace = redact("".join(traceback.format_exception(original)), secrets)
                log.error("unexpected error at %s: %s\n%s", path, type(original).__name__, trace.rstrip())
            else:
                code = (public_error(error).extensions or {}).get("code")
                log.info("graphql error at %s: %s (%s)", path, redact(error.message, secrets), code)


def build_schema(
    *,
    max_depth: int = MAX_DEPTH,
    max_aliases: int = MAX_ALIASES,
    max_tokens: int = MAX_TOKENS,
    limits: QueryLimits | None = None,
) -> GatewaySchema:
    """The gateway's schema with its limits, checked once per distinct document (its cache is the
    schema's). Extensions are classes: Strawberry makes fresh instances per request (an instance
    would be shared by concurrent requests)."""
    if limits is None:
        limits = QueryLimits(max_depth=max_depth, max_aliases=max_aliases, max_tokens=max_tokens)
    documents = DocumentCache()
    return GatewaySchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=[token_limit(limits), cached_documents(limits, documents), PublicErrors],
        limits=limits,
        documents=documents,
    )


schema = build_schema()


def sdl() -> str:
    """The schema's SDL, as checked in at schema.graphql (`make schema` writes it)."""
    return print_schema(schema) + "\n"
