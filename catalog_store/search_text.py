"""The rule of `search` in words and trigrams, which both stores' search indexes are built on. Pure code.

A `search` matches an item whose product title, variant title or SKU contains the text, ignoring case
as `re.IGNORECASE` does (one character class per character, `fold`). A field contains the text exactly
when the folded field contains the folded text, so:
- every word of the text (a maximal run of letters and digits, `words`) lies inside a word of the
  field, and every trigram of such a word is a trigram of the field's words (`item_grams`);
- a text that is one word (no space or punctuation) is contained exactly when some folded word of the
  field contains it.

The indexes use these as necessary conditions (the MongoDB store: the item's trigrams, `query_grams`;
the memory store: its words and their trigrams) and test the text itself wherever they only narrow.
A text with no word of three or more characters has no trigram: it is tested against every item.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from catalog_store.items import CatalogItem

_WORD = re.compile(r"[^\W_]+")
GRAM = 3


def _case_classes() -> tuple[Callable[[int], int], dict[int, tuple[int, ...]]]:
    """How `re.IGNORECASE` compares characters: the simple lowercase of each (`_sre`) and the few
    classes it extends (`re._casefix`). Private to CPython's `re`; `tests/catalog_store/test_search.py`
    checks the folding below against `re` itself, character by character."""
    import _sre  # type: ignore[import-not-found,unused-ignore]
    from re import _casefix  # type: ignore[attr-defined,unused-ignore]

    lower: Callable[[int], int] = _sre.unicode_tolower
    extra: dict[int, tuple[int, ...]] = _casefix._EXTRA_CASES
    return lower, extra


_LOWER, _EXTRA = _case_classes()


class _Folding(dict[int, str]):
    """`str.translate` table: each character -> the smallest character `re.IGNORECASE` treats as
    equal to it (filled as characters are met)."""

    def __missing__(self, code: int) -> str:
        low = _LOWER(code)
        folded = chr(min((low, *_EXTRA.get(low, ()))))
        self[code] = folded
        return folded


_FOLDING = _Folding()


def fold(text: str) -> str:
    """`text` with each character replaced by its case-insensitive class (same length)."""
    return text.translate(_FOLDING)


def words(text: str) -> list[str]:
    """The folded words of `text`."""
    return _WORD.findall(fold(text))


def grams(word: str) -> set[str]:
    """The trigrams of one folded word (none when it is shorter)."""
    return {word[i:i + GRAM] for i in range(len(word) - GRAM + 1)}


def item_words(item: CatalogItem) -> set[str]:
    """The folded words of the fields `search` looks in."""
    return field_words(item.product_title, item.variant_title, item.sku)


def field_words(*fields: str | None) -> set[str]:
    found: set[str] = set()
    for text in fields:
        if text is not None:
            found.update(words(text))
    return found


def item_grams(item: CatalogItem) -> list[str]:
    """The distinct trigrams of an item's search words, sorted (stored by the MongoDB store)."""
    return field_grams(item.product_title, item.variant_title, item.sku)


def field_grams(*fields: str | None) -> list[str]:
    found: set[str] = set()
    for word in field_words(*fields):
        found.update(grams(word))
    return sorted(found)


def query_grams(text: str) -> list[str]:
    """Trigrams every item matching `text` holds (`item_grams`): those of its words, the longest word's
    first (a server's planner may take its index bounds from the first; ties alphabetically, so the
    same text is always the same query). Empty: nothing narrows."""
    found: dict[str, None] = {}
    for word in sorted(set(words(text)), key=lambda w: (-len(w), w)):
        found.update(dict.fromkeys(sorted(grams(word))))
    return list(found)
