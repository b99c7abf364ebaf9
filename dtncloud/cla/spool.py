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
import queue
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, BinaryIO

#: Transfers up to this size are kept in memory.
DEFAULT_SPOOL_THRESHOLD = 4 << 20
#: How many leading bytes are kept in memory for a look at the primary block.
PREFIX_SIZE = 4096
#: Bytes of one transfer that may wait for the writer thread.
MAX_PENDING_BYTES = 4 << 20
#: The most writes of one file the thread joins into one ``writev``, and the bytes beyond
#: which it joins no more (progress is reported per ``writev``: waiting for one that is too
#: long would leave the thread without work after it).
_BATCH = 64
_BATCH_BYTES = 1 << 20

_Call = tuple[Future[object], Callable[..., object], tuple[object, ...]]
_Write = tuple["IncomingTransfer", bytes | bytearray | memoryview]


class SpoolWriter:
    """One thread that writes spool files, in the order writes were submitted.

    Writes of one file queued one behind the other go out in one ``writev``, so that the
    thread needs the interpreter lock once per batch rather than once per segment.
    """

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[_Call | _Write | None] = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="dtncloud-spool", daemon=True)
        self._thread.start()

    def submit(self, job: Callable[..., object], *args: object) -> Future[object]:
        """Run ``job(*args)`` on the thread, after what was submitted before."""
        if self._closed:
            raise RuntimeError("the spool writer is closed")
        future: Future[object] = Future()
        self._queue.put((future, job, args))
        return future

    def write(self, transfer: IncomingTransfer, data: bytes | bytearray | memoryview) -> None:
        """Append ``data`` to ``transfer``'s spool file on the thread (``transfer`` is told)."""
        if self._closed:
            raise RuntimeError("the spool writer is closed")
        self._queue.put((transfer, data))

    def close(self) -> None:
        """Finish what was submitted, then stop the thread."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        get, get_nowait = self._queue.get, self._queue.get_nowait
        item = get()
        while item is not None:
            if isinstance(item[0], Future):
                future, job, args = item
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(job(*args))
                    except BaseException as exc:  # handed to whoever waits for it
                        future.set_exception(exc)
                item = get()
                continue
            transfer, data = item
            batch = [data]
            size = len(data)
            taken = False  # whether ``item`` is the next job, already taken off the queue
            while size < _BATCH_BYTES and len(batch) < _BATCH:
                try:
                    item = get_nowait()
                except queue.Empty:
                    break
                if item is not None and item[0] is transfer:
                    batch.append(item[1])
                    size += len(item[1])
                else:
                    taken = True
                    break
            transfer._write_batch(batch)
            del batch, data  # let go of the views: the receive buffer may be reused
            if not taken:
                item = get()


class IncomingTransfer:
    """The bytes of one incoming transfer so far."""

    __slots__ = (
        "_buffer", "_error", "_file", "_head", "_queued", "_waiter", "_writer", "_written",
        "length", "path", "spool_dir", "threshold", "transfer_id",
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
        # Bytes handed to the writer thread, and bytes it has written (or given up on); the
        # thread only ever adds to ``_written`` and sets ``_error``.
        self._queued = 0
        self._written = 0
        self._error: BaseException | None = None
        #: Where the event loop waits for the thread's progress, while it does.
        self._waiter: tuple[asyncio.AbstractEventLoop, asyncio.Future[None]] | None = None
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
        if self._queued - self._written > MAX_PENDING_BYTES:
            await self._written_up_to(self._queued - MAX_PENDING_BYTES)

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
        if self._error is not None:
            raise self._error
        if self._writer is None:
            _write_all(self._file, data)
            return
        self._queued += len(data)
        self._writer.write(self, data)

    async def _written_up_to(self, target: int) -> None:
        """Wait until the thread has written ``target`` bytes; raise what it ran into."""
        while self._written < target and self._error is None:
            loop = asyncio.get_running_loop()
            waiter = loop.create_future()
            self._waiter = (loop, waiter)
            try:
                if self._written < target and self._error is None:  # the thread looks after
                    await waiter  # setting _waiter, so re-checking here misses no wake-up
            finally:
                self._waiter = None
        if self._error is not None:
            raise self._error

    def _write_batch(self, batch: list[bytes | bytearray | memoryview]) -> None:
        """On the writer thread: write ``batch`` in order, then tell the event loop."""
        size = sum(len(data) for data in batch)
        file = self._file
        if self._error is None:
            try:
                if file is None:
                    raise ValueError("the spool file was closed")
                _writev_all(file, batch)
            except (OSError, ValueError) as exc:
                self._error = exc if isinstance(exc, OSError) else OSError(str(exc))
        self._written += size
        waiting = self._waiter
        if waiting is not None:
            loop, waiter = waiting
            with contextlib.suppress(RuntimeError):  # a loop that is gone waits for nothing
                loop.call_soon_threadsafe(_wake, waiter)

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
        await self._written_up_to(self._queued)
        assert self._file is not None
        self._file.close()
        self._file = None
        return None, self.path

    def discard(self) -> None:
        """Forget the transfer and delete its spool file, if any (after pending writes)."""
        self._buffer = None
        self._error = self._error or OSError("discarded")  # the thread skips what is queued
        file, path = self._file, self.path
        self._file = self.path = None
        if self._writer is not None and (file is not None or path is not None):
            with contextlib.suppress(RuntimeError):
                self._writer.submit(_remove, file, path).add_done_callback(_consume)
                return
        _remove(file, path)


def remove_spool_file(path: Path, writer: SpoolWriter | None) -> None:
    """Delete a spool file the node left behind: on the writer thread if there is one (freeing
    a large file's pages takes a while), else at once.

    The file is known by its inode as well as its name: if the node moved it away, a new
    spool file may take the same name before the writer thread gets to it, and that one must
    stay."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return  # the node took it
    identity = (stat.st_dev, stat.st_ino)
    if writer is not None:
        with contextlib.suppress(RuntimeError):  # a writer that was closed: remove it here
            writer.submit(_remove_same, path, identity).add_done_callback(_consume)
            return
    _remove_same(path, identity)


def _remove_same(path: Path, identity: tuple[int, int]) -> None:
    with contextlib.suppress(FileNotFoundError):
        stat = path.stat()
        if (stat.st_dev, stat.st_ino) == identity:
            path.unlink()


def _write_all(file: BinaryIO, data: bytes | bytearray | memoryview) -> None:
    view = memoryview(data)
    while view:
        written = file.write(view)
        view = view[written or 0 :]


def _writev_all(file: BinaryIO, batch: list[bytes | bytearray | memoryview]) -> None:
    if len(batch) == 1:
        _write_all(file, batch[0])
        return
    fd = file.fileno()
    views = [memoryview(data) for data in batch]
    while views:
        written = os.writev(fd, views)
        while views and written >= len(views[0]):
            written -= len(views.pop(0))
        if written:
            views[0] = views[0][written:]


def _wake(waiter: asyncio.Future[Any]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _remove(file: BinaryIO | None, path: Path | None) -> None:
    if file is not None:
        file.close()
    if path is not None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _consume(future: Future[object]) -> None:
    future.exception()  # a write of a discarded transfer may fail: nobody needs to know
