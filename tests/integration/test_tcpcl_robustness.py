"""The TCPCL driver under the failures a field node meets: refusals racing the data, sends
that fail halfway, stopping with sessions open, flapping peers, abandoned connects."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from dtncloud.bpv7 import Bundle, encode_bundle
from dtncloud.cla.tcpcl import TcpclConvergenceLayer, TcpclOptions
from dtncloud.errors import ConnectError, LinkDown
from dtncloud.tcpcl.codes import Role
from dtncloud.tcpcl.config import SessionConfig
from dtncloud.tcpcl.events import Event, SessionClosed, SessionEnding, TransferRefusedByPeer
from dtncloud.tcpcl.session import Session
from tests.conformance.clas import Recorder

pytestmark = pytest.mark.timeout(60)


def run(body: Callable[[], Awaitable[None]], timeout: float = 30) -> None:
    asyncio.run(asyncio.wait_for(body(), timeout))


def bundle_bytes(size: int, sequence: int = 0) -> bytes:
    bundle = Bundle.create(
        source="ipn:1.1", destination="ipn:2.1", payload=bytes(size), creation_time=7,
        sequence=sequence,
    )  # fmt: skip
    return encode_bundle(bundle)


class RawPeer:
    """A hand-driven TCPCLv4 session over a real connection, for stepping the far side."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, role: Role):
        self.reader, self.writer = reader, writer
        self.loop = asyncio.get_running_loop()
        self.session = Session(role, SessionConfig(node_id="ipn:9.0", segment_mru=10_000,
                                                   max_segment_size=10_000), self.now())  # fmt: skip
        self.events: list[Event] = []
        self.flush()

    def now(self) -> int:
        return int(self.loop.time() * 1000)

    def flush(self) -> None:
        if data := self.session.data_to_send():
            self.writer.write(data)

    async def step(self) -> bool:
        """Read once and process; False at end of stream."""
        chunk = await self.reader.read(65536)
        if not chunk:
            self.session.connection_lost(self.now())
        else:
            self.session.receive_data(chunk, self.now())
        while (event := self.session.next_event()) is not None:
            self.events.append(event)
        self.flush()
        return bool(chunk)

    async def until(self, done: Callable[[], bool]) -> None:
        while not done() and await self.step():
            pass


def listener(events: Any, tmp: Path, **options: Any) -> TcpclConvergenceLayer:
    return TcpclConvergenceLayer(
        events,
        TcpclOptions(node_id="ipn:2.0", listen="127.0.0.1", port=0, spool_dir=tmp, **options),
        known_bundle=options.pop("known_bundle", None),
    )


def test_segments_of_a_refused_duplicate_never_reach_the_node(tmp_path: Path) -> None:
    """All segments arrive in one read; the refusal comes after the first: the rest, already
    parsed, must be dropped, not delivered as a truncated bundle."""
    duplicate, fresh = bundle_bytes(30_000, 0), bundle_bytes(500, 1)

    async def body() -> None:
        events = Recorder()
        rx = TcpclConvergenceLayer(
            events,
            TcpclOptions(node_id="ipn:2.0", listen="127.0.0.1", port=0, spool_dir=tmp_path),
            known_bundle=lambda bundle_id: bundle_id.sequence == 0,
        )
        await rx.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", rx.port)
            peer = RawPeer(reader, writer, Role.ACTIVE)
            await peer.until(lambda: peer.session.established)
            peer.session.send_bundle(duplicate, peer.now())  # three segments, one write
            peer.session.send_bundle(fresh, peer.now())
            peer.flush()
            await peer.until(lambda: any(isinstance(e, TransferRefusedByPeer) for e in peer.events))
            assert await events.received.get() == fresh
            assert events.received.empty()
            assert rx.links and rx.links[0].is_up
            writer.close()
        finally:
            await rx.stop()

    run(body)


def test_a_send_cancelled_halfway_takes_the_link_down_instead_of_wedging_it(tmp_path: Path) -> None:
    async def body() -> None:
        started = asyncio.Event()

        async def silent_peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            peer = RawPeer(reader, writer, Role.PASSIVE)
            await peer.until(lambda: peer.session.established)
            started.set()
            await asyncio.sleep(3600)  # reads no more: the sender's buffers fill up

        server = await asyncio.start_server(silent_peer, "127.0.0.1", 0)
        tx_events = Recorder()
        tx = TcpclConvergenceLayer(tx_events, TcpclOptions(node_id="ipn:1.0", spool_dir=tmp_path))
        await tx.start()
        try:
            link = await tx.connect(f"127.0.0.1:{server.sockets[0].getsockname()[1]}")
            await started.wait()
            sending = asyncio.create_task(link.send(bytes(64 << 20)))
            while not link.session.sending:  # the transfer has started
                await asyncio.sleep(0)
            sending.cancel()
            with pytest.raises(asyncio.CancelledError):
                await sending
            await tx_events.went_down.wait()
            assert not link.is_up
            with pytest.raises(LinkDown):
                await link.send(bundle_bytes(10))
        finally:
            await tx.stop(timeout=1)
            server.close()

    run(body)


