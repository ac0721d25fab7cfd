"""Errors of the bulk/sync layer (their place in the tree: `catalog_store.errors`).

Transport errors say what happened (`access_denied`), not which run outcome it leads to: the
full sync maps them to the store's `SyncErrorCode`. `SyncServiceError.code` is the GraphQL
`extensions.code` the gateway reports.
"""

from __future__ import annotations

from catalog_store.errors import CatalogGatewayError


class BulkError(CatalogGatewayError):
    """Base class of this package's errors."""

    fix: str = "Check the gateway logs."


# -- Shopify Admin API -----------------------------------------------------------------------


class ShopifyError(BulkError):
    """A call to the Shopify Admin API failed.

    `status` is the HTTP status when there was one; `attempts` how many requests were sent for the
    call (retries included).
    """

    access_denied: bool = False  # the token lacks scopes or was revoked (else: Shopify failed)
    status: int | None = None
    attempts: int | None = None

    def __init__(self, message: str, *, fix: str | None = None, status: int | None = None,
                 attempts: int | None = None) -> None:
        super().__init__(message, fix=fix)
        self.status = status
        self.attempts = attempts


# In a failure's message: the gateway never reached Shopify (DNS, refused, timed out), so the fix is
# about the domain and the network, not about Shopify (bulk.outcomes.error_fix reads it).
NETWORK_UNREACHABLE = "could not be reached over the network"


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

    access_denied = True
    fix = "Reinstall the app or grant it the read_products and read_inventory scopes, then re-sync."


class ShopifyRequestError(ShopifyError):
    """Other 4xx or GraphQL errors in our document: a bug on our side; never retried."""

    fix = "Report this to the catalog-gateway maintainers with the gateway log."


class ShopifyUserError(ShopifyRequestError):
    """A mutation answered with `userErrors` (e.g. INVALID bulk query, webhook already registered)."""

    def __init__(self, message: str, *, user_errors: tuple[object, ...] = (), fix: str | None = None) -> None:
        super().__init__(message, fix=fix)
        self.user_errors = tuple(user_errors)

    @property
    def codes(self) -> list[str]:
        codes = (getattr(e, "code", None) for e in self.user_errors)
        return [code for code in codes if isinstance(code, str) and code]


class ShopNotFound(ShopifyError):
    """404 for the shop's endpoint: wrong shop domain or the shop was closed."""

    fix = "Check the shop domain (my-store.myshopify.com)."


class BulkOperationFailed(ShopifyError):
    """The bulk operation ended FAILED/EXPIRED and re-running did not help (or cannot: ACCESS_DENIED).

    A canceled operation raises BulkOperationCanceled instead."""

    def __init__(self, message: str, *, error_code: str | None = None, partial_data_url: str | None = None,
                 fix: str | None = None) -> None:
        super().__init__(message, fix=fix)
        self.error_code = error_code
        self.partial_data_url = partial_data_url
        if error_code == "ACCESS_DENIED":
            self.access_denied = True
            self.fix = ShopifyAccessDenied.fix


class BulkOperationCanceled(BulkError):
    """The bulk operation was canceled: by `BulkOperationRunner.cancel()` or found CANCELED.

    Not a failure of Shopify's: the run ends canceled and nothing more is fetched.
    """

    fix = "Start a new sync (re-sync) when you want the catalog refreshed."

    def __init__(self, message: str, *, operation_id: str | None = None, requested: bool = True,
                 fix: str | None = None) -> None:
        super().__init__(message, fix=fix)
        self.operation_id = operation_id
        self.requested = requested


class DownloadError(ShopifyError):
    """The JSONL result could not be downloaded completely (after retries)."""

    retryable = True
    fix = "The result download failed; re-sync the catalog."


class DownloadRefused(DownloadError):
    """The result URL answered a 4xx (expired after 7 days, or not ours): retrying the same URL
    cannot help; a new bulk operation can."""

    retryable = False
    fix = "The bulk result link was refused (it may have expired); re-sync the catalog."


# -- Webhooks ----------------------------------------------------------------------------------


class WebhookError(BulkError):
    """A Shopify webhook delivery that cannot be applied."""


class InvalidWebhookPayload(WebhookError):
    """A correctly signed webhook whose body is not what Shopify sends for its topic: nothing is applied.

    `reason` says what does not fit; `webhook_id` (X-Shopify-Webhook-Id) is set once the delivery is known.
    """

    fix = ("Shopify sent a payload this gateway cannot read; check the webhook API version "
           "(SHOPIFY_API_VERSION) and report it with the gateway log. Periodic reconciliation or a re-sync "
           "brings the change in.")

    def __init__(self, message: str, *, fix: str | None = None, webhook_id: str | None = None) -> None:
        super().__init__(message, fix=fix)
        self.reason = message
        self.webhook_id = webhook_id


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

