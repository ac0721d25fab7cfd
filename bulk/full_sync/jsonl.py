"""JSONL result files: chunked download with resume, line blocks, typed decoding.

The download reads 1 MiB chunks (`iter_chunked`, never `async for line in resp.content`, which
costs a Python iteration per line) and hands on blocks of complete lines. A connection cut
mid-body resumes with `Range: bytes=<offset>-` from the end of the last complete line; a server
that ignores Range (200 instead of 206) is re-read from the start and the bytes already handed on
are dropped, so every line is delivered exactly once. Retries are bounded with exponential
backoff and jitter; then `DownloadError`.

Decoding uses msgspec with a typed Struct per line, one C call per block (`decode_lines`); a block
holding a malformed line is decoded again line by line so the bad lines are counted with their
line numbers and skipped, never fatal.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import aiohttp
import msgspec

from bulk.errors import DownloadError, DownloadRefused

T = TypeVar("T")

CHUNK_SIZE = 1 << 20
MIN_BLOCK = 256 << 10  # hand on blocks of at least this many bytes (fewer queue hand-overs)
PIECE_SIZE = 32 << 10
MAX_EXAMPLES = 5
_CONTENT_RANGE = re.compile(r"bytes (\d+)-\d+/(\d+|\*)")
_RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(slots=True, frozen=True)
class DownloadRetry:
    """Bounded retries: `attempts` consecutive failures without new data end the download."""

    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 15.0

    def delay(self, failure: int) -> float:
        """Exponential backoff with jitter for the `failure`-th consecutive failure (1-based)."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** (failure - 1))
        return float(ceiling * (0.5 + random.random() / 2))


@dataclass(slots=True, frozen=True)
class Block:
    """Complete lines of the file. `data` ends with b"\\n" except for a last unterminated line."""

    data: bytes
    first_line: int  # 1-based line number of the first line in `data`
    line_count: int

    def pieces(self, size: int = PIECE_SIZE) -> Iterator[Block]:
        """The block cut at line ends into pieces of about `size` bytes. Decoding and assembling
        a small piece at a time keeps its objects in the CPU cache (measured: ~1.5x faster than
        1 MiB at once)."""
        data = self.data
        if len(data) <= size:
            yield self
            return
        start, line = 0, self.first_line
        while start < len(data):
            end = data.find(b"\n", start + size) + 1 or len(data)
            count = data.count(b"\n", start, end) + (0 if data[end - 1] == 10 else 1)
            yield Block(data[start:end], line, count)
            start, line = end, line + count


class _Retry(Exception):
    """A failed attempt that may succeed when tried again."""


