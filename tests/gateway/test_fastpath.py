"""The read fast path (gateway.graphql.fastpath) answers exactly what graphql-core's execution does,
and leaves to it everything it does not serve."""

from __future__ import annotations

from typing import Any

import pytest
import strawberry

from catalog_store.memory import MemoryCatalogStore
from gateway.graphql.auth import Role
from gateway.graphql.context import Context, Loaders, Services
from gateway.graphql.fastpath import RULES
from gateway.graphql.pagination import encode_cursor
from gateway.graphql.schema import GatewaySchema, build_schema
from tests.catalog_store.helpers import CATALOG, SHOP, make_item

ITEM = ("id storeName shopifyProductId shopifyVariantId productTitle variantTitle status productImageUrl "
        "variantImageUrl vendor productType productUrl productHandle publishedScope price compareAtPrice "
        "inventoryQuantity options optionValues sku __typename")

SERVED = [
    (f"query($c: String!) {{ catalog(name: $c) {{ name storeName itemCount storageBytes __typename "
     f"items(first: 3) {{ totalCount __typename pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor "
     f"__typename }} edges {{ cursor __typename node {{ {ITEM} }} }} }} }} }}", {}),
    ("query($c: String!, $a: String) { catalog(name: $c) { items(first: 2, after: $a) { edges { cursor "
     "node { id price } } pageInfo { endCursor hasPreviousPage } } } }", {"a": encode_cursor("v03")}),
    ("query($c: String!) { catalog(name: $c) { items(filter: {vendor: \"Beta\", priceMax: 30, inStock: true}) "
     "{ totalCount edges { node { id vendor price inventoryQuantity } } } } }", {}),
    ("query($c: String!, $f: CatalogItemFilter) { catalog(name: $c) { items(first: 10, filter: $f) "
     "{ totalCount edges { node { ...Titles } } } } } fragment Titles on CatalogItem { productTitle variantTitle sku }",
     {"f": {"search": "MUG", "status": "active"}}),
    ("query($c: String!) { a: catalog(name: $c) { item(id: \"v02\") { id x: price ... on CatalogItem { sku } } } "
     "b: catalog(name: $c) { item(id: \"nope\") { id } } c: catalog(name: \"missing\") { name } __typename }", {}),
    ("query($c: String!) { catalog(name: $c) { items(first: 1) { edges { node { id } } edges { node { sku } } } } }", {}),
    ("query Named($c: String!) { catalog(name: $c) { items(first: null) { totalCount } } } "
     "query Other { __typename }", {}),
]
# Each answered with errors: the fast path gives way, the normal path reports them.
REFUSED = [
    ("query($c: String!) { catalog(name: $c) { items(after: \"bogus\") { totalCount } } }", {}),
    ("query($c: String!) { catalog(name: $c) { items(first: 500) { totalCount } } }", {}),
    ("query($c: String!) { catalog(name: $c) { items(filter: {priceMin: 5, priceMax: 1}) { totalCount } } }", {}),
    ("query($c: String!, $n: Int) { catalog(name: $c) { items(first: $n) { totalCount } } }", {"n": "x"}),
]
UNSERVED = [
    "query($c: String!) { catalog(name: $c) { items(first: 1) @include(if: true) { totalCount } } }",
    "query($c: String!) { catalog(name: $c) { name } shopifySyncs { shopDomain } }",
]


@pytest.fixture
async def store() -> MemoryCatalogStore:
    store = MemoryCatalogStore()
    await store.ensure_catalog(CATALOG, SHOP, "Demo Store")
    await store.write_items(CATALOG, [
        make_item("v01", title="Blue Mug", vendor="Beta", price="12.50", quantity=3, sku="MUG-1"),
        make_item("v02", title="Red mug", vendor="Acme", price="1E+1", compare_at_price="20.00", sku="MUG-2"),
        make_item("v03", title="Shirt", vendor="Beta", price="31.00", quantity=0, variant_title=None),
        make_item("v04", title="Cap", vendor="Beta", price="29.99", quantity=None, status="draft"),
        make_item("v05", title="Smug cat", vendor="Beta", price="9", quantity=1),
    ])
    return store


def context(store: MemoryCatalogStore) -> Context:
    return Context(Services(store=store, sync=None), Role.READ, Loaders(store))  # type: ignore[arg-type]


