"""The GraphQL endpoint: Strawberry's ASGI view with our auth, GraphQL-over-HTTP media types,
graphql-transport-ws only, origin checks and the offline GraphiQL page."""

from __future__ import annotations

import html
from collections.abc import Sequence
from contextlib import AbstractContextManager
from contextvars import ContextVar
from datetime import timedelta
from importlib import resources
from typing import Any, cast
from urllib.parse import urlsplit

import orjson
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from graphql import GraphQLFormattedError
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse
from strawberry.http.parse_content_type import parse_content_type
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.subscriptions.protocols.graphql_transport_ws.types import ErrorMessage, SubscribeMessage
from strawberry.types.unset import UNSET, UnsetType

from gateway.errors import ApiError, RequestRefused, Unauthenticated
from gateway.graphql.auth import Authenticator
from gateway.graphql.context import Context, Loaders, Services
from gateway.graphql.media import GRAPHQL_RESPONSE_JSON, JSON, negotiate_media_type
from gateway.graphql.read_http import HttpCache, read_fast
from gateway.metrics import graphql_timer
from gateway.settings import DEFAULT_MAX_SUBSCRIPTIONS, LOCAL_HOSTNAMES

# The GraphiQL page loads only same-origin assets; this policy makes the browser enforce it.
GRAPHIQL_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


def is_request_error(response: GraphQLHTTPResponse) -> bool:
    """True when the operation never executed (parse, validation or variable errors): no data and
    no error carries a response path."""
    errors = cast(list[dict[str, object]], response.get("errors") or [])
    return response.get("data") is None and bool(errors) and all(not e.get("path") for e in errors)


# The request body parse_http_body decoded, so Strawberry's own parse of the same bytes reuses it.
_PARSED_BODY: ContextVar[tuple[bytes | str, Any] | None] = ContextVar("gateway_parsed_body", default=None)

MAX_OPERATIONS_PER_CONNECTION = 50
# Strawberry's HTTP refusals (HTTPException: status and reason) → a code and a fix for the client.
REFUSAL_CODES: dict[int, tuple[str, str]] = {
    400: ("BAD_REQUEST", "Send a JSON object {\"query\": \"…\", \"variables\": {…}} as UTF-8 with "
                         "Content-Type: application/json, or the same as GET query parameters."),
    404: ("NOT_FOUND", "Send GraphQL requests to /graphql (GET or POST); the GraphiQL page needs Accept: text/html."),
    405: ("METHOD_NOT_ALLOWED", "Send queries with GET or POST, and mutations with POST."),
}
UNKNOWN_REFUSAL = ("BAD_REQUEST", "Correct the request as the message says.")


def http_refusal(exc: HTTPException) -> RequestRefused:
    """Strawberry's plain-text refusal as a coded GraphQL error (never a traceback)."""
    code, fix = REFUSAL_CODES.get(exc.status_code, UNKNOWN_REFUSAL)
    return RequestRefused(exc.reason, code, fix, status=exc.status_code)


def graphiql_html() -> str:
    return resources.files("gateway").joinpath("static/graphiql.html").read_text(encoding="utf-8")


def with_browser_token(page: str, token: str | None) -> str:
    """The page with the demo's token in a meta tag its script reads (the Headers tab, the
    operator page's token field); unchanged without one."""
    if token is None:
        return page
    meta = f'<meta name="catalog-gateway-token" content="{html.escape(token, quote=True)}" />'
    return page.replace("</head>", f"    {meta}\n  </head>", 1)


def timed_request(args: tuple[Any, ...], kwargs: dict[str, Any]) -> AbstractContextManager[None]:
    """The latency metric's timer for one HTTP request (its GraphQLRequestData is the last argument
    of Strawberry's execute_single)."""
    data = kwargs.get("request_data", args[-1] if args else None)
    return graphql_timer(getattr(data, "query", None), getattr(data, "operation_name", None))


