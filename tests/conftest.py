"""Fixtures shared by the whole test suite: a real MongoDB-wire server and catalog stores.

`mongodb_uri` is $MONGODB_URI when set, otherwise a FerretDB started for the session from
$FERRETDB_BIN (default: .cache/ferretdb/ferretdb-v1.24.2 in the repository, built by `make test`).
Tests needing it fail, never skip, when it cannot be had.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from pymongo import MongoClient
from pymongo.errors import PyMongoError

from catalog_store.memory import MemoryCatalogStore
from catalog_store.mongo import MongoCatalogStore
from catalog_store.store import CatalogStore

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FERRETDB = REPO_ROOT / ".cache" / "ferretdb" / "ferretdb-v1.24.2"
FERRETDB_START_TIMEOUT = 20.0
HOW_TO_FIX = (
    "run `make test` (it builds FerretDB into .cache/ferretdb/), set FERRETDB_BIN to a FerretDB 1.24 "
    "binary, or set MONGODB_URI to a MongoDB you can write to"
)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers_ping(uri: str) -> bool:
    client: MongoClient[dict[str, object]] = MongoClient(uri, serverSelectionTimeoutMS=250, connectTimeoutMS=250)
    try:
        client.admin.command("ping")
        return True
    except PyMongoError:
        return False
    finally:
        client.close()


def _start_ferretdb(binary: Path, workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    data = workdir / "data"
    data.mkdir(exist_ok=True)
    log_path = workdir / "ferretdb.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [
                str(binary),
                "--handler=sqlite",
                f"--sqlite-url=file:{data}/",
                f"--listen-addr=127.0.0.1:{port}",
                f"--state-dir={workdir}",
                "--debug-addr=-",
                "--telemetry=disable",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    uri = f"mongodb://127.0.0.1:{port}/"
    deadline = time.monotonic() + FERRETDB_START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        if _answers_ping(uri):
            return process, uri
        time.sleep(0.05)
    exited = process.poll()
    process.kill()
    process.wait()
    what = (f"exited with code {exited}" if exited is not None
            else f"did not answer a ping on {uri} within {FERRETDB_START_TIMEOUT:.0f} s")
    log_tail = log_path.read_text(errors="replace")[-2000:]
    pytest.fail(f"FerretDB ({binary}) {what}. Its log ends with:\n{log_tail}\nTo fix: {HOW_TO_FIX}.", pytrace=False)


@pytest.fixture(scope="session")
def mongodb_uri() -> Iterator[str]:
    """A MongoDB-wire server for the session: $MONGODB_URI, or a FerretDB started here."""
    configured = os.environ.get("MONGODB_URI", "").strip()
    if configured:
        yield configured
        return
    binary = Path(os.environ.get("FERRETDB_BIN") or DEFAULT_FERRETDB)
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        pytest.fail(f"No MongoDB for the tests: FerretDB binary {binary} is missing. To fix: {HOW_TO_FIX}.",
                    pytrace=False)
    workdir = Path(tempfile.mkdtemp(prefix="ferretdb-"))
    process, uri = _start_ferretdb(binary, workdir)
    try:
        yield uri
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(workdir, ignore_errors=True)


MongoStoreFactory = Callable[..., Awaitable[MongoCatalogStore]]


@pytest.fixture
async def mongo_store_factory(mongodb_uri: str) -> AsyncIterator[MongoStoreFactory]:
    """`await factory(database=None, **kwargs)` → a started MongoCatalogStore on a fresh database
    (or the one named, to share it between stores); closed and dropped after the test."""
    opened: list[MongoCatalogStore] = []
    databases: set[str] = set()

    async def factory(database: str | None = None, **kwargs: object) -> MongoCatalogStore:
        name = database or f"test_{uuid.uuid4().hex[:16]}"
        store = MongoCatalogStore(mongodb_uri, name, **kwargs)  # type: ignore[arg-type]
        await store.start()
        opened.append(store)
        databases.add(name)
        return store

    yield factory
    for store in opened:
        if store.database.name in databases:
            databases.discard(store.database.name)
            await store.database.client.drop_database(store.database.name)
        await store.close()


@pytest.fixture(params=["memory", "mongo"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[CatalogStore]:
    """A started, empty store of each kind: tests using it run against both implementations."""
    if request.param == "memory":
        memory = MemoryCatalogStore()
        await memory.start()
        yield memory
        await memory.close()
        return
    uri: str = request.getfixturevalue("mongodb_uri")
    name = f"test_{uuid.uuid4().hex[:16]}"
    mongo = MongoCatalogStore(uri, name)
    await mongo.start()
    try:
        yield mongo
    finally:
        await mongo.database.client.drop_database(name)
        await mongo.close()
