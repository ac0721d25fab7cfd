"""The Mongo path, every number from one run on one server: `python -m bench.mongo` (run by `make bench`).

One MongoDB-wire server serves the whole run: a SecantusDB started here (tests/secantus.py), or
$MONGODB_URI when set. For each size the Shopify emulator (its own process) generates a shop and runs
the products bulk query, as in bench.ingest; each case then runs in a fresh process (so its peak RSS,
`ru_maxrss`, is its own) and measures only its timed section:

- raw:         the very documents `MongoCatalogStore` stores for the file (made before the clock starts
               by the real pipeline and `prepare_items`, plus the store's `_` bookkeeping fields), sent
               with PyMongo `insert_many` in batches of 1,000, unordered, one batch at a time, into a
               fresh collection (its `_id` index only): what the server costs, and nothing else;
- raw+indexes: the same into a fresh collection that has the store's five item indexes: what the
               server costs with the indexes every store write must maintain;
- sync:        a full sync: `run_ingest` into `MongoCatalogStore` on a fresh database (download, decode,
               mapping, checks, item writes, sweep), as bench.ingest runs it; the database stays for:
- resync:      the same file again, a new run over the catalog the sync left (nothing changed);
- reads:       latency of three reads, one request at a time: a 50-item page (a random `after` cursor),
               the same page filtered (`inStock: true, priceMax: "50"`, with `totalCount`) and
               `item(id:)` of a random item; each through the store API in the measuring process
               (`store`) and as GraphQL over HTTP (`graphql`) to a real gateway (`catalog-gateway
               serve`, uvicorn on 127.0.0.1, its own process, on the same database).

CPU is read from /proc around each timed section: the measuring process's own (`client CPU`: for
sync and resync, the work a gateway does in a full sync), the gateway process's for GraphQL reads,
the database server's when this run started it, and everybody else's on the machine (`other load`,
in cores: the machine may be shared, so compare ratios within one run). `waiting` is the share of a
case's wall time with at least one MongoDB command in flight (PyMongo command monitoring).

The results go to the terminal and to docs/benchmarks.md (between the mongo markers); the last
run's numbers are kept in .cache/bench/mongo-results.json (`--report-only` rewrites the section).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import json
import math
import os
import random
import resource
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
from bson import ObjectId
from cryptography.fernet import Fernet
from pymongo import AsyncMongoClient, MongoClient, monitoring

from bench.ingest import (
    CATALOG,
    ROOT,
    DiscardStore,
    _bulk_result,
    _emulator,
    _fmt,
    _free_port,
    _machine,
    _wait_for_port,
    ingest_once,
    load_average,
    mongo_server,
    run_case_process,
    stop_process,
    write_section,
)
from catalog_store.items import CatalogItem, document_size
from catalog_store.models import ItemFilter, WriteResult
from catalog_store.rules import utc_millis
from catalog_store.writes import prepare_items
from gateway.graphql.pagination import encode_cursor

SIZES = (10_000, 50_000, 100_000, 200_000)
CASES = ("raw", "raw+indexes", "sync", "resync", "reads")
RESYNC_AT = 100_000
READS_AT = 100_000
RAW_AT = (10_000, 50_000, 100_000)  # the sizes raw runs at
RAW_INDEXES_AT = (10_000, 100_000)  # raw+indexes costs half a sync's time on SecantusDB
RSS_SIZES = (50_000, 200_000)  # the flat-memory check compares the sync's peak RSS at these sizes
RSS_TARGET_MB = 300
RAW_TARGET = 0.8  # raw time / sync time
RAW_BATCH = 1000
CASE_TIMEOUT = 900.0  # seconds; a case running longer is stopped and reported as such
READ_SECONDS = 15.0  # per query and path: requests stop after this long (or --read-samples)...
READ_MIN_SAMPLES = 3  # ...but not before this many (a 50-item page at 100,000 items takes ~12 s on SecantusDB)
WARMUP_LIMIT = 1.0  # seconds: a warm-up request slower than this counts as a sample (its warm-up share is noise)
IDLE_SECONDS = 3.0  # the gateway's CPU while idle (background tasks) is read for this long before its reads
ID_SAMPLE = 1000  # random item ids (and cursors) the reads draw from
RESULTS = ROOT / ".cache" / "bench" / "mongo-results.json"
MARK_START, MARK_END = "<!-- mongo-benchmark:start -->", "<!-- mongo-benchmark:end -->"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

ITEM_FIELDS = ("id storeName shopifyProductId shopifyVariantId productTitle variantTitle status productImageUrl "
               "variantImageUrl vendor productType productUrl productHandle publishedScope price compareAtPrice "
               "inventoryQuantity options optionValues sku")
PAGE_FIELDS = f"pageInfo {{ hasNextPage endCursor }} edges {{ cursor node {{ {ITEM_FIELDS} }} }}"
READ_FILTER = ItemFilter(in_stock=True, price_max=Decimal("50"))
QUERIES: dict[str, str] = {
    "item(id:)": f"query($c: String!, $id: String!) {{ catalog(name: $c) {{ item(id: $id) {{ {ITEM_FIELDS} }} }} }}",
    "page": ("query($c: String!, $after: String) { catalog(name: $c) { items(first: 50, after: $after) "
             f"{{ {PAGE_FIELDS} }} }} }}"),
    "filtered page + totalCount": (
        "query($c: String!, $after: String) { catalog(name: $c) { items(first: 50, after: $after, "
        f'filter: {{inStock: true, priceMax: "50"}}) {{ totalCount {PAGE_FIELDS} }} }} }}'),
}


# -- CPU accounting ------------------------------------------------------------------------------------


def process_cpu(pid: int) -> float | None:
    """CPU seconds (user + system, all threads) a live process has used, from /proc; None when gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def machine_cpu() -> float:
    """CPU seconds every core of the machine has spent busy (all processes), from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (values + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


def child_pid(marker: str) -> int | None:
    """This process's child whose command line contains `marker`: the emulator and the database
    server are started by context managers that keep their process handles to themselves."""
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == me and marker.encode() in command:
            return int(entry.name)
    return None


@dataclass(frozen=True)
class Reading:
    wall: float
    own: float
    machine: float
    watched: dict[str, float | None]


@dataclass(frozen=True)
class Usage:
    """CPU used between two readings: this process's, each watched process's, everyone else's."""

    seconds: float
    own: float
    watched: dict[str, float | None]
    other_cores: float  # machine busy time not ours nor watched, per second of wall time


