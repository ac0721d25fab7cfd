"""What every command shares: reading the settings (every problem printed at once) and saying
which store a command runs on, so that nobody mistakes the in-memory store for a persistent one."""

from __future__ import annotations

import sys

from gateway.errors import SettingsError
from gateway.settings import Settings

EXIT_USAGE = 2


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
