"""Shopify Admin GraphQL client: endpoint, token header, local validation, cost pacing, retries.

Built on gql's `AIOHTTPTransport` with one aiohttp session per client (or the caller's session).
Every document is validated against the stored 2026-01 schema before it is sent. Responses feed a
shop's cost scheduler (`bulk.shopify.budget`, shared by every client of the shop in this
process), so calls wait for capacity, by priority, instead of being throttled; THROTTLED answers
wait for the deficit, 5xx and network errors back off with full jitter, other
errors are raised at once as `bulk.errors` types. The access token never appears in a message,
repr or log line.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

import aiohttp
from gql import Client, GraphQLRequest
from gql.transport.exceptions import (
    TransportConnectionFailed,
    TransportError,
    TransportProtocolError,
    TransportQueryError,
)
from graphql import DocumentNode, GraphQLError, parse

from bulk import metrics
from bulk.errors import (
    NETWORK_UNREACHABLE,
    ShopifyAccessDenied,
    ShopifyError,
    ShopifyNetworkError,
    ShopifyRequestError,
    ShopifyServerError,
    ShopifyThrottled,
    ShopNotFound,
)
from bulk.shopify.admin_calls import AdminCalls, ShopInfo, webhook_topic
from bulk.shopify.budget import Priority, ShopBudget
from bulk.shopify.pacing import RetryPolicy, ThrottleStatus, requested_cost
from bulk.shopify.schema import SCHEMA_VERSION, load_admin_schema
from bulk.shopify.transport import HTTPStatusError, Secret, ShopifyTransport, ValidatingOnce

log = logging.getLogger(__name__)

DEFAULT_API_VERSION = "2026-01"
DEFAULT_URL_TEMPLATE = "https://{shop}/admin/api/{version}/graphql.json"
_SHOP_DOMAIN = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*(?::\d+)?$")

__all__ = ["Priority", "RetryPolicy", "ShopBudget", "ShopInfo", "ShopifyClient", "ThrottleStatus", "webhook_topic"]


@lru_cache(maxsize=64)
def _parse_document(document: str) -> DocumentNode:
    return parse(document)


@dataclass(slots=True)
class _Tries:
    attempts: int = 0  # requests sent
    failed: int = 0  # 5xx, INTERNAL_SERVER_ERROR, network and protocol errors
    throttled: int = 0  # THROTTLED or HTTP 429


# -- the client ----------------------------------------------------------------------------------


class ShopifyClient(AdminCalls):
    """Admin GraphQL client for one shop. Use as `async with` or call `close()`.

    `url_template` has `{shop}` (the full myshopify domain) and `{version}`. `session`: an
    aiohttp session to share (not closed by the client); otherwise the client owns one.
    `budget`: the shop's scheduler (shared with the shop's other clients; else the client's own);
    `priority`: its calls' priority there unless `execute` is told otherwise.
    `sleep`, `clock` and `rand` are injectable for tests.
    """

    def __init__(self, shop_domain: str, access_token: str, api_version: str = DEFAULT_API_VERSION,
                 url_template: str = DEFAULT_URL_TEMPLATE, session: aiohttp.ClientSession | None = None,
                 retry: RetryPolicy | None = None, *, request_timeout: float = 30.0, default_cost: float = 10.0,
                 budget: ShopBudget | None = None, priority: Priority = Priority.WEBHOOK,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
                 clock: Callable[[], float] = time.monotonic, rand: Callable[[], float] = random.random) -> None:
        shop_domain = shop_domain.strip().lower()
        if not _SHOP_DOMAIN.match(shop_domain):
            raise ValueError(f"not a shop domain: {shop_domain!r} (expected my-store.myshopify.com)")
        if not access_token:
            raise ValueError("access_token is empty")
        self.shop_domain = shop_domain
        self.api_version = api_version
        self.url = url_template.replace("{shop}", shop_domain).replace("{version}", api_version)
        self.retry = retry or RetryPolicy()
        self._token = Secret(access_token)
        self._external_session = session
        self._request_timeout = request_timeout
        self._default_cost = default_cost
        self._sleep = sleep
        self._clock = clock
        self._rand = rand
        self.budget = budget if budget is not None else ShopBudget(clock)
        self.priority = priority
        self._costs: dict[str, float] = {}
        self._gql: Client | None = None
        self._gql_session: Any = None
        self._connect_lock = asyncio.Lock()
        self._closed = False

    def __repr__(self) -> str:
        return f"ShopifyClient(shop={self.shop_domain!r}, api_version={self.api_version!r})"

    async def __aenter__(self) -> ShopifyClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the client's own session (a shared session stays open)."""
        self._closed = True
        async with self._connect_lock:
            if self._gql is not None and self._gql_session is not None:
                await self._gql.close_async()  # type: ignore[no-untyped-call]  # gql leaves it unannotated
            self._gql = self._gql_session = None

    @property
    def throttle_available(self) -> float:
        """Cost points the shop's scheduler expects to be available now (inf before a response)."""
        return self.budget.available()

    # -- core ----------------------------------------------------------------------------------

    async def execute(self, document: str, variables: Mapping[str, Any] | None = None, *,
                      priority: Priority | None = None, cost: float | None = None) -> dict[str, Any]:
        """Validate `document` locally, send it when the shop's budget allows, and return `data`.

        `priority`: this call's (default: the client's); `cost`: its expected requested cost, for a
        document whose cost depends on its variables (default: what Shopify last requested for it).

        Raises ShopifyRequestError (invalid document/variables, other 4xx, GraphQL errors),
        ShopifyAccessDenied (401/403, ACCESS_DENIED), ShopNotFound (404), and after the retries of
        `self.retry`: ShopifyServerError (5xx), ShopifyNetworkError, ShopifyThrottled.
        """
        try:
            request = GraphQLRequest(_parse_document(document),
                                     variable_values=dict(variables) if variables is not None else None)
        except GraphQLError as exc:
            raise ShopifyRequestError(f"GraphQL syntax error in our document: {exc.message}") from None
        session = await self._connect()
        tries = _Tries()
        while True:
            expected = cost if cost is not None else self._costs.get(document, self._default_cost)
            ticket = await self.budget.acquire(self.priority if priority is None else priority, expected, self._sleep)
            tries.attempts += 1
            extensions: Mapping[str, Any] | None = None
            try:
                try:
                    result = await session.execute(request, get_execution_result=True)
                except GraphQLError as exc:
                    raise ShopifyRequestError(
                        f"Document rejected by the local Admin {SCHEMA_VERSION} schema, not sent: {exc.message}"
                    ) from None
                except HTTPStatusError as exc:
                    delay = self._after_status(exc, tries)
                except TransportQueryError as exc:
                    extensions = exc.extensions
                    self.budget.settle(ticket, extensions)
                    delay = self._after_graphql_errors(document, exc, tries)
                except (TransportConnectionFailed, TransportProtocolError, TimeoutError, aiohttp.ClientError,
                        OSError) as exc:
                    delay = self._after_network_error(exc, tries)
                except TransportError as exc:
                    raise ShopifyRequestError(self._redact(f"Shopify transport error: {exc}")) from None
                else:
                    extensions = result.extensions
                    self.budget.settle(ticket, extensions)
                    self._learn_cost(document, extensions, cost)
                    data: dict[str, Any] = result.data
                    return data
            finally:
                self.budget.settle(ticket, extensions)  # no-op when settled above
            await self._sleep(delay)

    async def _connect(self) -> Any:
        async with self._connect_lock:
            if self._closed:
                raise RuntimeError(f"{self!r} is closed")
            if self._gql_session is None:
                schema = await asyncio.to_thread(load_admin_schema)
                transport = ShopifyTransport(self.url, self._token, self._external_session)
                self._gql = ValidatingOnce(schema=schema, transport=transport,
                                            execute_timeout=self._request_timeout, serialize_variables=True)
                self._gql_session = await self._gql.connect_async()  # type: ignore[no-untyped-call]  # as above
            return self._gql_session

    def _learn_cost(self, document: str, extensions: Mapping[str, Any] | None, given: float | None) -> None:
        """Count the answer's cost (metrics) and remember the requested cost of a document whose cost the
        caller did not size itself."""
        metrics.admin_answered(extensions)
        cost = requested_cost(extensions)
        if cost is not None and given is None:
            self._costs[document] = cost

    def _after_status(self, exc: HTTPStatusError, tries: _Tries) -> float:
        status, where = exc.status, self.shop_domain
        if status in (401, 403):
            raise ShopifyAccessDenied(f"Shopify refused the access token for {where} (HTTP {status})",
                                      status=status, attempts=tries.attempts) from None
        if status == 404:
            raise ShopNotFound(f"No Shopify Admin API at {where} for version {self.api_version} (HTTP 404)",
                               status=status, attempts=tries.attempts) from None
        if status == 429:
            metrics.admin_throttled("http_429")
            tries.throttled += 1
            if tries.throttled >= self.retry.max_throttled_attempts:
                raise ShopifyThrottled(f"Shopify kept rate-limiting {where} (HTTP 429, {tries.attempts} attempts)",
                                       status=status, attempts=tries.attempts) from None
            return max(self.retry.min_throttle_delay, exc.retry_after or 0.0)
        if status < 500:
            detail = self._redact(exc.body.strip())
            raise ShopifyRequestError(f"Shopify rejected the request for {where} (HTTP {status}): {detail}",
                                      status=status, attempts=tries.attempts) from None
        tries.failed += 1
        if tries.failed >= self.retry.max_attempts:
            raise ShopifyServerError(f"Shopify answered HTTP {status} for {where} {tries.attempts} times; "
                                     "giving up", status=status, attempts=tries.attempts) from None
        delay = max(self.retry.backoff(tries.failed, self._rand), min(exc.retry_after or 0.0, self.retry.max_delay))
        log.warning("Shopify %s: HTTP %d, retry %d in %.3fs", where, status, tries.failed, delay)
        return delay

    def _after_graphql_errors(self, document: str, exc: TransportQueryError, tries: _Tries) -> float:
        where = self.shop_domain
        observed = ThrottleStatus.from_extensions(exc.extensions)
        codes = _error_codes(exc.errors)
        messages = self._redact("; ".join(_error_messages(exc.errors)))
        if "THROTTLED" in codes:
            metrics.admin_throttled("graphql")
            tries.throttled += 1
            if tries.throttled >= self.retry.max_throttled_attempts:
                raise ShopifyThrottled(f"Shopify kept throttling {where} ({tries.attempts} attempts)",
                                       attempts=tries.attempts) from None
            self._learn_cost(document, exc.extensions, None)
            cost = requested_cost(exc.extensions) or self._costs.get(document, self._default_cost)
            deficit = self.budget.deficit_wait(cost) if observed is not None else 0.0
            delay = max(self.retry.min_throttle_delay, deficit)
            log.info("Shopify %s: THROTTLED, waiting %.3fs", where, delay)
            return delay
        if "ACCESS_DENIED" in codes:
            raise ShopifyAccessDenied(f"Shopify denied access for {where}: {messages}",
                                      attempts=tries.attempts) from None
        if "INTERNAL_SERVER_ERROR" in codes:
            tries.failed += 1
            if tries.failed >= self.retry.max_attempts:
                raise ShopifyServerError(f"Shopify failed internally for {where} {tries.attempts} times: {messages}",
                                         attempts=tries.attempts) from None
            return self.retry.backoff(tries.failed, self._rand)
        raise ShopifyRequestError(f"Shopify rejected our GraphQL document for {where}: {messages}",
                                  attempts=tries.attempts) from None

    def _after_network_error(self, exc: BaseException, tries: _Tries) -> float:
        tries.failed += 1
        if isinstance(exc, TransportProtocolError):
            kind: type[ShopifyError] = ShopifyServerError
            reason = f"Shopify {self.shop_domain} answered with something that is not a GraphQL response"
        else:
            cause = exc.__cause__ if isinstance(exc, TransportConnectionFailed) and exc.__cause__ else exc
            kind = ShopifyNetworkError
            detail = self._redact(f": {cause}" if str(cause) else "")
            reason = f"Shopify {self.shop_domain} unreachable ({type(cause).__name__}{detail})"
            if isinstance(cause, aiohttp.ClientConnectorDNSError):
                host = cause.host or self.shop_domain
                reason = f"{host} {NETWORK_UNREACHABLE}: DNS cannot resolve the name ({cause.os_error or cause})"
            elif isinstance(cause, (aiohttp.ClientConnectorError, TimeoutError, aiohttp.ServerTimeoutError)):
                reason = f"Shopify {self.shop_domain} {NETWORK_UNREACHABLE} ({type(cause).__name__}{detail})"
        if tries.failed >= self.retry.max_attempts:
            raise kind(f"{reason}; gave up after {tries.attempts} attempts", attempts=tries.attempts) from None
        delay = self.retry.backoff(tries.failed, self._rand)
        log.warning("%s; retry %d in %.3fs", reason, tries.failed, delay)
        return delay

    def _redact(self, text: str) -> str:
        return text.replace(self._token.reveal(), "[redacted]")


