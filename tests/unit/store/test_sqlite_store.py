"""SqliteStore beyond the shared contract: layout, errors at open, recovery, group commit."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import subprocess
import sys
from collections.abc import Awaitable, Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from dtncloud.errors import StoreCorrupt, StoreError
from dtncloud.store import _schema
from dtncloud.store._writer import PutOp
from dtncloud.store.base import BundleMeta
from dtncloud.store.sqlite import DATABASE_NAME, SqliteStore

pytestmark = pytest.mark.timeout(120)


def meta(n: int, size: int) -> BundleMeta:
    return BundleMeta(
        bundle_id=f"dtn://node/app-{n}-0",
        source="dtn://node/app",
        destination="dtn://other/",
        creation_time=n,
        sequence=0,
        expires_at=10**9,
        size=size,
        received_at=0,
    )


def data(n: int, size: int) -> bytes:
    return bytes((n * 31 + i) % 256 for i in range(size))


def run(body: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(body(), 60))


def payload_files(root: Path) -> list[Path]:
    return sorted(p for p in (root / "bundles").rglob("*") if p.is_file())


def db_files(root: Path) -> set[str]:
    with sqlite3.connect(root / DATABASE_NAME) as conn:
        rows = conn.execute("SELECT file FROM bundles WHERE file IS NOT NULL").fetchall()
    conn.close()
    return {row[0] for row in rows}


def test_the_schema_has_a_column_for_every_meta_field() -> None:
    # A field added to BundleMeta without a column would silently come back as its default.
    assert set(_schema.META_COLUMNS) == {f.name for f in fields(BundleMeta)}


def test_layout_small_bundles_inline_large_ones_in_files(tmp_path: Path) -> None:
    async def body() -> None:
        async with SqliteStore(tmp_path, inline_threshold=100) as store:
            await store.put(meta(1, 100), data(1, 100))  # at the threshold: inline
            await store.put(meta(2, 101), data(2, 101))  # above: a file
            files = payload_files(tmp_path)
            assert len(files) == 1
            assert files[0].read_bytes() == data(2, 101)
            # bundles/<xx>/<hash>-<token>, the folder named by the hash's first two digits
            assert files[0].parent.parent == tmp_path / "bundles"
            assert len(files[0].parent.name) == 2
            assert await store.delete(meta(2, 0).bundle_id)
            assert payload_files(tmp_path) == []

    run(body)
    assert (tmp_path / DATABASE_NAME).is_file()
    with sqlite3.connect(tmp_path / DATABASE_NAME) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == _schema.SCHEMA_VERSION
        assert conn.execute("PRAGMA application_id").fetchone()[0] == _schema.APPLICATION_ID
    conn.close()


@pytest.mark.parametrize(("durable", "level"), [(True, 2), (False, 1)])
def test_durable_chooses_synchronous_full_or_normal(
    tmp_path: Path, durable: bool, level: int
) -> None:
    async def body() -> None:
        async with SqliteStore(tmp_path, durable=durable) as store:
            assert store._write is not None
            rows = list(await store._write.execute_fetchall("PRAGMA synchronous"))
            assert rows[0][0] == level
            await store.put(meta(1, 70_000), data(1, 70_000))
            assert await store.get(meta(1, 0).bundle_id) == data(1, 70_000)

    run(body)


# -- errors at open ----------------------------------------------------------------------------


def open_error(path: Path) -> StoreError:
    async def body() -> StoreError:
        try:
            await SqliteStore(path).open()
        except StoreError as exc:
            return exc
        raise AssertionError("open() succeeded")

    return asyncio.run(body())


def test_a_file_that_is_not_a_database_is_store_corrupt_in_one_line(tmp_path: Path) -> None:
    (tmp_path / DATABASE_NAME).write_bytes(b"this is not a database at all " * 200)
    exc = open_error(tmp_path)
    assert type(exc) is StoreCorrupt
    assert str(tmp_path / DATABASE_NAME) in str(exc)
    assert "\n" not in str(exc)
    assert exc.__cause__ is None and exc.__suppress_context__  # no sqlite3 traceback
    # The lock was released: once repaired, the store opens.
    (tmp_path / DATABASE_NAME).unlink()
    run(lambda: _open_close(tmp_path))


def test_an_unknown_schema_version_is_refused(tmp_path: Path) -> None:
    run(lambda: _open_close(tmp_path))
    with sqlite3.connect(tmp_path / DATABASE_NAME) as conn:
        conn.execute("PRAGMA user_version = 99")
    conn.close()
    exc = open_error(tmp_path)
    assert type(exc) is StoreCorrupt
    assert "schema version 99" in str(exc)
    assert str(tmp_path / DATABASE_NAME) in str(exc)


def test_another_sqlite_database_is_not_taken_for_a_store(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / DATABASE_NAME) as conn:
        conn.execute("CREATE TABLE mine (x)")
    conn.close()
    exc = open_error(tmp_path)
    assert type(exc) is StoreCorrupt
    assert "not a dtncloud store" in str(exc)


def test_a_path_that_is_a_file_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"")
    exc = open_error(tmp_path / "f")
    assert type(exc) is StoreError
    assert str(tmp_path / "f") in str(exc)


def test_two_stores_cannot_share_a_folder(tmp_path: Path) -> None:
    async def body() -> None:
        async with SqliteStore(tmp_path):
            with pytest.raises(StoreError, match="already open"):
                await SqliteStore(tmp_path).open()
        async with SqliteStore(tmp_path):  # released on close
            pass

    run(body)


async def _open_close(path: Path, **options: Any) -> SqliteStore:
    store = SqliteStore(path, **options)
    await store.open()
    await store.close()
    return store


# -- recovery ----------------------------------------------------------------------------------


def test_open_removes_tmp_files_and_orphans(tmp_path: Path) -> None:
    async def fill() -> None:
        async with SqliteStore(tmp_path, inline_threshold=0) as store:
            for n in range(5):
                await store.put(meta(n, 50), data(n, 50))

    run(fill)
    kept = payload_files(tmp_path)
    folder = kept[0].parent
    (folder / "abcdef-0123.tmp").write_bytes(b"half a bund")
    (folder / "00ff00ff-orphan").write_bytes(b"no row names me")
    (tmp_path / "bundles" / "zz").mkdir()
    (tmp_path / "bundles" / "zz" / "another-orphan").write_bytes(b"")

    async def reopen() -> None:
        store = SqliteStore(tmp_path)
        async with store:
            assert store.recovery is not None
            assert store.recovery.tmp_removed == 1
            assert store.recovery.orphans_removed == 2
            assert store.recovery.dropped == ()
            assert (await store.usage()).bundles == 5
        async with store:
            assert store.recovery.clean

    run(reopen)
    assert payload_files(tmp_path) == kept


def test_a_row_whose_payload_file_is_gone_is_dropped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def fill() -> None:
        async with SqliteStore(tmp_path, inline_threshold=10) as store:
            for n in range(4):
                await store.put(meta(n, 5 + 20 * n), data(n, 5 + 20 * n))

    run(fill)
    files = {name: tmp_path / "bundles" / name for name in db_files(tmp_path)}
    assert len(files) == 3
    lost, truncated, _ = sorted(files.values())
    lost.unlink()
    truncated.write_bytes(truncated.read_bytes()[:-1])

    async def reopen() -> None:
        store = SqliteStore(tmp_path)
        with caplog.at_level(logging.WARNING, logger="dtncloud.store"):
            await store.open()
        try:
            assert store.recovery is not None
            assert len(store.recovery.dropped) == 2
            assert all(i in caplog.text for i in store.recovery.dropped)
            remaining = [m async for m in store.scan()]
            assert len(remaining) == 2
            for m in remaining:
                assert await store.get(m.bundle_id) == data(m.creation_time, m.size)
            assert (await store.usage()).bundles == 2
        finally:
            await store.close()

    run(reopen)
    assert {p.name for p in payload_files(tmp_path)} == {Path(n).name for n in db_files(tmp_path)}


def test_a_payload_file_removed_while_open_is_store_corrupt_on_get(tmp_path: Path) -> None:
    async def body() -> None:
        async with SqliteStore(tmp_path, inline_threshold=0) as store:
            await store.put(meta(1, 10), data(1, 10))
            payload_files(tmp_path)[0].unlink()
            with pytest.raises(StoreCorrupt, match="missing"):
                await store.get(meta(1, 0).bundle_id)

    run(body)


# -- group commit ------------------------------------------------------------------------------


def test_concurrent_writes_share_commits(tmp_path: Path) -> None:
    async def body() -> None:
        async with SqliteStore(tmp_path) as store:
            assert store._writer is not None
            await asyncio.gather(*(store.put(meta(n, 100), data(n, 100)) for n in range(200)))
            assert store._writer.operations == 200
            assert store._writer.batches < 20

    run(body)


def test_a_write_sqlite_refuses_fails_alone(tmp_path: Path) -> None:
    # Pre-planning catches duplicates and missing bundles; this is the fallback for what it
    # cannot foresee: the batch is rolled back and each operation retried on its own.
    async def body() -> None:
        async with SqliteStore(tmp_path) as store:
            writer = store._writer
            assert writer is not None
            good = [store.put(meta(n, 10), data(n, 10)) for n in range(5)]
            row = _schema.meta_to_row(meta(99, 1))
            bad = PutOp("bad", (*row[:-1], object()), 1, None, b"x")  # unbindable value
            store._counters.reserved += 1
            results = await asyncio.gather(
                *good[:2], writer.submit(bad), *good[2:], return_exceptions=True
            )
            assert [type(r).__name__ for r in results] == [
                *["NoneType"] * 2,
                "StoreError",
                *["NoneType"] * 3,
            ]
            assert (await store.usage()).bundles == 5
            assert store._counters.reserved == 0
            with pytest.raises(StoreError):
                await store.get_meta("bad")

    run(body)


def test_a_cancelled_put_leaves_the_store_consistent(tmp_path: Path) -> None:
    async def body() -> None:
        async with SqliteStore(tmp_path, inline_threshold=0, quota_bytes=1000) as store:
            tasks = [asyncio.create_task(store.put(meta(n, 100), data(n, 100))) for n in range(6)]
            await asyncio.sleep(0)  # let them start, then cancel half at various points
            for task in tasks[::2]:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await store.put(meta(50, 1), b"x")  # the writer has run everything before this
            stored = [m.bundle_id async for m in store.scan()]
            for n in range(1, 6, 2):
                assert meta(n, 0).bundle_id in stored
            assert store._counters.reserved == 0
            assert (await store.usage()).bytes == 100 * (len(stored) - 1) + 1
        store = SqliteStore(tmp_path)
        async with store:
            assert store.recovery is not None
            assert store.recovery.dropped == ()
        assert len(payload_files(tmp_path)) == len(stored)

    run(body)


def test_close_waits_for_puts_in_flight_and_leaves_no_debris(tmp_path: Path) -> None:
    async def body() -> None:
        store = SqliteStore(tmp_path, inline_threshold=0)
        await store.open()
        tasks = [asyncio.create_task(store.put(meta(n, 5000), data(n, 5000))) for n in range(20)]
        await asyncio.sleep(0)  # every put has started (checked the store is open)
        tasks[3].cancel()
        await store.close()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert all(r is None or isinstance(r, StoreError | asyncio.CancelledError) for r in results)
        stored = {meta(n, 0).bundle_id for n, r in enumerate(results) if r is None}
        assert {Path(n).name for n in db_files(tmp_path)} == {
            p.name for p in payload_files(tmp_path)
        }
        again = SqliteStore(tmp_path)
        async with again:
            assert again.recovery is not None and again.recovery.clean
            assert stored <= {m.bundle_id async for m in again.scan()}

    run(body)


@pytest.mark.slow
def test_a_hundred_thousand_bundles_scan_in_bounded_memory(tmp_path: Path) -> None:
    import tracemalloc

    count = 100_000

    async def body() -> None:
        async with SqliteStore(tmp_path, durable=False) as store:
            for start in range(0, count, 2000):
                await asyncio.gather(
                    *(store.put(meta(n, 1), b"x") for n in range(start, start + 2000))
                )
        async with SqliteStore(tmp_path) as store:
            tracemalloc.start()
            try:
                seen = 0
                async for _ in store.scan():
                    seen += 1
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            assert seen == count
            # One page of rows at a time, not 100,000 of them (tens of MB).
            assert peak < 5_000_000, peak

    run(body)


def test_payload_files_are_named_apart_from_bundle_ids(tmp_path: Path) -> None:
    # IDs with "/" and ":" must not escape bundles/; two puts of one ID never share a file.
    async def body() -> None:
        async with SqliteStore(tmp_path, inline_threshold=0) as store:
            odd = BundleMeta("../../etc/passwd:x", "a", "b", 0, 0, 1, 3, 0)
            await store.put(odd, b"abc")
            with pytest.raises(StoreError):
                await store.put(odd, b"xyz")
            assert await store.get(odd.bundle_id) == b"abc"

    run(body)
    assert all(p.is_relative_to(tmp_path / "bundles") for p in payload_files(tmp_path))
    assert len(payload_files(tmp_path)) == 1
    assert not os.path.exists(tmp_path.parent / "etc")


def test_a_store_left_open_does_not_keep_the_program_from_exiting(tmp_path: Path) -> None:
    script = (
        "import asyncio, sys\n"
        "from dtncloud.store.sqlite import SqliteStore\n"
        "async def main():\n"
        "    store = SqliteStore(sys.argv[1])\n"
        "    await store.open()\n"
        "    sys.modules['__main__'].leaked = store\n"
        "asyncio.run(main())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], timeout=60, capture_output=True
    )
    assert done.returncode == 0, done.stderr
