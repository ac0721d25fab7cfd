"""HTTP and WebSocket behaviour of /graphql, /healthz and the GraphiQL page, over real sockets."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from urllib.parse import quote

import httpx
import pytest
import websockets
from gql import gql
from gql.transport.exceptions import TransportQueryError

from catalog_store.memory import MemoryCatalogStore
from gateway.settings import Settings
from tests.gateway.harness import ADMIN_TOKEN, READ_TOKEN, Running, serve_gateway

GRAPHQL_RESPONSE = "application/graphql-response+json"
QUERY = "{ shopifySyncs { shopDomain } }"
MUTATION = 'mutation { markNotificationRead(id: "nope") { id } }'


@pytest.fixture
async def running() -> AsyncIterator[Running]:
    async with serve_gateway(MemoryCatalogStore()) as running:
        yield running


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_post_query_with_each_token(running: Running) -> None:
    async with httpx.AsyncClient(base_url=running.base_url) as http:
        for token in (ADMIN_TOKEN, READ_TOKEN):
            r = await http.post("/graphql", json={"query": QUERY}, headers=bearer(token))
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("application/json")
            assert r.json() == {"data": {"shopifySyncs": []}}


@pytest.mark.parametrize("headers", [{}, bearer("wrong-token-0123456789"), {"Authorization": ADMIN_TOKEN},
                                     {"Authorization": f"Basic {ADMIN_TOKEN}"}])
async def test_missing_or_wrong_token_is_401_unauthenticated(running: Running, headers: dict[str, str]) -> None:
    async with httpx.AsyncClient(base_url=running.base_url) as http:
        r = await http.post("/graphql", json={"query": QUERY}, headers=headers)
        assert r.status_code == 401
        assert r.headers["www-authenticate"].startswith("Bearer")
        body = r.json()
        assert "data" not in body
        assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        g = await http.get("/graphql", params={"query": QUERY}, headers={**headers, "Accept": "application/json"})
        assert g.status_code == 401
        assert g.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_read_token_cannot_mutate(running: Running) -> None:
    with pytest.raises(TransportQueryError) as info:
        await running.query(MUTATION, token=READ_TOKEN)
    error = info.value.errors[0]  # type: ignore[index]
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert "admin token" in error["message"]
    with pytest.raises(TransportQueryError) as info:  # the admin token passes the check (then NOT_FOUND)
        await running.query(MUTATION, token=ADMIN_TOKEN)
    assert info.value.errors[0]["extensions"]["code"] == "NOT_FOUND"  # type: ignore[index]


async def test_get_queries_and_media_types(running: Running) -> None:
    async with httpx.AsyncClient(base_url=running.base_url) as http:
        r = await http.get("/graphql", params={"query": QUERY},
                           headers={**bearer(READ_TOKEN), "Accept": GRAPHQL_RESPONSE})
        assert r.status_code == 200
        assert r.headers["content-type"] == GRAPHQL_RESPONSE
        assert r.json() == {"data": {"shopifySyncs": []}}
        # A request error (validation) is 400 without `data` in graphql-response+json...
        r = await http.post("/graphql", json={"query": "{ nope }"},
                            headers={**bearer(ADMIN_TOKEN), "Accept": f"{GRAPHQL_RESPONSE}, application/json;q=0.9"})
        assert r.status_code == 400
        assert r.headers["content-type"] == GRAPHQL_RESPONSE
        assert "data" not in r.json()
        assert r.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
        # ...and 200 in legacy application/json.
        r = await http.post("/graphql", json={"query": "{ nope }"},
                            headers={**bearer(ADMIN_TOKEN), "Accept": "application/json"})
        assert r.status_code == 200
        assert r.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
        # A field error during execution keeps 200 and `data`.
        r = await http.post("/graphql", json={"query": "{ notifications(first: 1000) { id } }"},
                            headers={**bearer(ADMIN_TOKEN), "Accept": GRAPHQL_RESPONSE})
        assert r.status_code == 200
        assert r.json()["data"] is None
        assert r.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_mutation_over_get_is_405(running: Running) -> None:
    async with httpx.AsyncClient(base_url=running.base_url) as http:
        r = await http.get("/graphql?query=" + quote(MUTATION), headers={**bearer(ADMIN_TOKEN),
                                                                          "Accept": "application/json"})
        assert r.status_code == 405


async def test_graphiql_page_is_served_offline_without_auth(running: Running) -> None:
    async with httpx.AsyncClient(base_url=running.base_url) as http:
        r = await http.get("/graphql", headers={"Accept": "text/html"})
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/html")
        csp = r.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "connect-src 'self'" in csp
        html = r.text
        assert "http://" not in html and "https://" not in html
        sources = [part.split('"')[0] for part in html.split('src="')[1:]] + \
                  [part.split('"')[0] for part in html.split('href="')[1:] if not part.startswith("data:")]
        assert sources
        for path in sources:
            asset = await http.get(path)
            assert asset.status_code == 200, path
            assert len(asset.content) > 100, path
        for licence in ("react", "react-dom", "graphiql", "graphql-ws"):
            lic = await http.get(f"/static/vendor/{licence}/LICENSE")
            assert lic.status_code == 200 and "MIT License" in lic.text


async def test_healthz(running: Running) -> None:
    async with httpx.AsyncClient(base_url=running.base_url) as http:
        r = await http.get("/healthz")
        assert r.status_code == 200
        assert r.json() == {"status": "ok", "store": "memory", "persistent": False}


async def _ws_handshake(url: str, payload: object, origin: str | None = None) -> tuple[int | None, list[dict]]:
    """Open a graphql-transport-ws connection, send connection_init; (close code, messages)."""
    messages: list[dict] = []
    headers = {"Origin": origin} if origin else None
    async with websockets.connect(url, subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
                                  additional_headers=headers) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        try:
            async for raw in ws:
                messages.append(json.loads(raw))
                if messages[-1]["type"] == "connection_ack":
                    return None, messages
        except websockets.ConnectionClosed:
            pass
        return ws.close_code, messages


async def test_websocket_needs_a_token_in_connection_init(running: Running) -> None:
    code, _ = await _ws_handshake(running.ws_url, {})
    assert code == 4403
    code, _ = await _ws_handshake(running.ws_url, {"Authorization": "Bearer wrong-token-0123456789"})
    assert code == 4403
    code, messages = await _ws_handshake(running.ws_url, {"Authorization": f"Bearer {READ_TOKEN}"})
    assert code is None and messages[-1]["type"] == "connection_ack"


async def test_only_graphql_transport_ws_is_spoken(running: Running) -> None:
    async with websockets.connect(running.ws_url, subprotocols=["graphql-ws"]) as ws:  # type: ignore[list-item]
        with pytest.raises(websockets.ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 4406


async def test_cross_origin_websockets(running: Running) -> None:
    ok = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    assert (await _ws_handshake(running.ws_url, ok, origin="http://localhost:5173"))[0] is None
    with pytest.raises(websockets.InvalidStatus) as info:
        await _ws_handshake(running.ws_url, ok, origin="https://evil.example.com")
    assert info.value.response.status_code == 403


async def test_allowed_origins_are_configurable() -> None:
    settings = Settings(admin_token=ADMIN_TOKEN, allowed_origins=("https://admin.example.com",))
    async with serve_gateway(MemoryCatalogStore(), settings=settings) as running:
        ok = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        assert (await _ws_handshake(running.ws_url, ok, origin="https://admin.example.com"))[0] is None
        with pytest.raises(websockets.InvalidStatus):
            await _ws_handshake(running.ws_url, ok, origin="http://localhost:5173")


async def test_no_auth_mode() -> None:
    async with serve_gateway(MemoryCatalogStore(), settings=Settings(), auth=False) as running:
        assert await running.query(QUERY, token=None) == {"shopifySyncs": []}
        with pytest.raises(TransportQueryError) as info:
            await running.query(MUTATION, token=None)
        assert info.value.errors[0]["extensions"]["code"] == "NOT_FOUND"  # type: ignore[index]


async def test_query_over_websocket(running: Running) -> None:
    async with running.ws(READ_TOKEN) as session:
        assert await session.execute(gql(QUERY)) == {"shopifySyncs": []}
        with pytest.raises(TransportQueryError) as info:
            await session.execute(gql(MUTATION))
        assert info.value.errors[0]["extensions"]["code"] == "FORBIDDEN"  # type: ignore[index]


async def test_cors_for_allowed_origins_only(running: Running) -> None:
    preflight = {"Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization, content-type"}
    async with httpx.AsyncClient(base_url=running.base_url) as http:
        r = await http.options("/graphql", headers={**preflight, "Origin": "http://localhost:3000"})
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "http://localhost:3000"
        r = await http.options("/graphql", headers={**preflight, "Origin": "https://evil.example.com"})
        assert r.status_code == 400
        assert "access-control-allow-origin" not in r.headers


async def test_every_answer_varies_on_origin_and_only_allowed_origins_are_named(running: Running) -> None:
    async with httpx.AsyncClient(base_url=running.base_url, headers=bearer(READ_TOKEN)) as http:
        plain = await http.post("/graphql", json={"query": QUERY})  # no Origin: servers, apps
        assert plain.status_code == 200 and plain.headers["vary"] == "Origin"
        assert "access-control-allow-origin" not in plain.headers
        local = await http.post("/graphql", json={"query": QUERY}, headers={"Origin": "http://localhost:5173"})
        assert local.headers["access-control-allow-origin"] == "http://localhost:5173"
        assert local.headers["vary"] == "Origin"
        evil = await http.post("/graphql", json={"query": QUERY}, headers={"Origin": "https://evil.example.com"})
        assert "access-control-allow-origin" not in evil.headers and evil.headers["vary"] == "Origin"
        tagged = await http.get("/graphql", params={"query": "{ catalog(name: \"x\") { name } }"})
        assert tagged.headers["vary"] == "Authorization, Accept, Origin"  # the ETag's Vary, then Origin


async def test_query_limits_over_http(running: Running) -> None:
    async with httpx.AsyncClient(base_url=running.base_url, headers=bearer(READ_TOKEN)) as http:
        aliases = " ".join(f"a{i}: shopifySyncs {{ shopDomain }}" for i in range(21))
        r = await http.post("/graphql", json={"query": "{ " + aliases + " }"})
        error = r.json()["errors"][0]
        assert "21 aliases found. Allowed: 20" in error["message"]
        assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
        assert r.json()["data"] is None
        huge = "{ " + " ".join("__typename" for _ in range(3100)) + " }"
        r = await http.post("/graphql", json={"query": huge})
        assert "tokens" in r.json()["errors"][0]["message"]
        r = await http.post("/graphql", json={"query": "{ notifications(first: 251) { id } }"})
        assert r.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        assert "250" in r.json()["errors"][0]["message"]
