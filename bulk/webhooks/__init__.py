"""Near-real-time: verified webhook deliveries applied to the catalog, and periodic reconciliation."""
