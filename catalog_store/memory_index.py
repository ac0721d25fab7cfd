"""Indexes of one in-memory catalog for the item filter and `search`, so a filtered page and its
count cost about what the matching items do, not a pass over the catalog.

- `status`, `vendor`, `product_type`: value -> ids; stock: the ids in stock and the others;
- price: price -> ids, with the distinct prices sorted (a range is a slice of them);
- `search`: the words (maximal runs of letters and digits) of each item's titles and SKU, folded
  to one character per case-insensitive class, -> ids; and each word's trigrams -> words.

The filter's rule stays `memory_catalog.matches` (the one the MongoDB query also applies): a
`search` of a single word (no space or punctuation) is answered by the index alone, since a field
contains the text, ignoring case, exactly when one of its folded words contains the folded text;
any other `search` narrows the candidates through its words and then tests each one.

All item ids are sets of the stored id strings (shared with the items). The index is built on a
catalog's first filtered read and then kept up to date by every write and delete.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import compress, islice
from operator import and_
from typing import Any

from catalog_store.filters import CheckedFilter
from catalog_store.items import CatalogItem

_EQUALITIES = ("status", "vendor", "product_type")
_WORD = re.compile(r"[^\W_]+")
_GRAM = 3


def _case_classes() -> tuple[Callable[[int], int], dict[int, tuple[int, ...]]]:
    """How `re.IGNORECASE` compares characters: the simple lowercase of each (`_sre`) and the few
    classes it extends (`re._casefix`). Private to CPython's `re`; `tests/catalog_store/test_memory_index.py`
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


def _grams(word: str) -> set[str]:
    return {word[i:i + _GRAM] for i in range(len(word) - _GRAM + 1)}


def _add(index: dict[Any, set[str]], key: object, item_id: str) -> None:
    held = index.get(key)
    if held is None:
        index[key] = {item_id}
    else:
        held.add(item_id)


def _discard(index: dict[Any, set[str]], key: object, item_id: str) -> bool:
    """Remove `item_id` under `key`; True when the key is now empty (and gone)."""
    held = index.get(key)
    if held is None:
        return False
    held.discard(item_id)
    if held:
        return False
    del index[key]
    return True


# Word postings hold one string while a key has one value (most SKU and product-number words: one
# item each), a set from the second on: a set per key would cost ~200 bytes for each of them.
_Postings = str | set[str]


def _add_one(index: dict[str, _Postings], key: str, value: str) -> None:
    """Add `value` under `key`; the caller guarantees it is not there yet."""
    held = index.get(key)
    if held is None:
        index[key] = value
    elif type(held) is str:
        index[key] = {held, value}
    else:
        held.add(value)  # type: ignore[union-attr]


def _discard_one(index: dict[str, _Postings], key: str, value: str) -> bool:
    """Remove `value` under `key`; True when the key is now empty (and gone)."""
    held = index.get(key)
    if held is None:
        return False
    if type(held) is str:
        if held != value:
            return False
        del index[key]
        return True
    held.discard(value)  # type: ignore[union-attr]
    if len(held) == 1:
        index[key] = next(iter(held))
    return False


def _members(held: _Postings | None) -> set[str] | tuple[str, ...]:
    return () if held is None else (held,) if type(held) is str else held  # type: ignore[return-value]


def _in_stock(item: CatalogItem) -> bool:
    quantity = item.inventory_quantity
    return quantity is not None and quantity > 0


