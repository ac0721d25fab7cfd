"""Every document we send validates against the Admin 2026-01 schema; the bulk query obeys the bulk rules."""

from __future__ import annotations

import pytest
from graphql import FieldNode, TypeInfo, TypeInfoVisitor, Visitor, parse, visit

from bulk.shopify import documents
from bulk.shopify.query_rules import check_bulk_query
from bulk.shopify.schema import load_admin_schema, validation_errors

DEPRECATED_IN_2026_01 = {"Product.featuredImage", "Product.images", "ProductVariant.image"}


def selected_fields(document: str) -> set[str]:
    """Every `Type.field` the document selects, resolved against the schema."""
    type_info = TypeInfo(load_admin_schema())
    found: set[str] = set()

    class Collect(Visitor):
        def enter_field(self, node: FieldNode, *_):
            parent = type_info.get_parent_type()
            found.add(f"{parent.name}.{node.name.value}")

    visit(parse(document), TypeInfoVisitor(type_info, Collect()))
    return found


@pytest.mark.parametrize("name", sorted(documents.ALL_DOCUMENTS))
def test_every_document_validates_against_the_schema(name):
    assert validation_errors(documents.ALL_DOCUMENTS[name]) == []


def test_the_client_sends_only_documents_from_queries():
    sent = {documents.SHOP_INFO, documents.BULK_RUN_QUERY, documents.BULK_OPERATION_NODE, documents.BULK_OPERATION_CANCEL,
            documents.WEBHOOK_SUBSCRIPTION_CREATE, documents.WEBHOOK_SUBSCRIPTION_DELETE, documents.PRODUCTS_BULK_QUERY,
            documents.PRODUCT_FOR_CATALOG, documents.PRODUCTS_CHANGED_SINCE, documents.VARIANT_INVENTORY,
            documents.VARIANTS_UPDATED_SINCE, documents.PRODUCT_IDS, documents.NEWEST_BULK_QUERY}
    assert sent == set(documents.ALL_DOCUMENTS.values())


def test_the_bulk_query_obeys_shopifys_bulk_rules():
    check = check_bulk_query(documents.PRODUCTS_BULK_QUERY)
    assert check.problems == ()
    assert check.connections == ("QueryRoot.products", "Product.variants", "ProductVariant.media")
    assert 1 <= len(check.connections) <= 5
    assert check.max_nesting <= 2
    assert check.deprecated_fields == ()


def test_the_bulk_query_avoids_the_fields_deprecated_in_2026_01():
    fields = selected_fields(documents.PRODUCTS_BULK_QUERY)
    assert fields.isdisjoint(DEPRECATED_IN_2026_01)
    assert {"Product.featuredMedia", "ProductVariant.media"} <= fields  # their replacements
    schema = load_admin_schema()
    for name in fields:
        type_name, field_name = name.split(".")
        assert schema.get_type(type_name).fields[field_name].deprecation_reason is None, name


# The checker must catch what Shopify would reject, or the test above proves nothing.

SIX_CONNECTIONS = """
{ products { edges { node {
    variants { edges { node { id media { edges { node { id } } } } } }
    media { edges { node { id } } }
    collections { edges { node { id } } }
    metafields { edges { node { id } } }
} } } }
"""
THREE_LEVELS = """
{ collections { edges { node { products { edges { node {
    variants { edges { node { media { edges { node { id } } } } } }
} } } } } } }
"""


@pytest.mark.parametrize("query, problem", [
    (SIX_CONNECTIONS, "6 connections; Shopify allows at most 5"),
    (THREE_LEVELS, "connections nested 3 levels deep; Shopify allows at most 2"),
    ("{ shop { name } }", "a bulk query needs at least one connection"),
    ("mutation { webhookSubscriptionDelete(id: \"gid://shopify/WebhookSubscription/1\") { deletedWebhookSubscriptionId } }",
     "a bulk query must be exactly one query operation"),
    ("{ products { edges { node { id noSuchField } } } }", "Cannot query field 'noSuchField' on type 'Product'."),
])
def test_the_checker_reports_what_shopify_would_reject(query, problem):
    assert problem in check_bulk_query(query).problems


def test_the_checker_lists_deprecated_fields():
    check = check_bulk_query("{ products { edges { node { id featuredImage { url } "
                             "variants { edges { node { image { url } } } } } } } }")
    assert check.problems == ()
    assert set(check.deprecated_fields) == {"Product.featuredImage", "ProductVariant.image"}
