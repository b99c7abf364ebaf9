"""ChunkStream: chunks in order, exact reads that keep the rest, flow control both ways; the
sink mode that reads straight into a consumer's buffer; sendfile."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
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


# --- sink mode ----------------------------------------------------------------------------
class Sink:
    def __init__(self) -> None:
        self.room = bytearray(16)
        self.got = bytearray()

    def get_buffer(self, sizehint: int) -> memoryview:
        return memoryview(self.room)

    def buffer_updated(self, nbytes: int) -> None:
        if self.room[:nbytes] == b"boom":
            raise ValueError("a bug in the sink")
        self.got += self.room[:nbytes]


def read_into(s: ChunkStream, data: bytes) -> None:
    room = s.get_buffer(-1)
    room[: len(data)] = data
    del room
    s.buffer_updated(len(data))


def test_chunk_mode_reads_through_the_buffered_protocol() -> None:
    async def main() -> None:
        s, _ = stream()
        read_into(s, b"dtn!")
        read_into(s, b"\x04\x00rest")
        assert await s.readexactly(6) == b"dtn!\x04\x00"
        sink = Sink()
        assert s.set_sink(sink) == [b"rest"]  # what was read and not taken goes to the caller
        read_into(s, b"more")
        assert await s.wait() and sink.got == b"more"

    asyncio.run(main())


def test_a_sink_consumer_that_is_busy_stops_the_reading() -> None:
    async def main() -> None:
        s, transport = stream()
        sink = Sink()
        s.set_sink(sink)
        waiting = asyncio.create_task(s.wait())
        await asyncio.sleep(0)
        read_into(s, b"ab")  # the consumer waits: reading goes on
        assert not transport.paused and await waiting
        read_into(s, b"cd")  # the consumer is busy: no more reads until it waits again
        assert transport.paused and sink.got == b"abcd"
        assert await s.wait()  # what came meanwhile first, without waiting
        waiting = asyncio.create_task(s.wait())
        await asyncio.sleep(0)
        assert not transport.paused  # waiting for more: reading again
        s.eof_received()
        assert await waiting is False

    asyncio.run(main())


def test_a_failing_sink_and_a_broken_connection_reach_the_consumer() -> None:
    async def main() -> None:
        s, transport = stream()
        s.set_sink(Sink())
        read_into(s, b"boom")
        with pytest.raises(ValueError, match="a bug in the sink"):
            await s.wait()
        assert transport.paused
        s2, _ = stream()
        s2.set_sink(Sink())
        read_into(s2, b"x")
        s2.connection_lost(ConnectionResetError("reset"))
        assert await s2.wait()  # what came before the error first
        with pytest.raises(ConnectionResetError):
            await s2.wait()

    asyncio.run(main())


# --- sendfile -----------------------------------------------------------------------------
async def connected_pair() -> tuple[ChunkStream, asyncio.StreamReader, Any]:
    loop = asyncio.get_running_loop()
    accepted: asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
        loop.create_future()
    )

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set_result((reader, writer))

    server = await asyncio.start_server(on_client, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    _, ours = await loop.create_connection(ChunkStream, "127.0.0.1", port)
    reader, writer = await accepted
    server.close()
    return ours, reader, writer


def test_sendfile_sends_part_of_a_file_after_what_was_written(tmp_path: Path) -> None:
    path = tmp_path / "data"
    path.write_bytes(bytes(range(256)) * 4096)

    async def main() -> None:
        ours, reader, writer = await connected_pair()
        with open(path, "rb") as source:
            ours.write(b"head")
            assert await ours.sendfile(source, 1000, 500_000) == 500_000
            ours.write(b"tail")
            assert await ours.sendfile(source, len(path.read_bytes()) - 10, 100) == 10  # short
        got = await reader.readexactly(4 + 500_000 + 4 + 10)
        data = path.read_bytes()
        assert got == b"head" + data[1000:501_000] + b"tail" + data[-10:]
        ours.close()
        writer.close()

    asyncio.run(main())


def test_sendfile_does_not_hang_when_the_connection_closes_under_it(tmp_path: Path) -> None:
    path = tmp_path / "data"
    path.write_bytes(bytes(64 << 20))

    async def main() -> None:
        ours, _, writer = await connected_pair()
        # Nobody reads at the other end: the sendfile blocks until we close the connection.
        with open(path, "rb") as source:
            sending = asyncio.create_task(ours.sendfile(source, 0, 64 << 20))
            await asyncio.sleep(0.2)
            assert not sending.done()
            ours.abort()
            with pytest.raises(ConnectionError):
                await asyncio.wait_for(sending, 5)
            with pytest.raises(ConnectionError):
                await ours.sendfile(source, 0, 10)
        writer.close()

    asyncio.run(main())


def test_reading_goes_on_during_a_sendfile(tmp_path: Path) -> None:
    """Two peers sending each other more than the sockets hold must not wait for ever."""
    path = tmp_path / "data"
    path.write_bytes(bytes(32 << 20))

    async def main() -> None:
        ours, reader, writer = await connected_pair()
        sink = Sink()
        sink.room = bytearray(1 << 20)
        ours.set_sink(sink)
        consumer = asyncio.create_task(consume(ours))
        chunk = bytes(1 << 20)

        async def theirs() -> None:
            for _ in range(32):  # and it reads nothing until it has written all
                writer.write(chunk)
                await writer.drain()

        with open(path, "rb") as source:
            sending = asyncio.create_task(ours.sendfile(source, 0, 32 << 20))
            await asyncio.wait_for(theirs(), 20)
            assert len(await reader.readexactly(32 << 20)) == 32 << 20
            assert await asyncio.wait_for(sending, 20) == 32 << 20
        assert len(sink.got) == 32 << 20
        consumer.cancel()
        ours.close()
        writer.close()

    async def consume(s: ChunkStream) -> None:
        while await s.wait():
            pass

    asyncio.run(main())


def test_sendfile_is_not_available_over_tls() -> None:
    class TlsTransport(FakeTransport):
        def get_extra_info(self, name: str, default: Any = None) -> Any:
            return object() if name == "sslcontext" else default

    async def main() -> None:
        s = ChunkStream()
        s.connection_made(TlsTransport())
        with pytest.raises(asyncio.SendfileNotAvailableError):
            await s.sendfile(io.BytesIO(b"x"), 0, 1)  # type: ignore[arg-type]

    asyncio.run(main())
