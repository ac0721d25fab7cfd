"""Parsed and checked documents, once per distinct query text: a frontend sends the same few query
texts thousands of times, and parsing, the document limits and graphql-core's validation cost
several times what executing a small query does.

`DocumentCache` is a bounded LRU keyed by the query text (and by the validator and its rules, so a
different rule set never reuses results it did not compute). Only documents that parsed are kept;
a text over the token limit or with a syntax error is parsed again each time (the token limit
bounds that work). The limits of `gateway.graphql.limits` run before graphql-core's rules, as
before, and their verdict is cached with the rules' verdict: a refused document stays refused.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import strawberry.schema.schema as strawberry_schema
from graphql import DocumentNode, GraphQLError
from strawberry.extensions import SchemaExtension

from gateway.graphql.limits import QueryLimits, check_document

DEFAULT_DOCUMENTS = 512  # distinct query texts kept (a few KB each: the parsed document and its plans)


@dataclass(slots=True)
class Prepared:
    """One query text's document and what the limits and rules said of it (`errors` empty: valid).
    `plans` is for the read fast path (`gateway.graphql.fastpath`), per operation name."""

    document: DocumentNode
    errors: list[GraphQLError]
    plans: dict[str | None, Any] = field(default_factory=dict)


_Key = tuple[str, object, tuple[object, ...]]


class DocumentCache:
    """Query text → `Prepared`, least recently used first out."""

    def __init__(self, maxsize: int = DEFAULT_DOCUMENTS) -> None:
        self.maxsize = maxsize
        self._entries: OrderedDict[_Key, Prepared] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def key(query: str, rules: tuple[object, ...]) -> _Key:
        return (query, strawberry_schema.validate_document, rules)

    def get(self, key: _Key) -> Prepared | None:
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
        return found

    def put(self, key: _Key, prepared: Prepared) -> None:
        self._entries[key] = prepared
        self._entries.move_to_end(key)
        while len(self._entries) > self.maxsize:
            self._entries.popitem(last=False)

    def valid(self, query: str, rules: tuple[object, ...]) -> Prepared | None:
        """The cached document of `query` if it passed the limits and the rules."""
        found = self.get(self.key(query, rules))
        return found if found is not None and not found.errors else None


def cached_documents(limits: QueryLimits, cache: DocumentCache) -> type[SchemaExtension]:
    """The extension that serves parsed documents from `cache` and checks each new one once: the
    document limits first (over a limit, graphql-core's rules never run on it), then the rules."""

    class CachedDocuments(SchemaExtension):
        def on_parse(self) -> Iterator[None]:
            context = self.execution_context
            if context.query is not None and context.graphql_document is None:
                found = cache.get(cache.key(context.query, tuple(context.validation_rules)))
                if found is not None:
                    context.graphql_document = found.document
            yield

        def on_validate(self) -> Iterator[None]:
            context = self.execution_context
            document = context.graphql_document
            if document is not None and context.pre_execution_errors is None and context.query is not None:
                rules = tuple(context.validation_rules)
                key = cache.key(context.query, rules)
                found = cache.get(key)
                if found is None or found.document is not document:
                    found = Prepared(document, _check(document, limits, context.schema._schema, rules))
                    cache.put(key, found)
                context.pre_execution_errors = list(found.errors)  # empty: valid, Strawberry skips its own run
            yield

    return CachedDocuments


def _check(document: DocumentNode, limits: QueryLimits, schema: Any, rules: tuple[Any, ...]) -> list[GraphQLError]:
    refused = check_document(document, limits)
    if refused:
        return refused
    validate: Callable[..., list[GraphQLError]] = strawberry_schema.validate_document
    return list(validate(schema, document, rules)) if rules else []
