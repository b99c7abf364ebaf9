"""The TCPCLv4 session: transfers, acknowledgements and refusals."""

from __future__ import annotations

import pytest

from dtncloud.errors import LocalProtocolError, TransferRefused
from dtncloud.tcpcl.codes import SessTermReason, XferRefuseReason
from dtncloud.tcpcl.events import (
    ExtensionItem,
    IncomingTransferAborted,
    PeerMisbehaved,
    SegmentAcknowledged,
    SegmentReceived,
    SessionClosed,
    TransferRefusedByPeer,
    TransferSucceeded,
    UnfinishedTransfer,
)
from dtncloud.tcpcl.messages import (
    Keepalive,
    MessageReader,
    MsgReject,
    XferAck,
    XferRefuse,
    XferSegment,
)
from dtncloud.tcpcl.session import Session
from dtncloud.tcpcl.states import SessionState
from tests.unit.tcpcl.session_helpers import (
    ACTIVE,
    CONTACT,
    END,
    PASSIVE,
    START,
    UNEXPECTED,
    established,
    events,
    length_ext,
    make,
    of,
    raw,
    refusals,
    sent,
)


# --- transfers -------------------------------------------------------------------------------
def test_single_segment_transfer_holds_back_the_final_ack() -> None:
    pair = established()
    tid = pair.active.send_bundle(b"bundle", 0)
    assert tid == 0 and pair.active.outgoing_open
    start = len(pair.wire["active"])
    pair.pump()
    # START|END, an empty extension block (no Transfer Length for one segment), the data.
    assert bytes(pair.wire["active"][start:]).hex() == (
        "0103" + "00" * 8 + "00000000" + "0000000000000006" + b"bundle".hex()
    )
    assert pair.take("passive") == [SegmentReceived(0, b"bundle", True, True, None)]
    assert not pair.events["active"] and pair.active.outgoing_open  # no ack yet
    pair.passive.accept_transfer(0, 0)
    pair.pump()
    assert pair.take("active") == [TransferSucceeded(0, 6)]
    assert not pair.active.outgoing_open
    assert pair.active.send_bundle(b"next", 0) == 1  # IDs count up from 0


def test_multi_segment_transfer_acks_each_segment_cumulatively() -> None:
    pair = established(passive={"segment_mru": 100})
    assert pair.active.max_segment_size == 100
    data = bytes(range(250))
    start = len(pair.wire["active"])
    tid = pair.active.send_bundle(data, 0)
    pair.pump()
    reader = MessageReader(max_segment=1000)
    reader.feed(bytes(pair.wire["active"][start:]))
    segments = [reader.next() for _ in range(3)]
    assert segments == [
        XferSegment(START, tid, data[:100], (length_ext(250),)),
        XferSegment(0, tid, data[100:200]),
        XferSegment(END, tid, data[200:]),
    ]
    assert pair.take("passive") == [
        SegmentReceived(tid, data[:100], True, False, 250),
        SegmentReceived(tid, data[100:200], False, False),
        SegmentReceived(tid, data[200:], False, True),
    ]
    assert pair.take("active") == [SegmentAcknowledged(tid, 100), SegmentAcknowledged(tid, 200)]
    acks_start = len(pair.wire["passive"])
    pair.passive.accept_transfer(tid, 0)
    pair.pump()
    assert bytes(pair.wire["passive"][acks_start:]) == XferAck(END, tid, 250).encode()
    assert pair.take("active") == [TransferSucceeded(tid, 250)]


def test_transfer_in_pieces_by_hand() -> None:
    pair = established(passive={"segment_mru": 10})
    active = pair.active
    tid = active.start_transfer(25, 0)
    with pytest.raises(LocalProtocolError):
        active.start_transfer(1, 0)  # one transfer being sent at a time
    with pytest.raises(LocalProtocolError):
        active.send_segment(tid, b"x" * 11, 0, end=False)  # over the peer's segment MRU
    with pytest.raises(LocalProtocolError):
        active.send_segment(tid, b"x" * 5, 0, end=True)  # END before 25 bytes
    with pytest.raises(LocalProtocolError):
        active.send_segment(tid + 1, b"x", 0, end=False)  # not open
    active.send_segment(tid, b"a" * 10, 0, end=False)
    active.send_segment(tid, bytearray(b"b" * 10), 0, end=False)
    with pytest.raises(LocalProtocolError):
        active.send_segment(tid, b"c" * 6, 0, end=True)  # past the total
    active.send_segment(tid, memoryview(b"c" * 5), 0, end=True)
    with pytest.raises(LocalProtocolError):
        active.send_segment(tid, b"", 0, end=True)  # already ended
    pair.pump()
    received = pair.take("passive")
    assert b"".join(e.data for e in received) == b"a" * 10 + b"b" * 10 + b"c" * 5
    pair.passive.accept_transfer(tid, 0)
    pair.pump()
    assert pair.take("active")[-1] == TransferSucceeded(tid, 25)


