"""Secret inputs never leave in an error or a log line (issue #14, 6a): a canary access token sent in
every malformed way, over HTTP and WebSocket, and in URLs, is found in no response and no log
record."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import websockets
from graphql import GraphQLError, parse

from catalog_store.memory import MemoryCatalogStore
from gateway.graphql.schema import schema
from gateway.redaction import REDACTED, SecretInputs, redact, request_secrets
from tests.gateway.harness import ADMIN_TOKEN, Running, serve_gateway

CANARY = "canary_7f3a9c1e5b2d4a6f8e0c"  # no Shopify prefix: found by where it is sent, not by its form
SHOP = "edges.myshopify.com"
ENABLE = "mutation($input: EnableShopifySyncInput!) { enableShopifySync(input: $input) { status } }"
UVICORN_LOGGERS = ("uvicorn.error", "uvicorn.access")
CLIENT_SIDE_LOGGERS = ("httpx", "httpcore", "websockets.client")


@pytest.fixture
async def running() -> AsyncIterator[Running]:
    async with serve_gateway(MemoryCatalogStore()) as running:
        yield running


@pytest.fixture
def every_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every record at DEBUG, uvicorn's too (they do not propagate to the root logger)."""
    saved = {name: logging.getLogger(name).level for name in UVICORN_LOGGERS}
    for name in UVICORN_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)
        logging.getLogger(name).addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.DEBUG):
            yield caplog
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)
            logging.getLogger(name).removeHandler(caplog.handler)


def logged(caplog: pytest.LogCaptureFixture) -> str:
    """The gateway's log lines (not those of the test's own clients)."""
    return "\n".join(r.getMessage() + str(r.exc_info or "") + str(r.exc_text or "") for r in caplog.records
                     if not r.name.startswith(CLIENT_SIDE_LOGGERS))


def inline(token_literal: str, rest: str = "identifier: SKU") -> str:
    return f'mutation {{ enableShopifySync(input: {{shopDomain: "{SHOP}", accessToken: {token_literal}, {rest}}}) {{ status }} }}'


LONG = CANARY + "x" * 300 + "_tail_of_the_token"
QUOTED = CANARY + '"\\\u00e9'
CASES: list[tuple[str, str, dict[str, Any] | None, str]] = [
    ("missing identifier", ENABLE, {"input": {"shopDomain": SHOP, "accessToken": CANARY}}, CANARY),
    ("extra field", ENABLE, {"input": {"shopDomain": SHOP, "accessToken": CANARY, "identifier": "SKU", "x": 1}}, CANARY),
    ("input is the token", ENABLE, {"input": CANARY}, CANARY),
    ("token in the enum", ENABLE, {"input": {"shopDomain": SHOP, "accessToken": "t0ken_ok", "identifier": CANARY}},
     CANARY),
    ("misspelt field", ENABLE, {"input": {"shopDomain": SHOP, "acessToken": CANARY, "identifier": "SKU"}}, CANARY),
    ("token not a string", ENABLE, {"input": {"shopDomain": SHOP, "accessToken": [CANARY], "identifier": "SKU"}},
     CANARY),
    ("long token, truncated", ENABLE, {"input": {"shopDomain": SHOP, "accessToken": LONG}}, LONG),
    ("escaped token", ENABLE, {"input": {"shopDomain": SHOP, "accessToken": QUOTED}}, QUOTED),
    ("unquoted token", inline(CANARY), None, CANARY),
    ("literal, missing identifier", inline(f'"{CANARY}"', rest='extra: 1'), None, CANARY),
    ("literal token in a list", inline(f'["{CANARY}"]'), None, CANARY),
    ("literal token in the enum", inline('"t0ken_ok"', rest=f"identifier: {CANARY}"), None, CANARY),
    ("literal, misspelt field", inline('"t0ken_ok"', rest=f'acessToken: "{CANARY}"'), None, CANARY),
    ("Shopify token anywhere", ENABLE, {"input": {"shopDomain": "shpat_" + CANARY, "accessToken": "t0ken_ok",
                                                  "identifier": "SKU"}}, "shpat_" + CANARY),
]


