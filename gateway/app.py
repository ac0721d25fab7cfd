"""Starlette assembly: routes (/ the operator page, /graphql, /webhooks/shopify, /healthz, /readyz,
/metrics, /static), edge middleware and
the lifespan of a `Gateway` (built in `gateway.wiring`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.body import BodyLimits, BodyPolicy, RouteLimit
from gateway.graphql.http import GatewayGraphQL
from gateway.metrics import metrics_body, metrics_response
from gateway.operator_page import operator_page
from gateway.settings import Settings
from gateway.webhook_endpoint import MAX_BODY_BYTES as WEBHOOK_MAX_BODY_BYTES
from gateway.webhook_endpoint import PATH as WEBHOOK_PATH
from gateway.webhook_endpoint import webhook_route
from gateway.wiring import Gateway

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
HEALTH_TIMEOUT = 5.0

LOCAL_ORIGIN_REGEX = r"https?://(localhost|127\.0\.0\.1|\[::1\])(:\d+)?"


class GatewayCORS(CORSMiddleware):
    """Starlette's CORS, with a short path for the requests most callers send: no `Origin` header
    (servers, apps, same-origin pages). Those get what Starlette gives them, `Vary: Origin` (a
    cache must not serve them to a browser on another origin), without its header objects."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or any(name == b"origin" for name, _ in scope["headers"]):
            await super().__call__(scope, receive, send)
            return
        if self.allow_all_origins:  # Starlette adds nothing then
            await self.app(scope, receive, send)
            return

        async def vary_on_origin(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = vary_origin(message.get("headers") or [])
            await send(message)

        await self.app(scope, receive, vary_on_origin)


def vary_origin(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """`headers` with `Origin` added to `Vary`, as Starlette's CORS does: the `Vary` values joined into
    one header where the first was (at the end if there was none)."""
    out: list[tuple[bytes, bytes]] = []
    vary: list[bytes] = []
    at = -1
    for name, value in headers:
        if name == b"vary":
            if at < 0:
                at = len(out)
                out.append((name, value))
            vary.append(value)
        else:
            out.append((name, value))
    joined = (b"vary", b", ".join([*vary, b"Origin"]))
    if at < 0:
        out.append(joined)
    else:
        out[at] = joined
    return out


def cors_middleware(settings: Settings) -> Middleware:
    """Browsers on the allowed origins may call /graphql over HTTP (GATEWAY_ALLOWED_ORIGINS; default:
    localhost on any port). Tokens travel in the Authorization header, never in cookies."""
    common: dict[str, Any] = {
        "allow_methods": ["GET", "POST"],
        "allow_headers": ["Authorization", "Content-Type", "Accept"],
        "max_age": 600,
    }
    if settings.allowed_origins is None:
        return Middleware(GatewayCORS, allow_origin_regex=LOCAL_ORIGIN_REGEX, **common)
    return Middleware(GatewayCORS, allow_origins=list(settings.allowed_origins), **common)


def body_limits(settings: Settings) -> Middleware:
    """Every route's body is capped while it streams in (GATEWAY_MAX_BODY_BYTES; Shopify's
    webhooks may be larger) and must arrive within GATEWAY_BODY_TIMEOUT_SECONDS."""
    policy = BodyPolicy(
        default=RouteLimit(settings.max_body_bytes, "GATEWAY_MAX_BODY_BYTES"),
        timeout=settings.body_timeout,
        routes={WEBHOOK_PATH: RouteLimit(WEBHOOK_MAX_BODY_BYTES, f"{WEBHOOK_MAX_BODY_BYTES} bytes for webhooks")},
    )
    return Middleware(BodyLimits, policy=policy)


class GatewayApp(Starlette):
    """Starlette, except that HTTP requests to /graphql (every frontend read) go through the same
    middleware to the GraphQL endpoint without the router: matching the routes in front of it was
    a tenth of a cached read's cost. Everything else, WebSockets included, takes the router."""

    def __init__(self, graphql: ASGIApp, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._graphql = graphql
        self._graphql_stack: ASGIApp | None = None

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        router, self.router = self.router, self._graphql  # type: ignore[assignment]
        try:
            self._graphql_stack = super().build_middleware_stack()  # the same layers, endpoint inside
        finally:
            self.router = router
        return stack

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/graphql" and not scope.get("root_path"):
            if self._graphql_stack is None:
                self.middleware_stack = self.build_middleware_stack()
            assert self._graphql_stack is not None
            scope["app"] = self
            scope.setdefault("router", self.router)
            await self._graphql_stack(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(gateway: Gateway, *, manage_lifecycle: bool = True, browser_token: str | None = None) -> GatewayApp:
    """The ASGI app. With `manage_lifecycle`, the app's lifespan starts and closes `gateway`.
    `browser_token` (the demo's, on loopback only) is filled into the GraphiQL and operator pages."""
    graphql = GatewayGraphQL(
        gateway.schema,
        gateway.services,
        gateway.authenticator,
        allowed_origins=gateway.settings.allowed_origins,
        max_operations=gateway.settings.max_subscriptions,
        browser_token=browser_token,
    )
    async def healthz(request: Request) -> Response:
        kind = "mongodb" if gateway.store.persistent else "memory"
        try:
            await asyncio.wait_for(gateway.check_store(), HEALTH_TIMEOUT)
        except Exception as exc:  # any failure means unhealthy; the reason is logged, not shown
            log.warning("health check failed: %s: %s", type(exc).__name__, exc)
            return JSONResponse({"status": "unavailable", "store": kind, "error": "store unreachable"}, 503)
        return JSONResponse({"status": "ok", "store": kind, "persistent": gateway.store.persistent})

    async def readyz(request: Request) -> Response:
        if not gateway.started:
            return JSONResponse({"status": "starting"}, 503)
        try:
            await asyncio.wait_for(gateway.check_store(), HEALTH_TIMEOUT)
        except Exception as exc:  # any failure means not ready; the reason is logged, not shown
            log.warning("readiness check failed: %s: %s", type(exc).__name__, exc)
            return JSONResponse({"status": "unavailable", "error": "store unreachable"}, 503)
        return JSONResponse({"status": "ready"})

    async def metrics(request: Request) -> Response:
        return metrics_response(await metrics_body(gateway.store))

    async def index(request: Request) -> Response:
        return operator_page(browser_token)

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
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/graphql", graphql),
        webhook_route(gateway.webhooks, gateway.settings.shopify_api_secrets),
        WebSocketRoute("/graphql", graphql),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    middleware = [body_limits(gateway.settings), cors_middleware(gateway.settings)]  # outermost first
    app = GatewayApp(graphql, routes=routes, lifespan=lifespan, middleware=middleware)
    app.state.gateway = gateway
    return app
