"""GraphQL object types, enums and inputs (names fixed: frontends depend on them, and
`tests/gateway/test_schema.py` checks them against `tests/gateway/spec_schema.graphql`).

Types are built from the store's records by `from_model`; the Shopify access token has no field
anywhere, so it can never be selected.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

import strawberry
from strawberry.types import Info

from bulk.outcomes import error_fix
from bulk.webhooks.realtime import realtime_status
from catalog_store import models
from catalog_store.items import CATALOG_FIELDS, Identifier
from catalog_store.items import CatalogItem as ItemRecord
from catalog_store.items import catalog_name as catalog_name_for
from catalog_store.models import EmailStatus, ItemFilter, RunStatus, SyncErrorCode, SyncStatus, utcnow
from gateway.errors import BadUserInput
from gateway.graphql import alerts
from gateway.graphql.context import Context
from gateway.graphql.pagination import check_page_size, decode_cursor, encode_cursor
from gateway.graphql.realtime import RealtimeStatus
from gateway.redaction import SECRET

MAX_RUNS = 100
DEFAULT_PAGE_SIZE = 50
DEFAULT_RUNS = 10
MAX_SEARCH_LENGTH = 200


T = TypeVar("T")


def _given(value: T | None) -> T | None:
    """An omitted input field (UNSET) reads as None: no condition."""
    return None if value is strawberry.UNSET else value


# The domain's enums under their GraphQL names: declared once, so a member added to the domain
# reaches the API without a second edit (`schema.graphql` shows any such change).
strawberry.enum(Identifier, name="CatalogIdentifier")
strawberry.enum(SyncStatus)
strawberry.enum(SyncErrorCode)
strawberry.enum(RunStatus)
strawberry.enum(EmailStatus, description="What happened to a notification's email.")


@strawberry.type(description="Variants filtered out of a run, by reason, with a few example ids.")
class SkipCount:
    reason: str
    count: int
    examples: list[str]


GRAPHQL_INT_MAX = 2**31 - 1
_CAPPED = " Capped at 2,147,483,647 (GraphQL Int is 32-bit)."


def int32(value: int) -> int:
    """A count or byte size as GraphQL's 32-bit `Int` can carry it: larger values (a bulk result
    over 2 GiB, a storage limit set above it) are reported as the largest Int instead of failing
    the whole response."""
    return value if value <= GRAPHQL_INT_MAX else GRAPHQL_INT_MAX


@strawberry.type(description="One full sync run and its live progress.")
class SyncRun:
    id: strawberry.ID
    shop_domain: str
    status: RunStatus
    phase: str
    object_count: int
    bytes_downloaded: int = strawberry.field(description="Bytes of the bulk result read so far." + _CAPPED)
    file_size: int | None = strawberry.field(description="Size of the bulk result, once Shopify knows it." + _CAPPED)
    items_written: int
    items_skipped: int
    skipped: list[SkipCount]
    malformed_lines: int
    started_at: datetime
    finished_at: datetime | None
    elapsed_seconds: float
    error_code: SyncErrorCode | None
    error_message: str | None

    @strawberry.field(description="What to do about `errorCode` (null without an error).")
    def error_fix(self) -> str | None:
        return None if self.error_code is None else error_fix(self.error_code, self.error_message)

    @classmethod
    def from_model(cls, run: models.SyncRun) -> SyncRun:
        """A snapshot: later changes to `run` do not show through."""
        end = run.finished_at or utcnow()
        return cls(
            id=strawberry.ID(run.id),
            shop_domain=run.shop_domain,
            status=run.status,
            phase=run.phase,
            object_count=int32(run.object_count),
            bytes_downloaded=int32(run.bytes_downloaded),
            file_size=None if run.file_size is None else int32(run.file_size),
            items_written=run.items_written,
            items_skipped=run.items_skipped,
            skipped=[SkipCount(reason=s.reason, count=s.count, examples=list(s.examples)) for s in run.skipped],
            malformed_lines=run.malformed_lines,
            started_at=run.started_at,
            finished_at=run.finished_at,
            elapsed_seconds=max(0.0, round((end - run.started_at).total_seconds(), 3)),
            error_code=run.error_code,
            error_message=run.error_message,
        )


@strawberry.type(description="One catalog item: one Shopify variant (the 20 fields of the catalog).")
class CatalogItem:
    id: str
    store_name: str
    shopify_product_id: str
    shopify_variant_id: str
    product_title: str
    variant_title: str | None
    status: str
    product_image_url: str | None
    variant_image_url: str | None
    vendor: str | None
    product_type: str | None
    product_url: str | None
    product_handle: str | None
    published_scope: str | None
    price: Decimal
    compare_at_price: Decimal | None
    inventory_quantity: int | None
    options: list[str]
    option_values: list[str]
    sku: str | None

    @classmethod
    def from_model(cls, item: ItemRecord) -> CatalogItem:
        """Money is rebuilt from the exact strings Shopify wrote ("19.99" stays "19.99")."""
        values: dict[str, Any] = {}
        for name in CATALOG_FIELDS:
            value = getattr(item, name)
            convert = ITEM_CONVERSIONS.get(name)
            values[name] = value if convert is None or value is None else convert(value)
        return cls(**values)


# The CatalogItem fields that are not the stored value as it is (by Python name), applied to non-null
# values only: the one mapping `from_model` and the read fast path (`gateway.graphql.fastpath`) share.
ITEM_CONVERSIONS: dict[str, Callable[[Any], object]] = {
    "price": Decimal,
    "compare_at_price": Decimal,
    "options": list,
    "option_values": list,
}


@strawberry.type
class CatalogItemEdge:
    cursor: str
    node: CatalogItem


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class CatalogItemConnection:
    edges: list[CatalogItemEdge]
    page_info: PageInfo
    total_count: int


@strawberry.input(description="All given conditions must hold. `search`: case-insensitive, in titles and SKU.")
class CatalogItemFilter:
    status: str | None = strawberry.field(
        default=strawberry.UNSET,
        description="Product status, in any case: `ACTIVE`, `active` and `Active` match the same items "
                    "(items hold Shopify's status lowercased: active, draft, archived).",
    )
    vendor: str | None = strawberry.UNSET
    product_type: str | None = strawberry.UNSET
    in_stock: bool | None = strawberry.UNSET
    price_min: Decimal | None = strawberry.UNSET
    price_max: Decimal | None = strawberry.UNSET
    search: str | None = strawberry.field(
        default=strawberry.UNSET,
        description=(
            "Items whose product title, variant title or SKU contains this text as a literal substring, "
            "ignoring case (each character equal to the other's upper or lower case; no pattern syntax). The same "
            "rule on every store. Both stores index the words of those fields (runs of letters and digits): "
            "every word of the text must lie inside a word of the item, and every three-character piece of it "
            "(a trigram) in the item's words. The text is then tested as a whole. A text with no word of three "
            "characters or more (`xl`, `3`) has no trigram to look up: on MongoDB it is tested against every "
            "item the other conditions select."
        ),
    )

    def to_model(self) -> ItemFilter:
        """The store's filter (an omitted or null condition is no condition). BAD_USER_INPUT for
        non-finite prices or an empty price range."""
        low: Decimal | None = _given(self.price_min)
        high: Decimal | None = _given(self.price_max)
        search: str | None = _given(self.search)
        for name, bound in (("priceMin", low), ("priceMax", high)):
            if bound is not None and not bound.is_finite():
                raise BadUserInput(f"`{name}` must be a finite decimal number")
        if low is not None and high is not None and low > high:
            raise BadUserInput(f"`priceMin` ({low}) is greater than `priceMax` ({high})")
        if search is not None and len(search) > MAX_SEARCH_LENGTH:
            raise BadUserInput(f"`search` is longer than {MAX_SEARCH_LENGTH} characters")
        return ItemFilter(
            status=_given(self.status),
            vendor=_given(self.vendor),
            product_type=_given(self.product_type),
            in_stock=_given(self.in_stock),
            price_min=low,
            price_max=high,
            search=search,
        )


@strawberry.type(description="A catalog: the items of one shop, read-only (only the sync writes items).")
class Catalog:
    name: str
    store_name: str

    @classmethod
    def from_model(cls, info: models.CatalogInfo) -> Catalog:
        return cls(name=info.name, store_name=info.store_name)

    @strawberry.field(description="Back-in-stock and price-drop rules.")
    async def alert_rules(self, info: Info[Context, None]) -> alerts.AlertRules:
        return await alerts.catalog_alert_rules(info, self.name)

    @strawberry.field(description="Active alert subscriptions, oldest first (`first` ≤ 250).")
    async def alert_subscriptions(
        self, info: Info[Context, None], first: int | None = 50, item_id: str | None = strawberry.UNSET,
        user_id: str | None = strawberry.UNSET,
    ) -> list[alerts.AlertSubscription]:
        return await alerts.catalog_alert_subscriptions(info, self.name, first, _given(item_id), _given(user_id))

    @strawberry.field(description="Alert events, newest first (`first` ≤ 250).")
    async def alert_events(
        self, info: Info[Context, None], first: int | None = 50,
        type: alerts.AlertType | None = strawberry.UNSET,  # type: ignore[valid-type]
    ) -> list[alerts.AlertEvent]:
        return await alerts.catalog_alert_events(info, self.name, first, _given(type))

    @strawberry.field(description="Exact number of items.")
    async def item_count(self, info: Info[Context, None]) -> int:
        return (await catalog_info(info.context, self.name, self.store_name)).item_count

    @strawberry.field(description="Stored size of the items in bytes (what the storage limit counts)." + _CAPPED)
    async def storage_bytes(self, info: Info[Context, None]) -> int:
        return int32((await catalog_info(info.context, self.name, self.store_name)).storage_bytes)

    @strawberry.field(description="The storage limit all catalogs share (CATALOG_STORAGE_LIMIT_BYTES)." + _CAPPED)
    def storage_limit_bytes(self, info: Info[Context, None]) -> int:
        return int32(info.context.services.storage_limit_bytes)

    @strawberry.field(description="Items in ascending id order (keyset pagination; `first` ≤ 250).")
    async def items(
        self,
        info: Info[Context, None],
        first: int | None = 50,
        after: str | None = strawberry.UNSET,
        filter: CatalogItemFilter | None = strawberry.UNSET,
    ) -> CatalogItemConnection:
        page, after_id = await items_page(info.context, self.name, first, after, filter)
        edges = [CatalogItemEdge(cursor=encode_cursor(i.id), node=CatalogItem.from_model(i)) for i in page.items]
        return CatalogItemConnection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=page.has_next_page,
                has_previous_page=after_id is not None,
                start_cursor=edges[0].cursor if edges else None,
                end_cursor=edges[-1].cursor if edges else None,
            ),
            total_count=page.total_count,
        )

    @strawberry.field
    async def item(self, info: Info[Context, None], id: str) -> CatalogItem | None:
        found = await info.context.services.store.get_item(self.name, id)
        return None if found is None else CatalogItem.from_model(found)


# -- what the catalog resolvers do, as plain functions (the read fast path calls them too) --------


async def catalog_info(context: Context, name: str, store_name: str) -> models.CatalogInfo:
    """The catalog's current counts (through the request's loader)."""
    current = await context.loaders.catalogs.load(name)
    if current is None:  # deleted while the request ran
        return models.CatalogInfo(name=name, shop_domain="", store_name=store_name)
    return current


async def items_page(
    context: Context, name: str, first: int | None, after: str | None, filter: CatalogItemFilter | None
) -> tuple[models.ItemPage, str | None]:
    """One page of `Catalog.items` and the item id its cursor `after` names (None: first page)."""
    first = check_page_size(DEFAULT_PAGE_SIZE if first is None else first)
    after_id = None if after is None or after is strawberry.UNSET else decode_cursor(after)
    item_filter = None if filter is None or filter is strawberry.UNSET else filter.to_model()
    page = await context.services.store.list_items(name, first=first, after=after_id, filter=item_filter)
    return page, after_id


@strawberry.type(description="A sync error code and what to do about it.")
class SyncErrorInfo:
    code: SyncErrorCode
    fix: str


@strawberry.type(description="A shop's sync configuration and status. The access token is never returned.")
class ShopifySync:
    shop_domain: str
    catalog_name: str
    store_name: str | None
    identifier: Identifier
    status: SyncStatus
    active: bool
    error_code: SyncErrorCode | None
    error_message: str | None
    created_at: datetime
    updated_at: datetime

    @strawberry.field(description="What to do about `errorCode` (null without an error).")
    def error_fix(self) -> str | None:
        return None if self.error_code is None else error_fix(self.error_code, self.error_message)

    @classmethod
    def from_model(cls, config: models.SyncConfig) -> ShopifySync:
        return cls(
            shop_domain=config.shop_domain,
            catalog_name=config.catalog_name or catalog_name_for(config.shop_domain),
            store_name=config.store_name,
            identifier=config.identifier,
            status=config.status,
            active=config.active,
            error_code=config.error_code,
            error_message=config.error_message,
            created_at=config.created_at,
            updated_at=config.updated_at,
        )

    @strawberry.field(description="The most recent run.")
    async def last_run(self, info: Info[Context, None]) -> SyncRun | None:
        runs = await info.context.loaders.runs.load((self.shop_domain, 1))
        return SyncRun.from_model(runs[0]) if runs else None

    @strawberry.field(description=f"The most recent runs, newest first (`last` ≤ {MAX_RUNS}).")
    async def runs(self, info: Info[Context, None], last: int | None = DEFAULT_RUNS) -> list[SyncRun]:
        last = DEFAULT_RUNS if last is None else last
        if last < 0 or last > MAX_RUNS:
            raise BadUserInput(f"`last` must be between 0 and {MAX_RUNS} (got {last})")
        if last == 0:
            return []
        runs = await info.context.loaders.runs.load((self.shop_domain, last))
        return [SyncRun.from_model(r) for r in runs]

    @strawberry.field(description="How close to real time the catalog is: webhook backlog, lag and outcomes.")
    async def realtime(self, info: Info[Context, None]) -> RealtimeStatus:
        services = info.context.services
        return RealtimeStatus.from_figures(
            await realtime_status(services.store, self.shop_domain, services.realtime_lag_alert_seconds))

    @strawberry.field(description="The shop's catalog (null before the first run created it).")
    async def catalog(self, info: Info[Context, None]) -> Catalog | None:
        found = await info.context.loaders.catalogs.load(self.catalog_name)
        return None if found is None else Catalog.from_model(found)


@strawberry.type
class Notification:
    id: strawberry.ID
    shop_domain: str | None
    level: str
    title: str
    message: str
    created_at: datetime
    read: bool
    email_status: EmailStatus
    email_error: str | None

    @classmethod
    def from_model(cls, n: models.Notification) -> Notification:
        return cls(
            id=strawberry.ID(n.id),
            shop_domain=n.shop_domain,
            level=n.level.value,
            title=n.title,
            message=n.message,
            created_at=n.created_at,
            read=n.read,
            email_status=n.email_status,
            email_error=n.email_error,
        )


@strawberry.type
class DisableResult:
    shop_domain: str
    items_deleted: int
    alert_subscriptions_affected: int


@strawberry.input
class EnableShopifySyncInput:
    shop_domain: str
    access_token: str = strawberry.field(
        description="Admin API access token: write-only, never returned.",
        metadata={SECRET: True},  # kept out of every error and log line (gateway.redaction)
    )
    identifier: Identifier
