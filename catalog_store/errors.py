"""Storage errors. Each says whether retrying can help and what the user should do."""

from __future__ import annotations


class StoreError(Exception):
    """Base class for catalog store failures."""

    retryable: bool = False
    fix: str = "Check the gateway logs."

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        super().__init__(message)
        if fix is not None:
            self.fix = fix


class StoreUnavailable(StoreError):
    """The database could not be reached (network, server down, bad URI)."""

    retryable = True
    fix = "Check MONGODB_URI and that the MongoDB server is running and reachable."


class InvalidQuery(StoreError, ValueError):
    """A read was asked with invalid arguments (page size, cursor, filter). Also a ValueError."""

    fix = "Correct the arguments as the message says."


class UnknownCatalog(StoreError):
    """Items were written to a catalog that `ensure_catalog` never created (or that was deleted)."""

    fix = "Create the catalog with ensure_catalog() before writing items; a deleted catalog is gone."


class InvalidItem(StoreError, ValueError):
    """An item breaks a catalog rule (id, 5,000-character values, money, updated_at): nothing written."""

    fix = "Filter or correct the item before writing it (see catalog_store.items for the rules)."


class ConcurrentWriteConflict(StoreError):
    """Concurrent writers kept changing the same items; the batch could not be settled."""

    retryable = True
    fix = "Retry the write; item writes are idempotent."
