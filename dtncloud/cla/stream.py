"""A lean byte stream over an asyncio transport, for the TCPCL driver.

asyncio's StreamReader copies every received byte twice (into its buffer, then out of it);
on a fast link that is as much work as the protocol itself. :class:`ChunkStream` hands the
transport's chunks on as they came, with the same flow control: it stops reading once
:data:`READ_HIGH_WATER` bytes wait unread and resumes below :data:`READ_LOW_WATER`. Writes go
straight to the transport; :meth:`ChunkStream.drain` waits while the transport's buffer is
over its high-water mark. :meth:`ChunkStream.start_tls` upgrades the connection in place.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Callable
from typing import Any

#: Unread bytes beyond which the stream stops reading from the socket.
READ_HIGH_WATER = 4 << 20
READ_LOW_WATER = 1 << 20


class ChunkStream(asyncio.Protocol):
    """One connection's bytes, read as chunks and written as they come."""

    def __init__(self, on_connected: Callable[[ChunkStream], None] | None = None) -> None:
        self.transport: asyncio.Transport | None = None
        self._on_connected = on_connected
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._eof = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._drain_waiter: asyncio.Future[None] | None = None
        self._reading_paused = False
        self._writing_paused = False

    # --- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if self._on_connected is not None:
            self._on_connected(self)

    def data_received(self, data: bytes) -> None:
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered > READ_HIGH_WATER and not self._reading_paused and self.transport:
            self._reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake()
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        if exc is not None:
            self._error = exc
        self._wake()
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc or ConnectionResetError("connection lost"))
            waiter.exception()  # nobody may be waiting any more

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
        if self._reading_paused and self._buffered < READ_LOW_WATER and self.transport:
            self._reading_paused = False
            self.transport.resume_reading()
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
