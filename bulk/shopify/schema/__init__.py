"""The stored Shopify Admin GraphQL schema (2026-01), for validating every document we send."""

from __future__ import annotations

import gzip
from functools import lru_cache
from pathlib import Path

from graphql import GraphQLSchema, build_schema, parse, validate

SCHEMA_VERSION = "2026-01"
_SCHEMA_FILE = Path(__file__).with_name("admin-2026-01.graphql.gz")


@lru_cache(maxsize=1)
def load_admin_schema() -> GraphQLSchema:
    """The Admin API schema (built once per process, ~1.5 s)."""
    sdl = gzip.decompress(_SCHEMA_FILE.read_bytes()).decode("utf-8")
    # Shopify deprecates some implementation fields whose interface field is not deprecated, which
    # graphql-core's schema validation rejects; the schema is Shopify's own, so trust it.
    return build_schema(sdl, assume_valid=True, no_location=True)


def validation_errors(document: str) -> list[str]:
    """Messages of every error `document` has against the Admin schema (empty when valid)."""
    try:
        ast = parse(document)
    except Exception as exc:  # graphql.GraphQLError: syntax
        return [str(exc)]
    return [error.message for error in validate(load_admin_schema(), ast)]
