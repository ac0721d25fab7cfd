"""Talking to the Shopify Admin API: the cost-paced client, the documents we send (validated
against the stored Admin schema), and that schema."""
