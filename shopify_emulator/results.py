"""Result files of bulk operations: written to one temp dir (removed at close), served by an
unguessable token, cached per (store version, query, groupObjects) so re-running the same query on
an unchanged store costs nothing.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .jsonl import ExportStats


@dataclass(eq=False)
class ResultFile:
    token: str
    path: Path
    shop: str
    objects: int = 0
    roots: int = 0
    size: int = 0
    pending: bool = True
    expired: bool = False

    def fill(self, stats: ExportStats) -> ResultFile:
        """The file is written: record its counts (a pending file is never evicted)."""
        self.objects, self.roots, self.size = stats.objects, stats.roots, stats.size
        self.pending = False
        return self


class ResultFiles:
    def __init__(self, directory: Path | None = None) -> None:
        self._owned = directory is None
        self.directory = Path(tempfile.mkdtemp(prefix="shopify-emulator-")) if directory is None else directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self._files: dict[str, ResultFile] = {}
        self._cache: dict[tuple[str, int, str, bool], ResultFile] = {}

    def new(self, shop: str, suffix: str = "final") -> ResultFile:
        token = secrets.token_urlsafe(18)
        result = ResultFile(token, self.directory / f"{token}-{suffix}.jsonl", shop)
        self._files[token] = result
        return result

    def get(self, token: str) -> ResultFile | None:
        return self._files.get(token)

    def files_of(self, shop: str) -> list[ResultFile]:
        """The shop's files still on disk."""
        return [f for f in self._files.values() if f.shop == shop and not f.expired]

    def cached(self, shop: str, version: int, query: str, group_objects: bool) -> ResultFile | None:
        found = self._cache.get((shop, version, query, group_objects))
        return found if found is not None and not found.expired else None

    def remember(self, shop: str, version: int, query: str, group_objects: bool, result: ResultFile) -> None:
        self._cache[(shop, version, query, group_objects)] = result

    def discard(self, result: ResultFile) -> None:
        """Delete the file (its URL then answers like an expired signed URL)."""
        result.expired = True
        result.path.unlink(missing_ok=True)
        for key in [k for k, v in self._cache.items() if v is result]:
            del self._cache[key]

    def close(self) -> None:
        for result in self._files.values():
            result.expired = True
        self._files.clear()
        self._cache.clear()
        if self._owned:
            shutil.rmtree(self.directory, ignore_errors=True)
