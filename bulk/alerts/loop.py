"""A loop run as a task from `start()` until `close()`: the alert workers' shared lifecycle."""

from __future__ import annotations

import asyncio
import contextlib


class BackgroundLoop:
    """Subclasses give `_run` (the loop) and `task_name`; `_opening`/`_closed` hold their own resources."""

    task_name = "background-loop"
    _task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is None:
            await self._opening()
            self._task = asyncio.create_task(self._run(), name=self.task_name)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._closed()

    async def _opening(self) -> None:
        """Before the loop starts."""

    async def _closed(self) -> None:
        """After the loop stopped."""

    async def _run(self) -> None:
        raise NotImplementedError
