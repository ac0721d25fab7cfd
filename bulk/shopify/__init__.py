"""Talking to the Shopify Admin API: the cost-paced client, the documents we send (validated
against the stored Admin schema, kept here too), the bulk-operation wire values and the consistent
product reads of the webhook path."""
