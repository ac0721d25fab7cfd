"""A tiny Admin API stand-in on 127.0.0.1 whose answers each test scripts precisely.

Requests are recorded (`requests`); answers come from per-operation queues (`script("ShopInfo", ...)`),
then the catch-all queue (`script(None, ...)`), then per-operation defaults (`default(...)`). An
unscripted request gets HTTP 418 (never retried) so the test fails loudly.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

PATH = "/shops/{shop}/admin/api/{version}/graphql.json"
_OPERATION = re.compile(r"^\s*(?:query|mutation)\s+(\w+)")


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # JSON-serialisable, or str sent as is
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False  # close the connection without answering
    delay: float = 0.0


@dataclass
class Recorded:
    operation: str | None
    query: str
    variables: dict[str, Any] | None
    headers: dict[str, str]
    path: str
    peer: tuple | None = None  # client (host, port): the same port means a reused connection


Answer = Reply | Callable[[Recorded], Reply]


def cost(requested: float = 1, available: float = 1990, maximum: float = 2000, restore: float = 100) -> dict:
    return {"cost": {"requestedQueryCost": requested, "actualQueryCost": requested,
                     "throttleStatus": {"maximumAvailable": maximum, "currentlyAvailable": available,
                                        "restoreRate": restore}}}


def ok(data: dict, extensions: dict | None = None) -> Reply:
    body: dict[str, Any] = {"data": data}
    if extensions is not None:
        body["extensions"] = extensions
    return Reply(body=body)


def graphql_error(message: str, code: str | None = None, extensions: dict | None = None,
                  data: dict | None = None) -> Reply:
    error: dict[str, Any] = {"message": message}
    if code:
        error["extensions"] = {"code": code}
    body: dict[str, Any] = {"errors": [error]}
    if data is not None:
        body["data"] = data
    if extensions is not None:
        body["extensions"] = extensions
    return Reply(body=body)


def throttled(requested: float = 50, available: float = 10, maximum: float = 2000, restore: float = 100) -> Reply:
    return graphql_error("Throttled", "THROTTLED", extensions=cost(requested, available, maximum, restore))


def http(status: int, body: Any = None, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status=status, body=body if body is not None else {"errors": f"HTTP {status}"},
                 headers=headers or {})


class ScriptedShopify:
    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._queues: dict[str | None, deque[Answer]] = {}
        self._defaults: dict[str, Answer] = {}
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url_template(self) -> str:
        return f"http://127.0.0.1:{self.port}" + PATH

    def script(self, operation: str | None, *answers: Answer) -> None:
        self._queues.setdefault(operation, deque()).extend(answers)

    def default(self, operation: str, answer: Answer) -> None:
        self._defaults[operation] = answer

    def count(self, operation: str | None = None) -> int:
        return sum(1 for r in self.requests if operation is None or r.operation == operation)

    async def start(self) -> ScriptedShopify:
        app = web.Application()
        app.router.add_post(PATH, self._handle)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> ScriptedShopify:
        return await self.start()

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        payload = await request.json()
        query = payload.get("query", "")
        match = _OPERATION.match(query)
        recorded = Recorded(match.group(1) if match else None, query, payload.get("variables"),
                            dict(request.headers), request.path,
                            request.transport.get_extra_info("peername") if request.transport else None)
        self.requests.append(recorded)
        answer = self._next(recorded)
        reply = answer(recorded) if callable(answer) else answer
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.drop:
            assert request.transport is not None
            request.transport.abort()
            raise ConnectionResetError("dropped by script")
        text = reply.body if isinstance(reply.body, str) else json.dumps(reply.body)
        return web.Response(status=reply.status, text=text, headers=reply.headers, content_type="application/json")

    def _next(self, recorded: Recorded) -> Answer:
        for key in (recorded.operation, None):
            queue = self._queues.get(key)
            if queue:
                return queue.popleft()
        if recorded.operation in self._defaults:
            return self._defaults[recorded.operation]
        return Reply(status=418, body={"errors": f"unscripted request {recorded.operation}"})


def closed_port() -> int:
    """A loopback port nothing listens on (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
