"""Request bodies: a hard size cap per route and a deadline, enforced while the body streams in.

A limit checked only against `Content-Length` lets a chunked body through: a 400 MB chunked POST to
/webhooks/shopify was read whole (1 GB RSS) before its signature was even looked at. This ASGI
middleware sits in front of every route: a declared length over the route's limit is refused with
413 before a byte of the body is read; a streamed body is counted as it arrives and refused with 413
the moment it passes the limit; a body that takes longer than the deadline gets 408. Both answers
close the connection (`Connection: close`), so the server stops reading there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.errors import BodyTimeout, BodyTooLarge, RequestRefused


@dataclass(frozen=True, slots=True)
class RouteLimit:
    max_bytes: int
    setting: str  # where an operator changes it, for the refusal's fix


@dataclass(frozen=True, slots=True)
class BodyPolicy:
    """`default` for every route but those in `routes` (path → limit); `timeout` seconds for a
    whole body to arrive, from the app's first read."""

    default: RouteLimit
    timeout: float
    routes: Mapping[str, RouteLimit] = field(default_factory=dict)

    def limit_for(self, path: str) -> RouteLimit:
        return self.routes.get(path, self.default)


async def send_refusal(send: Send, refused: RequestRefused) -> None:
    """Answer `refused` and have the connection closed (the rest of the body stays unread)."""
    body = refused.body()
    await send({
        "type": "http.response.start",
        "status": refused.status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ],
    })
    await send({"type": "http.response.body", "body": body})


def declared_length(scope: Scope) -> int | None:
    """The request's Content-Length (the HTTP server has already refused a malformed one)."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class BodyLimits:
    """ASGI middleware enforcing a `BodyPolicy` on every HTTP request."""

    def __init__(self, app: ASGIApp, policy: BodyPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.policy.limit_for(scope["path"])
        declared = declared_length(scope)
        if declared is not None and declared > limit.max_bytes:
            await send_refusal(send, BodyTooLarge(limit.max_bytes, limit.setting))
            return
        reader = _LimitedBody(receive, limit, self.policy.timeout)
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, reader.receive, tracking_send)
        except RequestRefused as refused:
            if started or refused is not reader.refused:
                raise
            await send_refusal(send, refused)
            return
        finally:
            reader.stop_timer()  # an app that answered without reading the whole body
        if reader.refused is not None and not started:  # the app swallowed the refusal
            await send_refusal(send, reader.refused)


class _LimitedBody:
    """`receive` counting the body's bytes against the route's limit and its time against `timeout`.
    The deadline is one timer per request, armed at the first read and cancelled once the body is
    complete; when it fires it cancels the read in progress (or fails the next one)."""

    def __init__(self, receive: Receive, limit: RouteLimit, timeout: float) -> None:
        self._receive = receive
        self.limit = limit
        self.timeout = timeout
        self.received = 0
        self.complete = False
        self.refused: RequestRefused | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._expired = False
        self._waiter: asyncio.Task[object] | None = None

    def _expire(self) -> None:
        self._expired = True
        if self._waiter is not None:
            self._waiter.cancel()

    def stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _done(self) -> None:
        self.complete = True
        self.stop_timer()

    async def receive(self) -> Message:
        if self.refused is not None:
            raise self.refused
        if self.complete:  # after the body: waiting for a disconnect is not timed
            return await self._receive()
        if self._timer is None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_at(loop.time() + self.timeout, self._expire)
        if self._expired:
            self.refused = BodyTimeout(self.timeout)
            raise self.refused
        task = self._waiter = asyncio.current_task()
        try:
            message = await self._receive()
        except asyncio.CancelledError:
            if not self._expired or task is None or task.uncancel() > 0:
                raise  # a cancellation of the request itself, not the deadline
            self.refused = BodyTimeout(self.timeout)
            raise self.refused from None
        finally:
            self._waiter = None
        if message["type"] != "http.request":
            self._done()
            return message
        self.received += len(message.get("body", b""))
        if self.received > self.limit.max_bytes:
            self._done()
            self.refused = BodyTooLarge(self.limit.max_bytes, self.limit.setting)
            raise self.refused
        if not message.get("more_body", False):
            self._done()
        return message
