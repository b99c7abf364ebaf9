"""The TCPCL driver on loopback: streaming, TLS, reconnection, refusals, hostile peers."""

from __future__ import annotations

import asyncio
import os
import socket
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from dtncloud.bpv7 import Bundle, encode_bundle
from dtncloud.cla import tcpcl_link
from dtncloud.cla.certs import make_ca, make_node_certificate, write_pem_files
from dtncloud.cla.tcpcl import TcpclConvergenceLayer, TcpclOptions
from dtncloud.cla.tls import TlsConfig
from dtncloud.errors import ConnectError, LinkDown, TransferRefused
from dtncloud.tcpcl.codes import Role, XferRefuseReason
from dtncloud.tcpcl.config import SessionConfig
from dtncloud.tcpcl.events import SegmentReceived, SessionClosed
from dtncloud.tcpcl.session import Session
from dtncloud.tcpcl.v3 import SessionV3
from tests.conformance.clas import Recorder

pytestmark = pytest.mark.timeout(120)


def run(body: Callable[[], Awaitable[None]], timeout: float = 60) -> None:
    async def main() -> None:
        await asyncio.wait_for(body(), timeout)

    asyncio.run(main())


def bundle_bytes(size: int, sequence: int = 0) -> bytes:
    bundle = Bundle.create(
        source="ipn:1.1", destination="ipn:2.1", payload=os.urandom(size), creation_time=7,
        sequence=sequence,
    )  # fmt: skip
    return encode_bundle(bundle)


@asynccontextmanager
async def started(*clas: TcpclConvergenceLayer) -> AsyncIterator[None]:
    """Start the CLAs; stop them (last first) when the block ends, however it ends."""
    for cla in clas:
        await cla.start()
    try:
        yield
    finally:
        for cla in reversed(clas):
            await cla.stop()


def listener(events: Any, tmp: Path, **options: Any) -> TcpclConvergenceLayer:
    options.setdefault("node_id", "ipn:2.0")
    return TcpclConvergenceLayer(
        events, TcpclOptions(listen="127.0.0.1", port=0, spool_dir=tmp / "rx", **options)
    )


def sender(events: Any, tmp: Path, **options: Any) -> TcpclConvergenceLayer:
    options.setdefault("node_id", "ipn:1.0")
    return TcpclConvergenceLayer(events, TcpclOptions(spool_dir=tmp / "tx", **options))


def test_a_large_bundle_streams_through_spool_files_without_sitting_in_memory(
    tmp_path: Path,
) -> None:
    size = 64 << 20
    source = tmp_path / "big.bundle"
    with open(source, "wb") as handle:
        for index in range(size >> 20):
            handle.write(bytes([index]) * (1 << 20))
    received: list[Path] = []

    class Keeper(Recorder):
        async def bundle_received(self, bundle: Any) -> None:
            assert bundle.path is not None, "a large bundle must arrive in a spool file"
            kept = tmp_path / "kept.bundle"
            os.replace(bundle.path, kept)  # the node takes the file over
            received.append(kept)

    async def body() -> None:
        rx = listener(Keeper(), tmp_path, transfer_mru=1 << 30)
        tx = sender(Recorder(), tmp_path)
        async with started(rx, tx):
            link = await tx.connect(f"127.0.0.1:{rx.port}")
            tracemalloc.start()
            await link.send(source)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        # Both ends ran in this process: neither held the bundle whole.
        # What is in flight is bounded by per-session constants (socket and write buffers, a
        # segment, the spool writer's backlog), not by the size of the bundle.
        assert peak < size // 3, f"peak traced memory {peak} for a {size}-byte bundle"

    run(body)
    assert len(received) == 1
    with open(received[0], "rb") as a, open(source, "rb") as b:
        while chunk := a.read(1 << 20):
            assert chunk == b.read(1 << 20)
        assert b.read(1) == b""


def test_a_bundle_the_node_already_holds_is_refused_as_completed_early(tmp_path: Path) -> None:
    data = bundle_bytes(200_000)
    delivered = Recorder()

    async def body() -> None:
        rx = TcpclConvergenceLayer(
            delivered,
            TcpclOptions(node_id="ipn:2.0", listen="127.0.0.1", port=0, segment_mru=10_000,
                         spool_dir=tmp_path / "rx"),
            known_bundle=lambda bundle_id: str(bundle_id) == "ipn:1.0@7.0",
        )  # fmt: skip
        tx = sender(Recorder(), tmp_path)
        async with started(rx, tx):
            link = await tx.connect(f"127.0.0.1:{rx.port}")
            with pytest.raises(TransferRefused) as info:
                await link.send(data)
            assert info.value.reason == XferRefuseReason.COMPLETED
            other = bundle_bytes(1000, sequence=1)
            await link.send(other)
            assert await delivered.received.get() == other

    run(body)


