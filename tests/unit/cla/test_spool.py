"""IncomingTransfer: small transfers stay in memory, large ones go to a spool file."""

from __future__ import annotations

from pathlib import Path

from dtncloud.cla.spool import PREFIX_SIZE, IncomingTransfer


def test_a_small_transfer_stays_in_memory(tmp_path: Path) -> None:
    transfer = IncomingTransfer(0, tmp_path, threshold=100)
    transfer.append(b"a" * 60)
    transfer.append(memoryview(b"b" * 40))
    data, path = transfer.finish()
    assert (data, path) == (b"a" * 60 + b"b" * 40, None)
    assert list(tmp_path.iterdir()) == []


def test_growing_past_the_threshold_spills_to_a_file(tmp_path: Path) -> None:
    transfer = IncomingTransfer(1, tmp_path, threshold=100)
    chunks = [bytes([i]) * 70 for i in range(5)]
    for chunk in chunks:
        transfer.append(chunk)
    data, path = transfer.finish()
    assert data is None and path is not None and path.parent == tmp_path
    assert path.read_bytes() == b"".join(chunks)
    assert transfer.length == 350


def test_an_announced_large_length_spills_at_once(tmp_path: Path) -> None:
    transfer = IncomingTransfer(2, tmp_path, threshold=100, expected_length=10_000)
    assert transfer.path is not None and transfer.path.exists()
    transfer.append(b"x" * 10)
    assert transfer.finish() == (None, transfer.path)


def test_the_prefix_survives_spilling(tmp_path: Path) -> None:
    transfer = IncomingTransfer(3, tmp_path, threshold=10)
    body = bytes(range(256)) * 40
    for offset in range(0, len(body), 1000):
        transfer.append(body[offset : offset + 1000])
    assert transfer.prefix == body[:PREFIX_SIZE]


def test_discard_removes_the_spool_file(tmp_path: Path) -> None:
    transfer = IncomingTransfer(4, tmp_path, threshold=10)
    transfer.append(b"y" * 100)
    path = transfer.path
    assert path is not None and path.exists()
    transfer.discard()
    assert not path.exists()
    transfer.discard()  # idempotent
