"""A lean byte stream over an asyncio transport, for the TCPCL driver.

asyncio's StreamReader copies every received byte twice (into its buffer, then out of it);
on a fast link that is as much work as the protocol itself. :class:`ChunkStream` is an
``asyncio.BufferedProtocol`` with two ways of reading:

* **chunks** (the start of a connection: contact headers, the TLS handshake):
  :meth:`ChunkStream.read` hands on what each read brought, as ``bytes``, and
  :meth:`ChunkStream.readexactly` takes an exact number of bytes. Reading stops once
  :data:`READ_HIGH_WATER` bytes wait unread and resumes below :data:`READ_LOW_WATER`.
* **a sink** (:meth:`ChunkStream.set_sink`, for the session itself): the transport reads
  straight into the room the sink offers (``get_buffer``) and tells it how much came
  (``buffer_updated``), with no copy in between; :meth:`ChunkStream.wait` wakes the consumer.
  While the consumer is busy elsewhere (it is not waiting), reading stops after each read,
  so the sink never takes in more than one read ahead of its consumer: back-pressure.

Writes go straight to the transport; :meth:`ChunkStream.drain` waits while the transport's
buffer is over its high-water mark, and :meth:`ChunkStream.sendfile` sends part of a file
with ``sendfile(2)`` where the transport allows it. :meth:`ChunkStream.start_tls` upgrades
the connection in place.
"""

from __future__ import annotations

import asyncio
import errno
import os
import ssl
from collections import deque
from collections.abc import Callable
from typing import Any, BinaryIO, Protocol

#: Unread bytes beyond which the stream stops reading from the socket (chunk mode).
READ_HIGH_WATER = 4 << 20
READ_LOW_WATER = 1 << 20
#: The room a read is offered in chunk mode.
CHUNK_SIZE = 64 * 1024


class Sink(Protocol):
    """Where a :class:`ChunkStream` in sink mode puts what it reads."""

    def get_buffer(self, sizehint: int) -> memoryview: ...
    def buffer_updated(self, nbytes: int) -> None: ...


