"""The Admin GraphQL endpoint over real HTTP: auth, validation, supported and unsupported operations, cost."""

from __future__ import annotations

import pytest

from bulk.shopify.documents import ALL_DOCUMENTS, PRODUCTS_BULK_QUERY, SHOP_INFO
from shopify_emulator import Emulator

from .conftest import DOMAIN, TOKEN, Admin

INVALID_TOKEN = "[API] Invalid API key or access token (unrecognized login or wrong password)"


async def test_shop_info(admin: Admin):
    assert await admin.data(SHOP_INFO) == {"shop": {"name": "Demo Store", "myshopifyDomain": DOMAIN}}


async def test_wrong_or_missing_token_is_401_like_shopify(admin: Admin, session):
    status, body = await Admin(session, admin.url, token="shpat_wrong").post(SHOP_INFO)
    assert (status, body) == (401, {"errors": INVALID_TOKEN})
    async with session.post(admin.url, json={"query": SHOP_INFO}) as response:
        assert response.status == 401


async def test_unknown_shop_and_bad_version_are_404(emu: Emulator, admin: Admin, session):
    status, _ = await Admin(session, emu.admin_api_url("nope.myshopify.com")).post(SHOP_INFO)
    assert status == 404
    status, _ = await Admin(session, emu.admin_api_url(DOMAIN, "v1")).post(SHOP_INFO)
    assert status == 404


async def test_body_without_query_is_400(admin: Admin, session):
    async with session.post(admin.url, data=b"not json", headers={"X-Shopify-Access-Token": TOKEN}) as response:
        assert response.status == 400
        assert (await response.json())["errors"] == {"query": "Required parameter missing or invalid"}


async def test_application_graphql_body_is_accepted(admin: Admin, session):
    async with session.post(admin.url, data=SHOP_INFO.encode(),
                            headers={"X-Shopify-Access-Token": TOKEN, "Content-Type": "application/graphql"}) as r:
        assert (await r.json())["data"]["shop"]["myshopifyDomain"] == DOMAIN


async def test_every_response_carries_cost_and_the_bucket_drains(admin: Admin):
    _, first = await admin.post(SHOP_INFO)
    _, second = await admin.post(SHOP_INFO)
    cost = second["extensions"]["cost"]
    assert cost["requestedQueryCost"] == cost["actualQueryCost"] == 1
    status = cost["throttleStatus"]
    assert status["maximumAvailable"] == 2000.0 and status["restoreRate"] == 100.0
    assert status["currentlyAvailable"] <= first["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"]
    _, invalid = await admin.post("{ shop { nope } }")
    assert "throttleStatus" in invalid["extensions"]["cost"]


async def test_schema_validation_errors_like_shopify(admin: Admin):
    status, body = await admin.post("query { shop { name nope } }")
    assert status == 200 and "data" not in body
    [error] = body["errors"]
    assert error["message"] == "Field 'nope' doesn't exist on type 'Shop'"
    assert error["locations"] == [{"line": 1, "column": 21}]
    assert error["extensions"]["code"] == "undefinedField"

    _, body = await admin.post("{ node { id } }")
    assert body["errors"][0]["message"] == "Field 'node' is missing required arguments: id"

    _, body = await admin.post("{ shop { name }")
    assert body["errors"][0]["message"].startswith("syntax error") and "locations" in body["errors"][0]

    _, body = await admin.post("query Q($id: ID!) { node(id: $id) { id } }", {})
    assert body["errors"][0]["message"] == "Variable $id of type ID! was provided invalid value"
    assert body["errors"][0]["extensions"]["problems"][0]["explanation"] == "Expected value to not be null"


async def test_invalid_global_id_is_a_coercion_error(admin: Admin):
    _, body = await admin.post('{ node(id: "42") { id } }')
    assert body["errors"][0]["message"] == "Invalid global id '42'" and "data" not in body


async def test_unknown_node_is_null(admin: Admin):
    assert await admin.data('{ node(id: "gid://shopify/BulkOperation/1") { id } }') == {"node": None}


