"""The root of every error the service raises on purpose, and the storage errors.

The root lives here, in the lowest layer, so that every package can derive from it without
importing upwards. Callers that only need "can a retry help, and what should the user do" catch
`CatalogGatewayError` and read `retryable` and `fix`; nothing is shared by duck typing.

    CatalogGatewayError                      catalog_store.errors
    ├── StoreError
    │   ├── StoreUnavailable                 (retryable)
    │   ├── InvalidQuery                     (also ValueError)
    │   ├── UnknownCatalog
    │   ├── InvalidItem                      (also ValueError)
    │   ├── ConcurrentWriteConflict          (retryable)
    │   └── SecretKeyError                   catalog_store.token_cipher
    ├── BulkError                            bulk.errors
    │   ├── ShopifyError
    │   │   ├── ShopifyNetworkError          (retryable)
    │   │   ├── ShopifyServerError           (retryable)
    │   │   ├── ShopifyThrottled             (retryable)
    │   │   ├── ShopifyAccessDenied
    │   │   ├── ShopifyRequestError
    │   │   │   └── ShopifyUserError
    │   │   ├── ShopNotFound
    │   │   ├── BulkOperationFailed
    │   │   └── DownloadError                (retryable)
    │   │       └── DownloadRefused
    │   ├── BulkOperationCanceled
    │   ├── LineError                        bulk.mapping.assemble (also ValueError)
    │   ├── WebhookError
    │   │   └── InvalidWebhookPayload
    │   └── SyncServiceError                 (each with the GraphQL `code`)
    │       ├── InvalidInput
    │       ├── NotFound
    │       ├── IdentifierChangeRequiresDisable
    │       └── SyncAlreadyRunning           (retryable)
    ├── SettingsError                        gateway.errors (also ValueError)
    └── ApiError                             gateway.errors (what a GraphQL client sees)
        ├── BadUserInput, NotFoundError, Unauthenticated, Forbidden
        └── RequestRefused                   (with the HTTP status)
            └── BodyTooLarge, BodyTimeout

Private control-flow exceptions (`_Bad`, `_Retry`, `_TooDeep`, the client's HTTP status carrier)
never leave their module and stay outside the tree.
"""

from __future__ import annotations


class CatalogGatewayError(Exception):
    """Base of the service's errors: `message` for people, `retryable` (may the same call succeed
    later?) and `fix` (what the user or operator should do; None when there is nothing to say)."""

    retryable: bool = False
    fix: str | None = "Check the gateway logs."

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if fix is not None:
            self.fix = fix


class StoreError(CatalogGatewayError):
    """Base class for catalog store failures."""

    fix: str = "Check the gateway logs."


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
