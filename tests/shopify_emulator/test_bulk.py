"""Bulk query operations over HTTP: lifecycle, Shopify's rules, JSONL content and ordering, downloads."""

from __future__ import annotations

import asyncio

import pytest

from bulk.shopify.documents import BULK_OPERATION_CANCEL, PRODUCTS_BULK_QUERY
from shopify_emulator import Emulator

from .conftest import DOMAIN, TOKEN, Admin


def by_type(lines):
    out = {"Product": [], "ProductVariant": [], "MediaImage": []}
    for position, line in enumerate(lines):
        out[line["id"].split("/")[3]].append(position)
    return out


async def test_lifecycle_and_counts(admin: Admin, shop):
    started = await admin.start_bulk()
    assert started["userErrors"] == []
    assert started["bulkOperation"]["status"] == "CREATED"
    done = await admin.wait(started["bulkOperation"]["id"])
    assert done["status"] == "COMPLETED" and done["errorCode"] is None
    lines = await admin.lines(done["url"])
    body = await admin.download(done["url"])
    variants = sum(len(p.variants) for p in shop.products())
    media = sum(1 for p in shop.products() for v in p.variants if v.image is not None)
    assert done["objectCount"] == str(len(lines)) == str(shop.product_count + variants + media)
    assert done["rootObjectCount"] == str(shop.product_count)
    assert done["fileSize"] == str(len(body))
    assert done["createdAt"].endswith("Z") and done["completedAt"] >= done["createdAt"]


async def test_line_shapes_for_the_products_query(admin: Admin, shop):
    done = await admin.run_bulk()
    lines = await admin.lines(done["url"])
    product = next(p for p in shop.products() if any(v.image for v in p.variants))
    variant = next(v for v in product.variants if v.image)
    [product_line] = [line for line in lines if line["id"] == product.gid]
    assert list(product_line) == ["id", "legacyResourceId", "title", "handle", "vendor", "productType", "status",
                                  "updatedAt", "publishedAt", "onlineStoreUrl", "options", "featuredMedia"]
    assert product_line["legacyResourceId"] == str(product.id)
    assert product_line["options"] == [{"name": o.name} for o in product.options]
    [variant_line] = [line for line in lines if line["id"] == variant.gid]
    assert variant_line["__parentId"] == product.gid and list(variant_line)[-1] == "__parentId"
    assert variant_line["price"] == variant.price and variant_line["sku"] == variant.sku
    assert variant_line["inventoryItem"] == {"id": f"gid://shopify/InventoryItem/{variant.inventory_item_id}"}
    assert variant_line["selectedOptions"] == [{"name": o.name, "value": v}
                                               for o, v in zip(product.options, variant.option_values)]
    [media_line] = [line for line in lines if line.get("__parentId") == variant.gid]
    assert media_line == {"id": variant.image.gid, "image": {"url": variant.image.url}, "__parentId": variant.gid}


async def test_big_ids_stay_exact_in_the_file(emu: Emulator, session):
    shop = emu.add_shop("big.myshopify.com", access_token=TOKEN, variants=40, seed=1)
    admin = Admin(session, emu.admin_api_url(shop.domain))
    body = await admin.download((await admin.run_bulk())["url"])
    big = next(v for p in shop.products() for v in p.variants if v.id > 2**53)
    assert f'"gid://shopify/ProductVariant/{big.id}"'.encode() in body
    assert f'"legacyResourceId":"{big.id}"'.encode() in body


@pytest.mark.parametrize("group_objects", [False, True])
async def test_children_follow_their_parents(admin: Admin, group_objects: bool):
    lines = await admin.lines((await admin.run_bulk(group_objects=group_objects))["url"])
    position = {line["id"]: n for n, line in enumerate(lines)}
    children = [line for line in lines if "__parentId" in line]
    assert children
    assert all(position[c["__parentId"]] < position[c["id"]] for c in children)
    types = by_type(lines)
    if group_objects:
        parent = {line["id"]: line.get("__parentId") for line in lines}

        def descends(node_id, ancestor):
            while node_id is not None and node_id != ancestor:
                node_id = parent[node_id]
            return node_id == ancestor

        for child in children:
            between = lines[position[child["__parentId"]] + 1: position[child["id"]]]
            assert all(descends(line["id"], child["__parentId"]) for line in between), "grouped under the parent"
    else:
        assert max(types["Product"]) < min(types["ProductVariant"]), "roots first, then children"
        assert max(types["ProductVariant"]) < min(types["MediaImage"])