@pytest.mark.parametrize("document", [
    "{ shop { plan { displayName } } }",
    "{ orders(first: 1) { edges { node { id } } } }",
    '{ products(first: 1, sortKey: TITLE) { nodes { id } } }',
    '{ products(first: 1, query: "colour:red") { nodes { id } } }',
    "mutation { productDelete(input: {id: \"gid://shopify/Product/1\"}) { deletedProductId } }",
])
async def test_valid_but_unsupported_is_a_clear_error_not_wrong_data(admin: Admin, document: str):
    status, body = await admin.post(document)
    assert status == 200 and "data" not in body
    assert body["errors"][0]["extensions"]["code"] == "EMULATOR_UNSUPPORTED"
    assert body["errors"][0]["message"].startswith("shopify_emulator does not support")


async def test_every_project_document_is_answered(admin: Admin, shop):
    """The documents the gateway sends (bulk.shopify.documents) all work against the emulator."""
    run = await admin.data(ALL_DOCUMENTS["BULK_RUN_QUERY"], {"query": PRODUCTS_BULK_QUERY, "groupObjects": False})
    operation_id = run["bulkOperationRunQuery"]["bulkOperation"]["id"]
    node = await admin.data(ALL_DOCUMENTS["BULK_OPERATION_NODE"], {"id": operation_id})
    assert node["node"]["id"] == operation_id
    cancel = await admin.data(ALL_DOCUMENTS["BULK_OPERATION_CANCEL"], {"id": operation_id})
    assert cancel["bulkOperationCancel"]["bulkOperation"]["id"] == operation_id
    assert (await admin.data(ALL_DOCUMENTS["SHOP_INFO"]))["shop"]["name"] == "Demo Store"
    created = await admin.data(ALL_DOCUMENTS["WEBHOOK_SUBSCRIPTION_CREATE"], {
        "topic": "PRODUCTS_UPDATE", "webhookSubscription": {"uri": "http://127.0.0.1:9/hooks"}})
    subscription = created["webhookSubscriptionCreate"]["webhookSubscription"]
    assert subscription["topic"] == "PRODUCTS_UPDATE"
    deleted = await admin.data(ALL_DOCUMENTS["WEBHOOK_SUBSCRIPTION_DELETE"], {"id": subscription["id"]})
    assert deleted["webhookSubscriptionDelete"] == {"deletedWebhookSubscriptionId": subscription["id"], "userErrors": []}


async def test_regular_product_queries_with_pagination(admin: Admin, shop):
    query = """query P($after: String) {
      products(first: 2, after: $after) {
        edges { cursor node { id legacyResourceId title variantsCount { count } } }
        pageInfo { hasNextPage endCursor }
      }
    }"""
    seen, after = [], None
    while True:
        page = (await admin.data(query, {"after": after}))["products"]
        seen += [edge["node"]["id"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == [p.gid for p in shop.products()]
    assert len(seen) == len(set(seen)) > 2

    _, body = await admin.post("{ products { nodes { id } } }")
    assert body["errors"][0]["message"] == "you must provide one of first or last"


async def test_aliases_fragments_and_typename_in_regular_queries(admin: Admin, shop):
    variant = next(shop.products()).variants[0]
    data = await admin.data(
        """query V($id: ID!) { v: productVariant(id: $id) { __typename ...F cost: price } }
           fragment F on ProductVariant { sku product { handle } }""",
        {"id": variant.gid})
    assert data == {"v": {"__typename": "ProductVariant", "sku": variant.sku,
                          "product": {"handle": variant.product.handle}, "cost": variant.price}}


async def test_search_on_updated_at_finds_changed_products(admin: Admin, shop):
    variant_id = next(shop.variant_ids())
    shop.set_price(variant_id, "3.33")
    data = await admin.data('{ products(first: 10, query: "updated_at:>2025-12-01") { nodes { id variants(first: 20) { nodes { id price } } } } }')
    [product] = data["products"]["nodes"]
    assert {"id": f"gid://shopify/ProductVariant/{variant_id}", "price": "3.33"} in product["variants"]["nodes"]


async def test_query_cost_limit(admin: Admin):
    status, body = await admin.post("{ products(first: 250) { nodes { variants(first: 250) { nodes { id } } } } }")
    assert status == 200 and body["errors"][0]["extensions"]["code"] == "MAX_COST_EXCEEDED"