async def both(schema: GatewaySchema, store: MemoryCatalogStore, query: str, variables: dict[str, Any],
               operation: str | None = None) -> tuple[Any, Any]:
    variables = {"c": CATALOG, **variables}
    normal = await strawberry.Schema.execute(schema, query, variables, context(store), operation_name=operation)
    fast = await schema.execute(query, variables, context(store), operation_name=operation)
    return normal, fast


@pytest.mark.parametrize(("query", "variables"), SERVED)
async def test_a_plan_answers_as_graphql_core_does(store: MemoryCatalogStore, query: str,
                                                   variables: dict[str, Any]) -> None:
    schema = build_schema()
    operation = "Named" if "query Named" in query else None
    normal, fast = await both(schema, store, query, variables, operation)
    assert normal.errors is None and fast.errors is None
    assert fast.data == normal.data
    assert list(fast.data) == list(normal.data)  # the same keys in the same order, all the way down
    assert repr(fast.data) == repr(normal.data)
    prepared = schema.documents.valid(query, RULES)
    assert prepared is not None and prepared.plans[operation] is not None


@pytest.mark.parametrize(("query", "variables"), REFUSED)
async def test_errors_come_from_the_normal_path(store: MemoryCatalogStore, query: str,
                                                variables: dict[str, Any]) -> None:
    schema = build_schema()
    normal, fast = await both(schema, store, query, variables)
    assert normal.errors
    assert [e.formatted for e in fast.errors or []] == [e.formatted for e in normal.errors]
    assert fast.data == normal.data


@pytest.mark.parametrize("query", UNSERVED)
async def test_other_documents_have_no_plan(store: MemoryCatalogStore, query: str) -> None:
    schema = build_schema()
    normal, fast = await both(schema, store, query, {})
    assert fast.data == normal.data and not fast.errors
    prepared = schema.documents.valid(query, RULES)
    assert prepared is not None and prepared.plans[None] is None


async def test_a_document_is_checked_once(store: MemoryCatalogStore, monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.graphql import documents

    checks: list[object] = []
    check = documents.check_document
    monkeypatch.setattr(documents, "check_document", lambda doc, limits: checks.append(doc) or check(doc, limits))
    schema = build_schema()
    query = SERVED[1][0]
    for _ in range(5):
        _, fast = await both(schema, store, query, SERVED[1][1])
        assert fast.errors is None
    assert len(checks) == 1
    over = build_schema(max_depth=2)
    for _ in range(2):  # refused every time, from the cache
        result = await over.execute(query, {"c": CATALOG}, context(store))
        assert result.errors and "exceeds maximum operation depth of 2" in result.errors[0].message


async def test_the_cache_is_bounded(store: MemoryCatalogStore) -> None:
    schema = build_schema()
    schema.documents.maxsize = 3
    for n in range(10):
        await schema.execute(f"{{ a{n}: __typename }}", None, context(store))
    assert len(schema.documents) == 3


async def test_a_changed_item_is_answered_as_it_is_now(store: MemoryCatalogStore) -> None:
    """Item response objects are kept per plan and item (items are immutable): a write makes a new
    item, so the next answer is the new one, never the kept one, and two documents never share one."""
    schema = build_schema()
    query = "query($c: String!) { catalog(name: $c) { items(first: 5) { edges { node { id price sku } } } } }"
    other = "query($c: String!) { catalog(name: $c) { items(first: 5) { edges { node { id title: productTitle } } } } }"

    async def prices() -> dict[str, str]:
        result = await schema.execute(query, {"c": CATALOG}, context(store))
        assert result.errors is None
        return {e["node"]["id"]: e["node"]["price"] for e in result.data["catalog"]["items"]["edges"]}

    assert (await prices())["v01"] == "12.50"
    assert (await prices())["v01"] == "12.50"  # answered from the kept objects
    await store.write_items(CATALOG, [make_item("v01", title="Blue Mug", vendor="Beta", price="9.99", quantity=3,
                                                sku="MUG-1", updated=1)])
    assert (await prices())["v01"] == "9.99"
    titles = await schema.execute(other, {"c": CATALOG}, context(store))
    assert titles.errors is None
    assert set(titles.data["catalog"]["items"]["edges"][0]["node"]) == {"id", "title"}
