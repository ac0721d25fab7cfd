"""PyMongo's errors in the store's terms, for every method of the MongoDB store that talks to the server."""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from pymongo.errors import ConnectionFailure, PyMongoError

from catalog_store.errors import StoreError, StoreUnavailable

P = ParamSpec("P")
T = TypeVar("T")


def translated(method: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    """PyMongo errors become StoreUnavailable (unreachable, retryable) or StoreError."""

    @functools.wraps(method)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await method(*args, **kwargs)
        except ConnectionFailure as exc:
            raise StoreUnavailable(f"MongoDB is unreachable: {exc}") from exc
        except PyMongoError as exc:
            raise StoreError(f"MongoDB refused an operation: {exc}") from exc

    return wrapper
