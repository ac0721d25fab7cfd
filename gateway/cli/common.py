"""What every command shares: reading the settings (every problem printed at once) and saying
which store a command runs on, so that nobody mistakes the in-memory store for a persistent one."""

from __future__ import annotations

import errno
import socket
import sys

from gateway.errors import SettingsError
from gateway.settings import Settings

EXIT_USAGE = 2
EXIT_FAILED = 1


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
