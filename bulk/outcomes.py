"""How a failure becomes a run outcome: the store's `SyncErrorCode` for an error of the Shopify
transport. The transport only says what happened; this is where it gets a user-facing code."""

from __future__ import annotations

from bulk.errors import ShopifyError
from catalog_store.models import SyncErrorCode


def sync_error_code(exc: ShopifyError) -> SyncErrorCode:
    """ACCESS_DENIED when the token lacks scopes or was revoked (the merchant must act), else
    SERVER_ERROR (Shopify failed)."""
    return SyncErrorCode.ACCESS_DENIED if exc.access_denied else SyncErrorCode.SERVER_ERROR
