"""Shopify webhook payloads → catalog items, and their signatures (pure: literal payloads, no network)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import msgspec
import orjson
import pytest

from bulk.errors import InvalidWebhookPayload
from bulk.mapping.assemble import Assembler
from bulk.mapping.payloads import (
    MALFORMED_VARIANT,
    BulkOperationFinished,
    InventoryLevelChanged,
    ProductDeleted,
    ProductSnapshot,
    decode_payload,
    parse_webhook,
    product_from_graphql,
    product_from_rest,
    product_items,
    sign,
    verify_hmac,
)
from bulk.mapping.variants import BulkLine
from catalog_store.items import CatalogItem, Identifier

SHOP = "demo.myshopify.com"
STORE = "Demo Store"

# A products/update body as Shopify writes it: ids above 2^53 (a float64 would round them), money as
# strings, lower-case status, timestamps in the shop's time zone.
PRODUCT_BODY = b"""{
  "admin_graphql_api_id": "gid://shopify/Product/9007199254740993",
  "id": 9007199254740993,
  "title": "Caf\\u00e9 Cr\\u00e8me Shirt \\u2615",
  "handle": "cafe-creme-shirt",
  "vendor": "Acme",
  "product_type": "Shirts",
  "status": "active",
  "created_at": "2025-11-01T09:00:00-05:00",
  "updated_at": "2026-01-15T05:20:30-05:00",
  "published_at": "2025-11-30T19:00:00-05:00",
  "published_scope": "web",
  "tags": "cotton, summer",
  "options": [
    {"id": 10000000000001, "product_id": 9007199254740993, "name": "Color", "position": 2, "values": ["Black"]},
    {"id": 10000000000000, "product_id": 9007199254740993, "name": "Size", "position": 1, "values": ["M", "L"]}
  ],
  "variants": [
    {"id": 18014398509481985, "product_id": 9007199254740993, "title": "M / Black", "sku": "SHIRT-M-BLK",
     "price": "0.10", "compare_at_price": "19.90", "position": 1, "option1": "M", "option2": "Black",
     "option3": null, "image_id": 31000000000011, "inventory_item_id": 45000000000000001,
     "inventory_quantity": 7, "old_inventory_quantity": 7, "updated_at": "2026-01-15T05:20:30-05:00"},
    {"id": 18014398509481987, "product_id": 9007199254740993, "title": "L / Black", "sku": "",
     "price": "12.00", "compare_at_price": null, "position": 2, "option1": "L", "option2": "Black",
     "option3": null, "image_id": null, "inventory_item_id": 45000000000000003,
     "inventory_quantity": 0, "old_inventory_quantity": 0, "updated_at": "2026-01-15T05:20:30-05:00"}
  ],
  "images": [
    {"id": 31000000000011, "position": 1, "product_id": 9007199254740993, "variant_ids": [18014398509481985],
     "src": "https://cdn.shopify.com/s/files/m-black.jpg", "width": 800, "height": 800}
  ],
  "image": {"id": 31000000000011, "src": "https://cdn.shopify.com/s/files/m-black.jpg"},
  "media": [
    {"id": 30000000000001, "position": 1, "media_content_type": "VIDEO", "variant_ids": [],
     "preview_image": {"src": "https://cdn.shopify.com/s/files/preview_images/shirt.jpg", "width": 1280}},
    {"id": 31000000000011, "position": 2, "media_content_type": "IMAGE", "variant_ids": [18014398509481985],
     "preview_image": {"src": "https://cdn.shopify.com/s/files/m-black.jpg", "width": 800}}
  ]
}"""

# The same product as the bulk query's JSONL lines (what a full sync reads).
BULK_LINES = [
    b'{"id":"gid://shopify/Product/9007199254740993","legacyResourceId":"9007199254740993",'
    b'"title":"Caf\\u00e9 Cr\\u00e8me Shirt \\u2615","handle":"cafe-creme-shirt","vendor":"Acme",'
    b'"productType":"Shirts","status":"ACTIVE","updatedAt":"2026-01-15T10:20:30Z",'
    b'"publishedAt":"2025-12-01T00:00:00Z","onlineStoreUrl":"https://demo.myshopify.com/products/cafe-creme-shirt",'
    b'"options":[{"name":"Size"},{"name":"Color"}],'
    b'"featuredMedia":{"preview":{"image":{"url":"https://cdn.shopify.com/s/files/preview_images/shirt.jpg"}}}}',
    b'{"id":"gid://shopify/ProductVariant/18014398509481985","title":"M / Black","sku":"SHIRT-M-BLK",'
    b'"price":"0.10","compareAtPrice":"19.90","inventoryQuantity":7,"updatedAt":"2026-01-15T10:20:30Z",'
    b'"selectedOptions":[{"name":"Size","value":"M"},{"name":"Color","value":"Black"}],'
    b'"inventoryItem":{"id":"gid://shopify/InventoryItem/45000000000000001"},'
    b'"__parentId":"gid://shopify/Product/9007199254740993"}',
    b'{"id":"gid://shopify/ProductVariant/18014398509481987","title":"L / Black","sku":"",'
    b'"price":"12.00","compareAtPrice":null,"inventoryQuantity":0,"updatedAt":"2026-01-15T10:20:30Z",'
    b'"selectedOptions":[{"name":"Size","value":"L"},{"name":"Color","value":"Black"}],'
    b'"inventoryItem":{"id":"gid://shopify/InventoryItem/45000000000000003"},'
    b'"__parentId":"gid://shopify/Product/9007199254740993"}',
    b'{"id":"gid://shopify/MediaImage/31000000000011","image":{"url":"https://cdn.shopify.com/s/files/m-black.jpg"},'
    b'"__parentId":"gid://shopify/ProductVariant/18014398509481985"}',
]

# And as the Admin GraphQL product query returns it (bulk.shopify.documents.PRODUCT_FOR_CATALOG).
GRAPHQL_PRODUCT = {
    "id": "gid://shopify/Product/9007199254740993", "title": "Café Crème Shirt ☕", "handle": "cafe-creme-shirt",
    "vendor": "Acme", "productType": "Shirts", "status": "ACTIVE", "updatedAt": "2026-01-15T10:20:30Z",
    "publishedAt": "2025-12-01T00:00:00Z", "onlineStoreUrl": "https://demo.myshopify.com/products/cafe-creme-shirt",
    "options": [{"name": "Size"}, {"name": "Color"}],
    "featuredMedia": {"preview": {"image": {"url": "https://cdn.shopify.com/s/files/preview_images/shirt.jpg"}}},
}
GRAPHQL_VARIANTS = [
    {"id": "gid://shopify/ProductVariant/18014398509481985", "title": "M / Black", "sku": "SHIRT-M-BLK",
     "price": "0.10", "compareAtPrice": "19.90", "inventoryQuantity": 7, "updatedAt": "2026-01-15T10:20:30Z",
     "selectedOptions": [{"name": "Size", "value": "M"}, {"name": "Color", "value": "Black"}],
     "inventoryItem": {"id": "gid://shopify/InventoryItem/45000000000000001"},
     "media": {"nodes": [{"id": "gid://shopify/MediaImage/31000000000011",
                          "image": {"url": "https://cdn.shopify.com/s/files/m-black.jpg"}}]}},
    {"id": "gid://shopify/ProductVariant/18014398509481987", "title": "L / Black", "sku": "",
     "price": "12.00", "compareAtPrice": None, "inventoryQuantity": 0, "updatedAt": "2026-01-15T10:20:30Z",
     "selectedOptions": [{"name": "Size", "value": "L"}, {"name": "Color", "value": "Black"}],
     "inventoryItem": {"id": "gid://shopify/InventoryItem/45000000000000003"}, "media": {"nodes": []}},
]


def rest_items(body: bytes = PRODUCT_BODY, identifier: Identifier = Identifier.SHOPIFY_VARIANT_ID):
    snapshot = parse_webhook("products/update", decode_payload(body))
    assert isinstance(snapshot, ProductSnapshot)
    return product_items(snapshot, identifier=identifier, shop_domain=SHOP, store_name=STORE)


def bulk_items(raw: list[bytes], identifier: Identifier) -> tuple[list[CatalogItem], dict[str, int]]:
    decoder = msgspec.json.Decoder(BulkLine)
    assembler = Assembler(identifier=identifier, shop_domain=SHOP, store_name=STORE,
                          on_bad_line=lambda n, reason: pytest.fail(f"line {n}: {reason}"))
    batches = assembler.feed([decoder.decode(line) for line in raw], lambda i: i + 1) + assembler.flush()
    skipped = {s.reason: s.count for s in assembler.skips.snapshot()}
    return [item for batch in batches for item in batch.items], skipped


def with_changes(body: bytes, **variant_changes: object) -> bytes:
    payload = orjson.loads(body)
    payload["variants"][0].update(variant_changes)
    return orjson.dumps(payload)


# -- mapping -----------------------------------------------------------------------------------------


def test_a_rest_payload_becomes_exact_items():
    mapped = rest_items()
    first, second = mapped.items
    assert first == CatalogItem(
        id="18014398509481985",
        store_name=STORE,
        shopify_product_id="9007199254740993",  # 2^53 + 1: exact
        shopify_variant_id="18014398509481985",
        product_title="Café Crème Shirt ☕",
        variant_title="M / Black",
        status="active",
        product_image_url="https://cdn.shopify.com/s/files/preview_images/shirt.jpg",  # featured media first
        variant_image_url="https://cdn.shopify.com/s/files/m-black.jpg",
        vendor="Acme",
        product_type="Shirts",
        product_url="https://demo.myshopify.com/products/cafe-creme-shirt",
        product_handle="cafe-creme-shirt",
        published_scope="web",
        price="0.10",
        compare_at_price="19.90",
        inventory_quantity=7,
        options=("Size", "Color"),  # by position, not payload order
        option_values=("M", "Black"),
        sku="SHIRT-M-BLK",
        updated_at=datetime(2026, 1, 15, 10, 20, 30, tzinfo=UTC),
        inventory_item_id="45000000000000001",
        inventory_at=datetime(2026, 1, 15, 10, 20, 30, tzinfo=UTC),  # the variant's own updated_at
    )
    assert (second.price, second.compare_at_price, second.inventory_quantity) == ("12.00", None, 0)
    assert second.variant_image_url is None and second.sku is None
    assert mapped.product_id == "9007199254740993" and mapped.skips == []


def test_ids_above_2_pow_53_stay_exact_through_json():
    body = PRODUCT_BODY.replace(b"18014398509481985", b"9223372036854775807")  # int64 max
    (item, _) = rest_items(body).items
    assert item.shopify_variant_id == item.id == "9223372036854775807"
    assert float(item.shopify_variant_id) == 2.0**63  # what a float decoder would have made of it
    assert parse_webhook("products/delete", decode_payload(b'{"id": 9007199254740993}')) == \
        ProductDeleted("9007199254740993")


@pytest.mark.parametrize("identifier", list(Identifier))
def test_the_same_product_gives_the_same_items_by_bulk_line_webhook_and_graphql(identifier):
    from_bulk, bulk_skips = bulk_items(BULK_LINES, identifier)
    from_webhook = rest_items(identifier=identifier)
    from_graphql = product_items(product_from_graphql(GRAPHQL_PRODUCT, GRAPHQL_VARIANTS), identifier=identifier,
                                 shop_domain=SHOP, store_name=STORE)
    assert from_bulk  # a comparison of empty lists would prove nothing
    assert from_webhook.items == from_bulk
    assert from_graphql.items == from_bulk
    assert {s.reason: 1 for s in from_webhook.skips} == bulk_skips == {s.reason: 1 for s in from_graphql.skips}


def test_status_is_lower_case_and_unpublished_products_have_no_scope():
    payload = orjson.loads(PRODUCT_BODY)
    payload.update(status="DRAFT", published_at=None, published_scope=None)
    (item, _) = rest_items(orjson.dumps(payload)).items
    assert item.status == "draft"
    assert item.published_scope is None


@pytest.mark.parametrize("identifier, expected_ids", [
    (Identifier.SHOPIFY_VARIANT_ID, ["18014398509481985", "18014398509481987"]),
    (Identifier.SKU, ["SHIRT-M-BLK"]),
])
def test_the_identifier_chooses_the_item_id(identifier, expected_ids):
    assert [i.id for i in rest_items(identifier=identifier).items] == expected_ids


@pytest.mark.parametrize("changes, identifier, reason", [
    ({"sku": "BAD SKU"}, Identifier.SKU, "invalid_id"),
    ({"sku": "x" * 251}, Identifier.SKU, "invalid_id"),
    ({"sku": None}, Identifier.SKU, "missing_sku"),
    ({"sku": "   "}, Identifier.SKU, "missing_sku"),
    ({"title": "t" * 5001}, Identifier.SHOPIFY_VARIANT_ID, "value_too_long"),
    ({"option1": "v" * 5001}, Identifier.SHOPIFY_VARIANT_ID, "value_too_long"),
])
def test_skip_rules_are_the_bulk_paths(changes, identifier, reason):
    mapped = rest_items(with_changes(PRODUCT_BODY, **changes), identifier)
    assert "18014398509481985" in mapped.skipped_variant_ids
    assert reason in [s.reason for s in mapped.skips if s.variant_id == "18014398509481985"]
    assert all(i.shopify_variant_id != "18014398509481985" for i in mapped.items)
    # The same variant as a bulk line is skipped for the same reason.
    line = orjson.loads(BULK_LINES[1])
    rename = {"title": "title", "sku": "sku"}
    for key, value in changes.items():
        if key == "option1":
            line["selectedOptions"][0]["value"] = value
        else:
            line[rename[key]] = value
    _, skipped = bulk_items([BULK_LINES[0], orjson.dumps(line)], identifier)
    assert reason in skipped


def test_a_product_value_too_long_skips_all_its_variants():
    payload = orjson.loads(PRODUCT_BODY)
    payload["vendor"] = "v" * 5001
    mapped = rest_items(orjson.dumps(payload))
    assert mapped.items == [] and {s.reason for s in mapped.skips} == {"value_too_long"}


def test_an_overlong_variant_image_is_dropped_but_the_item_kept():
    payload = orjson.loads(PRODUCT_BODY)
    payload["images"][0]["src"] = "https://cdn.shopify.com/" + "x" * 5000
    (item, _) = rest_items(orjson.dumps(payload)).items
    assert item.variant_image_url is None and item.price == "0.10"


@pytest.mark.parametrize("price", [19.99, True, 12, "19,99", "", None, "-1.00", "1e3", "9" * 400, " 1.00", "1.00\n",
                                   "1.0000000001", "1234567890123456789"])
def test_money_that_is_not_an_exact_decimal_string_refuses_the_whole_payload(price):
    with pytest.raises(InvalidWebhookPayload, match=r"\$\.variants\[0\]\.price"):
        rest_items(with_changes(PRODUCT_BODY, price=price))


def test_money_in_range_is_kept_exactly():
    (item, _) = rest_items(with_changes(PRODUCT_BODY, price="999999999999999999.123456789",
                                        compare_at_price="15.5")).items
    assert (item.price, item.compare_at_price) == ("999999999999999999.123456789", "15.5")


def test_product_image_falls_back_to_image_without_media():
    payload = orjson.loads(PRODUCT_BODY)
    del payload["media"]
    (item, _) = rest_items(orjson.dumps(payload)).items
    assert item.product_image_url == "https://cdn.shopify.com/s/files/m-black.jpg"
    payload["image"] = None
    payload["images"] = []
    (item, _) = rest_items(orjson.dumps(payload)).items
    assert item.product_image_url is None and item.variant_image_url is None


def test_a_known_online_store_url_is_kept_while_published():
    snapshot = parse_webhook("products/update", decode_payload(PRODUCT_BODY))
    custom = "https://shop.example.com/products/cafe-creme-shirt"
    mapped = product_items(snapshot, identifier=Identifier.SHOPIFY_VARIANT_ID, shop_domain=SHOP,
                           store_name=STORE, online_store_url=custom)
    assert {i.product_url for i in mapped.items} == {custom}
    payload = orjson.loads(PRODUCT_BODY)
    payload["published_at"] = None
    unpublished = parse_webhook("products/update", payload)
    mapped = product_items(unpublished, identifier=Identifier.SHOPIFY_VARIANT_ID, shop_domain=SHOP,
                           store_name=STORE, online_store_url=custom)
    assert {i.product_url for i in mapped.items} == {"https://demo.myshopify.com/products/cafe-creme-shirt"}


def test_payloads_listing_only_the_first_100_variants_are_incomplete():
    payload = orjson.loads(PRODUCT_BODY)
    template = payload["variants"][0]
    payload["variants"] = [dict(template, id=template["id"] + 2 * n, option1=f"S{n}") for n in range(100)]
    snapshot = product_from_rest(payload)
    assert snapshot.complete is False
    payload["variants"] = payload["variants"][:3]
    assert product_from_rest(payload).complete is True
    payload["variant_gids"] = [{"admin_graphql_api_id": f"gid://shopify/ProductVariant/{n}"} for n in range(1, 5)]
    assert product_from_rest(payload).complete is False


def test_other_topics():
    inventory = parse_webhook("inventory_levels/update", decode_payload(
        b'{"inventory_item_id": 46000000000000001, "location_id": 67305038107, "available": -3,'
        b' "updated_at": "2026-01-15T05:20:30-05:00"}'))
    assert inventory == InventoryLevelChanged("46000000000000001", "67305038107", -3)
    finished = parse_webhook("bulk_operations/finish", {
        "admin_graphql_api_id": "gid://shopify/BulkOperation/5104312000", "status": "completed",
        "error_code": None, "type": "query"})
    assert finished == BulkOperationFinished("gid://shopify/BulkOperation/5104312000", "COMPLETED", None)


@pytest.mark.parametrize("topic, body, problem", [
    ("products/delete", b'{"id": -1}', r"Expected `int` >= 1 - at `\$.id`"),
    ("products/delete", b'{"id": 0}', r"Expected `int` >= 1 - at `\$.id`"),
    ("products/delete", b'{"id": 1.5}', r"Expected `int`, got `float` - at `\$.id`"),
    ("products/delete", b'{"id": 18446744073709551616}', r"Expected `int`, got `float` - at `\$.id`"),
    ("products/delete", b'{"id": 9223372036854775808}', r"Expected `int` <= 9223372036854775807"),
    ("products/delete", b'{"id": true}', r"Expected `int`, got `bool`"),
    ("products/delete", b'{"id": "abc"}', r"Expected `int`, got `str`"),
    ("products/delete", b'{"id": "123"}', r"Expected `int`, got `str`"),
    ("products/delete", b'{}', "missing required field `id`"),
    # the topic header is not signed: a product body sent as a delete is refused, not applied
    ("products/delete", PRODUCT_BODY, "unknown field"),
    ("products/update", b'{"id": 1}', "missing required field"),
    ("products/update", b'{"id": 1, "title": "x", "status": "active", "updated_at": "2026-01-15T10:00:00Z",'
                        b' "variants": []}', r"Expected `array` of length >= 1 - at `\$.variants`"),
    ("products/update", b'{"id": 1, "title": "x", "status": "active", "updated_at": "2026-01-15T10:00:00Z",'
                        b' "variants": null}', r"got `null` - at `\$.variants`"),
    ("products/update", b'{"id": 1, "title": "x", "status": "active", "variants": [{"id": 2, "price": "1"}]}',
     "missing required field `updated_at`"),
    ("products/update", b'{"id": 1, "title": "x", "status": "active", "updated_at": "2026-01-15T10:00:00",'
                        b' "variants": [{"id": 2, "price": "1"}]}', "timezone"),
    ("products/update", b'{"id": 1, "title": "x", "status": "active", "updated_at": "2026-01-15T10:00:00Z",'
                        b' "variants": {}}', r"Expected `array`, got `object` - at `\$.variants`"),
    ("products/update", b'{"id": 1, "title": "x", "status": "active", "updated_at": "2026-01-15T10:00:00Z",'
                        b' "variants": [{"id": -5, "price": "1"}]}', r"at `\$.variants\[0\].id`"),
    ("products/update", b'{"id": 1, "title": "x", "status": "active", "updated_at": "2026-01-15T10:00:00Z",'
                        b' "variants": [{"id": 5, "price": "1", "inventory_quantity": 1e20}]}', "inventory_quantity"),
    ("inventory_levels/update", b'{"inventory_item_id": 5, "location_id": 6, "available": "7"}', "available"),
    ("inventory_levels/update", b'{"id": 5}', "missing required field `inventory_item_id`"),
    ("bulk_operations/finish", b'{"status": "completed"}', "missing required field `admin_graphql_api_id`"),
    ("bulk_operations/finish", b'{"admin_graphql_api_id": "gid://shopify/Product/1", "status": "completed"}',
     "admin_graphql_api_id"),
    ("bulk_operations/finish", b'{"admin_graphql_api_id": "gid://shopify/BulkOperation/1\\n", "status": "completed"}',
     "admin_graphql_api_id"),  # `$` would match before the newline
    ("orders/create", b'{"id": 1}', "unsupported webhook topic"),
])
def test_payloads_shopify_would_never_send_are_refused(topic, body, problem):
    with pytest.raises(InvalidWebhookPayload, match=problem):
        parse_webhook(topic, decode_payload(body))


def test_an_updated_at_in_the_future_is_refused():
    received = datetime(2026, 1, 15, 10, 20, 30, tzinfo=UTC)  # PRODUCT_BODY's updated_at, in UTC
    assert isinstance(parse_webhook("products/update", decode_payload(PRODUCT_BODY), received_at=received),
                      ProductSnapshot)
    assert isinstance(parse_webhook("products/update", decode_payload(PRODUCT_BODY),
                                    received_at=received - timedelta(minutes=4)), ProductSnapshot)  # clock skew
    with pytest.raises(InvalidWebhookPayload, match="later than the delivery was received"):
        parse_webhook("products/update", decode_payload(PRODUCT_BODY), received_at=received - timedelta(minutes=6))
    payload = orjson.loads(PRODUCT_BODY)
    payload["updated_at"] = "9999-12-31T23:59:59Z"
    with pytest.raises(InvalidWebhookPayload, match="later than the delivery was received"):
        parse_webhook("products/update", payload, received_at=received)


def test_a_product_without_title_is_refused_whole():
    payload = orjson.loads(PRODUCT_BODY)
    del payload["title"]
    with pytest.raises(InvalidWebhookPayload, match="missing required field `title`"):
        rest_items(orjson.dumps(payload))


@pytest.mark.parametrize("body", [b"", b"not json", b"[1, 2]", b'"text"'])
def test_a_body_that_is_not_a_json_object_is_refused(body):
    with pytest.raises(InvalidWebhookPayload):
        decode_payload(body)


# -- signatures --------------------------------------------------------------------------------------


def reference_signature(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def test_sign_is_shopifys_header():
    assert sign(PRODUCT_BODY, "whsec_a") == reference_signature(PRODUCT_BODY, "whsec_a")


def test_a_valid_signature_is_accepted():
    assert verify_hmac(PRODUCT_BODY, reference_signature(PRODUCT_BODY, "whsec_a"), ["whsec_a"])


@pytest.mark.parametrize("signature", [
    None,
    "",
    "not base64!",
    base64.b64encode(b"short").decode(),
    reference_signature(PRODUCT_BODY, "whsec_wrong"),
    reference_signature(PRODUCT_BODY + b" ", "whsec_a"),  # signed another body
])
def test_missing_malformed_or_forged_signatures_are_refused(signature):
    assert not verify_hmac(PRODUCT_BODY, signature, ["whsec_a"])


def test_a_tampered_body_is_refused():
    signature = reference_signature(PRODUCT_BODY, "whsec_a")
    assert not verify_hmac(PRODUCT_BODY.replace(b'"0.10"', b'"0.01"'), signature, ["whsec_a"])


def test_two_secrets_are_accepted_during_a_rotation():
    secrets = ["whsec_new", "whsec_old"]
    assert verify_hmac(PRODUCT_BODY, reference_signature(PRODUCT_BODY, "whsec_new"), secrets)
    assert verify_hmac(PRODUCT_BODY, reference_signature(PRODUCT_BODY, "whsec_old"), secrets)
    assert not verify_hmac(PRODUCT_BODY, reference_signature(PRODUCT_BODY, "whsec_older"), secrets)


def test_no_secret_accepts_nothing():
    assert not verify_hmac(PRODUCT_BODY, reference_signature(PRODUCT_BODY, ""), [])


def test_a_graphql_variant_with_a_malformed_id_is_skipped_not_fatal():
    variants = [dict(GRAPHQL_VARIANTS[0], id="gid://shopify/ProductVariant/abc"), GRAPHQL_VARIANTS[1]]
    snapshot = product_from_graphql(GRAPHQL_PRODUCT, variants)
    assert snapshot.variant_ids == ["18014398509481987"]
    mapped = product_items(snapshot, identifier=Identifier.SHOPIFY_VARIANT_ID, shop_domain=SHOP, store_name=STORE)
    assert [s.reason for s in mapped.skips] == [MALFORMED_VARIANT]
    assert [i.id for i in mapped.items] == ["18014398509481987"]
