"""Shopify access tokens at rest: what MongoDB holds (read with PyMongo directly), a key rotation with
two keys, a wrong or missing key, and tokens stored in plain text before encryption."""

from __future__ import annotations

from typing import Any

import pytest
from pymongo import AsyncMongoClient

from catalog_store.documents import sync_to_document
from catalog_store.items import Identifier
from catalog_store.models import SyncConfig, SyncStatus
from catalog_store.token_cipher import MARKER, SecretKeyError, TokenCipher
from tests.conftest import MongoStoreFactory
from tests.keys import OTHER_SECRET_KEY, TEST_SECRET_KEY

SHOP = "cipher-shop.myshopify.com"
TOKEN = "shpat_canary_5f0c1d2e3a4b"
NEW, OLD = TEST_SECRET_KEY, OTHER_SECRET_KEY


def config(token: str = TOKEN) -> SyncConfig:
    return SyncConfig(SHOP, "shopify_cipher-shop", Identifier.SHOPIFY_VARIANT_ID, token)


async def raw_token(mongodb_uri: str, database: str) -> str:
    """The stored value, read past the store."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_uri)
    try:
        doc = await client[database]["syncs"].find_one({"_id": SHOP})
        assert doc is not None
        assert TOKEN not in repr(doc)
        return str(doc["access_token"])
    finally:
        await client.close()


async def test_mongodb_holds_no_token_and_the_store_gives_it_back(
        mongo_store_factory: MongoStoreFactory, mongodb_uri: str) -> None:
    store = await mongo_store_factory(cipher=TokenCipher([NEW]))
    await store.save_sync(config())
    stored = await raw_token(mongodb_uri, store.database.name)
    assert stored.startswith(MARKER)
    got = await store.get_sync(SHOP)
    assert got is not None and got.access_token == TOKEN
    assert [c.access_token for c in await store.list_syncs()] == [TOKEN]
    # An update that changes the token seals the new one; others leave the stored value alone.
    assert await store.update_sync(SHOP, lambda c: setattr(c, "status", SyncStatus.SYNCED))
    assert await raw_token(mongodb_uri, store.database.name) == stored
    assert await store.update_sync(SHOP, lambda c: setattr(c, "access_token", "shpat_rotated_by_shop"))
    assert (await raw_token(mongodb_uri, store.database.name)).startswith(MARKER)
    again = await store.get_sync(SHOP)
    assert again is not None and (again.access_token, again.status) == ("shpat_rotated_by_shop", SyncStatus.SYNCED)


async def test_a_rotation_reads_with_both_keys_and_reseals_with_the_new_one(
        mongo_store_factory: MongoStoreFactory, mongodb_uri: str) -> None:
    old = await mongo_store_factory(cipher=TokenCipher([OLD]))
    await old.save_sync(config())
    database = old.database.name
    written_by_old = await raw_token(mongodb_uri, database)
    # Step 1: every process reads the new key too (the old one still writes).
    reading_both = await mongo_store_factory(database, cipher=TokenCipher([OLD, NEW]))
    assert (await reading_both.get_sync(SHOP)).access_token == TOKEN  # type: ignore[union-attr]
    assert await reading_both.reseal_tokens() == 0  # sealed with the key that writes: nothing to do
    # Step 2: the new key writes; at start-up each process reseals what the old key wrote.
    rotated = await mongo_store_factory(database, cipher=TokenCipher([NEW, OLD]))
    assert (await rotated.get_sync(SHOP)).access_token == TOKEN  # type: ignore[union-attr]
    assert await rotated.reseal_tokens() == 1
    assert await rotated.reseal_tokens() == 0
    assert await raw_token(mongodb_uri, database) != written_by_old
    # Step 3: the old key is dropped; it can no longer read what is stored.
    only_new = await mongo_store_factory(database, cipher=TokenCipher([NEW]))
    assert (await only_new.get_sync(SHOP)).access_token == TOKEN  # type: ignore[union-attr]
    with pytest.raises(SecretKeyError):
        await old.get_sync(SHOP)


async def test_a_wrong_or_missing_key_is_a_clear_error_without_the_token(
        mongo_store_factory: MongoStoreFactory) -> None:
    store = await mongo_store_factory(cipher=TokenCipher([NEW]))
    await store.save_sync(config())
    database = store.database.name
    wrong = await mongo_store_factory(database, cipher=TokenCipher([OLD]))
    none = await mongo_store_factory(database)
    for reader, said in ((wrong, "cannot be decrypted with GATEWAY_SECRET_KEY"), (none, "no GATEWAY_SECRET_KEY")):
        for read in (reader.get_sync(SHOP), reader.list_syncs(), reader.reseal_tokens()):
            with pytest.raises(SecretKeyError) as raised:
                await read
            assert said in raised.value.message and "GATEWAY_SECRET_KEY" in (raised.value.fix or "")
            assert TOKEN not in str(raised.value) and raised.value.__cause__ is None
            assert not raised.value.retryable
    with pytest.raises(SecretKeyError):
        await wrong.update_sync(SHOP, lambda c: setattr(c, "status", SyncStatus.SYNCED))
    assert (await store.get_sync(SHOP)).status is SyncStatus.IN_PROGRESS  # type: ignore[union-attr]


async def test_a_plain_token_from_before_is_read_and_sealed_on_the_next_write(
        mongo_store_factory: MongoStoreFactory, mongodb_uri: str) -> None:
    store = await mongo_store_factory(cipher=TokenCipher([NEW]))
    await store.database["syncs"].insert_one(sync_to_document(config()))  # as an older version stored it
    got = await store.get_sync(SHOP)
    assert got is not None and got.access_token == TOKEN
    assert await store.update_sync(SHOP, lambda c: setattr(c, "status", SyncStatus.SYNCED))
    assert (await raw_token(mongodb_uri, store.database.name)).startswith(MARKER)
    got = await store.get_sync(SHOP)
    assert got is not None and (got.access_token, got.status) == (TOKEN, SyncStatus.SYNCED)


async def test_reseal_at_start_up_seals_plain_tokens(mongo_store_factory: MongoStoreFactory, mongodb_uri: str) -> None:
    store = await mongo_store_factory(cipher=TokenCipher([NEW]))
    await store.database["syncs"].insert_one(sync_to_document(config()))
    assert await store.reseal_tokens() == 1
    assert (await raw_token(mongodb_uri, store.database.name)).startswith(MARKER)


def test_a_key_is_validated_and_never_echoed() -> None:
    with pytest.raises(ValueError, match="not a Fernet key") as raised:
        TokenCipher(["definitely-not-a-key"])
    assert "definitely-not-a-key" not in str(raised.value)
    with pytest.raises(ValueError, match="holds 3 keys"):
        TokenCipher([NEW, OLD, NEW])
    cipher = TokenCipher([NEW])
    sealed = cipher.seal(TOKEN)
    assert sealed != cipher.seal(TOKEN) and cipher.open(sealed) == TOKEN  # randomised, and opens
    assert cipher.open(TOKEN) == TOKEN  # plain text from before
    with pytest.raises(SecretKeyError):
        cipher.open(MARKER + "garbage")
