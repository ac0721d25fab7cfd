"""Bearer tokens → roles."""

from __future__ import annotations

import pytest

from gateway.graphql.auth import Authenticator, Role, bearer_token

ADMIN = "admin-token-0123456789"
READ = "read-token-0123456789ab"


@pytest.mark.parametrize(
    ("header", "token"),
    [("Bearer abc", "abc"), ("bearer  abc ", "abc"), ("BEARER abc", "abc"), ("Basic abc", None),
     ("Bearer", None), ("Bearer ", None), ("", None), (None, None), ("abc", None)],
)
def test_bearer_token_parsing(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


def test_roles() -> None:
    auth = Authenticator(ADMIN, READ)
    assert auth.role_for(f"Bearer {ADMIN}") is Role.ADMIN
    assert auth.role_for(f"Bearer {READ}") is Role.READ
    assert auth.role_for(f"Bearer {ADMIN}x") is None
    assert auth.role_for(f"Bearer {ADMIN[:-1]}") is None
    assert auth.role_for(ADMIN) is None  # no scheme
    assert auth.role_for(None) is None


def test_without_read_token_only_admin_is_accepted() -> None:
    auth = Authenticator(ADMIN)
    assert auth.role_for(f"Bearer {ADMIN}") is Role.ADMIN
    assert auth.role_for("Bearer ") is None
    assert auth.role_for(f"Bearer {READ}") is None


def test_connection_params() -> None:
    auth = Authenticator(ADMIN, READ)
    assert auth.role_for_connection_params({"Authorization": f"Bearer {READ}"}) is Role.READ
    assert auth.role_for_connection_params({"authorization": f"Bearer {ADMIN}"}) is Role.ADMIN
    assert auth.role_for_connection_params({"Authorization": "Bearer wrong"}) is None
    assert auth.role_for_connection_params({}) is None
    assert auth.role_for_connection_params(None) is None
    assert auth.role_for_connection_params({"Authorization": 42}) is None


def test_no_auth_mode_grants_admin() -> None:
    auth = Authenticator(None, enabled=False)
    assert auth.role_for(None) is Role.ADMIN
    assert auth.role_for_connection_params(None) is Role.ADMIN


def test_auth_needs_an_admin_token() -> None:
    with pytest.raises(ValueError, match="admin token is required"):
        Authenticator(None)