class Meter:
    """Reads this process's CPU, that of watched processes (by pid) and the machine's."""

    def __init__(self, watched: dict[str, int | None]) -> None:
        self.pids = watched

    def read(self) -> Reading:
        watched = {name: None if pid is None else process_cpu(pid) for name, pid in self.pids.items()}
        return Reading(time.perf_counter(), time.process_time(), machine_cpu(), watched)

    def since(self, start: Reading) -> Usage:
        end = self.read()
        used: dict[str, float | None] = {}
        for name, before in start.watched.items():
            after = end.watched.get(name)
            used[name] = None if before is None or after is None else after - before
        seconds = end.wall - start.wall
        ours = (end.own - start.own) + sum(v for v in used.values() if v is not None)
        other = max(0.0, (end.machine - start.machine) - ours) / seconds if seconds > 0 else 0.0
        return Usage(seconds, end.own - start.own, used, other)


class CommandTimes(monitoring.CommandListener):
    """Per MongoDB command name: how many, and their summed time from send to reply; plus the wall
    time with at least one command in flight (commands overlap: the sums may exceed it)."""

    def __init__(self) -> None:
        self.by_name: dict[str, list[float]] = {}
        self._open: dict[tuple[Any, int], tuple[str, float]] = {}
        self._since = 0.0
        self.busy = 0.0

    def reset(self) -> None:
        self.by_name.clear()
        self.busy = 0.0
        if self._open:
            self._since = time.perf_counter()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        now = time.perf_counter()
        if not self._open:
            self._since = now
        self._open[(event.connection_id, event.request_id)] = (event.command_name, now)

    def _ended(self, event: monitoring.CommandSucceededEvent | monitoring.CommandFailedEvent) -> None:
        now = time.perf_counter()
        opened = self._open.pop((event.connection_id, event.request_id), None)
        if opened is None:
            return
        entry = self.by_name.setdefault(opened[0], [0, 0.0])
        entry[0] += 1
        entry[1] += now - max(opened[1], self._since)
        if not self._open:
            self.busy += now - self._since

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        self._ended(event)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self._ended(event)


# -- the cases, each in its own process ----------------------------------------------------------------


