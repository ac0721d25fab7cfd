"""`catalog-gateway`: serve | demo | sync | emulator | export-schema."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
import sys
from collections.abc import Sequence

from gateway.cli.common import EXIT_FAILED, EXIT_STORE, EXIT_USAGE, bind, load_settings, start_store, store_description
from gateway.cli.demo import DEMO_CHANGES_PER_SECOND, add_change_arguments
from gateway.logs import configure_logging
from gateway.server import RedactQueryStrings as _RedactQueryStrings  # noqa: F401 (tested here)
from gateway.server import server_config
from gateway.settings import Settings

log = logging.getLogger("gateway.cli")

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="catalog-gateway",
        description="Mirror Shopify products into a catalog and serve it over GraphQL.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the gateway (configured by the environment)")
    serve.add_argument("--no-auth", action="store_true",
                       help="accept requests without a token (local use only: everyone is admin)")
    serve.add_argument("--host", help="listen address (overrides GATEWAY_HOST)")
    serve.add_argument("--port", type=int, help="listen port (overrides GATEWAY_PORT)")

    demo = commands.add_parser("demo", help="zero-setup demo: emulated Shopify store + gateway in memory")
    demo.add_argument("--host", default="127.0.0.1", help="gateway listen address (default 127.0.0.1)")
    demo.add_argument("--port", type=int, default=None,
                      help="gateway port (default GATEWAY_PORT or 8000; 0 = any free port; make demo PORT=N)")
    demo.add_argument("--variants", type=int, default=3000, help="variants in the generated store (default 3000)")
    add_change_arguments(demo, DEMO_CHANGES_PER_SECOND)
    demo.add_argument("--seed", type=int, default=1, help="seed of the generated store and its changes")

    sync = commands.add_parser("sync", help="one full sync from the terminal, with a progress bar")
    sync.add_argument("shop_domain", metavar="SHOP_DOMAIN", help="e.g. my-store.myshopify.com")
    sync.add_argument("--access-token", help="Admin API access token (default: SHOPIFY_ACCESS_TOKEN)")
    sync.add_argument("--identifier", choices=("SHOPIFY_VARIANT_ID", "SKU"), default="SHOPIFY_VARIANT_ID",
                      help="catalog item id (default SHOPIFY_VARIANT_ID)")

    emulator = commands.add_parser("emulator", help="run the Shopify emulator alone")
    emulator.add_argument("--host", default="127.0.0.1")
    emulator.add_argument("--port", type=int, default=8001, help="default 8001; 0 = any free port")
    emulator.add_argument("--shop", default="demo.myshopify.com", help="shop domain (default demo.myshopify.com)")
    emulator.add_argument("--access-token", default="shpat_emulator", help="the shop's Admin API token")
    emulator.add_argument("--api-secret", default="whsec_emulator", help="app secret signing webhooks")
    emulator.add_argument("--variants", type=int, default=1000)
    emulator.add_argument("--seed", type=int, default=1)
    add_change_arguments(emulator, None)

    commands.add_parser("export-schema", help="print the GraphQL SDL (schema.graphql must match it)")
    return parser


def export_schema() -> int:
    from gateway.graphql.schema import sdl

    sys.stdout.write(sdl())
    return 0


def serve(args: argparse.Namespace) -> int:
    settings = load_settings()
    if settings is None:
        return EXIT_USAGE
    if not args.no_auth and not settings.admin_token:
        print(
            "catalog-gateway: GATEWAY_ADMIN_TOKEN is not set, and the gateway refuses to start without "
            "authentication.\n  Set it to a long random string, e.g.\n"
            "    export GATEWAY_ADMIN_TOKEN=$(python -c 'import secrets; print(secrets.token_urlsafe(32))')\n"
            "  or pass --no-auth for local use only (every caller is then admin).",
            file=sys.stderr,
        )
        return EXIT_USAGE
    host = args.host or settings.host
    port = settings.port if args.port is None else args.port
    if args.no_auth:
        warning = "WARNING: --no-auth: every caller is admin."
        if host not in LOOPBACK_HOSTS:
            warning += f" The gateway listens on {host}, reachable from other machines!"
        print(warning, file=sys.stderr)
    sock = bind(host, port, "--port N or GATEWAY_PORT")
    if sock is None:
        return EXIT_FAILED
    try:
        return asyncio.run(_serve(settings, sock, host, auth=not args.no_auth))
    except KeyboardInterrupt:
        return 0
    finally:
        sock.close()


async def _serve(settings: Settings, sock: socket.socket, host: str, *, auth: bool) -> int:
    import uvicorn

    from catalog_store import open_store
    from gateway.app import create_app
    from gateway.wiring import Gateway

    store = open_store(settings.mongodb_uri, settings.mongodb_database, settings.secret_keys)
    print(store_description(store.persistent, settings), flush=True)
    if not await start_store(store, "catalog-gateway serve", settings.mongodb_uri):
        return EXIT_STORE
    gateway = Gateway(settings, store, auth=auth)
    port = sock.getsockname()[1]
    config = server_config(create_app(gateway), settings, host=host, port=port)
    base = f"http://{host}:{port}"
    print(f"operator page: {base}/  GraphQL: {base}/graphql (GraphiQL in a browser)  "
          f"health: {base}/healthz  ready: {base}/readyz  metrics: {base}/metrics", flush=True)
    server = uvicorn.Server(config)
    await server.serve(sockets=[sock])
    return 0 if server.started else EXIT_FAILED


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    raw_format = os.environ.get("LOG_FORMAT", "").strip().lower()  # checked with the other settings
    configure_logging("json" if raw_format == "json" else "text")
    if args.command == "export-schema":
        return export_schema()
    if args.command == "serve":
        return serve(args)
    if args.command == "sync":
        from gateway.cli.sync import run_sync

        return run_sync(args)
    if args.command in ("demo", "emulator"):
        from gateway.cli.emulator_source import NOT_INSTALLED, emulator_available

        if not emulator_available():
            print(NOT_INSTALLED, file=sys.stderr)
            return EXIT_USAGE
    if args.command == "demo":
        from gateway.cli.demo import run_demo

        return run_demo(args)
    if args.command == "emulator":
        from gateway.cli.demo import run_emulator

        return run_emulator(args)
    raise AssertionError(args.command)

