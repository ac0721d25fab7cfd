"""Parse and validate documents against the stored 2026-01 schema; report errors as Shopify does.

Shopify runs graphql-ruby: its validation messages differ from graphql-core's. The common ones are
translated (message and `extensions.code` as Shopify writes them); the rest keep graphql-core's text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from graphql import (
    DocumentNode,
    FragmentDefinitionNode,
    GraphQLError,
    OperationDefinitionNode,
    parse,
    print_ast,
    validate,
)
from graphql.execution.values import get_variable_values

from bulk.shopify.schema import load_admin_schema

from .errors import RequestErrors
from .errors import graphql_error as error

_TRANSLATIONS: list[tuple[re.Pattern[str], Any]] = [
    (re.compile(r"^Cannot query field '(\w+)' on type '(\w+)'\."),
     lambda m: (f"Field '{m[1]}' doesn't exist on type '{m[2]}'",
                {"code": "undefinedField", "typeName": m[2], "fieldName": m[1]})),
    (re.compile(r"^Argument '\w+\.(\w+)\((\w+):\)' of type '.+' is required, but it was not provided\."),
     lambda m: (f"Field '{m[1]}' is missing required arguments: {m[2]}",
                {"code": "missingRequiredArguments", "className": "Field", "name": m[1], "arguments": m[2]})),
    (re.compile(r"^Field '(\w+)' of type '(.+)' must have a selection of subfields\."),
     lambda m: (f"Field must have selections (field '{m[1]}' returns {m[2].rstrip('!')} but has no selections. "
                f"Did you mean '{m[1]} {{ ... }}'?)",
                {"code": "selectionMismatch", "nodeName": f"field '{m[1]}'", "typeName": m[2].rstrip("!")})),
    (re.compile(r"^Field '(\w+)' must not have a selection since type '(.+)' has no subfields\."),
     lambda m: (f"Selections can't be made on scalars (field '{m[1]}' returns {m[2].rstrip('!')} but has selections)",
                {"code": "selectionMismatch", "nodeName": f"field '{m[1]}'", "typeName": m[2].rstrip("!")})),
    (re.compile(r"^Unknown argument '(\w+)' on field '\w+\.(\w+)'\."),
     lambda m: (f"Field '{m[2]}' doesn't accept argument '{m[1]}'",
                {"code": "argumentNotAccepted", "name": m[2], "typeName": "Field", "argumentName": m[1]})),
    (re.compile(r"^Fragment cannot be spread here as objects of type '(\w+)' can never be of type '(\w+)'\."),
     lambda m: (f"Fragment on {m[2]} can't be spread inside {m[1]}",
                {"code": "cannotSpreadFragment", "typeName": m[2], "fragmentName": "unknown", "parentName": m[1]})),
    (re.compile(r"^Unknown fragment '(\w+)'\."),
     lambda m: (f"Fragment {m[1]} was used, but not defined", {"code": "useAndDefineFragment", "fragmentName": m[1]})),
    (re.compile(r"^Variable '\$(\w+)' is never used(?: in operation '(\w+)')?\."),
     lambda m: (f"Variable ${m[1]} is declared by {m[2] or 'anonymous query'} but not used",
                {"code": "variableNotUsed", "variableName": m[1]})),
    (re.compile(r"^Variable '\$(\w+)' is not defined(?: by operation '(\w+)')?\."),
     lambda m: (f"Variable ${m[1]} is used by {m[2] or 'anonymous query'} but not declared",
                {"code": "variableNotDefined", "variableName": m[1]})),
    (re.compile(r"^Unknown type '(\w+)'\."),
     lambda m: (f"No such type {m[1]}, so it can't be a fragment condition or variable type",
                {"code": "undefinedType", "typeName": m[1]})),
]


def shopify_error(exc: GraphQLError) -> dict[str, Any]:
    """A graphql-core validation/syntax error, worded as Shopify (graphql-ruby) words it."""
    message = exc.message
    if message.startswith("Syntax Error: ") and exc.locations:
        loc = exc.locations[0]
        return error(f"syntax error, {message[len('Syntax Error: '):]} at [{loc.line}, {loc.column}]", exc.locations)
    for pattern, translate in _TRANSLATIONS:
        match = pattern.match(message)
        if match:
            text, extensions = translate(match)
            return error(text, exc.locations, **extensions)
    return error(message, exc.locations)


@lru_cache(maxsize=512)
def parse_and_validate(document: str) -> tuple[DocumentNode | None, tuple[dict[str, Any], ...]]:
    """The parsed document and its Shopify-shaped errors (cached by document text)."""
    try:
        ast = parse(document)
    except GraphQLError as exc:
        return None, (shopify_error(exc),)
    errors = validate(load_admin_schema(), ast)
    return (None, tuple(shopify_error(e) for e in errors)) if errors else (ast, ())


@dataclass
class Prepared:
    document: DocumentNode
    operation: OperationDefinitionNode
    fragments: dict[str, FragmentDefinitionNode]
    variables: Any  # graphql-core VariableValues (has .coerced)

    @property
    def coerced(self) -> dict[str, Any]:
        return dict(self.variables.coerced)


def prepare(document: str, variables: dict[str, Any] | None, operation_name: str | None) -> Prepared:
    """Validate, pick the operation and coerce variables; RequestErrors when Shopify would refuse."""
    ast, errors = parse_and_validate(document)
    if ast is None:
        raise RequestErrors(list(errors))
    operations = [d for d in ast.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name:
        chosen = [op for op in operations if op.name and op.name.value == operation_name]
        if not chosen:
            raise RequestErrors([error(f'No operation named "{operation_name}"')])
        operation = chosen[0]
    elif len(operations) == 1:
        operation = operations[0]
    else:
        raise RequestErrors([error("An operation name is required")])
    inputs = variables or {}
    coerced = get_variable_values(load_admin_schema(), operation.variable_definitions or (), inputs)
    if isinstance(coerced, list):
        raise RequestErrors([_variable_error(operation, e, inputs) for e in coerced])
    fragments = {d.name.value: d for d in ast.definitions if isinstance(d, FragmentDefinitionNode)}
    return Prepared(ast, operation, fragments, coerced)


def _variable_error(operation: OperationDefinitionNode, exc: GraphQLError, inputs: dict[str, Any]) -> dict[str, Any]:
    match = re.match(r"^Variable '\$(\w+)' (?:of (?:non-null |required )?type '[^']+' )?(?:has invalid value: |)(.*)$",
                     exc.message, re.S)
    if not match:
        return error(exc.message, exc.locations)
    name, explanation = match.group(1), match.group(2)
    type_text = next((print_ast(d.type) for d in operation.variable_definitions or () if d.variable.name.value == name), "?")
    if "was not provided" in explanation or "to be provided" in explanation:
        explanation = "Expected value to not be null"
    return error(f"Variable ${name} of type {type_text} was provided invalid value", exc.locations,
                 value=inputs.get(name), problems=[{"path": [], "explanation": explanation}])
