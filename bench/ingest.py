"""Ingest benchmark: `python -m bench.ingest` (run by `make bench`).

For each size the Shopify emulator (in its own process, so its memory is not counted) generates a
shop and runs the products bulk query; every case then reads that same JSONL result over HTTP from
the emulator, each case in a fresh subprocess so its peak RSS (`ru_maxrss`) is its own:

- baseline: download + decode only, the issue's definition: `JsonlDownload` + `orjson.loads` per line
  (a general-purpose decoder, what any consumer of the file needs at least), no items;
- typed:    download + the pipeline's own typed msgspec decoder only (about 1.5x faster than orjson
  here): a stricter reference, the part of the pipeline no item building can go below;
- pipeline: `run_ingest` into a store that discards writes (the pipeline's own cost and memory);
- memory:   `run_ingest` into `MemoryCatalogStore` (its RSS includes every stored item);
- mongo:    `run_ingest` into `MongoCatalogStore` on SecantusDB (tests/secantus.py starts one), or on
  $MONGODB_URI when set. Opt-in (`--cases ...,mongo`): `make bench` measures the Mongo path in full,
  on one server, with `python -m bench.mongo`, so running it here too would only spend time twice.

The results go to the terminal and to docs/benchmarks.md (between the ingest markers).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bulk.full_sync.ingest import IngestOutcome, IngestProgress, IngestTarget, run_ingest
from bulk.full_sync.jsonl import Block, JsonlDownload, LineDecoder, MalformedLines
from bulk.mapping.variants import BulkLine
from bulk.shopify.documents import BULK_OPERATION_NODE, BULK_RUN_QUERY, PRODUCTS_BULK_QUERY
from catalog_store.items import CatalogItem, Identifier
from catalog_store.models import CatalogInfo, WriteResult

ROOT = Path(__file__).resolve().parent.parent
SIZES = (10_000, 100_000, 1_000_000)
CASES = ("baseline", "typed", "pipeline", "memory", "mongo")
DEFAULT_CASES = ("baseline", "typed", "pipeline", "memory")  # mongo: see the module doc
REFERENCES = ("baseline", "typed")
CASE_TIMEOUT = 600.0  # seconds; a case running longer is stopped and reported as such
PROGRESS_EVERY = 5.0  # seconds between the progress lines a case prints
SHOP = "bench.myshopify.com"
CATALOG = "shopify_bench"
TOKEN = "shpat_bench"
API_VERSION = "2026-01"
RESULTS = ROOT / ".cache" / "bench" / "ingest-results.json"  # the last run's numbers (--report-only)
MARK_START, MARK_END = "<!-- ingest-benchmark:start -->", "<!-- ingest-benchmark:end -->"


@dataclass
class CaseResult:
    case: str
    variants: int
    file_bytes: int
    seconds: float | None  # None: stopped after CASE_TIMEOUT or failed
    cpu_seconds: float | None = None
    peak_rss_mb: float | None = None
    items_written: int | None = None
    error: str | None = None

    @property
    def variants_per_s(self) -> float | None:
        return self.variants / self.seconds if self.seconds else None

    @property
    def mb_per_s(self) -> float | None:
        return self.file_bytes / 1e6 / self.seconds if self.seconds else None


# -- one case, in its own process ------------------------------------------------------------------


class DiscardStore:
    """Accepts every write and keeps nothing: isolates the pipeline's own time and memory."""

    def __init__(self) -> None:
        self.items = 0

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def ensure_catalog(self, name: str, shop_domain: str, store_name: str) -> CatalogInfo:
        return CatalogInfo(name, shop_domain, store_name)

    async def write_items(self, catalog: str, items: Sequence[CatalogItem], *, run_id: str | None = None,
                          limit_bytes: int | None = None) -> WriteResult:
        self.items += len(items)
        return WriteResult(written=len(items), written_upto=len(items))

    async def mark_seen(self, catalog: str, variant_ids: Sequence[str], run_id: str) -> None: ...

    async def set_variant_image(self, catalog: str, variant_id: str, url: str) -> bool:
        return True

    async def sweep(self, catalog: str, run_id: str, started_at: datetime) -> int:
        return 0


