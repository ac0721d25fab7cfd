"""The emulator's HTTP side (aiohttp): the Admin GraphQL endpoint and the bulk result downloads.

- `POST /shops/{shop}/admin/api/{version}/graphql.json`: Shopify's status codes and bodies — 404
  for an unknown shop or malformed version, 401 for a bad token, 400 for a body without a query,
  200 for everything GraphQL (validation errors, THROTTLED, userErrors), with `extensions.cost`.
- `GET|HEAD /bulk-operation-outputs/{file}`: the JSONL, with single-range `Range` support; an
  expired result answers 400 like an expired signed URL.
"""

from __future__ import annotations

import asyncio
import hmac
import os
import re
import uuid
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web
from graphql import OperationType

from bulk.shopify.schema import load_admin_schema

from .bulk import RequestContext
from .cost import actual_query_cost, query_cost
from .errors import RequestErrors, Unsupported
from .errors import graphql_error as error
from .execute import Compiler, render
from .resolvers import Root, table
from .validation import prepare

if TYPE_CHECKING:
    from .emulator import Emulator

EMULATOR = web.AppKey("emulator", Any)
MAX_QUERY_COST = 1000
INVALID_TOKEN = "[API] Invalid API key or access token (unrecognized login or wrong password)"
_VERSION = re.compile(r"^(\d{4}-(01|04|07|10)|unstable)$")
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_CHUNK = 1 << 18
_PACED_WRITES_PER_SECOND = 20  # a slowed download is sent in this many pieces a second
_EDGE_ERROR = "<!DOCTYPE html><html><head><title>Shopify</title></head><body><h1>{status}</h1>" \
              "<p>There was a problem loading this website. Please try again.</p></body></html>"


def _json(body: Any, status: int = 200, version: str | None = None) -> web.Response:
    headers = {"X-Request-Id": str(uuid.uuid4())}
    if version:
        headers["X-Shopify-API-Version"] = version
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json", headers=headers)


def _cost(requested: int, actual: int | None, status: dict[str, float]) -> dict[str, Any]:
    return {"cost": {"requestedQueryCost": requested, "actualQueryCost": actual, "throttleStatus": status}}


async def graphql(request: web.Request) -> web.Response:
    emu: Emulator = request.app[EMULATOR]
    version = request.match_info["version"]
    shop = emu.shops.get(request.match_info["shop"])
    if shop is None or not _VERSION.match(version):
        return _json({"errors": "Not Found"}, 404)
    fault = emu.faults.take("http_error:graphql", shop.domain)
    if fault is not None:
        status = fault.params["status"]
        return web.Response(status=status, text=_EDGE_ERROR.format(status=status), content_type="text/html")
    token = request.headers.get("X-Shopify-Access-Token", "")
    if not hmac.compare_digest(token.encode(), shop.access_token.encode()) or emu.faults.token_revoked(shop.domain):
        return _json({"errors": INVALID_TOKEN}, 401)
    query, variables, operation_name = await _read_body(request)
    if not isinstance(query, str) or not query.strip() or not isinstance(variables, (dict, type(None))):
        return _json({"errors": {"query": "Required parameter missing or invalid"}}, 400, version)

    limits = emu.faults.bucket_limits(shop.domain) or (2000.0, 100.0)
    if (shop.bucket.maximum, shop.bucket.restore_rate) != limits:
        shop.bucket.reconfigure(*limits)
    schema = load_admin_schema()
    try:
        prepared = prepare(query, variables, operation_name)
        operation = prepared.operation
        mutation = operation.operation == OperationType.MUTATION
        if operation.operation == OperationType.SUBSCRIPTION:
            raise Unsupported("subscriptions", operation)
        root_type = schema.mutation_type if mutation else schema.query_type
        ctx = RequestContext(shop, emu.bulk, version)
        plan = Compiler(schema, table, prepared.fragments, prepared.variables, ctx, bulk=False).plan(
            root_type, [operation.selection_set])
        cost = query_cost(schema, operation, prepared.fragments, prepared.coerced)
    except RequestErrors as exc:
        return _json({"errors": exc.errors, "extensions": _cost(0, 0, shop.bucket.status())}, 200, version)

    if cost > MAX_QUERY_COST:
        message = f"Query cost is {cost}, which exceeds the single query max cost limit ({MAX_QUERY_COST})."
        return _json({"errors": [error(message, code="MAX_COST_EXCEEDED", cost=cost, maxCost=MAX_QUERY_COST)],
                      "extensions": _cost(cost, None, shop.bucket.status())}, 200, version)
    throttled = emu.faults.take("throttle", shop.domain) is not None
    if throttled:
        shop.bucket.drain()
    if throttled or not shop.bucket.spend(cost):
        return _json({"errors": [error("Throttled", code="THROTTLED",
                                       documentation="https://shopify.dev/api/usage/rate-limits")],
                      "extensions": _cost(cost, None, shop.bucket.status())}, 200, version)
    try:
        data = render(Root(root_type.name), plan)
    except RequestErrors as exc:
        shop.bucket.refund(cost)
        return _json({"errors": exc.errors, "extensions": _cost(0, 0, shop.bucket.status())}, 200, version)
    actual = min(cost, actual_query_cost(schema, operation, prepared.fragments, prepared.coerced, data))
    shop.bucket.refund(cost - actual)  # Shopify takes the requested cost, then refunds the difference
    return _json({"data": data, "extensions": _cost(cost, actual, shop.bucket.status())}, 200, version)