async def test_ungrouped_output_interleaves_chunks_on_bigger_stores(emu: Emulator, session):
    shop = emu.add_shop("chunks.myshopify.com", access_token=TOKEN, variants=4000, seed=3)
    admin = Admin(session, emu.admin_api_url(shop.domain))
    lines = await admin.lines((await admin.run_bulk())["url"])
    types = by_type(lines)
    assert min(types["ProductVariant"]) < max(types["Product"]), "later products come after earlier children"
    position = {line["id"]: n for n, line in enumerate(lines)}
    assert all(position[line["__parentId"]] < n for n, line in enumerate(lines) if "__parentId" in line)


async def test_aliases_and_inline_fragments_are_honoured(admin: Admin, shop):
    query = """{ products { edges { node { pid: id name: title
        featuredMedia { __typename ... on MediaImage { image { width } } }
        variants { nodes { vid: id ... on ProductVariant { qty: inventoryQuantity } } } } } } }"""
    lines = await admin.lines((await admin.run_bulk(query))["url"])
    product = next(shop.products())
    assert lines[0]["pid"] == product.gid and lines[0]["name"] == product.title
    variant_lines = [line for line in lines if line.get("__parentId") == product.gid]
    assert [(v["vid"], v["qty"]) for v in variant_lines] == [(v.gid, v.inventory_quantity) for v in product.variants]


async def test_nothing_matched_means_no_url(admin: Admin):
    done = await admin.run_bulk('{ products(query: "title:no-such-product-anywhere") { edges { node { id } } } }')
    assert done["status"] == "COMPLETED"
    assert (done["url"], done["objectCount"], done["fileSize"]) == (None, "0", None)


async def test_incremental_bulk_on_updated_at(admin: Admin, shop):
    variant_id = next(shop.variant_ids())
    shop.set_price(variant_id, "4.20")
    query = '{ products(query: "updated_at:>2025-12-01") { edges { node { id variants { edges { node { id price } } } } } } }'
    lines = await admin.lines((await admin.run_bulk(query))["url"])
    assert {"id": f"gid://shopify/ProductVariant/{variant_id}", "price": "4.20",
            "__parentId": shop.variant(variant_id).product.gid} in lines
    assert sum("__parentId" not in line for line in lines) == 1


@pytest.mark.parametrize(("query", "message"), [
    ("{ shop { name } }", "at least one connection"),
    ("{ products { edges { node { variants { edges { node { media { edges { node { id "
     "... on MediaImage { metafields { edges { node { id } } } } } } } } } } } } } }", "nested more than 2 levels"),
    ("{ a: products { nodes { id } } b: products { nodes { id } } c: products { nodes { id } } "
     "d: products { nodes { id } } e: products { nodes { id } } f: products { nodes { id } } }", "more than 5"),
    ("{ products { edges { node { nope } } } }", "Field 'nope' doesn't exist on type 'Product'"),
    ("{ products { edges { node { id }", "syntax error"),
    ('{ node(id: "gid://shopify/Product/1") { id } }', "node and nodes"),
])
async def test_invalid_bulk_queries_get_userErrors_INVALID(admin: Admin, query: str, message: str):
    started = await admin.start_bulk(query)
    assert started["bulkOperation"] is None
    [error] = started["userErrors"]
    assert error["code"] == "INVALID" and error["field"] == ["query"]
    assert message in error["message"]


