"""`catalog-gateway sync SHOP_DOMAIN`: one full sync in the terminal, with a live progress bar and
a summary table (skip reasons with examples; the error and its fix on failure)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import AsyncIterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from bulk.errors import SyncServiceError
from bulk.full_sync.service import SyncService
from bulk.outcomes import error_fix
from catalog_store.items import Identifier, normalize_shop_domain
from catalog_store.models import RunStatus, SyncRun
from catalog_store.store import CatalogStore
from gateway.cli.common import EXIT_STORE, EXIT_USAGE, load_settings, start_store, store_description
from gateway.settings import Settings
from gateway.wiring import notifier_for, sync_service_for, sync_settings_for

EXIT_FAILED = 1
MAX_EXAMPLES = 3
PLAIN_EVERY_SECONDS = 2.0


def describe(run: SyncRun) -> str:
    """One line of progress: phase, Shopify's object count, items written and skipped."""
    return (
        f"[bold]{run.phase:<12}[/] objects {run.object_count:>9,}  "
        f"written {run.items_written:>9,}  skipped {run.items_skipped:>7,}"
    )


def summary_table(run: SyncRun) -> Table:
    """The end-of-run table: counts, then each skip reason with examples."""
    table = Table(title=f"Sync of {run.shop_domain}: {run.status.value}", show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value")
    elapsed = ((run.finished_at or run.started_at) - run.started_at).total_seconds()
    rows = [
        ("run", run.id),
        ("status", run.status.value),
        ("objects (Shopify)", f"{run.object_count:,}"),
        ("downloaded", f"{run.bytes_downloaded:,} of {run.file_size:,} bytes" if run.file_size is not None
         else f"{run.bytes_downloaded:,} bytes"),
        ("items written", f"{run.items_written:,}"),
        ("items skipped", f"{run.items_skipped:,}"),
        ("malformed lines", f"{run.malformed_lines:,}"),
        ("elapsed", f"{elapsed:.1f} s"),
    ]
    for what, value in rows:
        table.add_row(what, value)
    for skip in run.skipped:
        examples = "".join(f"\n  e.g. {example}" for example in skip.examples[:MAX_EXAMPLES])
        table.add_row(f"  skipped: {skip.reason}", f"{skip.count:,}{examples}")
    for example in run.malformed_examples[:MAX_EXAMPLES]:
        table.add_row("  malformed", example)
    if run.error_code is not None:
        table.add_row("error", f"[red]{run.error_code.value}[/]: {run.error_message or ''}")
        table.add_row("fix", error_fix(run.error_code, run.error_message))
    elif run.error_message:
        table.add_row("note", run.error_message)
    return table


def run_sync(args: argparse.Namespace) -> int:
    console = Console(stderr=False)
    settings = load_settings()
    if settings is None:
        return EXIT_USAGE
    token = args.access_token or settings.shopify_access_token
    if not token:
        print("catalog-gateway sync: no access token: pass --access-token or set SHOPIFY_ACCESS_TOKEN.",
              file=sys.stderr)
        return EXIT_USAGE
    try:
        shop = normalize_shop_domain(args.shop_domain)
    except ValueError as exc:
        print(f"catalog-gateway sync: {exc}", file=sys.stderr)
        return EXIT_USAGE
    from catalog_store import open_store

    store = open_store(settings.mongodb_uri, settings.mongodb_database, settings.secret_keys)
    console.print(store_description(store.persistent, settings))
    try:
        return asyncio.run(sync_once(store, settings, shop, token, Identifier(args.identifier), console))
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]: the run stays resumable (a gateway or the next sync resumes it)")
        return 130


async def sync_once(store: CatalogStore, settings: Settings, shop: str, token: str,
                    identifier: Identifier, console: Console) -> int:
    """Enable (or re-sync) `shop` and follow its run to the end. Returns the exit code."""
    if not await start_store(store, "catalog-gateway sync", settings.mongodb_uri):
        return EXIT_STORE
    service = sync_service_for(store, notifier_for(settings, store), sync_settings_for(settings, public_url=None))
    try:
        await service.start(only_shops=[shop])
        async with service.progress.subscribe(shop) as updates:
            try:
                await service.enable(shop, token, identifier)
            except SyncServiceError as exc:
                console.print(f"[red]{exc.code}[/]: {exc}\n[bold]fix[/]: {exc.fix}")
                return EXIT_FAILED
            current = service.local_run(shop) or next(iter(await store.list_runs(shop, last=1)), None)
            if current is None:
                console.print("[red]no run was started[/]")
                return EXIT_FAILED
            final = await _follow(service, current, updates, console)
        console.print(summary_table(final))
        return 0 if final.status is RunStatus.COMPLETED else EXIT_FAILED
    finally:
        await service.close()
        await store.close()


def plain_line(run: SyncRun) -> str:
    """A progress line for a log or a pipe: no markup, no carriage returns."""
    size = f" of {run.file_size:,}" if run.file_size is not None else ""
    return (f"{run.phase}: objects {run.object_count:,}, downloaded {run.bytes_downloaded:,}{size} bytes, "
            f"written {run.items_written:,}, skipped {run.items_skipped:,}")


async def _snapshots(finished: asyncio.Future[SyncRun], run: SyncRun,
                     updates: asyncio.Queue[SyncRun]) -> AsyncIterator[SyncRun]:
    """Each snapshot of `run` until it has finished (the final one is `finished`'s result)."""
    while not finished.done():
        getter = asyncio.ensure_future(updates.get())
        await asyncio.wait({getter, finished}, return_when=asyncio.FIRST_COMPLETED)
        if not getter.done():
            getter.cancel()
            continue
        snapshot = getter.result()
        if snapshot.id == run.id:
            yield snapshot


async def _follow(service: SyncService, run: SyncRun, updates: asyncio.Queue[SyncRun], console: Console) -> SyncRun:
    finished = asyncio.ensure_future(service.wait_for_run(run.id))
    if not console.is_terminal:
        return await _follow_plain(finished, run, updates, console)
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
               TransferSpeedColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        task: TaskID = progress.add_task(describe(run), total=run.file_size, completed=run.bytes_downloaded)
        async for snapshot in _snapshots(finished, run, updates):
            progress.update(task, description=describe(snapshot), total=snapshot.file_size,
                            completed=snapshot.bytes_downloaded)
        final = finished.result()
        progress.update(task, description=describe(final), total=final.file_size or final.bytes_downloaded or None,
                        completed=final.bytes_downloaded)
    return final


async def _follow_plain(finished: asyncio.Future[SyncRun], run: SyncRun, updates: asyncio.Queue[SyncRun],
                        console: Console) -> SyncRun:
    """Output piped or redirected: one plain line per phase change, and at most one per
    PLAIN_EVERY_SECONDS in between."""
    loop = asyncio.get_running_loop()
    last_phase, last_at = run.phase, loop.time()
    console.print(plain_line(run), markup=False, highlight=False, soft_wrap=True)
    async for snapshot in _snapshots(finished, run, updates):
        if snapshot.phase != last_phase or loop.time() - last_at >= PLAIN_EVERY_SECONDS:
            console.print(plain_line(snapshot), markup=False, highlight=False, soft_wrap=True)
            last_phase, last_at = snapshot.phase, loop.time()
    final = finished.result()
    console.print(plain_line(final), markup=False, highlight=False, soft_wrap=True)
    return final