class ChunkStream(asyncio.BufferedProtocol):
    """One connection's bytes, read as chunks or into a sink, and written as they come."""

    def __init__(self, on_connected: Callable[[ChunkStream], None] | None = None) -> None:
        self.transport: asyncio.Transport | None = None
        self._on_connected = on_connected
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._room: bytearray | None = None
        self._sink: Sink | None = None
        self._fed = False  # the sink took bytes the consumer has not been told of
        self._eof = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._drain_waiter: asyncio.Future[None] | None = None
        self._reading_paused = False
        self._writing_paused = False
        self._gone = False  # the connection is lost
        self._lost: asyncio.Future[None] | None = None  # done once it is (for sendfile)

    # --- asyncio.BufferedProtocol -------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if self._on_connected is not None:
            self._on_connected(self)

    def get_buffer(self, sizehint: int) -> memoryview:
        sink = self._sink
        if sink is not None and self._error is None:
            return sink.get_buffer(sizehint)
        if self._room is None:
            self._room = bytearray(CHUNK_SIZE)
        return memoryview(self._room)

    def buffer_updated(self, nbytes: int) -> None:
        sink = self._sink
        if sink is None:
            assert self._room is not None
            with memoryview(self._room) as room:
                self.data_received(bytes(room[:nbytes]))
            return
        if self._error is not None:
            return  # the sink failed: nothing more goes to it
        try:
            sink.buffer_updated(nbytes)
        except Exception as exc:  # a bug in the sink: the consumer gets it from wait()
            self._error = exc
            self._pause()
        self._fed = True
        if self._waiter is None:
            self._pause()  # the consumer is busy: no more until it waits again
        self._wake()

    def data_received(self, data: bytes) -> None:
        """Chunk mode: queue ``data`` for :meth:`read`."""
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered > READ_HIGH_WATER:
            self._pause()
        self._wake()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake()
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = self._gone = True
        if exc is not None and self._error is None:
            self._error = exc
        self._wake()
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc or ConnectionResetError("connection lost"))
            waiter.exception()  # nobody may be waiting any more
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(None)

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _pause(self) -> None:
        if not self._reading_paused and self.transport is not None:
            self._reading_paused = True
            self.transport.pause_reading()

    def _resume(self) -> None:
        if self._reading_paused and self.transport is not None:
            self._reading_paused = False
            self.transport.resume_reading()

    # --- reading ------------------------------------------------------------------------

    async def read(self) -> bytes:
        """The next chunk received; ``b""`` at end of stream. Raises the connection's error
        (an :class:`OSError`) if it broke."""
        while not self._chunks:
            if self._eof:
                if self._error is not None:
                    raise self._error
                return b""
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        chunk = self._chunks.popleft()
        self._buffered -= len(chunk)
        if self._buffered < READ_LOW_WATER:
            self._resume()
        return chunk

    async def readexactly(self, size: int) -> bytes:
        """Exactly ``size`` bytes; what came with them stays for the next read. Raises
        :class:`asyncio.IncompleteReadError` at end of stream."""
        parts: list[bytes] = []
        have = 0
        while have < size:
            chunk = await self.read()
            if not chunk:
                raise asyncio.IncompleteReadError(b"".join(parts), size)
            parts.append(chunk)
            have += len(chunk)
        data = b"".join(parts)
        if have > size:
            rest = data[size:]
            self._chunks.appendleft(rest)
            self._buffered += len(rest)
        return data[:size]

    def set_sink(self, sink: Sink) -> list[bytes]:
        """From now on read straight into ``sink``; returns the chunks read but not taken
        yet, which the caller must give the sink first."""
        self._sink = sink
        self._room = None
        chunks = list(self._chunks)
        self._chunks.clear()
        self._buffered = 0
        return chunks

    async def wait(self) -> bool:
        """Sink mode: wait until the sink has taken bytes since the last call (True) or the
        stream ended (False). Raises the connection's error (an :class:`OSError`), or the
        sink's if it raised."""
        while not self._fed:
            if self._eof or self._error is not None:
                if self._error is not None:
                    raise self._error
                return False
            self._resume()
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        self._fed = False
        if self._error is not None and not isinstance(self._error, OSError):
            raise self._error  # the sink failed: what it took is not to be trusted
        return True

    # --- writing ------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    async def drain(self) -> None:
        """Wait while the transport holds more than its high-water mark of unsent bytes."""
        if self._error is not None:
            raise ConnectionResetError("connection lost") from self._error
        if not self._writing_paused:
            return
        self._drain_waiter = asyncio.get_running_loop().create_future()
        await self._drain_waiter

    async def sendfile(self, file: BinaryIO, offset: int, count: int) -> int:
        """Send ``count`` bytes of ``file`` from ``offset`` with ``sendfile(2)``, after what was
        written before; returns how many were sent (fewer only if the file is shorter).

        Raises :class:`asyncio.SendfileNotAvailableError` before sending anything where
        ``sendfile(2)`` cannot be used (TLS, a file that is not a regular file): the caller
        then writes the bytes itself. Nothing else may be written until this returns.
        """
        transport = self.transport
        if transport is None or transport.get_extra_info("sslcontext") is not None:
            raise asyncio.SendfileNotAvailableError("sendfile needs a plain TCP transport")
        if self._gone or transport.is_closing():
            raise ConnectionResetError("connection lost") from self._error
        sent = 0
        if transport.get_write_buffer_size() == 0:
            # Nothing waits in the transport's buffer, so what the socket takes at once may
            # go to it directly, without asyncio's machinery (often all of it).
            sent = _sendfile_now(transport, file, offset, count)
            if sent < 0:  # end of file
                return -sent - 1
            if sent == count:
                return sent
        loop = asyncio.get_running_loop()
        rest = loop.sendfile(transport, file, offset + sent, count - sent, fallback=False)
        sending = loop.create_task(rest)
        sending.add_done_callback(_retrieve)
        # asyncio stops reading while it sends a file; reading on keeps two peers that send
        # to each other at the same time from waiting for each other to read, for ever.
        loop.call_soon(self._sync_reading)
        lost = self._lost
        if lost is None:
            lost = self._lost = loop.create_future()
            if self._gone:
                lost.set_result(None)
        try:
            await asyncio.wait((sending, lost), return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            sending.cancel()
            raise
        finally:
            self._sync_reading()
        if not sending.done():
            # Closed under the sendfile: asyncio no longer watches the socket for it.
            sending.cancel()
            raise ConnectionResetError("connection lost")
        try:
            return sent + sending.result()
        except RuntimeError as exc:
            if transport.is_closing():
                raise ConnectionResetError("connection lost") from exc
            if sent:  # too late to let the caller write the bytes instead
                raise OSError(f"sendfile failed after {sent} bytes: {exc}") from exc
            raise asyncio.SendfileNotAvailableError(str(exc)) from exc

    def _sync_reading(self) -> None:
        """Make the transport read, or not, as this stream wants it to."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if self._reading_paused:
            transport.pause_reading()
        elif not transport.is_reading():
            transport.resume_reading()

    def is_closing(self) -> bool:
        return self.transport is None or self.transport.is_closing()

    def can_write_eof(self) -> bool:
        return self.transport is not None and self.transport.can_write_eof()

    def write_eof(self) -> None:
        if self.transport is not None:
            self.transport.write_eof()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default if self.transport is None else self.transport.get_extra_info(name, default)

    def set_write_buffer_limits(self, high: int, low: int) -> None:
        if self.transport is not None:
            self.transport.set_write_buffer_limits(high, low)

    def write_buffer_size(self) -> int:
        return 0 if self.transport is None else self.transport.get_write_buffer_size()

    async def start_tls(
        self, context: ssl.SSLContext, *, server_side: bool, server_hostname: str | None
    ) -> None:
        """Run a TLS handshake on this connection; later reads and writes are encrypted."""
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        transport = await loop.start_tls(
            self.transport, self, context, server_side=server_side, server_hostname=server_hostname
        )
        if transport is None:
            raise ConnectionResetError("connection closed during the TLS handshake")
        self.transport = transport


def _sendfile_now(transport: asyncio.Transport, file: BinaryIO, offset: int, count: int) -> int:
    """Send what the socket takes at once; returns how much, or ``-(sent + 1)`` at the end of
    the file. Raises :class:`asyncio.SendfileNotAvailableError` where sendfile cannot be used."""
    sock = transport.get_extra_info("socket")
    if not hasattr(os, "sendfile"):
        return 0  # asyncio knows the platform's way, if there is one
    try:
        in_fd, out_fd = file.fileno(), sock.fileno()
    except (AttributeError, OSError, ValueError) as exc:
        raise asyncio.SendfileNotAvailableError("not a regular file and a socket") from exc
    sent = 0
    while sent < count:
        try:
            step = os.sendfile(out_fd, in_fd, offset + sent, count - sent)
        except (BlockingIOError, InterruptedError):
            break
        except OSError as exc:
            if sent == 0 and exc.errno in (errno.EINVAL, errno.ENOSYS, errno.ENOTSOCK):
                raise asyncio.SendfileNotAvailableError(str(exc)) from exc
            raise
        if step == 0:
            return -(sent + 1)
        sent += step
    return sent


def _retrieve(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()  # a sendfile given up on may fail later: nobody needs to know