def _make_store(case: str, mongo_uri: str | None) -> Any:
    if case == "pipeline":
        return DiscardStore()
    if case == "memory":
        from catalog_store.memory import MemoryCatalogStore

        return MemoryCatalogStore()
    if case == "mongo":
        from catalog_store.mongo.store import MongoCatalogStore

        if mongo_uri is None:
            raise SystemExit("--mongo-uri is required for the mongo case")
        return MongoCatalogStore(mongo_uri, database=f"bench_{os.getpid()}")
    raise SystemExit(f"unknown case {case!r}")


async def ingest_once(
    session: aiohttp.ClientSession,
    store: Any,
    url: str,
    variants: int,
    *,
    run_id: str = "bench-run",
    on_progress: Callable[[IngestProgress], Awaitable[object]] | None = None,
) -> IngestOutcome:
    """One full sync's ingest of the bench shop's file (variant ids as item ids, no storage limit),
    sweep included; raises unless every variant was written or skipped, so no case is timed on a
    partial run."""
    await store.ensure_catalog(CATALOG, SHOP, "Bench Store")  # as the sync service does before its ingest
    target = IngestTarget(
        store=store, catalog=CATALOG, identifier=Identifier.SHOPIFY_VARIANT_ID, shop_domain=SHOP,
        store_name="Bench Store", run_id=run_id, run_started_at=datetime.now(UTC), limit_bytes=None,
    )
    outcome = await run_ingest(url, session, target, on_progress)
    if outcome.items_written + sum(s.count for s in outcome.skipped) != variants:
        raise RuntimeError(f"ingest wrote {outcome.items_written} and skipped {outcome.skipped} "
                           f"of {variants} variants")
    return outcome


async def _measure(case: str, url: str, variants: int, mongo_uri: str | None) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session:
        if case in REFERENCES:
            decoder = LineDecoder(BulkLine, MalformedLines())
            loads = orjson.loads
            lines = 0

            async def sink(block: Block) -> None:
                nonlocal lines
                if case == "baseline":
                    for line in block.data.splitlines():
                        loads(line)
                        lines += 1
                    return
                for piece in block.pieces():
                    lines += len(decoder.decode(piece)[0])

            download = JsonlDownload(session, url)
            started, cpu = time.perf_counter(), time.process_time()
            await download.run(sink)
            return {"seconds": time.perf_counter() - started, "cpu_seconds": time.process_time() - cpu,
                    "file_bytes": download.bytes_downloaded, "items_written": None}

        store = _make_store(case, mongo_uri)
        await store.start()
        last_report = 0.0

        async def on_progress(progress: IngestProgress) -> None:
            nonlocal last_report
            now = time.perf_counter()
            if now - last_report >= PROGRESS_EVERY:  # read by the parent if the case is stopped
                last_report = now
                print(json.dumps({"progress": progress.items_written, "seconds": now - started}), flush=True)

        try:
            started, cpu = time.perf_counter(), time.process_time()
            outcome = await ingest_once(session, store, url, variants, on_progress=on_progress)
            seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
        finally:
            if case == "mongo":
                await store.database.client.drop_database(store.database.name)
            await store.close()
    return {"seconds": seconds, "cpu_seconds": cpu_seconds, "file_bytes": outcome.bytes_downloaded,
            "items_written": outcome.items_written}


def _run_case_here(args: argparse.Namespace) -> None:
    result = asyncio.run(_measure(args.case, args.url, args.variants, args.mongo_uri))
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def run_case_process(command: list[str], variants: int, timeout: float = CASE_TIMEOUT) -> dict[str, Any] | str:
    """Run one benchmark case in its own process: its last stdout line (JSON), or why it gave none
    (stopped after `timeout` seconds, with the progress it reported; or its last line of stderr)."""
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        progress = [json.loads(line) for line in out.splitlines() if line.startswith('{"progress"')]
        done = (f" with {progress[-1]['progress']:,} of {variants:,} items written "
                f"({progress[-1]['progress'] / progress[-1]['seconds']:,.0f} items/s)") if progress else ""
        return f"stopped after {timeout / 60:.0f} min{done}"
    if proc.returncode != 0:
        sys.stderr.write(err[-4000:])
        return (err.strip().splitlines() or ["failed"])[-1]
    data: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return data


