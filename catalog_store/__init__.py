"""Catalog storage: the CatalogStore protocol, its MongoDB and in-memory implementations."""

from __future__ import annotations

from collections.abc import Sequence

from catalog_store.memory import MemoryCatalogStore
from catalog_store.mongo.store import MongoCatalogStore
from catalog_store.store import CatalogStore
from catalog_store.token_cipher import TokenCipher


def open_store(mongodb_uri: str | None, database: str = "catalog_gateway",
               secret_keys: Sequence[str] = ()) -> CatalogStore:
    """The store for a configuration, not yet started (`await store.start()`): MongoDB when a URI is
    given (access tokens sealed with `secret_keys`, the first one writing), else the in-memory store
    (nothing persists across restarts)."""
    if mongodb_uri is None or mongodb_uri.strip() == "":
        return MemoryCatalogStore()
    return MongoCatalogStore(mongodb_uri.strip(), database, cipher=TokenCipher(secret_keys) if secret_keys else None)


__all__ = ["CatalogStore", "MemoryCatalogStore", "MongoCatalogStore", "open_store"]
