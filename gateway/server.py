"""The HTTP server: uvicorn configured for hostile clients, and logs without query strings.

uvicorn gives a client unlimited time to send its request line and headers (its keep-alive timer is
cancelled by the first byte), and after answering it goes on reading and discarding a body the app
did not want for as long as the client sends. `GuardedH11Protocol` closes a connection whose request
head takes longer than the header timeout (408) and stops reading a body once the response is out
(after a short linger, so that the client reads the answer instead of a reset).
The body deadline and size caps are the app's (`gateway.body`); WebSocket messages are capped at the
body limit too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import Any

import h11
import uvicorn
from starlette.types import ASGIApp
from uvicorn.config import LOGGING_CONFIG
from uvicorn.protocols.http.h11_impl import H11Protocol

from gateway.settings import Settings

log = logging.getLogger(__name__)

MAX_HEAD_BYTES = 16 * 1024  # request line and headers (a longer GET query gets 400: use POST)
KEEP_ALIVE_SECONDS = 5
GRACEFUL_SHUTDOWN_SECONDS = 10
# After refusing a body, what the client still sends is read and dropped for this long (and this
# much) so that it receives the answer; then the connection closes.
LINGER_SECONDS = 5.0
LINGER_MAX_BYTES = 64 * 1024 * 1024
REQUEST_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
    b"content-length: %d\r\n\r\n%s"
)
REQUEST_TIMEOUT_BODY = (
    b'{"errors":[{"message":"The request line and headers did not arrive in time.","extensions":'
    b'{"code":"REQUEST_TIMEOUT","fix":"Send the whole request head at once (the deadline is '
    b'GATEWAY_HEADER_TIMEOUT_SECONDS).","retryable":true}}]}'
)


class _LingeringTransport:
    """The connection's transport, except that closing it while the client is still sending the
    request body half-closes instead: the response goes out with a FIN, what the client still sends
    is read and dropped for up to LINGER_SECONDS, then the socket closes. Closing at once would make
    the kernel answer the unread bytes with a reset, and the client would lose the 413."""

    def __init__(self, transport: asyncio.Transport, protocol: GuardedH11Protocol) -> None:
        self._transport = transport
        self._protocol = protocol
        self.lingering = False
        self._timer: asyncio.TimerHandle | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def is_closing(self) -> bool:
        return self.lingering or self._transport.is_closing()

    def close(self) -> None:
        if self.lingering or self._transport.is_closing():
            return
        if self._protocol.conn.their_state is not h11.SEND_BODY or not self._transport.can_write_eof():
            self._transport.close()
            return
        self.lingering = True
        self._transport.write_eof()
        self._transport.resume_reading()
        self._timer = self._protocol.loop.call_later(LINGER_SECONDS, self.abort_linger)

    def abort_linger(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._transport.close()


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline on each request head, and no reading of a body the
    app did not want beyond a short linger after the response."""

    header_timeout: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None
        self._raw_transport: asyncio.Transport | None = None
        self._lingering: _LingeringTransport | None = None
        self._lingered_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._raw_transport = transport
        _no_delay(transport)
        self._lingering = _LingeringTransport(transport, self)
        super().connection_made(self._lingering)  # type: ignore[arg-type]
        self._arm_head_timer()

    def data_received(self, data: bytes) -> None:
        if self._lingering is not None and self._lingering.lingering:
            self._lingered_bytes += len(data)  # the rest of a refused body: dropped
            if self._lingered_bytes > LINGER_MAX_BYTES:
                self._lingering.abort_linger()
            return
        if self.conn.their_state is h11.IDLE:
            self._arm_head_timer()  # a new request starts: its head must arrive in time
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._cancel_head_timer()

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        assert self._raw_transport is not None
        self.transport = self._raw_transport  # the WebSocket protocol takes the plain transport
        super().handle_websocket_upgrade(event)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        if self._lingering is not None and self._lingering.lingering:
            self._lingering.abort_linger()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        unread_body = self.conn.their_state is h11.SEND_BODY
        super().on_response_complete()
        if unread_body and not self.transport.is_closing():
            # The app answered without reading the whole body (a route that ignores bodies): stop
            # instead of reading the rest for as long as the client sends it.
            self._unset_keepalive_if_required()
            self.transport.close()

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or self.transport.get_protocol() is not self:
            return
        if self.conn.their_state is not h11.IDLE:
            return
        if self.conn.trailing_data[0]:  # part of a head arrived: say why the connection closes
            self.transport.write(REQUEST_TIMEOUT_RESPONSE % (len(REQUEST_TIMEOUT_BODY), REQUEST_TIMEOUT_BODY))
            log.info("closed a connection whose request head took more than %gs", self.header_timeout)
        self._unset_keepalive_if_required()
        self.transport.close()