async def _read_body(request: web.Request) -> tuple[Any, Any, Any]:
    raw = await request.read()
    if request.content_type == "application/graphql":
        return raw.decode("utf-8", "replace"), None, None
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None, None, None
    if not isinstance(body, dict):
        return None, None, None
    return body.get("query"), body.get("variables"), body.get("operationName")


def _gcs_error(status: int, code: str, message: str) -> web.Response:
    body = f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>{message}</Message></Error>"
    return web.Response(status=status, text=body, content_type="application/xml")


async def download(request: web.Request) -> web.StreamResponse:
    emu: Emulator = request.app[EMULATOR]
    name = request.match_info["name"]
    result = emu.files.get(name.rsplit("-", 1)[0])
    if result is None or name != result.path.name:
        return _gcs_error(404, "NoSuchKey", "The specified key does not exist.")
    if result.expired or not result.path.exists():
        return _gcs_error(400, "ExpiredToken", "The provided token has expired.")
    fault = emu.faults.take("http_error:download", result.shop)
    if fault is not None:
        return _gcs_error(fault.params["status"], "InternalError", "We encountered an internal error. Please try again.")
    size = os.stat(result.path).st_size
    start, end, status = 0, size - 1, 200
    headers = {"Accept-Ranges": "bytes", "Content-Type": "application/jsonl", "ETag": f'"{result.token}"'}
    match = _RANGE.match(request.headers.get("Range", "").strip())
    if match and (match.group(1) or match.group(2)):
        if match.group(1):
            start = int(match.group(1))
            end = min(int(match.group(2)), size - 1) if match.group(2) else size - 1
        else:
            start = max(0, size - int(match.group(2)))
        if start >= size or start > end:
            return web.Response(status=416, headers={"Content-Range": f"bytes */{size}"})
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    length = max(0, end - start + 1)
    headers["Content-Length"] = str(length)
    response = web.StreamResponse(status=status, headers=headers)
    await response.prepare(request)
    if request.method == "HEAD":
        return response
    cut = emu.faults.take("cut_download", result.shop)
    limit = min(length, cut.params["after_bytes"]) if cut is not None else length
    slow = emu.faults.take("slow_download", result.shop)
    rate: int | None = slow.params["bytes_per_second"] if slow is not None else None
    chunk_size = _CHUNK if rate is None else max(1, min(_CHUNK, rate // _PACED_WRITES_PER_SECOND))
    loop = asyncio.get_running_loop()
    began = loop.time()
    with open(result.path, "rb") as handle:
        handle.seek(start)
        sent = 0
        while sent < limit:
            chunk = handle.read(min(chunk_size, limit - sent))
            if not chunk:
                break
            try:
                await response.write(chunk)
            except ConnectionResetError:  # the client went away (e.g. its process was killed)
                return response
            sent += len(chunk)
            if rate is not None:  # never ahead of `rate` bytes per second since the first byte
                await asyncio.sleep(max(0.0, began + sent / rate - loop.time()))
    if cut is not None and limit < length:
        if request.transport is not None:
            request.transport.close()
        return response
    await response.write_eof()
    return response


def build_app(emulator: Emulator) -> web.Application:
    app = web.Application(client_max_size=8 * 1024 * 1024)
    app[EMULATOR] = emulator
    app.router.add_post("/shops/{shop}/admin/api/{version}/graphql.json", graphql)
    app.router.add_get("/bulk-operation-outputs/{name}", download)
    return app