async def test_unsupported_bulk_field_is_a_clear_error(admin: Admin):
    status, body = await admin.post(
        "mutation($q: String!) { bulkOperationRunQuery(query: $q, groupObjects: false) { bulkOperation { id } } }",
        {"q": "{ products { edges { node { id collections { edges { node { id } } } } } } }"})
    assert body["errors"][0]["extensions"]["code"] == "EMULATOR_UNSUPPORTED"
    assert "Product.collections" in body["errors"][0]["message"]


async def test_one_running_query_per_shop_then_cancel(emu: Emulator, admin: Admin):
    emu.faults.slow_bulk(30, times=1)
    first = (await admin.start_bulk())["bulkOperation"]
    second = await admin.start_bulk()
    assert second["bulkOperation"] is None
    [error] = second["userErrors"]
    assert error["code"] == "OPERATION_IN_PROGRESS" and first["id"] in error["message"]
    running = await admin.poll(first["id"])
    assert running["status"] == "RUNNING"
    canceled = (await admin.data(BULK_OPERATION_CANCEL, {"id": first["id"]}))["bulkOperationCancel"]
    assert canceled == {"bulkOperation": {"id": first["id"], "status": "CANCELING"}, "userErrors": []}
    final = await admin.wait(first["id"])
    assert final["status"] == "CANCELED" and final["url"] is None and final["completedAt"]
    assert (await admin.run_bulk())["status"] == "COMPLETED", "a new query may start once the first ended"


async def test_cancel_errors(admin: Admin):
    done = await admin.run_bulk()
    result = (await admin.data(BULK_OPERATION_CANCEL, {"id": done["id"]}))["bulkOperationCancel"]
    assert result["userErrors"] == [{"field": ["id"], "message": "A bulk operation cannot be canceled when it is completed"}]
    missing = (await admin.data(BULK_OPERATION_CANCEL, {"id": "gid://shopify/BulkOperation/1"}))["bulkOperationCancel"]
    assert missing["bulkOperation"] is None and missing["userErrors"][0]["field"] == ["id"]


async def test_object_count_grows_while_running(emu: Emulator, admin: Admin):
    emu.faults.slow_bulk(0.3)
    operation_id = (await admin.start_bulk())["bulkOperation"]["id"]
    seen = []
    while True:
        node = await admin.poll(operation_id)
        seen.append((node["status"], int(node["objectCount"])))
        if node["status"] == "COMPLETED":
            break
        await asyncio.sleep(0.02)
    counts = [count for _, count in seen]
    assert counts == sorted(counts), "never goes backwards"
    assert any(status == "RUNNING" for status, _ in seen)
    assert counts[-1] > 0 and counts[0] < counts[-1]


async def test_node_and_bulkOperation_queries_expose_every_field(admin: Admin):
    done = await admin.run_bulk()
    data = await admin.data("""query($id: ID!) {
      bulkOperation(id: $id) { id status errorCode objectCount rootObjectCount fileSize url partialDataUrl
                               createdAt completedAt query type }
      currentBulkOperation { id }
    }""", {"id": done["id"]})
    operation = data["bulkOperation"]
    assert operation["query"] == PRODUCTS_BULK_QUERY and operation["type"] == "QUERY"
    assert isinstance(operation["objectCount"], str) and isinstance(operation["fileSize"], str)
    assert data["currentBulkOperation"]["id"] == done["id"]


async def test_range_requests(admin: Admin, session):
    url = (await admin.run_bulk())["url"]
    whole = await admin.download(url)
    async with session.get(url, headers={"Range": "bytes=10-19"}) as response:
        assert response.status == 206
        assert response.headers["Content-Range"] == f"bytes 10-19/{len(whole)}"
        assert await response.read() == whole[10:20]
    async with session.get(url, headers={"Range": "bytes=100-"}) as response:
        assert await response.read() == whole[100:]
    async with session.get(url, headers={"Range": f"bytes={len(whole)}-"}) as response:
        assert response.status == 416
    async with session.head(url) as response:
        assert response.headers["Content-Length"] == str(len(whole))


