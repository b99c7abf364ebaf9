"""MemoryStoreCore called directly (as the simulator does) and its async wrapper's options."""

from __future__ import annotations

import pytest

from dtncloud.errors import BundleNotFound, StoreError, StoreFull
from dtncloud.store import MemoryStore, MemoryStoreCore
from dtncloud.store.base import BundleMeta, StoreUsage


def meta(n: int, size: int) -> BundleMeta:
    return BundleMeta(f"ipn:1.1-{n}-0", "ipn:1.1", "ipn:2.1", n, 0, 10**6, size, n)


def test_the_core_is_synchronous_and_follows_the_contract() -> None:
    core = MemoryStoreCore(quota_bytes=10)
    core.put(meta(1, 6), b"abcdef")
    with pytest.raises(StoreError, match="already stored"):
        core.put(meta(1, 6), b"zzzzzz")
    with pytest.raises(StoreFull):
        core.put(meta(2, 5), b"12345")
    core.put(meta(3, 4), b"1234")
    assert core.usage() == StoreUsage(2, 10, 10)
    assert core.get(meta(1, 0).bundle_id) == b"abcdef"
    with pytest.raises(ValueError):
        core.update(meta(1, 7))
    with pytest.raises(BundleNotFound):
        core.update(meta(9, 1))
    assert core.delete(meta(1, 0).bundle_id)
    assert not core.delete(meta(1, 0).bundle_id)
    assert core.get_state("k") is None
    core.set_state("k", b"v")
    assert core.get_state("k") == b"v"


def test_the_core_scans_a_snapshot() -> None:
    core = MemoryStoreCore()
    for n in range(5):
        core.put(meta(n, 1), b"x")
    seen = []
    for m in core.scan():
        seen.append(m.bundle_id)
        core.delete(m.bundle_id)  # changing the store while scanning is fine
        core.put(meta(100 + len(seen), 0), b"")
    assert len(seen) == 5
    assert core.usage().bundles == 5


def test_a_quota_belongs_to_the_core() -> None:
    with pytest.raises(ValueError):
        MemoryStore(MemoryStoreCore(), quota_bytes=5)
    with pytest.raises(ValueError):
        MemoryStoreCore(quota_bytes=-1)
    assert MemoryStore(quota_bytes=5).core.quota_bytes == 5