def test_outgoing_transfers_are_pipelined() -> None:
    pair = established(passive={"segment_mru": 10})
    active = pair.active
    first = active.start_transfer(15, 0)
    active.send_segment(first, bytes(10), 0, end=False)
    assert active.sending
    with pytest.raises(LocalProtocolError):
        active.start_transfer(1, 0)  # segments of two transfers never interleave
    active.send_segment(first, bytes(5), 0, end=True)
    assert not active.sending and active.outgoing_open
    second = active.send_bundle(b"second", 0)  # before the first's final ack
    third = active.send_bundle(b"third", 0)
    pair.pump()
    assert [e.transfer_id for e in pair.take("passive") if e.end] == [first, second, third]
    for tid in (third, first):  # the receiver accepts in any order
        pair.passive.accept_transfer(tid, 0)
    pair.pump()
    assert pair.take("active") == [
        SegmentAcknowledged(first, 10),
        TransferSucceeded(third, 5),
        TransferSucceeded(first, 15),
    ]
    assert active.outgoing_open  # the second still awaits its final ack
    pair.disconnect()
    (closed,) = pair.take("active")
    assert closed.unfinished == (UnfinishedTransfer(second, 0, 6, 6),)


def test_empty_bundle() -> None:
    pair = established()
    tid = pair.active.send_bundle(b"", 0)
    pair.pump()
    assert pair.take("passive") == [SegmentReceived(tid, b"", True, True)]
    pair.passive.accept_transfer(tid, 0)
    pair.pump()
    assert pair.take("active") == [TransferSucceeded(tid, 0)]


def test_commands_in_the_wrong_state_raise() -> None:
    session = make(ACTIVE)
    with pytest.raises(LocalProtocolError):
        session.start_transfer(10, 0)
    with pytest.raises(LocalProtocolError):
        session.send_bundle(b"x", 0)
    with pytest.raises(LocalProtocolError):
        session.accept_transfer(0, 0)
    with pytest.raises(LocalProtocolError):
        session.refuse_transfer(0, XferRefuseReason.UNKNOWN, 0)


def test_transfer_over_the_peer_transfer_mru_is_refused_locally() -> None:
    pair = established(passive={"transfer_mru": 1000})
    with pytest.raises(TransferRefused) as info:
        pair.active.send_bundle(bytes(1001), 0)
    assert info.value.reason == XferRefuseReason.NO_RESOURCES
    assert not pair.active.outgoing_open
    pair.active.send_bundle(bytes(1000), 0)


def test_ack_copies_the_segment_flags_including_unknown_bits() -> None:
    session = raw(PASSIVE)
    session.receive_data(XferSegment(START | 0x40, 5, b"abc").encode(), 0)
    assert sent(session) == [XferAck(START | 0x40, 5, 3)]
    session.receive_data(XferSegment(END | 0x80, 5, b"de").encode(), 0)
    assert session.data_to_send() == b""
    session.accept_transfer(5, 0)
    assert sent(session) == [XferAck(END | 0x80, 5, 5)]


def test_pipelined_incoming_transfers_can_be_accepted_in_any_order() -> None:
    session = raw(PASSIVE)
    session.receive_data(
        XferSegment(START | END, 0, b"one").encode() + XferSegment(START | END, 1, b"two").encode(),
        0,
    )
    assert [e.data for e in events(session)] == [b"one", b"two"]
    session.accept_transfer(1, 0)
    session.accept_transfer(0, 0)
    assert sent(session) == [XferAck(3, 1, 3), XferAck(3, 0, 3)]
    with pytest.raises(LocalProtocolError):
        session.accept_transfer(0, 0)


def test_transfer_id_exhaustion_ends_the_session() -> None:
    pair = established()
    pair.active._next_transfer_id = 2**64 - 1  # the last ID a session may use
    tid = pair.active.send_bundle(b"last", 0)
    assert tid == 2**64 - 1
    pair.pump()
    pair.passive.accept_transfer(tid, 0)
    pair.pump()
    assert pair.take("active") == [TransferSucceeded(tid, 4)]
    with pytest.raises(LocalProtocolError):
        pair.active.send_bundle(b"one more", 0)
    pair.pump()
    assert pair.active.closed and pair.passive.closed
    (closed,) = of(SessionClosed, pair.events["passive"])
    assert closed.reason is SessTermReason.RESOURCE_EXHAUSTION and closed.clean


