"""A store in dictionaries: for tests, for the simulator, and for nodes that need no durability.

:class:`MemoryStoreCore` is synchronous; the simulator, which runs in virtual time with no
event loop, calls it directly. :class:`MemoryStore` is the async
:class:`~dtncloud.store.base.Store` around a core. A core outlives its wrappers, so a simulated
node can "restart" (close its store, build a new :class:`MemoryStore` over the same core) and
find what it had stored, the way a daemon finds its SqliteStore again.

Both follow the same contract as :class:`~dtncloud.store.sqlite.SqliteStore`, checked by the
same conformance suite, including the quota and the exceptions.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

from dtncloud.errors import BundleNotFound, StoreError, StoreFull
from dtncloud.store._check import check_meta, check_put, check_state, check_update_size
from dtncloud.store.base import BundleMeta, StoreContext, StoreUsage

__all__ = ["MemoryStore", "MemoryStoreCore"]


class MemoryStoreCore:
    """The contents of an in-memory store, with synchronous methods.

    Semantics are those of :class:`~dtncloud.store.base.Store`, call for call: ``put`` raises
    ``StoreError`` for an ID already stored and ``StoreFull`` over the quota, ``get``,
    ``get_meta`` and ``update`` raise ``BundleNotFound``, ``update`` raises ``ValueError`` if
    the size changes. Stored bytes are immutable ``bytes``, so nothing is copied on ``get``.
    """

    def __init__(self, *, quota_bytes: int | None = None) -> None:
        if quota_bytes is not None and quota_bytes < 0:
            raise ValueError(f"quota_bytes must be None or >= 0, got {quota_bytes}")
        self.quota_bytes = quota_bytes
        self._meta: dict[str, BundleMeta] = {}
        self._data: dict[str, bytes] = {}
        self._state: dict[str, bytes] = {}
        self._bytes = 0

    def put(self, meta: BundleMeta, data: bytes) -> None:
        data = check_put(meta, data)
        if meta.bundle_id in self._meta:
            raise StoreError(f"bundle {meta.bundle_id} is already stored")
        if self.quota_bytes is not None and self._bytes + meta.size > self.quota_bytes:
            raise StoreFull(_full_message(meta, self._bytes, self.quota_bytes))
        self._meta[meta.bundle_id] = meta
        self._data[meta.bundle_id] = data
        self._bytes += meta.size

    def get(self, bundle_id: str) -> bytes:
        try:
            return self._data[bundle_id]
        except KeyError:
            raise BundleNotFound(f"bundle {bundle_id} is not stored") from None

    def get_meta(self, bundle_id: str) -> BundleMeta:
        try:
            return self._meta[bundle_id]
        except KeyError:
            raise BundleNotFound(f"bundle {bundle_id} is not stored") from None

    def update(self, meta: BundleMeta) -> None:
        check_meta(meta)
        old = self.get_meta(meta.bundle_id)
        check_update_size(meta, old.size)
        self._meta[meta.bundle_id] = meta

    def delete(self, bundle_id: str) -> bool:
        meta = self._meta.pop(bundle_id, None)
        if meta is None:
            return False
        del self._data[bundle_id]
        self._bytes -= meta.size
        return True

    def scan(self) -> Iterator[BundleMeta]:
        """The metadata of every bundle, from a snapshot: the caller may put and delete while
        it iterates."""
        return iter(list(self._meta.values()))

    def usage(self) -> StoreUsage:
        return StoreUsage(bundles=len(self._meta), bytes=self._bytes, quota_bytes=self.quota_bytes)

    def get_state(self, key: str) -> bytes | None:
        return self._state.get(key)

    def set_state(self, key: str, value: bytes) -> None:
        check_state(key, value)
        self._state[key] = value


def _full_message(meta: BundleMeta, used: int, quota: int) -> str:
    return (
        f"store full: bundle {meta.bundle_id} ({meta.size} bytes) does not fit, "
        f"{used} of {quota} bytes in use"
    )


class MemoryStore(StoreContext):
    """The async :class:`~dtncloud.store.base.Store` over a :class:`MemoryStoreCore`.

    ``MemoryStore()`` makes a new core (with ``quota_bytes``); ``MemoryStore(core)`` wraps an
    existing one, whose quota then applies. Like SqliteStore it must be opened (``await
    store.open()`` or ``async with``) before use and raises ``StoreError`` when closed.
    """

    def __init__(
        self, core: MemoryStoreCore | None = None, *, quota_bytes: int | None = None
    ) -> None:
        if core is not None and quota_bytes is not None:
            raise ValueError("give quota_bytes to the MemoryStoreCore, not to a wrapper of it")
        self.core = core if core is not None else MemoryStoreCore(quota_bytes=quota_bytes)
        self._open = False

    def _checked(self) -> MemoryStoreCore:
        if not self._open:
            raise StoreError("the store is not open")
        return self.core

    async def open(self) -> None:
        if self._open:
            raise StoreError("the store is already open")
        self._open = True

    async def close(self) -> None:
        self._open = False

    async def put(self, meta: BundleMeta, data: bytes) -> None:
        self._checked().put(meta, data)

    async def get(self, bundle_id: str) -> bytes:
        return self._checked().get(bundle_id)

    async def get_meta(self, bundle_id: str) -> BundleMeta:
        return self._checked().get_meta(bundle_id)

    async def update(self, meta: BundleMeta) -> None:
        self._checked().update(meta)

    async def delete(self, bundle_id: str) -> bool:
        return self._checked().delete(bundle_id)

    async def scan(self) -> AsyncIterator[BundleMeta]:
        for meta in self._checked().scan():
            yield meta

    async def usage(self) -> StoreUsage:
        return self._checked().usage()

    async def get_state(self, key: str) -> bytes | None:
        return self._checked().get_state(key)

    async def set_state(self, key: str, value: bytes) -> None:
        self._checked().set_state(key, value)
