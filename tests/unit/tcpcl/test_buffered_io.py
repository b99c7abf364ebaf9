"""The copy-free paths of both session versions: bytes read straight into the session's buffer
(get_buffer / buffer_updated) and segment data the driver writes itself (send_segment_header)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from dtncloud.errors import LocalProtocolError
from dtncloud.tcpcl.codes import Role
from dtncloud.tcpcl.config import SessionConfig
from dtncloud.tcpcl.events import Event, SegmentReceived, TransferSucceeded
from dtncloud.tcpcl.pair import SessionPair
from dtncloud.tcpcl.session import Session
from dtncloud.tcpcl.v3 import SessionV3

Factory = Callable[[Role, SessionConfig], Any]
VERSIONS: dict[str, Factory] = {
    "v4": lambda role, config: Session(role, config, 0),
    "v3": lambda role, config: SessionV3(role, config, 0),
}


class ReadInto:
    """A session that gets its input the BufferedProtocol way, in reads of given sizes."""

    def __init__(self, session: Any, steps: list[int]) -> None:
        self.session = session
        self.steps = steps
        self.turn = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.session, name)

    def receive_data(self, data: bytes, now: int) -> None:
        offset = 0
        while offset < len(data):
            room = self.session.get_buffer(-1)
            assert len(room) > 0
            size = min(len(room), self.steps[self.turn % len(self.steps)], len(data) - offset)
            self.turn += 1
            room[:size] = data[offset : offset + size]
            del room
            self.session.buffer_updated(size, now)
            offset += size


def run_transfers(version: str, wrap: Callable[[Any], Any]) -> tuple[list[Event], bytes]:
    make = VERSIONS[version]
    active = make(Role.ACTIVE, SessionConfig(node_id="ipn:1.0", max_segment_size=300_000))
    passive = make(Role.PASSIVE, SessionConfig(node_id="ipn:2.0"))
    pair = SessionPair(wrap(active), wrap(passive))
    pair.pump()
    bundles = [bytes([i]) * size for i, size in enumerate((1, 5000, 1_000_000, 300_000, 7))]
    for bundle in bundles:
        tid = pair.active.send_bundle(bundle, 0)
        pair.pump()
        received = pair.of_type("passive", SegmentReceived)
        assert b"".join(e.data for e in received[-(len(bundle) // 300_000 + 1) :]).endswith(bundle)
        pair.passive.accept_transfer(tid, 0)
        pair.pump()
    assert len(pair.of_type("active", TransferSucceeded)) == len(bundles)
    return pair.events["passive"], bytes(pair.wire["passive"])


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("steps", [[1 << 20], [65536], [7, 100_000, 3]])
def test_reading_into_the_session_is_receive_data_without_a_copy(
    version: str, steps: list[int]
) -> None:
    expected = run_transfers(version, lambda session: session)
    assert run_transfers(version, lambda session: ReadInto(session, steps)) == expected


def test_v4_segment_data_arrives_as_read_only_views() -> None:
    active = Session(Role.ACTIVE, SessionConfig(node_id="ipn:1.0"), 0)
    passive = ReadInto(Session(Role.PASSIVE, SessionConfig(node_id="ipn:2.0"), 0), [65536])
    pair = SessionPair(active, passive)
    pair.pump()
    pair.active.send_bundle(b"x" * 200_000, 0)
    pair.pump()
    (received,) = pair.of_type("passive", SegmentReceived)
    assert isinstance(received.data, memoryview) and received.data.readonly
    assert received.data == b"x" * 200_000


@pytest.mark.parametrize("version", VERSIONS)
def test_a_segment_header_then_the_data_written_by_the_driver(version: str) -> None:
    """What a driver does with sendfile: the same bytes on the wire as send_segment's."""
    make = VERSIONS[version]

    def transfer(by_header: bool) -> tuple[bytes, list[Event]]:
        config = SessionConfig(node_id="ipn:1.0", max_segment_size=4)
        pair = SessionPair(make(Role.ACTIVE, config), make(Role.PASSIVE, config))
        pair.pump()
        start = len(pair.wire["active"])
        data = b"0123456789"
        tid = pair.active.start_transfer(len(data), 0)
        for offset in range(0, len(data), 4):
            piece, end = data[offset : offset + 4], offset + 4 >= len(data)
            if by_header:
                pair.active.send_segment_header(tid, len(piece), 0, end=end)
                wire = pair.active.data_to_send() + piece
                pair.wire["active"] += wire
                pair.passive.receive_data(wire, 0)
            else:
                pair.active.send_segment(tid, piece, 0, end=end)
            pair.pump()
        pair.passive.accept_transfer(0, 0)
        pair.pump()
        assert pair.of_type("active", TransferSucceeded) == [TransferSucceeded(tid, 10)]
        return bytes(pair.wire["active"][start:]), pair.events["passive"]

    assert transfer(by_header=True) == transfer(by_header=False)


@pytest.mark.parametrize("version", VERSIONS)
def test_segment_headers_are_checked_like_segments(version: str) -> None:
    make = VERSIONS[version]
    config = SessionConfig(node_id="ipn:1.0", max_segment_size=4)
    pair = SessionPair(make(Role.ACTIVE, config), make(Role.PASSIVE, config))
    pair.pump()
    tid = pair.active.start_transfer(6, 0)
    with pytest.raises(LocalProtocolError):
        pair.active.send_segment_header(tid, 5, 0, end=False)  # over the segment size
    with pytest.raises(LocalProtocolError):
        pair.active.send_segment_header(tid, 4, 0, end=True)  # ends short of the length
    with pytest.raises(LocalProtocolError):
        pair.active.send_segment_header(tid + 1, 4, 0, end=False)  # not the open transfer