def _run_case(case: str, url: str, variants: int, file_bytes: int, mongo_uri: str | None) -> CaseResult:
    command = [sys.executable, "-m", "bench.ingest", "--case", case, "--url", url, "--variants", str(variants)]
    if mongo_uri:
        command += ["--mongo-uri", mongo_uri]
    data = run_case_process(command, variants)
    if isinstance(data, str):
        return CaseResult(case, variants, file_bytes, None, error=data)
    return CaseResult(case, variants, data["file_bytes"], data["seconds"], data["cpu_seconds"],
                      data["peak_rss_mb"], data["items_written"])


# -- the emulator and the MongoDB-wire server, each in its own process ------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, proc: subprocess.Popen[Any], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within {timeout:.0f} s")


@contextlib.contextmanager
def _emulator(variants: int) -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "shopify_emulator", "--port", str(port), "--variants", str(variants),
         "--shop", SHOP, "--token", TOKEN, "--bulk-duration", "0"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        _wait_for_port(port, proc, "the Shopify emulator")
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(proc, grace=10)


def stop_process(proc: subprocess.Popen[Any], grace: float = 15) -> None:
    """Terminate a benchmark's server process, killing it after `grace` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def mongo_server() -> Iterator[str]:
    """The MongoDB-wire server of a run: $MONGODB_URI when set (the benchmarks create and drop their
    own `bench_*` databases on it), else a SecantusDB started for the run (tests/secantus.py)."""
    uri = os.environ.get("MONGODB_URI", "").strip()
    if uri:
        yield uri
        return
    from tests.secantus import ServerUnavailable, secantus_server

    try:
        with secantus_server() as started:
            yield started
    except ServerUnavailable as exc:
        raise SystemExit(str(exc)) from None


async def _bulk_result(base_url: str) -> tuple[str, int, float]:
    """Run the products bulk query on the emulator: (result URL, file size, seconds it took)."""
    endpoint = f"{base_url}/shops/{SHOP}/admin/api/{API_VERSION}/graphql.json"
    headers = {"X-Shopify-Access-Token": TOKEN}
    started = time.perf_counter()
    async with aiohttp.ClientSession(headers=headers) as session:

        async def call(query: str, variables: dict[str, Any]) -> dict[str, Any]:
            async with session.post(endpoint, json={"query": query, "variables": variables}) as resp:
                body = await resp.json()
            if resp.status != 200 or body.get("errors"):
                raise RuntimeError(f"emulator answered {resp.status}: {body}")
            return body["data"]

        data = await call(BULK_RUN_QUERY, {"query": PRODUCTS_BULK_QUERY, "groupObjects": False})
        payload = data["bulkOperationRunQuery"]
        if payload["userErrors"]:
            raise RuntimeError(f"bulk query refused: {payload['userErrors']}")
        operation_id = payload["bulkOperation"]["id"]
        while True:
            node = (await call(BULK_OPERATION_NODE, {"id": operation_id}))["node"]
            if node["status"] == "COMPLETED":
                return node["url"], int(node["fileSize"]), time.perf_counter() - started
            if node["status"] not in ("CREATED", "RUNNING"):
                raise RuntimeError(f"bulk operation ended {node['status']}: {node.get('errorCode')}")
            await asyncio.sleep(0.1)


# -- report ------------------------------------------------------------------------------------------


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        match = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.MULTILINE)
        if match:
            cpu = match.group(1).strip()
    memory = ""
    with contextlib.suppress(OSError, AttributeError):
        kib = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))  # type: ignore[union-attr]
        memory = f", {kib / 1024 / 1024:.0f} GiB RAM"
    return (f"{cpu}, {os.cpu_count()} cores{memory}; Linux {platform.release()}; "
            f"Python {platform.python_version()}")


def load_average() -> str:
    """The machine's 1, 5 and 15 minute load averages, for the reports: the machine may be shared."""
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def _fmt(value: float | None, pattern: str, unit: str = "") -> str:
    return "—" if value is None else format(value, pattern) + unit


