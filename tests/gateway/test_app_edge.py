"""/graphql past the router (`gateway.app.GatewayApp`): the same edge as every other route."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from catalog_store.memory import MemoryCatalogStore
from gateway.app import create_app
from gateway.graphql.auth import Role
from gateway.settings import Settings
from gateway.wiring import Gateway

TOKEN = "edge-test-admin-token-0123456789"


@pytest.fixture
async def gateway() -> AsyncIterator[Gateway]:
    gateway = Gateway(Settings(admin_token=TOKEN), MemoryCatalogStore())
    await gateway.start()
    try:
        yield gateway
    finally:
        await gateway.close()


def client(gateway: Gateway) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(create_app(gateway, manage_lifecycle=False), raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://gateway",
                             headers={"Authorization": f"Bearer {TOKEN}"})


async def test_an_unexpected_error_on_graphql_is_a_500_without_a_traceback(
        gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(authorization: str | None) -> Role | None:
        raise RuntimeError("secret internals in /srv/app.py line 12")

    monkeypatch.setattr(gateway.authenticator, "role_for", broken)
    async with client(gateway) as http:
        answer = await http.post("/graphql", json={"query": "{ shopifySyncs { shopDomain } }"})
    assert answer.status_code == 500
    assert answer.text == "Internal Server Error"


async def test_graphql_keeps_its_body_limit_and_the_other_routes_their_router(gateway: Gateway) -> None:
    async with client(gateway) as http:
        too_large = await http.post("/graphql", content=b"x" * (gateway.settings.max_body_bytes + 1),
                                    headers={"Content-Type": "application/json"})
        assert too_large.status_code == 413
        assert too_large.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
        assert (await http.post("/graphql", json={"query": "{ shopifySyncs { shopDomain } }"})).json() == {
            "data": {"shopifySyncs": []}}
        assert (await http.get("/healthz")).json()["status"] == "ok"
        assert (await http.get("/graphql/")).status_code == 307  # the router redirects it to /graphql, as before
