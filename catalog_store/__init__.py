"""Catalog storage: the CatalogStore protocol, its MongoDB and in-memory implementations."""
