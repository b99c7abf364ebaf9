"""The store port: where a node keeps the bundles it has accepted.

The engine (``dtncloud.engine``) never touches a store: it emits actions (persist, update,
remove) that a shell carries out against one of the implementations here, and it rebuilds its
index from :meth:`Store.scan` when a node starts. Two implementations share one contract,
checked by one conformance suite (``tests/conformance/test_store_contract.py``):

- :class:`~dtncloud.store.sqlite.SqliteStore`: aiosqlite in WAL mode, large bundles as files
  beside the database, durable when a call returns;
- :class:`~dtncloud.store.memory.MemoryStore`: dictionaries, with a synchronous core
  (:class:`~dtncloud.store.memory.MemoryStoreCore`) that the simulator calls directly.

A stored bundle is two things: its encoded bytes, which never change once stored, and a
:class:`BundleMeta` row, which the engine updates as the bundle's retention and custody state
move on. Bundles are keyed by their bundle ID string (``str(BundleId)``), which includes the
fragment offset and length, so each fragment is a bundle of its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from enum import IntFlag
from types import TracebackType
from typing import Protocol, Self, runtime_checkable

__all__ = ["BundleMeta", "Retention", "Store", "StoreContext", "StoreUsage"]


class Retention(IntFlag):
    """Why a node still keeps a bundle (RFC 9171 section 5's retention constraints, plus
    custody). A bundle with no constraint left is deleted."""

    NONE = 0
    #: waiting for a link or contact to forward it on
    FORWARD_PENDING = 0x01
    #: addressed to a local endpoint whose application has not taken it yet
    DISPATCH_PENDING = 0x02
    #: this node is its custodian: kept until the next custodian signals acceptance
    CUSTODY_ACCEPTED = 0x04
    #: a fragment kept until the whole bundle can be reassembled here
    REASSEMBLY_PENDING = 0x08


@dataclass(frozen=True, slots=True)
class BundleMeta:
    """What the store keeps about a bundle beside its bytes.

    Times are DTN milliseconds. ``custody`` and ``routing`` are opaque to the store: the
    engine and the router each keep their per-bundle state there (CBOR), so it survives a
    restart with the bundle.
    """

    bundle_id: str
    source: str
    destination: str
    creation_time: int
    sequence: int
    #: absolute expiry time (creation time or reception time minus age, plus lifetime)
    expires_at: int
    #: length of the stored encoded bundle in bytes
    size: int
    received_at: int
    retention: Retention = Retention.FORWARD_PENDING
    #: 7 for BPv7 (RFC 9171), 6 for BPv6 (RFC 5050)
    protocol: int = 7
    fragment_offset: int | None = None
    #: length of the whole application data unit, for fragments
    total_length: int | None = None
    #: node ID of the neighbour it came from, or None when created here
    previous_node: str | None = None
    #: the bundle processing control flags (which status reports it asks for, ...)
    flags: int = 0
    #: where status reports about it go (None: nowhere, e.g. dtn:none)
    report_to: str | None = None
    custody: bytes = b""
    routing: bytes = b""

    @property
    def is_fragment(self) -> bool:
        return self.fragment_offset is not None


@dataclass(frozen=True, slots=True)
class StoreUsage:
    """How full a store is. ``quota_bytes`` is None for no limit."""

    bundles: int
    bytes: int
    quota_bytes: int | None

    @property
    def free_bytes(self) -> int | None:
        if self.quota_bytes is None:
            return None
        return max(0, self.quota_bytes - self.bytes)


class StoreContext:
    """``async with store:`` opens the store and closes it again, for the implementations."""

    async def open(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


@runtime_checkable
class Store(Protocol):
    """The async store contract.

    - :meth:`put` is atomic and durable when it returns (for a durable store): after a crash
      the bundle is there with its metadata, or not at all. It raises
      :class:`~dtncloud.errors.StoreFull` when the bundle would take usage over the quota,
      and :class:`~dtncloud.errors.StoreError` if the ID is already stored.
    - :meth:`get` and :meth:`get_meta` raise :class:`~dtncloud.errors.BundleNotFound`.
    - :meth:`update` replaces the metadata of a stored bundle (same ``bundle_id``; ``size``
      must not change) and raises ``BundleNotFound`` when it is not stored.
    - :meth:`delete` removes a bundle and returns whether it was there.
    - :meth:`scan` yields the metadata of every stored bundle, in no promised order.
    - :meth:`get_state` / :meth:`set_state` keep small named values for the node (sequence
      counters, custody transmission IDs) with the same durability as :meth:`put`.
    """

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def put(self, meta: BundleMeta, data: bytes) -> None: ...

    async def get(self, bundle_id: str) -> bytes: ...

    async def get_meta(self, bundle_id: str) -> BundleMeta: ...

    async def update(self, meta: BundleMeta) -> None: ...

    async def delete(self, bundle_id: str) -> bool: ...

    def scan(self) -> AsyncIterator[BundleMeta]: ...

    async def usage(self) -> StoreUsage: ...

    async def get_state(self, key: str) -> bytes | None: ...

    async def set_state(self, key: str, value: bytes) -> None: ...
