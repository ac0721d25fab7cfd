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


class InvalidQuery(StoreError):
    """A read was asked with invalid arguments (page size, cursor, filter)."""

    fix = "Correct the arguments as the message says."
