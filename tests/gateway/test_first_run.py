"""What a new user meets first, run as they would run it: a taken port, an unreachable MongoDB, a
shop that does not resolve, output piped to a file, no SMTP, the demo's banner and GraphiQL."""

from __future__ import annotations

import io
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from rich.console import Console

from catalog_store.items import Identifier
from catalog_store.memory import MemoryCatalogStore
from gateway.cli.sync import sync_once
from gateway.settings import Settings
from shopify_emulator import Emulator
from tests.gateway.harness import ADMIN_TOKEN, serve_gateway
from tests.keys import TEST_SECRET_KEY

CLI = [sys.executable, "-m", "gateway.cli"]
ROOT = Path(__file__).resolve().parents[2]
SHOP = "first-run.myshopify.com"
TOKEN = "shpat_first_run_token"


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "MONGODB_", "SMTP_", "LOG_"))}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          env={**clean, **(env or {})})


@pytest.fixture
def taken_port() -> Iterator[int]:
    sock = socket.create_server(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def test_demo_on_a_taken_port_says_so_in_one_line(taken_port: int) -> None:
    result = run_cli("demo", "--port", str(taken_port))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"port {taken_port}" in lines[0] and "already in use" in lines[0] and "make demo PORT=" in lines[0]


def test_demo_takes_its_port_from_gateway_port(taken_port: int) -> None:
    result = run_cli("demo", env={"GATEWAY_PORT": str(taken_port)})
    assert result.returncode == 1 and f"port {taken_port}" in result.stderr  # it tried that port, not 8000


def test_make_demo_passes_port() -> None:
    result = subprocess.run(["make", "-n", "demo", "PORT=8123"], capture_output=True, text=True, cwd=ROOT, check=True)
    assert "catalog-gateway demo --port 8123" in result.stdout


def test_serve_on_a_taken_port_says_so_in_one_line(taken_port: int) -> None:
    result = run_cli("serve", "--no-auth", "--port", str(taken_port))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert [line for line in result.stderr.splitlines() if "already in use" in line] == [
        line for line in result.stderr.splitlines() if not line.startswith("WARNING: --no-auth")]


def test_serve_with_an_unreachable_mongodb_is_one_line_with_the_fix() -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]  # free once closed: nothing listens there
    started = time.monotonic()
    result = run_cli("serve", "--no-auth", "--port", "0",
                     env={"MONGODB_URI": f"mongodb://user:pw@127.0.0.1:{port}/?appname=x",
                          "GATEWAY_SECRET_KEY": TEST_SECRET_KEY})
    elapsed = time.monotonic() - started
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "pw" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if not line.startswith("WARNING: --no-auth")]
    assert len(lines) == 2, result.stderr  # what is wrong, then its fix
    assert lines[0].startswith("catalog-gateway serve: ") and f"127.0.0.1:{port}" in lines[0]
    assert lines[1].strip().startswith("fix:") and "MONGODB_URI" in lines[1]
    assert elapsed < 30  # a 3 s probe plus the interpreter's start, generous under load


async def test_sync_of_a_shop_that_does_not_resolve_names_dns_and_the_real_fix() -> None:
    settings = Settings(shopify_admin_api_url="http://{shop}.invalid/admin/api/{version}/graphql.json")
    out = io.StringIO()
    code = await sync_once(MemoryCatalogStore(), settings, SHOP, TOKEN, Identifier.SHOPIFY_VARIANT_ID,
                           Console(file=out, width=200, force_terminal=False))
    text = out.getvalue()
    assert code == 1
    assert "DNS cannot resolve" in text and f"{SHOP}.invalid" in text
    assert "network" in text and "Disable sync and re-sync" not in text


async def test_sync_piped_prints_plain_progress_lines() -> None:
    async with Emulator("whsec_p") as emulator:
        emulator.add_shop(SHOP, access_token=TOKEN, variants=40, seed=2)
        settings = Settings(shopify_admin_api_url=emulator.admin_api_url_template)
        out = io.StringIO()
        code = await sync_once(MemoryCatalogStore(), settings, SHOP, TOKEN, Identifier.SHOPIFY_VARIANT_ID,
                               Console(file=out, width=200, force_terminal=False))
    text = out.getvalue()
    assert code == 0, text
    assert "\r" not in text and "\x1b" not in text and "━" not in text  # no redrawn bar, no escapes
    progress = [line for line in text.splitlines() if line.startswith(("starting", "bulk", "download", "ingest",
                                                                       "completed"))]
    assert progress and progress[-1].startswith("completed: ") and "written 40" in progress[-1]


async def test_no_smtp_is_said_once_not_per_sync(caplog: pytest.LogCaptureFixture) -> None:
    async with Emulator("whsec_m") as emulator:
        emulator.add_shop(SHOP, access_token=TOKEN, variants=20, seed=2)
        settings = Settings(shopify_admin_api_url=emulator.admin_api_url_template)
        with caplog.at_level(logging.INFO):
            for _ in range(2):
                await sync_once(MemoryCatalogStore(), settings, SHOP, TOKEN, Identifier.SHOPIFY_VARIANT_ID,
                                Console(file=io.StringIO(), force_terminal=False))
    email_lines = [r for r in caplog.records if "email" in r.getMessage().lower()]
    assert [r.levelno for r in email_lines] == [logging.INFO, logging.INFO]  # one per process start
    assert all("not configured" in r.getMessage() for r in email_lines)


async def test_graphiql_holds_the_demo_token_only_in_the_demo() -> None:
    headers = {"Accept": "text/html"}
    async with serve_gateway(MemoryCatalogStore(), browser_token=ADMIN_TOKEN) as demo:
        async with aiohttp.ClientSession() as http:
            async with http.get(demo.graphql_url, headers=headers) as response:
                page = await response.text()
    assert f'<meta name="catalog-gateway-token" content="{ADMIN_TOKEN}" />' in page
    async with serve_gateway(MemoryCatalogStore()) as served:
        async with aiohttp.ClientSession() as http:
            async with http.get(served.graphql_url, headers=headers) as response:
                page = await response.text()
    assert "catalog-gateway-token" not in page and ADMIN_TOKEN not in page


def test_demo_banner_prints_the_shop_token_and_how_to_enable_again() -> None:
    import argparse

    from gateway.cli.demo import demo_banner

    args = argparse.Namespace(variants=10, changes_per_second=2.0, inventory_share=0.3)
    banner = demo_banner(args, "http://127.0.0.1:8123", "admin-token-x", "shpat_shop_token", "http://127.0.0.1:9")
    assert "shpat_shop_token" in banner and "admin-token-x" in banner
    assert 'enableShopifySync(input: {shopDomain: "demo.myshopify.com", accessToken: "shpat_shop_token"' in banner
    assert "http://127.0.0.1:8123/" in banner
