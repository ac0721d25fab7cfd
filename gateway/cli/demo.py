"""`catalog-gateway demo` and `catalog-gateway emulator`: the Shopify emulator with a generated store,
and (demo) the gateway on the in-memory store, sync enabled, the store changing every few seconds."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import random
import secrets
import socket
import sys
from typing import TYPE_CHECKING

from catalog_store.items import Identifier, catalog_name
from gateway.cli.common import EXIT_FAILED, EXIT_USAGE, bind
from gateway.settings import DEFAULT_PORT, Settings

if TYPE_CHECKING:
    from gateway.wiring import Gateway

DEMO_SHOP = "demo.myshopify.com"
DEMO_STORE_NAME = "Demo Store"
REALTIME_EVERY = 10.0  # seconds between the realtime status lines
DEMO_CHANGES_PER_SECOND = 1.0
DEFAULT_INVENTORY_SHARE = 0.2  # shopify_emulator.changes.DEFAULT_INVENTORY_SHARE (tested equal): read
# here without importing the emulator, which `serve` never needs
DEMO_BULK_SECONDS = 3.0  # the bulk operation runs long enough to watch its progress


def add_change_arguments(parser: argparse.ArgumentParser, default_rate: float | None) -> None:
    """--changes-per-second and --inventory-share of `demo` and `emulator`."""
    default = "the store stays still" if default_rate is None else f"{default_rate:g}"
    parser.add_argument("--changes-per-second", type=float, default=default_rate, metavar="RATE",
                        help=f"change the emulated store at RATE changes/s (default: {default})")
    parser.add_argument("--inventory-share", type=float, default=DEFAULT_INVENTORY_SHARE, metavar="SHARE",
                        help="share of the changes that are inventory changes (inventory_levels/update); "
                        f"the rest are price changes (products/update) (default {DEFAULT_INVENTORY_SHARE:g})")


def change_arguments_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with --changes-per-second/--inventory-share (checked by the emulator's own rule,
    once the emulator is known to be importable), or None."""
    from shopify_emulator.changes import check_rate

    try:
        check_rate(1.0 if args.changes_per_second is None else args.changes_per_second, args.inventory_share)
    except ValueError as exc:
        return f"catalog-gateway {args.command}: {exc} (--changes-per-second, --inventory-share)"
    return None


def run_emulator(args: argparse.Namespace) -> int:
    """The emulator alone, until Ctrl-C."""
    from shopify_emulator import serve

    if (problem := change_arguments_problem(args)) is not None:
        print(problem, file=sys.stderr)
        return EXIT_USAGE
    try:
        asyncio.run(serve(args.host, args.port, variants=args.variants, seed=args.seed, shop_domain=args.shop,
                          access_token=args.access_token, api_secret=args.api_secret,
                          changes_per_second=args.changes_per_second, inventory_share=args.inventory_share))
    except KeyboardInterrupt:
        pass
    return 0


def demo_port(args: argparse.Namespace) -> int | None:
    """--port, else GATEWAY_PORT, else 8000 (None after saying what is wrong)."""
    if args.port is not None:
        return int(args.port)
    raw = os.environ.get("GATEWAY_PORT", "").strip()
    if not raw:
        return DEFAULT_PORT
    if not raw.isdigit() or not 0 <= int(raw) <= 65535:
        print(f"catalog-gateway demo: GATEWAY_PORT={raw!r} is not a TCP port: set it to 0-65535 "
              "(or run make demo PORT=N).", file=sys.stderr)
        return None
    return int(raw)


def run_demo(args: argparse.Namespace) -> int:
    if (problem := change_arguments_problem(args)) is not None:
        print(problem, file=sys.stderr)
        return EXIT_USAGE
    port = demo_port(args)
    if port is None:
        return EXIT_USAGE
    sock = bind(args.host, port, "make demo PORT=N (or catalog-gateway demo --port N; 0 = any free port)")
    if sock is None:
        return EXIT_FAILED
    try:
        asyncio.run(demo(args, sock))
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    print("demo stopped", file=sys.stderr)
    return 0


