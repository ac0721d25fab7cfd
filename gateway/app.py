"""Starlette assembly: routes (/graphql, /webhooks/shopify, /healthz, /static), lifespan, wiring of store and
services."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from bulk.notifications import EmailSender, Notifier
from bulk.progress import Broadcaster
from bulk.sync import SyncService, SyncSettings
from bulk.webhook_processor import ProcessorSettings, WebhookProcessor
from catalog_store.feed import ChangeFeed
from catalog_store.models import Notification, SyncRun
from catalog_store.store import CatalogStore
from gateway.auth import Authenticator
from gateway.body import BodyLimits, BodyPolicy, RouteLimit
from gateway.context import LiveSettings, Services
from gateway.email import email_sender
from gateway.http import GatewayGraphQL
from gateway.schema import GatewaySchema
from gateway.schema import schema as default_schema
from gateway.settings import Settings
from gateway.webhooks import MAX_BODY_BYTES as WEBHOOK_MAX_BODY_BYTES
from gateway.webhooks import PATH as WEBHOOK_PATH
from gateway.webhooks import webhook_route

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
HEALTH_TIMEOUT = 5.0



def sync_settings_for(settings: Settings, **overrides: Any) -> SyncSettings:
    """SyncSettings from the gateway's environment. Webhooks are registered only when a secret to
    verify them is configured (SHOPIFY_API_SECRET): without one they would be refused anyway."""
    values: dict[str, Any] = {
        "api_version": settings.shopify_api_version,
        "admin_api_url_template": settings.shopify_admin_api_url,
        "storage_limit_bytes": settings.catalog_storage_limit_bytes,
        "public_url": settings.effective_public_url if settings.shopify_api_secrets else None,
        "lease_ttl": float(settings.lease_ttl_seconds),
        "batch_size": settings.ingest_batch_size,
    }
    values.update(overrides)
    return SyncSettings(**values)


LOCAL_ORIGIN_REGEX = r"https?://(localhost|127\.0\.0\.1|\[::1\])(:\d+)?"


def cors_middleware(settings: Settings) -> Middleware:
    """Browsers on the allowed origins may call /graphql over HTTP (GATEWAY_ALLOWED_ORIGINS; default:
    localhost on any port). Tokens travel in the Authorization header, never in cookies."""
    common: dict[str, Any] = {
        "allow_methods": ["GET", "POST"],
        "allow_headers": ["Authorization", "Content-Type", "Accept"],
        "max_age": 600,
    }
    if settings.allowed_origins is None:
        return Middleware(CORSMiddleware, allow_origin_regex=LOCAL_ORIGIN_REGEX, **common)
    return Middleware(CORSMiddleware, allow_origins=list(settings.allowed_origins), **common)


def body_limits(settings: Settings) -> Middleware:
    """Every route's body is capped while it streams in (GATEWAY_MAX_BODY_BYTES; Shopify's
    webhooks may be larger) and must arrive within GATEWAY_BODY_TIMEOUT_SECONDS."""
    policy = BodyPolicy(
        default=RouteLimit(settings.max_body_bytes, "GATEWAY_MAX_BODY_BYTES"),
        timeout=settings.body_timeout,
        routes={WEBHOOK_PATH: RouteLimit(WEBHOOK_MAX_BODY_BYTES, f"{WEBHOOK_MAX_BODY_BYTES} bytes for webhooks")},
    )
    return Middleware(BodyLimits, policy=policy)


class Gateway:
    """One gateway process: the store, the sync service, notifications, and their lifecycle."""

    def __init__(
        self,
        settings: Settings,
        store: CatalogStore,
        *,
        auth: bool = True,
        email: EmailSender | None = None,
        sync_settings: SyncSettings | None = None,
        live: LiveSettings | None = None,
        session: aiohttp.ClientSession | None = None,
        owner_id: str | None = None,
        schema: GatewaySchema = default_schema,
        webhook_settings: ProcessorSettings | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.schema = schema
        self.notifier = Notifier(store, email if email is not None else email_sender(settings.smtp),
                                 Broadcaster[Notification]())
        self.sync = SyncService(
            store,
            settings=sync_settings or sync_settings_for(settings),
            notifier=self.notifier,
            progress=Broadcaster[SyncRun](),
            session=session,
            owner_id=owner_id,
        )
        self.webhooks = WebhookProcessor(store, self.sync, settings=webhook_settings)
        self.services = Services(store=store, sync=self.sync, live=live or LiveSettings())
        self.feed: ChangeFeed | None = None  # created by start(), from the connected store
        self.authenticator = Authenticator(settings.admin_token, settings.read_token, enabled=auth)

    async def start(self) -> None:
        await self.store.start()
        live = self.services.live
        feed = self.store.feed(poll_interval=live.store_poll_interval, polling=live.force_polling)
        await feed.start()
        self.feed = self.services.feed = feed
        await self.sync.start()
        await self.webhooks.start()

    async def close(self) -> None:
        try:
            if self.feed is not None:
                await self.feed.close()
            await self.webhooks.close()
            await self.sync.close()
        finally:
            await self.store.close()

    async def check_store(self) -> None:
        """Raises when the store cannot answer a trivial read."""
        await self.store.get_sync("healthz.myshopify.com")


def create_app(gateway: Gateway, *, manage_lifecycle: bool = True) -> Starlette:
    """The ASGI app. With `manage_lifecycle`, the app's lifespan starts and closes `gateway`."""
    graphql = GatewayGraphQL(
        gateway.schema,
        gateway.services,
        gateway.authenticator,
        allowed_origins=gateway.settings.allowed_origins,
        max_operations=gateway.settings.max_subscriptions,
    )
    async def healthz(request: Request) -> Response:
        kind = "mongodb" if gateway.store.persistent else "memory"
        try:
            await asyncio.wait_for(gateway.check_store(), HEALTH_TIMEOUT)
        except Exception as exc:  # any failure means unhealthy; the reason is logged, not shown
            log.warning("health check failed: %s: %s", type(exc).__name__, exc)
            return JSONResponse({"status": "unavailable", "store": kind, "error": "store unreachable"}, 503)
        return JSONResponse({"status": "ok", "store": kind, "persistent": gateway.store.persistent})

    async def index(request: Request) -> Response:
        return RedirectResponse("/graphql", status_code=307)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if manage_lifecycle:
            await gateway.start()
        try:
            yield
        finally:
            if manage_lifecycle:
                await gateway.close()

    routes = [
        Route("/", index, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/graphql", graphql),
        webhook_route(gateway.webhooks, gateway.settings.shopify_api_secrets),
        WebSocketRoute("/graphql", graphql),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    middleware = [body_limits(gateway.settings), cors_middleware(gateway.settings)]  # outermost first
    app = Starlette(routes=routes, lifespan=lifespan, middleware=middleware)
    app.state.gateway = gateway
    return app
