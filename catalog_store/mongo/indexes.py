"""The `items` collection's indexes and the filter queries they serve: what a `CatalogItemFilter`
becomes in MongoDB, and which index each filtered read must go through
(tests/catalog_store/test_indexes.py checks the query plans).

`search` reads through the trigrams of each item's search words (`_grams`, written with the item:
`catalog_store.search_text`): the text's trigrams narrow the catalog through `catalog_search`, in page
order, and the case-insensitive pattern decides. A text with no word of three or more characters has
no trigram: it walks the catalog's id index and tests each item."""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, IndexModel

from catalog_store.filters import SEARCH_FIELDS, CheckedFilter
from catalog_store.search_text import query_grams

Document = dict[str, Any]

# Item reads leave out what only the search index needs.
ITEM_FIELDS: Document = {"_grams": 0}


INDEXES: dict[str, list[IndexModel]] = {
    "items": [
        # `_id` is "<catalog>/<variant id>": unique per variant. The item id is unique per catalog and
        # gives the default page order (keyset on `id`). Each index costs every write of an item, so
        # there is none for what only a completed sync reads once (`sweep` walks the catalog's ids).
        IndexModel([("_catalog", ASCENDING), ("id", ASCENDING)], unique=True, name="catalog_item_id"),
        IndexModel([("_catalog", ASCENDING), ("shopify_product_id", ASCENDING)], name="catalog_product"),
        IndexModel([("_catalog", ASCENDING), ("_inventory_item_id", ASCENDING)], name="catalog_inventory_item"),
        # CatalogItemFilter: equality filters keep the page order (`id`) in the index; ranges do not.
        IndexModel([("_catalog", ASCENDING), ("status", ASCENDING), ("id", ASCENDING)], name="catalog_status"),
        IndexModel([("_catalog", ASCENDING), ("vendor", ASCENDING), ("id", ASCENDING)], name="catalog_vendor"),
        IndexModel([("_catalog", ASCENDING), ("product_type", ASCENDING), ("id", ASCENDING)],
                   name="catalog_product_type"),
        IndexModel([("_catalog", ASCENDING), ("price", ASCENDING)], name="catalog_price"),
        IndexModel([("_catalog", ASCENDING), ("inventory_quantity", ASCENDING)], name="catalog_inventory"),
        # `search`: one key per trigram of the item's search words, then `id`, so the items holding
        # one trigram come in page order.
        IndexModel([("_catalog", ASCENDING), ("_grams", ASCENDING), ("id", ASCENDING)], name="catalog_search"),
    ],
    "tombstones": [
        IndexModel([("_catalog", ASCENDING), ("product_id", ASCENDING)], unique=True, name="catalog_product"),
    ],
    "runs": [IndexModel([("shop_domain", ASCENDING), ("started_at", ASCENDING)], name="shop_started")],
    "notifications": [IndexModel([("created_at", ASCENDING)], name="created")],
    # The webhook inbox (catalog_store.mongo.inbox): claims walk a lane's pending entries oldest first;
    # backlog, oldest entry and dropping a shop read a shop's pending ones; done entries (kept for
    # dedupe, without their body) expire; pending ones have no `expires_at`, so they never do.
    "inbox": [
        IndexModel([("state", ASCENDING), ("lane", ASCENDING), ("received_at", ASCENDING)], name="lane_order"),
        IndexModel([("shop", ASCENDING), ("state", ASCENDING), ("received_at", ASCENDING)], name="shop_pending"),
        IndexModel([("expires_at", ASCENDING)], name="dedupe_expiry", expireAfterSeconds=0),
        IndexModel([("tally", ASCENDING)], name="tally"),  # a done call's entries, counted once
        IndexModel([("shop", ASCENDING), ("counted", ASCENDING), ("done_at", ASCENDING)], name="shop_uncounted"),
    ],
}


def index_for(f: CheckedFilter, *, paged: bool = False) -> str | None:
    """The `items` index a filtered page and its count must read through, or None where the planner's
    own choice is that index. Named only for what some servers' planners would answer with a collection
    scan (more predicates than one index covers, a pattern, an `$or`), since a hint can also cost them
    more than their own plan. An equality filter's index keeps the page order; a price or stock range
    narrows the count; otherwise the id index gives the order and the catalog's bounds. A later page
    (`paged`: one more predicate, on the id) is always named."""
    equalities = [index for name, index in (("product_type", "catalog_product_type"), ("vendor", "catalog_vendor"),
                                            ("status", "catalog_status")) if getattr(f, name) is not None]
    price = f.price_min is not None or f.price_max is not None
    conditions = len(equalities) + price + (f.in_stock is not None) + (f.search is not None)
    if not paged and (conditions == 0 or (conditions == 1 and f.search is None and f.in_stock is not False)):
        return None
    if equalities:
        return equalities[0]
    if f.search_text is not None and query_grams(f.search_text):
        return "catalog_search"
    if price:
        return "catalog_price"
    if f.in_stock is True:
        return "catalog_inventory"
    return "catalog_item_id"


def filter_query(catalog: str, f: CheckedFilter) -> Document:
    """The `items` query of a checked filter: the rules `memory_catalog.matches` applies in memory."""
    query: Document = {"_catalog": catalog}
    clauses: list[Document] = []
    for name in ("status", "vendor", "product_type"):
        value = getattr(f, name)
        if value is not None:
            query[name] = value
    if f.in_stock is True:
        query["inventory_quantity"] = {"$gt": 0}
    elif f.in_stock is False:
        clauses.append({"$or": [{"inventory_quantity": {"$lte": 0}}, {"inventory_quantity": None}]})
    price: Document = {}
    if f.price_min is not None:
        price["$gte"] = f.price_min
    if f.price_max is not None:
        price["$lte"] = f.price_max
    if price:
        query["price"] = price
    if f.search is not None:
        grams = query_grams(f.search_text or "")
        if grams:
            query["_grams"] = {"$all": grams}
        pattern = f.search.pattern
        clauses.append({"$or": [{name: {"$regex": pattern, "$options": "i"}} for name in SEARCH_FIELDS]})
    if clauses:
        query["$and"] = clauses
    return query
