"""One conformance suite for every store (dtncloud/store/base.py, the Store contract).

Each test runs against MemoryStore, SqliteStore with bundles inline in the database, and
SqliteStore with every non-empty bundle in a payload file (``inline_threshold=0``), through
the Store interface only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from dtncloud.errors import BundleNotFound, StoreError, StoreFull
from dtncloud.store import MemoryStore, MemoryStoreCore
from dtncloud.store.base import BundleMeta, Retention, Store
from dtncloud.store.sqlite import SqliteStore

pytestmark = pytest.mark.timeout(120)

TIMEOUT = 60


@dataclass
class Harness:
    """Makes stores of one kind, and "restarts" them: close, then a new object over the same
    contents (the same folder, or the same MemoryStoreCore)."""

    kind: str
    tmp: Path

    def new(self, *, quota_bytes: int | None = None) -> Store:
        if self.kind == "memory":
            return MemoryStore(MemoryStoreCore(quota_bytes=quota_bytes))
        threshold = 0 if self.kind == "sqlite-files" else 65536
        return SqliteStore(self.tmp / "store", quota_bytes=quota_bytes, inline_threshold=threshold)

    async def reopen(self, store: Store) -> Store:
        await store.close()
        if isinstance(store, MemoryStore):
            again: Store = MemoryStore(store.core)
        else:
            assert isinstance(store, SqliteStore)
            again = SqliteStore(
                store.directory,
                quota_bytes=store.quota_bytes,
                inline_threshold=store.inline_threshold,
            )
        await again.open()
        return again


KINDS = ["memory", "sqlite-inline", "sqlite-files"]


@pytest.fixture(params=KINDS)
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Harness:
    return Harness(str(request.param), tmp_path)


Body = Callable[[Store], Awaitable[None]]


def run(harness: Harness, body: Body, *, quota_bytes: int | None = None) -> None:
    """Open a new store, run ``body`` on it, close it (whatever store body left open)."""

    async def main() -> None:
        store = harness.new(quota_bytes=quota_bytes)
        await store.open()
        try:
            await asyncio.wait_for(body(store), TIMEOUT)
        finally:
            await store.close()

    asyncio.run(main())


def meta(n: int, size: int, **changes: Any) -> BundleMeta:
    m = BundleMeta(
        bundle_id=f"ipn:1.1-{1000 + n}-{n}",
        source="ipn:1.1",
        destination="ipn:2.1",
        creation_time=1000 + n,
        sequence=n,
        expires_at=90_000 + n,
        size=size,
        received_at=2000 + n,
    )
    return replace(m, **changes)


def data(n: int, size: int) -> bytes:
    return bytes((n + i) % 251 for i in range(size))


async def put(store: Store, n: int, size: int, **changes: Any) -> BundleMeta:
    m = meta(n, size, **changes)
    await store.put(m, data(n, size))
    return m


async def contents(store: Store) -> dict[str, BundleMeta]:
    found: dict[str, BundleMeta] = {}
    async for m in store.scan():
        assert m.bundle_id not in found, f"scan yielded {m.bundle_id} twice"
        found[m.bundle_id] = m
    return found


# -- put, get, get_meta ------------------------------------------------------------------------


def test_a_store_is_a_store(harness: Harness) -> None:
    assert isinstance(harness.new(), Store)


@pytest.mark.parametrize("size", [0, 1, 100, 65536, 65537, 200_000])
def test_put_then_get_returns_the_bytes_and_the_meta(harness: Harness, size: int) -> None:
    async def body(store: Store) -> None:
        m = await put(store, 1, size)
        assert await store.get(m.bundle_id) == data(1, size)
        assert await store.get_meta(m.bundle_id) == m

    run(harness, body)


def test_every_meta_field_round_trips(harness: Harness) -> None:
    # Non-default values everywhere, and integers at the edges of CBOR's unsigned range.
    big = 2**64 - 1
    full = meta(
        7,
        10,
        creation_time=big,
        sequence=big,
        expires_at=2**63,
        received_at=2**63 - 1,
        retention=Retention.CUSTODY_ACCEPTED | Retention.REASSEMBLY_PENDING,
        protocol=6,
        fragment_offset=big,
        total_length=2**40,
        previous_node="dtn://neighbour/",
        flags=0x3F_FFFF,
        report_to="dtn://reports/ünïcode",
        custody=b"\x00\xffcustody",
        routing=bytes(range(256)),
    )
    empty_ish = meta(8, 3, bundle_id="dtn://n/é-0-0", fragment_offset=0, total_length=0)

    async def body(store: Store) -> None:
        for m in (full, empty_ish):
            await store.put(m, data(0, m.size))
        store = await harness.reopen(store)
        try:
            for m in (full, empty_ish):
                got = await store.get_meta(m.bundle_id)
                assert got == m
                assert isinstance(got.retention, Retention)
            assert await contents(store) == {full.bundle_id: full, empty_ish.bundle_id: empty_ish}
        finally:
            await store.close()

    run(harness, body)


def test_get_and_get_meta_of_a_missing_bundle_raise_bundle_not_found(harness: Harness) -> None:
    async def body(store: Store) -> None:
        await put(store, 1, 10)
        for call in (store.get, store.get_meta):
            with pytest.raises(BundleNotFound):
                await call("ipn:9.9-1-1")

    run(harness, body)


def test_put_of_a_stored_id_raises_store_error_and_keeps_the_original(harness: Harness) -> None:
    async def body(store: Store) -> None:
        first = await put(store, 1, 50)
        other = replace(first, destination="ipn:3.1", received_at=1)
        with pytest.raises(StoreError, match="already stored") as info:
            await store.put(other, b"y" * 50)
        assert not isinstance(info.value, StoreFull)
        assert await store.get(first.bundle_id) == data(1, 50)
        assert await store.get_meta(first.bundle_id) == first
        assert (await store.usage()).bundles == 1

    run(harness, body)


def test_put_of_a_stored_id_into_a_full_store_is_still_a_duplicate(harness: Harness) -> None:
    async def body(store: Store) -> None:
        first = await put(store, 1, 100)
        with pytest.raises(StoreError) as info:
            await store.put(first, data(1, 100))
        assert not isinstance(info.value, StoreFull)

    run(harness, body, quota_bytes=100)


def test_put_checks_its_arguments(harness: Harness) -> None:
    async def body(store: Store) -> None:
        with pytest.raises(ValueError, match="size"):
            await store.put(meta(1, 10), b"x" * 11)
        with pytest.raises(TypeError):
            await store.put(meta(2, 1, sequence="3"), b"x")
        with pytest.raises(TypeError):
            await store.put(meta(3, 1, custody="text"), b"x")
        with pytest.raises(TypeError):
            await store.put(meta(4, 1), "x")  # type: ignore[arg-type]
        assert await contents(store) == {}
        assert (await store.usage()).bytes == 0

    run(harness, body)


def test_put_copies_a_mutable_buffer(harness: Harness) -> None:
    async def body(store: Store) -> None:
        buffer = bytearray(b"abcdef")
        m = meta(1, 6)
        await store.put(m, buffer)  # type: ignore[arg-type]
        buffer[:] = b"zzzzzz"
        assert await store.get(m.bundle_id) == b"abcdef"

    run(harness, body)


# -- update and delete ---------------------------------------------------------------------


def test_update_replaces_the_meta_and_keeps_the_bytes(harness: Harness) -> None:
    async def body(store: Store) -> None:
        m = await put(store, 1, 300)
        new = replace(m, retention=Retention.NONE, routing=b"\x01", custody=b"c", flags=4)
        await store.update(new)
        assert await store.get_meta(m.bundle_id) == new
        assert await store.get(m.bundle_id) == data(1, 300)
        assert await store.usage() == (await store.usage()).__class__(1, 300, None)
        store = await harness.reopen(store)
        try:
            assert await store.get_meta(m.bundle_id) == new
        finally:
            await store.close()

    run(harness, body)


def test_update_of_a_missing_bundle_raises_bundle_not_found(harness: Harness) -> None:
    async def body(store: Store) -> None:
        with pytest.raises(BundleNotFound):
            await store.update(meta(1, 10))
        assert await contents(store) == {}

    run(harness, body)


def test_update_may_not_change_the_size(harness: Harness) -> None:
    async def body(store: Store) -> None:
        m = await put(store, 1, 10)
        with pytest.raises(ValueError, match="size"):
            await store.update(replace(m, size=11, sequence=99))
        assert await store.get_meta(m.bundle_id) == m
        assert (await store.usage()).bytes == 10

    run(harness, body)


def test_delete_returns_whether_the_bundle_was_there(harness: Harness) -> None:
    async def body(store: Store) -> None:
        a = await put(store, 1, 10)
        b = await put(store, 2, 20)
        assert await store.delete(a.bundle_id) is True
        assert await store.delete(a.bundle_id) is False
        assert await store.delete("never:stored") is False
        with pytest.raises(BundleNotFound):
            await store.get(a.bundle_id)
        assert await contents(store) == {b.bundle_id: b}
        # The ID is free again.
        again = await put(store, 1, 5)
        assert await store.get(again.bundle_id) == data(1, 5)

    run(harness, body)


# -- usage and quota -------------------------------------------------------------------------


def test_usage_counts_bundles_and_bytes(harness: Harness) -> None:
    async def body(store: Store) -> None:
        usage = await store.usage()
        assert (usage.bundles, usage.bytes, usage.quota_bytes) == (0, 0, 10_000)
        for n, size in enumerate([0, 10, 2000]):
            await put(store, n, size)
        usage = await store.usage()
        assert (usage.bundles, usage.bytes, usage.free_bytes) == (3, 2010, 7990)
        await store.delete(meta(2, 0).bundle_id)
        assert (await store.usage()).bytes == 10
        store = await harness.reopen(store)
        try:
            assert await store.usage() == usage.__class__(2, 10, 10_000)
        finally:
            await store.close()

    run(harness, body, quota_bytes=10_000)


def test_quota_refuses_what_does_not_fit_and_stores_nothing_of_it(harness: Harness) -> None:
    async def body(store: Store) -> None:
        await put(store, 1, 600)
        await put(store, 2, 400)  # exactly the quota
        with pytest.raises(StoreFull):
            await put(store, 3, 1)
        with pytest.raises(BundleNotFound):
            await store.get_meta(meta(3, 1).bundle_id)
        await put(store, 4, 0)  # an empty bundle always fits
        assert await store.delete(meta(1, 0).bundle_id)
        with pytest.raises(StoreFull):
            await put(store, 5, 601)
        await put(store, 5, 600)
        assert (await store.usage()).bytes == 1000

    run(harness, body, quota_bytes=1000)


def test_concurrent_puts_cannot_overrun_the_quota_together(harness: Harness) -> None:
    async def body(store: Store) -> None:
        results = await asyncio.gather(
            *(put(store, n, 100) for n in range(10)), return_exceptions=True
        )
        full = [r for r in results if isinstance(r, StoreFull)]
        assert len(full) == 5
        assert all(isinstance(r, BundleMeta | StoreFull) for r in results)
        assert (await store.usage()).bytes == 500
        assert len(await contents(store)) == 5

    run(harness, body, quota_bytes=550)


def test_near_the_quota_concurrent_puts_decide_as_one_at_a_time(harness: Harness) -> None:
    # A duplicate in flight must not hold room that a later put needs: the outcome is the
    # one the calls would have had in order (SqliteStore waits for in-flight puts to settle).
    async def body(store: Store) -> None:
        first = await put(store, 1, 700)
        results = await asyncio.gather(
            store.put(first, data(1, 700)),  # duplicate: refused, gives its room back
            put(store, 2, 300),
            put(store, 3, 700),  # fits only because the duplicate takes nothing
            put(store, 4, 301),  # 2001 > 2000
            put(store, 5, 300),  # exactly the quota
            return_exceptions=True,
        )
        assert [type(r).__name__ for r in results] == [
            "StoreError",
            "BundleMeta",
            "BundleMeta",
            "StoreFull",
            "BundleMeta",
        ]
        assert (await store.usage()).bytes == 2000

    run(harness, body, quota_bytes=2000)


# -- state -----------------------------------------------------------------------------------


def test_state_values_are_kept_and_replaced_and_survive_a_restart(harness: Harness) -> None:
    async def body(store: Store) -> None:
        assert await store.get_state("sequence") is None
        await store.set_state("sequence", b"\x01")
        await store.set_state("sequence", b"\x02")
        await store.set_state("empty", b"")
        await store.set_state("big", bytes(100_000))
        assert await store.get_state("sequence") == b"\x02"
        assert (await store.usage()).bytes == 0  # state is not bundle storage
        store = await harness.reopen(store)
        try:
            assert await store.get_state("sequence") == b"\x02"
            assert await store.get_state("empty") == b""
            assert await store.get_state("big") == bytes(100_000)
            assert await store.get_state("other") is None
        finally:
            await store.close()

    run(harness, body)


# -- scan ------------------------------------------------------------------------------------


def test_scan_of_an_empty_store_yields_nothing(harness: Harness) -> None:
    async def body(store: Store) -> None:
        assert await contents(store) == {}

    run(harness, body)


def test_scan_yields_every_bundle_once(harness: Harness) -> None:
    count = 1_234  # more than two of SqliteStore's pages

    async def body(store: Store) -> None:
        expected = {}
        for start in range(0, count, 200):
            batch = [meta(n, n % 7) for n in range(start, min(count, start + 200))]
            await asyncio.gather(*(store.put(m, data(0, m.size)) for m in batch))
            expected.update({m.bundle_id: m for m in batch})
        assert await contents(store) == expected

    run(harness, body)


def test_scan_goes_on_while_bundles_are_deleted_and_put(harness: Harness) -> None:
    # A bundle stored for the whole scan is yielded exactly once; one deleted or put while
    # the scan runs may or may not be (MemoryStore scans a snapshot, SqliteStore pages).
    count = 1100

    async def body(store: Store) -> None:
        for start in range(0, count, 220):
            await asyncio.gather(*(put(store, n, 3) for n in range(start, start + 220)))
        doomed = {meta(n + 1, 0).bundle_id for n in range(0, count, 10)}
        seen: dict[str, BundleMeta] = {}
        async for m in store.scan():
            assert m.bundle_id not in seen
            seen[m.bundle_id] = m
            n = m.sequence
            if n < count and n % 10 == 0:
                await store.delete(meta(n + 1, 0).bundle_id)
                await put(store, 10_000 + n, 1)
        initial = {meta(n, 0).bundle_id for n in range(count)}
        newcomers = {meta(n, 0).bundle_id for n in range(10_000, 10_000 + count, 10)}
        assert initial - doomed <= set(seen) <= initial | newcomers
        remaining = await contents(store)
        assert set(remaining) == (initial - doomed) | newcomers

    run(harness, body)


# -- lifecycle ----------------------------------------------------------------------------


def test_a_reopened_store_has_the_same_contents(harness: Harness) -> None:
    async def body(store: Store) -> None:
        stored = {}
        for n in range(30):
            m = await put(store, n, n * 97)
            stored[m.bundle_id] = m
        for n in range(0, 30, 3):
            await store.delete(meta(n, 0).bundle_id)
            del stored[meta(n, 0).bundle_id]
        usage = await store.usage()
        store = await harness.reopen(store)
        try:
            assert await contents(store) == stored
            for m in stored.values():
                assert await store.get(m.bundle_id) == data(m.sequence, m.size)
            assert await store.usage() == usage
        finally:
            await store.close()

    run(harness, body)


def test_a_closed_store_refuses_calls(harness: Harness) -> None:
    async def main() -> None:
        store = harness.new()
        with pytest.raises(StoreError):
            await store.get("x")
        async with store:  # type: ignore[attr-defined]
            m = await put(store, 1, 10)
            with pytest.raises(StoreError, match="already open"):
                await store.open()
        await store.close()  # closing twice is harmless
        calls: list[Callable[[], Awaitable[Any]]] = [
            lambda: store.put(meta(2, 1), b"x"),
            lambda: store.get(m.bundle_id),
            lambda: store.get_meta(m.bundle_id),
            lambda: store.update(m),
            lambda: store.delete(m.bundle_id),
            lambda: store.usage(),
            lambda: store.get_state("k"),
            lambda: store.set_state("k", b"v"),
            lambda: contents(store),
        ]
        for call in calls:
            with pytest.raises(StoreError):
                await call()
        await store.open()  # and it opens again
        try:
            assert await store.get(m.bundle_id) == data(1, 10)
        finally:
            await store.close()

    asyncio.run(main())


def test_concurrent_calls_each_get_their_own_outcome(harness: Harness) -> None:
    # Under SqliteStore these gather into one group commit; a bad call fails alone.
    async def body(store: Store) -> None:
        a = await put(store, 1, 10)
        b = await put(store, 2, 20)
        calls = [
            put(store, 3, 30),
            store.put(a, data(1, 10)),  # duplicate
            store.update(replace(b, retention=Retention.NONE)),
            store.update(meta(9, 1)),  # missing
            store.update(replace(a, size=11)),  # size change
            store.delete(meta(8, 0).bundle_id),  # missing
            store.delete(a.bundle_id),
            store.set_state("k", b"v"),
            put(store, 4, 40_000),
        ]
        results = await asyncio.gather(*calls, return_exceptions=True)
        assert isinstance(results[0], BundleMeta)
        assert type(results[1]) is StoreError
        assert results[2] is None
        assert isinstance(results[3], BundleNotFound)
        assert isinstance(results[4], ValueError | BundleNotFound)  # a may be gone by then
        assert results[5] is False
        assert results[6] is True
        assert results[7] is None
        assert isinstance(results[8], BundleMeta)
        assert set(await contents(store)) == {
            b.bundle_id,
            meta(3, 0).bundle_id,
            meta(4, 0).bundle_id,
        }
        assert (await store.get_meta(b.bundle_id)).retention == Retention.NONE
        assert await store.get(meta(4, 0).bundle_id) == data(4, 40_000)
        assert await store.get_state("k") == b"v"
        assert await store.usage() == (await store.usage()).__class__(3, 40_050, None)

    run(harness, body)


def test_many_concurrent_puts_are_all_stored(harness: Harness) -> None:
    async def body(store: Store) -> None:
        sizes = [(n * 7919) % 3000 for n in range(300)]
        await asyncio.gather(*(put(store, n, size) for n, size in enumerate(sizes)))
        for n, size in enumerate(sizes):
            assert await store.get(meta(n, size).bundle_id) == data(n, size)
        assert (await store.usage()).bytes == sum(sizes)

    run(harness, body)