class ItemIndex:
    """The filter indexes of one catalog's items (see module doc)."""

    def __init__(self, items: Iterable[CatalogItem] = ()) -> None:
        self.equal: dict[str, dict[str | None, set[str]]] = {name: {} for name in _EQUALITIES}
        self.stock: dict[bool, set[str]] = {True: set(), False: set()}
        self.prices: dict[float, set[str]] = {}
        self.price_keys: list[float] = []  # the distinct prices, ascending
        self.price_of: dict[str, float] = {}
        self.words: dict[str, _Postings] = {}
        self.vocabulary: dict[str, _Postings] = {}  # trigram -> words containing it
        for item in items:
            self.add(item)

    def add(self, item: CatalogItem) -> None:
        item_id = item.id
        equal = self.equal
        _add(equal["status"], item.status, item_id)
        _add(equal["vendor"], item.vendor, item_id)
        _add(equal["product_type"], item.product_type, item_id)
        self.stock[_in_stock(item)].add(item_id)
        price = float(item.price)
        self.price_of[item_id] = price
        if price not in self.prices:
            insort(self.price_keys, price)
        _add(self.prices, price, item_id)
        for word in self._item_words(item):
            if word not in self.words:
                for gram in _grams(word):
                    _add_one(self.vocabulary, gram, word)
            _add_one(self.words, word, item_id)

    def remove(self, item: CatalogItem) -> None:
        item_id = item.id
        for name in _EQUALITIES:
            _discard(self.equal[name], getattr(item, name), item_id)
        self.stock[_in_stock(item)].discard(item_id)
        price = self.price_of.pop(item_id)
        if _discard(self.prices, price, item_id):
            del self.price_keys[bisect_left(self.price_keys, price)]
        for word in self._item_words(item):
            if _discard_one(self.words, word, item_id):
                for gram in _grams(word):
                    _discard_one(self.vocabulary, gram, word)

    @staticmethod
    def _item_words(item: CatalogItem) -> set[str]:
        found = set(words(item.product_title))
        if item.variant_title is not None:
            found.update(words(item.variant_title))
        if item.sku is not None:
            found.update(words(item.sku))
        return found

    # -- reads -----------------------------------------------------------------------------------

    def select(self, f: CheckedFilter, all_ids: Callable[[], list[str]], test: Callable[[str], bool]) -> Selection:
        """The items matching `f` (not empty). `all_ids` gives every id, for a filter that no index
        narrows; `test(id)` applies the whole filter to one item, for the candidates an index could
        only narrow."""
        narrowed: list[set[str]] = []
        for name in _EQUALITIES:
            value = getattr(f, name)
            if value is not None:
                narrowed.append(self.equal[name].get(value, set()))
        if f.in_stock is not None:
            narrowed.append(self.stock[f.in_stock])
        exact = True
        if f.search is not None:
            found = self._search(f.search_text or "")
            if found is None:
                exact = False
            else:
                candidates, exact = found
                narrowed.append(candidates)
        price_range = f.price_min is not None or f.price_max is not None
        low = -float("inf") if f.price_min is None else f.price_min
        high = float("inf") if f.price_max is None else f.price_max
        price_of = self.price_of

        def in_range(item_id: str) -> bool:
            return low <= price_of[item_id] <= high

        if price_range:
            keys = self.price_keys[bisect_left(self.price_keys, low):bisect_right(self.price_keys, high)]
            prices = self.prices
            if not narrowed and exact:  # the price range alone: counted per price, paged by walking the ids
                return Selection(sum(len(prices[k]) for k in keys), None, in_range,
                                 lambda: set().union(*(prices[k] for k in keys)))
            smallest = min((len(s) for s in narrowed), default=0)
            size = 0
            for key in keys:  # stops as soon as the range holds more than the smallest set
                size += len(prices[key])
                if size >= smallest:
                    break
            if size < smallest:
                narrowed.append(set().union(*(prices[k] for k in keys)))
                price_range = False
        if not narrowed:
            result: set[str] = set(all_ids())
        else:
            narrowed.sort(key=len)
            result = narrowed[0].intersection(*narrowed[1:]) if len(narrowed) > 1 else narrowed[0]
        if price_range:
            result = self._priced(result, low, high)
        if not exact:
            result = {i for i in result if test(i)}
        return Selection(len(result), result, result.__contains__, lambda: result)

    def _priced(self, ids: set[str], low: float, high: float) -> set[str]:
        """The ids of `ids` priced within [low, high], compared without a Python call per item."""
        ordered = list(ids)
        prices = list(map(self.price_of.__getitem__, ordered))
        within = map(and_, map(low.__le__, prices), map(high.__ge__, prices))
        return set(compress(ordered, within))

    def _search(self, text: str) -> tuple[set[str], bool] | None:
        """The ids whose words contain each word of `text` (True: exactly the matching items, as
        for a single word), or None when `text` has no word to look up."""
        runs = words(text)
        if not runs:
            return None
        single = len(runs) == 1 and len(runs[0]) == len(text)
        found: set[str] | None = None
        for run in sorted(set(runs), key=len, reverse=True):
            containing = self._words_containing(run)
            held = self.words[containing[0]] if len(containing) == 1 else None
            ids = held if type(held) is set else set().union(*(_members(self.words[w]) for w in containing))
            found = ids if found is None else found & ids
            if not found:
                break
        assert found is not None
        return found, single

    def _words_containing(self, run: str) -> list[str]:
        if len(run) < _GRAM:
            return [w for w in self.words if run in w]
        grams = sorted(_grams(run), key=lambda g: len(_members(self.vocabulary.get(g))))
        return [w for w in _members(self.vocabulary.get(grams[0])) if run in w]


@dataclass(slots=True)
class Selection:
    """The items a filter selects: how many, their ids when already at hand, a membership test,
    and how to gather the ids when they are not."""

    count: int
    members: set[str] | None
    contains: Callable[[str], bool]
    gather: Callable[[], set[str]]


def page_of(selection: Selection, ids: list[str], after: str | None, size: int) -> tuple[list[str], bool]:
    """The first `size` selected ids after `after` in `ids` (all ids, ascending), and whether more
    follow. Walks `ids` when the selected items are dense, sorts them when they are few."""
    start = 0 if after is None else bisect_right(ids, after)
    density = selection.count / max(1, len(ids))
    if density and (size + 1) / density < 4 * selection.count:
        found = list(islice(filter(selection.contains, islice(ids, start, None)), size + 1))
    else:
        ordered = sorted(selection.members if selection.members is not None else selection.gather())
        first = 0 if after is None else bisect_right(ordered, after)
        found = ordered[first:first + size + 1]
    return found[:size], len(found) > size
