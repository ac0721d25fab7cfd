"""Errors of the gateway: bad configuration, and the coded errors the GraphQL API reports.

`ApiError` is what a client sees: a message it can act on, `extensions.code` and `extensions.fix`.
`api_error_for` maps the domain errors of the lower layers (sync service, store, shop-domain
validation) to it; anything it does not recognise is masked as an unexpected error.
"""

from __future__ import annotations

import orjson

from bulk.errors import SyncServiceError
from catalog_store.errors import CatalogGatewayError, InvalidQuery, StoreUnavailable
from catalog_store.token_cipher import SecretKeyError


class SettingsError(CatalogGatewayError, ValueError):
    """The environment is misconfigured. `problems` lists every mistake, one sentence each."""

    fix = "Correct the environment variables named above, then start the gateway again."

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in self.problems))


class ApiError(CatalogGatewayError):
    """An error reported to GraphQL clients with `extensions.code` (and `fix` when known)."""

    def __init__(self, message: str, code: str, fix: str | None = None, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.fix = fix
        self.retryable = retryable

    @property
    def extensions(self) -> dict[str, object]:
        """Read by graphql-core when it wraps this exception into a GraphQLError."""
        extensions: dict[str, object] = {"code": self.code}
        if self.fix:
            extensions["fix"] = self.fix
        if self.retryable:
            extensions["retryable"] = True
        return extensions


class BadUserInput(ApiError):
    def __init__(self, message: str, fix: str = "Correct the input as the message says.") -> None:
        super().__init__(message, "BAD_USER_INPUT", fix)


class NotFoundError(ApiError):
    def __init__(self, message: str, fix: str | None = None) -> None:
        super().__init__(message, "NOT_FOUND", fix)


class Unauthenticated(ApiError):
    def __init__(self, message: str = "Missing or invalid bearer token.") -> None:
        super().__init__(
            message,
            "UNAUTHENTICATED",
            "Send the header 'Authorization: Bearer <token>' with GATEWAY_ADMIN_TOKEN or GATEWAY_READ_TOKEN "
            '(over WebSocket: connection_init payload {"Authorization": "Bearer <token>"}).',
        )


class Forbidden(ApiError):
    def __init__(self, message: str) -> None:
        super().__init__(message, "FORBIDDEN", "Use the admin token (GATEWAY_ADMIN_TOKEN) for mutations.")


class RequestRefused(ApiError):
    """A request refused at the HTTP edge, before GraphQL runs: `status` is its HTTP status. The
    body is GraphQL-shaped (`errors[0].extensions.code` and `fix`) on every route."""

    def __init__(self, message: str, code: str, fix: str, *, status: int, retryable: bool = False) -> None:
        super().__init__(message, code, fix, retryable=retryable)
        self.status = status

    def body(self) -> bytes:
        return orjson.dumps({"errors": [{"message": self.message, "extensions": self.extensions}]})


class BodyTooLarge(RequestRefused):
    def __init__(self, limit: int, setting: str) -> None:
        super().__init__(
            f"The request body is larger than {limit} bytes.",
            "PAYLOAD_TOO_LARGE",
            f"Send a smaller body: split the request (the limit is {setting}).",
            status=413,
        )


class BodyTimeout(RequestRefused):
    def __init__(self, timeout: float) -> None:
        super().__init__(
            f"The request body did not arrive within {timeout:g} seconds.",
            "REQUEST_TIMEOUT",
            "Send the whole body without pausing (the deadline is GATEWAY_BODY_TIMEOUT_SECONDS).",
            status=408,
            retryable=True,
        )


def api_error_for(exc: BaseException) -> ApiError | None:
    """The client-facing error for a known domain exception, or None (then it is masked)."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, SyncServiceError):
        return ApiError(str(exc), exc.code, exc.fix, retryable=exc.retryable)
    if isinstance(exc, InvalidQuery):
        return ApiError(str(exc), "BAD_USER_INPUT", exc.fix)
    if isinstance(exc, StoreUnavailable):
        return ApiError("The catalog database is unavailable.", "SERVICE_UNAVAILABLE", exc.fix, retryable=True)
    if isinstance(exc, SecretKeyError):  # an operator's mistake: say so, with the fix
        return ApiError(str(exc), "SERVICE_UNAVAILABLE", exc.fix)
    return None
