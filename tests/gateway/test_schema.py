"""The schema keeps every name of the fixed interface (spec_schema.graphql beside this file), and the checked-in schema.graphql matches the code."""

from __future__ import annotations

from pathlib import Path

import pytest
from graphql import (
    GraphQLArgument,
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLObjectType,
    Undefined,
    value_from_ast,
)
from graphql import (
    build_schema as build_sdl,
)

from gateway.graphql.schema import schema, sdl

HERE = Path(__file__).parent
SPEC = build_sdl((HERE / "spec_schema.graphql").read_text())
OURS = schema._schema


def spec_default(arg: GraphQLArgument) -> object:
    node = arg.ast_node.default_value if arg.ast_node is not None else None
    return Undefined if node is None else value_from_ast(node, arg.type)


def spec_types() -> list[str]:
    return sorted(name for name in SPEC.type_map if not name.startswith("__") and name not in
                  ("String", "Int", "Float", "Boolean", "ID"))


@pytest.mark.parametrize("name", spec_types())
def test_spec_type_is_provided_with_the_same_shape(name: str) -> None:
    expected = SPEC.type_map[name]
    actual = OURS.type_map.get(name)
    assert actual is not None, f"type {name} of spec_schema.graphql is missing"
    assert isinstance(actual, type(expected)), f"{name} is a {type(actual).__name__}, spec: {type(expected).__name__}"
    if isinstance(expected, GraphQLEnumType):
        assert isinstance(actual, GraphQLEnumType)
        assert set(expected.values) <= set(actual.values)
    if isinstance(expected, (GraphQLObjectType, GraphQLInputObjectType)):
        assert isinstance(actual, (GraphQLObjectType, GraphQLInputObjectType))
        for field_name, field in expected.fields.items():
            ours = actual.fields.get(field_name)
            assert ours is not None, f"{name}.{field_name} of spec_schema.graphql is missing"
            assert str(ours.type) == str(field.type), f"{name}.{field_name}: {ours.type}, spec: {field.type}"
            for arg_name, arg in getattr(field, "args", {}).items():
                our_arg = ours.args.get(arg_name)  # type: ignore[union-attr]
                assert our_arg is not None, f"{name}.{field_name}({arg_name}) of spec_schema.graphql is missing"
                assert str(our_arg.type) == str(arg.type), f"{name}.{field_name}({arg_name}): {our_arg.type}"
                assert our_arg.default_value == spec_default(arg), f"{name}.{field_name}({arg_name}) default"
            for arg_name, our_arg in getattr(ours, "args", {}).items():
                if arg_name not in getattr(field, "args", {}):
                    assert not str(our_arg.type).endswith("!"), f"extra required argument {arg_name}"


def test_schema_graphql_is_up_to_date() -> None:
    checked_in = (HERE.parents[1] / "schema.graphql").read_text(encoding="utf-8")
    assert checked_in == sdl(), "schema.graphql is out of date: run `make schema` and commit the result"
