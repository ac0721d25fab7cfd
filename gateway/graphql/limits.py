"""Limits on a GraphQL document, checked once it is parsed and before graphql-core validates it.

Strawberry's depth and alias limiters walk fragments again at every spread, so a 0.8 KB document of
fragments that each spread the next one twice costs 2^N: N=19 froze the event loop for 7.5 s, N=39
for ever. Here every fragment is summarised once (memoised) and a spread reuses the summary, so the
walk is linear in the document. The summaries bound what the document expands to: its depth, its
aliases, its fields (counted as often as they are spread) and the work of graphql-core's
overlapping-fields rule, which compares every pair of fields answering at one response path (a
10 KB document repeating one field 300 times took it over a second). A document over a limit is
refused before any other rule runs on it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    Node,
    OperationDefinitionNode,
    SelectionSetNode,
)
from strawberry.extensions import MaxTokensLimiter, SchemaExtension

MAX_DEPTH = 10
MAX_ALIASES = 20
MAX_TOKENS = 3000
MAX_FIELDS = 5000
MAX_FIELD_PAIRS = 10_000
MAX_QUERY_LENGTH = 100_000
# Selections nested deeper than this are refused whatever they are (introspection fields do not
# count towards the depth limit, but they must not exhaust the interpreter's stack either).
MAX_NESTING = 64
# Counts saturate here: a fragment bomb's 2^N is reported as "at least" this.
SATURATED = 2**31
VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"


@dataclass(frozen=True, slots=True)
class QueryLimits:
    """What one GraphQL document may cost. `max_field_pairs` bounds the sum, over response paths,
    of the squared number of fields answering there (the overlapping-fields rule's work)."""

    max_depth: int = MAX_DEPTH
    max_aliases: int = MAX_ALIASES
    max_tokens: int = MAX_TOKENS
    max_fields: int = MAX_FIELDS
    max_field_pairs: int = MAX_FIELD_PAIRS
    max_query_length: int = MAX_QUERY_LENGTH


@dataclass(frozen=True, slots=True)
class _Cost:
    depth: int
    aliases: int
    fields: int


_FREE = _Cost(0, 0, 0)


class _TooDeep(Exception):
    """Selections nest deeper than MAX_NESTING (or than the interpreter's stack allows)."""


def _saturate(value: int) -> int:
    return min(value, SATURATED)


def _shown(value: int) -> str:
    return f"at least {SATURATED}" if value >= SATURATED else str(value)


def refusal(message: str, fix: str, nodes: list[Node] | None = None) -> GraphQLError:
    """A request error with its code and fix (the client's document is refused, nothing ran)."""
    return GraphQLError(message, nodes, extensions={"code": VALIDATION_FAILED, "fix": fix})


class _Walker:
    """Summaries of one document's selection sets; each fragment is walked once."""

    def __init__(self, document: DocumentNode) -> None:
        self.fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
        self._costs: dict[str, _Cost] = {}
        self._paths: dict[str, Counter[tuple[str, ...]]] = {}
        self._active: set[str] = set()  # fragments being walked: a cycle counts as nothing

    def cost(self, selection_set: SelectionSetNode, nesting: int = 0) -> _Cost:
        """Depth (introspection fields excluded, as Strawberry counts it), aliases and fields of
        `selection_set` with every fragment spread expanded."""
        if nesting > MAX_NESTING:
            raise _TooDeep
        depth = aliases = fields = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                fields += 1
                aliases += selection.alias is not None
                if selection.selection_set is not None:
                    child = self.cost(selection.selection_set, nesting + 1)
                    aliases += child.aliases
                    fields += child.fields
                    if not selection.name.value.startswith("__"):
                        depth = max(depth, 1 + child.depth)
                continue
            if isinstance(selection, InlineFragmentNode):
                child = self.cost(selection.selection_set, nesting + 1)
            elif isinstance(selection, FragmentSpreadNode):
                child = self._fragment_cost(selection.name.value, nesting)
            else:
                continue
            depth = max(depth, child.depth)
            aliases += child.aliases
            fields += child.fields
        return _Cost(depth, _saturate(aliases), _saturate(fields))

    def _fragment_cost(self, name: str, nesting: int) -> _Cost:
        known = self._costs.get(name)
        if known is not None:
            return known
        fragment = self.fragments.get(name)
        if fragment is None or name in self._active:
            return _FREE  # unknown fragments and cycles are other rules' errors
        self._active.add(name)
        try:
            cost = self.cost(fragment.selection_set, nesting + 1)
        finally:
            self._active.discard(name)
        self._costs[name] = cost
        return cost

    def paths(self, selection_set: SelectionSetNode) -> Counter[tuple[str, ...]]:
        """How many fields answer at each response path below `selection_set` (fragments expanded).
        Called only once `cost` has bounded the expanded fields, so the counters stay small."""
        counts: Counter[tuple[str, ...]] = Counter()
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                key = (selection.alias or selection.name).value
                counts[(key,)] += 1
                if selection.selection_set is not None:
                    for path, n in self.paths(selection.selection_set).items():
                        counts[(key, *path)] += n
            elif isinstance(selection, InlineFragmentNode):
                counts.update(self.paths(selection.selection_set))
            elif isinstance(selection, FragmentSpreadNode):
                counts.update(self._fragment_paths(selection.name.value))
        return counts

    def _fragment_paths(self, name: str) -> Counter[tuple[str, ...]]:
        known = self._paths.get(name)
        if known is not None:
            return known
        fragment = self.fragments.get(name)
        if fragment is None or name in self._active:
            return Counter()
        self._active.add(name)
        try:
            counts = self.paths(fragment.selection_set)
        finally:
            self._active.discard(name)
        self._paths[name] = counts
        return counts


def _operations(document: DocumentNode) -> Iterator[OperationDefinitionNode]:
    return (d for d in document.definitions if isinstance(d, OperationDefinitionNode))


def check_document(document: DocumentNode, limits: QueryLimits) -> list[GraphQLError]:
    """The limits `document` exceeds (empty: within every limit). Linear in the document's size."""
    walker = _Walker(document)
    errors: list[GraphQLError] = []
    total_aliases = total_fields = 0
    try:
        for operation in _operations(document):
            cost = walker.cost(operation.selection_set)
            total_aliases += cost.aliases
            total_fields += cost.fields
            if cost.depth > limits.max_depth:
                name = operation.name.value if operation.name else "anonymous"
                errors.append(refusal(
                    f"'{name}' exceeds maximum operation depth of {limits.max_depth}",
                    "Ask for fewer nested levels: split the query, or start from a nearer root field "
                    "(e.g. `catalog(name:)` instead of going through `shopifySyncs`).",
                    [operation],
                ))
        # Fragments no operation spreads count too: graphql-core's rules visit every definition.
        reached = set(walker._costs)
        for name in walker.fragments:
            if name not in reached:
                cost = walker._fragment_cost(name, 0)
                total_aliases += cost.aliases
                total_fields += cost.fields
    except (_TooDeep, RecursionError):
        return [refusal(
            f"The document nests selections or fragments more than {MAX_NESTING} levels deep.",
            "Flatten the query: no operation needs that many nested selections.",
        )]
    if total_aliases > limits.max_aliases:
        errors.append(refusal(
            f"{_shown(_saturate(total_aliases))} aliases found. Allowed: {limits.max_aliases}",
            "Use fewer aliases (each spread of a fragment counts its aliases again); send several requests "
            "if you need more.",
        ))
    if total_fields > limits.max_fields:
        errors.append(refusal(
            f"The document selects {_shown(_saturate(total_fields))} fields once its fragments are expanded. "
            f"Allowed: {limits.max_fields}",
            "Select fewer fields, and spread each fragment once: every spread counts the fragment's fields again.",
        ))
    if errors:
        return errors
    pairs = 0
    for operation in _operations(document):
        pairs += sum(n * n for n in walker.paths(operation.selection_set).values())
    for name in walker.fragments:
        pairs += sum(n * n for n in walker._fragment_paths(name).values())
    if pairs > limits.max_field_pairs:
        errors.append(refusal(
            f"The document repeats fields too often: {pairs} field pairs to compare. "
            f"Allowed: {limits.max_field_pairs}",
            "Select each field once per object: remove the repeated fields and the repeated fragment spreads.",
        ))
    return errors


def check_query_text(query: object, limits: QueryLimits) -> GraphQLError | None:
    """Refuses a query text longer than the limit before it is parsed (whitespace and commas are
    not tokens, so the token limit alone lets a 1 MB padded query through the lexer)."""
    if isinstance(query, str) and len(query) > limits.max_query_length:
        return refusal(
            f"The query text has {len(query)} characters. Allowed: {limits.max_query_length}",
            "Remove the padding (whitespace, commas, comments) or split the query into several requests.",
        )
    return None


def token_limit(limits: QueryLimits) -> type[SchemaExtension]:
    """The schema extension (a class: Strawberry makes one instance per request) that stops parsing
    after `limits.max_tokens` tokens. The document limits run in `gateway.graphql.documents`, once
    per distinct document."""

    class TokenLimit(MaxTokensLimiter):
        """Parsing stops after `limits.max_tokens` tokens."""

        def __init__(self) -> None:
            super().__init__(max_token_count=limits.max_tokens)

    return TokenLimit
