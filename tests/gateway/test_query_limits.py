"""Document limits (gateway.graphql.limits): fragments are walked once, expanded sizes are bounded, and
an over-limit document is refused before graphql-core's own rules run on it."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import get_introspection_query, parse

from gateway.graphql import limits
from gateway.graphql.limits import MAX_NESTING, QueryLimits, check_document
from gateway.graphql.schema import build_schema, schema


def fragment_bomb(n: int, leaf: str = "shopifySyncs { shopDomain }") -> str:
    """Fragments that each spread the one below twice, `n` deep: 2^n fields once expanded."""
    parts = ["query Bomb { ...F0 }"]
    parts += [f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(n)]
    parts.append(f"fragment F{n} on Query {{ {leaf} }}")
    return "\n".join(parts)


@pytest.mark.parametrize("n", [19, 39, 60])
async def test_the_fragment_bomb_is_refused(n: int) -> None:
    result = await schema.execute(fragment_bomb(n))
    assert result.data is None and result.errors
    error = result.errors[0]
    assert "fields once its fragments are expanded. Allowed: 5000" in error.message
    assert error.extensions["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert error.extensions["fix"]


async def test_a_longer_fragment_chain_is_refused_for_its_nesting() -> None:
    result = await schema.execute(fragment_bomb(250))
    assert result.errors and f"more than {MAX_NESTING} levels deep" in result.errors[0].message


def test_each_fragment_is_walked_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The walk is linear: one visit per selection set of the document, however often it is spread."""
    visits = 0
    walk = limits._Walker.cost

    def counting(self: limits._Walker, *args: object, **kwargs: object) -> limits._Cost:
        nonlocal visits
        visits += 1
        return walk(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(limits._Walker, "cost", counting)
    n = 39
    errors = check_document(parse(fragment_bomb(n)), QueryLimits())
    assert errors
    assert visits <= 2 * (n + 3)  # the operation, each fragment, the leaf's selection set


async def test_graphql_core_rules_never_see_a_refused_document(monkeypatch: pytest.MonkeyPatch) -> None:
    """Errors set before validation make Strawberry skip graphql-core's rules (one of them is
    quadratic in repeated fields)."""
    import strawberry.schema.schema as strawberry_schema

    validated: list[object] = []
    validate = strawberry_schema.validate_document

    def spy(*args: Any) -> Any:
        validated.append(args[1])
        return validate(*args)

    monkeypatch.setattr(strawberry_schema, "validate_document", spy)
    assert (await schema.execute(fragment_bomb(25))).errors
    assert validated == []
    assert (await schema.execute("{ __typename }")).data == {"__typename": "Query"}
    assert len(validated) == 1


async def test_aliases_are_counted_through_fragments() -> None:
    result = await schema.execute(fragment_bomb(40, leaf="a: shopifySyncs { shopDomain }"))
    assert result.errors
    assert "at least 2147483648 aliases found. Allowed: 20" in result.errors[0].message
    small = fragment_bomb(3, leaf="a: shopifySyncs { shopDomain }")  # 8 aliases once expanded: allowed
    assert check_document(parse(small), QueryLimits()) == []
    assert check_document(parse(small), QueryLimits(max_aliases=7))[0].message == "8 aliases found. Allowed: 7"


async def test_depth_is_counted_through_fragments() -> None:
    deep = build_schema(max_depth=2)
    query = """{ shopifySyncs { ...Sync } }
        fragment Sync on ShopifySync { catalog { ...Catalog } }
        fragment Catalog on Catalog { items { totalCount } }"""
    result = await deep.execute(query)
    assert result.errors and "exceeds maximum operation depth of 2" in result.errors[0].message


async def test_repeated_fields_are_refused_before_the_overlap_rule() -> None:
    repeated = "{" + " shopifySyncs { lastRun { id } }" * 300 + " }"  # 10 KB: took the rule over 1 s
    result = await schema.execute(repeated)
    assert result.errors
    assert "repeats fields too often" in result.errors[0].message
    assert result.errors[0].extensions["fix"]


async def test_an_unused_fragment_counts_too() -> None:
    query = "{ __typename } " + fragment_bomb(30).replace("query Bomb { ...F0 }", "")
    result = await schema.execute(query)
    assert result.errors and "fields once its fragments are expanded" in result.errors[0].message


async def test_fragment_cycles_are_left_to_graphql_core() -> None:
    result = await schema.execute("{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }")
    assert result.errors and "Cannot spread fragment" in result.errors[0].message


async def test_nesting_is_bounded_even_for_introspection() -> None:
    levels = MAX_NESTING + 2
    query = "{ __schema { types { fields { type " + "{ ofType " * levels + "{ name }" + " }" * levels + " } } } }"
    result = await schema.execute(query)
    assert result.errors and f"more than {MAX_NESTING} levels" in result.errors[0].message


async def test_reasonable_documents_pass() -> None:
    reused = """query Items {
        a: catalog(name: "x") { items(first: 5) { edges { node { ...Item } } } }
        b: catalog(name: "y") { items(first: 5) { edges { node { ...Item } } } }
    }
    fragment Item on CatalogItem { id price compareAtPrice inventoryQuantity sku ...Titles }
    fragment Titles on CatalogItem { productTitle variantTitle }"""
    assert check_document(parse(reused), QueryLimits()) == []
    assert check_document(parse(get_introspection_query(descriptions=True)), QueryLimits()) == []


async def test_a_padded_query_text_is_refused_before_parsing() -> None:
    padded = "{" + " " * 100_001 + "__typename }"
    result = await schema.execute(padded)
    assert result.errors
    assert "characters. Allowed: 100000" in result.errors[0].message
    assert result.errors[0].extensions["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert (await schema.execute("{" + " " * 90_000 + "__typename }")).data == {"__typename": "Query"}
