"""A POSTed catalog read answered by its plan gets exactly the response Strawberry's view sends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from catalog_store.memory import MemoryCatalogStore
from gateway.graphql import read_http
from tests.catalog_store.helpers import CATALOG, SHOP, make_item
from tests.gateway.harness import READ_TOKEN, Running, serve_gateway

READ = ("query($c: String!, $a: String) { catalog(name: $c) { itemCount items(first: 2, after: $a) "
        "{ totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id price sku } } } } }")


@pytest.fixture
async def running() -> AsyncIterator[Running]:
    store = MemoryCatalogStore()
    await store.ensure_catalog(CATALOG, SHOP, "Demo Store")
    await store.write_items(CATALOG, [make_item(f"v{n}", price=f"{n}.50", sku=f"S{n}") for n in range(5)])
    async with serve_gateway(store) as running:
        yield running


@pytest.mark.parametrize("accept", ["application/json", "application/graphql-response+json", None])
@pytest.mark.parametrize("variables", [{"c": CATALOG}, {"c": CATALOG, "a": "bogus"}, {"c": "missing"}, {"c": 5}])
async def test_the_fast_answer_is_the_views(running: Running, accept: str | None, variables: dict[str, Any],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    answered: list[bool] = []
    real = read_http.read_fast_path

    async def spy(*args: Any) -> Any:
        result = await real(*args)
        answered.append(result is not None)
        return result

    monkeypatch.setattr(read_http, "read_fast_path", spy)
    headers = {"Authorization": f"Bearer {READ_TOKEN}", **({"Accept": accept} if accept else {})}
    async with httpx.AsyncClient(base_url=running.base_url) as http:
        view = await http.post("/graphql", json={"query": READ, "variables": variables, "extensions": None},
                               headers=headers)
        assert answered == []  # a body with other members goes to the view
        fast = await http.post("/graphql", json={"query": READ, "variables": variables}, headers=headers)
    assert answered == [variables == {"c": CATALOG} or variables == {"c": "missing"}]
    assert fast.status_code == view.status_code
    assert fast.headers["content-type"] == view.headers["content-type"]
    assert fast.json() == view.json()
    assert fast.content == view.content


async def test_a_fast_answer_is_timed_once(running: Running) -> None:
    from gateway.metrics import GRAPHQL_SECONDS

    def count() -> float:
        return next(s.value for m in GRAPHQL_SECONDS.collect() for s in m.samples
                    if s.name.endswith("_count") and s.labels == {"operation_type": "query"})

    headers = {"Authorization": f"Bearer {READ_TOKEN}"}
    async with httpx.AsyncClient(base_url=running.base_url) as http:
        await http.post("/graphql", json={"query": READ, "variables": {"c": CATALOG}}, headers=headers)
        before = count()
        await http.post("/graphql", json={"query": READ, "variables": {"c": CATALOG}}, headers=headers)  # the plan
        await http.post("/graphql", json={"query": READ, "variables": {"c": CATALOG, "a": "bogus"}},
                        headers=headers)  # the plan gives way: the view times it
    assert count() == before + 2
