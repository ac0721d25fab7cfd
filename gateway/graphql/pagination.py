"""Relay cursors for catalog items: opaque base64 of the item id (keyset pagination in id order)."""

from __future__ import annotations

import base64
import binascii

from catalog_store.rules import valid_item_id
from catalog_store.store import MAX_PAGE_SIZE
from gateway.errors import BadUserInput

_PREFIX = "item:"


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def encode_cursor(item_id: str) -> str:
    """The cursor of the item with id `item_id` (URL-safe base64, as `base64.urlsafe_b64encode`
    writes it, in two C calls: a page encodes one per item)."""
    return binascii.b2a_base64((_PREFIX + item_id).encode("utf-8"), newline=False).translate(_URLSAFE).decode("ascii")


def decode_cursor(cursor: str) -> str:
    """The item id inside a cursor from `encode_cursor`. Raises BadUserInput for anything else."""
    invalid = BadUserInput(
        f"invalid cursor {cursor[:60]!r}",
        fix="Pass an `endCursor` or edge `cursor` returned by a previous page, unchanged.",
    )
    try:
        text = base64.urlsafe_b64decode(cursor.encode("ascii")).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        raise invalid from None
    if not text.startswith(_PREFIX) or not valid_item_id(text[len(_PREFIX) :]):
        raise invalid
    return text[len(_PREFIX) :]


def check_page_size(first: int, limit: int = MAX_PAGE_SIZE) -> int:
    """`first` when 0 ≤ first ≤ limit; BadUserInput naming the limit otherwise."""
    if first < 0 or first > limit:
        raise BadUserInput(
            f"`first` must be between 0 and {limit} (got {first})",
            fix=f"Ask for at most {limit} items per page and follow `pageInfo.endCursor` for more.",
        )
    return first
