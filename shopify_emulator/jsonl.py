"""Bulk query output: the JSONL file Shopify writes, and the damaged copies faults serve.

One node per line; a node of a nested connection is a line of its own ending with `__parentId`.
`group_objects=True` writes each child right below its parent (depth first). With False (the
2026-01 default) roots are written in chunks: a chunk's roots, then their children connection by
connection (pre-order path numbering puts every child connection after its parent's), so children
still follow their parents but are not adjacent to them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from .errors import ExportCanceled
from .execute import ChildConnection, Plan, render

CHUNK_ROOTS = 250
_dumps = orjson.dumps


@dataclass(frozen=True)
class ExportStats:
    objects: int
    roots: int
    size: int


def write_jsonl(path: Path, roots: Iterable[tuple[ChildConnection, Iterable[Any]]], *, group_objects: bool,
                progress: Callable[[int, int], None] | None = None,
                canceled: Callable[[], bool] = lambda: False, chunk_roots: int = CHUNK_ROOTS) -> ExportStats:
    """Write the lines for every root node of every root connection; `progress(objects, roots)` per chunk."""
    objects = roots_done = 0
    with open(path, "wb", buffering=1 << 20) as out:
        for connection, nodes in roots:
            chunk: list[Any] = []
            for node in nodes:
                chunk.append(node)
                if len(chunk) >= chunk_roots:
                    objects += _write_chunk(out, connection, chunk, group_objects)
                    roots_done += len(chunk)
                    chunk = []
                    if progress is not None:
                        progress(objects, roots_done)
                    if canceled():
                        raise ExportCanceled()
            if chunk:
                objects += _write_chunk(out, connection, chunk, group_objects)
                roots_done += len(chunk)
        size = out.tell()
    if progress is not None:
        progress(objects, roots_done)
    return ExportStats(objects, roots_done, size)


def _write_chunk(out: Any, connection: ChildConnection, nodes: list[Any], group_objects: bool) -> int:
    if group_objects:
        lines: list[bytes] = []
        for node in nodes:
            _grouped(node, connection.plan, None, lines)
        out.write(b"\n".join(lines) + b"\n")
        return len(lines)
    buckets: dict[int, list[bytes]] = {}
    for node in nodes:
        _ungrouped(node, connection.plan, None, connection.path, buckets)
    count = 0
    for path in sorted(buckets):
        lines = buckets[path]
        out.write(b"\n".join(lines) + b"\n")
        count += len(lines)
    return count


def _line(node: Any, plan: Plan, parent_id: str | None) -> bytes:
    data = render(node, plan)
    if parent_id is not None:
        data["__parentId"] = parent_id
    return _dumps(data)


def _grouped(node: Any, plan: Plan, parent_id: str | None, lines: list[bytes]) -> None:
    lines.append(_line(node, plan, parent_id))
    children = plan.children[node.TYPENAME]
    if children:
        own_id = node.gid
        for child in children:
            for item in child.nodes(node):
                _grouped(item, child.plan, own_id, lines)


def _ungrouped(node: Any, plan: Plan, parent_id: str | None, path: int, buckets: dict[int, list[bytes]]) -> None:
    buckets.setdefault(path, []).append(_line(node, plan, parent_id))
    children = plan.children[node.TYPENAME]
    if children:
        own_id = node.gid
        for child in children:
            for item in child.nodes(node):
                _ungrouped(item, child.plan, own_id, child.path, buckets)


def copy_prefix(source: Path, target: Path, fraction: float) -> ExportStats:
    """Partial data: the first `fraction` of the lines (whole lines), as a failed operation leaves them."""
    with open(source, "rb") as handle:
        total = sum(1 for _ in handle)
    keep = int(total * fraction)
    roots = 0
    with open(source, "rb") as src, open(target, "wb") as dst:
        for _, line in zip(range(keep), src):
            dst.write(line)
            roots += b'"__parentId"' not in line
        size = dst.tell()
    return ExportStats(keep, roots, size)


GARBAGE_LINE = b"<html><body>502 Bad Gateway</body></html>"


def copy_corrupted(source: Path, target: Path, positions: Iterable[int], kind: str) -> int:
    """Copy `source`, damaging the lines at `positions` (0-based); returns the new size in bytes.

    kind "truncate": the line is cut in half (invalid JSON; its object is lost);
    kind "garbage": a line that is not JSON at all is inserted before it (nothing is lost).
    A position past the end damages nothing (garbage is appended at the end).
    """
    wanted = set(positions)
    with open(source, "rb") as src, open(target, "wb") as dst:
        index = -1
        for index, line in enumerate(src):
            if index in wanted:
                if kind == "truncate":
                    body = line.rstrip(b"\n")
                    line = body[: max(1, len(body) // 2)] + b"\n"
                else:
                    dst.write(GARBAGE_LINE + b"\n")
            dst.write(line)
        if kind != "truncate" and any(p > index for p in wanted):
            dst.write(GARBAGE_LINE + b"\n")
        return dst.tell()
