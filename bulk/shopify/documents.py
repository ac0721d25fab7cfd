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
              updatedAt
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

# Webhook follow-ups (bulk.webhooks.apply): the product fields the catalog items need, the same as
# the bulk query's, so a product read here becomes the same items as its bulk lines. Pages are sized
# by cost (`variants_page_size`): a variant node costs 7 points (itself, selectedOptions,
# inventoryItem, media(first: 1) = 2 + its MediaImage and image), the product around it 5.
MAX_QUERY_COST = 1000  # Shopify refuses a single query above this
VARIANT_NODE_COST = 7
PRODUCT_READ_COST = 5  # the product, featuredMedia, its preview and image, options
PRODUCT_VARIANTS_PAGE_SIZE = 50  # the first page of a product read (most products have fewer)
MAX_PAGE = 250  # Shopify's largest `first`, and the most ids `nodes(ids:)` takes


def variants_page_size(available: float, *, floor: int = PRODUCT_VARIANTS_PAGE_SIZE) -> int:
    """`first` of a further variants page of a product read: as large as fits both Shopify's
    per-query limit and the points the shop's budget has now (never below `floor`, so a busy bucket
    still makes progress; the scheduler then waits for the points)."""
    fits = int((min(available, MAX_QUERY_COST) - PRODUCT_READ_COST - 2) // VARIANT_NODE_COST)
    return max(floor, min(MAX_PAGE, fits))

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
  updatedAt
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

# Periodic reconciliation: the ids and updatedAt of the products updated since a time (1 point each);
# only those the catalog holds older data of are then read whole (PRODUCT_FOR_CATALOG).
PRODUCTS_CHANGED_SINCE = """
query ProductsChangedSince($query: String!, $first: Int!, $after: String) {
  products(first: $first, after: $after, query: $query, sortKey: ID) {
    pageInfo { hasNextPage endCursor }
    nodes { id updatedAt }
  }
}
""".strip()

# inventory_levels/update names an inventory item only; the catalog knows its variant. The pending
# variants of a batch are read in one call of at most 250 ids, each selecting only its total quantity
# and the time it was true (1 point per id: selecting the inventory item too would double it).
VARIANT_INVENTORY = """
query VariantInventory($ids: [ID!]!) {
  nodes(ids: $ids) {
    ... on ProductVariant { id inventoryQuantity updatedAt }
  }
}
""".strip()
VARIANT_INVENTORY_COST = 1

# Reconciliation of inventory: an inventory change moves its variant's updatedAt, not its product's,
# so `products(query: "updated_at:…")` misses it; variants are listed by their own updatedAt
# (3 points per variant: it, its inventory item and its product's id).
VARIANTS_UPDATED_SINCE = """
query VariantsUpdatedSince($query: String!, $first: Int!, $after: String) {
  productVariants(first: $first, after: $after, query: $query, sortKey: ID) {
    pageInfo { hasNextPage endCursor }
    nodes {
      id
      inventoryQuantity
      updatedAt
      inventoryItem { id }
      product { id }
    }
  }
}
""".strip()
VARIANT_CHANGE_COST = 3

# Reconciliation of deletes: every product id (1 point per id, 252 per page of 250), compared with the
# catalog's. A count first would be cheaper but cannot tell a missed delete from a product the
# catalog skips (no variant that syncs) created meanwhile.
PRODUCT_IDS = """
query ProductIds($first: Int!, $after: String) {
  products(first: $first, after: $after, sortKey: ID) {
    pageInfo { hasNextPage endCursor }
    nodes { id }
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
    "PRODUCT_FOR_CATALOG": PRODUCT_FOR_CATALOG,
    "NEWEST_BULK_QUERY": NEWEST_BULK_QUERY,
    "PRODUCTS_CHANGED_SINCE": PRODUCTS_CHANGED_SINCE,
    "VARIANT_INVENTORY": VARIANT_INVENTORY,
    "VARIANTS_UPDATED_SINCE": VARIANTS_UPDATED_SINCE,
    "PRODUCT_IDS": PRODUCT_IDS,
}
