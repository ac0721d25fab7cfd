"""Bulk operations as the Admin API speaks of them: statuses, error codes, the polled state, the
answers of bulkOperationRunQuery and bulkOperationCancel, and how long a result URL lives. Values
only; the full sync's state machine (`bulk.full_sync.operation`) decides what to do with them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

RESULT_URL_LIFETIME = timedelta(days=7)
"""Shopify keeps a completed operation's result file this long after `completedAt`."""
RESULT_URL_MARGIN = timedelta(hours=6)
"""Treat a URL as expired this long before Shopify does, so a download started now can finish."""


class BulkOperationStatus(StrEnum):
    CREATED = "CREATED"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELING = "CANCELING"
    CANCELED = "CANCELED"
    EXPIRED = "EXPIRED"


class BulkOperationErrorCode(StrEnum):
    ACCESS_DENIED = "ACCESS_DENIED"
    INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"
    TIMEOUT = "TIMEOUT"


class BulkUserErrorCode(StrEnum):
    OPERATION_IN_PROGRESS = "OPERATION_IN_PROGRESS"
    INVALID = "INVALID"
    LIMIT_REACHED = "LIMIT_REACHED"


FINISHED_STATUSES = frozenset({BulkOperationStatus.COMPLETED, BulkOperationStatus.FAILED,
                               BulkOperationStatus.CANCELED, BulkOperationStatus.EXPIRED})


# -- values --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BulkOperationState:
    """One observation of a bulk operation (the `node(id:)` fields, parsed)."""

    id: str
    status: str
    error_code: str | None = None
    object_count: int = 0
    root_object_count: int = 0
    file_size: int | None = None
    url: str | None = None
    partial_data_url: str | None = None
    created_at: datetime | None = None
    completed_at: datetime | None = None

    @classmethod
    def from_node(cls, node: Mapping[str, Any]) -> BulkOperationState:
        """Parse a `BulkOperation` node; UnsignedInt64 strings become ints. Raises ValueError."""
        try:
            operation_id = node["id"]
            status = node["status"]
        except KeyError as exc:
            raise ValueError(f"BulkOperation without {exc.args[0]!r}") from None
        if not isinstance(operation_id, str) or not isinstance(status, str):
            raise ValueError("BulkOperation id and status must be strings")
        return cls(
            id=operation_id,
            status=status,
            error_code=node.get("errorCode"),
            object_count=_uint64(node.get("objectCount"), "objectCount") or 0,
            root_object_count=_uint64(node.get("rootObjectCount"), "rootObjectCount") or 0,
            file_size=_uint64(node.get("fileSize"), "fileSize"),
            url=node.get("url"),
            partial_data_url=node.get("partialDataUrl"),
            created_at=parse_datetime(node.get("createdAt")),
            completed_at=parse_datetime(node.get("completedAt")),
        )

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATUSES


@dataclass(frozen=True, slots=True)
class UserError:
    """One entry of a mutation's `userErrors`."""

    message: str
    field: tuple[str, ...] | None = None
    code: str | None = None

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> UserError:
        path = raw.get("field")
        return cls(message=str(raw.get("message") or ""), field=tuple(path) if path else None,
                   code=raw.get("code"))


@dataclass(frozen=True, slots=True)
class BulkRunStarted:
    """`bulkOperationRunQuery` created an operation."""

    operation_id: str
    status: str


@dataclass(frozen=True, slots=True)
class BulkRunRejected:
    """`bulkOperationRunQuery` answered with userErrors instead of an operation."""

    user_errors: tuple[UserError, ...]

    @property
    def codes(self) -> set[str]:
        return {e.code for e in self.user_errors if e.code}

    @property
    def message(self) -> str:
        return "; ".join(e.message for e in self.user_errors) or "bulk query rejected"


@dataclass(frozen=True, slots=True)
class BulkCancelResult:
    """`bulkOperationCancel`: the operation's status afterwards, or why it could not be canceled."""

    status: str | None
    user_errors: tuple[UserError, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.user_errors


@dataclass(frozen=True, slots=True)
class BulkResult:
    """A completed operation: `url` is None when the query matched nothing."""

    operation_id: str
    url: str | None
    object_count: int
    file_size: int | None
    root_object_count: int = 0
    completed_at: datetime | None = None
    attempts: int = 1


def parse_datetime(value: str | None) -> datetime | None:
    """Shopify DateTime (ISO 8601, `Z` suffix) → aware datetime."""
    if value is None:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _uint64(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an UnsignedInt64, got {value!r}")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an UnsignedInt64, got {value!r}") from None
    if number < 0:
        raise ValueError(f"{name} must be an UnsignedInt64, got {value!r}")
    return number


def result_url_expires_at(completed_at: datetime) -> datetime:
    return completed_at + RESULT_URL_LIFETIME


def result_url_usable(result: BulkOperationState | BulkResult, *, now: datetime | None = None,
                      margin: timedelta = RESULT_URL_MARGIN) -> bool:
    """Whether a completed operation's result URL can still be downloaded (7 days minus `margin`)."""
    if result.url is None or result.completed_at is None:
        return False
    if isinstance(result, BulkOperationState) and result.status != BulkOperationStatus.COMPLETED:
        return False
    now = now or datetime.now(UTC)
    return now < result_url_expires_at(result.completed_at) - margin
