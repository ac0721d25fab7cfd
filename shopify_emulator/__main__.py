"""`python -m shopify_emulator [--port 8001] [--variants 1000] [--seed 1] [--changes-per-second 50 --inventory-share 0.2]`.

SIGTERM and Ctrl-C stop it cleanly (result files deleted).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

from .changes import DEFAULT_INVENTORY_SHARE, check_rate
from .serve import serve


async def _run(args: argparse.Namespace) -> None:
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await serve(args.host, args.port, variants=args.variants, seed=args.seed, shop_domain=args.shop,
                    access_token=args.token, api_secret=args.secret, bulk_duration=args.bulk_duration,
                    changes_per_second=args.changes_per_second, inventory_share=args.inventory_share)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m shopify_emulator", description="Run the Shopify emulator.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--variants", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--shop", default="demo.myshopify.com")
    parser.add_argument("--token", default="shpat_emulator")
    parser.add_argument("--secret", default="whsec_emulator")
    parser.add_argument("--bulk-duration", type=float, default=2.0)
    parser.add_argument("--changes-per-second", type=float, default=None, metavar="RATE",
                        help="change the store at RATE changes/s (default: the store stays still)")
    parser.add_argument("--inventory-share", type=float, default=DEFAULT_INVENTORY_SHARE,
                        metavar="SHARE", help=f"share of inventory changes (default {DEFAULT_INVENTORY_SHARE})")
    args = parser.parse_args()
    try:
        check_rate(1.0 if args.changes_per_second is None else args.changes_per_second, args.inventory_share)
    except ValueError as exc:
        parser.error(str(exc))
    asyncio.run(_run(args))


if __name__ == "__main__":
    main()
