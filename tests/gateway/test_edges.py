"""The HTTP and WebSocket edges under attack (issue #14), on the real uvicorn server over loopback:
each attack is sent the way it was reported and shown refused or harmless, with /healthz answering
during and after. Loops are bounded; no assertion depends on the machine's speed beyond generous
timeouts."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest
import websockets

from catalog_store.memory import MemoryCatalogStore
from gateway.settings import Settings
from gateway.webhook_endpoint import MAX_BODY_BYTES as WEBHOOK_MAX_BODY_BYTES
from tests.gateway.harness import ADMIN_TOKEN, READ_TOKEN, Running, serve_gateway
from tests.gateway.test_query_limits import fragment_bomb

GRAPHQL_RESPONSE = "application/graphql-response+json"
MiB = 1 << 20
PATIENCE = 60.0  # seconds: bounds every wait; only a hung server gets near it
SETTINGS = Settings(admin_token=ADMIN_TOKEN, read_token=READ_TOKEN, shopify_api_secrets=("whsec_edges",))


@pytest.fixture
async def running() -> AsyncIterator[Running]:
    async with serve_gateway(MemoryCatalogStore(), settings=SETTINGS) as running:
        yield running


def read_headers(token: str = READ_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def rss_mb() -> float:
    """This process's resident memory (the server runs in it)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


async def healthz(running: Running) -> None:
    async with httpx.AsyncClient(base_url=running.base_url, timeout=PATIENCE) as http:
        r = await http.get("/healthz")
        assert r.status_code == 200 and r.json()["status"] == "ok"


class RawRequest:
    """A hand-written HTTP/1.1 request on its own connection, to send bodies the way attackers do."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.answer: asyncio.Task[bytes] = asyncio.create_task(reader.read(65536))
        self.sent = 0

    @classmethod
    async def open(cls, running: Running, head: str) -> RawRequest:
        host, port = running.base_url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        request = cls(reader, writer)
        writer.write(head.encode())
        await writer.drain()
        return request

    async def send(self, data: bytes) -> bool:
        """Sends unless the server has answered (or closed); False once it has."""
        if self.answer.done():
            return False
        try:
            self.writer.write(data)
            await self.writer.drain()
        except (ConnectionError, OSError):
            return False
        self.sent += len(data)
        return True

    async def response(self) -> tuple[int, dict[str, str], bytes]:
        """Status, headers and body of the server's answer."""
        data = await asyncio.wait_for(self.answer, PATIENCE)
        while b"\r\n\r\n" not in data:
            more = await asyncio.wait_for(self.reader.read(65536), PATIENCE)
            assert more, f"connection closed mid-answer: {data!r}"
            data += more
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        headers = dict(line.lower().split(": ", 1) for line in lines[1:])
        while len(body) < int(headers.get("content-length", "0")):
            more = await asyncio.wait_for(self.reader.read(65536), PATIENCE)
            if not more:
                break
            body += more
        return int(lines[0].split()[1]), headers, body

    async def closed_by_server(self) -> bool:
        """True when the server closes the connection (reads until EOF, bounded)."""
        try:
            if await asyncio.wait_for(self.answer, PATIENCE):
                while await asyncio.wait_for(self.reader.read(65536), PATIENCE):
                    pass
        except ConnectionError:
            pass
        return True

    def close(self) -> None:
        self.answer.cancel()
        self.writer.close()


def graphql_error(body: bytes) -> dict[str, object]:
    errors = json.loads(body)["errors"]
    assert len(errors) == 1
    assert errors[0]["extensions"]["fix"]
    return errors[0]


# -- 0. fragment bomb ---------------------------------------------------------------------------


async def test_fragment_bombs_are_refused_over_post_get_and_websocket_while_healthz_answers(
    running: Running,
) -> None:
    async with httpx.AsyncClient(base_url=running.base_url, timeout=PATIENCE, headers=read_headers()) as http:
        for n in (19, 39):
            bomb = fragment_bomb(n)
            post = asyncio.create_task(http.post("/graphql", json={"query": bomb}, headers={"Accept": GRAPHQL_RESPONSE}))
            get = asyncio.create_task(http.get("/graphql", params={"query": bomb}, headers={"Accept": GRAPHQL_RESPONSE}))
            await healthz(running)  # issued while the bombs are in flight
            for response in await asyncio.gather(post, get):
                assert response.status_code == 400
                assert "fields once its fragments are expanded" in response.json()["errors"][0]["message"]
    async with websockets.connect(running.ws_url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {READ_TOKEN}"}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": fragment_bomb(39)}}))
        message = json.loads(await asyncio.wait_for(ws.recv(), PATIENCE))
        assert message["type"] == "error"
        assert "fields once its fragments are expanded" in message["payload"][0]["message"]
    await healthz(running)