async def vanishing_peer(segment_mru: int, got: list[int]) -> asyncio.Server:
    """A hand-driven passive TCPCLv4 session that hangs up after three segments, noting the
    length of each segment it received in ``got``."""

    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        session = Session(Role.PASSIVE, SessionConfig(node_id="ipn:9.0", segment_mru=segment_mru),
                          int(loop.time() * 1000))  # fmt: skip
        while chunk := await reader.read(65536):
            session.receive_data(chunk, int(loop.time() * 1000))
            while (event := session.next_event()) is not None:
                if isinstance(event, SegmentReceived):
                    got.append(len(event.data))
            writer.write(session.data_to_send())
            if len(got) >= 3:
                await writer.drain()
                writer.transport.abort()
                return

    return await asyncio.start_server(peer, "127.0.0.1", 0)


def test_a_peer_that_vanishes_mid_transfer_reports_what_it_acknowledged(tmp_path: Path) -> None:
    """A peer that hangs up after a few segments."""
    data = bundle_bytes(400_000)

    async def body() -> None:
        got: list[int] = []
        server = await vanishing_peer(50_000, got)
        port = server.sockets[0].getsockname()[1]
        tx = sender(Recorder(), tmp_path, max_segment_size=50_000)
        await tx.start()
        try:
            link = await tx.connect(f"127.0.0.1:{port}")
            with pytest.raises(LinkDown) as info:
                await link.send(data)
            assert info.value.acknowledged % 50_000 == 0
            assert 0 < info.value.acknowledged <= sum(got) < len(data)
        finally:
            await tx.stop()
            server.close()

    run(body)


def test_a_peer_that_vanishes_mid_file_transfer_reports_what_it_acknowledged(
    tmp_path: Path,
) -> None:
    """As above, with the bundle sent from a file (with sendfile): no hang, a LinkDown."""
    source = tmp_path / "bundle"
    source.write_bytes(bundle_bytes(2_000_000))

    async def body() -> None:
        got: list[int] = []
        server = await vanishing_peer(100_000, got)
        port = server.sockets[0].getsockname()[1]
        tx = sender(Recorder(), tmp_path)
        await tx.start()
        try:
            link = await tx.connect(f"127.0.0.1:{port}")
            with pytest.raises(LinkDown) as info:
                await link.send(source)
            assert info.value.acknowledged % 100_000 == 0
            assert 0 < info.value.acknowledged <= sum(got) < source.stat().st_size
        finally:
            await tx.stop()
            server.close()

    run(body, timeout=30)


