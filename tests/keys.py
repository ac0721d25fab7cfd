"""Fixed GATEWAY_SECRET_KEY values for the tests (Fernet keys; never used outside the tests)."""

from __future__ import annotations

from catalog_store.token_cipher import TokenCipher

TEST_SECRET_KEY = "zg-N8rNJ9h4YKmaU5RmBAYr8XLLNJP62t4iw_Gue3H4="
OTHER_SECRET_KEY = "M3CIR7qDgEJJrTinBd0h12udKY3AKadq1q6U0bM1qwA="
TEST_CIPHER = TokenCipher([TEST_SECRET_KEY])
