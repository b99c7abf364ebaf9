"""IncomingTransfer: small transfers stay in memory, large ones go to a spool file, written
inline or by a SpoolWriter thread."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from dtncloud.cla.spool import MAX_PENDING_BYTES, PREFIX_SIZE, IncomingTransfer, SpoolWriter


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
