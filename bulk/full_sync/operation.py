"""Bulk operation lifecycle: the pure state machine and the runner that drives it (the wire values
it reads are in `bulk.shopify.bulk_operations`).

`next_action(state, attempt, max_attempts)` decides what to do with a polled `BulkOperationState`;
`BulkOperationRunner` performs it (start, poll with capped backoff, rerun, cancel) through a
`BulkClient` (implemented by `bulk.shopify.client.ShopifyClient`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from bulk import metrics
from bulk.errors import BulkOperationCanceled, BulkOperationFailed, ShopifyError, ShopifyUserError
from bulk.shopify.bulk_operations import (
    BulkCancelResult,
    BulkOperationErrorCode,
    BulkOperationState,
    BulkOperationStatus,
    BulkResult,
    BulkRunRejected,
    BulkRunStarted,
    BulkUserErrorCode,
    result_url_usable,
)
from catalog_store.models import SyncErrorCode

log = logging.getLogger(__name__)

_WAIT_TO_START = frozenset({BulkUserErrorCode.OPERATION_IN_PROGRESS, BulkUserErrorCode.LIMIT_REACHED})


# -- the state machine ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Poll:
    """Still working (or canceling): poll again."""


@dataclass(frozen=True, slots=True)
class Download:
    url: str


@dataclass(frozen=True, slots=True)
class EmptyResult:
    """COMPLETED without a URL: the query matched nothing."""


@dataclass(frozen=True, slots=True)
class Rerun:
    reason: str


@dataclass(frozen=True, slots=True)
class Fail:
    code: SyncErrorCode
    message: str
    error_code: str | None = None
    partial_data_url: str | None = None


@dataclass(frozen=True, slots=True)
class Canceled:
    """The operation was canceled (by us or another client of the app)."""


Action = Poll | Download | EmptyResult | Rerun | Fail | Canceled

_RETRYABLE_ERRORS = frozenset({BulkOperationErrorCode.INTERNAL_SERVER_ERROR, BulkOperationErrorCode.TIMEOUT})


def next_action(state: BulkOperationState, attempt: int, max_attempts: int) -> Action:
    """What to do with `state`, the latest observation of run attempt `attempt` (1-based).

    FAILED with INTERNAL_SERVER_ERROR/TIMEOUT (or an unknown code) and EXPIRED are re-run while
    `attempt < max_attempts`, then fail with SERVER_ERROR. An unknown status fails rather than
    polling forever.
    """
    status = state.status
    if status in (BulkOperationStatus.CREATED, BulkOperationStatus.RUNNING, BulkOperationStatus.CANCELING):
        return Poll()
    if status == BulkOperationStatus.COMPLETED:
        return Download(state.url) if state.url else EmptyResult()
    if status == BulkOperationStatus.CANCELED:
        return Canceled()
    if status == BulkOperationStatus.FAILED and state.error_code == BulkOperationErrorCode.ACCESS_DENIED:
        return Fail(SyncErrorCode.ACCESS_DENIED,
                    f"Bulk operation {state.id} failed: ACCESS_DENIED (the token lacks a scope the query needs)",
                    state.error_code, state.partial_data_url)
    if status == BulkOperationStatus.FAILED:
        reason = f"bulk operation {state.id} FAILED with {state.error_code or 'no error code'}"
        if state.error_code not in (None, *_RETRYABLE_ERRORS):
            reason += " (unknown code, treated as a Shopify failure)"
    elif status == BulkOperationStatus.EXPIRED:
        reason = f"bulk operation {state.id} EXPIRED"
    else:
        return Fail(SyncErrorCode.SERVER_ERROR, f"Bulk operation {state.id} has an unknown status {status!r}")
    if attempt < max_attempts:
        return Rerun(reason)
    return Fail(SyncErrorCode.SERVER_ERROR, f"Shopify failed the bulk query {attempt} times; last: {reason}",
                state.error_code, state.partial_data_url)


def poll_delays(first: float, cap: float, factor: float) -> Iterator[float]:
    """Capped exponential delays: first, first×factor, … up to `cap`, then `cap` forever."""
    delay = min(first, cap)
    while True:
        yield delay
        delay = min(delay * factor, cap)


# -- the runner ----------------------------------------------------------------------------------


class BulkClient(Protocol):
    """What the runner needs from the Shopify client (`bulk.shopify.client.ShopifyClient`)."""

    async def run_bulk_query(self, query: str, group_objects: bool = False) -> BulkRunStarted | BulkRunRejected: ...

    async def bulk_operation(self, operation_id: str) -> BulkOperationState | None: ...

    async def cancel_bulk_operation(self, operation_id: str) -> BulkCancelResult: ...

    async def newest_bulk_query(self) -> BulkOperationState | None: ...


OnUpdate = Callable[[BulkOperationState], Awaitable[None]]


@dataclass
class _Run:
    query: str
    group_objects: bool
    attempt: int = 1
    state: BulkOperationState | None = None
    canceled_ids: set[str] = field(default_factory=set)


class BulkOperationRunner:
    """Runs one bulk query to completion: start, poll, re-run Shopify failures, or cancel.

    Polls `node(id:)` with an interval growing from `poll_interval` to `max_poll_interval`
    (×`backoff_factor`); `wake()` (a `bulk_operations/finish` webhook) makes the next poll immediate.
    `on_update` is awaited with every new state, first with the just-created operation, so the
    caller can persist the id and resume after a restart (`resume_operation_id`). One runner per run.
    """

    def __init__(self, client: BulkClient, poll_interval: float = 1.0, max_poll_interval: float = 30.0,
                 max_attempts: int = 3, on_update: OnUpdate | None = None, *, backoff_factor: float = 1.5,
                 now: Callable[[], datetime] | None = None) -> None:
        if poll_interval <= 0 or max_poll_interval < poll_interval:
            raise ValueError("need 0 < poll_interval <= max_poll_interval")
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if backoff_factor < 1:
            raise ValueError("backoff_factor must be >= 1")
        self._client = client
        self._poll_interval = poll_interval
        self._max_poll_interval = max_poll_interval
        self._max_attempts = max_attempts
        self._on_update = on_update
        self._backoff_factor = backoff_factor
        self._now = now or (lambda: datetime.now(UTC))
        self._wake = asyncio.Event()
        self._cancel_requested = False
        self._run: _Run | None = None
        self._running = False

    @property
    def state(self) -> BulkOperationState | None:
        """The latest observed state of the current operation."""
        return self._run.state if self._run else None

    @property
    def operation_id(self) -> str | None:
        state = self.state
        return state.id if state else None

    def wake(self) -> None:
        """Poll (or retry the start) now instead of at the end of the current interval."""
        self._wake.set()

    async def cancel(self) -> None:
        """Cancel: `bulkOperationCancel` the current operation (if unfinished); `run()` then raises
        BulkOperationCanceled. Errors sending the mutation propagate; `run()` still ends canceled."""
        self._cancel_requested = True
        self._wake.set()
        run = self._run
        if run is not None and run.state is not None:
            await self._send_cancel(run, run.state)

    async def run(self, query: str, group_objects: bool = False,
                  resume_operation_id: str | None = None) -> BulkResult:
        """Run `query` to COMPLETED (or resume `resume_operation_id`) and return where its result is.

        Raises BulkOperationFailed (SERVER_ERROR after `max_attempts` runs, or ACCESS_DENIED),
        BulkOperationCanceled, ShopifyUserError (INVALID query), or the client's Shopify* errors.
        """
        if self._running:
            raise RuntimeError("this BulkOperationRunner is already running")
        self._running = True
        run = self._run = _Run(query, group_objects)
        try:
            if resume_operation_id is not None:
                await self._resume(run, resume_operation_id)
            if run.state is None:
                await self._start(run)
            return await self._drive(run)
        finally:
            self._running = False

    async def _drive(self, run: _Run) -> BulkResult:
        delays = self._poll_delays()
        while True:
            assert run.state is not None
            await self._raise_if_canceled(run)
            action = next_action(run.state, run.attempt, self._max_attempts)
            match action:
                case Poll():
                    await self._wait(next(delays))
                    await self._raise_if_canceled(run)
                    await self._poll(run)
                case Download() | EmptyResult():
                    state = run.state
                    log.info("bulk operation %s completed: %d objects", state.id, state.object_count)
                    return BulkResult(operation_id=state.id, url=state.url, object_count=state.object_count,
                                      file_size=state.file_size, root_object_count=state.root_object_count,
                                      completed_at=state.completed_at, attempts=run.attempt)
                case Rerun(reason=reason):
                    log.warning("%s; re-running (attempt %d of %d)", reason, run.attempt + 1, self._max_attempts)
                    run.attempt += 1
                    await self._start(run)
                    delays = self._poll_delays()
                case Fail(message=message, error_code=error_code, partial_data_url=partial):
                    raise BulkOperationFailed(message, error_code=error_code, partial_data_url=partial)
                case Canceled():
                    raise BulkOperationCanceled(f"Bulk operation {run.state.id} was canceled",
                                                operation_id=run.state.id, requested=self._cancel_requested)

    def _poll_delays(self) -> Iterator[float]:
        return poll_delays(self._poll_interval, self._max_poll_interval, self._backoff_factor)

    async def _resume(self, run: _Run, operation_id: str) -> None:
        state = await self._client.bulk_operation(operation_id)
        if state is None:
            log.info("bulk operation %s is unknown to Shopify; starting a new one", operation_id)
        elif state.status == BulkOperationStatus.EXPIRED:
            log.info("bulk operation %s expired; starting a new one", operation_id)
        elif state.status == BulkOperationStatus.COMPLETED and state.url and not result_url_usable(
                state, now=self._now()):
            log.info("bulk operation %s completed too long ago to download; starting a new one", operation_id)
        else:
            await self._observe(run, state)

    async def _start(self, run: _Run) -> None:
        delays = poll_delays(self._poll_interval, self._max_poll_interval, 2.0)
        while True:
            await self._raise_if_canceled(run)
            result = await self._client.run_bulk_query(run.query, run.group_objects)
            if isinstance(result, BulkRunStarted):
                log.info("bulk operation %s started", result.operation_id)
                await self._observe(run, BulkOperationState(id=result.operation_id, status=result.status))
                return
            if not result.codes or not result.codes <= _WAIT_TO_START:
                raise ShopifyUserError(f"Shopify rejected the bulk query: {result.message}",
                                       user_errors=result.user_errors)
            if BulkUserErrorCode.OPERATION_IN_PROGRESS in result.codes:
                await self._cancel_orphan(run)
            delay = next(delays)
            log.info("cannot start a bulk operation yet (%s); retrying in %.3gs", result.message, delay)
            await self._wait(delay)

    async def _cancel_orphan(self, run: _Run) -> None:
        """Cancel the bulk query standing in the way of this run's start.

        Only this app's operations count against its one-at-a-time limit, and only the holder of the
        shop's sync lease starts them, so an unfinished one that is not this run's (a run resumes its
        own by id) was left behind: a run interrupted while its start request was in flight, after
        Shopify had created the operation. Waiting for it would hold this run for as long as it takes;
        its result would not be used."""
        try:
            blocker = await self._client.newest_bulk_query()
            if blocker is None or blocker.finished or blocker.id in run.canceled_ids:
                return
            log.warning("bulk operation %s (%s), left by an interrupted run, stands in the way: canceling it",
                        blocker.id, blocker.status)
            await self._send_cancel(run, blocker)
        except ShopifyError as exc:  # the start is retried all the same; the operation then ends on its own
            log.warning("could not cancel the bulk operation in the way: %s", exc)

    async def _poll(self, run: _Run) -> None:
        assert run.state is not None
        state = await self._client.bulk_operation(run.state.id)
        if state is None:
            state = BulkOperationState(id=run.state.id, status=BulkOperationStatus.EXPIRED)
            log.warning("bulk operation %s vanished from Shopify; treating it as EXPIRED", run.state.id)
        metrics.bulk_polled(str(state.status))
        await self._observe(run, state)

    async def _observe(self, run: _Run, state: BulkOperationState) -> None:
        changed = state != run.state
        run.state = state
        if changed and self._on_update is not None:
            await self._on_update(state)

    async def _wait(self, delay: float) -> None:
        if not self._wake.is_set():
            try:  # asyncio.timeout: 3.11's wait_for can swallow a cancel arriving with the wake-up
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            except TimeoutError:
                pass
        self._wake.clear()

    async def _raise_if_canceled(self, run: _Run) -> None:
        if not self._cancel_requested:
            return
        state = run.state
        if state is not None:
            try:
                await self._send_cancel(run, state)
            except ShopifyError as exc:
                log.warning("could not cancel bulk operation %s: %s", state.id, exc)
        raise BulkOperationCanceled(
            f"Bulk operation {state.id} canceled" if state else "Bulk operation canceled before it started",
            operation_id=state.id if state else None, requested=True)

    async def _send_cancel(self, run: _Run, state: BulkOperationState) -> None:
        if state.id in run.canceled_ids or state.finished or state.status == BulkOperationStatus.CANCELING:
            return
        run.canceled_ids.add(state.id)
        result = await self._client.cancel_bulk_operation(state.id)
        if result.ok:
            log.info("bulk operation %s canceling (%s)", state.id, result.status)
        else:
            log.info("bulk operation %s not canceled: %s", state.id, "; ".join(e.message for e in result.user_errors))
