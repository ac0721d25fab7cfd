"""Cursor encoding and page-size checks."""

from __future__ import annotations

import base64

import pytest

from gateway.errors import ApiError
from gateway.graphql.pagination import check_page_size, decode_cursor, encode_cursor


@pytest.mark.parametrize("item_id", ["1", "SKU-123_a", "x" * 250, "40000000000000001"])
def test_round_trip(item_id: str) -> None:
    cursor = encode_cursor(item_id)
    assert item_id not in cursor  # opaque
    assert decode_cursor(cursor) == item_id


@pytest.mark.parametrize(
    "cursor",
    ["", "not base64!", "%%%", base64.urlsafe_b64encode(b"1").decode(),
     base64.urlsafe_b64encode(b"item:bad id").decode(), base64.urlsafe_b64encode(b"item:").decode(),
     base64.urlsafe_b64encode(b"\xff\xfe").decode(), "é"],
)
def test_invalid_cursors_are_bad_user_input(cursor: str) -> None:
    with pytest.raises(ApiError) as info:
        decode_cursor(cursor)
    assert info.value.code == "BAD_USER_INPUT"
    assert "invalid cursor" in info.value.message


def test_page_size_limit_is_named() -> None:
    assert check_page_size(0) == 0
    assert check_page_size(250) == 250
    for bad in (251, -1, 10_000):
        with pytest.raises(ApiError) as info:
            check_page_size(bad)
        assert info.value.code == "BAD_USER_INPUT"
        assert "250" in info.value.message
