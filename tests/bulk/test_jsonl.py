"""JSONL download and decoding against a real aiohttp server on 127.0.0.1 serving fixed bytes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import msgspec
import pytest

from bulk.errors import DownloadError, DownloadRefused
from bulk.full_sync.jsonl import Block, DownloadRetry, JsonlDownload, LineDecoder, MalformedLines
from tests.bulk.file_server import FileServer, serving

FAST_RETRY = DownloadRetry(attempts=3, base_delay=0.001, max_delay=0.01)


class Row(msgspec.Struct):
    n: int
    text: str = ""


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[FileServer], Awaitable[FileServer]]]:
    async with serving() as start:
        yield start


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def jsonl(count: int, newline: bytes = b"\n") -> bytes:
    return b"".join(b'{"n":%d,"text":"r\xc3\xa9sum\xc3\xa9 %s"}' % (n, b"x" * (n % 37)) + newline for n in range(1, count + 1))


async def download(session: aiohttp.ClientSession, url: str, **kwargs: object) -> tuple[list[Block], JsonlDownload]:
    blocks: list[Block] = []

    async def sink(block: Block) -> None:
        blocks.append(block)

    dl = JsonlDownload(session, url, retry=FAST_RETRY, **kwargs)  # type: ignore[arg-type]
    await dl.run(sink)
    return blocks, dl


def decode_all(blocks: list[Block]) -> tuple[list[Row], MalformedLines]:
    malformed = MalformedLines()
    decoder = LineDecoder(Row, malformed)
    rows: list[Row] = []
    for block in blocks:
        rows.extend(decoder.decode(block)[0])
    return rows, malformed


def assert_consistent(blocks: list[Block]) -> None:
    """Blocks hold whole lines and number them without gap or overlap."""
    expected = 1
    for block in blocks[:-1]:
        assert block.data.endswith(b"\n")
    for block in blocks:
        assert block.first_line == expected
        expected += block.line_count


async def test_lines_split_across_chunk_boundaries(serve, session) -> None:
    body = jsonl(500)
    server = await serve(FileServer(body, piece=7))
    blocks, dl = await download(session, server.url, chunk_size=13, min_block=1)
    assert b"".join(b.data for b in blocks) == body
    assert len(blocks) > 10
    assert_consistent(blocks)
    rows, malformed = decode_all(blocks)
    assert [r.n for r in rows] == list(range(1, 501)) and malformed.count == 0
    assert rows[0].text == "résumé x"
    assert (dl.bytes_downloaded, dl.file_size, dl.lines) == (len(body), len(body), 500)


async def test_crlf_and_last_line_without_newline(serve, session) -> None:
    body = jsonl(50, newline=b"\r\n") + b'{"n":51}'
    server = await serve(FileServer(body, piece=100))
    blocks, dl = await download(session, server.url, chunk_size=64, min_block=1)
    rows, malformed = decode_all(blocks)
    assert [r.n for r in rows] == list(range(1, 52)) and malformed.count == 0
    assert dl.lines == 51


async def test_malformed_lines_are_counted_with_line_numbers_and_skipped(serve, session) -> None:
    body = (
        b'{"n":1}\n'
        b"\n"  # blank: ignored, not malformed
        b'{"n":3,\n'
        b'{"n":"four"}\n'
        b'{"n":5}\n'
        b"\xff\xfe\n"
        b'{"n":7}'
    )
    server = await serve(FileServer(body))
    blocks, _ = await download(session, server.url)
    rows, malformed = decode_all(blocks)
    assert [r.n for r in rows] == [1, 5, 7]
    assert malformed.count == 3
    assert [e.split(":")[0] for e in malformed.examples] == ["line 3", "line 4", "line 6"]
    assert "Expected `int`, got `str`" in malformed.examples[1]


async def test_line_numbers_of_decoded_objects_skip_blank_lines(serve, session) -> None:
    body = b'{"n":1}\n\n  \n{"n":4}\r\n{"n":5}\n'
    server = await serve(FileServer(body))
    blocks, _ = await download(session, server.url)
    [block] = blocks
    rows, line_number = LineDecoder(Row, MalformedLines()).decode(block)
    assert [(r.n, line_number(i)) for i, r in enumerate(rows)] == [(1, 1), (4, 4), (5, 5)]


async def test_connection_cut_mid_body_resumes_with_range(serve, session) -> None:
    body = jsonl(2000)
    cut = len(body) // 2 + 5  # inside a line
    server = await serve(FileServer(body, cuts=[cut]))
    blocks, dl = await download(session, server.url, chunk_size=4096, min_block=1)
    rows, _ = decode_all(blocks)
    assert [r.n for r in rows] == list(range(1, 2001))  # every line exactly once
    assert_consistent(blocks)
    assert len(server.requests) == 2 and dl.resumes == 1
    resumed_at = int(server.requests[1]["Range"].removeprefix("bytes=").rstrip("-"))
    assert 0 < resumed_at <= cut and body[resumed_at - 1 : resumed_at] == b"\n"  # a line start


async def test_server_without_range_support_restarts_and_skips_processed_lines(serve, session) -> None:
    body = jsonl(2000)
    server = await serve(FileServer(body, ranges=False, cuts=[len(body) // 3, 2 * len(body) // 3]))
    blocks, dl = await download(session, server.url, chunk_size=4096, min_block=1)
    rows, _ = decode_all(blocks)
    assert [r.n for r in rows] == list(range(1, 2001))
    assert_consistent(blocks)
    assert len(server.requests) == 3 and dl.bytes_downloaded == len(body)


async def test_transient_server_errors_are_retried(serve, session) -> None:
    body = jsonl(10)
    server = await serve(FileServer(body, statuses=[503, 502]))
    blocks, _ = await download(session, server.url)
    assert b"".join(b.data for b in blocks) == body
    assert len(server.requests) == 3


async def test_bounded_retries_then_download_error(serve, session) -> None:
    server = await serve(FileServer(jsonl(10), statuses=[503, 503, 503, 503]))
    with pytest.raises(DownloadError, match="failed 3 times in a row") as info:
        await download(session, server.url)
    assert info.value.retryable and len(server.requests) == 3


async def test_cuts_without_progress_are_bounded(serve, session) -> None:
    server = await serve(FileServer(jsonl(100), cuts=[3, 3, 3, 3]))  # never a complete line
    with pytest.raises(DownloadError):
        await download(session, server.url)
    assert len(server.requests) == 3


async def test_refused_url_is_not_retried(serve, session) -> None:
    server = await serve(FileServer(jsonl(10), statuses=[403]))
    with pytest.raises(DownloadRefused, match="HTTP 403") as info:
        await download(session, server.url)
    assert not info.value.retryable and "re-sync" in info.value.fix
    assert len(server.requests) == 1


async def test_refused_connection_is_a_download_error(session) -> None:
    with pytest.raises(DownloadError):
        await download(session, "http://127.0.0.1:1/result.jsonl")


def test_block_pieces_keep_whole_lines_and_line_numbers() -> None:
    body = jsonl(300) + b'{"n":301}'
    block = Block(body, 10, 301)
    pieces = list(block.pieces(1000))
    assert len(pieces) > 5 and b"".join(p.data for p in pieces) == body
    assert all(p.data.endswith(b"\n") for p in pieces[:-1])
    assert [p.first_line for p in pieces] == [10 + sum(q.line_count for q in pieces[:i]) for i in range(len(pieces))]
    assert sum(p.line_count for p in pieces) == 301
    assert list(Block(b'{"n":1}\n', 1, 1).pieces(1000)) == [Block(b'{"n":1}\n', 1, 1)]
