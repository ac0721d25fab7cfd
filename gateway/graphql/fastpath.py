"""Catalog reads without graphql-core's per-field machinery: the hot path of every frontend.

A 50-item page of 20 fields is about 1,100 fields; graphql-core resolves and completes each one
through Strawberry's wrappers (a few µs each), which cost more than the store's read and the JSON
encoding together. A *plan* is compiled once per valid document (after the limits and graphql-core's
rules accepted it, see `gateway.graphql.documents`) for queries that select only catalog reads:
`catalog(name:)` with `name`, `storeName`, `itemCount`, `storageBytes`, `item(id:)` and `items(...)`
(its connection, edges, page info and the 20 item fields), through fragments and with aliases and
`__typename`. Directives, other root fields, or anything else keep the document on the normal path.

A plan calls the resolvers' own functions (`gateway.graphql.types`: `items_page`, `catalog_info`,
`ITEM_VALUES`) and serialises leaves with the schema's scalars, so its answer is the normal path's.
Whatever goes wrong (a variable that does not coerce, a bad cursor, a store error, a null where
the schema says non-null) raises `Fallback`: the request then runs the normal path, which reports
the error as always. Reads have no side effects, so running one twice is safe.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import attrgetter, itemgetter
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    specified_rules,
)
from graphql.execution.values import VariableValues, get_argument_values, get_variable_values

from catalog_store.items import CATALOG_FIELDS
from catalog_store.items import CatalogItem as ItemRecord
from catalog_store.models import CatalogInfo
from gateway.graphql.context import Context
from gateway.graphql.documents import DocumentCache
from gateway.graphql.pagination import encode_cursor
from gateway.graphql.types import ITEM_CONVERSIONS, CatalogItemFilter, int32, items_page

# The fields a plan serves, per GraphQL type (everything else: no plan).
SERVED: dict[str, frozenset[str]] = {
    "Query": frozenset({"catalog"}),
    "Catalog": frozenset({"name", "storeName", "itemCount", "storageBytes", "items", "item"}),
    "CatalogItemConnection": frozenset({"edges", "pageInfo", "totalCount"}),
    "CatalogItemEdge": frozenset({"cursor", "node"}),
    "PageInfo": frozenset({"hasNextPage", "hasPreviousPage", "startCursor", "endCursor"}),
}
TYPENAME = "__typename"


class Fallback(Exception):
    """The plan cannot answer this request: run the normal path."""


@dataclass(slots=True)
class Selected:
    """One response key of a selection set: its field, its first node (arguments), its children."""

    key: str
    name: str
    node: FieldNode
    definition: GraphQLField | None  # None for __typename
    children: list[Selected] = field(default_factory=list)
    leaf: Callable[[Any], object] | None = None  # for CatalogItem fields: stored item -> JSON value
    shape: Callable[[ItemRecord], dict[str, Any]] | None = None  # for fields of type CatalogItem


@dataclass(slots=True)
class Plan:
    schema: GraphQLSchema
    operation: OperationDefinitionNode
    fields: list[Selected]
    python_names: dict[str, str]  # CatalogItemFilter: GraphQL field name -> Python name

    async def run(self, variables: dict[str, Any] | None, context: Context) -> dict[str, Any]:
        coerced = get_variable_values(self.schema, self.operation.variable_definitions or (), variables or {})
        if isinstance(coerced, list):
            raise Fallback
        data: dict[str, Any] = {}
        for selected in self.fields:
            if selected.definition is None:
                data[selected.key] = "Query"
                continue
            name = self._args(selected, coerced)["name"]
            info = await _catalog_info(context, name)
            data[selected.key] = None if info is None else await self._catalog(
                selected.children, info, coerced, context)
        return data

    def _args(self, selected: Selected, coerced: VariableValues) -> dict[str, Any]:
        assert selected.definition is not None
        return get_argument_values(selected.definition, selected.node, coerced)

    async def _catalog(self, fields: list[Selected], info: CatalogInfo, coerced: VariableValues,
                       context: Context) -> dict[str, Any]:
        name, store_name = info.name, info.store_name
        out: dict[str, Any] = {}
        for selected in fields:
            which = selected.name
            if which == TYPENAME:
                out[selected.key] = "Catalog"
            elif which == "name":
                out[selected.key] = name
            elif which == "storeName":
                out[selected.key] = store_name
            elif which == "itemCount":
                out[selected.key] = info.item_count
            elif which == "storageBytes":
                out[selected.key] = int32(info.storage_bytes)
            elif which == "item":
                found = await context.services.store.get_item(name, self._args(selected, coerced)["id"])
                out[selected.key] = None if found is None else selected.shape(found)  # type: ignore[misc]
            else:
                out[selected.key] = await self._items(selected, name, coerced, context)
        return out

    async def _items(self, selected: Selected, name: str, coerced: VariableValues, context: Context) -> dict[str, Any]:
        args = self._args(selected, coerced)
        given = args.get("filter")
        item_filter = None if given is None else CatalogItemFilter(
            **{self.python_names[k]: v for k, v in given.items()})
        page, after_id = await items_page(context, name, args.get("first"), args.get("after"), item_filter)
        items = page.items
        cursors = [encode_cursor(item.id) for item in items]
        out: dict[str, Any] = {}
        for part in selected.children:
            if part.name == TYPENAME:
                out[part.key] = "CatalogItemConnection"
            elif part.name == "totalCount":
                out[part.key] = page.total_count
            elif part.name == "pageInfo":
                values = {
                    "hasNextPage": page.has_next_page,
                    "hasPreviousPage": after_id is not None,
                    "startCursor": cursors[0] if cursors else None,
                    "endCursor": cursors[-1] if cursors else None,
                    TYPENAME: "PageInfo",
                }
                out[part.key] = {p.key: values[p.name] for p in part.children}
            else:
                out[part.key] = [_edge(part.children, item, cursor) for item, cursor in zip(items, cursors)]
        return out


async def _catalog_info(context: Context, name: str) -> CatalogInfo | None:
    """The catalog, read from the store once per request and name (a plan's one read needs no
    batching, and a DataLoader costs an event-loop turn); later reads in the request (`itemCount`,
    another alias) see the same value, as the loader's cache gives the normal path."""
    known = context.plan_catalogs
    if name not in known:
        known[name] = await context.services.store.get_catalog(name)
    return known[name]