def _ratio(results: list[CaseResult], r: CaseResult, reference: str) -> float | None:
    """The reference case's time divided by `r`'s, at the same size (None when either is missing)."""
    ref = next((x for x in results if x.case == reference and x.variants == r.variants), None)
    if ref is None or not ref.seconds or not r.seconds or r.case in REFERENCES:
        return None
    return ref.seconds / r.seconds


def _table(results: list[CaseResult]) -> str:
    rows = ["| variants | file | case | time | client CPU | variants/s | MB/s | peak RSS "
            "| ingest / baseline | ingest / typed |",
            "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        time_text = f"{r.seconds:.2f} s" if r.seconds is not None else (r.error or "—")
        rows.append(
            f"| {r.variants:,} | {r.file_bytes / 1e6:.0f} MB | {r.case} | {time_text} | "
            f"{_fmt(r.cpu_seconds, '.2f', ' s')} | {_fmt(r.variants_per_s, ',.0f')} | {_fmt(r.mb_per_s, '.1f')} | "
            f"{_fmt(r.peak_rss_mb, '.0f', ' MB')} | {_fmt(_ratio(results, r, 'baseline'), '.2f')} | "
            f"{_fmt(_ratio(results, r, 'typed'), '.2f')} |"
        )
    return "\n".join(rows)


def _targets(results: list[CaseResult]) -> list[str]:
    """The two targets, checked on the largest size measured."""
    lines: list[str] = []
    largest = max((r.variants for r in results), default=0)
    at = {r.case: r for r in results if r.variants == largest}
    rss = [f"{case} {at[case].peak_rss_mb:.0f} MB" for case in ("pipeline", "mongo")
           if case in at and at[case].peak_rss_mb is not None]
    if rss:
        lines.append(f"Peak RSS at {largest:,} variants, stores out of process or discarding: {', '.join(rss)} "
                     f"(target < 300 MB). The memory store case also holds every item it stored.")
    memory = at.get("memory")
    if memory is not None:
        ratios = [f"{_ratio(results, memory, ref):.2f} × the {ref} case's throughput" for ref in REFERENCES
                  if _ratio(results, memory, ref) is not None]
        if ratios:
            lines.append(f"Ingest into the memory store at {largest:,} variants: {' and '.join(ratios)} "
                         f"(target ≥ 0.5 of the baseline).")
    return lines


CASE_NOTES = {
    "baseline": ["download + `orjson.loads` of every line, no items built (the issue's definition",
                 "  of download + decode; its calibration, orjson decode-only, is this decoder)."],
    "typed": ["download + the pipeline's own typed msgspec decoding only: what no item building",
              "  can go below."],
    "pipeline": ["`run_ingest` into a store that discards writes: the pipeline's own time and memory."],
    "memory": ["`run_ingest` into `MemoryCatalogStore`; its RSS includes every item it stores."],
    "mongo": ["`run_ingest` into `MongoCatalogStore` (SecantusDB, or $MONGODB_URI); the Mongo path in",
              "  full (raw inserts, re-sync, reads) is in the next section."],
}


def write_section(path: Path, start: str, end: str, body: list[str]) -> None:
    """Replace the text between the `start` and `end` markers of `path` by `body` (appended, with
    its markers, when they are missing): the rest of the file is written by hand."""
    section = "\n".join([start, *body, end])
    text = path.read_text() if path.exists() else "# Benchmarks\n\n"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        text = before + section + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _write_report(path: Path, results: list[CaseResult], notes: list[str], machine: str, measured: str) -> None:
    present = [case for case in CASES if any(r.case == case for r in results)]
    write_section(path, MARK_START, MARK_END, [
        "## Ingest (`python -m bench.ingest`, `make bench`)",
        "",
        f"Measured {measured} on {machine}.",
        "",
        "Each case reads the same emulator-generated JSONL over HTTP on 127.0.0.1 (products bulk query,",
        "`groupObjects: false`) in a fresh process; peak RSS is that process's `ru_maxrss`. The emulator",
        "(and the database server, if any) run in their own processes. `ingest / baseline` is the",
        "baseline's time divided by the case's (1.0 = as fast as download + decode alone); `ingest / typed`",
        "the same against the typed-decode reference. `client CPU` is the measuring process's CPU time:",
        "well below `time` means the case waited on the store's server.",
        "",
        *[line for case in present for line in [f"- **{case}**: {CASE_NOTES[case][0]}", *CASE_NOTES[case][1:]]],
        "",
        _table(results),
        "",
        *[f"- {line}" for line in _targets(results)],
        *[f"- {note}" for note in notes],
    ])


def _print_result(r: CaseResult) -> None:
    if r.seconds is None:
        print(f"  {r.case:9s} {r.error}", flush=True)
        return
    print(f"  {r.case:9s} {r.seconds:7.2f} s  {r.variants_per_s:10,.0f} variants/s  {r.mb_per_s:6.1f} MB/s  "
          f"peak RSS {r.peak_rss_mb:5.0f} MB  (cpu {r.cpu_seconds:.2f} s)", flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="variant counts, comma separated")
    parser.add_argument("--cases", default=",".join(DEFAULT_CASES),
                        help=f"subset of {','.join(CASES)} (default {','.join(DEFAULT_CASES)})")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--no-report", action="store_true", help="print only; leave docs/benchmarks.md alone")
    parser.add_argument("--report-only", action="store_true",
                        help=f"rewrite the report from the last run's results ({RESULTS.relative_to(ROOT)})")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: run one case in this process
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--variants", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--mongo-uri", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.case:
        _run_case_here(args)
        return
    if args.report_only:
        saved = json.loads(RESULTS.read_text())
        _write_report(args.output, [CaseResult(**r) for r in saved["results"]], saved["notes"], saved["machine"],
                      saved["measured"])
        print(f"wrote {args.output}")
        return

    sizes = [int(s) for s in args.sizes.split(",") if s]
    cases = [c for c in args.cases.split(",") if c]
    unknown = set(cases) - set(CASES)
    if unknown:
        parser.error(f"unknown cases {sorted(unknown)}; choose from {', '.join(CASES)}")
    load_before = load_average()
    print(f"Ingest benchmark on {_machine()}; load average {load_before}", flush=True)
    results: list[CaseResult] = []
    notes: list[str] = []
    stopped: dict[str, int] = {}  # case → the size at which it exceeded CASE_TIMEOUT
    with contextlib.ExitStack() as stack:
        mongo_uri = None
        if "mongo" in cases:
            mongo_uri = stack.enter_context(mongo_server())
        for variants in sizes:
            with _emulator(variants) as base_url:
                url, file_bytes, generated = asyncio.run(_bulk_result(base_url))
                print(f"{variants:,} variants: {file_bytes / 1e6:.0f} MB of JSONL "
                      f"(emulator bulk operation {generated:.1f} s)", flush=True)
                for case in cases:
                    if case in stopped:  # it cannot get faster on a bigger file
                        result = CaseResult(case, variants, file_bytes, None,
                                            error=f"not run: already stopped at {stopped[case]:,} variants")
                        _print_result(result)
                        results.append(result)
                        continue
                    result = _run_case(case, url, variants, file_bytes, mongo_uri)
                    if result.error and result.error.startswith("stopped"):
                        stopped[case] = variants
                    _print_result(result)
                    results.append(result)
                    if result.seconds is None:
                        notes.append(f"{case} at {variants:,} variants: {result.error}.")
    if not args.no_report:
        measured = (f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC (load average, 1/5/15 min: {load_before} at the start, "
                    f"{load_average()} at the end)")
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps({"machine": _machine(), "measured": measured, "notes": notes,
                                       "results": [asdict(r) for r in results]}, indent=1))
        _write_report(args.output, results, notes, _machine(), measured)
        print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