# -- 1a / 1. bodies -----------------------------------------------------------------------------


async def test_a_chunked_400_mb_webhook_is_cut_off_at_the_limit(
    running: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unauthenticated and unsigned: refused with 413 once 10 MiB have arrived, the rest unread,
    memory flat; nothing is queued."""
    submitted: list[object] = []
    monkeypatch.setattr(running.gateway.webhooks, "submit", submitted.append)
    before = rss_mb()
    request = await RawRequest.open(
        running,
        "POST /webhooks/shopify HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        "Content-Type: application/json\r\nX-Shopify-Hmac-Sha256: AAAA\r\nX-Shopify-Topic: products/update\r\n"
        "X-Shopify-Shop-Domain: edges.myshopify.com\r\n\r\n",
    )
    chunk = b"%x\r\n" % MiB + b" " * MiB + b"\r\n"
    peak = before
    try:
        for _ in range(400):  # 400 MiB at most
            if not await request.send(chunk):
                break
            peak = max(peak, rss_mb())
        status, headers, body = await request.response()
    finally:
        request.close()
    assert status == 413 and headers["connection"] == "close"
    assert graphql_error(body)["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
    assert request.sent < 100 * MiB  # the server stopped reading: the client could not send the rest
    assert peak - before < 150  # MB; reading it whole took 1 GB
    assert submitted == []
    await healthz(running)


async def test_a_declared_body_over_the_limit_gets_413_before_it_is_sent(running: Running) -> None:
    request = await RawRequest.open(
        running,
        f"POST /graphql HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {READ_TOKEN}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {50 * MiB}\r\n\r\n",
    )
    try:
        status, headers, body = await request.response()  # not one byte of the body sent
    finally:
        request.close()
    assert status == 413 and headers["connection"] == "close"
    error = graphql_error(body)
    assert error["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
    assert str(1 << 20) in str(error["message"]) and "GATEWAY_MAX_BODY_BYTES" in str(error["extensions"]["fix"])


async def test_eight_50_mb_graphql_bodies_with_the_read_token_are_refused(running: Running) -> None:
    """Chunked and declared alike, eight at once: each refused with 413, memory flat."""
    before = rss_mb()
    block = b" " * MiB

    async def attack(chunked: bool) -> tuple[int, int]:
        framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {50 * MiB + 20}"
        request = await RawRequest.open(
            running,
            f"POST /graphql HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {READ_TOKEN}\r\n"
            f"Content-Type: application/json\r\n{framing}\r\n\r\n",
        )
        try:
            await request.send(b'{"query": "{' if not chunked else b'c\r\n{"query": "{\r\n')
            for _ in range(50):
                if not await request.send(b"%x\r\n" % MiB + block + b"\r\n" if chunked else block):
                    break
            return (await request.response())[0], request.sent
        finally:
            request.close()

    results = await asyncio.gather(*(attack(chunked=i % 2 == 0) for i in range(8)))
    assert [status for status, _ in results] == [413] * 8
    assert all(sent < 50 * MiB for _, sent in results)
    assert rss_mb() - before < 150  # MB; eight read whole took the gateway from 173 to 850 MB
    await healthz(running)


async def test_a_client_that_writes_its_whole_body_first_still_reads_the_413(running: Running) -> None:
    async with httpx.AsyncClient(base_url=running.base_url, timeout=PATIENCE, headers=read_headers()) as http:
        r = await http.post("/graphql", content=b'{"query": "{ __typename }", "x": "' + b"y" * (2 * MiB) + b'"}',
                            headers={"Content-Type": "application/json"})
        assert r.status_code == 413
        assert r.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
        r = await http.post("/graphql", json={"query": "{ __typename }", "x": "y" * (MiB - 100)})
        assert r.status_code == 200 and r.json() == {"data": {"__typename": "Query"}}


async def test_a_webhook_under_its_own_limit_still_reaches_the_signature_check(running: Running) -> None:
    async with httpx.AsyncClient(base_url=running.base_url, timeout=PATIENCE) as http:
        r = await http.post("/webhooks/shopify", content=b"{}" + b" " * (2 * MiB),
                            headers={"X-Shopify-Hmac-Sha256": "AAAA", "X-Shopify-Topic": "products/update"})
        assert r.status_code == 401  # larger than /graphql's limit, below the webhook's: read, then refused
        r = await http.post("/webhooks/shopify", content=b" " * (WEBHOOK_MAX_BODY_BYTES + 1))
        assert r.status_code == 413


async def test_the_body_limit_is_configurable() -> None:
    async with serve_gateway(MemoryCatalogStore(), settings=replace(SETTINGS, max_body_bytes=8192)) as running:
        async with httpx.AsyncClient(base_url=running.base_url, timeout=PATIENCE, headers=read_headers()) as http:
            r = await http.post("/graphql", json={"query": "{ __typename }", "pad": "x" * 8192})
            assert r.status_code == 413
            assert "8192 bytes" in r.json()["errors"][0]["message"]
            r = await http.post("/graphql", json={"query": "{ __typename }", "pad": "x" * 4000})
            assert r.status_code == 200


async def test_whitespace_padding_under_the_body_limit_is_refused_before_parsing(running: Running) -> None:
    async with httpx.AsyncClient(base_url=running.base_url, timeout=PATIENCE, headers=read_headers()) as http:
        r = await http.post("/graphql", json={"query": "{" + " " * (MiB - 100) + "__typename }"},
                            headers={"Accept": GRAPHQL_RESPONSE})
        assert r.status_code == 400
        assert "characters. Allowed: 100000" in r.json()["errors"][0]["message"]


# -- 2. malformed bodies ------------------------------------------------------------------------


@pytest.mark.parametrize("body", [
    b'{"query": "{ \xff__typename }"}',  # invalid UTF-8
    b"\xff\xfe{}",
    b"[" * 100_000 + b"]" * 100_000,  # nesting too deep for a recursive decoder
    b"123",
    b'"{ __typename }"',
    b"null",
    b"{",
])
async def test_a_malformed_body_gets_400_with_a_graphql_error_and_no_traceback(
    running: Running, body: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        async with httpx.AsyncClient(base_url=running.base_url, timeout=PATIENCE, headers=read_headers()) as http:
            r = await http.post("/graphql", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("application/json")
    error = graphql_error(r.content)
    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert "Traceback" not in r.text
    assert not [rec for rec in caplog.records if rec.exc_info or rec.levelno >= logging.ERROR]


async def test_other_http_refusals_are_graphql_errors_too(running: Running) -> None:
    async with httpx.AsyncClient(base_url=running.base_url, timeout=PATIENCE, headers=read_headers()) as http:
        r = await http.post("/graphql", content=b"{}", headers={"Content-Type": "text/plain"})
        assert r.status_code == 400 and graphql_error(r.content)["extensions"]["code"] == "BAD_REQUEST"
        r = await http.get("/graphql", params={"query": "{ __typename }", "variables": "\xff"},
                           headers={"Accept": "application/json"})
        assert r.status_code == 400 and graphql_error(r.content)["extensions"]["code"] == "BAD_REQUEST"
        r = await http.get("/graphql", params={"query": "mutation { cancelShopifySync(shopDomain: \"x\") { id } }"},
                           headers={"Accept": "application/json"})
        assert r.status_code == 405 and graphql_error(r.content)["extensions"]["code"] == "METHOD_NOT_ALLOWED"


# -- 0. slow clients ----------------------------------------------------------------------------


async def test_a_slow_request_head_is_cut_off_and_healthz_answers_meanwhile() -> None:
    async with serve_gateway(MemoryCatalogStore(), settings=replace(SETTINGS, header_timeout=0.5)) as running:
        slow = [await RawRequest.open(running, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ") for _ in range(20)]
        try:
            await healthz(running)
            for request in slow:
                await request.send(b"a")  # still trickling: does not extend the deadline
            status, headers, body = await slow[0].response()
            assert status == 408 and headers["connection"] == "close"
            assert json.loads(body)["errors"][0]["extensions"]["code"] == "REQUEST_TIMEOUT"
            for request in slow[1:]:
                assert await request.closed_by_server()
        finally:
            for request in slow:
                request.close()
        await healthz(running)


async def test_a_silent_connection_is_closed_after_the_header_timeout() -> None:
    async with serve_gateway(MemoryCatalogStore(), settings=replace(SETTINGS, header_timeout=0.5)) as running:
        request = await RawRequest.open(running, "")
        try:
            assert await request.closed_by_server()
            assert await request.answer == b""  # nothing to answer: no head arrived
        finally:
            request.close()


async def test_a_slow_body_gets_408() -> None:
    async with serve_gateway(MemoryCatalogStore(), settings=replace(SETTINGS, body_timeout=0.5)) as running:
        request = await RawRequest.open(
            running,
            f"POST /graphql HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {READ_TOKEN}\r\n"
            "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n",
        )
        try:
            await request.send(b'{"query": ')
            status, headers, body = await request.response()
        finally:
            request.close()
        assert status == 408 and headers["connection"] == "close"
        assert graphql_error(body)["extensions"]["code"] == "REQUEST_TIMEOUT"
        await healthz(running)


# -- 0. subscriptions ---------------------------------------------------------------------------


async def _connect(running: Running) -> websockets.ClientConnection:
    ws = await websockets.connect(running.ws_url, subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
    await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {READ_TOKEN}"}}))
    assert json.loads(await asyncio.wait_for(ws.recv(), PATIENCE))["type"] == "connection_ack"
    return ws


async def _subscribe(ws: websockets.ClientConnection, op_id: str) -> None:
    await ws.send(json.dumps({"id": op_id, "type": "subscribe",
                              "payload": {"query": "subscription { notifications { id } }"}}))


async def _errors_within(ws: websockets.ClientConnection, seconds: float) -> list[dict[str, object]]:
    errors = []
    try:
        while True:
            message = json.loads(await asyncio.wait_for(ws.recv(), seconds))
            if message["type"] == "error":
                errors.append(message)
    except TimeoutError:
        return errors


async def test_subscriptions_are_capped_per_process() -> None:
    async with serve_gateway(MemoryCatalogStore(), settings=replace(SETTINGS, max_subscriptions=5)) as running:
        sockets = [await _connect(running) for _ in range(3)]
        try:
            for i, ws in enumerate(sockets):
                for j in range(3):
                    await _subscribe(ws, f"{i}-{j}")
            await healthz(running)
            refused = [e for ws in sockets for e in await _errors_within(ws, 0.5)]
            assert len(refused) == 4  # 9 asked, 5 allowed
            error = refused[0]["payload"][0]  # type: ignore[index]
            assert error["extensions"]["code"] == "TOO_MANY_SUBSCRIPTIONS"
            assert error["extensions"]["retryable"] is True and "GATEWAY_MAX_SUBSCRIPTIONS" in error["extensions"]["fix"]
            await sockets[0].close()  # frees its operations
            for _ in range(100):  # bounded: until the server has noticed the close
                if await _slot_free(running):
                    break
                await asyncio.sleep(0.05)
            await _subscribe(sockets[1], "again")
            assert await _errors_within(sockets[1], 0.5) == []
        finally:
            for ws in sockets:
                await ws.close()
        await healthz(running)


async def _slot_free(running: Running) -> bool:
    """True when a (short) operation is accepted: the process has a free slot."""
    ws = await _connect(running)
    try:
        await ws.send(json.dumps({"id": "probe", "type": "subscribe", "payload": {"query": "{ __typename }"}}))
        message = json.loads(await asyncio.wait_for(ws.recv(), PATIENCE))
        return message["type"] == "next"
    finally:
        await ws.close()


async def test_the_per_connection_limit_is_a_coded_error(running: Running) -> None:
    ws = await _connect(running)
    try:
        for i in range(51):
            await _subscribe(ws, str(i))
        refused = await _errors_within(ws, 0.5)
        assert len(refused) == 1 and refused[0]["id"] == "50"
        assert refused[0]["payload"][0]["extensions"]["code"] == "TOO_MANY_SUBSCRIPTIONS"  # type: ignore[index]
    finally:
        await ws.close()


async def test_websocket_messages_are_capped_at_the_body_limit(running: Running) -> None:
    ws = await _connect(running)
    try:
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": "{" + " " * (2 * MiB) + "}"}}))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), PATIENCE)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009  # message too big
    finally:
        await ws.close()
    ws = await _connect(running)
    try:  # under the body limit but over the query text limit: refused before parsing
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": "{" + " " * 200_000 + "}"}}))
        message = json.loads(await asyncio.wait_for(ws.recv(), PATIENCE))
        assert message["type"] == "error" and "characters" in message["payload"][0]["message"]
    finally:
        await ws.close()