def test_a_file_shorter_than_announced_ends_the_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file that shrank after its length was taken: the peer was promised bytes that will
    never come, so the session is dropped and the send fails; the next send reconnects."""
    source = tmp_path / "bundle"
    source.write_bytes(bundle_bytes(300_000))
    real = source.stat().st_size
    monkeypatch.setattr(tcpcl_link, "outgoing_length", lambda bundle: real + 1000)

    async def body() -> None:
        rx_events = Recorder()
        rx = listener(rx_events, tmp_path, segment_mru=100_000)
        tx = sender(Recorder(), tmp_path)
        async with started(rx, tx):
            link = await tx.connect(f"127.0.0.1:{rx.port}")
            with pytest.raises(LinkDown, match="sending failed halfway"):
                await link.send(source)
            await asyncio.wait_for(link.wait_closed(), 5)
            assert not link.is_up and rx_events.received.empty()

    run(body, timeout=30)


@pytest.mark.parametrize("use_tls", [False, True])
def test_files_cross_in_both_directions_at_once(tmp_path: Path, pki: Any, use_tls: bool) -> None:
    """Each side sends a file larger than what the sockets hold, with segments larger still,
    at the same time over one session: neither may stop reading while it sends."""
    size = 24 << 20
    files = []
    for name in ("a", "b"):
        path = tmp_path / f"{name}.bundle"
        with open(path, "wb") as handle:
            for index in range(size >> 20):
                handle.write(bytes([index + ord(name)]) * (1 << 20))
        files.append(path)
    options: dict[str, Any] = {"segment_mru": 8 << 20, "max_segment_size": 8 << 20,
                               "transfer_mru": 1 << 30}  # fmt: skip

    async def body() -> None:
        rx_events, tx_events = Recorder(), Recorder()
        rx = listener(
            rx_events, tmp_path, **options, **({"tls": tls(pki, "node2")} if use_tls else {})
        )
        tx = sender(
            tx_events, tmp_path, **options, **({"tls": tls(pki, "node1")} if use_tls else {})
        )
        async with started(rx, tx):
            link = await tx.connect(f"127.0.0.1:{rx.port}")
            await rx_events.came_up.wait()
            back = rx_events.ups[0]
            for end in (link, back):
                sock = end._stream.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 16)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
            await asyncio.gather(link.send(files[0]), back.send(files[1]))
            assert await rx_events.received.get() == files[0].read_bytes()
            assert await tx_events.received.get() == files[1].read_bytes()

    run(body, timeout=60)


def test_many_concurrent_sessions_to_one_listener(tmp_path: Path) -> None:
    async def body() -> None:
        rx_events = Recorder()
        rx = listener(rx_events, tmp_path)
        await rx.start()
        senders = [sender(Recorder(), tmp_path, node_id=f"ipn:{10 + i}.0") for i in range(12)]
        try:
            for tx in senders:
                await tx.start()

            async def talk(index: int, tx: TcpclConvergenceLayer) -> None:
                link = await tx.connect(f"127.0.0.1:{rx.port}")
                for n in range(5):
                    await link.send(bundle_bytes(3000, sequence=index * 100 + n))

            await asyncio.gather(*(talk(i, tx) for i, tx in enumerate(senders)))
            assert rx_events.received.qsize() == 60
            assert {link.peer_node_id for link in rx_events.ups} == {
                f"ipn:{10 + i}.0" for i in range(12)
            }
        finally:
            for tx in senders:
                await tx.stop()
            await rx.stop()

    run(body)


def test_configured_peers_are_reconnected_with_backoff(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def body() -> None:
        tx_events = Recorder()
        tx = sender(
            tx_events, tmp_path, peers=(f"127.0.0.1:{port}",),
            reconnect_initial_s=0.02, reconnect_max_s=0.1,
        )  # fmt: skip
        await tx.start()  # nothing listens yet: attempts fail and back off
        try:
            for round_ in range(2):
                rx_events = Recorder()
                rx = TcpclConvergenceLayer(
                    rx_events, TcpclOptions(node_id="ipn:2.0", listen="127.0.0.1", port=port,
                                            spool_dir=tmp_path / "rx"),
                )  # fmt: skip
                await rx.start()
                await tx_events.came_up.wait()
                tx_events.came_up.clear()
                link = tx_events.ups[round_]
                await link.send(bundle_bytes(100, sequence=round_))
                assert await rx_events.received.get()
                await rx.stop()
        finally:
            await tx.stop()

    run(body)


def test_a_hostile_peer_does_not_disturb_the_listener(tmp_path: Path) -> None:
    async def body() -> None:
        rx_events = Recorder()
        rx = listener(rx_events, tmp_path)
        await rx.start()
        try:
            hostile = [
                b"GET / HTTP/1.1\r\n\r\n",
                b"dtn!\x04\x00" + b"\x07" + b"\xff" * 40,  # SESS_INIT with absurd lengths
                b"dtn!\x04\x00",  # then silence
                b"dtn!\x03\x00\x00\x3c" + b"\xff" * 30,  # v3 header with a runaway SDNV
            ]
            writers = []
            for junk in hostile:
                reader, writer = await asyncio.open_connection("127.0.0.1", rx.port)
                writer.write(junk)
                await writer.drain()
                writers.append((reader, writer))
            tx = sender(Recorder(), tmp_path)
            await tx.start()
            try:
                link = await tx.connect(f"127.0.0.1:{rx.port}")
                data = bundle_bytes(5000)
                await link.send(data)
                assert await rx_events.received.get() == data
            finally:
                await tx.stop()
            for _, writer in writers:
                writer.close()
        finally:
            await rx.stop()

    run(body)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    directory = tmp_path_factory.mktemp("pki")
    ca_cert, ca_key = make_ca("test CA")
    other_ca_cert, other_ca_key = make_ca("other CA")
    files = {"ca": write_pem_files(directory, "ca", ca_cert, ca_key)}
    files["node1"] = write_pem_files(
        directory, "node1", *make_node_certificate(ca_cert, ca_key, node_id="ipn:1.0")
    )
    files["node2"] = write_pem_files(
        directory, "node2", *make_node_certificate(ca_cert, ca_key, node_id="ipn:2.0")
    )
    files["impostor"] = write_pem_files(
        directory,
        "impostor",
        *make_node_certificate(other_ca_cert, other_ca_key, node_id="ipn:2.0"),
    )
    return files


def tls(pki: dict[str, tuple[Path, Path]], name: str, *, require: bool = True) -> TlsConfig:
    cert, key = pki[name]
    return TlsConfig(certificate=cert, private_key=key, ca=pki["ca"][0], require=require)


def test_tls_session_authenticates_both_node_ids(tmp_path: Path, pki: Any) -> None:
    async def body() -> None:
        rx_events = Recorder()
        rx = listener(rx_events, tmp_path, tls=tls(pki, "node2"))
        tx = sender(Recorder(), tmp_path, tls=tls(pki, "node1"))
        async with started(rx, tx):
            link = await tx.connect(f"127.0.0.1:{rx.port}")
            assert link.tls and link.peer_node_id == "ipn:2.0"
            data = bundle_bytes(70_000)
            await link.send(data)
            assert await rx_events.received.get() == data
            assert rx_events.ups[0].peer_node_id == "ipn:1.0"

    run(body)


def test_tls_refuses_a_peer_claiming_another_node_id(tmp_path: Path, pki: Any) -> None:
    async def body() -> None:
        rx = listener(Recorder(), tmp_path, tls=tls(pki, "node2"), node_id="ipn:3.0")
        tx = sender(Recorder(), tmp_path, tls=tls(pki, "node1"))
        async with started(rx, tx):
            with pytest.raises(ConnectError, match=r"ipn:2\.0|ipn:3\.0"):
                await tx.connect(f"127.0.0.1:{rx.port}")

    run(body)


def test_tls_refuses_a_certificate_from_an_unknown_ca(tmp_path: Path, pki: Any) -> None:
    async def body() -> None:
        rx = listener(Recorder(), tmp_path, tls=tls(pki, "impostor"))
        tx = sender(Recorder(), tmp_path, tls=tls(pki, "node1"))
        async with started(rx, tx):
            with pytest.raises(ConnectError, match=r"TLS|certificate"):
                await tx.connect(f"127.0.0.1:{rx.port}")

    run(body)


def test_require_tls_refuses_a_plain_peer(tmp_path: Path, pki: Any) -> None:
    async def body() -> None:
        rx = listener(Recorder(), tmp_path, tls=tls(pki, "node2", require=True))
        tx = sender(Recorder(), tmp_path)
        async with started(rx, tx):
            with pytest.raises(ConnectError):
                await tx.connect(f"127.0.0.1:{rx.port}")

    run(body)


def test_tcpclv3_sender_reaches_the_same_listener(tmp_path: Path) -> None:
    async def body() -> None:
        rx_events = Recorder()
        rx = listener(rx_events, tmp_path)
        tx = sender(Recorder(), tmp_path, version=3)
        async with started(rx, tx):
            link = await tx.connect(f"127.0.0.1:{rx.port}")
            assert link.cla_name == "tcpclv3"
            data = bundle_bytes(50_000)
            await link.send(data)
            assert await rx_events.received.get() == data
            assert rx_events.ups[0].peer_node_id == "ipn:1.0"

    run(body)


def test_closed_session_event_is_final(tmp_path: Path) -> None:
    """SessionClosed ends the link: link_down is reported once on each side."""

    async def body() -> None:
        rx_events, tx_events = Recorder(), Recorder()
        rx = listener(rx_events, tmp_path)
        tx = sender(tx_events, tmp_path)
        async with started(rx, tx):
            link = await tx.connect(f"127.0.0.1:{rx.port}")
            await link.send(bundle_bytes(100))
            await link.close()
            await rx_events.went_down.wait()
            assert len(tx_events.downs) == 1 and len(rx_events.downs) == 1

    assert SessionClosed  # the event the driver turns into link_down
    run(body)


async def _v3_only_peer(received: list[bytes]) -> asyncio.Server:
    """A TCPCLv3-only node (as ION is): a passive SessionV3 on every connection."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        now = lambda: int(loop.time() * 1000)  # noqa: E731
        session = SessionV3(Role.PASSIVE, SessionConfig(node_id="ipn:3.0"), now())
        parts: list[bytes] = []
        writer.write(session.data_to_send())
        while not session.closed:
            chunk = await reader.read(65536)
            if not chunk:
                session.connection_lost(now())
                break
            session.receive_data(chunk, now())
            while (event := session.next_event()) is not None:
                if isinstance(event, SegmentReceived):
                    parts.append(event.data)
                    if event.end:
                        received.append(b"".join(parts))
                        parts.clear()
                        session.accept_transfer(event.transfer_id, now())
            writer.write(session.data_to_send())
        writer.close()

    return await asyncio.start_server(serve, "127.0.0.1", 0)


