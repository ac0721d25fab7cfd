"""Pure mapping from what Shopify sends to catalog items: bulk JSONL lines (`assemble`) and
webhook payloads (`payloads`). No I/O, so each is tested on literal fixtures."""