# --- refusals ----------------------------------------------------------------------------
@pytest.mark.parametrize("reason", [*XferRefuseReason, 0xF3])
@pytest.mark.parametrize("sender", ["active", "passive"])
def test_receiver_refuses_with_every_reason(sender: str, reason: int) -> None:
    pair = established(active={"segment_mru": 100}, passive={"segment_mru": 100})
    receiver = "passive" if sender == "active" else "active"
    tx: Session = getattr(pair, sender)
    rx: Session = getattr(pair, receiver)
    tid = tx.start_transfer(300, 0)
    tx.send_segment(tid, bytes(100), 0, end=False)
    pair.pump()
    assert pair.take(receiver) == [SegmentReceived(tid, bytes(100), True, False, 300)]
    rx.refuse_transfer(tid, reason, 0)  # type: ignore[arg-type]
    tx.send_segment(tid, bytes(100), 0, end=False)  # crosses the refusal on the wire
    pair.pump()
    assert pair.take(sender) == [
        SegmentAcknowledged(tid, 100),
        TransferRefusedByPeer(tid, reason, acknowledged=100),
    ]
    assert not pair.take(receiver)  # the late segment is refused again, not delivered
    assert pair.wire[receiver].endswith(XferRefuse(reason, tid).encode() * 2)
    with pytest.raises(TransferRefused) as info:
        tx.send_segment(tid, bytes(100), 0, end=True)
    assert info.value.reason == reason
    assert not tx.outgoing_open
    assert tx.send_bundle(b"next", 0) == tid + 1  # a fresh transfer goes through
    pair.pump()
    assert pair.take(receiver) == [SegmentReceived(tid + 1, b"next", True, True)]


def test_refusing_a_complete_transfer_instead_of_accepting() -> None:
    pair = established()
    tid = pair.active.send_bundle(b"dup", 0)
    pair.pump()
    pair.passive.refuse_transfer(tid, XferRefuseReason.COMPLETED, 0)
    pair.pump()
    assert pair.take("active") == [TransferRefusedByPeer(tid, XferRefuseReason.COMPLETED, 0)]
    with pytest.raises(LocalProtocolError):
        pair.passive.accept_transfer(tid, 0)


def test_receiver_enforces_its_transfer_mru_by_extension() -> None:
    session = raw(PASSIVE, transfer_mru=1000)
    session.receive_data(XferSegment(START, 0, bytes(10), (length_ext(1001),)).encode(), 0)
    assert refusals(session) == [XferRefuse(XferRefuseReason.NO_RESOURCES, 0)]
    got = events(session)
    assert of(IncomingTransferAborted, got) == [
        IncomingTransferAborted(0, XferRefuseReason.NO_RESOURCES, by_peer=False)
    ]
    assert not of(SegmentReceived, got)


def test_receiver_enforces_its_transfer_mru_by_bytes() -> None:
    session = raw(PASSIVE, transfer_mru=1000)
    session.receive_data(XferSegment(START, 0, bytes(600)).encode(), 0)
    session.receive_data(XferSegment(END, 0, bytes(401)).encode(), 0)
    assert sent(session) == [XferAck(START, 0, 600), XferRefuse(XferRefuseReason.NO_RESOURCES, 0)]
    got = events(session)
    assert len(of(SegmentReceived, got)) == 1
    assert of(IncomingTransferAborted, got)[0].reason is XferRefuseReason.NO_RESOURCES


def test_segment_over_our_segment_mru_is_skipped_and_refused() -> None:
    session = raw(PASSIVE, segment_mru=1000)
    session.receive_data(
        XferSegment(START | END, 0, bytes(1001)).encode() + Keepalive().encode(), 0
    )
    assert refusals(session) == [XferRefuse(XferRefuseReason.NOT_ACCEPTABLE, 0)]
    got = events(session)
    assert of(PeerMisbehaved, got) and not of(SegmentReceived, got)
    assert session._reader.buffered == 0
    session.receive_data(XferSegment(START | END, 1, b"ok").encode(), 0)
    assert events(session) == [SegmentReceived(1, b"ok", True, True)]


def test_late_segments_of_a_refused_transfer_are_refused_again() -> None:
    session = raw(PASSIVE, transfer_mru=100)
    stream = (
        XferSegment(START, 0, bytes(10), (length_ext(500),)).encode()
        + XferSegment(0, 0, bytes(50)).encode()
        + XferSegment(END, 0, bytes(50)).encode()
        + XferSegment(START | END, 1, b"fine").encode()
    )
    session.receive_data(stream, 0)
    assert refusals(session) == [XferRefuse(XferRefuseReason.NO_RESOURCES, 0)] * 3
    got = events(session)
    assert len(of(IncomingTransferAborted, got)) == 1
    assert of(SegmentReceived, got) == [SegmentReceived(1, b"fine", True, True)]


