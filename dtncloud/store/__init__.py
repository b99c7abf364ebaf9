"""Bundle stores: the :class:`~dtncloud.store.base.Store` port and its implementations.

:class:`~dtncloud.store.sqlite.SqliteStore` is not re-exported here: it needs asyncio and
aiosqlite, and the sans-IO core imports this package (for BundleMeta). Import it from
:mod:`dtncloud.store.sqlite`.
"""

from dtncloud.store.base import BundleMeta, Retention, Store, StoreUsage
from dtncloud.store.memory import MemoryStore, MemoryStoreCore

__all__ = ["BundleMeta", "MemoryStore", "MemoryStoreCore", "Retention", "Store", "StoreUsage"]
