"""Reads at frontend speed, gateway against a raw endpoint in one run: `python -m bench.reads`
(run by `make bench`).

For each store and size a server process (`bench.reads_server`) holds a generated catalog and
serves it twice, from one event loop: through the gateway app (`/graphql`, POST, bearer token) on
one port and through a raw Starlette app returning the same page from the same store as JSON (no
GraphQL, auth or middleware) on another. Each case runs `--concurrency`
clients (aiohttp, keep-alive, this process) for `--seconds`, after a warm-up, on each path in turn:
requests/s, p50 and p99 latency. `item(id:)` is also run one request at a time (`sequential`).
The server's RSS is read from /proc once its catalog is loaded and its indexes built.

The machine may be shared (2 cores here, the client on one of them): compare the ratios measured
in one run. MongoDB is a SecantusDB started here (tests/secantus.py) or $MONGODB_URI; SecantusDB
answers scans slowly, so it runs at `--mongo-sizes` (10,000 by default).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bench.ingest import _free_port, _machine, _wait_for_port, load_average, mongo_server, stop_process, write_section
from bench.reads_server import CATALOG, item_id
from gateway.graphql.pagination import encode_cursor

ROOT = Path(__file__).resolve().parent.parent
MARK_START, MARK_END = "<!-- reads-benchmark:start -->", "<!-- reads-benchmark:end -->"
SIZES = (10_000, 100_000)
MILLION = 1_000_000
MONGO_SIZES = (10_000,)
FIELDS = ("id storeName shopifyProductId shopifyVariantId productTitle variantTitle status productImageUrl "
          "variantImageUrl vendor productType productUrl productHandle publishedScope price compareAtPrice "
          "inventoryQuantity options optionValues sku")
PAGE = ("query Page($c: String!, $first: Int, $after: String, $filter: CatalogItemFilter) { catalog(name: $c) "
        "{ items(first: $first, after: $after, filter: $filter) { %s pageInfo { hasNextPage endCursor } "
        "edges { cursor node { " + FIELDS + " } } } } }")
ITEM = "query Item($c: String!, $id: String!) { catalog(name: $c) { item(id: $id) { " + FIELDS + " } } }"
FILTER = {"vendor": "Vendor 7", "priceMax": "50", "inStock": True}
WARMUP_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    query: str
    variables: dict[str, Any]
    raw: dict[str, str]  # the raw endpoint's query parameters (`id` → /raw/item)


CASES = (
    Case("first 50 items, 20 fields", PAGE % "", {"first": 50}, {"first": "50"}),
    Case("same with totalCount", PAGE % "totalCount", {"first": 50}, {"first": "50"}),
    Case("first 100", PAGE % "", {"first": 100}, {"first": "100"}),
    Case("page 21 via cursor", PAGE % "totalCount", {"first": 50, "after": encode_cursor(item_id(999))},
         {"first": "50", "after": item_id(999)}),
    Case("item(id:)", ITEM, {}, {"id": ""}),
    Case("vendor + priceMax + inStock, totalCount", PAGE % "totalCount", {"first": 50, "filter": FILTER},
         {"first": "50", "vendor": "Vendor 7", "priceMax": "50", "inStock": "true"}),
    Case('search: "mug", totalCount', PAGE % "totalCount", {"first": 50, "filter": {"search": "mug"}},
         {"first": "50", "search": "mug"}),
)
UNFILTERED = {c.name for c in CASES[:5]}


@dataclass(slots=True)
class Series:
    store: str
    size: int
    case: str
    path: str  # gateway | raw | gateway sequential | raw sequential
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    server_cpu_us: float | None  # the server process's CPU time per request

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds


def _percentile(samples: Sequence[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[max(0, min(len(ordered) - 1, round(q * len(ordered)) - 1))]


class Client:
    """Requests as a frontend sends them, encoded once up front: the client shares the machine's
    cores with the server, and its own JSON encoding is no part of either path's cost."""

    def __init__(self, session: aiohttp.ClientSession, url: str, raw_url: str, token: str, size: int) -> None:
        self.session, self.url, self.raw_url, self.size = session, url, raw_url, size
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.n = 0
        self.ids = [item_id((k * 7919) % size) for k in range(1000)]
        self.bodies: dict[str, list[bytes]] = {}

    def _next(self) -> int:
        self.n += 1
        return self.n % len(self.ids)

    def _body(self, case: Case, k: int) -> bytes:
        bodies = self.bodies.get(case.name)
        if bodies is None:
            variants = [{"id": i} for i in self.ids] if case.name == "item(id:)" else [{}]
            bodies = self.bodies[case.name] = [
                orjson.dumps({"query": case.query, "variables": {"c": CATALOG, **case.variables, **v}})
                for v in variants]
        return bodies[k % len(bodies)]

    async def gateway(self, case: Case) -> None:
        async with self.session.post(f"{self.url}/graphql", data=self._body(case, self._next()),
                                     headers=self.headers) as response:
            body = await response.read()
        if response.status != 200 or b'"errors"' in body or b'"catalog":null' in body or b'"item":null' in body:
            raise RuntimeError(f"gateway answered {response.status}: {body[:300]!r}")

    async def raw(self, case: Case) -> None:
        if "id" in case.raw:
            url, params = f"{self.raw_url}/raw/item", {"id": self.ids[self._next()]}
        else:
            url, params = f"{self.raw_url}/raw/items", case.raw
        async with self.session.get(url, params=params) as response:
            body = await response.read()
        if response.status != 200 or body == b"null":
            raise RuntimeError(f"raw answered {response.status}: {body[:300]!r}")


