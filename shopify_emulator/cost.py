"""Shopify's calculated query cost and the per-shop leaky bucket that pays for it.

Cost rules (Shopify's published ones): scalars and enums cost 0, objects 1, a connection
2 + `first`/`last` × the cost of one node, a list fetched by ids (`nodes(ids:)`) the number of ids ×
the cost of one object, an interface or union the most expensive of its possible selections (not
their sum: one object is only one of its types), every mutation field 10.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    is_abstract_type,
    is_leaf_type,
    is_list_type,
)

MUTATION_COST = 10


def query_cost(schema: GraphQLSchema, operation: OperationDefinitionNode,
               fragments: Mapping[str, FragmentDefinitionNode], variables: Mapping[str, Any]) -> int:
    """The requested cost of `operation` (already validated)."""
    if operation.operation == OperationType.MUTATION:
        return MUTATION_COST * sum(1 for s in operation.selection_set.selections if isinstance(s, FieldNode))
    return _cost(schema, schema.query_type, operation.selection_set, fragments, variables)


def _size(field: FieldNode, variables: Mapping[str, Any]) -> int:
    for argument in field.arguments or ():
        if argument.name.value in ("first", "last"):
            value = argument.value
            if isinstance(value, IntValueNode):
                return int(value.value)
            if isinstance(value, VariableNode):
                return int(variables.get(value.name.value) or 0)
    return 0


def _fragment(selection: InlineFragmentNode | FragmentSpreadNode, parent: Any,
              fragments: Mapping[str, FragmentDefinitionNode]) -> tuple[str, SelectionSetNode]:
    """The type a fragment applies to and what it selects."""
    if isinstance(selection, InlineFragmentNode):
        name = selection.type_condition.name.value if selection.type_condition else parent.name
        return name, selection.selection_set
    fragment = fragments[selection.name.value]
    return fragment.type_condition.name.value, fragment.selection_set


def _ids(field: FieldNode, variables: Mapping[str, Any]) -> int | None:
    """How many ids a list field is asked for (`nodes(ids: [...])`), None when it takes none."""
    for argument in field.arguments or ():
        if argument.name.value == "ids":
            value = argument.value
            if isinstance(value, VariableNode):
                return len(variables.get(value.name.value) or ())
            return len(getattr(value, "values", ()) or ())
    return None


def _cost(schema: GraphQLSchema, parent: Any, selection_set: SelectionSetNode | None,
          fragments: Mapping[str, FragmentDefinitionNode], variables: Mapping[str, Any]) -> int:
    if selection_set is None:
        return 0
    total = 0
    by_type: dict[str, int] = {}  # what fragments on a narrower type than `parent` select
    for selection in selection_set.selections:
        if isinstance(selection, (InlineFragmentNode, FragmentSpreadNode)):
            name, inner = _fragment(selection, parent, fragments)
            cost = _cost(schema, schema.get_type(name), inner, fragments, variables)
            if name == parent.name or not is_abstract_type(parent):
                total += cost
            else:
                by_type[name] = by_type.get(name, 0) + cost
        elif isinstance(selection, FieldNode):
            name = selection.name.value
            if name.startswith("__"):
                continue
            field_type = parent.fields[name].type
            named = get_named_type(field_type)
            if is_leaf_type(named):
                continue
            if named.name.endswith("Connection") and "edges" in getattr(named, "fields", {}):
                total += 2 + _size(selection, variables) * _node_cost(schema, named, selection.selection_set,
                                                                       fragments, variables)
            else:
                one = 1 + _cost(schema, named, selection.selection_set, fragments, variables)
                ids = _ids(selection, variables) if is_list_type(getattr(field_type, "of_type", field_type)) else None
                total += one * ids if ids is not None else one
    return total + max(by_type.values(), default=0)


def _node_cost(schema: GraphQLSchema, connection: Any, selection_set: SelectionSetNode | None,
               fragments: Mapping[str, FragmentDefinitionNode], variables: Mapping[str, Any]) -> int:
    """Cost of one node of a connection: what `edges { node }` and `nodes` select (pageInfo is free)."""
    if selection_set is None:
        return 0
    node_type = get_named_type(connection.fields["nodes"].type) if "nodes" in connection.fields else None
    total = 0
    for selection in selection_set.selections:
        if not isinstance(selection, FieldNode):
            continue
        name = selection.name.value
        if name == "nodes" and node_type is not None:
            total += 1 + _cost(schema, node_type, selection.selection_set, fragments, variables)
        elif name == "edges":
            edge = get_named_type(connection.fields["edges"].type)
            total += _cost(schema, edge, selection.selection_set, fragments, variables)
    return max(total, 1)


class LeakyBucket:
    """Shopify's cost bucket: `maximum` points, refilled at `restore_rate` points per second."""

    def __init__(self, maximum: float = 2000.0, restore_rate: float = 100.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.maximum = float(maximum)
        self.restore_rate = float(restore_rate)
        self._clock = clock
        self._available = self.maximum
        self._at = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._available = min(self.maximum, self._available + (now - self._at) * self.restore_rate)
        self._at = now

    def spend(self, cost: float) -> bool:
        """Take `cost` points if available (True); else take nothing (False: throttled)."""
        self._refill()
        if cost > self._available:
            return False
        self._available -= cost
        return True

    def refund(self, cost: float) -> None:
        self._refill()
        self._available = min(self.maximum, self._available + cost)

    def drain(self) -> None:
        self._refill()
        self._available = 0.0

    def reconfigure(self, maximum: float, restore_rate: float) -> None:
        self._refill()
        self.maximum, self.restore_rate = float(maximum), float(restore_rate)
        self._available = min(self._available, self.maximum)

    def status(self) -> dict[str, float]:
        self._refill()
        return {
            "maximumAvailable": self.maximum,
            "currentlyAvailable": float(math.floor(self._available)),
            "restoreRate": self.restore_rate,
        }


def actual_query_cost(schema: GraphQLSchema, operation: OperationDefinitionNode,
                      fragments: Mapping[str, FragmentDefinitionNode], variables: Mapping[str, Any],
                      data: Mapping[str, Any] | None) -> int:
    """What the answered query really cost: the requested rules applied to what came back (a
    connection costs 2 + its returned nodes, an object that came back null nothing), as Shopify
    refunds the difference between the requested and the actual cost."""
    if operation.operation == OperationType.MUTATION:
        return query_cost(schema, operation, fragments, variables)
    return _actual(schema, schema.query_type, operation.selection_set, fragments, variables, data)


def _actual(schema: GraphQLSchema, parent: Any, selection_set: SelectionSetNode | None,
            fragments: Mapping[str, FragmentDefinitionNode], variables: Mapping[str, Any],
            value: Mapping[str, Any] | None) -> int:
    if selection_set is None or not isinstance(value, Mapping):
        return 0
    total = 0
    for selection in selection_set.selections:
        if isinstance(selection, (InlineFragmentNode, FragmentSpreadNode)):
            name, inner = _fragment(selection, parent, fragments)
            # Only the fragment of the object's own type came back: another type's keys are absent.
            total += _actual(schema, schema.get_type(name), inner, fragments, variables, value)
            continue
        if not isinstance(selection, FieldNode) or selection.name.value.startswith("__"):
            continue
        key = selection.alias.value if selection.alias else selection.name.value
        if key not in value or selection.name.value not in getattr(parent, "fields", {}):
            continue
        field_type = parent.fields[selection.name.value].type
        named = get_named_type(field_type)
        if is_leaf_type(named):
            continue
        answer = value[key]
        if named.name.endswith("Connection") and "edges" in getattr(named, "fields", {}):
            total += 2 + _connection_actual(schema, named, selection.selection_set, fragments, variables, answer)
        elif isinstance(answer, list):
            if _ids(selection, variables) is None:  # a plain list is priced as one object
                answer = answer[:1]
            total += sum(1 + _actual(schema, named, selection.selection_set, fragments, variables, item)
                         for item in answer if item is not None)
        elif answer is not None:
            total += 1 + _actual(schema, named, selection.selection_set, fragments, variables, answer)
    return total


def _connection_actual(schema: GraphQLSchema, connection: Any, selection_set: SelectionSetNode | None,
                       fragments: Mapping[str, FragmentDefinitionNode], variables: Mapping[str, Any],
                       answer: Any) -> int:
    if selection_set is None or not isinstance(answer, Mapping):
        return 0
    total = 0
    for selection in selection_set.selections:
        if not isinstance(selection, FieldNode):
            continue
        key = selection.alias.value if selection.alias else selection.name.value
        items = answer.get(key)
        if not isinstance(items, list):
            continue
        if selection.name.value == "nodes":
            node_type = get_named_type(connection.fields["nodes"].type)
            total += sum(1 + _actual(schema, node_type, selection.selection_set, fragments, variables, node)
                         for node in items if node is not None)
        elif selection.name.value == "edges":
            edge = get_named_type(connection.fields["edges"].type)
            total += sum(max(1, _actual(schema, edge, selection.selection_set, fragments, variables, item))
                         for item in items if item is not None)
    return total