class OperationSlots:
    """The WebSocket operations (subscriptions, and queries sent over a socket) in flight in this
    process, against a cap: each costs a task and store polls, and 60 sockets of 50 subscriptions
    stalled /healthz for 40 s."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.handlers: set[LimitedTransportWSHandler] = set()

    @property
    def in_use(self) -> int:
        return sum(len(handler.operations) for handler in self.handlers)


def too_many_operations(message: str, fix: str) -> GraphQLFormattedError:
    error = ApiError(message, "TOO_MANY_SUBSCRIPTIONS", fix, retryable=True)
    return GraphQLFormattedError(message=error.message, extensions=error.extensions)


class LimitedTransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws with the process-wide cap of `OperationSlots` (and a coded error for
    the per-connection one): a subscribe over either gets an `error` message for that id; the
    connection and its other operations go on."""

    async def handle(self) -> None:
        slots = self._slots
        slots.handlers.add(self)
        try:
            await super().handle()
        finally:
            slots.handlers.discard(self)

    @property
    def _slots(self) -> OperationSlots:
        slots = getattr(self.view, "operation_slots", None)
        assert isinstance(slots, OperationSlots)
        return slots

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        if self.connection_acknowledged and message["id"] not in self.operations:
            refusal = self._refusal()
            if refusal is not None:
                await self.send_message(ErrorMessage(id=message["id"], type="error", payload=[refusal]))
                return
        await super().handle_subscribe(message)

    def _refusal(self) -> GraphQLFormattedError | None:
        limit = self.max_subscriptions_per_connection
        if limit is not None and len(self.operations) >= limit:
            return too_many_operations(
                f"This connection already runs {limit} operations.",
                "Complete operations you no longer need, or open another connection.",
            )
        slots = self._slots
        if slots.in_use >= slots.limit:
            return too_many_operations(
                f"The gateway runs its maximum of {slots.limit} WebSocket operations.",
                "Retry later, or complete subscriptions you no longer need (the limit is GATEWAY_MAX_SUBSCRIPTIONS).",
            )
        return None