def test_a_v3_only_peer_is_reached_by_falling_back_from_v4(tmp_path: Path) -> None:
    async def body() -> None:
        received: list[bytes] = []
        server = await _v3_only_peer(received)
        port = server.sockets[0].getsockname()[1]
        tx = sender(Recorder(), tmp_path)  # speaks version 4 by default
        await tx.start()
        try:
            link = await tx.connect(f"127.0.0.1:{port}")
            assert link.cla_name == "tcpclv3" and link.peer_node_id == "ipn:3.0"
            data = bundle_bytes(20_000)
            await link.send(data)
            assert received == [data]
        finally:
            await tx.stop()
            server.close()

    run(body)


def test_a_listener_that_requires_tls_turns_away_tcpclv3(tmp_path: Path, pki: Any) -> None:
    async def body() -> None:
        rx = listener(Recorder(), tmp_path, tls=tls(pki, "node2", require=True))
        tx = sender(Recorder(), tmp_path, version=3)
        async with started(rx, tx):
            with pytest.raises(ConnectError):
                await tx.connect(f"127.0.0.1:{rx.port}")

    run(body)


def test_the_driver_keeps_time_keepalives_then_idle_timeout(tmp_path: Path) -> None:
    """The link's one timer, in real time: a peer that goes silent after SESS_INIT first gets
    KEEPALIVEs, then SESS_TERM "idle timeout" (keepalive 1 s, so about 2 s in all)."""

    async def body() -> None:
        rx_events = Recorder()
        rx = listener(rx_events, tmp_path, keepalive_s=1)
        async with started(rx):
            reader, writer = await asyncio.open_connection("127.0.0.1", rx.port)
            loop = asyncio.get_running_loop()
            now = lambda: int(loop.time() * 1000)  # noqa: E731
            peer = Session(Role.ACTIVE, SessionConfig(node_id="ipn:9.0", keepalive_s=1), now())
            writer.write(peer.data_to_send())
            while not peer.established:
                peer.receive_data(await reader.read(4096), now())
                writer.write(peer.data_to_send())
            # From here on the peer says nothing and only listens.
            heard = bytearray()
            while chunk := await reader.read(4096):
                heard += chunk
            writer.close()
            await rx_events.went_down.wait()
            assert heard.startswith(b"\x04"), heard.hex()  # a KEEPALIVE came first
            assert heard.endswith(bytes([0x05, 0x00, 0x01])), heard.hex()  # SESS_TERM, idle
            assert "idle timeout" in rx_events.downs[0][1]

    run(body, timeout=20)


@pytest.mark.parametrize("version", [4, 3])
def test_peers_beyond_max_sessions_are_turned_away_as_busy(tmp_path: Path, version: int) -> None:
    async def body() -> None:
        rx_events = Recorder()
        rx = listener(rx_events, tmp_path, max_sessions=1)
        first = sender(Recorder(), tmp_path, node_id="ipn:11.0")
        second = sender(Recorder(), tmp_path, node_id="ipn:12.0", version=version)
        async with started(rx, first, second):
            link = await first.connect(f"127.0.0.1:{rx.port}")
            with pytest.raises(ConnectError, match="busy"):
                await second.connect(f"127.0.0.1:{rx.port}")
            data = bundle_bytes(1000)
            await link.send(data)  # the admitted session is unaffected
            assert await rx_events.received.get() == data

    run(body)
