"""The server's connections send each write at once, whoever made the listening socket."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from catalog_store.memory import MemoryCatalogStore
from gateway.server import GuardedH11Protocol
from tests.gateway.harness import serve_gateway


async def test_connections_of_a_socket_made_by_create_server_have_no_nagle_delay(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # serve_gateway listens on socket.create_server's socket (proto 0), as the demo does: asyncio
    # leaves TCP_NODELAY off on its connections, and each response body then waited ~40 ms.
    accepted: list[Any] = []
    original = GuardedH11Protocol.connection_made

    def recording(self: GuardedH11Protocol, transport: asyncio.Transport) -> None:
        original(self, transport)
        accepted.append(transport.get_extra_info("socket"))

    monkeypatch.setattr(GuardedH11Protocol, "connection_made", recording)
    async with serve_gateway(MemoryCatalogStore()) as running:
        host, port = running.base_url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n")
        await reader.readuntil(b"\r\n\r\n")
        assert len(accepted) == 1
        assert accepted[0].getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        writer.close()
