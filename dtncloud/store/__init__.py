"""Bundle stores: the :class:`~dtncloud.store.base.Store` port and its implementations."""

from dtncloud.store.base import BundleMeta, Retention, Store, StoreUsage

__all__ = ["BundleMeta", "Retention", "Store", "StoreUsage"]
