"""Bulk query operations: Shopify's rules for the inner query, the operation's state machine, and
the runner that writes the JSONL (in a worker thread, so the API keeps answering) and applies faults.

Lifecycle: CREATED → RUNNING → COMPLETED | FAILED | EXPIRED; CREATED/RUNNING → CANCELING → CANCELED;
COMPLETED → EXPIRED when its result file is evicted or expired. While RUNNING, `objectCount` grows
over the operation's duration (per shop, `bulk_duration`; 0 in tests).
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    get_named_type,
    is_composite_type,
    print_ast,
)

from bulk.shopify.schema import load_admin_schema

from .errors import ExportCanceled, Unsupported
from .execute import Compiler, Record, is_connection
from .jsonl import ExportStats, copy_corrupted, copy_prefix, write_jsonl
from .models import gid
from .resolvers import Root, table
from .results import ResultFile, ResultFiles
from .validation import parse_and_validate

if TYPE_CHECKING:
    from .faults import Faults
    from .shop import EmulatedShop

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 5
MAX_NESTING = 2
ACTIVE = ("CREATED", "RUNNING", "CANCELING")
TERMINAL = ("COMPLETED", "FAILED", "CANCELED", "EXPIRED")
_TRANSITIONS = {
    "CREATED": {"RUNNING", "CANCELING", "FAILED"},
    "RUNNING": {"COMPLETED", "FAILED", "CANCELING", "EXPIRED"},
    "CANCELING": {"CANCELED"},
    "COMPLETED": {"EXPIRED"},
    "FAILED": {"EXPIRED"},
    "CANCELED": set(),
    "EXPIRED": set(),
}
_numbers = itertools.count(5_104_312_000)


@dataclass(eq=False)
class BulkOperation:
    TYPENAME: ClassVar[str] = "BulkOperation"
    number: int
    shop: str
    query: str
    group_objects: bool
    created_at: int
    duration: float
    type: str = "QUERY"
    status: str = "CREATED"
    error_code: str | None = None
    completed_at: int | None = None
    url: str | None = None
    partial_data_url: str | None = None
    file_size: int | None = None
    produced: int = 0
    produced_roots: int = 0
    started: float = 0.0
    cancel_requested: bool = False
    result: ResultFile | None = None
    partial: ResultFile | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    _frozen: bool = False

    @property
    def gid(self) -> str:
        return gid("BulkOperation", self.number)

    def transition(self, status: str) -> None:
        if status not in _TRANSITIONS[self.status]:
            raise RuntimeError(f"bulk operation {self.number}: illegal transition {self.status} -> {status}")
        self.status = status

    def on_progress(self, objects: int, roots: int) -> None:
        """Called from the writer thread."""
        if not self._frozen:
            self.produced, self.produced_roots = objects, roots

    def _fraction(self) -> float:
        if self.status != "RUNNING" or self.duration <= 0:
            return 1.0
        return min(1.0, (time.monotonic() - self.started) / self.duration)

    def visible_object_count(self) -> int:
        return int(self.produced * self._fraction())

    def visible_root_object_count(self) -> int:
        return int(self.produced_roots * self._fraction())

    def freeze(self) -> None:
        """Stop counting (cancel): the counts stay at what a poll showed last."""
        self.produced, self.produced_roots = self.visible_object_count(), self.visible_root_object_count()
        self._frozen = True


def bulk_query_problems(schema: GraphQLSchema, document: Any) -> list[str]:
    """Shopify's rules for a bulk query (after schema validation); empty when it may run."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) != 1:
        return ["Bulk queries must contain exactly one operation"]
    operation = operations[0]
    if operation.operation != OperationType.QUERY:
        return ["Bulk queries must be queries (use bulkOperationRunMutation to import data)"]
    if operation.variable_definitions:
        return ["Bulk queries cannot use variables"]
    fragments = {d.name.value: d for d in document.definitions if not isinstance(d, OperationDefinitionNode)}
    roots = [s for s in operation.selection_set.selections if isinstance(s, FieldNode)]
    if any(s.name.value in ("node", "nodes") for s in roots):
        return ["The top-level node and nodes fields can't be used in bulk queries"]
    count, depth = 0, -1

    def walk(parent: Any, selection_set: Any, level: int) -> None:
        nonlocal count, depth
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                walk(schema.get_type(condition.name.value) if condition else parent, selection.selection_set, level)
            elif isinstance(selection, FragmentSpreadNode):
                fragment = fragments[selection.name.value]
                walk(schema.get_type(fragment.type_condition.name.value), fragment.selection_set, level)
            elif isinstance(selection, FieldNode) and not selection.name.value.startswith("__"):
                named = get_named_type(parent.fields[selection.name.value].type)
                if is_connection(named):
                    count += 1
                    depth = max(depth, level)
                    walk(named, selection.selection_set, level + 1)
                elif is_composite_type(named):
                    walk(named, selection.selection_set, level)

    walk(schema.query_type, operation.selection_set, 0)
    if count == 0:
        return ["Bulk queries must contain at least one connection."]
    if count > MAX_CONNECTIONS:
        return [f"Bulk queries cannot contain more than {MAX_CONNECTIONS} connections (this one has {count})."]
    if depth > MAX_NESTING:
        return [f"Bulk queries cannot contain connections nested more than {MAX_NESTING} levels deep."]
    return []


