"""Fixtures shared by the whole test suite: a real MongoDB-wire server and catalog stores.

`mongodb_uri` is $MONGODB_URI when set, otherwise a SecantusDB started for the session
(tests/secantus.py). Tests needing it fail, never skip, when it cannot be had.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest

from catalog_store.memory import MemoryCatalogStore
from catalog_store.mongo.store import MongoCatalogStore
from catalog_store.store import CatalogStore
from tests.keys import TEST_CIPHER
from tests.secantus import ServerUnavailable, secantus_server


@pytest.fixture(scope="session")
def mongodb_uri() -> Iterator[str]:
    """A MongoDB-wire server for the session: $MONGODB_URI, or a SecantusDB started here."""
    configured = os.environ.get("MONGODB_URI", "").strip()
    if configured:
        yield configured
        return
    try:
        server = secantus_server()
        uri = server.__enter__()
    except ServerUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield uri
    finally:
        server.__exit__(None, None, None)


MongoStoreFactory = Callable[..., Awaitable[MongoCatalogStore]]


@pytest.fixture
async def mongo_store_factory(mongodb_uri: str) -> AsyncIterator[MongoStoreFactory]:
    """`await factory(database=None, **kwargs)` → a started MongoCatalogStore on a fresh database
    (or the one named, to share it between stores); closed and dropped after the test."""
    opened: list[MongoCatalogStore] = []
    databases: set[str] = set()

    async def factory(database: str | None = None, **kwargs: object) -> MongoCatalogStore:
        name = database or f"test_{uuid.uuid4().hex[:16]}"
        store = MongoCatalogStore(mongodb_uri, name, **kwargs)  # type: ignore[arg-type]
        await store.start()
        opened.append(store)
        databases.add(name)
        return store

    yield factory
    for store in opened:
        if store.database.name in databases:
            databases.discard(store.database.name)
            await store.database.client.drop_database(store.database.name)
        await store.close()


@pytest.fixture(params=["memory", "mongo"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[CatalogStore]:
    """A started, empty store of each kind: tests using it run against both implementations."""
    if request.param == "memory":
        memory = MemoryCatalogStore()
        await memory.start()
        yield memory
        await memory.close()
        return
    uri: str = request.getfixturevalue("mongodb_uri")
    name = f"test_{uuid.uuid4().hex[:16]}"
    mongo = MongoCatalogStore(uri, name, cipher=TEST_CIPHER)  # as `serve` runs it: access tokens sealed
    await mongo.start()
    try:
        yield mongo
    finally:
        await mongo.database.client.drop_database(name)
        await mongo.close()
