"""A quick reachability check of a MongoDB URI, for startup: the store's own server selection waits
10 s per operation (right for a running gateway riding out a failover), far too long to tell a new
user that nothing listens at the address they configured."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from pymongo import AsyncMongoClient
from pymongo.errors import ConfigurationError, ConnectionFailure, PyMongoError

from catalog_store.errors import StoreError, StoreUnavailable

STARTUP_TIMEOUT_SECONDS = 3.0
UNREACHABLE_FIX = (
    "Start MongoDB there (e.g. docker run -d -p 27017:27017 mongo:7), correct MONGODB_URI, "
    "or unset MONGODB_URI to run on the in-memory store."
)


def uri_hosts(uri: str) -> str:
    """The URI's host list without credentials or options (safe to print)."""
    netloc = urlsplit(uri).netloc
    return netloc.rpartition("@")[2] or uri.split("://", 1)[0]


def first_reason(exc: PyMongoError) -> str:
    """The first server's error, without PyMongo's topology description and timeouts."""
    text = str(exc).split(" (configured timeouts", 1)[0].split(", Timeout:", 1)[0]
    return text.strip() or type(exc).__name__


async def probe(uri: str, timeout: float = STARTUP_TIMEOUT_SECONDS) -> None:
    """Raises StoreUnavailable (one-line message, fix) unless a server at `uri` answers a ping
    within `timeout` seconds."""
    hosts = uri_hosts(uri)
    client: AsyncMongoClient[dict[str, Any]] | None = None
    try:
        ms = int(timeout * 1000)
        client = AsyncMongoClient(uri, serverSelectionTimeoutMS=ms, connectTimeoutMS=ms, appname="catalog-gateway")
        await client.admin.command("ping")
    except ConfigurationError as exc:
        raise StoreUnavailable(f"MONGODB_URI is not usable ({hosts}): {first_reason(exc)}",
                               fix="Set MONGODB_URI to a mongodb:// or mongodb+srv:// URI.") from None
    except ConnectionFailure as exc:
        raise StoreUnavailable(f"MongoDB at {hosts} did not answer within {timeout:g} s ({first_reason(exc)})",
                               fix=UNREACHABLE_FIX) from None
    except PyMongoError as exc:
        raise StoreError(f"MongoDB at {hosts} refused the connection: {first_reason(exc)}",
                         fix="Check the user, password and authSource in MONGODB_URI.") from None
    except (ValueError, TypeError) as exc:
        raise StoreUnavailable(f"MONGODB_URI is not usable: {exc}",
                               fix="Set MONGODB_URI to a mongodb:// or mongodb+srv:// URI.") from None
    finally:
        if client is not None:
            await client.close()