class DocumentCollector(DiscardStore):
    """Keeps, per variant, the document MongoCatalogStore would store for each written item (its
    `prepare_items` document plus the bookkeeping fields its item writer adds), image patches applied."""

    def __init__(self) -> None:
        super().__init__()
        self.documents: dict[str, dict[str, Any]] = {}
        self.image_patches = 0

    async def write_items(self, catalog: str, items: Sequence[CatalogItem], *, run_id: str | None = None,
                          limit_bytes: int | None = None) -> WriteResult:
        written_at = utc_millis(datetime.now(UTC))
        for prepared in prepare_items(catalog, items):
            assert prepared.document is not None
            variant_id = prepared.item.shopify_variant_id
            self.documents[variant_id] = {**prepared.document, "_id": f"{catalog}/{variant_id}", "_run_id": run_id,
                                          "_written_at": written_at, "_size": prepared.size, "_rev": ObjectId()}
        return WriteResult(written=len(items), written_upto=len(items))

    async def set_variant_image(self, catalog: str, variant_id: str, url: str) -> bool:
        self.image_patches += 1
        doc = self.documents.get(variant_id)
        if doc is None or doc["variant_image_url"] is not None:
            return False
        doc["variant_image_url"] = url
        doc["_size"] = document_size(CatalogItem.from_document(doc).to_document(catalog))
        return True


async def _raw(args: argparse.Namespace, meter: Meter) -> dict[str, Any]:
    from catalog_store.mongo.indexes import INDEXES

    collector = DocumentCollector()
    async with aiohttp.ClientSession() as session:
        await ingest_once(session, collector, args.url, args.variants, run_id="bench-raw")
    documents = list(collector.documents.values())
    del collector
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(args.mongo_uri, tz_aware=True, tzinfo=UTC)
    try:
        await client.drop_database(args.database)
        db = client[args.database]
        if args.case == "raw+indexes":
            await db["items"].create_indexes(INDEXES["items"])
        else:
            await db.create_collection("items")
        gc.collect()
        start = meter.read()
        for offset in range(0, len(documents), RAW_BATCH):
            await db["items"].insert_many(documents[offset:offset + RAW_BATCH], ordered=False)
        usage = meter.since(start)
        stored = await db["items"].estimated_document_count()
        if stored != len(documents):
            raise RuntimeError(f"{stored} of {len(documents)} documents stored")
        await client.drop_database(args.database)
    finally:
        await client.close()
    return _result(usage, items=len(documents))


async def _sync(args: argparse.Namespace, meter: Meter) -> dict[str, Any]:
    from catalog_store.mongo.store import MongoCatalogStore

    commands = CommandTimes()
    monitoring.register(commands)  # before the store's client exists: it applies to clients made after
    store = MongoCatalogStore(args.mongo_uri, database=args.database)
    await store.start()  # index creation is the gateway's start, not the sync's
    last = 0.0

    async def on_progress(progress: Any) -> None:  # read by the parent if the case is stopped
        nonlocal last
        now = time.perf_counter()
        if now - last >= 5.0:
            last = now
            print(json.dumps({"progress": progress.items_written, "seconds": now - start.wall}), flush=True)

    try:
        async with aiohttp.ClientSession() as session:
            gc.collect()
            profiler = cProfile.Profile() if args.profile else None
            start = meter.read()
            commands.reset()
            if profiler is not None:
                profiler.enable()
            outcome = await ingest_once(session, store, args.url, args.variants, run_id=f"bench-{args.case}",
                                        on_progress=on_progress)
            if profiler is not None:
                profiler.disable()
            usage = meter.since(start)
        if profiler is not None:
            Path(args.profile).mkdir(parents=True, exist_ok=True)
            profiler.dump_stats(Path(args.profile) / f"{args.case}-{args.variants}.prof")
    finally:
        await store.close()
    result = _result(usage, items=outcome.items_written)
    result["waiting"] = commands.busy / usage.seconds
    result["commands"] = {name: [int(c), s] for name, (c, s) in sorted(commands.by_name.items())}
    return result