def _error_codes(errors: list[Any] | None) -> set[str]:
    codes = set()
    for error in errors or ():
        if isinstance(error, Mapping) and isinstance(error.get("extensions"), Mapping):
            code = error["extensions"].get("code")
            if isinstance(code, str):
                codes.add(code)
    return codes


def _error_messages(errors: list[Any] | str | None) -> list[str]:
    if isinstance(errors, str):
        return [errors]
    return [str(e.get("message", e)) if isinstance(e, Mapping) else str(e) for e in errors or ()][:5]


class AdminApiAccess(Protocol):
    """How this deployment reaches a shop's Admin API (version, endpoint, retries): the full sync and
    the webhook path both build their clients from it, the same way."""

    @property
    def api_version(self) -> str: ...

    @property
    def admin_api_url_template(self) -> str: ...

    @property
    def retry(self) -> RetryPolicy: ...


def client_for(shop_domain: str, access_token: str, access: AdminApiAccess,
               session: aiohttp.ClientSession | None = None, *, budget: ShopBudget | None = None,
               priority: Priority = Priority.WEBHOOK) -> ShopifyClient:
    """A shop's client configured from `access` (on `session` when given, else its own), drawing on
    `budget` (the shop's scheduler) at `priority`."""
    return ShopifyClient(shop_domain, access_token, api_version=access.api_version,
                         url_template=access.admin_api_url_template, session=session, retry=access.retry,
                         budget=budget, priority=priority)
