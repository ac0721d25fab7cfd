"""Execution of validated documents over the emulated shop.

A selection set is compiled once into a `Plan`: per runtime type, a tuple of `(response key, fn)`
where `fn(obj)` returns the final JSON value (nested objects are closures over sub-plans). A bulk
export compiles the inner query once and runs the plan over every product, so the per-object cost is
one call per selected field. Compilation refuses, before anything runs (so a mutation never half
happens), any field or argument the emulator does not implement: `Unsupported` names it.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    SelectionSetNode,
    get_named_type,
    is_abstract_type,
    is_leaf_type,
    is_list_type,
    is_non_null_type,
)
from graphql.execution.values import get_argument_values

from .errors import RequestErrors, Unsupported
from .errors import graphql_error as error

PAGINATION_ARGS = frozenset({"first", "after", "last", "before"})
MAX_PAGE_SIZE = 250
_GID_ARG = re.compile(r"^gid://shopify/[A-Za-z]+/\d+(\?.*)?$")


@dataclass(frozen=True)
class FieldSpec:
    """How the emulator resolves one field: `make(args, ctx)` returns the `fn(obj)` used per object.

    `args`: the arguments honoured (any other argument given in a document is refused).
    `handles_after`: a connection whose resolver starts after `args["after_id"]` itself.
    """

    make: Callable[[dict[str, Any], Any], Callable[[Any], Any]]
    args: frozenset[str] = frozenset()
    handles_after: bool = False


@dataclass
class ChildConnection:
    """A connection selected inside a bulk node: its nodes become lines of their own."""

    nodes: Callable[[Any], Iterable[Any]]
    plan: Plan
    path: int


@dataclass
class Plan:
    steps: dict[str, tuple[tuple[str, Callable[[Any], Any]], ...]] = field(default_factory=dict)
    children: dict[str, tuple[ChildConnection, ...]] = field(default_factory=dict)


def render(obj: Any, plan: Plan) -> dict[str, Any]:
    return {key: fn(obj) for key, fn in plan.steps[obj.TYPENAME]}


def numeric_id(obj: Any) -> int:
    number = getattr(obj, "number", None)
    return number if number is not None else obj.id


def encode_cursor(obj: Any) -> str:
    number = numeric_id(obj)
    return base64.b64encode(orjson.dumps({"last_id": number, "last_value": str(number)})).decode()


def decode_cursor(cursor: str) -> int:
    try:
        return int(orjson.loads(base64.b64decode(cursor, validate=True))["last_id"])
    except (ValueError, KeyError, TypeError) as exc:  # binascii and orjson errors are ValueErrors
        raise RequestErrors([error(f"Invalid cursor for current pagination sort: {cursor!r}",
                                   code="INVALID_CURSOR")]) from exc


class Page:
    """A page of a connection, as the Connection/Edge/PageInfo resolvers see it."""

    __slots__ = ("TYPENAME", "edge_type", "items", "has_next", "has_previous")

    def __init__(self, typename: str, items: list[Any], has_next: bool, has_previous: bool) -> None:
        self.TYPENAME = typename
        self.edge_type = typename[: -len("Connection")] + "Edge"
        self.items, self.has_next, self.has_previous = items, has_next, has_previous


class PageInfo:
    __slots__ = ("page",)
    TYPENAME = "PageInfo"

    def __init__(self, page: Page) -> None:
        self.page = page


class Edge:
    __slots__ = ("TYPENAME", "node")

    def __init__(self, typename: str, node: Any) -> None:
        self.TYPENAME, self.node = typename, node


class Record:
    """A plain object of a type the emulator serves from a dict (payloads, user errors, counts...)."""

    __slots__ = ("TYPENAME", "data")

    def __init__(self, typename: str, **data: Any) -> None:
        self.TYPENAME, self.data = typename, data


def is_connection(named: Any) -> bool:
    return isinstance(named, GraphQLObjectType) and named.name.endswith("Connection") and "edges" in named.fields


class Compiler:
    """Compiles selection sets of one operation (`bulk`: the inner query of a bulk operation)."""

    def __init__(self, schema: GraphQLSchema, tables: Callable[[str], dict[str, FieldSpec] | None],
                 fragments: Mapping[str, FragmentDefinitionNode], variables: Any, ctx: Any, *, bulk: bool) -> None:
        self.schema, self.tables, self.fragments = schema, tables, fragments
        self.variables, self.ctx, self.bulk = variables, ctx, bulk
        self._next_path = 0

    def plan(self, gql_type: Any, selection_sets: list[SelectionSetNode], *, bulk_node: bool = False) -> Plan:
        plan = Plan()
        for runtime in self._runtime_types(gql_type):
            steps: list[tuple[str, Callable[[Any], Any]]] = []
            children: list[ChildConnection] = []
            table = self.tables(runtime.name) or {}
            for key, nodes in self._collect(runtime, selection_sets).items():
                name = nodes[0].name.value
                if name == "__typename":
                    steps.append((key, lambda _o, t=runtime.name: t))
                    continue
                spec = table.get(name)
                if spec is None:
                    raise Unsupported(f"the field `{runtime.name}.{name}`", nodes[0])
                field_def = runtime.fields[name]
                named = get_named_type(field_def.type)
                args = self._arguments(runtime.name, name, field_def, nodes[0], spec, connection=is_connection(named))
                if is_connection(named) and self.bulk:
                    if not bulk_node:
                        raise Unsupported(f"a connection (`{name}`) inside a nested object in a bulk query", nodes[0])
                    path = self._next_path
                    self._next_path += 1
                    node_type, node_sets = self._bulk_node_selections(named, nodes)
                    children.append(ChildConnection(spec.make(args, self.ctx),
                                                    self.plan(node_type, node_sets, bulk_node=True), path))
                elif is_connection(named):
                    steps.append((key, self._paged(runtime.name, name, named, nodes, spec, args)))
                else:
                    steps.append((key, self._value(field_def.type, spec.make(args, self.ctx), nodes)))
            plan.steps[runtime.name] = tuple(steps)
            plan.children[runtime.name] = tuple(children)
        return plan

    # -- helpers -------------------------------------------------------------------------------------

    def _runtime_types(self, gql_type: Any) -> list[Any]:
        if not is_abstract_type(gql_type):
            return [gql_type]
        return [t for t in self.schema.get_possible_types(gql_type) if self.tables(t.name) is not None]

    def _collect(self, runtime: Any, selection_sets: list[SelectionSetNode]) -> dict[str, list[FieldNode]]:
        fields: dict[str, list[FieldNode]] = {}

        def visit(selection_set: SelectionSetNode | None) -> None:
            for selection in selection_set.selections if selection_set else ():
                if not self._included(selection):
                    continue
                if isinstance(selection, FieldNode):
                    key = selection.alias.value if selection.alias else selection.name.value
                    fields.setdefault(key, []).append(selection)
                elif isinstance(selection, InlineFragmentNode):
                    if self._applies(selection.type_condition, runtime):
                        visit(selection.selection_set)
                elif isinstance(selection, FragmentSpreadNode):
                    fragment = self.fragments[selection.name.value]
                    if self._applies(fragment.type_condition, runtime):
                        visit(fragment.selection_set)

        for selection_set in selection_sets:
            visit(selection_set)
        return fields

    def _applies(self, condition: Any, runtime: Any) -> bool:
        if condition is None or condition.name.value == runtime.name:
            return True
        target = self.schema.get_type(condition.name.value)
        return is_abstract_type(target) and self.schema.is_sub_type(target, runtime)

    def _included(self, selection: Any) -> bool:
        for directive in selection.directives or ():
            name = directive.name.value
            if name in ("skip", "include"):
                value = get_argument_values(self.schema.get_directive(name), directive, self.variables)["if"]
                if value == (name == "skip"):
                    return False
        return True

    def _arguments(self, type_name: str, field_name: str, field_def: Any, node: FieldNode, spec: FieldSpec,
                   *, connection: bool) -> dict[str, Any]:
        values = get_argument_values(field_def, node, self.variables)
        given = {a.name.value for a in node.arguments or () if values.get(a.name.value) is not None}
        allowed = spec.args | (PAGINATION_ARGS if connection else frozenset())
        for name in given - allowed:
            raise Unsupported(f"the argument `{name}` of `{type_name}.{field_name}`", node)
        for name in given:
            self._check_ids(field_def.args[name].type, values[name], name, node)
        return {k: v for k, v in values.items() if k in given or k in spec.args}

    @staticmethod
    def _check_ids(arg_type: Any, value: Any, name: str, node: FieldNode) -> None:
        if get_named_type(arg_type).name != "ID":
            return
        for item in value if isinstance(value, list) else [value]:
            if not isinstance(item, str) or not _GID_ARG.match(item):
                raise RequestErrors([error(f"Invalid global id '{item}'", [node.loc.source.get_location(node.loc.start)]
                                           if node.loc else None, path=[node.name.value, name],
                                           code="argumentLiteralsIncompatible", typeName="CoercionError")])

    def _value(self, field_type: Any, getter: Callable[[Any], Any], nodes: list[FieldNode]) -> Callable[[Any], Any]:
        inner = field_type.of_type if is_non_null_type(field_type) else field_type
        named = get_named_type(field_type)
        if is_leaf_type(named):
            return getter
        sub = self.plan(named, [n.selection_set for n in nodes])
        if is_list_type(inner):
            return lambda o: [None if x is None else render(x, sub) for x in getter(o)]

        def render_object(o: Any) -> Any:
            value = getter(o)
            return None if value is None else render(value, sub)

        return render_object

    def _bulk_node_selections(self, connection: Any, nodes: list[FieldNode]) -> tuple[Any, list[SelectionSetNode]]:
        node_type = get_named_type(connection.fields["edges"].type).fields["node"].type
        sets: list[SelectionSetNode] = []
        for selected in self._collect(connection, [n.selection_set for n in nodes]).values():
            name = selected[0].name.value
            if name == "nodes":
                sets.extend(s.selection_set for s in selected)
            elif name == "edges":
                edge_type = get_named_type(connection.fields["edges"].type)
                for edge_nodes in self._collect(edge_type, [s.selection_set for s in selected]).values():
                    if edge_nodes[0].name.value != "node":
                        raise Unsupported(f"`{edge_type.name}.{edge_nodes[0].name.value}` in a bulk query", edge_nodes[0])
                    sets.extend(n.selection_set for n in edge_nodes)
            else:
                raise Unsupported(f"`{connection.name}.{name}` in a bulk query (select `edges {{ node }}` or `nodes`)",
                                  selected[0])
        return get_named_type(node_type), sets

    def _paged(self, type_name: str, field_name: str, connection: Any, nodes: list[FieldNode], spec: FieldSpec,
               args: dict[str, Any]) -> Callable[[Any], Any]:
        node = nodes[0]
        if args.get("last") is not None or args.get("before") is not None:
            raise Unsupported(f"backward pagination (`last`/`before`) on `{type_name}.{field_name}`", node)
        first = args.get("first")
        if first is None:
            raise RequestErrors([error("you must provide one of first or last", path=[field_name],
                                       code="BAD_REQUEST")])
        if not 0 <= first <= MAX_PAGE_SIZE:
            raise RequestErrors([error(f"The value of first must be between 0 and {MAX_PAGE_SIZE}", path=[field_name],
                                       code="BAD_REQUEST")])
        after_id = decode_cursor(args["after"]) if args.get("after") else None
        resolver_args = dict(args, after_id=after_id if spec.handles_after else None)
        items_of = spec.make(resolver_args, self.ctx)
        conn_plan = self.plan(connection, [n.selection_set for n in nodes])
        skip_to = None if spec.handles_after else after_id

        def page(o: Any) -> Any:
            iterator: Iterator[Any] = iter(items_of(o))
            if skip_to is not None:
                for item in iterator:
                    if numeric_id(item) == skip_to:
                        break
            items = []
            for item in iterator:
                if len(items) == first:
                    return render(Page(connection.name, items, True, after_id is not None), conn_plan)
                items.append(item)
            return render(Page(connection.name, items, False, after_id is not None), conn_plan)

        return page


def generic_table(type_name: str) -> dict[str, FieldSpec] | None:
    """Fields of every `*Connection`, `*Edge` and `PageInfo` type (the regular-query page shapes)."""
    if type_name.endswith("Connection"):
        return CONNECTION_FIELDS
    if type_name.endswith("Edge"):
        return EDGE_FIELDS
    if type_name == "PageInfo":
        return PAGE_INFO_FIELDS
    return None


def _const(fn: Callable[[Any], Any]) -> FieldSpec:
    return FieldSpec(lambda _args, _ctx: fn)


CONNECTION_FIELDS = {
    "edges": _const(lambda p: [Edge(p.edge_type, item) for item in p.items]),
    "nodes": _const(lambda p: p.items),
    "pageInfo": _const(lambda p: PageInfo(p)),
}
EDGE_FIELDS = {"node": _const(lambda e: e.node), "cursor": _const(lambda e: encode_cursor(e.node))}
PAGE_INFO_FIELDS = {
    "hasNextPage": _const(lambda i: i.page.has_next),
    "hasPreviousPage": _const(lambda i: i.page.has_previous),
    "startCursor": _const(lambda i: encode_cursor(i.page.items[0]) if i.page.items else None),
    "endCursor": _const(lambda i: encode_cursor(i.page.items[-1]) if i.page.items else None),
}
