"""Where a read's time goes: `python -m bench.reads_profile [--items 100000]` (needs the `profile`
extra: pyinstrument).

The gateway app (`create_app`, auth on) and the raw endpoint of `bench.reads_server` on one memory
store, driven in process through ASGI (no sockets, no HTTP parsing: what uvicorn adds is the same
for both). Prints each path's CPU per request, then pyinstrument's samples of the gateway's requests
grouped by stage (parse, validation, limits, execution, resolvers, serialisation, ...) and its
costliest functions by self time. Sampling slows every frame alike: read the shares, not the
absolute times.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import time
from collections.abc import Callable
from typing import Any

import orjson
from starlette.applications import Starlette

from bench.reads import ITEM, PAGE
from bench.reads_server import CATALOG, fill, item_id, raw_routes
from catalog_store.memory import MemoryCatalogStore
from gateway.app import create_app
from gateway.settings import Settings
from gateway.wiring import Gateway

TOKEN = "profile-token-0123456789abcdef"
# (stage, test on a frame's function name and file): the first stage that matches a frame takes it
# and everything it calls, except the stages nested in execution, counted on their own.
STAGES: list[tuple[str, Callable[[str, str], bool]]] = [
    ("auth", lambda f, p: f == "role_for"),
    ("context and DataLoaders", lambda f, p: f == "get_context" or (f == "__init__" and p.endswith("context.py"))),
    ("request body and JSON", lambda f, p: f in ("parse_http_body", "body", "loads")),
    ("query-text limit", lambda f, p: f == "check_query_text"),
    ("parse (with the token limit)", lambda f, p: f == "parse" and "graphql/language" in p),
    ("document limits", lambda f, p: f == "check_document"),
    ("validation", lambda f, p: f in ("validate", "validate_document") and "graphql" in p),
    ("variables", lambda f, p: f == "get_variable_values"),
    ("serialisation (orjson)", lambda f, p: f in ("encode_json", "dumps")),
    ("store", lambda f, p: "catalog_store" in p),
    ("resolvers and the read plan", lambda f, p: p.endswith(("graphql/types.py", "fastpath.py", "pagination.py"))),
    ("execution (graphql-core)", lambda f, p: "graphql/execution" in p),
]


def _scope(method: str, path: str, query: bytes, body: bytes) -> dict[str, Any]:
    headers = [(b"host", b"bench"), (b"authorization", f"Bearer {TOKEN}".encode())]
    if body:
        headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
            "path": path, "raw_path": path.encode(), "query_string": query, "root_path": "", "headers": headers,
            "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80), "state": {}}


async def _call(app: Any, scope: dict[str, Any], body: bytes) -> bytes:
    sent = False
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(dict(scope), receive, send)
    return b"".join(chunks)


def _stages(root: Any, requests: int) -> None:
    totals: collections.Counter[str] = collections.Counter()

    def walk(frame: Any, inside_execution: bool) -> None:
        function, path = frame.function or "", frame.file_path or ""
        for stage, test in STAGES:
            if test(function, path):
                if stage == "execution (graphql-core)" and not inside_execution:
                    totals[stage] += frame.time
                    for child in frame.children:
                        walk(child, True)
                    return
                if stage != "execution (graphql-core)":
                    totals[stage] += frame.time
                    if inside_execution:
                        totals["execution (graphql-core)"] -= frame.time
                    return
        for child in frame.children:
            walk(child, inside_execution)

    walk(root, False)
    total = root.time
    for stage, seconds in totals.most_common():
        print(f"    {stage:32s} {seconds / total * 100:5.1f} %")
    print(f"    {'other: ASGI layers, Strawberry':32s} {(total - sum(totals.values())) / total * 100:5.1f} %")
    own: collections.Counter[str] = collections.Counter()

    def selves(frame: Any) -> None:
        for child in frame.children:
            if child.function == "[self]":
                own[f"{frame.function} ({(frame.file_path or '').rsplit('/', 1)[-1]})"] += child.time
            else:
                selves(child)

    selves(root)
    print("    costliest functions by self time:")
    for name, seconds in own.most_common(12):
        print(f"      {name:55s} {seconds / total * 100:5.1f} %")


async def main(items: int, requests: int) -> None:
    from pyinstrument import Profiler

    store = MemoryCatalogStore()
    await fill(store, items)
    gateway = Gateway(Settings(admin_token=TOKEN), store)
    await gateway.start()
    try:
        app, raw = create_app(gateway, manage_lifecycle=False), Starlette(routes=raw_routes(store))
        ids = [item_id((k * 7919) % items) for k in range(1000)]
        cases: list[tuple[str, Any, Callable[[int], tuple[dict[str, Any], bytes]]]] = [
            ("raw: first 50 items", raw, lambda k: (_scope("GET", "/raw/items", b"first=50", b""), b"")),
            ("raw: item", raw, lambda k: (_scope("GET", "/raw/item", b"id=" + ids[k % 1000].encode(), b""), b"")),
        ]
        for name, query, variables in (("gateway: first 50 items", PAGE % "", lambda k: {"first": 50}),
                                       ("gateway: item(id:)", ITEM, lambda k: {"id": ids[k % 1000]})):
            def request(k: int, query: str = query, variables: Any = variables) -> tuple[dict[str, Any], bytes]:
                body = orjson.dumps({"query": query, "variables": {"c": CATALOG, **variables(k)}})
                return _scope("POST", "/graphql", b"", body), body

            cases.append((name, app, request))
        for name, target, make in cases:
            for k in range(20):  # warm-up: document caches, plans
                await _call(target, *make(k))
            began = time.process_time()
            for k in range(requests):
                await _call(target, *make(k))
            print(f"{name:26s} {(time.process_time() - began) / requests * 1e6:8.0f} µs CPU per request")
            if name.startswith("gateway"):
                profiler = Profiler(interval=0.0002, async_mode="disabled")
                profiler.start()
                for k in range(requests):
                    await _call(target, *make(k))
                profiler.stop()
                assert profiler.last_session is not None
                _stages(profiler.last_session.root_frame(), requests)
    finally:
        await gateway.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.reads_profile", description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()
    asyncio.run(main(args.items, args.requests))
