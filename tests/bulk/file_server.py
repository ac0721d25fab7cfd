"""A loopback HTTP server (127.0.0.1, free port) serving fixed bytes like a bulk result URL, with
switchable Range support, connection cuts mid-body and error statuses."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class FileServer:
    """Serves `body` in `piece`-byte writes. `cuts`: for the next requests, close the connection
    after that many body bytes. `ranges`: answer Range requests with 206."""

    body: bytes
    piece: int = 1 << 16
    ranges: bool = True
    cuts: list[int] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)  # answer the next requests with these statuses
    requests: list[dict[str, str]] = field(default_factory=list)
    url: str = ""
    name: str = "result.jsonl"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["name"] != self.name:
            return web.Response(status=404)
        self.requests.append(dict(request.headers))
        if self.statuses:
            return web.Response(status=self.statuses.pop(0), text="nope")
        start, status, headers = 0, 200, {}
        match = re.fullmatch(r"bytes=(\d+)-", request.headers.get("Range", ""))
        if self.ranges and match:
            start, status = int(match.group(1)), 206
            headers["Content-Range"] = f"bytes {start}-{len(self.body) - 1}/{len(self.body)}"
        payload = self.body[start:]
        resp = web.StreamResponse(status=status, headers=headers)
        resp.content_length = len(payload)
        await resp.prepare(request)
        cut = self.cuts.pop(0) if self.cuts else None
        sent = 0
        while sent < len(payload):
            end = min(len(payload), sent + self.piece)
            if cut is not None and end >= cut:
                await resp.write(payload[sent:cut])
                assert request.transport is not None
                request.transport.abort()  # the connection drops mid-body
                return resp
            await resp.write(payload[sent:end])
            sent = end
        await resp.write_eof()
        return resp


@contextlib.asynccontextmanager
async def serving() -> AsyncIterator[Callable[[FileServer], Awaitable[FileServer]]]:
    """Start FileServers on free ports; all are stopped when the block exits."""
    runners: list[web.AppRunner] = []

    async def start(server: FileServer) -> FileServer:
        app = web.Application()
        app.router.add_get("/{name}", server.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        server.url = f"http://127.0.0.1:{runner.addresses[0][1]}/{server.name}"
        return server

    try:
        yield start
    finally:
        for runner in runners:
            await runner.cleanup()
