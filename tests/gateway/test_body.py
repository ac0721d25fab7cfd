"""The body deadline of `gateway.body.BodyLimits`: one deadline for the whole body, however it is
chunked, and a cancelled request stays cancelled (never reported as a slow client)."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from gateway.body import BodyLimits, BodyPolicy, RouteLimit

DEADLINE = 0.3
POLICY = BodyPolicy(default=RouteLimit(1000, "GATEWAY_MAX_BODY_BYTES"), timeout=DEADLINE)
SCOPE: dict[str, Any] = {"type": "http", "method": "POST", "path": "/graphql", "headers": []}


async def echo_body(scope: Any, receive: Any, send: Any) -> None:
    """Reads the whole body, then answers it back (after pausing `scope["pause"]` between reads)."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body", False):
            break
        await asyncio.sleep(scope.get("pause", 0))
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


class Client:
    """The HTTP server's side of one request: chunks fed into `receive`, the answer collected."""

    def __init__(self) -> None:
        self.chunks: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.sent: list[dict[str, Any]] = []

    async def receive(self) -> dict[str, Any]:
        return await self.chunks.get()

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    def chunk(self, body: bytes, more: bool = True) -> None:
        self.chunks.put_nowait({"type": "http.request", "body": body, "more_body": more})

    @property
    def status(self) -> int:
        return int(self.sent[0]["status"])

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent[1:])


async def feed(client: Client, parts: int, every: float) -> None:
    for _ in range(parts):
        client.chunk(b"x")
        await asyncio.sleep(every)
    client.chunk(b"", more=False)


async def test_a_body_in_quick_chunks_that_takes_too_long_in_all_gets_408() -> None:
    client = Client()
    feeder = asyncio.create_task(feed(client, parts=8, every=DEADLINE / 4))  # each chunk in time, not all
    await BodyLimits(echo_body, POLICY)(SCOPE, client.receive, client.send)
    feeder.cancel()
    assert client.status == 408
    assert orjson.loads(client.body)["errors"][0]["extensions"]["code"] == "REQUEST_TIMEOUT"


async def test_a_deadline_passing_while_the_app_is_busy_refuses_its_next_read() -> None:
    client = Client()
    client.chunk(b"a")
    client.chunk(b"b", more=False)
    await BodyLimits(echo_body, POLICY)({**SCOPE, "pause": DEADLINE * 2}, client.receive, client.send)
    assert client.status == 408


async def test_after_the_body_waiting_for_the_disconnect_is_not_timed() -> None:
    async def answer_then_wait_for_disconnect(scope: Any, receive: Any, send: Any) -> None:
        await echo_body(scope, receive, send)
        assert (await receive())["type"] == "http.disconnect"

    client = Client()
    feeder = asyncio.create_task(feed(client, parts=3, every=0.01))
    request = asyncio.create_task(BodyLimits(answer_then_wait_for_disconnect, POLICY)(SCOPE, client.receive, client.send))
    await asyncio.sleep(DEADLINE * 1.5)  # past the deadline the body itself had
    client.chunks.put_nowait({"type": "http.disconnect"})
    await request
    await feeder
    assert (client.status, client.body) == (200, b"xxx")
    assert len(client.sent) == 2  # no 408 after the answer


async def test_a_request_cancelled_while_reading_stays_cancelled() -> None:
    client = Client()
    client.chunk(b"a")  # then nothing: the read waits
    request = asyncio.create_task(BodyLimits(echo_body, POLICY)(SCOPE, client.receive, client.send))
    await asyncio.sleep(DEADLINE / 3)
    request.cancel()  # the server shuts down, say
    with pytest.raises(asyncio.CancelledError):
        await request
    assert client.sent == []  # no 408 for a client that was not slow
