"""The MongoDB store: the `CatalogStore` (`store`), its batched item writer (`items`) and its
change feed (`feed`: change streams, or polling where the deployment offers none)."""
