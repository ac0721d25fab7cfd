"""The read hot path's HTTP side: POSTed catalog reads answered by their plan without Strawberry's
view, and ETag / 304 for GET catalog reads. Apart from `http.py` so the view's own request path and
these stay separate functions."""

from __future__ import annotations

import hashlib
import secrets
import time
from typing import Any, Protocol, cast

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.graphql.auth import Role
from gateway.graphql.context import Context, Loaders, Services
from gateway.graphql.fastpath import has_read_plan, read_fast_path
from gateway.graphql.limits import check_query_text
from gateway.graphql.media import JSON, negotiate_media_type
from gateway.graphql.schema import GatewaySchema
from gateway.metrics import GRAPHQL_SECONDS

QUERY_SECONDS = GRAPHQL_SECONDS.labels(operation_type="query")  # plans serve queries only; labelled once

# Change counts are per process (the memory store's): a tag from another process must never match.
_PROCESS_SALT = secrets.token_hex(16)


class CountsChanges(Protocol):
    """A store that can tell cheaply whether anything a catalog read returns may have changed."""

    def change_count(self) -> int: ...


class HttpCache:
    """`ETag` and `304 Not Modified` for GET catalog reads (the documents the read fast path
    serves: their answer depends only on the catalogs and their items). The tag hashes the store's
    change count, the caller's role, the media type and the request's query string, so it changes
    whenever the answer may, and never matches across tokens with different rights. Mutations never
    come here (GET refuses them); other queries (runs, progress, notifications) get no tag. The
    count is read before and after the request: a change while it ran leaves the response untagged."""

    def __init__(self, view: Any, request: Request, tag: str, count: int, store: CountsChanges) -> None:
        self.view = view
        self.request = request
        self.tag = tag
        self.count = count
        self.store = store

    @classmethod
    def of(cls, view: Any, request: Request, role: Role | None) -> HttpCache | None:
        if request.method != "GET" or role is None:  # before parsing the query string: POSTs never get a tag
            return None
        store = view.services.store
        query = request.query_params.get("query")
        if query is None or not callable(getattr(store, "change_count", None)):
            return None
        count = store.change_count()
        key = "\n".join((_PROCESS_SALT, str(count), role.value, negotiate_media_type(request.headers.get("accept")),
                          request.url.query))
        return cls(view, request, f'"{hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]}"', count,
                   cast(CountsChanges, store))

    def _cacheable(self) -> bool:
        params = self.request.query_params
        return has_read_plan(self.view.schema, params["query"], params.get("operationName"))

    def fresh(self, request: Request) -> bool:
        given = request.headers.get("if-none-match")
        if given is None or not self._cacheable():
            return False
        return self.tag in (t.strip().removeprefix("W/") for t in given.split(","))

    def not_modified(self) -> Response:
        return Response(status_code=304, headers=self._headers())

    def label(self, response: Response) -> None:
        if response.status_code == 200 and self.store.change_count() == self.count and self._cacheable():
            response.headers.update(self._headers())

    def _headers(self) -> dict[str, str]:
        return {"ETag": self.tag, "Cache-Control": "private, no-cache", "Vary": "Authorization, Accept"}



async def read_fast(schema: object, services: Services, request: Request, role: Role | None) -> Response | None:
    """A POSTed catalog read answered by its plan (gateway.graphql.fastpath) without Strawberry's
    view: the answer, headers and status are the view's, at a fraction of its per-request cost.
    None (the view answers) for anything else, and whenever the plan gives way."""
    if request.method != "POST" or role is None or not request.headers.get("content-type", "").startswith(JSON):
        return None
    try:
        data = orjson.loads(await request.body())  # the body stays cached for the view
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict) or data.keys() - {"query", "variables", "operationName"}:
        return None
    query, variables, operation = data.get("query"), data.get("variables"), data.get("operationName")
    if (not isinstance(query, str) or not isinstance(variables, (dict, type(None)))
            or not isinstance(operation, (str, type(None)))):
        return None
    if not isinstance(schema, GatewaySchema) or check_query_text(query, schema.limits) is not None:
        return None
    context = Context(services, role, Loaders(services.store), request, None)
    started = time.perf_counter()
    answer = await read_fast_path(schema._schema, schema.documents, query, variables, context, None, operation)
    if answer is None:
        return None  # the view answers, and times it
    QUERY_SECONDS.observe(time.perf_counter() - started)
    return Response(orjson.dumps({"data": answer}), media_type=negotiate_media_type(request.headers.get("accept")))

