"""Every GraphQL document this project sends to Shopify, in one place.

Each is validated against the stored Admin API 2026-01 schema in tests. The bulk query avoids the
fields deprecated in 2026-01 (`featuredImage`, `images`, `ProductVariant.image`): product images come
from `featuredMedia`, variant images from the variant's `media` connection (its own JSONL lines).
"""

from __future__ import annotations

# The query run as a bulk operation. Connections: products, variants, variant media (3 of 5 allowed,
# 2 levels of nesting). Output lines: Product, ProductVariant (__parentId = product gid), and
# MediaImage (__parentId = variant gid).
PRODUCTS_BULK_QUERY = """
{
  products {
    edges {
      node {
        id
        legacyResourceId
        title
        handle
        vendor
        productType
        status
        updatedAt
        publishedAt
        onlineStoreUrl
        options { name }
        featuredMedia { preview { image { url } } }
        variants {
          edges {
            node {
              id
              legacyResourceId
              title
              sku
              price
              compareAtPrice
              inventoryQuantity
              selectedOptions { name value }
              inventoryItem { id }
              media {
                edges {
                  node {
                    ... on MediaImage { id image { url } }
                  }
                }
              }
            }
          }
        }
      }
    }
  }
}
""".strip()

BULK_RUN_QUERY = """
mutation RunBulkQuery($query: String!, $groupObjects: Boolean!) {
  bulkOperationRunQuery(query: $query, groupObjects: $groupObjects) {
    bulkOperation { id status }
    userErrors { field message code }
  }
}
""".strip()

BULK_OPERATION_NODE = """
query BulkOperationStatus($id: ID!) {
  node(id: $id) {
    ... on BulkOperation {
      id
      status
      errorCode
      objectCount
      rootObjectCount
      fileSize
      url
      partialDataUrl
      createdAt
      completedAt
    }
  }
}
""".strip()

BULK_OPERATION_CANCEL = """
mutation CancelBulkOperation($id: ID!) {
  bulkOperationCancel(id: $id) {
    bulkOperation { id status }
    userErrors { field message }
  }
}
""".strip()

SHOP_INFO = """
query ShopInfo {
  shop { name myshopifyDomain }
}
""".strip()

WEBHOOK_SUBSCRIPTION_CREATE = """
mutation CreateWebhook($topic: WebhookSubscriptionTopic!, $webhookSubscription: WebhookSubscriptionInput!) {
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: $webhookSubscription) {
    webhookSubscription { id topic }
    userErrors { field message }
  }
}
""".strip()

WEBHOOK_SUBSCRIPTION_DELETE = """
mutation DeleteWebhook($id: ID!) {
  webhookSubscriptionDelete(id: $id) {
    deletedWebhookSubscriptionId
    userErrors { field message }
  }
}
""".strip()

ALL_DOCUMENTS: dict[str, str] = {
    "PRODUCTS_BULK_QUERY": PRODUCTS_BULK_QUERY,
    "BULK_RUN_QUERY": BULK_RUN_QUERY,
    "BULK_OPERATION_NODE": BULK_OPERATION_NODE,
    "BULK_OPERATION_CANCEL": BULK_OPERATION_CANCEL,
    "SHOP_INFO": SHOP_INFO,
    "WEBHOOK_SUBSCRIPTION_CREATE": WEBHOOK_SUBSCRIPTION_CREATE,
    "WEBHOOK_SUBSCRIPTION_DELETE": WEBHOOK_SUBSCRIPTION_DELETE,
}
