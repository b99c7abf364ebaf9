"""Where an incoming transfer's bytes wait until the bundle is complete.

Small transfers stay in memory; once a transfer grows past a threshold (or announces a
length past it) its bytes go to a spool file instead, so a 1 GiB bundle never sits whole in
memory. The file is created in the CLA's spool directory and handed to the node with the
bundle; whatever the node leaves behind is deleted.

With a :class:`SpoolWriter`, file writes run on a thread of their own, so that copying into
the file system overlaps with reading the socket (on a fast link the write is as costly as
the receive). At most :data:`MAX_PENDING_BYTES` per transfer wait for the thread; beyond
that :meth:`IncomingTransfer.append` waits, which stops the link reading: back-pressure.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

#: Transfers up to this size are kept in memory.
DEFAULT_SPOOL_THRESHOLD = 4 << 20
#: How many leading bytes are kept in memory for a look at the primary block.
PREFIX_SIZE = 4096
#: Bytes of one transfer that may wait for the writer thread.
MAX_PENDING_BYTES = 4 << 20


class SpoolWriter:
    """One thread that writes spool files, in the order writes were submitted."""

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dtncloud-spool")

    def submit(self, job: object, *args: object) -> Future[object]:
        return self._executor.submit(job, *args)  # type: ignore[arg-type]

    def close(self) -> None:
        """Finish what was submitted, then stop the thread."""
        self._executor.shutdown(wait=True)


class IncomingTransfer:
    """The bytes of one incoming transfer so far."""

    __slots__ = (
        "_buffer", "_file", "_head", "_pending", "_pending_bytes", "_writer", "length", "path",
        "spool_dir", "threshold", "transfer_id",
    )  # fmt: skip

    def __init__(
        self,
        transfer_id: int,
        spool_dir: Path,
        threshold: int = DEFAULT_SPOOL_THRESHOLD,
        expected_length: int | None = None,
        writer: SpoolWriter | None = None,
    ) -> None:
        self.transfer_id = transfer_id
        self.spool_dir = spool_dir
        self.threshold = threshold
        self.length = 0
        self.path: Path | None = None
        self._buffer: bytearray | None = bytearray()
        self._head = bytearray()
        self._file: BinaryIO | None = None
        self._writer = writer
        self._pending: deque[tuple[Future[object], int]] = deque()
        self._pending_bytes = 0
        if expected_length is not None and expected_length > threshold:
            self._spill()

    @property
    def prefix(self) -> bytes:
        """The first bytes received (up to 4 KiB), for peeking at the bundle ID."""
        return bytes(self._head)

    async def append(self, data: bytes | memoryview) -> None:
        """Add the next segment's bytes (``data`` must not change afterwards).

        Raises :class:`OSError` when the spool file cannot be written (a full disk).
        """
        if len(self._head) < PREFIX_SIZE:
            self._head += data[: PREFIX_SIZE - len(self._head)]
        self.length += len(data)
        if self._buffer is not None:
            self._buffer += data
            if len(self._buffer) > self.threshold:
                self._spill()
            return
        self._write(data)
        while self._pending_bytes > MAX_PENDING_BYTES:
            await self._settle_oldest()

    def _spill(self) -> None:
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="incoming-", suffix=".bundle", dir=self.spool_dir)
        self.path = Path(name)
        self._file = os.fdopen(fd, "wb", buffering=0)
        buffered, self._buffer = self._buffer, None
        if buffered:
            self._write(buffered)  # handed over whole: nothing else holds it any more

    def _write(self, data: bytes | bytearray | memoryview) -> None:
        assert self._file is not None
        if self._writer is None:
            _write_all(self._file, data)
            return
        self._pending.append((self._writer.submit(_write_all, self._file, data), len(data)))
        self._pending_bytes += len(data)
        while self._pending and self._pending[0][0].done():
            self._settle(*self._pending.popleft())

    async def _settle_oldest(self) -> None:
        future, size = self._pending.popleft()
        await asyncio.wrap_future(future)
        self._settle(future, size)

    def _settle(self, future: Future[object], size: int) -> None:
        self._pending_bytes -= size
        future.result()  # raises the writer thread's OSError here, in the caller

    async def finish(self) -> tuple[bytes | None, Path | None]:
        """The complete transfer: ``(data, None)`` in memory or ``(None, path)`` on disk.

        A spool file is written out and closed but not synced: the node that takes it over
        syncs it as part of storing it (one sync, where the file ends up; syncing here as
        well would double the cost of every large bundle).
        """
        if self._buffer is not None:
            data = bytes(self._buffer)
            self._buffer = None
            return data, None
        while self._pending:
            await self._settle_oldest()
        assert self._file is not None
        self._file.close()
        self._file = None
        return None, self.path

    def discard(self) -> None:
        """Forget the transfer and delete its spool file, if any (after pending writes)."""
        self._buffer = None
        file, path = self._file, self.path
        self._file = self.path = None
        for future, _ in self._pending:
            future.add_done_callback(_consume)
        self._pending.clear()
        if self._writer is not None and (file is not None or path is not None):
            self._writer.submit(_remove, file, path)
        else:
            _remove(file, path)


def _write_all(file: BinaryIO, data: bytes | bytearray | memoryview) -> None:
    view = memoryview(data)
    while view:
        written = file.write(view)
        view = view[written or 0 :]


def _remove(file: BinaryIO | None, path: Path | None) -> None:
    if file is not None:
        file.close()
    if path is not None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _consume(future: Future[object]) -> None:
    future.exception()  # a write of a discarded transfer may fail: nobody needs to know
