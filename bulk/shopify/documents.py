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

# The app's newest bulk query (newest first by default): when Shopify refuses a start with
# OPERATION_IN_PROGRESS, this is the one in the way (one bulk query per app and shop at a time).
NEWEST_BULK_QUERY = """
query NewestBulkQuery {
  bulkOperations(first: 1, query: "operation_type:QUERY") {
    nodes { id status errorCode objectCount rootObjectCount fileSize url partialDataUrl createdAt completedAt }
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

WEBHOOK_SUBSCRIPTIONS = """
query WebhookSubscriptions($topics: [WebhookSubscriptionTopic!], $uri: String) {
  webhookSubscriptions(first: 50, topics: $topics, uri: $uri) {
    nodes { id topic uri }
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

# Webhook follow-ups (bulk.webhooks.processor): the product fields the catalog items need, the same as
# the bulk query's, so a product read here becomes the same items as its bulk lines. Costs stay well
# under Shopify's 1,000-point limit per query: a variant node costs ~7 points (selectedOptions,
# inventoryItem, media(first: 1) with its image), so a page of 50 variants costs ~360.
PRODUCT_VARIANTS_PAGE_SIZE = 50
RECONCILE_PRODUCTS_PAGE_SIZE = 5
RECONCILE_VARIANTS_PAGE_SIZE = 20

_CATALOG_FRAGMENTS = """
fragment CatalogProductFields on Product {
  id
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
}

fragment CatalogVariantFields on ProductVariant {
  id
  title
  sku
  price
  compareAtPrice
  inventoryQuantity
  selectedOptions { name value }
  inventoryItem { id }
  media(first: 1) {
    nodes {
      ... on MediaImage { id image { url } }
    }
  }
}
""".strip()

# One product with a page of its variants (products/update with more than 100 variants, and the
# further variant pages of any product read here).
PRODUCT_FOR_CATALOG = (
    """
query ProductForCatalog($id: ID!, $first: Int!, $after: String) {
  product(id: $id) {
    ...CatalogProductFields
    variants(first: $first, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes { ...CatalogVariantFields }
    }
  }
}
""".strip()
    + "\n\n"
    + _CATALOG_FRAGMENTS
)

# inventory_levels/update names an inventory item only: its variant's product with the first page of
# its variants (their total quantities and everything else their items need).
PRODUCT_BY_INVENTORY_ITEM = (
    """
query ProductByInventoryItem($id: ID!, $first: Int!) {
  node(id: $id) {
    ... on InventoryItem {
      id
      variant {
        id
        product {
          ...CatalogProductFields
          variants(first: $first) {
            pageInfo { hasNextPage endCursor }
            nodes { ...CatalogVariantFields }
          }
        }
      }
    }
  }
}
""".strip()
    + "\n\n"
    + _CATALOG_FRAGMENTS
)

# Periodic reconciliation: products updated since a time (`query: "updated_at:>'…'"`), paged by id.
PRODUCTS_UPDATED_SINCE = (
    """
query ProductsUpdatedSince($query: String!, $first: Int!, $after: String, $variants: Int!) {
  products(first: $first, after: $after, query: $query, sortKey: ID) {
    pageInfo { hasNextPage endCursor }
    nodes {
      ...CatalogProductFields
      variants(first: $variants) {
        pageInfo { hasNextPage endCursor }
        nodes { ...CatalogVariantFields }
      }
    }
  }
}
""".strip()
    + "\n\n"
    + _CATALOG_FRAGMENTS
)

ALL_DOCUMENTS: dict[str, str] = {
    "PRODUCTS_BULK_QUERY": PRODUCTS_BULK_QUERY,
    "BULK_RUN_QUERY": BULK_RUN_QUERY,
    "BULK_OPERATION_NODE": BULK_OPERATION_NODE,
    "BULK_OPERATION_CANCEL": BULK_OPERATION_CANCEL,
    "SHOP_INFO": SHOP_INFO,
    "WEBHOOK_SUBSCRIPTION_CREATE": WEBHOOK_SUBSCRIPTION_CREATE,
    "WEBHOOK_SUBSCRIPTION_DELETE": WEBHOOK_SUBSCRIPTION_DELETE,
    "PRODUCT_FOR_CATALOG": PRODUCT_FOR_CATALOG,
    "PRODUCT_BY_INVENTORY_ITEM": PRODUCT_BY_INVENTORY_ITEM,
    "PRODUCTS_UPDATED_SINCE": PRODUCTS_UPDATED_SINCE,
    "NEWEST_BULK_QUERY": NEWEST_BULK_QUERY,
}
