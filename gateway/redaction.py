"""Secret inputs never leave in an error or a log line.

An input field is secret when its Strawberry field carries `metadata={"secret": True}` (the Admin API
access token of `enableShopifySync`). graphql-core echoes invalid input in its messages ("…to include
required field 'identifier', found: {…, accessToken: 'shpat_…'}", "String cannot represent a non
string value: shpat_…"), so every error and every log line of a request is passed through `redact`
with the secrets that request carried: whatever it sent at a secret field, at a field the input type
does not know (a misspelt secret), or in place of a secret-holding input object — in variables and in
literals alike, in each form graphql-core may print it (repr, JSON and GraphQL escapes, truncated).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from graphql import (
    ArgumentNode,
    DocumentNode,
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLSchema,
    ListTypeNode,
    ListValueNode,
    NamedTypeNode,
    NonNullTypeNode,
    ObjectFieldNode,
    ObjectValueNode,
    OperationDefinitionNode,
    TypeInfo,
    TypeInfoVisitor,
    TypeNode,
    ValueNode,
    VariableNode,
    Visitor,
    get_named_type,
    visit,
)
from graphql.language.print_string import print_string
from graphql.pyutils import inspect

SECRET = "secret"
REDACTED = "[REDACTED]"
# Shorter values are not worth hiding (no credential is that short) and would garble messages.
MIN_SECRET_LENGTH = 4
# graphql-core's `inspect` keeps the head and the tail of a long string around "...".
MIN_PIECE_LENGTH = 8
# Shopify's access tokens and secrets by their prefixes: hidden wherever they appear in a request,
# even pasted into the wrong field or into a document that does not parse.
SHOPIFY_SECRET = re.compile(r"shp(?:at|ca|pa|ss|tka)_[A-Za-z0-9_-]+")


@dataclass(frozen=True, slots=True)
class SecretInputs:
    """The schema's input types that hold a secret, directly or in a nested input object."""

    secret_fields: Mapping[str, frozenset[str]]  # input type name → its secret field names
    holders: frozenset[str]  # input type names holding a secret somewhere
    names: frozenset[str]  # every secret field name, for inputs whose type is unknown

    @classmethod
    def of(cls, schema: GraphQLSchema) -> SecretInputs:
        inputs = [t for t in schema.type_map.values() if isinstance(t, GraphQLInputObjectType)]
        secret_fields = {
            t.name: frozenset(name for name, f in t.fields.items() if _is_secret(f.extensions))
            for t in inputs
        }
        holders = {name for name, fields in secret_fields.items() if fields}
        changed = True
        while changed:  # a type holding a holder holds a secret too
            changed = False
            for t in inputs:
                if t.name not in holders and any(
                    get_named_type(f.type).name in holders for f in t.fields.values()
                ):
                    holders.add(t.name)
                    changed = True
        names = frozenset(n for fields in secret_fields.values() for n in fields)
        return cls({k: v for k, v in secret_fields.items() if v}, frozenset(holders), names)

    def holds_secret(self, type_: GraphQLInputType | None) -> bool:
        return type_ is not None and get_named_type(type_).name in self.holders


def _is_secret(extensions: Mapping[str, object] | None) -> bool:
    definition = (extensions or {}).get("strawberry-definition")
    metadata = getattr(definition, "metadata", None) or {}
    return bool(metadata.get(SECRET))


