"""The Emulator: shops, the HTTP server, bulk runner, webhook sender and faults, started and closed together."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bulk.shopify.schema import SCHEMA_VERSION, load_admin_schema

from .bulk import BulkRunner
from .errors import InvalidInput, NotStarted, UnknownShop
from .faults import Faults
from .results import ResultFile, ResultFiles
from .server import build_app
from .shop import EmulatedShop, validate_domain
from .webhooks import Delivery, WebhookSender


class Emulator:
    """A local Shopify Admin GraphQL API (2026-01) with webhooks, for the demo, tests and benchmarks.

    `api_secret`: the app's client secret, signing webhooks (may be changed at run time to emulate
    a rotation). `bulk_duration`: default seconds a bulk operation stays RUNNING (per shop
    overridable; 0 in tests). `webhook_retry_delays`: waits between delivery attempts.
    """

    def __init__(self, api_secret: str = "whsec_emulator", *, bulk_duration: float = 0.2,
                 webhook_retry_delays: Sequence[float] = (0.05, 0.1, 0.2, 0.4),
                 webhook_timeout: float = 5.0, result_dir: Path | None = None,
                 max_results_per_shop: int = 4, clock: Callable[[], float] = time.time) -> None:
        self.api_secret = api_secret
        self.bulk_duration = bulk_duration
        self.faults = Faults()
        self.shops: dict[str, EmulatedShop] = {}
        self.files = ResultFiles(result_dir)
        self.webhooks = WebhookSender(lambda: self.api_secret, self.faults, retry_delays=webhook_retry_delays,
                                      timeout=webhook_timeout)
        self.bulk = BulkRunner(self.files, self.faults, url_for=self._url_for, clock=clock,
                               max_results_per_shop=max_results_per_shop)
        self._clock = clock
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._base_url: str | None = None

    # -- shops ----------------------------------------------------------------------------------------

    def add_shop(self, domain: str, *, access_token: str, variants: int = 100, seed: int = 1,
                 name: str | None = None, bulk_duration: float | None = None, timezone: str = "America/New_York",
                 email: str | None = None, currency: str = "USD", bulk_concurrency: int = 1) -> EmulatedShop:
        """Add a shop with a generated store of `variants` variants (deterministic from `seed`)."""
        validate_domain(domain)
        if domain in self.shops:
            raise InvalidInput(f"shop {domain} already exists")
        shop = EmulatedShop(domain, access_token=access_token, variants=variants, seed=seed, name=name,
                            sender=self.webhooks,
                            bulk_duration=self.bulk_duration if bulk_duration is None else bulk_duration,
                            timezone=timezone, email=email, currency=currency, bulk_concurrency=bulk_concurrency,
                            clock=self._clock)
        self.shops[domain] = shop
        return shop

    def shop(self, domain: str) -> EmulatedShop:
        try:
            return self.shops[domain]
        except KeyError:
            raise UnknownShop(domain) from None

    # -- server ---------------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Serve on host:port (port 0: a free one); returns once listening."""
        if self._runner is not None:
            return
        await asyncio.get_running_loop().run_in_executor(None, load_admin_schema)
        self._session = aiohttp.ClientSession()
        self.webhooks.start(self._session)
        self._runner = web.AppRunner(build_app(self), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = site._server.sockets[0].getsockname()  # type: ignore[union-attr]
        self._base_url = f"http://{bound[0]}:{bound[1]}"

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise NotStarted("the emulator is not started")
        return self._base_url

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    @property
    def admin_api_url_template(self) -> str:
        """`http://127.0.0.1:PORT/shops/{shop}/admin/api/{version}/graphql.json`."""
        return self.base_url + "/shops/{shop}/admin/api/{version}/graphql.json"

    def admin_api_url(self, shop: str, version: str = SCHEMA_VERSION) -> str:
        return self.admin_api_url_template.format(shop=shop, version=version)

    def _url_for(self, result: ResultFile) -> str:
        expires = int(self._clock()) + 7 * 86400
        return (f"{self.base_url}/bulk-operation-outputs/{result.path.name}"
                f"?GoogleAccessId=shopify-emulator&Expires={expires}&Signature={result.token[:16]}")

    # -- webhooks & results ---------------------------------------------------------------------------

    @property
    def deliveries(self) -> list[Delivery]:
        """Every webhook delivery created so far (see webhooks.Delivery)."""
        return self.webhooks.deliveries

    async def drain_webhooks(self, timeout: float = 10.0) -> None:
        """Wait until every queued delivery is delivered, failed or dropped."""
        await self.webhooks.drain(timeout)

    def expire_results(self, domain: str) -> int:
        """Expire the result files of the shop's finished operations now; returns how many operations."""
        shop = self.shop(domain)
        expired = 0
        for operation in shop.operations:
            if operation.status in ("COMPLETED", "FAILED") and (operation.result or operation.partial):
                self.bulk.expire(operation)
                expired += 1
        return expired

    # -- lifecycle ------------------------------------------------------------------------------------

    async def close(self) -> None:
        """Stop serving, cancel running operations and pending deliveries, delete result files."""
        await self.bulk.close()
        await self.webhooks.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        self.files.close()

    async def __aenter__(self) -> Emulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()