async def test_same_seed_same_file_and_cached(emu: Emulator, session):
    contents = []
    for domain, seed in (("a.myshopify.com", 5), ("b.myshopify.com", 5), ("c.myshopify.com", 6)):
        emu.add_shop(domain, access_token=TOKEN, variants=80, seed=seed)
        admin = Admin(session, emu.admin_api_url(domain))
        first = await admin.run_bulk()
        again = await admin.run_bulk()
        # the same file (its path); the query string's expiry is stamped per operation, to the second
        assert again["url"].split("?")[0] == first["url"].split("?")[0], "an unchanged store reuses the completed file"
        contents.append((await admin.download(first["url"])).replace(domain.encode(), b"SHOP"))
    assert contents[0] == contents[1]
    assert contents[0] != contents[2]


async def test_changes_show_in_the_next_export(admin: Admin, shop):
    products = list(shop.products())
    victim, changed = products[0], products[1]
    variant = changed.variants[0]
    first = await admin.run_bulk()
    shop.set_price(variant.id, "7.77", compare_at_price="9.99")
    shop.set_sku(variant.id, "SKU 1/B")
    shop.delete_product(victim.id)
    added = shop.add_product("Brand New", variants=2)
    second = await admin.run_bulk()
    assert second["url"] != first["url"]
    lines = {line["id"]: line for line in await admin.lines(second["url"])}
    assert lines[variant.gid]["price"] == "7.77" and lines[variant.gid]["compareAtPrice"] == "9.99"
    assert lines[variant.gid]["sku"] == "SKU 1/B"
    assert victim.gid not in lines and not any(v.gid in lines for v in victim.variants)
    assert lines[added.gid]["title"] == "Brand New"
    assert lines[changed.gid]["updatedAt"] > first["createdAt"][:4], "updatedAt moved to now"


async def test_a_shop_never_sees_another_shops_operations(emu: Emulator, admin: Admin, session):
    done = await admin.run_bulk()
    emu.add_shop("other.myshopify.com", access_token="other")
    other = Admin(session, emu.admin_api_url("other.myshopify.com"), token="other")
    assert await other.poll(done["id"]) is None


async def test_results_expire(emu: Emulator, admin: Admin, session):
    done = await admin.run_bulk()
    assert emu.expire_results(DOMAIN) == 1
    node = await admin.poll(done["id"])
    assert node["status"] == "EXPIRED" and node["url"] is None
    async with session.get(done["url"]) as response:
        assert response.status == 400


async def test_old_results_expire_when_newer_ones_pile_up(admin: Admin, shop, session):
    operations = []
    for n in range(5):
        shop.set_inventory(next(shop.variant_ids()), n)
        operations.append(await admin.run_bulk())
    oldest = await admin.poll(operations[0]["id"])
    assert (oldest["status"], oldest["url"]) == ("EXPIRED", None)
    async with session.get(operations[0]["url"]) as response:
        assert response.status == 400
    for operation in operations[1:]:
        assert (await admin.poll(operation["id"]))["status"] == "COMPLETED"
        assert await admin.download(operation["url"])


async def test_result_files_on_disk_stay_bounded(emu: Emulator, admin: Admin, shop):
    emu.faults.fail_bulk("TIMEOUT", times=3)
    for n in range(12):
        shop.set_inventory(next(shop.variant_ids()), n)
        await admin.run_bulk()
    assert len(list(emu.files.directory.iterdir())) <= 2 * 4


async def test_cancel_while_writing_leaves_no_file(emu: Emulator, session):
    shop = emu.add_shop("large.myshopify.com", access_token=TOKEN, variants=20_000, seed=1)
    admin = Admin(session, emu.admin_api_url(shop.domain))
    operation_id = (await admin.start_bulk())["bulkOperation"]["id"]
    canceled = (await admin.data(BULK_OPERATION_CANCEL, {"id": operation_id}))["bulkOperationCancel"]
    assert canceled["bulkOperation"]["status"] == "CANCELING"
    final = await admin.wait(operation_id)
    assert (final["status"], final["url"]) == ("CANCELED", None)
    assert emu.files.files_of(shop.domain) == []