async def demo(args: argparse.Namespace, sock: socket.socket) -> None:
    import uvicorn

    from catalog_store.memory import MemoryCatalogStore
    from gateway.app import create_app
    from gateway.cli.demo_alerts import run_demo_alerts
    from gateway.wiring import Gateway, sync_settings_for
    from shopify_emulator import Emulator
    from shopify_emulator.changes import keep_changing

    logging.getLogger("shopify_emulator").setLevel(logging.WARNING)
    admin_token = secrets.token_urlsafe(24)
    shop_token = "shpat_" + secrets.token_hex(16)
    api_secret = secrets.token_hex(16)
    emulator = Emulator(api_secret, bulk_duration=DEMO_BULK_SECONDS)
    shop = emulator.add_shop(DEMO_SHOP, access_token=shop_token, variants=args.variants, seed=args.seed,
                             name=DEMO_STORE_NAME)
    await emulator.start()
    server: uvicorn.Server | None = None
    changer_task: asyncio.Task[None] | None = None
    status_task: asyncio.Task[None] | None = None
    alerts_task: asyncio.Task[None] | None = None
    port = sock.getsockname()[1]  # bound first: port 0 became a real port
    base = f"http://{args.host}:{port}"
    try:
        # The emulator signs its webhooks with the app secret the gateway verifies: enabling sync
        # registers them at this gateway, so the store's changes reach the catalog live.
        settings = Settings(
            host=args.host,
            port=port,
            admin_token=admin_token,
            shopify_admin_api_url=emulator.admin_api_url_template,
            shopify_api_secrets=(api_secret,),
            alert_webhook_url=args.alert_webhook_url,
            alert_webhook_secret=args.alert_webhook_secret if args.alert_webhook_url else None,
        )
        gateway = Gateway(settings, MemoryCatalogStore(),
                          sync_settings=sync_settings_for(settings, poll_interval=0.5, max_poll_interval=2.0))
        server = uvicorn.Server(uvicorn.Config(create_app(gateway, browser_token=admin_token), log_level="warning"))
        serving = asyncio.create_task(server.serve(sockets=[sock]), name="gateway")
        while not server.started:
            if serving.done():
                await serving  # startup failed: raise its error
                return
            await asyncio.sleep(0.05)
        await gateway.sync.enable(DEMO_SHOP, shop_token, Identifier.SHOPIFY_VARIANT_ID)
        print(demo_banner(args, base, admin_token, shop_token, emulator.base_url), flush=True)
        changer_task = asyncio.create_task(keep_changing(
            shop, rate=args.changes_per_second, inventory_share=args.inventory_share,
            rng=random.Random(args.seed), print_fn=lambda line: print(line, flush=True)))
        status_task = asyncio.create_task(_print_realtime(gateway, REALTIME_EVERY))
        alerts_task = asyncio.create_task(run_demo_alerts(gateway.store, shop, catalog_name(DEMO_SHOP),
                                                          random.Random(args.seed)))
        await serving
    finally:
        for task in (changer_task, status_task, alerts_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if server is not None:
            server.should_exit = True
        await emulator.close()


def _rate(per_second: float) -> str:
    return "once a second" if per_second == 1 else f"{per_second:g} times a second"


def demo_banner(args: argparse.Namespace, base: str, admin_token: str, shop_token: str, emulator_url: str) -> str:
    """What a new user needs: where to look, the tokens, and how to enable sync again after a disable."""
    enable = (f'mutation {{ enableShopifySync(input: {{shopDomain: "{DEMO_SHOP}", accessToken: "{shop_token}", '
              'identifier: SHOPIFY_VARIANT_ID}) { status } }')
    return (
        f"\ncatalog-gateway demo ({args.variants} variants, in-memory store: nothing is kept)\n"
        f"  operator page    : {base}/  (open in a browser; the token is filled in)\n"
        f"  GraphiQL         : {base}/graphql  (the Headers tab holds the admin token)\n"
        f"  admin token      : {admin_token}   (Authorization: Bearer <token>)\n"
        f"  shop             : {DEMO_SHOP} (Shopify emulator at {emulator_url})\n"
        f"  shop access token: {shop_token}   (the emulator's Admin API token)\n"
        f"  enable again     : {enable}\n"
        f"  try              : subscription {{ syncProgress(shopDomain: \"{DEMO_SHOP}\") "
        f"{{ phase itemsWritten status }} }}  (stays open: shows every re-sync)\n"
        f"  re-sync          : mutation {{ resyncShopifyCatalog(shopDomain: \"{DEMO_SHOP}\") {{ id status }} }}\n"
        f"  metrics, ready   : {base}/metrics  {base}/readyz\n"
        f"The emulated store changes {_rate(args.changes_per_second)} "
        f"({args.inventory_share:.0%} inventory: sell-outs, restocks; the rest price moves); "
        "webhooks bring each change into the catalog within a second; alert events print below as "
        "they fire. Ctrl-C stops.\n"
    )


async def _print_realtime(gateway: Gateway, every: float) -> None:
    """The webhook path's health, one line every `every` seconds (what ShopifySync.realtime answers)."""
    from bulk.webhooks.realtime import realtime_status, status_line

    while True:
        await asyncio.sleep(every)
        figures = await realtime_status(gateway.store, DEMO_SHOP, gateway.settings.realtime_lag_alert_seconds)
        print(f"  realtime: {status_line(figures)}", flush=True)
