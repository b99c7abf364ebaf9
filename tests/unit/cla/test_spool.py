"""IncomingTransfer: small transfers stay in memory, large ones go to a spool file, written
inline or by a SpoolWriter thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from dtncloud.cla.spool import (
    MAX_PENDING_BYTES,
    PREFIX_SIZE,
    IncomingTransfer,
    SpoolWriter,
    remove_spool_file,
)


@pytest.fixture(params=["inline", "thread"])
def writer(request: pytest.FixtureRequest) -> Iterator[SpoolWriter | None]:
    if request.param == "inline":
        yield None
        return
    spool_writer = SpoolWriter()
    yield spool_writer
    spool_writer.close()


def feed(transfer: IncomingTransfer, *chunks: bytes) -> None:
    async def main() -> None:
        for chunk in chunks:
            await transfer.append(chunk)

    asyncio.run(main())


def finish(transfer: IncomingTransfer) -> tuple[bytes | None, Path | None]:
    return asyncio.run(transfer.finish())


def test_a_small_transfer_stays_in_memory(tmp_path: Path, writer: SpoolWriter | None) -> None:
    transfer = IncomingTransfer(0, tmp_path, threshold=100, writer=writer)
    feed(transfer, b"a" * 60, b"b" * 40)
    assert finish(transfer) == (b"a" * 60 + b"b" * 40, None)
    assert list(tmp_path.iterdir()) == []


def test_growing_past_the_threshold_spills_to_a_file(
    tmp_path: Path, writer: SpoolWriter | None
) -> None:
    transfer = IncomingTransfer(1, tmp_path, threshold=100, writer=writer)
    chunks = [bytes([i]) * 70 for i in range(5)]
    feed(transfer, *chunks)
    data, path = finish(transfer)
    assert data is None and path is not None and path.parent == tmp_path
    assert path.read_bytes() == b"".join(chunks)
    assert transfer.length == 350


def test_many_megabytes_keep_their_order_through_the_thread(
    tmp_path: Path, writer: SpoolWriter | None
) -> None:
    transfer = IncomingTransfer(2, tmp_path, threshold=10, expected_length=1, writer=writer)
    chunks = [bytes([i % 251]) * (1 << 20) for i in range(3 * MAX_PENDING_BYTES >> 20)]
    feed(transfer, *chunks)
    _, path = finish(transfer)
    assert path is not None and path.read_bytes() == b"".join(chunks)


def test_an_announced_large_length_spills_at_once(tmp_path: Path) -> None:
    transfer = IncomingTransfer(2, tmp_path, threshold=100, expected_length=10_000)
    assert transfer.path is not None and transfer.path.exists()
    feed(transfer, b"x" * 10)
    assert finish(transfer) == (None, transfer.path)


def test_the_prefix_survives_spilling(tmp_path: Path) -> None:
    transfer = IncomingTransfer(3, tmp_path, threshold=10)
    body = bytes(range(256)) * 40
    feed(transfer, *(body[offset : offset + 1000] for offset in range(0, len(body), 1000)))
    assert transfer.prefix == body[:PREFIX_SIZE]


def test_discard_removes_the_spool_file(tmp_path: Path, writer: SpoolWriter | None) -> None:
    transfer = IncomingTransfer(4, tmp_path, threshold=10, writer=writer)
    feed(transfer, b"y" * 100)
    path = transfer.path
    assert path is not None
    transfer.discard()
    if writer is not None:
        writer.close()  # the removal runs on the writer thread, after pending writes
    assert not path.exists()
    transfer.discard()  # idempotent


def test_a_failing_write_surfaces_as_oserror(tmp_path: Path) -> None:
    writer = SpoolWriter()
    try:
        transfer = IncomingTransfer(5, tmp_path, threshold=10, expected_length=100, writer=writer)
        assert transfer._file is not None
        transfer._file.close()  # every later write fails on the thread
        with pytest.raises((OSError, ValueError)):
            feed(transfer, b"z" * 100)
            finish(transfer)
    finally:
        writer.close()


def test_a_left_behind_spool_file_is_removed_off_the_loop(
    tmp_path: Path, writer: SpoolWriter | None
) -> None:
    gone, moved = tmp_path / "left-behind", tmp_path / "taken-over"
    gone.write_bytes(b"x")
    remove_spool_file(gone, writer)
    remove_spool_file(moved, writer)  # the node moved it away: nothing to do, no error
    if writer is not None:
        writer.close()  # the removal runs on the writer thread
        remove_spool_file(tmp_path / "after-close", writer)  # a closed writer: done here
    assert not gone.exists()


def test_segment_views_are_written_as_they_are(tmp_path: Path, writer: SpoolWriter | None) -> None:
    block = bytearray(b"abcdefgh" * 1000)
    transfer = IncomingTransfer(6, tmp_path, threshold=10, expected_length=8000, writer=writer)
    feed(transfer, *(memoryview(block)[i : i + 1000].toreadonly() for i in range(0, 8000, 1000)))
    _, path = finish(transfer)
    assert path is not None and path.read_bytes() == bytes(block)


def test_writes_queued_behind_a_busy_thread_go_out_in_order(tmp_path: Path) -> None:
    """Two transfers' writes interleaved while the thread is busy: each file gets its own, in
    order (the thread joins consecutive writes of one file into one writev)."""
    writer = SpoolWriter()
    gate = threading.Event()
    try:
        a = IncomingTransfer(7, tmp_path, threshold=10, expected_length=100, writer=writer)
        b = IncomingTransfer(8, tmp_path, threshold=10, expected_length=100, writer=writer)
        writer.submit(gate.wait)
        chunks = [bytes([i]) * (1000 + i) for i in range(12)]
        for index, chunk in enumerate(chunks):
            target = a if index % 3 else b
            feed(target, chunk)
        gate.set()
        (_, path_a), (_, path_b) = finish(a), finish(b)
        assert path_a is not None and path_b is not None
        assert path_a.read_bytes() == b"".join(c for i, c in enumerate(chunks) if i % 3)
        assert path_b.read_bytes() == b"".join(c for i, c in enumerate(chunks) if not i % 3)
    finally:
        gate.set()
        writer.close()


def test_append_waits_for_the_thread_beyond_the_pending_limit(tmp_path: Path) -> None:
    writer = SpoolWriter()
    gate = threading.Event()
    try:
        transfer = IncomingTransfer(9, tmp_path, threshold=10, expected_length=100, writer=writer)
        writer.submit(gate.wait)
        chunk = bytes(1 << 20)

        async def main() -> None:
            for _ in range(MAX_PENDING_BYTES >> 20):
                await transfer.append(chunk)  # within the limit: no waiting
            blocked = asyncio.create_task(transfer.append(chunk))
            await asyncio.sleep(0.05)
            assert not blocked.done()
            gate.set()
            await asyncio.wait_for(blocked, 5)
            await transfer.finish()

        asyncio.run(main())
        assert transfer.path is not None
        assert transfer.path.stat().st_size == MAX_PENDING_BYTES + len(chunk)
    finally:
        gate.set()
        writer.close()
