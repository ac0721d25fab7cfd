"""Webhook subscriptions and signed deliveries.

A delivery is a POST of the compact JSON body with Shopify's headers; the HMAC is
base64(HMAC-SHA256(raw body, api_secret)). Each delivery runs in its own task (the API never waits
for it) and is retried on a non-2xx answer (3xx included: redirects are not followed), a timeout
or a connection error, after each of `retry_delays` seconds; every attempt is recorded.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import aiohttp
import orjson

from .faults import Faults
from .models import gid, utc_now_iso

log = logging.getLogger(__name__)

TOPICS = {
    "PRODUCTS_CREATE": "products/create",
    "PRODUCTS_UPDATE": "products/update",
    "PRODUCTS_DELETE": "products/delete",
    "INVENTORY_LEVELS_UPDATE": "inventory_levels/update",
    "BULK_OPERATIONS_FINISH": "bulk_operations/finish",
}


def sign(body: bytes, secret: str) -> str:
    """X-Shopify-Hmac-Sha256 of `body`."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


@dataclass(eq=False)
class WebhookSubscription:
    TYPENAME: ClassVar[str] = "WebhookSubscription"
    id: int
    topic: str
    uri: str
    api_version: str
    created_at: int
    updated_at: int
    include_fields: tuple[str, ...] = ()

    @property
    def gid(self) -> str:
        return gid("WebhookSubscription", self.id)


@dataclass
class Attempt:
    at: float
    status: int | None
    error: str | None = None


@dataclass(eq=False)
class Delivery:
    """One webhook sent (or to be sent) to one subscription.

    `state`: pending, delivered, failed (every attempt failed), dropped (fault), canceled (emulator
    closed first); `attempts`: each try's HTTP status or connection error.
    """

    webhook_id: str
    event_id: str
    shop: str
    topic: str
    uri: str
    body: bytes
    headers: dict[str, str]
    state: str = "pending"
    attempts: list[Attempt] = field(default_factory=list)

    def payload(self) -> Any:
        return orjson.loads(self.body)


class WebhookSender:
    """Queues and sends deliveries; `deliveries` records every one, in the order they were created."""

    def __init__(self, secret: Callable[[], str], faults: Faults, *, retry_delays: Sequence[float],
                 timeout: float) -> None:
        self._secret = secret
        self._faults = faults
        self.retry_delays = tuple(retry_delays)
        self.timeout = timeout
        self.deliveries: list[Delivery] = []
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._backlog: list[tuple[Delivery, float]] = []

    def start(self, session: aiohttp.ClientSession) -> None:
        self._session = session
        backlog, self._backlog = self._backlog, []
        for delivery, delay in backlog:
            self._spawn(delivery, delay)

    def send(self, shop: str, topic: str, payload: dict[str, Any], subscriptions: Sequence[WebhookSubscription]) -> list[Delivery]:
        """Queue one delivery per subscription (`topic` in REST form, e.g. "products/update")."""
        event_id = str(uuid.uuid4())
        triggered = utc_now_iso()
        created = []
        for subscription in subscriptions:
            data = payload
            if subscription.include_fields:
                data = {k: v for k, v in payload.items() if k in subscription.include_fields}
            body = orjson.dumps(data)
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "Shopify-Captain-Hook",
                "X-Shopify-Topic": topic,
                "X-Shopify-Hmac-Sha256": sign(body, self._secret()),
                "X-Shopify-Shop-Domain": shop,
                "X-Shopify-Webhook-Id": str(uuid.uuid4()),
                "X-Shopify-API-Version": subscription.api_version,
                "X-Shopify-Triggered-At": triggered,
                "X-Shopify-Event-Id": event_id,
            }
            copies = 2 if self._faults.take("webhook_duplicate", shop) else 1
            delay_rule = self._faults.take("webhook_delay", shop)
            delay = delay_rule.params["seconds"] if delay_rule else 0.0
            for _ in range(copies):
                delivery = Delivery(headers["X-Shopify-Webhook-Id"], event_id, shop, topic, subscription.uri, body,
                                    headers)
                self.deliveries.append(delivery)
                created.append(delivery)
                if self._faults.take("webhook_drop", shop):
                    delivery.state = "dropped"
                elif self._session is None:
                    self._backlog.append((delivery, delay))
                else:
                    self._spawn(delivery, delay)
        return created

    def _spawn(self, delivery: Delivery, delay: float) -> None:
        task = asyncio.get_running_loop().create_task(self._deliver(delivery, delay))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, delivery: Delivery, delay: float) -> None:
        assert self._session is not None
        if delay:
            await asyncio.sleep(delay)
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        for attempt in range(len(self.retry_delays) + 1):
            status, problem = None, None
            try:
                async with self._session.post(delivery.uri, data=delivery.body, headers=delivery.headers,
                                              allow_redirects=False, timeout=timeout) as response:
                    status = response.status
                    await response.read()
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                problem = f"{type(exc).__name__}: {exc}"
            delivery.attempts.append(Attempt(time.time(), status, problem))
            if status is not None and 200 <= status < 300:
                delivery.state = "delivered"
                return
            if attempt < len(self.retry_delays):
                await asyncio.sleep(self.retry_delays[attempt])
        delivery.state = "failed"
        log.info("webhook %s to %s failed after %d attempts", delivery.topic, delivery.uri, len(delivery.attempts))

    @property
    def pending(self) -> int:
        return len(self._tasks) + len(self._backlog)

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait until every queued delivery is delivered, failed or dropped."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self._tasks:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise TimeoutError(f"{len(self._tasks)} webhook deliveries still pending after {timeout}s")
            await asyncio.wait(set(self._tasks), timeout=remaining)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for delivery in self.deliveries:
            if delivery.state == "pending":
                delivery.state = "canceled"
        self._session = None
