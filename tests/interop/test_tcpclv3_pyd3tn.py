"""TCPCLv3 against pyd3tn (µD3TN's Python tools), whose ``pyd3tn.tcpcl`` speaks RFC 7242.

pyd3tn 0.15.2 sends a contact header with no flags and keepalive 0, puts each bundle in one
DATA_SEGMENT with START|END, never acknowledges, and ends a connection with a bare SHUTDOWN
(``0x50``). Its client reads our contact header in a single ``recv`` and insists on its exact
length, and reads only single-segment bundles. Checked here:

* in memory: the bytes pyd3tn's serializers produce make our session report the session and
  the bundle; the bytes our session produces satisfy pyd3tn's decoders;
* over a loopback socket: pyd3tn's ``TCPCLConnection`` client talks to our session, driven by
  a thread with socket timeouts, in both directions.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from pathlib import Path
from typing import Any

import pytest

from dtncloud.bpv7 import decode_bundle
from dtncloud.tcpcl.codes import Role, SessTermReason
from dtncloud.tcpcl.config import SessionConfig
from dtncloud.tcpcl.events import (
    ContactEstablished,
    Event,
    SegmentReceived,
    SessionClosed,
    SessionEnding,
    SessionEstablished,
    TransferSucceeded,
)
from dtncloud.tcpcl.v3 import SessionV3

tcpcl = pytest.importorskip("pyd3tn.tcpcl")
bundle7 = pytest.importorskip("pyd3tn.bundle7")

pytestmark = pytest.mark.interop

TIMEOUT_S = 10.0
U64_MAX = (1 << 64) - 1


def make_bundle(payload: bytes) -> bytes:
    return bytes(
        bundle7.serialize_bundle7(
            "dtn://pyd3tn/", "ipn:1.1", payload, creation_timestamp=1_700_000_000
        )
    )


def drain(session: SessionV3) -> list[Event]:
    events = []
    while (event := session.next_event()) is not None:
        events.append(event)
    return events


# -- in memory ------------------------------------------------------------------------------


def test_our_session_reads_what_pyd3tn_writes() -> None:
    session = SessionV3(Role.PASSIVE, SessionConfig(node_id="ipn:1.0"), 0)
    session.data_to_send()
    bundle = make_bundle(b"hello from pyd3tn")
    stream = (
        bytes(tcpcl.serialize_tcpcl_contact_header("dtn://pyd3tn/"))
        + bytes(tcpcl.serialize_tcpcl_single_bundle_segment(bundle))
        + b"\x50"
    )
    session.receive_data(stream, 0)
    assert drain(session) == [
        ContactEstablished(3, False, True),
        SessionEstablished("dtn://pyd3tn/", 0, U64_MAX, U64_MAX, False),
        SegmentReceived(0, bundle, True, True),
        SessionEnding(SessTermReason.UNKNOWN, True),
        # Without acks nothing waits for accept_transfer: the session closes at once.
        SessionClosed(
            SessTermReason.UNKNOWN, True, True, "SHUTDOWN by the peer, transfers settled"
        ),
    ]
    assert not session.negotiated.segment_acks  # pyd3tn requests nothing
    session.accept_transfer(0, 0)  # the driver may still accept: a no-op now
    assert session.data_to_send() == b""
    assert decode_bundle(bundle).payload == b"hello from pyd3tn"


def test_pyd3tn_reads_what_our_session_writes() -> None:
    session = SessionV3(Role.ACTIVE, SessionConfig(node_id="ipn:1.0", keepalive_s=30), 0)
    header = session.data_to_send()
    assert tcpcl.decode_tcpcl_contact_header(header) == {
        "version": 3,
        "flags": 0x0D,
        "keepalive_interval": 30,
        "eid": "ipn:1.0",
    }
    session.receive_data(bytes(tcpcl.serialize_tcpcl_contact_header("dtn://pyd3tn/")), 0)
    bundle = make_bundle(b"hello from dtncloud")
    session.send_bundle(bundle, 0)
    wire = session.data_to_send()  # no LENGTH message: pyd3tn did not ask for them
    kind, flags, length = tcpcl.decode_tcpcl_bundle_segment_header(wire)
    assert (kind, flags, length) == (1, 3, len(bundle))
    assert wire == bytes((0x13, len(bundle))) + bundle  # a bundle under 128 bytes
    assert TransferSucceeded(0, len(bundle)) in drain(session)
    bundle7.Bundle.parse(wire[-length:])  # pyd3tn can parse the bundle it would receive


# -- over a loopback socket ----------------------------------------------------------------


class SessionServer(threading.Thread):
    """Accepts one connection and drives a passive SessionV3 over it until it closes.

    Every bundle received is accepted and answered with ``reply`` (if given).
    """

    def __init__(self, reply: bytes | None) -> None:
        super().__init__(daemon=True)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(TIMEOUT_S)
        self.port = self.listener.getsockname()[1]
        self.reply = reply
        self.events: list[Event] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            connection, _ = self.listener.accept()
            with connection:
                connection.settimeout(TIMEOUT_S)
                self.serve(connection)
        except BaseException as exc:  # reported by the test thread
            self.error = exc
        finally:
            self.listener.close()

    def serve(self, connection: socket.socket) -> None:
        session = SessionV3(Role.PASSIVE, SessionConfig(node_id="ipn:1.0"), 0)
        connection.sendall(session.data_to_send())
        while not session.closed:
            data = connection.recv(65536)
            if data:
                session.receive_data(data, 0)
            else:
                session.connection_lost(0)
            for event in drain(session):
                self.events.append(event)
                if isinstance(event, SegmentReceived) and event.end:
                    session.accept_transfer(event.transfer_id, 0)
                    if self.reply is not None:
                        session.send_bundle(self.reply, 0)
            self.events.extend(drain(session))
            out = session.data_to_send()
            if out:
                connection.sendall(out)


def test_pyd3tn_client_and_our_session_over_loopback() -> None:
    ours = make_bundle(b"reply from dtncloud")
    theirs = make_bundle(b"bundle from pyd3tn")
    server = SessionServer(reply=ours)
    server.start()
    connection: Any = tcpcl.TCPCLConnection("dtn://pyd3tn/", "127.0.0.1", server.port, TIMEOUT_S)
    connection.sock.settimeout(TIMEOUT_S)
    try:
        header = connection.connect()
        assert header["eid"] == "ipn:1.0" and header["version"] == 3
        connection.send_bundle(theirs)
        assert connection.recv_bundle() == ours
    finally:
        connection.disconnect()  # sends a bare SHUTDOWN
    server.join(TIMEOUT_S)
    assert not server.is_alive() and server.error is None
    received = [e for e in server.events if isinstance(e, SegmentReceived)]
    assert received == [SegmentReceived(0, theirs, True, True)]
    assert TransferSucceeded(0, len(ours)) in server.events
    closed = server.events[-1]
    assert isinstance(closed, SessionClosed) and closed.clean and closed.by_peer


def test_pyd3tn_client_delivers_to_our_tcpcl_listener(tmp_path: Path) -> None:
    """pyd3tn's blocking client, in a thread, against the real driver's listener."""
    from dtncloud.cla.tcpcl import TcpclConvergenceLayer, TcpclOptions
    from tests.conformance.clas import Recorder

    bundles = [make_bundle(f"reading {i}".encode()) for i in range(3)]

    def client(port: int) -> None:
        with tcpcl.TCPCLConnection("dtn://pyd3tn/", "127.0.0.1", port) as connection:
            for bundle in bundles:
                connection.send_bundle(bundle)

    async def body() -> None:
        events = Recorder()
        listener = TcpclConvergenceLayer(
            events,
            TcpclOptions(node_id="ipn:2.0", listen="127.0.0.1", port=0, spool_dir=tmp_path),
        )
        await listener.start()
        try:
            await asyncio.to_thread(client, listener.port)
            received = [await events.received.get() for _ in bundles]
            assert received == bundles
            assert events.ups[0].peer_node_id == "dtn://pyd3tn/"
            assert events.ups[0].cla_name == "tcpclv3"
        finally:
            await listener.stop()

    asyncio.run(asyncio.wait_for(body(), 30))