def _percentile(samples: Sequence[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


async def _reads(args: argparse.Namespace, meter: Meter) -> dict[str, Any]:
    """Both paths in one process, so the random ids are read once: the store path's CPU is this
    process's, the GraphQL path's the gateway process's (watched)."""
    from catalog_store.mongo.store import MongoCatalogStore

    store = MongoCatalogStore(args.mongo_uri, database=args.database)
    await store.start()
    rng = random.Random(8)
    docs = await store.database["items"].find({"_catalog": CATALOG}, {"id": 1, "_id": 0}).to_list()
    ids = rng.sample([d["id"] for d in docs], min(ID_SAMPLE, len(docs)))
    del docs
    headers = {"Authorization": f"Bearer {args.gateway_token}", "Content-Type": "application/json"}
    series: list[dict[str, Any]] = []
    idle: float | None = None
    try:
        async with aiohttp.ClientSession(headers=headers) as session:

            async def graphql(query: str, variables: dict[str, Any]) -> None:
                body = {"query": QUERIES[query], "variables": {"c": CATALOG, **variables}}
                async with session.post(f"{args.gateway_url}/graphql", json=body) as response:
                    answer = await response.json()
                if response.status != 200 or answer.get("errors") or not (answer.get("data") or {}).get("catalog"):
                    raise RuntimeError(f"gateway answered {response.status}: {str(answer)[:300]}")
                if query == "item(id:)" and answer["data"]["catalog"]["item"] is None:
                    raise RuntimeError(f"item {variables['id']!r} not found")

            async def on_store(query: str, key: str) -> None:
                if query == "item(id:)":
                    if await store.get_item(CATALOG, key) is None:
                        raise RuntimeError(f"item {key!r} not found")
                    return
                page = await store.list_items(CATALOG, first=50, after=key,
                                              filter=READ_FILTER if query != "page" else None)
                if query == "page" and len(page.items) == 0 and page.has_next_page:
                    raise RuntimeError("an empty page with a next page")

            for path in ("store", "graphql"):
                if path == "graphql":
                    start = meter.read()
                    await asyncio.sleep(IDLE_SECONDS)
                    gateway_idle = meter.since(start).watched.get("gateway")
                    idle = None if gateway_idle is None else gateway_idle / IDLE_SECONDS
                for query in QUERIES:
                    def call(i: int, query: str = query, path: str = path) -> Awaitable[None]:
                        key = ids[i % len(ids)]
                        if path == "store":
                            return on_store(query, key)
                        return graphql(query, {"id": key} if query == "item(id:)" else {"after": encode_cursor(key)})

                    series.append(await _series(query, path, call, meter, args))
    finally:
        await store.close()
    return {"reads": series, "items": len(ids), "gateway_idle_cpu": idle}


async def _series(query: str, path: str, call: Callable[[int], Awaitable[None]], meter: Meter,
                  args: argparse.Namespace) -> dict[str, Any]:
    """Requests one at a time until `--read-seconds` passed (at least READ_MIN_SAMPLES) or
    `--read-samples` were made, after one untimed warm-up request (connections, query caches) unless
    that took longer than WARMUP_LIMIT: then it is the first sample."""
    samples: list[float] = []
    start = meter.read()
    began = time.perf_counter()
    await call(0)
    warmup = time.perf_counter() - began
    if warmup > WARMUP_LIMIT:
        samples.append(warmup)
    else:
        start = meter.read()
    i = 1
    while len(samples) < args.read_samples and (
            len(samples) < READ_MIN_SAMPLES or time.perf_counter() - start.wall < args.read_seconds):
        began = time.perf_counter()
        await call(i)
        samples.append(time.perf_counter() - began)
        i += 1
    usage = meter.since(start)
    cpu = usage.own if path == "store" else usage.watched.get("gateway")
    return {"query": query, "path": path, "samples": samples, "cpu_seconds": cpu, "budget": args.read_seconds,
            "min_samples": READ_MIN_SAMPLES,
            "server_cpu_seconds": usage.watched.get("server"), "other_cores": usage.other_cores,
            "seconds": usage.seconds}


def _result(usage: Usage, *, items: int) -> dict[str, Any]:
    return {"seconds": usage.seconds, "items": items, "cpu_seconds": usage.own,
            "server_cpu_seconds": usage.watched.get("server"), "other_cores": usage.other_cores}


def _run_case_here(args: argparse.Namespace) -> None:
    meter = Meter({"server": args.server_pid, "emulator": args.emulator_pid, "gateway": args.gateway_pid})
    run = {"raw": _raw, "raw+indexes": _raw, "sync": _sync, "resync": _sync, "reads": _reads}[args.case]
    result = asyncio.run(run(args, meter))
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


# -- the orchestrating process -------------------------------------------------------------------------


@dataclass
class CaseResult:
    case: str
    variants: int
    seconds: float | None  # None: stopped after CASE_TIMEOUT, failed or not run
    items: int | None = None
    cpu_seconds: float | None = None
    server_cpu_seconds: float | None = None
    other_cores: float | None = None
    peak_rss_mb: float | None = None
    waiting: float | None = None
    commands: dict[str, list[float]] | None = None
    reads: list[dict[str, Any]] = field(default_factory=list)
    gateway_idle_cpu: float | None = None  # reads: the gateway's CPU seconds per second while idle
    error: str | None = None

    def per_item_us(self, cpu: float | None) -> float | None:
        return None if cpu is None or not self.items else cpu / self.items * 1e6


@dataclass
class Context:
    """What every case of one size is given."""

    mongo_uri: str
    server_pid: int | None
    url: str = ""
    emulator_pid: int | None = None
    database: str = ""
    profile: str | None = None  # directory for the sync cases' cProfile dumps


def _run_case(case: str, variants: int, ctx: Context, *extra: str) -> CaseResult:
    command = [sys.executable, "-m", "bench.mongo", "--case", case, "--url", ctx.url, "--variants", str(variants),
               "--mongo-uri", ctx.mongo_uri, "--database", ctx.database, *extra]
    if ctx.profile and case in ("sync", "resync"):
        command += ["--profile", ctx.profile]
    for flag, pid in (("--server-pid", ctx.server_pid), ("--emulator-pid", ctx.emulator_pid)):
        if pid is not None:
            command += [flag, str(pid)]
    print(f"  {case} ...", flush=True)
    data = run_case_process(command, variants, CASE_TIMEOUT)
    if isinstance(data, str):
        return CaseResult(case, variants, None, error=data)
    return CaseResult(case, variants, data.get("seconds"), data.get("items"), data.get("cpu_seconds"),
                      data.get("server_cpu_seconds"), data.get("other_cores"), data["peak_rss_mb"],
                      data.get("waiting"), data.get("commands"), data.get("reads", []), data.get("gateway_idle_cpu"))


@contextlib.contextmanager
def _gateway(mongo_uri: str, database: str) -> Iterator[tuple[str, str, int]]:
    """`catalog-gateway serve` on the benchmark's database, in its own process: (URL, token, pid)."""
    port = _free_port()
    token = secrets.token_urlsafe(24)
    env = {**os.environ, "MONGODB_URI": mongo_uri, "MONGODB_DATABASE": database, "GATEWAY_ADMIN_TOKEN": token,
           "GATEWAY_HOST": "127.0.0.1", "GATEWAY_PORT": str(port), "GATEWAY_SECRET_KEY": Fernet.generate_key().decode()}
    env.pop("GATEWAY_READ_TOKEN", None)
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "serve"], cwd=ROOT, env=env,
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_for_port(port, proc, "the gateway")
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:  # listening is not ready: the lifespan starts the store first
                with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/healthz", timeout=5) as response:
                    if response.status == 200:
                        break
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError(f"the gateway did not get healthy: {log.read()[-2000:].decode(errors='replace')}")
                time.sleep(0.2)
            yield url, token, proc.pid
        finally:
            stop_process(proc)


def _drop(mongo_uri: str, database: str) -> None:
    client: MongoClient[dict[str, Any]] = MongoClient(mongo_uri)
    try:
        client.drop_database(database)
    finally:
        client.close()


def run(sizes: Sequence[int], cases: Sequence[str], *, resync_at: int, reads_at: int, raw_at: Sequence[int],
        raw_indexes_at: Sequence[int], read_args: Sequence[str], profile: str | None,
        ) -> tuple[list[CaseResult], list[str]]:
    results: list[CaseResult] = []
    notes: list[str] = []
    stopped: dict[str, int] = {}  # case → the size at which it exceeded CASE_TIMEOUT

    def record(result: CaseResult) -> CaseResult:
        _print_result(result)
        results.append(result)
        if result.error:
            notes.append(f"{result.case} at {result.variants:,} variants: {result.error}.")
            if result.error.startswith("stopped"):
                stopped[result.case] = result.variants
        return result

    with mongo_server() as uri:
        server_pid = None if os.environ.get("MONGODB_URI", "").strip() else child_pid("secantusd")
        ctx = Context(uri, server_pid, profile=profile)
        for variants in sizes:
            with _emulator(variants) as base_url:
                ctx.emulator_pid = child_pid("shopify_emulator")
                ctx.url, file_bytes, generated = asyncio.run(_bulk_result(base_url))
                ctx.database = f"bench_{os.getpid()}_{variants}"
                print(f"{variants:,} variants: {file_bytes / 1e6:.0f} MB of JSONL "
                      f"(emulator bulk operation {generated:.1f} s); load average {load_average()}", flush=True)
                try:
                    synced = False
                    for case in cases:
                        if case == "resync" and (variants != resync_at or not synced):
                            continue
                        if (case == "raw" and variants not in raw_at) or (
                                case == "raw+indexes" and variants not in raw_indexes_at):
                            continue
                        if case == "reads":
                            continue
                        if case in stopped:
                            record(CaseResult(case, variants, None,
                                              error=f"not run: already stopped at {stopped[case]:,} variants"))
                            continue
                        result = record(_run_case(case, variants, ctx))
                        synced = synced or (case == "sync" and result.seconds is not None)
                    if "reads" in cases and variants == reads_at and synced:
                        with _gateway(uri, ctx.database) as (gateway_url, token, gateway_pid):
                            record(_run_case("reads", variants, ctx, "--gateway-url", gateway_url,
                                             "--gateway-token", token, "--gateway-pid", str(gateway_pid),
                                             *read_args))
                finally:
                    _drop(uri, ctx.database)
    return results, notes


# -- report --------------------------------------------------------------------------------------------


def _find(results: Sequence[CaseResult], case: str, variants: int) -> CaseResult | None:
    return next((r for r in results if r.case == case and r.variants == variants and r.seconds), None)


def _ratio(results: Sequence[CaseResult], reference: str, r: CaseResult) -> float | None:
    """The reference case's time divided by `r`'s, at the same size."""
    ref = _find(results, reference, r.variants)
    if ref is None or ref.seconds is None or not r.seconds or r.case not in ("sync", "resync"):
        return None
    return ref.seconds / r.seconds


def _write_table(results: Sequence[CaseResult]) -> list[str]:
    rows = ["| variants | case | time | items/s | client CPU | client µs/item | server CPU | server µs/item "
            "| waiting | peak RSS | other load | raw / case | raw+indexes / case |",
            "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        if r.case == "reads":
            continue
        if r.seconds is None:
            rows.append(f"| {r.variants:,} | {r.case} | {r.error} | — | — | — | — | — | — | — | — | — | — |")
            continue
        rows.append(
            f"| {r.variants:,} | {r.case} | {r.seconds:.2f} s | {_fmt(r.items / r.seconds if r.items else None, ',.0f')} "
            f"| {_fmt(r.cpu_seconds, '.2f', ' s')} | {_fmt(r.per_item_us(r.cpu_seconds), '.0f')} "
            f"| {_fmt(r.server_cpu_seconds, '.2f', ' s')} | {_fmt(r.per_item_us(r.server_cpu_seconds), '.0f')} "
            f"| {_fmt(None if r.waiting is None else r.waiting * 100, '.0f', '%')} "
            f"| {_fmt(r.peak_rss_mb, '.0f', ' MB')} | {_fmt(r.other_cores, '.2f')} "
            f"| {_fmt(_ratio(results, 'raw', r), '.2f')} | {_fmt(_ratio(results, 'raw+indexes', r), '.2f')} |"
        )
    return rows


def _ms(seconds: float | None) -> str:
    if seconds is not None and seconds >= 1.0:
        return f"{seconds:.2f} s"
    return _fmt(None if seconds is None else seconds * 1000, ".1f", " ms")


def _read_table(reads: CaseResult) -> list[str]:
    rows = ["| query | path | requests | p50 | p99 | max | gateway CPU / request | server CPU / request | other load |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for s in reads.reads:
        n = len(s["samples"])
        server = s["server_cpu_seconds"]
        rows.append(
            f"| {s['query']} | {s['path']} | {n} | {_ms(_percentile(s['samples'], 0.5))} "
            f"| {_ms(_percentile(s['samples'], 0.99))} | {_ms(max(s['samples']))} "
            f"| {_ms(None if s['cpu_seconds'] is None else s['cpu_seconds'] / n)} "
            f"| {_ms(None if server is None else server / n)} | {s['other_cores']:.2f} |"
        )
    return rows


def _command_split(r: CaseResult) -> str:
    """The commands taking at least 5% of the summed command time, largest first."""
    total = sum(seconds for _, seconds in (r.commands or {}).values())
    parts = [f"{name} {count:,.0f}× {seconds:.1f} s" for name, (count, seconds)
             in sorted((r.commands or {}).items(), key=lambda kv: -kv[1][1]) if seconds >= 0.05 * total]
    return ", ".join(parts)


def _ratios(results: Sequence[CaseResult], reference: str) -> str | None:
    found = [(r.variants, _ratio(results, reference, r)) for r in results if r.case == "sync" and r.seconds]
    shown = [f"{ratio:.2f} at {variants:,}" for variants, ratio in found if ratio is not None]
    return ", ".join(shown) + " variants" if shown else None


def _summary(results: Sequence[CaseResult]) -> list[str]:
    """The issue's targets and where the time went, in sentences."""
    lines: list[str] = []
    syncs = [r for r in results if r.case == "sync" and r.seconds]
    raw = _ratios(results, "raw")
    if raw:
        worst = min(x for r in syncs if (x := _ratio(results, "raw", r)) is not None)
        lines.append(f"Full sync against raw `insert_many` (raw time / sync time): {raw} (target ≥ {RAW_TARGET}: "
                     f"{'met' if worst >= RAW_TARGET else 'not met'}).")
    indexed = _ratios(results, "raw+indexes")
    if indexed:
        lines.append(f"The same against raw `insert_many` into a collection with the store's indexes: {indexed}.")
    for r in results:
        first = _find(results, "sync", r.variants)
        if r.case == "resync" and r.seconds and first is not None and first.seconds:
            lines.append(f"Re-sync of the unchanged catalog at {r.variants:,} variants: {r.seconds:.1f} s, "
                         f"{r.seconds / first.seconds:.2f} × the first sync's {first.seconds:.1f} s.")
    cpu = [f"{us:.0f} µs at {r.variants:,}" for r in syncs if (us := r.per_item_us(r.cpu_seconds)) is not None]
    resync_cpu = [f"{us:.0f} µs at {r.variants:,}" for r in results
                  if r.case == "resync" and (us := r.per_item_us(r.cpu_seconds)) is not None]
    if cpu:
        lines.append(f"Gateway CPU per item (the syncing process's CPU time / items): full sync {', '.join(cpu)} "
                     f"variants" + (f"; re-sync {', '.join(resync_cpu)}." if resync_cpu else "."))
    rss = {r.variants: r.peak_rss_mb for r in syncs if r.peak_rss_mb is not None}
    low, high = RSS_SIZES if all(s in rss for s in RSS_SIZES) else (min(rss, default=0), max(rss, default=0))
    if low in rss and high in rss and low != high:
        met = rss[high] < RSS_TARGET_MB
        lines.append(f"Peak RSS of the syncing process: {rss[low]:.0f} MB at {low:,} variants, {rss[high]:.0f} MB at "
                     f"{high:,} ({rss[high] - rss[low]:+.0f} MB for {high - low:,} more variants; target < "
                     f"{RSS_TARGET_MB} MB: {'met' if met else 'not met'}).")
    resync_sizes = {r.variants for r in results if r.case == "resync"}
    largest = max((r.variants for r in syncs), default=0)
    for r in results:
        if r.seconds and r.commands and r.waiting is not None and (
                r.case == "resync" or (r.case == "sync" and (r.variants in resync_sizes or r.variants == largest))):
            lines.append(f"{r.case} at {r.variants:,}: a MongoDB command in flight {r.waiting * 100:.0f}% of the "
                         f"time; the largest summed command times: {_command_split(r)}.")
    return lines


def _write_report(path: Path, results: list[CaseResult], notes: list[str], machine: str, measured: str,
                  server: str, load: str) -> None:
    reads = next((r for r in results if r.case == "reads" and r.reads), None)
    body = [
        "## Mongo path (`python -m bench.mongo`, `make bench`)",
        "",
        f"Measured {measured} on {machine}; server: {server}; load average (1, 5, 15 min) {load}.",
        "",
        "One server for the whole run; the emulator, the server and (for GraphQL reads) the gateway run in",
        "their own processes, and every case in a fresh one (peak RSS is its `ru_maxrss`). Times are wall",
        "times of the case's timed section. `client CPU` is the measuring process's CPU time (for sync and",
        "resync: the gateway's work in a full sync), `server CPU` the database server's (when this run",
        "started it), `other load` the cores busy with other processes meanwhile (the machine is shared:",
        "compare within one run), `waiting` the share of the time with a MongoDB command in flight.",
        "",
        "- **raw**: the documents the store writes for this file (made before the clock starts), PyMongo",
        "  `insert_many` in batches of 1,000, unordered, into a fresh collection with only `_id` indexed.",
        "- **raw+indexes**: the same into a fresh collection with the store's five item indexes.",
        "- **sync**: a full sync, `run_ingest` into `MongoCatalogStore` on a fresh database (download,",
        "  decode, mapping, checks, writes, sweep), as in the ingest benchmark.",
        "- **resync**: the same file again over the catalog the sync left (nothing changed).",
        "",
        *_write_table(results),
        "",
        *[f"- {line}" for line in _summary(results)],
    ]
    if reads is not None:
        first = reads.reads[0]
        idle = reads.gateway_idle_cpu
        idle_note = (f" Idle, the gateway used {idle * 1000:.1f} ms CPU per second (background tasks, included)."
                     if idle is not None else "")
        body += [
            "",
            f"Reads at {reads.variants:,} items, one request at a time, each query for "
            f"{first.get('budget', READ_SECONDS):.0f} s or at least {first.get('min_samples', READ_MIN_SAMPLES)} "
            f"requests, after one untimed warm-up request (counted when slower than {WARMUP_LIMIT:.0f} s); with "
            "fewer than 100 requests p99 is the maximum. `store`: the `MongoCatalogStore` call in the measuring "
            "process (CPU: that process's); `graphql`: POST /graphql to `catalog-gateway serve` (uvicorn on "
            "127.0.0.1, its own process) on the same database (CPU: the gateway process's)." + idle_note,
            "Pages ask for all 20 item fields from a random item id as `after` cursor; the filter is "
            "`{inStock: true, priceMax: \"50\"}`.",
            "",
            *_read_table(reads),
        ]
    body += [*([""] if notes else []), *[f"- {note}" for note in notes]]
    write_section(path, MARK_START, MARK_END, body)


def _print_result(r: CaseResult) -> None:
    if r.seconds is None and not r.reads:
        print(f"  {r.case:12s} {r.error}", flush=True)
        return
    if r.case == "reads":
        for s in r.reads:
            print(f"  {s['path']:7s} {s['query']:27s} n={len(s['samples']):<4d} "
                  f"p50 {_percentile(s['samples'], 0.5) * 1000:9.1f} ms  p99 {_percentile(s['samples'], 0.99) * 1000:9.1f} ms",
                  flush=True)
        return
    assert r.seconds is not None
    print(f"  {r.case:12s} {r.seconds:8.2f} s  {(r.items or 0) / r.seconds:9,.0f} items/s  "
          f"client CPU {_fmt(r.cpu_seconds, '.2f', ' s')}  server CPU {_fmt(r.server_cpu_seconds, '.2f', ' s')}  "
          f"peak RSS {_fmt(r.peak_rss_mb, '.0f', ' MB')}  other load {_fmt(r.other_cores, '.2f')}", flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.mongo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="variant counts, comma separated")
    parser.add_argument("--cases", default=",".join(CASES), help=f"subset of {','.join(CASES)}")
    parser.add_argument("--resync-at", type=int, default=RESYNC_AT, help="the size the re-sync runs at")
    parser.add_argument("--reads-at", type=int, default=READS_AT, help="the size the reads run at")
    parser.add_argument("--raw-at", default=",".join(map(str, RAW_AT)), help="the sizes raw runs at, comma separated")
    parser.add_argument("--raw-indexes-at", default=",".join(map(str, RAW_INDEXES_AT)),
                        help="the sizes raw+indexes runs at, comma separated")
    parser.add_argument("--read-seconds", type=float, default=READ_SECONDS,
                        help=f"per query and path (at least {READ_MIN_SAMPLES} requests)")
    parser.add_argument("--read-samples", type=int, default=200, help="at most this many requests per query and path")
    parser.add_argument("--profile", metavar="DIR",
                        help="cProfile the sync cases' timed sections into DIR/<case>-<variants>.prof "
                             "(slows the client: such a run's times are not the benchmark's)")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--no-report", action="store_true", help="print only; leave docs/benchmarks.md alone")
    parser.add_argument("--report-only", action="store_true",
                        help=f"rewrite the report from the last run's results ({RESULTS.relative_to(ROOT)})")
    for internal in ("--case", "--url", "--mongo-uri", "--database", "--gateway-url", "--gateway-token"):
        parser.add_argument(internal, help=argparse.SUPPRESS)  # one case in this process
    for internal in ("--variants", "--server-pid", "--emulator-pid", "--gateway-pid"):
        parser.add_argument(internal, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.case:
        _run_case_here(args)
        return
    if args.report_only:
        saved = json.loads(RESULTS.read_text())
        _write_report(args.output, [CaseResult(**r) for r in saved["results"]], saved["notes"], saved["machine"],
                      saved["measured"], saved["server"], saved["load"])
        print(f"wrote {args.output}")
        return
    sizes = [int(s) for s in args.sizes.split(",") if s]
    cases = [c for c in CASES if c in args.cases.split(",")]
    unknown = set(args.cases.split(",")) - set(CASES) - {""}
    if unknown:
        parser.error(f"unknown cases {sorted(unknown)}; choose from {', '.join(CASES)}")
    server = ("$MONGODB_URI" if os.environ.get("MONGODB_URI", "").strip()
              else f"SecantusDB {_version('SecantusDB')} (`secantusd-py`, tests/secantus.py)")
    load_before = load_average()
    print(f"Mongo path benchmark on {_machine()}; server: {server}; load average {load_before}", flush=True)
    results, notes = run(sizes, cases, resync_at=args.resync_at, reads_at=args.reads_at,
                         raw_at=[int(s) for s in args.raw_at.split(",") if s],
                         raw_indexes_at=[int(s) for s in args.raw_indexes_at.split(",") if s],
                         read_args=["--read-seconds", str(args.read_seconds), "--read-samples", str(args.read_samples)],
                         profile=args.profile)
    load = f"{load_before} at the start, {load_average()} at the end"
    for line in _summary(results):
        print(f"- {line}")
    if not args.no_report:
        measured = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps({"machine": _machine(), "measured": measured, "notes": notes, "server": server,
                                       "load": load, "results": [asdict(r) for r in results]}, indent=1))
        _write_report(args.output, results, notes, _machine(), measured, server, load)
        print(f"wrote {args.output}")


def _version(distribution: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return "?"


if __name__ == "__main__":
    main()
