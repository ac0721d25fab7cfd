"""What every command shares: reading the settings (every problem printed at once) and saying
which store a command runs on, so that nobody mistakes the in-memory store for a persistent one."""

from __future__ import annotations

import errno
import socket
import sys
from typing import TYPE_CHECKING

from catalog_store.errors import CatalogGatewayError
from gateway.errors import SettingsError

if TYPE_CHECKING:
    from catalog_store.store import CatalogStore
from gateway.settings import Settings

EXIT_USAGE = 2
EXIT_FAILED = 1
EXIT_STORE = 1


def load_settings() -> Settings | None:
    """Settings from the environment, or None after printing every problem."""
    try:
        return Settings.from_env()
    except SettingsError as exc:
        print(f"catalog-gateway: {exc}", file=sys.stderr)
        return None


def store_description(persistent: bool, settings: Settings) -> str:
    if persistent:
        return f"store: MongoDB database {settings.mongodb_database!r} (persistent)"
    return "store: in-memory (NOT persistent: everything is lost when the process stops; set MONGODB_URI to keep it)"


def bind(host: str, port: int, how_to_change: str) -> socket.socket | None:
    """The listening socket, or None after one line saying which address is taken (or refused) and
    how to pick another port: uvicorn's and asyncio's bind errors are tracebacks."""
    try:
        return socket.create_server((host, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            print(f"catalog-gateway: port {port} on {host} is already in use (another gateway or demo?): "
                  f"stop it, or pick another port with {how_to_change}.", file=sys.stderr)
        else:
            print(f"catalog-gateway: cannot listen on {host}:{port}: {exc.strerror or exc}; "
                  f"check GATEWAY_HOST, or pick another port with {how_to_change}.", file=sys.stderr)
        return None


async def start_store(store: CatalogStore, command: str, mongodb_uri: str | None = None) -> bool:
    """Start the store before anything uses it; on MongoDB, seal every access token with the writing
    key (after an upgrade or a key rotation), which also proves the key opens them. False after
    printing what went wrong and its fix (never a traceback)."""
    from catalog_store.mongo.probe import probe
    from catalog_store.mongo.store import MongoCatalogStore

    try:
        if mongodb_uri is not None:
            await probe(mongodb_uri)  # a few seconds, not the store's 10 s per attempt
        await store.start()
        if isinstance(store, MongoCatalogStore):
            resealed = await store.reseal_tokens()
            if resealed:
                print(f"{command}: {resealed} stored access token(s) encrypted with the current GATEWAY_SECRET_KEY",
                      flush=True)
    except CatalogGatewayError as exc:
        await store.close()
        print(f"{command}: {exc.message}\n  fix: {exc.fix}", file=sys.stderr)
        return False
    return True
