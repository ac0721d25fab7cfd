"""Shopify access tokens encrypted at rest (Fernet: AES-128-CBC with an HMAC-SHA256, from
`cryptography`). The first key encrypts; a second one is only read, so keys can be rotated while
every process keeps reading what any other wrote. A stored value without the marker is a plain
token from before encryption: it is read as it is and sealed on the next write."""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from catalog_store.errors import StoreError

MARKER = "fernet:"  # a stored token that starts with it is encrypted
MAX_KEYS = 2
KEY_HINT = ('generate one with: python -c "from cryptography.fernet import Fernet; '
            'print(Fernet.generate_key().decode())"')
ROTATION_HINT = ("during a rotation give both keys, comma-separated: the one that writes first "
                 "(GATEWAY_SECRET_KEY=NEW,OLD)")


class SecretKeyError(StoreError):
    """A stored access token cannot be decrypted with the configured key(s), or a key is malformed."""

    fix = (f"Set GATEWAY_SECRET_KEY to the key the access tokens were written with ({ROTATION_HINT}). "
           "A lost key cannot be recovered: enable the sync again with the shop's access token.")


def parse_keys(text: str) -> tuple[str, ...]:
    """The keys in GATEWAY_SECRET_KEY's form ("KEY" or "WRITER,READER"); raises ValueError saying what
    is wrong (never echoing a key)."""
    keys = tuple(part.strip() for part in text.split(",") if part.strip())
    if not keys:
        raise ValueError(f"GATEWAY_SECRET_KEY is empty: {KEY_HINT}")
    if len(keys) > MAX_KEYS:
        raise ValueError(f"GATEWAY_SECRET_KEY holds {len(keys)} keys: give one, or two {ROTATION_HINT}.")
    for position, key in enumerate(keys, 1):
        try:
            Fernet(key)
        except ValueError:
            raise ValueError(f"GATEWAY_SECRET_KEY's key #{position} is not a Fernet key (32 url-safe "
                             f"base64-encoded bytes): {KEY_HINT}") from None
    return keys


class TokenCipher:
    """Seals and opens access tokens with the configured keys (the first one writes)."""

    def __init__(self, keys: Sequence[str]) -> None:
        parsed = parse_keys(",".join(keys))
        self._writer = Fernet(parsed[0])
        self._readers = MultiFernet([Fernet(key) for key in parsed])

    def seal(self, token: str) -> str:
        return MARKER + self._writer.encrypt(token.encode()).decode("ascii")

    def open(self, stored: str) -> str:
        if not is_sealed(stored):
            return stored
        try:
            return self._readers.decrypt(stored[len(MARKER):].encode("ascii")).decode()
        except (InvalidToken, UnicodeError):
            raise SecretKeyError("a stored Shopify access token cannot be decrypted with GATEWAY_SECRET_KEY "
                                 "(a different key wrote it)") from None

    def is_current(self, stored: str) -> bool:
        """True when `stored` is sealed with the writing key (nothing to re-encrypt)."""
        if not is_sealed(stored):
            return False
        try:
            self._writer.decrypt(stored[len(MARKER):].encode("ascii"))
        except (InvalidToken, UnicodeError):
            return False
        return True


def is_sealed(stored: str) -> bool:
    return stored.startswith(MARKER)


def seal(token: str, cipher: TokenCipher | None) -> str:
    """What is stored for `token`: sealed, or as it is when the store has no key (tests, tools)."""
    return token if cipher is None else cipher.seal(token)


def open_token(stored: str, cipher: TokenCipher | None) -> str:
    """The token a stored value holds; a sealed one without a key is a SecretKeyError."""
    if cipher is not None:
        return cipher.open(stored)
    if is_sealed(stored):
        raise SecretKeyError("the stored Shopify access tokens are encrypted, and no GATEWAY_SECRET_KEY is set")
    return stored


def resealed(stored: str, cipher: TokenCipher | None) -> str | None:
    """The value to store instead of `stored` (plain text from before, or sealed with the reading
    key of a rotation), or None when it is as it should be. Raises SecretKeyError when no key opens it."""
    if cipher is None:
        open_token(stored, None)  # without a key a stored value stays as it is, if it is readable
        return None
    if cipher.is_current(stored):
        return None
    return cipher.seal(cipher.open(stored))