def _leaves(value: object) -> Iterator[str]:
    """Every scalar (and key) inside a variable value, as text."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield str(key)
            yield from _leaves(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _leaves(item)
    elif isinstance(value, (str, int, float)) and not isinstance(value, bool):
        yield str(value)


def _literal_leaves(node: ValueNode) -> Iterator[str]:
    """Every scalar (and object field name) inside a literal, as text."""
    if isinstance(node, ListValueNode):
        for item in node.values:
            yield from _literal_leaves(item)
    elif isinstance(node, ObjectValueNode):
        for field in node.fields:
            yield field.name.value
            yield from _literal_leaves(field.value)
    elif not isinstance(node, VariableNode):
        value = getattr(node, "value", None)
        if isinstance(value, str):
            yield value
    if node.loc is not None:  # the literal as written, e.g. an unquoted or malformed token
        yield node.loc.source.body[node.loc.start:node.loc.end]


def _not_a_member(value: object, type_: GraphQLInputType) -> bool:
    """True for a value an enum field does not know: possibly a secret pasted in the wrong field."""
    named = get_named_type(type_)
    return isinstance(named, GraphQLEnumType) and not (isinstance(value, str) and value in named.values)


def _named_type_name(node: TypeNode) -> str:
    while isinstance(node, (NonNullTypeNode, ListTypeNode)):
        node = node.type
    assert isinstance(node, NamedTypeNode)
    return node.name.value


class _Collector:
    def __init__(self, schema: GraphQLSchema, inputs: SecretInputs) -> None:
        self.schema = schema
        self.inputs = inputs
        self.found: list[str] = []

    def variable(self, value: object, type_: GraphQLInputType) -> None:
        """Collect what `value`, sent for a secret-holding `type_`, carries at secret (or unknown)
        fields; a value of the wrong shape counts whole."""
        if isinstance(type_, GraphQLNonNull):
            self.variable(value, type_.of_type)
            return
        if isinstance(type_, GraphQLList):
            for item in value if isinstance(value, list) else [value]:
                self.variable(item, type_.of_type)
            return
        if not isinstance(type_, GraphQLInputObjectType) or type_.name not in self.inputs.holders:
            return
        if not isinstance(value, Mapping):
            self.found.extend(_leaves(value))
            return
        secret = self.inputs.secret_fields.get(type_.name, frozenset())
        for key, item in value.items():
            field = type_.fields.get(key)
            if field is None or key in secret or _not_a_member(item, field.type):
                self.found.extend(_leaves(item))
            elif self.inputs.holds_secret(field.type):
                self.variable(item, field.type)

    def by_name(self, value: object) -> None:
        """Values under a secret field's name anywhere (variables the document does not declare)."""
        if isinstance(value, Mapping):
            for key, item in value.items():
                if key in self.inputs.names:
                    self.found.extend(_leaves(item))
                else:
                    self.by_name(item)
        elif isinstance(value, list):
            for item in value:
                self.by_name(item)


class _LiteralSecrets(Visitor):
    """Collects literals written at secret fields, at unknown fields of secret-holding inputs, and
    in place of a secret-holding input object."""

    def __init__(self, inputs: SecretInputs, type_info: TypeInfo, found: list[str]) -> None:
        super().__init__()
        self.inputs = inputs
        self.type_info = type_info
        self.found = found

    def enter_object_field(self, node: ObjectFieldNode, *_: object) -> None:
        parent = self.type_info.get_parent_input_type()
        name = node.name.value
        named = get_named_type(parent) if parent is not None else None
        if isinstance(named, GraphQLInputObjectType) and named.name in self.inputs.holders:
            field = named.fields.get(name)
            value = getattr(node.value, "value", None)
            if (
                field is None
                or name in self.inputs.secret_fields.get(named.name, frozenset())
                or (not isinstance(node.value, VariableNode) and _not_a_member(value, field.type))
            ):
                self.found.extend(_literal_leaves(node.value))
        elif name in self.inputs.names:
            self.found.extend(_literal_leaves(node.value))

    def enter_argument(self, node: ArgumentNode, *_: object) -> None:
        if self.inputs.holds_secret(self.type_info.get_input_type()) and not isinstance(
            node.value, (ObjectValueNode, VariableNode)
        ):
            self.found.extend(_literal_leaves(node.value))


def request_secrets(
    schema: GraphQLSchema,
    inputs: SecretInputs,
    query: str | None,
    document: DocumentNode | None,
    variables: Mapping[str, object] | None,
) -> frozenset[str]:
    """The texts to hide from every error and log line of one request."""
    collector = _Collector(schema, inputs)
    if query:
        collector.found.extend(SHOPIFY_SECRET.findall(query))
    if variables:
        collector.found.extend(m for leaf in _leaves(variables) for m in SHOPIFY_SECRET.findall(leaf))
        collector.by_name(variables)
    if document is not None:
        for definition in document.definitions:
            if not isinstance(definition, OperationDefinitionNode) or not variables:
                continue
            for var in definition.variable_definitions or ():
                name = var.variable.name.value
                type_ = schema.get_type(_named_type_name(var.type))
                if name in variables and isinstance(type_, GraphQLInputObjectType):
                    collector.variable(variables[name], type_)
        type_info = TypeInfo(schema)
        visit(document, TypeInfoVisitor(type_info, _LiteralSecrets(inputs, type_info, collector.found)))
    return frozenset(form for text in collector.found for form in _printed_forms(text))


def _printed_forms(text: str) -> Iterator[str]:
    """`text` as messages may show it: raw, with repr, JSON or GraphQL escapes, or truncated by
    graphql-core's `inspect` (the head and the tail around "...")."""
    if len(text) < MIN_SECRET_LENGTH:
        return
    yield text
    yield repr(text)[1:-1]
    yield json.dumps(text)[1:-1]
    yield json.dumps(text, ensure_ascii=False)[1:-1]
    yield print_string(text)[1:-1]
    shown = inspect(text)
    if shown != repr(text):
        for piece in shown.strip("'\"").split("..."):
            if len(piece) >= MIN_PIECE_LENGTH:
                yield piece


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every occurrence of each secret replaced by [REDACTED] (longest first)."""
    for secret in sorted(set(secrets), key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text
