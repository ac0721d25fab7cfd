"""Sync configurations on MongoDB with their access tokens sealed (catalog_store.token_cipher):
what is written, what is read back, and the re-encryption of tokens stored in plain text or under
a rotation's older key."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from catalog_store.documents import Document
from catalog_store.token_cipher import TokenCipher, open_token, resealed, seal

TOKEN = "access_token"


def sealed_fields(fields: Document, cipher: TokenCipher | None) -> Document:
    """`fields` (a whole document or a `$set`) as stored: the token, when present, sealed."""
    if TOKEN not in fields:
        return fields
    return {**fields, TOKEN: seal(fields[TOKEN], cipher)}


def opened(doc: Document, cipher: TokenCipher | None) -> Document:
    """A stored document with its token readable (SecretKeyError when the key cannot open it)."""
    return {**doc, TOKEN: open_token(doc[TOKEN], cipher)}


async def reseal(syncs: AsyncCollection[Any], doc: Document, cipher: TokenCipher | None) -> bool:
    """Re-encrypt the token of `doc` (as read) with the writing key when it is plain text or sealed
    with an older key. Conditional on the stored value: a token saved meanwhile is left alone."""
    replacement = resealed(doc[TOKEN], cipher)
    if replacement is None:
        return False
    result = await syncs.update_one({"_id": doc["_id"], TOKEN: doc[TOKEN]}, {"$set": {TOKEN: replacement}})
    return result.modified_count == 1


async def reseal_all(syncs: AsyncCollection[Any], cipher: TokenCipher | None) -> int:
    """Every stored token under the writing key (run at start-up: after a key rotation or the
    upgrade to encryption nothing stays readable only with the old key, or in plain text)."""
    count = 0
    async for doc in syncs.find({}, {TOKEN: 1}):
        count += await reseal(syncs, doc, cipher)
    return count