class GatewayGraphQL(GraphQL[Context, None]):
    """`/graphql` for GET, POST and WebSocket (graphql-transport-ws)."""

    graphql_transport_ws_handler_class = LimitedTransportWSHandler

    def __init__(
        self,
        schema: Any,
        services: Services,
        authenticator: Authenticator,
        *,
        allowed_origins: Sequence[str] | None = None,
        connection_init_wait_timeout: timedelta = timedelta(seconds=10),
        max_operations: int = DEFAULT_MAX_SUBSCRIPTIONS,
        browser_token: str | None = None,
    ) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql",
            allow_queries_via_get=True,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            connection_init_wait_timeout=connection_init_wait_timeout,
            allowed_origins=tuple(allowed_origins or ()),
            max_subscriptions_per_connection=MAX_OPERATIONS_PER_CONNECTION,
        )
        self.operation_slots = OperationSlots(max_operations)
        self.services = services
        self.authenticator = authenticator
        self.allow_local_origins = allowed_origins is None
        self._graphiql_html = with_browser_token(graphiql_html(), browser_token)

    # -- HTTP ------------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive=receive)
        role = self.authenticator.role_for(request.headers.get("authorization"))
        request.state.gateway_role = role  # get_context reads it: tokens are checked once per request
        if role is None and not self._wants_ide(request):
            await self._unauthenticated(request)(scope, receive, send)  # before reading any body
            return
        cache = HttpCache.of(self, request, role)
        if cache is not None and cache.fresh(request):
            await cache.not_modified()(scope, receive, send)
            return
        try:
            response = await read_fast(self.schema, self.services, request, role) or await self.run(request)
        except HTTPException as exc:
            response = self._refused(request, http_refusal(exc))
        if cache is not None:
            cache.label(response)
        await response(scope, receive, send)

    def _refused(self, request: Request, refused: RequestRefused) -> Response:
        return Response(refused.body(), status_code=refused.status,
                        media_type=negotiate_media_type(request.headers.get("accept")))

    def decode_json(self, data: str | bytes) -> object:
        """orjson: invalid UTF-8 and nesting too deep are JSONDecodeErrors (400), not a 500 with a
        traceback as with `json.loads`; also used for WebSocket messages."""
        return orjson.loads(data)

    def parse_json(self, data: str | bytes) -> Any:
        parsed = _PARSED_BODY.get()
        if parsed is not None and parsed[0] is data:  # parse_http_body parsed this very body already
            return parsed[1]
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            raise HTTPException(400, "The request body is not valid JSON encoded as UTF-8.") from None

    async def parse_http_body(self, request: AsyncHTTPRequestAdapter) -> Any:
        """Strawberry's parsing, after refusing a JSON body that is not an object (a number or a
        string would reach `.get` and end in a 500)."""
        content_type, _ = parse_content_type(request.content_type or "")
        if request.method == "POST" and "application/json" in content_type:
            body = await request.get_body()  # cached by the adapter: Strawberry reads the same object
            data = self.parse_json(body)
            if not isinstance(data, (dict, list)):
                raise HTTPException(400, "The request body must be a JSON object with a `query` string.")
            token = _PARSED_BODY.set((body, data))
            try:
                return await super().parse_http_body(request)
            finally:
                _PARSED_BODY.reset(token)
        return await super().parse_http_body(request)

    @staticmethod
    def _wants_ide(request: Request) -> bool:
        accept = request.headers.get("accept", "")
        return (
            request.method == "GET"
            and request.query_params.get("query") is None
            and ("text/html" in accept or "*/*" in accept)
        )

    def _unauthenticated(self, request: Request) -> Response:
        error = Unauthenticated()
        body = {"errors": [{"message": error.message, "extensions": error.extensions}]}
        return Response(
            orjson.dumps(body),
            status_code=401,
            media_type=negotiate_media_type(request.headers.get("accept")),
            headers={"WWW-Authenticate": 'Bearer realm="catalog-gateway"'},
        )

    async def render_graphql_ide(self, request: Request) -> Response:
        return HTMLResponse(
            self._graphiql_html,
            headers={"Content-Security-Policy": GRAPHIQL_CSP, "X-Content-Type-Options": "nosniff"},
        )

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        if isinstance(request, WebSocket):
            # Role decided by the connection_init payload (on_ws_connect). The connection may live
            # for hours: loaders batch but do not cache across its operations.
            return Context(self.services, None, Loaders(self.services.store, cache=False), request, response)
        role = getattr(request.state, "gateway_role", None)
        if role is None:
            role = self.authenticator.role_for(request.headers.get("authorization"))
        return Context(self.services, role, Loaders(self.services.store), request, response)

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        sub_response = await super().get_sub_response(request)
        sub_response.media_type = negotiate_media_type(request.headers.get("accept"))
        return sub_response

    async def execute_single(self, request: Request, request_adapter: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            with timed_request(args, kwargs):
                return await super().execute_single(request, request_adapter, *args, **kwargs)
        except HTTPException as exc:
            # GraphQL over HTTP: a mutation sent with GET is 405, not 400.
            if isinstance(exc.__cause__, InvalidOperationTypeError) and request_adapter.method == "GET":
                raise HTTPException(405, exc.reason) from exc
            raise

    def create_response(
        self, response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse], sub_response: Response
    ) -> Response:
        media_type = sub_response.media_type or JSON
        status = 200
        if media_type == GRAPHQL_RESPONSE_JSON and isinstance(response_data, dict) and is_request_error(response_data):
            body: object = {k: v for k, v in response_data.items() if k != "data"}
            status = 400
        else:
            body = response_data
        response = Response(self.encode_json(body), status_code=status, media_type=media_type)
        response.headers.raw.extend(
            (k, v) for k, v in sub_response.headers.raw if k.lower() not in (b"content-type", b"content-length")
        )
        if sub_response.status_code:
            response.status_code = sub_response.status_code
        return response

    def encode_json(self, data: object) -> str:
        # Text, not bytes: over WebSocket, bytes would go out as binary frames, which
        # graphql-transport-ws clients reject.
        return orjson.dumps(data).decode()

    # -- WebSocket -------------------------------------------------------------------------------

    async def on_ws_connect(self, context: Context) -> UnsetType:
        role = self.authenticator.role_for_connection_params(context.connection_params)
        if role is None:
            raise ConnectionRejectionError({"code": "UNAUTHENTICATED"})  # closes with 4403 Forbidden
        context.role = role
        return cast(UnsetType, UNSET)

    def is_websocket_origin_allowed(self, request: WebSocket, origin: str) -> bool:
        if super().is_websocket_origin_allowed(request, origin):
            return True
        if not self.allow_local_origins:
            return False
        try:
            host = urlsplit(origin).hostname
        except ValueError:
            return False
        return host is not None and host.lower() in LOCAL_HOSTNAMES
