"""`catalog-gateway serve` as real subprocesses (one per free loopback port), with gql clients over
HTTP and graphql-transport-ws, for tests of several gateway processes sharing one MongoDB.

The subprocess runs this worktree's code (`python -m gateway.cli` from the project root, which is
also put first on PYTHONPATH). Its output goes to a log file whose tail is shown when it fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from gql import Client, GraphQLRequest
from gql.transport.aiohttp import AIOHTTPTransport
from gql.transport.websockets import WebsocketsTransport

from tests.gateway.harness import ADMIN_TOKEN, CLIENT_TIMEOUT, READ_TOKEN
from tests.secantus import free_port

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 60.0  # imports and start-up on a loaded 2-core machine
STOP_TIMEOUT = 20.0  # SIGTERM: the gateway applies its queued webhooks (≤ 5 s) and releases its leases


@dataclass
class GatewayProcess:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def webhook_url(self) -> str:
        return self.base_url + "/webhooks/shopify"

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        """The end of the process's output, without uvicorn's access lines."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        kept = [line for line in text.splitlines() if not line.startswith("INFO:     127.0.0.1:")]
        return "\n".join(kept[-lines:])

    def owns(self, lease_owner: str | None) -> bool:
        """True when `lease_owner` (SyncService.owner_id: "host:pid:random") is this process."""
        return lease_owner is not None and lease_owner.split(":")[1:2] == [str(self.pid)]

    def http(self, token: str = ADMIN_TOKEN) -> Client:
        transport = AIOHTTPTransport(url=self.base_url + "/graphql", headers={"Authorization": f"Bearer {token}"})
        return Client(transport=transport, fetch_schema_from_transport=False, execute_timeout=CLIENT_TIMEOUT)

    def ws(self, token: str = READ_TOKEN) -> Client:
        transport = WebsocketsTransport(url=f"ws://127.0.0.1:{self.port}/graphql",
                                        init_payload={"Authorization": f"Bearer {token}"},
                                        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL])
        return Client(transport=transport, fetch_schema_from_transport=False, execute_timeout=CLIENT_TIMEOUT)

    async def query(self, document: str, variables: dict[str, Any] | None = None,
                    token: str = ADMIN_TOKEN) -> dict[str, Any]:
        async with self.http(token) as session:
            return await session.execute(GraphQLRequest(document, variable_values=variables))

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to release anything."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    async def stop(self) -> int:
        """SIGTERM and wait (SIGKILL after STOP_TIMEOUT); returns the exit code (uvicorn re-raises
        the signal after its graceful shutdown: -SIGTERM)."""
        if self.alive():
            self.process.terminate()
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(loop.run_in_executor(None, self.process.wait), STOP_TIMEOUT)
        except TimeoutError:
            self.process.kill()
            return self.process.wait()


def _start(name: str, env: Mapping[str, str], log_dir: Path) -> GatewayProcess:
    port = free_port()
    log_path = log_dir / f"{name}.log"
    full_env = {**os.environ, **env, "GATEWAY_HOST": "127.0.0.1", "GATEWAY_PORT": str(port),
                "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
                "PYTHONUNBUFFERED": "1"}
    with log_path.open("ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "gateway.cli", "serve"], cwd=ROOT, env=full_env,
                                   stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    return GatewayProcess(name, port, process, log_path)


async def _wait_healthy(gateway: GatewayProcess) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_TIMEOUT
    async with httpx.AsyncClient(timeout=2.0) as http:
        while True:
            if not gateway.alive():
                raise RuntimeError(f"gateway {gateway.name} exited with code {gateway.process.returncode}:\n"
                                   f"{gateway.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(gateway.base_url + "/healthz")).status_code == 200:
                    return
            if loop.time() > deadline:
                raise RuntimeError(f"gateway {gateway.name} not healthy after {START_TIMEOUT:.0f} s:\n"
                                   f"{gateway.log_tail()}")
            await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def gateway_processes(names: Sequence[str], env: Mapping[str, str],
                            log_dir: Path) -> AsyncIterator[list[GatewayProcess]]:
    """One `catalog-gateway serve` per name, all with `env`, healthy when yielded; every one still
    running is stopped afterwards, also when the test fails."""
    started: list[GatewayProcess] = []
    try:
        for name in names:
            started.append(_start(name, env, log_dir))
        await asyncio.gather(*(_wait_healthy(g) for g in started))
        yield started
    finally:
        await asyncio.gather(*(g.stop() for g in started), return_exceptions=True)
