"""`/metrics` in Prometheus text: the process's counters (this module's, and `bulk.metrics` for the
sync paths) and, read from the store at scrape time, the shops by sync status. Also the two HTTP
hooks that count: GraphQL latency by operation type, webhook deliveries by topic and outcome."""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from starlette.requests import Request
from starlette.responses import Response

from bulk.mapping.payloads import TOPICS
from catalog_store.models import SyncStatus, utcnow
from catalog_store.store import CatalogStore

disable_created_metrics()  # type: ignore[no-untyped-call]  # the *_created series only double a scrape

GRAPHQL_SECONDS = Histogram(
    "catalog_gateway_graphql_request_seconds", "GraphQL requests over HTTP: time to answer, by operation type.",
    ["operation_type"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
WEBHOOK_DELIVERIES = Counter(
    "catalog_gateway_webhook_deliveries", "Shopify webhook deliveries received, by topic and outcome.",
    ["topic", "outcome"],
)
# A response status of /webhooks/shopify → the outcome label (bulk.webhooks decides, the status tells).
WEBHOOK_OUTCOMES = {200: "accepted", 400: "invalid", 401: "bad_signature", 413: "too_large", 503: "unavailable"}

_COMMENT = re.compile(r"#[^\n]*")
_STRING = re.compile(r'"""(?:[^"\\]|\\.|"(?!""))*"""|"(?:[^"\\\n]|\\.)*"')
_OPERATION = re.compile(r"\b(query|mutation|subscription)\b\s*([_A-Za-z][_0-9A-Za-z]*)?")


def operation_type(document: str | None, operation_name: str | None = None) -> str:
    """`query`, `mutation` or `subscription` of the operation a request runs (the anonymous
    `{ … }` shorthand is a query), or `unknown`. A scan, not a parse: the hot path must not parse
    twice, and a wrong guess only mislabels one latency sample."""
    if not document:
        return "unknown"
    text = _COMMENT.sub("", _STRING.sub('""', document))
    found = [(kind, name) for kind, name in _OPERATION.findall(text)]
    if operation_name:
        for kind, name in found:
            if name == operation_name:
                return str(kind)
    if found:
        return str(found[0][0])
    return "query" if text.lstrip().startswith("{") else "unknown"


@contextmanager
def graphql_timer(document: str | None, operation_name: str | None) -> Iterator[None]:
    """Times one GraphQL request into GRAPHQL_SECONDS."""
    started = time.perf_counter()
    try:
        yield
    finally:
        GRAPHQL_SECONDS.labels(operation_type=operation_type(document, operation_name)).observe(
            time.perf_counter() - started)


Endpoint = Callable[[Request], Awaitable[Response]]


def counted_webhooks(endpoint: Endpoint) -> Endpoint:
    """The webhook endpoint, counting each delivery by its topic (a handled one, else `other`) and
    the answer's outcome."""

    async def receive(request: Request) -> Response:
        response = await endpoint(request)
        topic = request.headers.get("x-shopify-topic", "")
        outcome = WEBHOOK_OUTCOMES.get(response.status_code, f"http_{response.status_code}")
        if topic not in TOPICS:
            topic = "other"
            if outcome == "accepted":
                outcome = "ignored"
        WEBHOOK_DELIVERIES.labels(topic=topic, outcome=outcome).inc()
        return response

    return receive


async def store_families(store: CatalogStore, now: datetime | None = None) -> CollectorRegistry:
    """What the store knows at scrape time (every gateway process sharing it sees the same)."""
    shops = GaugeMetricFamily("catalog_gateway_shops", "Shops with sync configured, by sync status.",
                              labels=["status"])
    backlog = GaugeMetricFamily("catalog_gateway_webhook_backlog",
                                "Webhook deliveries answered 200 and not yet applied, by shop.", labels=["shop"])
    lag = GaugeMetricFamily("catalog_gateway_webhook_lag_seconds",
                            "Age of the shop's oldest unapplied webhook delivery (0 when none).", labels=["shop"])
    applied = GaugeMetricFamily("catalog_gateway_webhook_applied",
                                "Webhook deliveries applied since the shop's sync was enabled.", labels=["shop"])
    failed = GaugeMetricFamily("catalog_gateway_webhook_failed",
                               "Webhook deliveries that could not be applied after their retries.", labels=["shop"])
    counts = dict.fromkeys((s.value for s in SyncStatus), 0)
    inactive = 0
    scraped_at = now or utcnow()
    for config in await store.list_syncs():
        counts[config.status.value] += 1
        inactive += not config.active
        inbox = await store.inbox_status(config.shop_domain)
        oldest = inbox.oldest_received_at
        shop = [config.shop_domain]
        backlog.add_metric(shop, inbox.backlog)
        lag.add_metric(shop, max(0.0, (scraped_at - oldest).total_seconds()) if oldest else 0.0)
        applied.add_metric(shop, inbox.applied_total)
        failed.add_metric(shop, inbox.failed_total)
    for status, count in counts.items():
        shops.add_metric([status], count)
    paused = GaugeMetricFamily("catalog_gateway_shops_inactive", "Shops whose sync applies no changes (inactive).")
    paused.add_metric([], inactive)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed([shops, paused, backlog, lag, applied, failed]))
    return registry


class _Fixed:
    def __init__(self, families: list[GaugeMetricFamily]) -> None:
        self.families = families

    def collect(self) -> list[GaugeMetricFamily]:
        return self.families


async def metrics_body(store: CatalogStore) -> bytes:
    """The process's counters, then the store's gauges (no name appears in both)."""
    return generate_latest(REGISTRY) + generate_latest(await store_families(store))


def metrics_response(body: bytes) -> Response:
    return Response(body, media_type=CONTENT_TYPE_LATEST)