def test_stop_ends_sessions_with_sess_term(tmp_path: Path) -> None:
    async def body() -> None:
        rx = listener(Recorder(), tmp_path)
        await rx.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", rx.port)
        peer = RawPeer(reader, writer, Role.ACTIVE)
        await peer.until(lambda: peer.session.established)
        stopping = asyncio.create_task(rx.stop())
        await peer.until(lambda: peer.session.closed)
        await stopping
        ending = [e for e in peer.events if isinstance(e, SessionEnding)]
        closed = [e for e in peer.events if isinstance(e, SessionClosed)]
        assert ending and ending[0].by_peer
        assert closed and closed[0].clean, closed

    run(body)


def test_no_session_starts_after_stop(tmp_path: Path) -> None:
    async def body() -> None:
        events = Recorder()
        rx = listener(events, tmp_path)
        await rx.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", rx.port)
        await asyncio.sleep(0)  # accepted, waiting for a contact header
        await rx.stop()
        writer.write(b"dtn!\x04\x00")
        assert await reader.read() == b""  # closed, no contact header in reply
        assert events.ups == []

    run(body)


def test_a_flapping_peer_is_reconnected_with_growing_delays(tmp_path: Path) -> None:
    """A peer that accepts and hangs up at once must not be hammered: every reconnection
    waits, and the waits double (with jitter) up to the ceiling."""

    async def body() -> None:
        async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.close()

        server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        waits: list[float] = []
        enough = asyncio.Event()

        async def fake_sleep(seconds: float) -> None:
            waits.append(seconds)
            if len(waits) >= 6:
                enough.set()
            await asyncio.sleep(0)

        tx = TcpclConvergenceLayer(
            Recorder(),
            TcpclOptions(node_id="ipn:1.0", peers=(f"127.0.0.1:{port}",), reconnect_initial_s=1,
                         reconnect_max_s=8, spool_dir=tmp_path),
            rng=random.Random(7), sleep=fake_sleep,
        )  # fmt: skip
        await tx.start()
        await enough.wait()
        await tx.stop(timeout=1)
        server.close()
        bases = [1, 2, 4, 8, 8, 8]
        for wait, base in zip(waits, bases, strict=False):
            assert 0.5 * base <= wait < 1.5 * base, (waits, bases)

    run(body)


def test_abandoning_a_connect_does_not_cancel_the_other_callers(tmp_path: Path) -> None:
    async def body() -> None:
        async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read()  # never answers the contact header

        server = await asyncio.start_server(mute, "127.0.0.1", 0)
        address = f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
        tx = TcpclConvergenceLayer(
            Recorder(), TcpclOptions(node_id="ipn:1.0", contact_timeout_s=30, spool_dir=tmp_path)
        )
        await tx.start()
        try:
            first = asyncio.create_task(tx.connect(address))
            await asyncio.sleep(0)
            second = asyncio.create_task(tx.connect(address))
            await asyncio.sleep(0)
            first.cancel()
            with pytest.raises(ConnectError, match="abandoned"):
                await second
        finally:
            await tx.stop(timeout=1)
            server.close()

    run(body)


def test_a_slow_store_does_not_end_the_session_by_idle_timeout(tmp_path: Path) -> None:
    """The node takes longer to store a bundle than the idle timeout (2 x keepalive of 1 s):
    the link keeps reading the peer's keepalives meanwhile, so the session survives and the
    bundle is acknowledged once stored."""

    class SlowStore(Recorder):
        async def bundle_received(self, bundle: Any) -> None:
            await asyncio.sleep(2.5)  # stands for a slow disk, not for synchronisation
            await super().bundle_received(bundle)

    async def body() -> None:
        rx_events, tx_events = SlowStore(), Recorder()
        rx = listener(rx_events, tmp_path, keepalive_s=1)
        tx = TcpclConvergenceLayer(
            tx_events, TcpclOptions(node_id="ipn:1.0", keepalive_s=1, spool_dir=tmp_path)
        )
        await rx.start()
        await tx.start()
        try:
            link = await tx.connect(f"127.0.0.1:{rx.port}")
            data = bundle_bytes(1000)
            await link.send(data)  # returns only once stored and acknowledged
            assert await rx_events.received.get() == data
            assert link.is_up and not tx_events.downs
        finally:
            await tx.stop(timeout=1)
            await rx.stop(timeout=1)

    run(body)
