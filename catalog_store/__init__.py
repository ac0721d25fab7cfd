"""Catalog storage: the CatalogStore protocol, its MongoDB and in-memory implementations."""

from __future__ import annotations

from catalog_store.memory import MemoryCatalogStore
from catalog_store.mongo.store import MongoCatalogStore
from catalog_store.store import CatalogStore


def open_store(mongodb_uri: str | None, database: str = "catalog_gateway") -> CatalogStore:
    """The store for a configuration, not yet started (`await store.start()`): MongoDB when a URI is
    given, else the in-memory store (nothing persists across restarts)."""
    if mongodb_uri is None or mongodb_uri.strip() == "":
        return MemoryCatalogStore()
    return MongoCatalogStore(mongodb_uri.strip(), database)


__all__ = ["CatalogStore", "MemoryCatalogStore", "MongoCatalogStore", "open_store"]