def _payload(operation: BulkOperation | None, *errors: tuple[list[str] | None, str, str | None]) -> Record:
    return Record("BulkOperationRunQueryPayload", bulkOperation=operation,
                  userErrors=[Record("BulkOperationUserError", field=f, message=m, code=c) for f, m, c in errors])


@dataclass
class RequestContext:
    """What resolvers may reach besides the object they resolve."""

    shop: EmulatedShop
    bulk: BulkRunner
    api_version: str


class BulkRunner:
    """Starts, runs, cancels and expires the bulk operations of every shop of one emulator."""

    def __init__(self, files: ResultFiles, faults: Faults, *, url_for: Callable[[ResultFile], str],
                 clock: Callable[[], float] = time.time, max_results_per_shop: int = 4) -> None:
        self.files = files
        self.faults = faults
        self.url_for = url_for
        self.clock = clock
        self.max_results_per_shop = max_results_per_shop
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="bulk-export")
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False

    def run_query(self, shop: EmulatedShop, query: str, group_objects: bool) -> Record:
        """bulkOperationRunQuery: validate, then start an operation (CREATED) or answer userErrors."""
        document, errors = parse_and_validate(query)
        if document is None:
            return _payload(None, *((["query"], f"Invalid bulk query: {e['message']}", "INVALID") for e in errors))
        schema = load_admin_schema()
        problems = bulk_query_problems(schema, document)
        if problems:
            return _payload(None, *((["query"], f"Invalid bulk query: {p}", "INVALID") for p in problems))
        running = [op for op in shop.operations if op.type == "QUERY" and op.status in ACTIVE]
        if len(running) >= shop.bulk_concurrency:
            return _payload(None, (None, "A bulk query operation for this app and shop is already in progress: "
                                         f"{running[0].gid}.", "OPERATION_IN_PROGRESS"))
        ctx = RequestContext(shop, self, "")
        operation_node = next(d for d in document.definitions if isinstance(d, OperationDefinitionNode))
        fragments = {d.name.value: d for d in document.definitions if d is not operation_node}
        compiler = Compiler(schema, table, fragments, None, ctx, bulk=True)
        root_plan = compiler.plan(schema.query_type, [operation_node.selection_set], bulk_node=True)
        if root_plan.steps["QueryRoot"]:
            raise Unsupported("fields other than connections at the root of a bulk query", operation_node)
        root = Root("QueryRoot")
        roots = [(connection, connection.nodes(root)) for connection in root_plan.children["QueryRoot"]]
        slow = self.faults.take("slow_bulk", shop.domain)
        operation = BulkOperation(next(_numbers), shop.domain, query, group_objects, int(self.clock()),
                                  slow.params["seconds"] if slow else shop.bulk_duration)
        shop.operations.append(operation)
        key = print_ast(document)
        task = asyncio.get_running_loop().create_task(self._run(shop, operation, roots, key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return _payload(operation)

    def cancel(self, shop: EmulatedShop, operation_id: str) -> Record:
        """bulkOperationCancel: CREATED/RUNNING → CANCELING (→ CANCELED shortly after)."""
        operation = shop.bulk_operation(operation_id)
        if operation is None:
            return Record("BulkOperationCancelPayload", bulkOperation=None,
                          userErrors=[Record("UserError", field=["id"], message="Bulk operation does not exist")])
        if operation.status in TERMINAL:
            return Record("BulkOperationCancelPayload", bulkOperation=operation, userErrors=[Record(
                "UserError", field=["id"],
                message=f"A bulk operation cannot be canceled when it is {operation.status.lower()}")])
        if operation.status != "CANCELING":
            operation.freeze()
            operation.transition("CANCELING")
            operation.cancel_requested = True
            operation.wake.set()
        return Record("BulkOperationCancelPayload", bulkOperation=operation, userErrors=[])

    async def _run(self, shop: EmulatedShop, op: BulkOperation, roots: list[Any], key: str) -> None:
        try:
            await asyncio.sleep(0)
            if op.cancel_requested:
                return self._finish(shop, op, "CANCELED")
            op.transition("RUNNING")
            op.started = time.monotonic()
            ending = self.faults.take("bulk_end", shop.domain)
            corrupt = self.faults.take("corrupt_jsonl", shop.domain)
            version = shop.store.version
            result = self.files.cached(shop.domain, version, key, op.group_objects)
            if result is None:
                result = self.files.new(shop.domain)
                write = functools.partial(write_jsonl, result.path, roots, group_objects=op.group_objects,
                                          progress=op.on_progress,
                                          canceled=lambda: op.cancel_requested or self._closing)
                try:
                    result.fill(await asyncio.get_running_loop().run_in_executor(self._pool, write))
                except ExportCanceled:
                    self.files.discard(result)
                    return self._finish(shop, op, "CANCELED")
                if shop.store.version == version:
                    self.files.remember(shop.domain, version, key, op.group_objects, result)
            else:
                op.on_progress(result.objects, result.roots)
            remaining = op.duration - (time.monotonic() - op.started)
            if remaining > 0 and not op.cancel_requested:
                try:
                    await asyncio.wait_for(op.wake.wait(), remaining)
                except TimeoutError:
                    pass
            if op.cancel_requested:
                return self._finish(shop, op, "CANCELED")
            if ending is not None:
                return await self._end_badly(shop, op, result, ending.params)
            served = result
            if corrupt is not None:
                served = self.files.new(shop.domain, "corrupt")
                size = await asyncio.get_running_loop().run_in_executor(
                    self._pool, copy_corrupted, result.path, served.path, corrupt.params["positions"],
                    corrupt.params["kind"])
                served.fill(ExportStats(result.objects, result.roots, size))
            op.on_progress(result.objects, result.roots)
            op.result = served
            if served.objects:
                op.url, op.file_size = self.url_for(served), served.size
            self._finish(shop, op, "COMPLETED")
        except Exception:
            log.exception("bulk operation %s crashed", op.gid)
            if op.status not in TERMINAL:
                op.status, op.error_code = "FAILED", "INTERNAL_SERVER_ERROR"
                self._finish(shop, op, None)

    async def _end_badly(self, shop: EmulatedShop, op: BulkOperation, result: ResultFile, params: dict[str, Any]) -> None:
        if params["status"] == "EXPIRED":
            return self._finish(shop, op, "EXPIRED")
        partial = self.files.new(shop.domain, "partial")
        stats = await asyncio.get_running_loop().run_in_executor(
            self._pool, copy_prefix, result.path, partial.path, params["partial_fraction"])
        partial.fill(stats)
        op.partial, op.partial_data_url = partial, self.url_for(partial)
        op.produced, op.produced_roots = stats.objects, stats.roots
        op.error_code = params["error_code"]
        self._finish(shop, op, "FAILED")

    def _finish(self, shop: EmulatedShop, op: BulkOperation, status: str | None) -> None:
        if status is not None:
            op.transition("CANCELED" if op.status == "CANCELING" else status)
        op.completed_at = int(self.clock())
        op._frozen = True
        self._evict(shop)
        shop.bulk_finished(op)

    def _evict(self, shop: EmulatedShop) -> None:
        """Bound the disk: keep the files of the newest `max_results_per_shop` completed (and failed)
        operations; older operations become EXPIRED, and unreferenced files are deleted."""
        kept: list[ResultFile] = []
        for status, attribute in (("COMPLETED", "result"), ("FAILED", "partial")):
            newest: list[ResultFile] = []
            for op in reversed(shop.operations):
                result = getattr(op, attribute) if op.status == status else None
                if result is not None and result not in newest and len(newest) < self.max_results_per_shop:
                    newest.append(result)
            kept.extend(newest)
        for op in shop.operations:
            if any(r is not None and r not in kept for r in (op.result, op.partial)):
                self.expire(op)
        for result in self.files.files_of(shop.domain):
            if result not in kept and not result.pending:
                self.files.discard(result)

    def expire(self, op: BulkOperation) -> None:
        """The result URLs of `op` expire now (status EXPIRED; a download answers like an expired link)."""
        if op.status not in ("COMPLETED", "FAILED"):
            return
        op.transition("EXPIRED")
        op.url = op.partial_data_url = None
        for result in (op.result, op.partial):
            if result is not None:
                self.files.discard(result)

    async def close(self) -> None:
        self._closing = True
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._pool.shutdown(wait=True, cancel_futures=True)