async def _load(call: Callable[[], Awaitable[None]], concurrency: int, seconds: float) -> tuple[list[float], float]:
    samples: list[float] = []
    warm = time.perf_counter() + WARMUP_SECONDS
    for _ in range(min(20, concurrency * 2)):  # warm-up: connections, document caches
        await call()
        if time.perf_counter() > warm:  # a slow store (SecantusDB): a few requests are enough
            break
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < stop:
            began = time.perf_counter()
            await call()
            samples.append(time.perf_counter() - began)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return samples, time.perf_counter() - began


def _cpu_seconds(pid: int) -> float | None:
    with contextlib.suppress(OSError, IndexError, ValueError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return None


async def _timed(call: Callable[[], Awaitable[None]], concurrency: int, seconds: float, pid: int, store: str,
                 size: int, case: str, path: str) -> Series:
    before = _cpu_seconds(pid)
    samples, elapsed = await _load(call, concurrency, seconds)
    after = _cpu_seconds(pid)
    cpu = None if before is None or after is None else (after - before) / len(samples) * 1e6
    return Series(store, size, case, path, len(samples), elapsed, _percentile(samples, 0.5) * 1000,
                  _percentile(samples, 0.99) * 1000, cpu)


SEQUENTIAL = ("item(id:)", CASES[5].name, CASES[6].name)


async def measure(store: str, size: int, url: str, raw_url: str, token: str, pid: int,
                  args: argparse.Namespace) -> list[Series]:
    out: list[Series] = []
    connector = aiohttp.TCPConnector(limit=args.concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        client = Client(session, url, raw_url, token, size)
        for case in CASES:
            for path in ("gateway", "raw"):
                call = (lambda c=case: client.gateway(c)) if path == "gateway" else (lambda c=case: client.raw(c))
                out.append(await _timed(call, args.concurrency, args.seconds, pid, store, size, case.name, path))
                _print(out[-1])
        for case in CASES:
            if case.name not in SEQUENTIAL:
                continue
            for path in ("gateway", "raw"):
                call = (lambda c=case: client.gateway(c)) if path == "gateway" else (lambda c=case: client.raw(c))
                out.append(await _timed(call, 1, min(args.seconds, 3.0), pid, store, size, case.name,
                                        f"{path} sequential"))
                _print(out[-1])
    return out


def _print(s: Series) -> None:
    cpu = "" if s.server_cpu_us is None else f"  server CPU {s.server_cpu_us:7.0f} µs/request"
    print(f"  {s.case:42s} {s.path:19s} {s.per_second:8.0f} req/s  p50 {s.p50_ms:8.2f} ms  p99 {s.p99_ms:8.2f} ms"
          f"{cpu}", flush=True)


def _rss_mb(pid: int) -> float | None:
    with contextlib.suppress(OSError, StopIteration, ValueError):
        line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith("VmRSS:"))
        return int(line.split()[1]) / 1024
    return None


@contextlib.contextmanager
def _server(store: str, size: int, mongo_uri: str | None) -> Iterator[tuple[str, str, str, int]]:
    port, raw_port, token = _free_port(), _free_port(), secrets.token_urlsafe(24)
    command = [sys.executable, "-m", "bench.reads_server", "--store", store, "--items", str(size),
               "--port", str(port), "--raw-port", str(raw_port), "--token", token]
    if mongo_uri:
        command += ["--mongo-uri", mongo_uri, "--database", f"bench_reads_{size}"]
    proc = subprocess.Popen(command, cwd=ROOT)
    try:
        _wait_for_port(port, proc, "the reads server", timeout=1800)
        _wait_for_port(raw_port, proc, "the raw endpoint", timeout=60)
        url = f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(f"{url}/healthz", timeout=30) as response:
            assert response.status == 200
        yield url, f"http://127.0.0.1:{raw_port}", token, proc.pid
    finally:
        stop_process(proc)


def run(args: argparse.Namespace) -> tuple[list[Series], dict[tuple[str, int], float | None]]:
    results: list[Series] = []
    rss: dict[tuple[str, int], float | None] = {}
    plan = [("memory", size) for size in args.sizes] + [("mongo", size) for size in args.mongo_sizes]
    with contextlib.ExitStack() as stack:
        mongo_uri = stack.enter_context(mongo_server()) if args.mongo_sizes else None
        for store, size in plan:
            print(f"{store} store, {size:,} items", flush=True)
            with _server(store, size, mongo_uri if store == "mongo" else None) as (url, raw_url, token, pid):
                rss[(store, size)] = _rss_mb(pid)
                results += asyncio.run(measure(store, size, url, raw_url, token, pid, args))
    return results, rss


def _table(results: list[Series], rss: dict[tuple[str, int], float | None]) -> list[str]:
    lines: list[str] = []
    for store, size in dict.fromkeys((r.store, r.size) for r in results):
        mine = [r for r in results if r.store == store and r.size == size]
        memory = rss.get((store, size))
        lines += ["", f"### {store} store, {size:,} items" + (f" (server RSS {memory:,.0f} MB)" if memory else ""), "",
                  "| request | gateway req/s | p50 | p99 | CPU/req | raw req/s | p50 | p99 | CPU/req | ratio | CPU ratio |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for case in dict.fromkeys(r.case for r in mine):
            for kind in ("", " sequential"):
                g = next((r for r in mine if r.case == case and r.path == "gateway" + kind), None)
                w = next((r for r in mine if r.case == case and r.path == "raw" + kind), None)
                if g is None or w is None:
                    continue
                label = f"`{case}`" + (", one at a time" if kind else "")
                cpu_ratio = ("—" if not g.server_cpu_us or not w.server_cpu_us
                             else f"{w.server_cpu_us / g.server_cpu_us:.2f}")
                lines.append(f"| {label} | {g.per_second:,.0f} | {g.p50_ms:.2f} ms | {g.p99_ms:.2f} ms | "
                             f"{_us(g.server_cpu_us)} | {w.per_second:,.0f} | {w.p50_ms:.2f} ms | {w.p99_ms:.2f} ms | "
                             f"{_us(w.server_cpu_us)} | {g.per_second / w.per_second:.2f} | {cpu_ratio} |")
    return lines


def _us(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f} µs"


def _summary(results: list[Series]) -> list[str]:
    lines = []
    for store, size in dict.fromkeys((r.store, r.size) for r in results):
        mine = {(r.case, r.path): r for r in results if r.store == store and r.size == size}
        ratios = [mine[(c, "gateway")].per_second / mine[(c, "raw")].per_second for c in UNFILTERED
                  if (c, "gateway") in mine and (c, "raw") in mine]
        item = mine.get(("item(id:)", "gateway sequential"))
        parts = [f"{store}, {size:,} items: unfiltered gateway/raw req/s at least {min(ratios):.2f} (target ≥ 0.5)"]
        if item:
            parts.append(f"sequential `item(id:)` p50 {item.p50_ms:.2f} ms (target ≤ 2 ms)")
        cpu = [mine[(c, "raw")].server_cpu_us / mine[(c, "gateway")].server_cpu_us for c in UNFILTERED  # type: ignore[operator]
               if mine.get((c, "gateway")) and mine.get((c, "raw")) and mine[(c, "gateway")].server_cpu_us
               and mine[(c, "raw")].server_cpu_us]
        if cpu:
            parts.insert(1, f"raw/gateway server CPU per request at least {min(cpu):.2f}")
        for case in (CASES[5].name, CASES[6].name):
            found = mine.get((case, "gateway sequential"))
            if found:
                parts.append(f"`{case}` p50 {found.p50_ms:.1f} ms one at a time"
                             + (" (target < 20 ms)" if size >= MILLION else ""))
        lines.append("; ".join(parts) + ".")
    return lines


def _write_report(path: Path, results: list[Series], rss: dict[tuple[str, int], float | None], load: str,
                  args: argparse.Namespace) -> None:
    body = [
        "## Reads (`python -m bench.reads`, `make bench`)",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC (load average, 1/5/15 min: {load}) on {_machine()}.",
        "",
        f"{args.concurrency} concurrent clients for {args.seconds:g} s per case and path (after a warm-up), on one "
        "uvicorn worker holding a generated catalog (`bench/reads_server.py`: 3 variants per product, 50 "
        "vendors, 15 product nouns). `gateway` is POST /graphql with a bearer token through the whole app; "
        "`raw` is a Starlette route returning the same page from the same store as JSON. `ratio` is gateway "
        "req/s over raw req/s. The client shares the machine's 2 cores with the server (and, here, with "
        "other work: see the load average), so the ratios are what to compare.",
        *_table(results, rss),
        "",
        *[f"- {line}" for line in _summary(results)],
    ]
    write_section(path, MARK_START, MARK_END, body)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.reads", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="memory-store item counts, comma separated")
    parser.add_argument("--million", action="store_true", help=f"also {MILLION:,} items in memory (a few minutes)")
    parser.add_argument("--mongo-sizes", default=",".join(map(str, MONGO_SIZES)),
                        help="MongoDB item counts, comma separated (empty: no MongoDB)")
    parser.add_argument("--seconds", type=float, default=3.0, help="per case and path")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--no-report", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args(argv)
    args.sizes = [int(s) for s in args.sizes.split(",") if s] + ([MILLION] if args.million else [])
    args.mongo_sizes = [int(s) for s in args.mongo_sizes.split(",") if s]
    before = load_average()
    print(f"reads benchmark on {_machine()}; load average {before}", flush=True)
    results, rss = run(args)
    for line in _summary(results):
        print(f"- {line}")
    if not args.no_report:
        _write_report(args.output, results, rss, f"{before} at the start, {load_average()} at the end", args)
        print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
