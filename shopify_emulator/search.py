"""Shopify's search syntax (the `query:` argument of connections), the subset the emulator honours.

Terms are ANDed (`AND` may be written); `-term` / `NOT term` negate; `field:value`, `field:>value`
(also `>=`, `<`, `<=`) compare; `field:a,b` matches any of the listed values; a value may be quoted;
a term without a field searches titles. `OR`, grouping and unknown fields are refused with an
`Unsupported` error naming them (the emulator never answers a search it did not understand).
"""

from __future__ import annotations

import operator
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .errors import Unsupported
from .models import Product, Variant

Getter = Callable[[Any], Any]
_COMPARATORS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}
_TERM = re.compile(r"^(-?)([A-Za-z_]+):(>=|<=|>|<)?(.*)$", re.S)


def _date(text: str) -> int:
    value = text.strip()
    try:
        if len(value) == 10:
            parsed = datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
        else:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
    except ValueError as exc:
        raise Unsupported(f"cannot read {text!r} as a date (use ISO 8601, e.g. 2026-01-15T10:00:00Z)") from exc
    return int(parsed.timestamp())


def _number(text: str) -> int:
    try:
        return int(text)
    except ValueError as exc:
        raise Unsupported(f"expected a number, got {text!r}") from exc


@dataclass(frozen=True)
class SearchField:
    get: Getter
    kind: str  # "text" (case-insensitive equality), "contains", "number", "date", "enum"


@dataclass
class SearchFilter:
    """A parsed search: `matches(obj)`, plus `updated_since` (a lower bound usable to skip work)."""

    predicates: list[Callable[[Any], bool]]
    updated_since: int | None = None

    def matches(self, obj: Any) -> bool:
        return all(predicate(obj) for predicate in self.predicates)


def parse_search(text: str | None, fields: dict[str, SearchField], *, free_text: Getter | None = None) -> SearchFilter:
    """Parse `text` against the searchable `fields` of one resource."""
    result = SearchFilter([])
    if not text or not text.strip():
        return result
    try:
        tokens = shlex.split(text, posix=True)
    except ValueError as exc:
        raise Unsupported(f"cannot parse search {text!r}: {exc}") from exc
    negate_next = False
    for token in tokens:
        if token == "AND":
            continue
        if token in ("OR", "(", ")") or token.startswith("(") or token.endswith(")"):
            raise Unsupported(f"search syntax {token!r} (only ANDed terms are supported)")
        if token == "NOT":
            negate_next = True
            continue
        match = _TERM.match(token)
        if match is None:
            negated = token.startswith("-")
            word = token[1:] if negated else token
            if free_text is None:
                raise Unsupported(f"free-text search term {token!r} on this connection")
            needle = word.lower().rstrip("*")
            predicate = (lambda o, n=needle: n in (free_text(o) or "").lower())  # noqa: E731  # binds `needle` now
        else:
            negated = bool(match.group(1))
            name, comparator, raw = match.group(2), match.group(3), match.group(4)
            spec = fields.get(name)
            if spec is None:
                raise Unsupported(f"search field {name!r} (supported: {', '.join(sorted(fields))})")
            predicate = _predicate(name, spec, comparator, raw)
            if name == "updated_at" and comparator in (">", ">=") and not negated and not negate_next:
                result.updated_since = _date(raw) - (0 if comparator == ">=" else -1)
        if negated != negate_next:
            predicate = (lambda o, p=predicate: not p(o))  # noqa: E731  # binds this term's predicate now
        negate_next = False
        result.predicates.append(predicate)
    return result


def _predicate(name: str, spec: SearchField, comparator: str | None, raw: str) -> Callable[[Any], bool]:
    get = spec.get
    if spec.kind in ("number", "date"):
        convert = _date if spec.kind == "date" else _number
        if raw == "*":
            return lambda o: get(o) is not None
        target = convert(raw)
        compare = _COMPARATORS.get(comparator or "", operator.eq)
        return lambda o: (value := get(o)) is not None and compare(value, target)
    if comparator:
        raise Unsupported(f"comparison {comparator!r} on text field {name!r}")
    if raw == "*":
        return lambda o: bool(get(o))
    wanted = {v.strip().lower() for v in raw.split(",")} if spec.kind == "enum" else {raw.lower()}
    if spec.kind == "contains":
        needle = raw.lower().rstrip("*")
        return lambda o: needle in (get(o) or "").lower()
    if raw.endswith("*") and spec.kind == "text":
        prefix = raw[:-1].lower()
        return lambda o: _any(get(o), lambda v: v.lower().startswith(prefix))
    return lambda o: _any(get(o), lambda v: v.lower() in wanted)


def _any(value: Any, test: Callable[[str], bool]) -> bool:
    if value is None:
        return False
    if isinstance(value, (list, tuple, set)):
        return any(v is not None and test(str(v)) for v in value)
    return test(str(value))


PRODUCT_SEARCH: dict[str, SearchField] = {
    "id": SearchField(lambda p: p.id, "number"),
    "title": SearchField(lambda p: p.title, "contains"),
    "handle": SearchField(lambda p: p.handle, "text"),
    "vendor": SearchField(lambda p: p.vendor, "text"),
    "product_type": SearchField(lambda p: p.product_type, "text"),
    "status": SearchField(lambda p: p.status, "enum"),
    "sku": SearchField(lambda p: [v.sku for v in p.variants], "text"),
    "tag": SearchField(lambda p: p.tags, "text"),
    "created_at": SearchField(lambda p: p.created_at, "date"),
    "updated_at": SearchField(lambda p: p.updated_at, "date"),
    "published_at": SearchField(lambda p: p.published_at, "date"),
}

VARIANT_SEARCH: dict[str, SearchField] = {
    "id": SearchField(lambda v: v.id, "number"),
    "product_id": SearchField(lambda v: v.product.id, "number"),
    "sku": SearchField(lambda v: v.sku, "text"),
    "title": SearchField(lambda v: v.title, "contains"),
    "inventory_quantity": SearchField(lambda v: v.inventory_quantity, "number"),
    "created_at": SearchField(lambda v: v.created_at, "date"),
    "updated_at": SearchField(lambda v: v.updated_at, "date"),
}

BULK_OPERATION_SEARCH: dict[str, SearchField] = {
    "id": SearchField(lambda op: op.number, "number"),
    "status": SearchField(lambda op: op.status, "enum"),
    "operation_type": SearchField(lambda op: op.type, "enum"),
    "created_at": SearchField(lambda op: op.created_at, "date"),
}


def product_title(product: Product) -> str:
    return product.title


def variant_title(variant: Variant) -> str:
    return f"{variant.product.title} {variant.title}"