def test_unknown_transfer_extensions() -> None:
    session = raw(PASSIVE)
    critical = ExtensionItem(0x8123, b"?", critical=True)
    plain = ExtensionItem(0x8124, b"??")
    session.receive_data(XferSegment(START | END, 0, b"a", (critical,)).encode(), 0)
    assert refusals(session) == [XferRefuse(XferRefuseReason.EXTENSION_FAILURE, 0)]
    assert not of(PeerMisbehaved, events(session))  # not a protocol error
    session.receive_data(XferSegment(START | END, 1, b"b", (plain,)).encode(), 0)
    assert events(session) == [SegmentReceived(1, b"b", True, True)]


@pytest.mark.parametrize(
    "stream",
    [
        XferSegment(START, 0, b"ab", (length_ext(5),)).encode()
        + XferSegment(END, 0, b"cd").encode(),
        XferSegment(START, 0, b"ab", (length_ext(3),)).encode()
        + XferSegment(END, 0, b"cd").encode(),
        XferSegment(START | END, 0, b"ab", (length_ext(2), length_ext(2))).encode(),
        XferSegment(START | END, 0, b"ab", (ExtensionItem(1, b"\x02"),)).encode(),
    ],
    ids=["short of length", "past length", "two lengths", "bad length value"],
)
def test_transfer_length_problems_are_not_acceptable(stream: bytes) -> None:
    session = raw(PASSIVE)
    session.receive_data(stream, 0)
    assert refusals(session) == [XferRefuse(XferRefuseReason.NOT_ACCEPTABLE, 0)]
    got = events(session)
    assert of(PeerMisbehaved, got)
    assert not any(isinstance(e, SegmentReceived) and e.end for e in got)


def test_transfer_length_on_a_single_segment_is_tolerated() -> None:
    session = raw(PASSIVE)
    session.receive_data(XferSegment(START | END, 0, b"abc", (length_ext(3),)).encode(), 0)
    assert events(session) == [SegmentReceived(0, b"abc", True, True, 3)]


def test_segment_of_an_unknown_transfer_is_refused() -> None:
    session = raw(PASSIVE)
    session.receive_data(XferSegment(END, 4, b"zz").encode(), 0)
    assert refusals(session) == [XferRefuse(XferRefuseReason.NOT_ACCEPTABLE, 4)]
    assert of(PeerMisbehaved, events(session))


def test_start_while_another_transfer_is_open_abandons_the_old_one() -> None:
    session = raw(PASSIVE)
    session.receive_data(XferSegment(START, 0, b"a").encode(), 0)
    session.receive_data(XferSegment(START | END, 1, b"b").encode(), 0)
    assert sent(session) == [XferAck(START, 0, 1), XferRefuse(XferRefuseReason.NOT_ACCEPTABLE, 0)]
    got = events(session)
    assert of(IncomingTransferAborted, got)[0].transfer_id == 0
    assert got[-1] == SegmentReceived(1, b"b", True, True)


@pytest.mark.parametrize("open_first", [False, True])
def test_reused_transfer_id_is_refused(open_first: bool) -> None:
    session = raw(PASSIVE)
    first_flags = START if open_first else START | END
    session.receive_data(XferSegment(first_flags, 7, b"a").encode(), 0)
    session.data_to_send()
    events(session)
    session.receive_data(XferSegment(START | END, 7, b"b").encode(), 0)
    assert refusals(session) == [XferRefuse(XferRefuseReason.NOT_ACCEPTABLE, 7)]
    assert not of(SegmentReceived, events(session))


def test_segment_before_sess_init_is_rejected() -> None:
    session = make(PASSIVE)
    session.receive_data(CONTACT + XferSegment(3, 0, b"x").encode(), 0)
    assert sent(session, contact=True)[1:] == [MsgReject(UNEXPECTED, 0x01)]
    assert session.state is SessionState.SESS_INIT_WAIT
    assert of(PeerMisbehaved, events(session))


# --- many bundles ----------------------------------------------------------------------------
@pytest.mark.parametrize("chunk", [None, 1, 7, 1500])
def test_many_bundles_through_any_chunking(chunk: int | None) -> None:
    pair = established(passive={"segment_mru": 700}, chunk=chunk)
    bundles = [bytes([i]) * (i * 97 % 2000) for i in range(40)]
    for bundle in bundles:
        tid = pair.active.send_bundle(bundle, 0)
        pair.pump()
        got = pair.take("passive")
        assert b"".join(e.data for e in got) == bundle
        pair.passive.accept_transfer(tid, 0)
        pair.pump()
        assert pair.take("active")[-1] == TransferSucceeded(tid, len(bundle))