def _no_delay(transport: asyncio.Transport) -> None:
    """Send each write at once (TCP_NODELAY). asyncio sets it only on sockets whose `proto` says TCP;
    a listening socket made by `socket.create_server` (the demo's, the tests') has proto 0, and its
    connections then hold a response's body until the client acknowledges its head: ~40 ms a
    request (Nagle's algorithm against delayed acknowledgements)."""
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def guarded_h11(header_timeout: float) -> type[GuardedH11Protocol]:
    """The protocol class for one server (uvicorn instantiates it per connection)."""
    return type("GuardedH11Protocol", (GuardedH11Protocol,), {"header_timeout": header_timeout})


# At DEBUG the websockets library logs, on uvicorn's logger, the handshake ("< GET /graphql?…",
# every header) and every frame (connection_init carries the bearer token, a subscribe message may
# carry an access token): those lines are dropped.
WEBSOCKET_WIRE_PREFIXES = ("< ", "> ")


class RedactQueryStrings(logging.Filter):
    """uvicorn's access log and its WebSocket lines without query strings: a GET query (or a token a
    client put in a WebSocket URL) must not land in the log; WebSocket frames are not logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg.startswith(WEBSOCKET_WIRE_PREFIXES):
            return False
        args = record.args
        if not isinstance(args, tuple):
            return True
        if record.name == "uvicorn.access" and len(args) >= 3:
            record.args = (*args[:2], _without_query(args[2]), *args[3:])
        elif isinstance(record.msg, str) and '"WebSocket %s"' in record.msg and len(args) >= 2:
            record.args = (args[0], _without_query(args[1]), *args[2:])
        return True


def _without_query(target: object) -> object:
    if isinstance(target, str) and "?" in target:
        return target.split("?", 1)[0] + "?…"
    return target


_REDACTION = RedactQueryStrings()


def install_log_redaction() -> None:
    """Adds the query-string filter to uvicorn's loggers (idempotent)."""
    for name in ("uvicorn.access", "uvicorn.error"):
        logger = logging.getLogger(name)
        if _REDACTION not in logger.filters:
            logger.addFilter(_REDACTION)


def server_config(app: ASGIApp, settings: Settings, *, host: str | None = None, port: int | None = None,
                  log_level: str = "info") -> uvicorn.Config:
    """uvicorn's configuration for the gateway: h11 with the header deadline, WebSocket messages
    capped at the body limit, bounded request heads, short keep-alive."""
    config = uvicorn.Config(
        app,
        host=settings.host if host is None else host,
        port=settings.port if port is None else port,
        log_level=log_level,
        lifespan="on",
        http=guarded_h11(settings.header_timeout),
        ws="websockets-sansio",
        ws_max_size=settings.max_body_bytes,
        h11_max_incomplete_event_size=MAX_HEAD_BYTES,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        # JSON logs: uvicorn's loggers keep no handlers of their own and reach the root's JSON one.
        log_config=None if settings.log_format == "json" else LOGGING_CONFIG,
    )
    install_log_redaction()  # after uvicorn configured its loggers
    return config
