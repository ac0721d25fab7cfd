"""Errors of the bulk/sync layer. Each says whether a retry can help and what the user should do.

`SyncServiceError.code` is the GraphQL `extensions.code` the gateway reports.
"""

from __future__ import annotations

from catalog_store.models import SyncErrorCode


class BulkError(Exception):
    """Base class of this package's errors."""

    retryable: bool = False
    fix: str = "Check the gateway logs."

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        super().__init__(message)
        if fix is not None:
            self.fix = fix

    @property
    def message(self) -> str:
        return str(self)


# -- Shopify Admin API -----------------------------------------------------------------------


class ShopifyError(BulkError):
    """A call to the Shopify Admin API failed."""

    sync_error_code: SyncErrorCode = SyncErrorCode.SERVER_ERROR


class ShopifyNetworkError(ShopifyError):
    """Connection refused/reset, timeout: retried with backoff before being raised."""

    retryable = True
    fix = "Shopify could not be reached; the sync retries. If it persists, disable and re-sync."


class ShopifyServerError(ShopifyError):
    """HTTP 5xx from Shopify, after bounded retries."""

    retryable = True
    fix = "Shopify failed; disable sync and re-sync the catalog."


class ShopifyThrottled(ShopifyError):
    """Still THROTTLED after the bounded number of waits."""

    retryable = True
    fix = "The shop's API rate limit is exhausted by other apps; retry later."


class ShopifyAccessDenied(ShopifyError):
    """401/403, or ACCESS_DENIED: the token lacks scopes or was revoked."""

    sync_error_code = SyncErrorCode.ACCESS_DENIED
    fix = "Reinstall the app or grant it the read_products and read_inventory scopes, then re-sync."


class ShopifyRequestError(ShopifyError):
    """Other 4xx or GraphQL errors in our document: a bug on our side; never retried."""

    fix = "Report this to the catalog-gateway maintainers with the gateway log."


class ShopNotFound(ShopifyError):
    """404 for the shop's endpoint: wrong shop domain or the shop was closed."""

    fix = "Check the shop domain (my-store.myshopify.com)."


class BulkOperationFailed(ShopifyError):
    """The bulk operation ended FAILED/CANCELED/EXPIRED and could not be recovered by re-running."""

    def __init__(self, message: str, *, error_code: str | None = None, partial_data_url: str | None = None,
                 fix: str | None = None) -> None:
        super().__init__(message, fix=fix)
        self.error_code = error_code
        self.partial_data_url = partial_data_url
        if error_code == "ACCESS_DENIED":
            self.sync_error_code = SyncErrorCode.ACCESS_DENIED
            self.fix = ShopifyAccessDenied.fix


class DownloadError(ShopifyError):
    """The JSONL result could not be downloaded completely (after retries)."""

    retryable = True
    fix = "The result download failed; re-sync the catalog."


# -- Sync service (reported through GraphQL with extensions.code) ------------------------------


class SyncServiceError(BulkError):
    code: str = "INTERNAL_SERVER_ERROR"


class InvalidInput(SyncServiceError):
    code = "BAD_USER_INPUT"
    fix = "Correct the input as the message says."


class NotFound(SyncServiceError):
    code = "NOT_FOUND"
    fix = "Enable Shopify sync for this shop first (enableShopifySync)."


class IdentifierChangeRequiresDisable(SyncServiceError):
    code = "IDENTIFIER_CHANGE_REQUIRES_DISABLE"
    fix = "Disable sync (this deletes the catalog), then enable it again with the new identifier."


class SyncAlreadyRunning(SyncServiceError):
    code = "SYNC_ALREADY_RUNNING"
    retryable = True
    fix = "Wait for the running sync to finish, or cancel it first (cancelShopifySync)."


class SyncInactive(SyncServiceError):
    code = "SYNC_INACTIVE"
    fix = "The catalog exceeded its storage limit: raise the limit or free space, then disable and re-sync."