def _edge(fields: list[Selected], item: ItemRecord, cursor: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for selected in fields:
        if selected.name == "cursor":
            out[selected.key] = cursor
        elif selected.name == "node":
            out[selected.key] = selected.shape(item)  # type: ignore[misc]
        else:
            out[selected.key] = "CatalogItemEdge"
    return out


def _shape(fields: list[Selected]) -> Callable[[ItemRecord], dict[str, Any]]:
    """The response object of one item for `fields`: the plain fields (strings, numbers, booleans
    the item holds as they are sent) in one `attrgetter` call, the others through their leaf."""
    keys = tuple(f.key for f in fields)
    attrs: list[str] = []
    specials: list[tuple[int, Callable[[Any], object]]] = []
    required: list[int] = []
    for position, selected in enumerate(fields):
        python = "id" if selected.definition is None else _python_name(selected.name)
        attrs.append(python)
        gtype = None if selected.definition is None else selected.definition.type
        inner = gtype.of_type if isinstance(gtype, GraphQLNonNull) else gtype
        if isinstance(inner, GraphQLScalarType) and inner.name in _PLAIN and python not in ITEM_CONVERSIONS:
            if isinstance(gtype, GraphQLNonNull):
                required.append(position)
        else:
            assert selected.leaf is not None
            specials.append((position, selected.leaf))
    get = attrgetter(*attrs)
    single = len(attrs) == 1
    nulls = itemgetter(*required) if len(required) > 1 else None  # one C call over the non-null fields
    token = next(_SHAPES)
    shaped = _SHAPED

    def shape(item: ItemRecord) -> dict[str, Any]:
        key = (token, id(item))
        hit = shaped.get(key)
        if hit is not None and hit[0] is item:
            return hit[1]
        values = [get(item)] if single else list(get(item))
        for position, leaf in specials:
            values[position] = leaf(item)
        if nulls is not None:
            if None in nulls(values):
                raise Fallback
        elif required and values[required[0]] is None:
            raise Fallback
        out = dict(zip(keys, values))
        if len(shaped) >= _SHAPED_MAX:
            shaped.clear()
        shaped[key] = (item, out)
        return out

    return shape


# Response objects of items, by shape and item: a catalog item is immutable (a frozen struct, replaced
# by a new object when it changes), so the same object always shapes the same; the entry holds the
# item, so its id is not reused while the entry lives. Responses only read these dicts (orjson).
# Bounded for the whole process: a frontend reads the same pages again and again.
_SHAPES = itertools.count()
_SHAPED: dict[tuple[int, int], tuple[ItemRecord, dict[str, Any]]] = {}
_SHAPED_MAX = 5_000  # a few pages of a few catalogs; ~3 KB each (item and dict)


_PLAIN = frozenset({"String", "ID", "Int", "Boolean"})


# -- compiling ------------------------------------------------------------------------------------


class _NoPlan(Exception):
    """The document selects something a plan does not serve."""


def compile_plan(schema: GraphQLSchema, document: DocumentNode, operation_name: str | None) -> Plan | None:
    """The plan of `operation_name` in a document the limits and rules accepted, or None."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    chosen = [o for o in operations if operation_name is None or (o.name is not None and o.name.value == operation_name)]
    if len(chosen) != 1 or chosen[0].operation is not OperationType.QUERY or (operation_name is None and len(operations) > 1):
        return None
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    query = schema.query_type
    assert query is not None
    filter_type = schema.get_type("CatalogItemFilter")
    python_names = {name: getattr(f, "out_name", None) or _python_name(name)
                    for name, f in getattr(filter_type, "fields", {}).items()}
    try:
        fields = _collect(schema, query, [chosen[0].selection_set], fragments)
    except _NoPlan:
        return None
    return Plan(schema, chosen[0], fields, python_names)


def _python_name(graphql_name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in graphql_name)


def _collect(schema: GraphQLSchema, parent: GraphQLObjectType, sets: list[SelectionSetNode],
             fragments: dict[str, FragmentDefinitionNode]) -> list[Selected]:
    """The merged fields of `sets` on `parent` (graphql-core's field collection, without directives)."""
    nodes: dict[str, list[FieldNode]] = {}
    for selection_set in sets:
        _gather(parent, selection_set, fragments, nodes, set())
    out: list[Selected] = []
    for key, same in nodes.items():
        name = same[0].name.value
        if name == TYPENAME:
            out.append(Selected(key, name, same[0], None, leaf=_constant(parent.name)))
            continue
        definition = parent.fields[name]
        selected = Selected(key, name, same[0], definition)
        inner = _named(definition.type)
        if parent.name == "CatalogItem":
            if _python_name(name) not in CATALOG_FIELDS:  # a field with a resolver of its own: not served
                raise _NoPlan
            selected.leaf = _leaf(definition.type, _python_name(name))
        elif isinstance(inner, GraphQLObjectType):
            if inner.name not in SERVED and inner.name != "CatalogItem":
                raise _NoPlan
            children = [n.selection_set for n in same if n.selection_set is not None]
            selected.children = _collect(schema, inner, children, fragments)
            if inner.name == "CatalogItem":
                selected.shape = _shape(selected.children)
        out.append(selected)
    return out


def _gather(parent: GraphQLObjectType, selection_set: SelectionSetNode, fragments: dict[str, FragmentDefinitionNode],
            nodes: dict[str, list[FieldNode]], spread: set[str]) -> None:
    served = SERVED.get(parent.name)
    for selection in selection_set.selections:
        if selection.directives:
            raise _NoPlan
        if isinstance(selection, FieldNode):
            name = selection.name.value
            if name != TYPENAME and (name not in parent.fields or (served is not None and name not in served)):
                raise _NoPlan
            nodes.setdefault((selection.alias or selection.name).value, []).append(selection)
        elif isinstance(selection, InlineFragmentNode):
            if selection.type_condition is not None and selection.type_condition.name.value != parent.name:
                raise _NoPlan
            _gather(parent, selection.selection_set, fragments, nodes, spread)
        elif isinstance(selection, FragmentSpreadNode):
            fragment = fragments.get(selection.name.value)
            if fragment is None or fragment.type_condition.name.value != parent.name or fragment.variable_definitions:
                raise _NoPlan
            if fragment.name.value in spread:  # graphql-core collects a fragment once per selection set
                continue
            spread.add(fragment.name.value)
            _gather(parent, fragment.selection_set, fragments, nodes, spread)
        else:
            raise _NoPlan


def _constant(value: str) -> Callable[[Any], object]:
    return lambda _item: value


def _named(gtype: GraphQLOutputType) -> Any:
    while isinstance(gtype, (GraphQLNonNull, GraphQLList)):
        gtype = gtype.of_type
    return gtype


def _leaf(gtype: GraphQLOutputType, attribute: str) -> Callable[[ItemRecord], object]:
    """The JSON value of one item field, as graphql-core completes it (Fallback on a null where the
    schema says non-null). Scalars converted from a stored string (money) are remembered per string:
    a catalog has far fewer distinct prices than items."""
    complete = _completer(gtype)
    get = attrgetter(attribute)
    convert = ITEM_CONVERSIONS.get(attribute)
    if convert is None:
        return lambda item: complete(get(item))
    if isinstance(gtype.of_type if isinstance(gtype, GraphQLNonNull) else gtype, GraphQLList):
        return lambda item: complete(None if (raw := get(item)) is None else convert(raw))
    known: dict[object, object] = {}

    def converted(item: ItemRecord) -> object:
        raw = get(item)
        found = known.get(raw, _MISSING)
        if found is _MISSING:
            found = complete(None if raw is None else convert(raw))
            if len(known) >= _REMEMBERED:
                known.clear()
            known[raw] = found
        return found

    return converted


_MISSING = object()
_REMEMBERED = 100_000  # distinct values remembered per field and plan


def _completer(gtype: GraphQLOutputType) -> Callable[[object], object]:
    if isinstance(gtype, GraphQLNonNull):
        inner = _completer(gtype.of_type)

        def non_null(value: object) -> object:
            result = inner(value)
            if result is None:
                raise Fallback
            return result

        return non_null
    if isinstance(gtype, GraphQLList):
        element = _completer(gtype.of_type)
        strings = _named(gtype.of_type).name in ("String", "ID")

        def complete_list(value: Any) -> object:
            if value is None:
                return None
            if strings and all(type(v) is str for v in value):
                return list(value)  # strings complete as themselves
            return [element(v) for v in value]

        return complete_list
    if not isinstance(gtype, GraphQLScalarType):
        raise _NoPlan
    serialize = gtype.serialize
    if gtype.name in ("String", "ID"):
        return lambda value: value if value is None or type(value) is str else serialize(value)
    return lambda value: None if value is None else serialize(value)


# -- the entry point ------------------------------------------------------------------------------

RULES = tuple(specified_rules)  # the rules Strawberry validates with (the schema adds none)


async def read_fast_path(
    schema: GraphQLSchema,
    documents: DocumentCache,
    query: str | None,
    variable_values: dict[str, Any] | None = None,
    context_value: Any = None,
    root_value: Any = None,
    operation_name: str | None = None,
    *args: Any,
    **kwargs: Any,
) -> dict[str, Any] | None:
    """The data of a catalog read answered by its plan, or None: run the normal path (which also
    makes the plan, once the document has been accepted there)."""
    if query is None or not isinstance(context_value, Context):
        return None
    prepared = documents.valid(query, RULES)
    if prepared is None:
        return None
    if operation_name not in prepared.plans:
        prepared.plans[operation_name] = compile_plan(schema, prepared.document, operation_name)
    plan: Plan | None = prepared.plans[operation_name]
    if plan is None:
        return None
    try:
        return await plan.run(variable_values, context_value)
    except Exception:
        return None


def has_read_plan(schema: Any, query: str, operation_name: str | None) -> bool:
    """True when `query` (already accepted) is a catalog read with a plan: its answer depends only on
    the store's catalogs and items (HTTP caching relies on that)."""
    documents = getattr(schema, "documents", None)
    if not isinstance(documents, DocumentCache):
        return False
    prepared = documents.valid(query, RULES)
    if prepared is None:
        return False
    if operation_name not in prepared.plans:
        prepared.plans[operation_name] = compile_plan(schema._schema, prepared.document, operation_name)
    return prepared.plans[operation_name] is not None
