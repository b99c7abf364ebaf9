"""ChunkStream: chunks in order, exact reads that keep the rest, flow control both ways."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from dtncloud.cla.stream import READ_HIGH_WATER, READ_LOW_WATER, ChunkStream


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.paused = False
        self.written: list[bytes] = []
        self.closed = False

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def write(self, data: Any) -> None:
        self.written.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_write_buffer_size(self) -> int:
        return 0


def stream() -> tuple[ChunkStream, FakeTransport]:
    transport = FakeTransport()
    chunks = ChunkStream()
    chunks.connection_made(transport)
    return chunks, transport


def test_chunks_come_out_in_order_then_eof() -> None:
    async def main() -> None:
        s, _ = stream()
        s.data_received(b"ab")
        s.data_received(b"cd")
        s.eof_received()
        assert [await s.read(), await s.read(), await s.read()] == [b"ab", b"cd", b""]

    asyncio.run(main())


def test_readexactly_keeps_what_came_after() -> None:
    async def main() -> None:
        s, _ = stream()
        s.data_received(b"dtn")
        s.data_received(b"!\x04\x00\x07rest")
        assert await s.readexactly(6) == b"dtn!\x04\x00"
        assert await s.read() == b"\x07rest"
        s.eof_received()
        with pytest.raises(asyncio.IncompleteReadError):
            await s.readexactly(1)

    asyncio.run(main())


def test_a_waiting_reader_wakes_for_data_and_for_errors() -> None:
    async def main() -> None:
        s, _ = stream()
        waiting = asyncio.create_task(s.read())
        await asyncio.sleep(0)
        s.data_received(b"x")
        assert await waiting == b"x"
        waiting = asyncio.create_task(s.read())
        await asyncio.sleep(0)
        s.connection_lost(ConnectionResetError("reset"))
        with pytest.raises(ConnectionResetError):
            await waiting

    asyncio.run(main())


def test_reading_pauses_above_the_high_water_mark_and_resumes_below_the_low() -> None:
    async def main() -> None:
        s, transport = stream()
        chunk = bytes(1 << 20)
        for _ in range(READ_HIGH_WATER // len(chunk) + 1):
            s.data_received(chunk)
        assert transport.paused
        while transport.paused:
            await s.read()
        assert s._buffered < READ_LOW_WATER

    asyncio.run(main())


def test_drain_waits_while_writing_is_paused() -> None:
    async def main() -> None:
        s, _ = stream()
        s.pause_writing()
        draining = asyncio.create_task(s.drain())
        await asyncio.sleep(0)
        assert not draining.done()
        s.resume_writing()
        await draining
        s.pause_writing()
        draining = asyncio.create_task(s.drain())
        await asyncio.sleep(0)
        s.connection_lost(None)
        with pytest.raises(ConnectionResetError):
            await draining

    asyncio.run(main())
