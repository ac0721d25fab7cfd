"""Search trigrams for items stored before the store wrote them: `_grams` (see
`catalog_store.mongo.indexes`) is set on every item write; a catalog whose items may lack it (written
by a version without the search index) has them added once, at start-up, before `search` reads through
the index. A catalog is marked done (`search_grams` on its `catalogs` document, set at creation for
new ones), so later start-ups read only the `catalogs` collection."""

from __future__ import annotations

import logging
from typing import Any

from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from catalog_store.search_text import field_grams

log = logging.getLogger(__name__)

Document = dict[str, Any]

BATCH = 1000
_FIELDS = {"product_title": 1, "variant_title": 1, "sku": 1}


def _grams_of(doc: Document) -> list[str]:
    return field_grams(doc.get("product_title"), doc.get("variant_title"), doc.get("sku"))


async def add_missing_grams(db: AsyncDatabase[Document]) -> int:
    """Give every item of the catalogs not yet marked its `_grams`; the number of items changed.
    Safe to run in several processes at once: each update sets the same value, only where it is missing."""
    changed = 0
    catalogs = db["catalogs"]
    items = db["items"]
    for catalog in await catalogs.find({"search_grams": {"$ne": True}}, {"_id": 1}).to_list():
        name = catalog["_id"]
        missing = {"_catalog": name, "_grams": {"$exists": False}}
        done = 0
        while True:
            docs = await items.find(missing, _FIELDS, limit=BATCH, hint="catalog_search").to_list()
            if not docs:
                break
            await items.bulk_write([UpdateOne({"_id": doc["_id"], "_grams": {"$exists": False}},
                                              {"$set": {"_grams": _grams_of(doc)}}) for doc in docs], ordered=False)
            done += len(docs)
        if done:
            log.info("catalog %s: search trigrams added to %d items stored before the search index", name, done)
        await catalogs.update_one({"_id": name}, {"$set": {"search_grams": True}})
        changed += done
    return changed
