"""Outcomes shared by the full sync and the webhook path: the `SyncErrorCode` of a transport
error (the transport only says what happened), each code's fix, and what a failure does to the
sync's configuration and says in its notification."""

from __future__ import annotations

from typing import Final

from bulk.errors import NETWORK_UNREACHABLE, ShopifyError
from catalog_store.models import SyncConfig, SyncErrorCode, SyncStatus


def sync_error_code(exc: ShopifyError) -> SyncErrorCode:
    """ACCESS_DENIED when the token lacks scopes or was revoked (the merchant must act), else
    SERVER_ERROR (Shopify failed)."""
    return SyncErrorCode.ACCESS_DENIED if exc.access_denied else SyncErrorCode.SERVER_ERROR


# What the user should do about each failure: shown in the run, the notification and the email.
ERROR_FIXES: Final[dict[SyncErrorCode, str]] = {
    SyncErrorCode.SERVER_ERROR: "Shopify failed while we synced your products. Disable sync and re-sync the catalog.",
    SyncErrorCode.DUPLICATE_SKU: (
        "Several variants share a SKU. Make every SKU unique in Shopify, then disable sync and re-sync."
    ),
    SyncErrorCode.CATALOG_LIMIT_EXCEEDED: (
        "The catalog storage limit was reached. Raise the limit (CATALOG_STORAGE_LIMIT_BYTES) or free space "
        "by deleting other catalogs or items, then disable sync and re-sync."
    ),
    SyncErrorCode.ACCESS_DENIED: (
        "Shopify refused our access token (missing read_products/read_inventory scopes, or the app was "
        "uninstalled). Reinstall the app or fix its scopes, then re-sync."
    ),
}

NETWORK_FIX: Final = (
    "The gateway could not reach the shop over the network. Check that the shop domain is right "
    "(its my-store.myshopify.com name) and that this machine can resolve and reach it (DNS, proxy, "
    "firewall: try `curl https://<shop>/admin/api/`), then re-sync; there is no need to disable sync."
)


def error_fix(code: SyncErrorCode, message: str | None) -> str:
    """The fix shown with a failure: the code's, except that a Shopify we never reached gets the
    network fix (the code stays SERVER_ERROR, a fixed interface)."""
    if code is SyncErrorCode.SERVER_ERROR and message and NETWORK_UNREACHABLE in message:
        return NETWORK_FIX
    return ERROR_FIXES[code]


_TITLES: Final[dict[SyncErrorCode, str]] = {
    SyncErrorCode.SERVER_ERROR: "Shopify sync failed: server error",
    SyncErrorCode.DUPLICATE_SKU: "Shopify sync failed: duplicate SKUs",
    SyncErrorCode.CATALOG_LIMIT_EXCEEDED: "Shopify sync stopped: catalog limit exceeded",
    SyncErrorCode.ACCESS_DENIED: "Shopify sync failed: access denied",
}


def record_failure(config: SyncConfig, code: SyncErrorCode, message: str) -> None:
    """The sync's configuration after a failure. Over the storage limit the sync also becomes
    inactive (no further Shopify change is applied until the merchant acts), whether a full sync
    or a webhook went over it."""
    config.status = SyncStatus.ERROR
    config.error_code = code
    config.error_message = message
    if code is SyncErrorCode.CATALOG_LIMIT_EXCEEDED:
        config.active = False


def failure_notice(code: SyncErrorCode, message: str) -> tuple[str, str]:
    """The title and body of the notification (and email) of a failure, with its fix."""
    title = "Shopify sync failed: shop unreachable" if error_fix(code, message) is NETWORK_FIX else _TITLES[code]
    return title, f"{message}\nHow to fix: {error_fix(code, message)}"
