"""ETag and 304 for GET catalog reads: a repeated read costs no work until the catalog changes,
never for other queries or mutations, never across tokens with different rights."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from catalog_store.memory import MemoryCatalogStore
from tests.catalog_store.helpers import CATALOG, SHOP, make_item
from tests.gateway.harness import ADMIN_TOKEN, READ_TOKEN, Running, serve_gateway

READ = "query($c: String!) { catalog(name: $c) { itemCount items(first: 2) { edges { node { id title: productTitle } } } } }"


@pytest.fixture
async def store() -> MemoryCatalogStore:
    store = MemoryCatalogStore()
    await store.ensure_catalog(CATALOG, SHOP, "Demo Store")
    await store.write_items(CATALOG, [make_item("v1", title="Mug"), make_item("v2", title="Cap")])
    return store


@pytest.fixture
async def running(store: MemoryCatalogStore) -> AsyncIterator[Running]:
    async with serve_gateway(store) as running:
        yield running


def get(http: httpx.AsyncClient, token: str, query: str = READ, tag: str | None = None) -> object:
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    if tag is not None:
        headers["If-None-Match"] = tag
    return http.get("/graphql", params={"query": query, "variables": f'{{"c": "{CATALOG}"}}'}, headers=headers)


async def test_a_repeated_read_is_not_modified_until_the_catalog_changes(running: Running,
                                                                         store: MemoryCatalogStore) -> None:
    async with httpx.AsyncClient(base_url=running.base_url) as http:
        first = await get(http, READ_TOKEN)  # type: ignore[misc]
        assert first.status_code == 200 and first.json()["data"]["catalog"]["itemCount"] == 2
        tag = first.headers["etag"]
        assert first.headers["cache-control"] == "private, no-cache"
        again = await get(http, READ_TOKEN, tag=tag)  # type: ignore[misc]
        assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == tag
        other_role = await get(http, ADMIN_TOKEN, tag=tag)  # type: ignore[misc]
        assert other_role.status_code == 200 and other_role.headers["etag"] != tag
        await store.write_items(CATALOG, [make_item("v1", title="Big mug", updated=1)])
        changed = await get(http, READ_TOKEN, tag=tag)  # type: ignore[misc]
        assert changed.status_code == 200 and changed.headers["etag"] != tag
        assert changed.json()["data"]["catalog"]["items"]["edges"][0]["node"]["title"] == "Big mug"
        await store.delete_product(CATALOG, "100", make_item("v1").updated_at.replace(year=2027))
        emptied = await get(http, READ_TOKEN, tag=changed.headers["etag"])  # type: ignore[misc]
        assert emptied.status_code == 200 and emptied.json()["data"]["catalog"]["itemCount"] == 0


async def test_other_reads_and_posts_get_no_tag(running: Running) -> None:
    async with httpx.AsyncClient(base_url=running.base_url) as http:
        for _ in range(2):
            syncs = await get(http, READ_TOKEN, query="{ shopifySyncs { shopDomain lastRun { elapsedSeconds } } }")  # type: ignore[misc]
            assert syncs.status_code == 200 and "etag" not in syncs.headers
        posted = await http.post("/graphql", json={"query": READ, "variables": {"c": CATALOG}},
                                 headers={"Authorization": f"Bearer {READ_TOKEN}"})
        assert posted.status_code == 200 and "etag" not in posted.headers
        mutation = await get(http, ADMIN_TOKEN, query='mutation { markNotificationRead(id: "x") { id } }')  # type: ignore[misc]
        assert mutation.status_code == 405 and "etag" not in mutation.headers


async def test_a_store_without_catalogs_reads_as_null_and_is_tagged() -> None:
    async with serve_gateway(MemoryCatalogStore()) as running, httpx.AsyncClient(base_url=running.base_url) as http:
        first = await get(http, READ_TOKEN)  # type: ignore[misc]
        assert first.status_code == 200 and first.json() == {"data": {"catalog": None}}
        again = await get(http, READ_TOKEN, tag=first.headers["etag"])  # type: ignore[misc]
        assert again.status_code == 304
