"""End-to-end harness: the real app served by uvicorn on 127.0.0.1 (port 0, in-process) and gql clients
over HTTP and graphql-transport-ws."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import uvicorn
from gql import Client, GraphQLRequest
from gql.transport.aiohttp import AIOHTTPTransport
from gql.transport.websockets import WebsocketsTransport

from bulk.full_sync.service import SyncSettings
from bulk.notifications import EmailSender
from catalog_store.store import CatalogStore
from gateway.app import create_app
from gateway.graphql.context import LiveSettings
from gateway.server import server_config
from gateway.settings import Settings
from gateway.wiring import Gateway, sync_settings_for

ADMIN_TOKEN = "test-admin-token-0123456789"
READ_TOKEN = "test-read-token-0123456789"
FAST_LIVE = LiveSettings(progress_interval=0.05, store_poll_interval=0.2)
CLIENT_TIMEOUT = 30  # generous: a loaded CI machine must not fail a test by slowness alone


class _Server(uvicorn.Server):
    """uvicorn without signal handling (the test runner owns the signals)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class Running:
    gateway: Gateway
    base_url: str

    @property
    def graphql_url(self) -> str:
        return self.base_url + "/graphql"

    @property
    def ws_url(self) -> str:
        return self.graphql_url.replace("http://", "ws://")

    def http(self, token: str | None = ADMIN_TOKEN) -> Client:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        transport = AIOHTTPTransport(url=self.graphql_url, headers=headers)
        return Client(transport=transport, fetch_schema_from_transport=False, execute_timeout=CLIENT_TIMEOUT)

    def ws(self, token: str | None = ADMIN_TOKEN) -> Client:
        payload = {} if token is None else {"Authorization": f"Bearer {token}"}
        transport = WebsocketsTransport(url=self.ws_url, init_payload=payload,
                                        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL])
        return Client(transport=transport, fetch_schema_from_transport=False, execute_timeout=CLIENT_TIMEOUT)

    async def query(self, document: str, variables: dict[str, Any] | None = None,
                    token: str | None = ADMIN_TOKEN) -> dict[str, Any]:
        async with self.http(token) as session:
            return await session.execute(GraphQLRequest(document, variable_values=variables))


@contextlib.asynccontextmanager
async def serve_gateway(
    store: CatalogStore,
    *,
    settings: Settings | None = None,
    auth: bool = True,
    email: EmailSender | None = None,
    live: LiveSettings = FAST_LIVE,
    sync_overrides: dict[str, Any] | None = None,
    browser_token: str | None = None,
) -> AsyncIterator[Running]:
    """The app on 127.0.0.1:<free port>, started and closed with its lifespan."""
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    base = settings or Settings(admin_token=ADMIN_TOKEN, read_token=READ_TOKEN)
    settings = Settings(**{**{f: getattr(base, f) for f in base.__dataclass_fields__}, "port": port})
    overrides: dict[str, Any] = {"poll_interval": 0.05, "max_poll_interval": 0.2, "persist_interval": 0.05,
                                 "batch_size": 50}
    overrides.update(sync_overrides or {})
    sync_settings: SyncSettings = sync_settings_for(settings, **overrides)
    gateway = Gateway(settings, store, auth=auth, email=email, sync_settings=sync_settings, live=live)
    server = _Server(server_config(create_app(gateway, browser_token=browser_token), settings, log_level="warning"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                await task
                raise RuntimeError("the gateway did not start")
            await asyncio.sleep(0.01)
        yield Running(gateway=gateway, base_url=f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)
        sock.close()
