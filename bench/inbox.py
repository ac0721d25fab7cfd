"""The webhook inbox under a crash: `python -m bench.inbox [--deliveries 1000] [--concurrency 20]`.

A SecantusDB (or $MONGODB_URI), the Shopify emulator in this process and `catalog-gateway serve` in
its own process with one webhook worker per lane (so most deliveries are still in the inbox at the
end). After the first sync, `--deliveries` price changes (one per variant) are made in the emulator
and their signed deliveries POSTed to the gateway, `--concurrency` at a time, as Shopify sends them:

- answer time of each POST (the inbox put is inside it), p50/p99/max;
- the gateway is killed with SIGKILL right after the last answer; the inbox's backlog then;
- a new `serve` process (default workers) is started: time from its start to an empty backlog;
- lost: changes answered 200 that are not in the catalog afterwards (must be 0); duplicates: deliveries
  counted more than once (`appliedTotal` beyond the deliveries) and entries the killed process held
  (claimed, maybe applied, not marked done): those are applied again, idempotently.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import aiohttp
from cryptography.fernet import Fernet

from bench.ingest import mongo_server
from catalog_store.mongo.store import MongoCatalogStore
from catalog_store.token_cipher import TokenCipher
from shopify_emulator import Delivery, Emulator
from tests.gateway.test_scale_out import webhook_edge  # the emulator sends there; this run posts them itself

ROOT = Path(__file__).resolve().parents[1]
SHOP = "bench-inbox.myshopify.com"
CATALOG = "shopify_bench-inbox"
TOKEN = "shpat_bench_inbox"
SECRET = "whsec_bench_inbox"
ADMIN = "bench-inbox-admin-token-0123456789"
REALTIME = "query($s: String!) { shopifySync(shopDomain: $s) { status realtime { backlog appliedTotal failedTotal } } }"
ENABLE = ('mutation($s: String!, $t: String!) { enableShopifySync(input: {shopDomain: $s, accessToken: $t, '
          'identifier: SHOPIFY_VARIANT_ID}) { status } }')


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Serve:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        full = {**os.environ, **env, "GATEWAY_HOST": "127.0.0.1", "GATEWAY_PORT": str(self.port),
                "PYTHONPATH": str(ROOT)}
        with log.open("ab") as out:
            self.process = subprocess.Popen([sys.executable, "-m", "gateway.cli", "serve"], cwd=ROOT, env=full,
                                            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    async def healthy(self, http: aiohttp.ClientSession) -> None:
        for _ in range(600):
            if self.process.poll() is not None:
                raise SystemExit(f"the gateway exited with {self.process.returncode}")
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(self.base + "/healthz") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.1)
        raise SystemExit("the gateway did not become healthy")

    async def query(self, http: aiohttp.ClientSession, document: str, variables: dict[str, str]) -> dict:  # type: ignore[type-arg]
        async with http.post(self.base + "/graphql", json={"query": document, "variables": variables},
                             headers={"Authorization": f"Bearer {ADMIN}"}) as response:
            body = await response.json()
            if body.get("errors"):
                raise SystemExit(f"GraphQL error: {body['errors']}")
            return dict(body["data"])

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()


def _ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def run(deliveries: int, concurrency: int, uri: str) -> None:
    database = f"bench_inbox_{uuid.uuid4().hex[:10]}"
    emulator = Emulator(SECRET, bulk_duration=0.0)
    shop = emulator.add_shop(SHOP, access_token=TOKEN, variants=deliveries, seed=4, name="Bench Inbox")
    await emulator.start()
    key = Fernet.generate_key().decode()
    store = MongoCatalogStore(uri, database, cipher=TokenCipher([key]))
    await store.start()
    log = ROOT / ".cache" / "bench" / "inbox-gateway.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    servers: list[Serve] = []
    try:
        async with webhook_edge() as edge_url, aiohttp.ClientSession() as http:
            env = {"MONGODB_URI": uri, "MONGODB_DATABASE": database, "GATEWAY_ADMIN_TOKEN": ADMIN,
                   "SHOPIFY_API_SECRET": SECRET, "SHOPIFY_ADMIN_API_URL": emulator.admin_api_url_template,
                   "GATEWAY_PUBLIC_URL": edge_url, "GATEWAY_WEBHOOK_CLAIM_TTL_SECONDS": "5",
                   "GATEWAY_SECRET_KEY": key}
            first = Serve({**env, "GATEWAY_WEBHOOK_WORKERS": "1"}, log)
            servers.append(first)
            await first.healthy(http)
            await first.query(http, ENABLE, {"s": SHOP, "t": TOKEN})
            while (await first.query(http, REALTIME, {"s": SHOP}))["shopifySync"]["status"] != "SYNCED":
                await asyncio.sleep(0.2)
            await asyncio.sleep(1.0)  # the bulk_operations/finish delivery, applied
            base = (await first.query(http, REALTIME, {"s": SHOP}))["shopifySync"]["realtime"]["appliedTotal"]
            variants = list(shop.variant_ids())[:deliveries]
            prices = {v: f"{1 + n % 900}.{n % 100:02d}" for n, v in enumerate(variants)}
            made: list[Delivery] = []
            for variant, price in prices.items():
                before = len(emulator.deliveries)
                shop.set_price(variant, price)
                made += [d for d in emulator.deliveries[before:] if d.topic == "products/update"]
            await emulator.drain_webhooks()

            answer: list[float] = []
            statuses: list[int] = []
            queue: asyncio.Queue[Delivery] = asyncio.Queue()
            for delivery in made:
                queue.put_nowait(delivery)

            async def sender() -> None:
                while not queue.empty():
                    delivery = queue.get_nowait()
                    start = time.perf_counter()
                    async with http.post(first.base + "/webhooks/shopify", data=delivery.body,
                                         headers=delivery.headers) as response:
                        await response.read()
                        statuses.append(response.status)
                    answer.append(time.perf_counter() - start)

            posting = time.perf_counter()
            await asyncio.gather(*(sender() for _ in range(concurrency)))
            posted = time.perf_counter() - posting
            first.kill()
            killed_at = time.perf_counter()
            backlog = (await store.inbox_status(SHOP)).backlog
            held = await store.database["inbox"].count_documents({"state": "pending", "owner": {"$ne": None}})

            second = Serve(env, log)
            servers.append(second)
            started = time.perf_counter()
            await second.healthy(http)
            while (await store.inbox_status(SHOP)).backlog > 0:
                await asyncio.sleep(0.05)
            drained = time.perf_counter()
            status = await store.inbox_status(SHOP)
            items = await store.get_items_by_variant(CATALOG, [str(v) for v in variants])
            in_catalog = {int(i.shopify_variant_id): i.price for i in items}
            lost = sum(1 for v, p in prices.items() if in_catalog.get(v) != p)
            counted = status.applied_total - base

            print(f"webhook inbox crash benchmark ({uri.split('@')[-1]}, database {database})")
            print(f"  deliveries posted          {len(made)} ({concurrency} at a time) in {posted:.2f} s "
                  f"({len(made) / posted:,.0f}/s); answers: {sorted(set(statuses))}")
            print(f"  answer time                p50 {_ms(answer, 0.5):.1f} ms, p99 {_ms(answer, 0.99):.1f} ms, "
                  f"max {max(answer) * 1000:.1f} ms (statistics.mean {statistics.mean(answer) * 1000:.1f} ms)")
            print(f"  at kill -9                 {backlog} in the inbox, {held} of them claimed by the killed process")
            print(f"  after restart              drained in {drained - started:.2f} s from the new process's "
                  f"start ({drained - killed_at:.2f} s after the kill)")
            print(f"  lost                       {lost} of {len(prices)} changes not in the catalog")
            print(f"  counted                    {counted} applied, {status.failed_total} failed "
                  f"(deliveries: {len(made)}; counted twice: {max(0, counted - len(made))}; "
                  f"possibly applied twice, idempotently: ≤ {held})")
    finally:
        for server in servers:
            server.stop()
        with contextlib.suppress(Exception):
            await store.database.client.drop_database(database)
        await store.close()
        await emulator.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deliveries", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=20)
    args = parser.parse_args(argv)
    with mongo_server() as uri:
        asyncio.run(run(args.deliveries, args.concurrency, uri))


if __name__ == "__main__":
    main()
