"""Fixtures: a started emulator per test (real HTTP on loopback) and an Admin API client for it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from bulk.shopify.documents import BULK_OPERATION_NODE, BULK_RUN_QUERY, PRODUCTS_BULK_QUERY
from shopify_emulator import Emulator

DOMAIN = "demo.myshopify.com"
TOKEN = "shpat_test"
SECRET = "whsec_test"


class Admin:
    """A minimal Admin GraphQL client for the tests (the project's own client is tested elsewhere)."""

    def __init__(self, session: aiohttp.ClientSession, url: str, token: str = TOKEN) -> None:
        self.session, self.url, self.token = session, url, token

    async def post(self, query: str, variables: dict[str, Any] | None = None, **extra: Any) -> tuple[int, Any]:
        body = {"query": query, "variables": variables, **extra}
        async with self.session.post(self.url, json=body, headers={"X-Shopify-Access-Token": self.token}) as r:
            if r.content_type != "application/json":
                return r.status, await r.text()
            return r.status, await r.json()

    async def data(self, query: str, variables: dict[str, Any] | None = None) -> Any:
        status, body = await self.post(query, variables)
        assert status == 200, body
        assert "errors" not in body, body
        return body["data"]

    async def start_bulk(self, query: str = PRODUCTS_BULK_QUERY, group_objects: bool = False) -> dict[str, Any]:
        return (await self.data(BULK_RUN_QUERY, {"query": query, "groupObjects": group_objects}))["bulkOperationRunQuery"]

    async def poll(self, operation_id: str) -> dict[str, Any]:
        return (await self.data(BULK_OPERATION_NODE, {"id": operation_id}))["node"]

    async def wait(self, operation_id: str, timeout: float = 10.0) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            node = await self.poll(operation_id)
            if node["status"] not in ("CREATED", "RUNNING", "CANCELING"):
                return node
            assert asyncio.get_running_loop().time() < deadline, f"operation still {node['status']}"
            await asyncio.sleep(0.01)

    async def run_bulk(self, query: str = PRODUCTS_BULK_QUERY, group_objects: bool = False) -> dict[str, Any]:
        started = await self.start_bulk(query, group_objects)
        assert started["userErrors"] == [], started
        return await self.wait(started["bulkOperation"]["id"])

    async def download(self, url: str, headers: dict[str, str] | None = None) -> bytes:
        async with self.session.get(url, headers=headers) as response:
            assert response.status in (200, 206), response.status
            return await response.read()

    async def lines(self, url: str) -> list[dict[str, Any]]:
        return [orjson.loads(line) for line in (await self.download(url)).splitlines()]


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    emulator = Emulator(SECRET, bulk_duration=0, webhook_retry_delays=(0.01, 0.01, 0.01))
    await emulator.start()
    try:
        yield emulator
    finally:
        await emulator.close()


@pytest.fixture
def shop(emu: Emulator):
    return emu.add_shop(DOMAIN, access_token=TOKEN, variants=60, seed=7, name="Demo Store")


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
def admin(emu: Emulator, shop, session: aiohttp.ClientSession) -> Admin:
    return Admin(session, emu.admin_api_url(DOMAIN))


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """An aiohttp webhook endpoint on loopback that records what it receives."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    fail_next: list[int] = field(default_factory=list)
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def wait_for(self, count: int, timeout: float = 5.0) -> list[Received]:
        async with self.arrived:
            await asyncio.wait_for(self.arrived.wait_for(lambda: len(self.received) >= count), timeout)
        return self.received


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    state = Receiver()

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        if state.fail_next:
            return web.Response(status=state.fail_next.pop(0))
        async with state.arrived:
            state.received.append(Received(dict(request.headers), body))
            state.arrived.notify_all()
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/webhooks", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    state.url = f"http://127.0.0.1:{port}/webhooks"
    try:
        yield state
    finally:
        await runner.cleanup()
