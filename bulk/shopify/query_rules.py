"""Shopify's bulk-query rules, checked locally before a bulk query is sent (pure).

Shopify rejects a bulk query (`userErrors` INVALID) that is not valid against the schema, has no
connection or more than five, or nests connections more than two levels deep. Deprecated fields
are accepted by Shopify but listed here, so tests can keep them out of our query.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    OperationDefinitionNode,
    OperationType,
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
    get_named_type,
    parse,
    visit,
)

from bulk.shopify.schema import load_admin_schema, validation_errors

MAX_BULK_CONNECTIONS = 5
MAX_BULK_NESTING = 2



@dataclass(frozen=True, slots=True)
class BulkQueryCheck:
    """Shopify's bulk-query rules applied to a query: `problems` are what Shopify would reject."""

    connections: tuple[str, ...]
    max_nesting: int
    deprecated_fields: tuple[str, ...]
    problems: tuple[str, ...]


@lru_cache(maxsize=32)
def check_bulk_query(query: str) -> BulkQueryCheck:
    """Validate `query` against the schema and the bulk rules: 1–5 connections, ≤ 2 levels of
    nested connections, a single query operation. Deprecated fields are listed, not rejected."""
    errors = validation_errors(query)
    if errors:
        return BulkQueryCheck((), 0, (), tuple(errors))
    document = parse(query)
    problems: list[str] = []
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) != 1 or operations[0].operation != OperationType.QUERY:
        problems.append("a bulk query must be exactly one query operation")
    type_info = TypeInfo(load_admin_schema())
    collector = _BulkShape(type_info)
    visit(document, TypeInfoVisitor(type_info, collector))
    if collector.fragment_spreads:
        problems.append("named fragments are not supported here; use inline fragments")
    if not collector.connections:
        problems.append("a bulk query needs at least one connection")
    if len(collector.connections) > MAX_BULK_CONNECTIONS:
        problems.append(f"{len(collector.connections)} connections; Shopify allows at most {MAX_BULK_CONNECTIONS}")
    if collector.max_nesting > MAX_BULK_NESTING:
        problems.append(f"connections nested {collector.max_nesting} levels deep; "
                        f"Shopify allows at most {MAX_BULK_NESTING}")
    return BulkQueryCheck(tuple(collector.connections), collector.max_nesting,
                          tuple(collector.deprecated), tuple(problems))


class _BulkShape(Visitor):
    def __init__(self, type_info: TypeInfo) -> None:
        super().__init__()
        self._type_info = type_info
        self._stack: list[bool] = []
        self.connections: list[str] = []
        self.deprecated: list[str] = []
        self.max_nesting = 0
        self.fragment_spreads = False

    def enter_field(self, node: FieldNode, *_: Any) -> None:
        parent = self._type_info.get_parent_type()
        definition = self._type_info.get_field_def()
        is_connection = False
        if definition is not None:
            name = f"{parent.name}.{node.name.value}" if parent else node.name.value
            if definition.deprecation_reason is not None:
                self.deprecated.append(name)
            is_connection = get_named_type(definition.type).name.endswith("Connection")
            if is_connection:
                nesting = sum(self._stack)
                self.connections.append(name)
                self.max_nesting = max(self.max_nesting, nesting)
        self._stack.append(is_connection)

    def leave_field(self, *_: Any) -> None:
        self._stack.pop()

    def enter_fragment_spread(self, node: FragmentSpreadNode, *_: Any) -> None:
        self.fragment_spreads = True


