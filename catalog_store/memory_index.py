"""Indexes of one in-memory catalog for the item filter and `search`, so a filtered page and its
count cost about what the matching items do, not a pass over the catalog item by item.

- status, vendor, product type, stock and price: columns (`catalog_store.memory_columns`);
- `search`: the folded words of each item's titles and SKU (`catalog_store.search_text`) -> ids;
  and each word's trigrams -> words.

The filter's rule stays `memory_catalog.matches` (the one the MongoDB query also applies): a
`search` of a single word is answered by the index alone (`search_text` says why); any other
`search` narrows the candidates through its words and then tests each one.

The index is built on a catalog's first filtered read and then kept up to date by every write and
delete.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import compress, islice

import numpy as np

from catalog_store.filters import CheckedFilter
from catalog_store.items import CatalogItem
from catalog_store.memory_columns import Columns, Mask
from catalog_store.search_text import GRAM, grams, item_words, words

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


class ItemIndex:
    """The filter indexes of one catalog's items (see module doc)."""

    def __init__(self, items: Iterable[CatalogItem] = ()) -> None:
        self.columns = Columns()
        self.words: dict[str, _Postings] = {}
        self.vocabulary: dict[str, _Postings] = {}  # trigram -> words containing it
        for item in items:
            self.add(item)

    def add(self, item: CatalogItem) -> None:
        self.columns.add(item)
        item_id = item.id
        for word in item_words(item):
            if word not in self.words:
                for gram in grams(word):
                    _add_one(self.vocabulary, gram, word)
            _add_one(self.words, word, item_id)

    def remove(self, item: CatalogItem) -> None:
        self.columns.remove(item)
        item_id = item.id
        for word in item_words(item):
            if _discard_one(self.words, word, item_id):
                for gram in grams(word):
                    _discard_one(self.vocabulary, gram, word)

    # -- reads -----------------------------------------------------------------------------------

    def select(self, f: CheckedFilter, all_ids: Callable[[], list[str]], test: Callable[[str], bool]) -> Selection:
        """The items matching `f` (not empty). `all_ids` gives every id, for a `search` no word
        narrows; `test(id)` applies the whole filter to one item, for the candidates the words
        could only narrow."""
        mask = self.columns.mask(f)
        if f.search is None:
            assert mask is not None
            return Selection(int(np.count_nonzero(mask)), None, mask)
        found = self._search(f.search_text or "")
        candidates, exact = (set(all_ids()), False) if found is None else found
        if mask is not None:
            ordered = list(candidates)
            slots = np.fromiter(map(self.columns.slot_of.__getitem__, ordered), dtype=np.intp, count=len(ordered))
            candidates = set(compress(ordered, mask[slots].tolist()))
        if not exact:
            candidates = {i for i in candidates if test(i)}
        return Selection(len(candidates), candidates, None)

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
        if len(run) < GRAM:
            return [w for w in self.words if run in w]
        rarest = min(grams(run), key=lambda g: len(_members(self.vocabulary.get(g))))
        return [w for w in _members(self.vocabulary.get(rarest)) if run in w]


@dataclass(slots=True)
class Selection:
    """The items a filter selects: how many, and either their ids or the mask of their slots."""

    count: int
    members: set[str] | None
    mask: Mask | None


def page_of(selection: Selection, ids: list[str], columns: Columns, after: str | None,
            size: int) -> tuple[list[str], bool]:
    """The first `size` selected ids after `after` in `ids` (all ids, ascending), and whether more
    follow. A mask is read in id order; ids are looked up in `ids` order when dense, sorted when few."""
    start = 0 if after is None else bisect_right(ids, after)
    if selection.mask is not None:
        in_order = selection.mask[columns.order(ids)[start:]]
        hits = np.flatnonzero(in_order)[:size + 1].tolist()
        found = [ids[start + hit] for hit in hits]
        return found[:size], len(found) > size
    members = selection.members
    assert members is not None
    density = selection.count / max(1, len(ids))
    if density and (size + 1) / density < 4 * selection.count:
        found = list(islice(filter(members.__contains__, islice(ids, start, None)), size + 1))
    else:
        ordered = sorted(members)
        first = 0 if after is None else bisect_right(ordered, after)
        found = ordered[first:first + size + 1]
    return found[:size], len(found) > size