def pieces(secret: str) -> list[str]:
    """Parts of `secret` that must not appear either (a truncated echo would show head and tail)."""
    return [secret[:20], secret[-16:]] if len(secret) > 40 else [secret]


@pytest.mark.parametrize(("name", "query", "variables", "secret"), CASES, ids=[c[0] for c in CASES])
async def test_no_error_or_log_line_shows_the_token_over_http(
    running: Running, every_log: pytest.LogCaptureFixture, name: str, query: str,
    variables: dict[str, Any] | None, secret: str,
) -> None:
    async with httpx.AsyncClient(base_url=running.base_url, timeout=30,
                                 headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as http:
        r = await http.post("/graphql", json={"query": query, "variables": variables})
    assert r.json()["errors"], name
    assert REDACTED in r.text or name == "Shopify token anywhere"
    for piece in pieces(secret):
        assert piece not in r.text, (name, r.text)
        assert piece not in logged(every_log), name
    assert json.dumps(secret)[1:-1] not in r.text


async def test_no_error_or_log_line_shows_the_token_over_websocket(
    running: Running, every_log: pytest.LogCaptureFixture
) -> None:
    async with websockets.connect(running.ws_url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {ADMIN_TOKEN}"}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        for i, (_, query, variables, _) in enumerate(CASES):
            await ws.send(json.dumps({"id": str(i), "type": "subscribe",
                                      "payload": {"query": query, "variables": variables}}))
        seen: list[str] = []
        finished: set[str] = set()
        while len(finished) < len(CASES):  # each operation ends with `error` or `complete`
            seen.append(await asyncio.wait_for(ws.recv(), 30))  # type: ignore[arg-type]
            message = json.loads(seen[-1])
            if message["type"] in ("error", "complete"):
                finished.add(message["id"])
    assert sum(REDACTED in m for m in seen) >= len(CASES) - 1
    for _, _, _, secret in CASES:
        for piece in pieces(secret):
            assert not [m for m in seen if piece in m]
            assert piece not in logged(every_log)


async def test_a_token_in_a_websocket_url_or_a_get_query_is_not_logged(
    running: Running, every_log: pytest.LogCaptureFixture
) -> None:
    async with websockets.connect(f"{running.ws_url}?access_token={CANARY}",  # type: ignore[list-item]
                                  subprotocols=["graphql-transport-ws"]) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {ADMIN_TOKEN}"}}))
        await ws.recv()
    async with httpx.AsyncClient(base_url=running.base_url, timeout=30) as http:
        await http.get("/graphql", params={"query": inline(f'"{CANARY}"'), "token": CANARY},
                       headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "Accept": "application/json"})
    text = logged(every_log)
    assert '"WebSocket /graphql?…"' in text  # the line is there, without its query string
    assert "GET /graphql?…" in text
    assert CANARY not in text


def test_the_access_token_is_the_schemas_secret() -> None:
    inputs = SecretInputs.of(schema._schema)
    assert inputs.secret_fields == {"EnableShopifySyncInput": frozenset({"accessToken"})}
    assert inputs.holders == frozenset({"EnableShopifySyncInput"})


def test_an_unexpected_errors_traceback_is_redacted(caplog: pytest.LogCaptureFixture) -> None:
    context = SimpleNamespace(schema=schema, query=ENABLE, graphql_document=parse(ENABLE),
                              variables={"input": {"shopDomain": SHOP, "accessToken": CANARY, "identifier": "SKU"}})
    error = GraphQLError("boom", path=["enableShopifySync"], original_error=RuntimeError(f"token was {CANARY}"))
    with caplog.at_level(logging.DEBUG):
        schema.process_errors([error], context)
    assert f"RuntimeError: token was {REDACTED}" in caplog.text
    assert CANARY not in caplog.text


def test_redact_replaces_every_printed_form() -> None:
    secrets = request_secrets(schema._schema, SecretInputs.of(schema._schema), ENABLE, parse(ENABLE),
                              {"input": {"accessToken": QUOTED}})
    for form in (QUOTED, repr(QUOTED)[1:-1], json.dumps(QUOTED)[1:-1]):
        assert redact(f"x {form} y", secrets) == f"x {REDACTED} y"
    assert redact("nothing secret", secrets) == "nothing secret"
