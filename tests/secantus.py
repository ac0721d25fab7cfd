"""Starts SecantusDB (a MongoDB-wire server on WiredTiger, PyPI `SecantusDB`) for the tests and the
benchmarks: `secantusd-py` on a free loopback port with a temporary storage directory.

SecantusDB is GPL-2.0 and a test-only dependency: it runs as a separate process and is never imported
by the package (nor here: only its console script is started).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from pymongo import MongoClient
from pymongo.errors import PyMongoError

START_TIMEOUT = 30.0
HOW_TO_FIX = (
    "run `make test` (it installs the test extra, SecantusDB included, into .venv), or set MONGODB_URI "
    "to a MongoDB you can write to"
)


class ServerUnavailable(RuntimeError):
    """SecantusDB could not be started; the message says why and how to fix it."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answers_ping(uri: str) -> bool:
    client: MongoClient[dict[str, object]] = MongoClient(uri, serverSelectionTimeoutMS=250, connectTimeoutMS=250)
    try:
        client.admin.command("ping")
        return True
    except PyMongoError:
        return False
    finally:
        client.close()


def server_command() -> Path:
    """The `secantusd-py` console script of this interpreter's environment (or $SECANTUSD)."""
    configured = os.environ.get("SECANTUSD")
    if configured:
        return Path(configured)
    return Path(sys.executable).parent / "secantusd-py"


@contextlib.contextmanager
def secantus_server(log_level: str = "WARNING") -> Iterator[str]:
    """A SecantusDB on a free port with a fresh storage directory; yields its URI, removes both after.
    Test commands are on (`configureFailPoint`, to drop change streams), as in mongod test setups."""
    command = server_command()
    if not (command.is_file() and os.access(command, os.X_OK)):
        raise ServerUnavailable(f"SecantusDB's server {command} is missing. To fix: {HOW_TO_FIX}.")
    workdir = Path(tempfile.mkdtemp(prefix="secantus-"))
    port = free_port()
    log_path = workdir / "secantusd.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [str(command), "--host", "127.0.0.1", "--port", str(port), "--storage-path", str(workdir / "data"),
             "--log-level", log_level, "--enable-test-commands"],  # failpoints: change-feed resume tests
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=workdir,  # it looks for ./secantusd.toml: none here
        )
    uri = f"mongodb://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not answers_ping(uri):
            if process.poll() is not None or time.monotonic() > deadline:
                exited = process.poll()
                what = (f"exited with code {exited}" if exited is not None
                        else f"did not answer a ping on {uri} within {START_TIMEOUT:.0f} s")
                tail = log_path.read_text(errors="replace")[-2000:]
                raise ServerUnavailable(f"SecantusDB ({command}) {what}. Its log ends with:\n{tail}\n"
                                        f"To fix: {HOW_TO_FIX}.")
            time.sleep(0.05)
        yield uri
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(workdir, ignore_errors=True)