class JsonlDownload:
    """Downloads one JSONL file, handing blocks of complete lines to a sink (back-pressure: the
    next chunk is read only once the sink returned)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        *,
        chunk_size: int = CHUNK_SIZE,
        min_block: int = MIN_BLOCK,
        retry: DownloadRetry = DownloadRetry(),
        timeout: aiohttp.ClientTimeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=120),
    ) -> None:
        self._session = session
        self._url = url
        self._chunk_size = chunk_size
        self._min_block = min(min_block, chunk_size)
        self._retry = retry
        self._timeout = timeout
        self.file_size: int | None = None
        self.bytes_downloaded = 0  # furthest file offset received
        self.lines = 0  # lines handed on
        self.resumes = 0  # reconnections after a failure
        self._offset = 0  # file offset just after the last line handed on

    async def run(self, sink: Callable[[Block], Awaitable[object]]) -> None:
        """Download the whole file into `sink`. Raises DownloadError when retries are exhausted,
        DownloadRefused on a 4xx (expired or foreign URL)."""
        failures = 0
        while True:
            progress_before = self._offset
            try:
                await self._attempt(sink)
                return
            except (_Retry, aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, TimeoutError) as exc:
                failures = 1 if self._offset > progress_before else failures + 1
                if failures >= self._retry.attempts:
                    raise DownloadError(
                        f"downloading the bulk result failed {failures} times in a row "
                        f"at byte {self._offset:,}: {_describe(exc)}"
                    ) from exc
                self.resumes += 1
                await asyncio.sleep(self._retry.delay(failures))

    async def _attempt(self, sink: Callable[[Block], Awaitable[object]]) -> None:
        headers = {"Accept-Encoding": "identity"}  # byte offsets must be file offsets
        if self._offset:
            headers["Range"] = f"bytes={self._offset}-"
        async with self._session.get(self._url, headers=headers, timeout=self._timeout) as resp:
            position = self._start_position(resp)
            if position is None:  # nothing left to read
                return
            parts: list[bytes] = []
            pending = 0
            try:
                async for chunk in resp.content.iter_chunked(self._chunk_size):
                    if position < self._offset:  # re-reading bytes already handed on
                        if position + len(chunk) <= self._offset:
                            position += len(chunk)
                            continue
                        chunk = chunk[self._offset - position :]
                        position = self._offset
                    position += len(chunk)
                    if position > self.bytes_downloaded:
                        self.bytes_downloaded = position
                    parts.append(chunk)
                    pending += len(chunk)
                    if pending >= self._min_block and b"\n" in chunk:
                        parts = await self._deliver_lines(parts, sink)
                        pending = len(parts[0]) if parts else 0
            except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, TimeoutError):
                await self._deliver_lines(parts, sink)  # resume after the last complete line received
                raise
            if position < self._offset:
                raise _Retry(f"the response ended at byte {position:,}, before byte {self._offset:,}")
            if parts:
                await self._deliver(b"".join(parts), sink)

    def _start_position(self, resp: aiohttp.ClientResponse) -> int | None:
        """File offset of the response's first byte; None when the file is already complete."""
        status = resp.status
        if status == 206:
            match = _CONTENT_RANGE.fullmatch(resp.headers.get("Content-Range", ""))
            if match is None:
                raise _Retry(f"unusable Content-Range {resp.headers.get('Content-Range')!r}")
            start = int(match.group(1))
            if match.group(2) != "*":
                self.file_size = int(match.group(2))
            if start > self._offset:
                raise _Retry(f"the server resumed at byte {start:,} instead of {self._offset:,}")
            return start
        if status == 200:
            if resp.content_length is not None and self.file_size is None:
                self.file_size = resp.content_length
            return 0
        if status == 416 and self.file_size is not None and self._offset >= self.file_size:
            return None
        if status in _RETRY_STATUS or status >= 500:
            raise _Retry(f"HTTP {status}")
        raise DownloadRefused(f"the bulk result URL answered HTTP {status} {resp.reason or ''}".rstrip(),
                              status=status)

    async def _deliver_lines(self, parts: list[bytes], sink: Callable[[Block], Awaitable[object]]) -> list[bytes]:
        """Deliver the complete lines in `parts`; return what is left of the last, partial line."""
        data = b"".join(parts)
        end = data.rfind(b"\n") + 1
        if end == 0:
            return [data] if data else []
        await self._deliver(data[:end] if end < len(data) else data, sink)
        return [data[end:]] if end < len(data) else []

    async def _deliver(self, data: bytes, sink: Callable[[Block], Awaitable[object]]) -> None:
        count = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
        block = Block(data, self.lines + 1, count)
        self._offset += len(data)
        self.lines += count
        await sink(block)


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


# -- decoding ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class MalformedLines:
    """Lines that could not be used: counted, with a few "line N: reason" examples."""

    max_examples: int = MAX_EXAMPLES
    count: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, line_number: int, reason: str) -> None:
        self.count += 1
        if len(self.examples) < self.max_examples:
            self.examples.append(f"line {line_number}: {reason[:200]}")


class LineDecoder(Generic[T]):
    """Decodes blocks of JSONL into `type` objects; blank lines are ignored, bad lines recorded."""

    def __init__(self, type: type[T], malformed: MalformedLines) -> None:
        self._decoder = msgspec.json.Decoder(type)
        self.malformed = malformed

    def decode(self, block: Block) -> tuple[list[T], Callable[[int], int]]:
        """The block's objects and a function mapping an object's index to its file line number."""
        try:
            objects = self._decoder.decode_lines(block.data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return self._decode_each(block)
        numbers: list[int] | None = None

        def line_number(index: int) -> int:
            nonlocal numbers
            if numbers is None:  # only when a line is reported: not on the fast path
                numbers = [
                    block.first_line + i for i, line in enumerate(block.data.split(b"\n")) if line.strip()
                ]
            return numbers[index]

        return objects, line_number

    def _decode_each(self, block: Block) -> tuple[list[T], Callable[[int], int]]:
        objects: list[T] = []
        numbers: list[int] = []
        decode = self._decoder.decode
        for i, line in enumerate(block.data.split(b"\n")):
            if not line.strip():
                continue
            try:
                objects.append(decode(line))
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                self.malformed.add(block.first_line + i, str(exc))
                continue
            numbers.append(block.first_line + i)
        return objects, numbers.__getitem__
