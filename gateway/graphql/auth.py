"""Bearer tokens and roles: the admin token may do everything, the read token queries and subscribes."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    READ = "read"


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8")).digest()


def bearer_token(authorization: str | None) -> str | None:
    """`Bearer <token>` → token (scheme case-insensitive); None for anything else."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


class Authenticator:
    """Maps an Authorization value to a role. Comparisons are constant-time (on SHA-256 digests, so
    neither the content nor the length of a token leaks through timing)."""

    def __init__(self, admin_token: str | None, read_token: str | None = None, *, enabled: bool = True) -> None:
        if enabled and not admin_token:
            raise ValueError("an admin token is required when authentication is enabled")
        self.enabled = enabled
        self._admin = _digest(admin_token) if admin_token else None
        self._read = _digest(read_token) if read_token else None

    def role_for(self, authorization: str | None) -> Role | None:
        """The role granted by an `Authorization` header value, or None (unauthenticated)."""
        if not self.enabled:
            return Role.ADMIN
        token = bearer_token(authorization)
        if token is None:
            return None
        presented = _digest(token)
        # Both comparisons always run, so timing does not tell which token matched.
        is_admin = self._admin is not None and hmac.compare_digest(presented, self._admin)
        is_read = self._read is not None and hmac.compare_digest(presented, self._read)
        if is_admin:
            return Role.ADMIN
        if is_read:
            return Role.READ
        return None

    def role_for_connection_params(self, params: object) -> Role | None:
        """Role from a graphql-transport-ws `connection_init` payload `{"Authorization": "Bearer …"}`."""
        if not self.enabled:
            return Role.ADMIN
        if not isinstance(params, Mapping):
            return None
        value = params.get("Authorization", params.get("authorization"))
        return self.role_for(value) if isinstance(value, str) else None
