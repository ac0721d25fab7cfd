"""Operations over real HTTP: /metrics after a sync, webhooks and GraphQL requests; /readyz through
startup and a store that stops answering; LOG_FORMAT=json with the shop and run ids."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import io
import logging
import os
import subprocess
import sys
from pathlib import Path

import aiohttp
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from catalog_store.errors import StoreUnavailable
from catalog_store.memory import MemoryCatalogStore
from catalog_store.models import SyncConfig
from gateway.logs import JsonFormatter
from gateway.metrics import operation_type
from gateway.settings import Settings
from shopify_emulator import Emulator
from tests.gateway.e2e import SHOP, SHOP_TOKEN, VARIANTS, enable, wait_finished
from tests.gateway.harness import ADMIN_TOKEN, serve_gateway

SECRET = "whsec_e2e"  # the emulator fixture signs with it
ROOT = Path(__file__).resolve().parents[2]

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(base_url: str) -> Samples:
    async with aiohttp.ClientSession() as http:
        async with http.get(base_url + "/metrics") as response:
            assert response.status == 200
            assert response.headers["content-type"].startswith("text/plain")
            text = await response.text()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def signed(body: bytes) -> str:
    return base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()


async def test_metrics_count_a_sync_its_shopify_calls_webhooks_and_graphql(emulator: Emulator) -> None:
    emulator.faults.throttle(times=1, shop=SHOP)
    settings = Settings(admin_token=ADMIN_TOKEN, shopify_admin_api_url=emulator.admin_api_url_template,
                        shopify_api_secrets=(SECRET,))
    shop = emulator.shop(SHOP)
    shop.set_sku(next(iter(shop.variant_ids())), None)  # one skip in SKU mode: missing_sku
    async with serve_gateway(MemoryCatalogStore(), settings=settings) as running:
        before = await scrape(running.base_url)
        await enable(running, identifier="SKU")
        sync = await wait_finished(running)
        assert sync["status"] == "SYNCED", sync
        await running.query("query Q { shopifySyncs { shopDomain } }")
        async with aiohttp.ClientSession() as http:
            body = b'{"id": 1}'
            for topic, signature in (("products/update", "bad"), ("app/uninstalled", signed(body))):
                await http.post(running.base_url + "/webhooks/shopify", data=body, headers={
                    "X-Shopify-Topic": topic, "X-Shopify-Hmac-Sha256": signature, "X-Shopify-Shop-Domain": SHOP,
                    "Content-Type": "application/json"})
        shop.set_price(next(iter(shop.variant_ids())), "1.23")  # a webhook the gateway applies
        for _ in range(200):
            after = await scrape(running.base_url)
            if value(after, "catalog_gateway_webhook_applied", shop=SHOP) >= 1:
                break
            await asyncio.sleep(0.05)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("catalog_gateway_sync_runs_total", status="COMPLETED") == 1
    run = sync["lastRun"]
    missing = sum(s["count"] for s in run["skipped"] if s["reason"] == "missing_sku")
    assert missing >= 1 and run["itemsWritten"] + run["itemsSkipped"] == VARIANTS
    assert delta("catalog_gateway_items_written_total") == run["itemsWritten"]
    assert delta("catalog_gateway_items_skipped_total", reason="missing_sku") == missing
    assert value(after, "catalog_gateway_ingest_items_per_second", shop=SHOP) > 0
    assert delta("catalog_gateway_bulk_polls_total", status="COMPLETED") >= 1
    assert delta("catalog_gateway_shopify_cost_used_total") > 0
    assert delta("catalog_gateway_shopify_throttles_total", kind="graphql") == 1
    assert delta("catalog_gateway_webhook_deliveries_total", topic="products/update", outcome="bad_signature") == 1
    assert delta("catalog_gateway_webhook_deliveries_total", topic="other", outcome="ignored") == 1
    assert delta("catalog_gateway_graphql_request_seconds_count", operation_type="query") >= 1
    assert delta("catalog_gateway_graphql_request_seconds_count", operation_type="mutation") == 1
    assert value(after, "catalog_gateway_shops", status="SYNCED") == 1  # read from the store at scrape time
    assert value(after, "catalog_gateway_webhook_applied", shop=SHOP) >= 1  # the inbox, also at scrape time
    assert value(after, "catalog_gateway_webhook_failed", shop=SHOP) == 0
    assert ("catalog_gateway_webhook_lag_seconds", (("shop", SHOP),)) in after


def test_operation_type_reads_the_operation_a_request_runs() -> None:
    assert operation_type("{ shopifySyncs { shopDomain } }") == "query"
    assert operation_type("# mutation in a comment\nquery Q { a }") == "query"
    assert operation_type('query A { a(x: "mutation") } mutation B { b }', "B") == "mutation"
    assert operation_type("subscription { syncProgress(shopDomain: \"x\") { id } }") == "subscription"
    assert operation_type("fragment F on Query { a }") == "unknown"


class FlakyStore(MemoryCatalogStore):
    """The memory store, except that its reads fail while `down`."""

    down = False

    async def get_sync(self, shop_domain: str) -> SyncConfig | None:
        if self.down:
            raise StoreUnavailable("the test took the store down")
        return await super().get_sync(shop_domain)


async def readyz(base_url: str) -> tuple[int, dict[str, object]]:
    async with aiohttp.ClientSession() as http:
        async with http.get(base_url + "/readyz") as response:
            return response.status, await response.json()


async def test_readyz_is_ready_only_after_startup_and_while_the_store_answers() -> None:
    store = FlakyStore()
    async with serve_gateway(store) as running:
        assert await readyz(running.base_url) == (200, {"status": "ready"})
        store.down = True
        status, body = await readyz(running.base_url)
        assert status == 503 and body["status"] == "unavailable"
        store.down = False
        assert (await readyz(running.base_url))[0] == 200
        running.gateway.started = False  # what a gateway in its startup (or shutdown) shows
        assert await readyz(running.base_url) == (503, {"status": "starting"})
        running.gateway.started = True


async def test_json_logs_name_the_shop_and_the_run(emulator: Emulator) -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.INFO)
    try:
        settings = Settings(admin_token=ADMIN_TOKEN, shopify_admin_api_url=emulator.admin_api_url_template)
        async with serve_gateway(MemoryCatalogStore(), settings=settings) as running:
            await enable(running)
            sync = await wait_finished(running)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    entries = [orjson.loads(line) for line in out.getvalue().splitlines()]
    assert entries and all({"time", "level", "logger", "message"} <= entry.keys() for entry in entries)
    run_lines = [e for e in entries if e.get("run") == sync["lastRun"]["id"]]
    assert run_lines and all(e["shop"] == SHOP for e in run_lines)
    assert any("bulk operation" in e["message"] for e in run_lines)
    assert SHOP_TOKEN not in out.getvalue()


def test_log_format_json_makes_every_log_line_json() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "MONGODB_", "SMTP_"))}
    env["LOG_FORMAT"] = "json"
    process = subprocess.Popen([sys.executable, "-m", "gateway.cli", "serve", "--no-auth", "--port", "0"],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    try:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line)
            if "Application startup complete" in line or len(lines) > 20:
                break
    finally:
        process.terminate()
        process.wait(timeout=20)
    logged = [line for line in lines if not line.startswith("WARNING: --no-auth")]
    entries = [orjson.loads(line) for line in logged]  # fails on any line that is not JSON
    assert any(e["logger"] == "uvicorn.error" and "startup complete" in e["message"] for e in entries)
    assert not any("color_message" in e for e in entries)
    assert any("email not configured" in e["message"] for e in entries)


@pytest.mark.parametrize("raw", ["xml", "JSONL"])
def test_log_format_refuses_unknown_formats(raw: str) -> None:
    with pytest.raises(ValueError, match="LOG_FORMAT"):
        Settings.from_env({"LOG_FORMAT": raw})


async def test_readyz_waits_for_startup() -> None:
    """Before the lifespan finishes starting the gateway, /readyz says starting (the gateway is built,
    not started: what a load balancer sees in the first seconds of a process)."""
    import socket

    import uvicorn

    from gateway.app import create_app
    from gateway.wiring import Gateway
    from tests.gateway.harness import _Server

    gateway = Gateway(Settings(admin_token=ADMIN_TOKEN), MemoryCatalogStore())
    sock = socket.create_server(("127.0.0.1", 0))
    server = _Server(uvicorn.Config(create_app(gateway, manage_lifecycle=False), log_level="warning"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        assert (await readyz(base))[0] == 503
        await gateway.start()
        assert (await readyz(base))[0] == 200
        await gateway.close()
        assert (await readyz(base))[0] == 503
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)
        sock.close()
