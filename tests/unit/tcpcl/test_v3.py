"""TCPCLv3 (RFC 7242): the sans-IO session (the wire format is in test_v3_messages.py).

Sessions are driven two ways: against each other through :class:`SessionPair`, and against a
hand-written peer whose bytes are spelled out, so that every message on the wire is checked.
"""

from __future__ import annotations

import tracemalloc
from typing import Any

import pytest

from dtncloud.errors import ConfigError, LocalProtocolError, TransferRefused
from dtncloud.tcpcl.codes import Role, SessTermReason, XferRefuseReason
from dtncloud.tcpcl.config import SessionConfig
from dtncloud.tcpcl.events import (
    ContactEstablished,
    Event,
    IncomingTransferAborted,
    PeerMisbehaved,
    SegmentAcknowledged,
    SegmentReceived,
    SessionClosed,
    SessionEnding,
    SessionEstablished,
    TransferRefusedByPeer,
    TransferSucceeded,
    UnfinishedTransfer,
)
from dtncloud.tcpcl.pair import SessionPair
from dtncloud.tcpcl.v3 import DEFAULT_FLAGS, SessionStateV3, SessionV3
from dtncloud.tcpcl.v3messages import (
    ContactHeader,
    V3ContactFlag,
    encode_ack_segment,
    encode_contact_header,
    encode_data_segment_header,
    encode_length,
)

ACKS = V3ContactFlag.REQUEST_ACKS
REFUSAL = V3ContactFlag.BUNDLE_REFUSAL
LENGTHS = V3ContactFlag.LENGTH_MESSAGES
U64_MAX = (1 << 64) - 1
H = bytes.fromhex


# -- helpers for sessions ------------------------------------------------------------------------

PEER_EID = "ipn:2.0"


def config(**changes: Any) -> SessionConfig:
    base: dict[str, Any] = {"node_id": "ipn:1.0", "keepalive_s": 10}
    base.update(changes)
    return SessionConfig(**base)


def drain(session: SessionV3) -> list[Event]:
    events = []
    while (event := session.next_event()) is not None:
        events.append(event)
    return events


def against_peer(
    peer_flags: int = DEFAULT_FLAGS,
    *,
    flags: int = DEFAULT_FLAGS,
    keepalive_s: int = 10,
    role: Role = Role.PASSIVE,
    **changes: Any,
) -> SessionV3:
    """A session that has received a hand-written peer's contact header; output drained."""
    session = SessionV3(role, config(**changes), 0, flags=flags)
    session.receive_data(encode_contact_header(peer_flags, keepalive_s, PEER_EID), 0)
    drain(session)
    session.data_to_send()
    return session


def segment(data: bytes, *, start: bool = True, end: bool = True) -> bytes:
    return encode_data_segment_header(start=start, end=end, length=len(data)) + data


def pair(
    active_flags: int = DEFAULT_FLAGS, passive_flags: int = DEFAULT_FLAGS, **changes: Any
) -> SessionPair:
    result = SessionPair(
        SessionV3(Role.ACTIVE, config(**changes), 0, flags=active_flags),
        SessionV3(Role.PASSIVE, config(node_id="ipn:2.0", **changes), 0, flags=passive_flags),
    )
    result.pump()
    result.take("active")
    result.take("passive")
    return result


def closed_event(events: list[Event]) -> SessionClosed:
    closed = [e for e in events if isinstance(e, SessionClosed)]
    assert len(closed) == 1
    return closed[0]


# -- establishment and negotiation ---------------------------------------------------------------


def test_both_sides_send_their_contact_header_at_once() -> None:
    active = SessionV3(Role.ACTIVE, config(), 0)
    passive = SessionV3(Role.PASSIVE, config(node_id="ipn:2.0", keepalive_s=30), 0)
    assert active.data_to_send() == H("64746e21 03 0d 000a 07") + b"ipn:1.0"
    assert passive.data_to_send() == H("64746e21 03 0d 001e 07") + b"ipn:2.0"
    assert active.state is SessionStateV3.CONTACT_WAIT
    assert active.get_timer() == 60_000  # the contact timeout


def test_establishment_over_a_pair() -> None:
    p = SessionPair(
        SessionV3(Role.ACTIVE, config(keepalive_s=30), 5),
        SessionV3(Role.PASSIVE, config(node_id="ipn:2.0", keepalive_s=20), 5),
        now=5,
    )
    p.pump()
    assert p.take("active") == [
        ContactEstablished(peer_version=3, use_tls=False, server_side=False),
        SessionEstablished("ipn:2.0", 20, U64_MAX, U64_MAX, False),
    ]
    assert p.take("passive") == [
        ContactEstablished(peer_version=3, use_tls=False, server_side=True),
        SessionEstablished("ipn:1.0", 20, U64_MAX, U64_MAX, False),
    ]
    for session in (p.active, p.passive):
        assert session.established and session.keepalive_s == 20 and not session.tls
        assert session.peer_transfer_mru == U64_MAX
        assert session.negotiated.segment_acks and session.negotiated.bundle_refusal
    assert p.active.peer_node_id == "ipn:2.0"
    assert p.active.peer_contact == ContactHeader(int(DEFAULT_FLAGS), 20, "ipn:2.0")
    with pytest.raises(LocalProtocolError):
        p.active.tls_established(5)


@pytest.mark.parametrize(
    ("ours", "theirs", "acks", "refusal", "lengths"),
    [
        (DEFAULT_FLAGS, DEFAULT_FLAGS, True, True, True),
        (DEFAULT_FLAGS, 0, False, False, False),
        (DEFAULT_FLAGS, ACKS, True, False, False),
        (ACKS | LENGTHS, DEFAULT_FLAGS, True, False, True),
        (0, DEFAULT_FLAGS, False, False, False),
        (DEFAULT_FLAGS, REFUSAL | LENGTHS, False, False, True),  # peer breaks the 0x04 rule
    ],
)
def test_flag_negotiation(ours: int, theirs: int, acks: bool, refusal: bool, lengths: bool) -> None:
    session = against_peer(theirs, flags=ours)
    assert session.negotiated.segment_acks is acks
    assert session.negotiated.bundle_refusal is refusal
    assert session.negotiated.length_messages is lengths
    session.send_bundle(b"abc", 0)
    expected = (H("6003") if lengths else b"") + H("1303") + b"abc"
    assert session.data_to_send() == expected


def test_refusal_without_acks_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError):
        SessionV3(Role.ACTIVE, config(), 0, flags=REFUSAL)
    with pytest.raises(ConfigError):
        SessionV3(Role.ACTIVE, config(), 0, flags=0x100)


def test_keepalive_zero_on_either_side_disables_keepalives() -> None:
    session = against_peer(keepalive_s=0)
    assert session.keepalive_s == 0
    assert session.get_timer() is None


# -- keepalive and timeouts -----------------------------------------------------------------------


def test_keepalives_flow_while_both_sides_talk() -> None:
    p = pair()
    before = {side: len(wire) for side, wire in p.wire.items()}
    p.advance(35_000)
    for side, wire in p.wire.items():  # a KEEPALIVE every 10 s from each side, nothing else
        assert wire[before[side] :] == H("40") * 3
    assert p.active.established and p.passive.established
    assert p.take("active") == [] and p.take("passive") == []


def test_idle_timeout_sends_shutdown_with_its_reason() -> None:
    session = against_peer()  # keepalive 10 s, idle timeout 2 x 10 s
    assert session.get_timer() == 10_000
    session.handle_timer(10_000)
    assert session.data_to_send() == H("40")
    assert session.get_timer() == 20_000
    session.handle_timer(19_999)
    assert session.data_to_send() == b""
    session.handle_timer(20_000)
    assert session.data_to_send() == H("52 00")
    events = drain(session)
    assert events[0] == SessionEnding(SessTermReason.IDLE_TIMEOUT, False)
    closed = closed_event(events)
    assert (closed.reason, closed.by_peer, closed.clean) == (
        SessTermReason.IDLE_TIMEOUT,
        False,
        False,
    )
    assert session.closed and session.get_timer() is None


def test_receiving_anything_postpones_the_idle_timeout() -> None:
    session = against_peer()
    session.receive_data(H("40"), 15_000)
    session.handle_timer(20_000)
    assert not session.closed
    assert session.get_timer() == 30_000  # keepalive sent at 20 s; idle at 15 + 20 s
    assert session.data_to_send() == H("40")


def test_contact_timeout() -> None:
    session = SessionV3(Role.ACTIVE, config(contact_timeout_ms=5_000), 0)
    session.data_to_send()
    session.handle_timer(4_999)
    assert not session.closed
    session.handle_timer(5_000)
    assert session.data_to_send() == H("50")
    closed = closed_event(drain(session))
    assert closed.reason == SessTermReason.CONTACT_FAILURE and not closed.clean


def test_handle_timer_always_moves_the_deadline_forward() -> None:
    session = against_peer()
    now = 0
    for _ in range(50):
        deadline = session.get_timer()
        if deadline is None:
            break
        now = max(now, deadline)
        session.handle_timer(now)
        after = session.get_timer()
        assert after is None or after > now
        session.receive_data(H("40"), now)


# -- transfers ------------------------------------------------------------------------------------


def test_single_segment_transfer_with_acks_and_held_final_ack() -> None:
    p = pair()
    tid = p.active.send_bundle(b"hello", 0)
    p.pump()
    assert p.wire["active"].endswith(H("6005 1305") + b"hello")
    assert p.take("passive") == [SegmentReceived(0, b"hello", True, True, 5)]
    assert p.active.outgoing_open and p.take("active") == []  # final ACK held back
    p.passive.accept_transfer(0, 0)
    p.pump()
    assert p.wire["passive"].endswith(H("2005"))
    assert p.take("active") == [TransferSucceeded(tid, 5)]
    assert not p.active.outgoing_open


def test_multi_segment_transfer_acks_every_segment() -> None:
    p = pair(max_segment_size=4)
    tid = p.active.send_bundle(b"0123456789", 0)
    p.pump()
    assert p.wire["active"].endswith(H("600a 1204") + b"0123" + H("1004 34353637 1102 3839"))
    assert p.take("passive") == [
        SegmentReceived(0, b"0123", True, False, 10),
        SegmentReceived(0, b"4567", False, False),
        SegmentReceived(0, b"89", False, True),
    ]
    assert p.take("active") == [SegmentAcknowledged(tid, 4), SegmentAcknowledged(tid, 8)]
    p.passive.accept_transfer(0, 0)
    p.pump()
    assert p.take("active") == [TransferSucceeded(tid, 10)]


def test_without_acks_a_transfer_succeeds_once_handed_to_the_connection() -> None:
    p = pair(active_flags=0, max_segment_size=4)
    tid = p.active.send_bundle(b"0123456789", 0)
    assert p.take("active") == [] and p.active.next_event() == TransferSucceeded(tid, 10)
    assert not p.active.outgoing_open
    p.pump()
    assert len(p.of_type("passive", SegmentReceived)) == 3
    p.passive.accept_transfer(0, 0)  # accepted: nothing to send
    p.pump()
    assert p.wire["passive"] == encode_contact_header(int(DEFAULT_FLAGS), 10, "ipn:2.0")


def test_transfers_are_numbered_per_direction() -> None:
    p = pair()
    assert p.active.send_bundle(b"a", 0) == 0
    assert p.passive.send_bundle(b"b", 0) == 0
    p.pump()
    p.active.accept_transfer(0, 0)
    p.passive.accept_transfer(0, 0)
    p.pump()
    assert p.active.send_bundle(b"c", 0) == 1
    p.pump()
    assert p.of_type("passive", SegmentReceived)[-1].transfer_id == 1


def test_wire_segment_longer_than_our_segment_mru_arrives_in_pieces() -> None:
    session = against_peer(segment_mru=4, flags=ACKS, peer_flags=ACKS)
    session.receive_data(segment(b"0123456789", end=False) + segment(b"ab", start=False), 0)
    assert drain(session) == [
        SegmentReceived(0, b"0123", True, False),
        SegmentReceived(0, b"4567", False, False),
        SegmentReceived(0, b"89", False, False),
        SegmentReceived(0, b"ab", False, True),
    ]
    assert session.data_to_send() == H("200a")  # acks follow wire segments, not pieces
    session.accept_transfer(0, 0)
    assert session.data_to_send() == H("200c")


def test_acks_of_a_later_bundle_wait_for_the_held_final_ack() -> None:
    session = against_peer(ACKS, flags=ACKS)
    session.receive_data(segment(b"first") + segment(b"sec", end=False), 0)
    session.receive_data(segment(b"ond", start=False), 0)
    assert [(e.transfer_id, e.end) for e in drain(session)] == [(0, True), (1, False), (1, True)]
    assert session.data_to_send() == b""
    session.accept_transfer(1, 0)
    assert session.data_to_send() == b""  # bundle 0 still holds the line
    session.accept_transfer(0, 0)
    assert session.data_to_send() == H("2005 2006")
    with pytest.raises(LocalProtocolError):
        session.accept_transfer(0, 0)


def test_length_message_mismatch_is_refused_not_acceptable() -> None:
    session = against_peer()
    session.receive_data(encode_length(4) + segment(b"hello"), 0)
    assert drain(session) == [IncomingTransferAborted(0, XferRefuseReason.NOT_ACCEPTABLE, False)]
    assert session.data_to_send() == H("30")  # v3 has no such code: sent as unknown
    session.receive_data(encode_length(2) + segment(b"ok"), 0)
    assert drain(session) == [SegmentReceived(1, b"ok", True, True, 2)]


def test_start_segment_abandons_an_unfinished_bundle() -> None:
    session = against_peer(0, flags=0)
    session.receive_data(segment(b"part", end=False) + segment(b"new"), 0)
    assert drain(session) == [
        SegmentReceived(0, b"part", True, False),
        IncomingTransferAborted(0, XferRefuseReason.UNKNOWN, True),
        SegmentReceived(1, b"new", True, True),
    ]


# -- refusal --------------------------------------------------------------------------------------


def test_refusal_mid_transfer_when_negotiated() -> None:
    p = pair(max_segment_size=2)
    tid = p.active.start_transfer(6, 0)
    p.active.send_segment(tid, b"ab", 0, end=False)
    p.pump()
    p.passive.refuse_transfer(0, XferRefuseReason.RETRANSMIT, 0)
    p.active.send_segment(tid, b"cd", 0, end=False)  # in flight before the refusal arrives
    p.pump()
    assert p.wire["passive"].endswith(H("2002 33"))
    assert p.take("passive") == [
        SegmentReceived(0, b"ab", True, False, 6),
        IncomingTransferAborted(0, XferRefuseReason.RETRANSMIT, False),
    ]
    assert p.take("active") == [
        SegmentAcknowledged(tid, 2),
        TransferRefusedByPeer(tid, XferRefuseReason.RETRANSMIT, 2),
    ]
    with pytest.raises(TransferRefused) as info:
        p.active.send_segment(tid, b"ef", 0, end=True)
    assert info.value.reason == XferRefuseReason.RETRANSMIT
    tid2 = p.active.send_bundle(b"xy", 0)
    p.pump()
    assert p.take("passive") == [SegmentReceived(1, b"xy", True, True, 2)]
    assert tid2 == 1


def test_refusing_a_complete_bundle_replaces_its_final_ack() -> None:
    p = pair()
    p.active.send_bundle(b"dup", 0)
    p.pump()
    p.passive.refuse_transfer(0, XferRefuseReason.COMPLETED, 0)
    p.pump()
    assert p.wire["passive"].endswith(H("31"))
    assert p.take("active")[-1] == TransferRefusedByPeer(0, XferRefuseReason.COMPLETED, 0)


def test_transfer_over_our_mru_is_refused_before_any_buffering() -> None:
    session = against_peer(transfer_mru=100)
    session.receive_data(encode_length(101) + segment(b"x" * 50, end=False), 0)
    assert drain(session) == [IncomingTransferAborted(0, XferRefuseReason.NO_RESOURCES, False)]
    assert session.data_to_send() == H("32")
    session.receive_data(segment(b"y" * 51, start=False), 0)  # the rest: skipped
    session.receive_data(segment(b"z" * 101), 0)  # no LENGTH, but too many bytes
    assert drain(session) == [IncomingTransferAborted(1, XferRefuseReason.NO_RESOURCES, False)]
    session.receive_data(segment(b"ok"), 0)
    assert drain(session) == [SegmentReceived(2, b"ok", True, True)]


def test_over_mru_without_negotiated_refusal_ends_the_session() -> None:
    session = against_peer(ACKS, transfer_mru=10)
    session.receive_data(segment(b"x" * 11), 0)
    events = drain(session)
    assert events[0] == IncomingTransferAborted(0, XferRefuseReason.NO_RESOURCES, False)
    assert events[1] == SessionEnding(SessTermReason.RESOURCE_EXHAUSTION, False)
    closed = closed_event(events)
    assert "no bundle refusal" in closed.description
    assert session.data_to_send() == H("52 02")  # resource exhaustion goes out as "busy"


def test_refusing_without_negotiation_and_with_acks_ends_the_session() -> None:
    session = against_peer(ACKS)
    session.receive_data(segment(b"data"), 0)
    drain(session)
    session.refuse_transfer(0, XferRefuseReason.NO_RESOURCES, 0)
    assert session.closed and session.data_to_send() == H("52 02")


def test_refusing_a_duplicate_without_negotiation_acknowledges_it() -> None:
    session = against_peer(ACKS)
    session.receive_data(segment(b"dup", end=False), 0)
    drain(session)
    assert session.data_to_send() == H("2003")
    session.refuse_transfer(0, XferRefuseReason.COMPLETED, 0)
    session.receive_data(segment(b"licate", start=False), 0)
    assert drain(session) == [IncomingTransferAborted(0, XferRefuseReason.COMPLETED, False)]
    assert session.data_to_send() == H("2009")  # taken in unreported; final ack not held
    assert not session.closed
    with pytest.raises(LocalProtocolError):
        session.refuse_transfer(0, XferRefuseReason.COMPLETED, 0)


def test_refusing_without_acks_just_discards_the_bundle() -> None:
    session = against_peer(0, flags=0)
    session.receive_data(segment(b"ab", end=False), 0)
    session.refuse_transfer(0, XferRefuseReason.NO_RESOURCES, 0)
    session.receive_data(segment(b"cd", start=False) + segment(b"next"), 0)
    assert drain(session)[1:] == [
        IncomingTransferAborted(0, XferRefuseReason.NO_RESOURCES, False),
        SegmentReceived(1, b"next", True, True),
    ]
    assert session.data_to_send() == b"" and session.established


# -- shutdown in every state ----------------------------------------------------------------------


def test_terminate_before_contact() -> None:
    session = SessionV3(Role.ACTIVE, config(), 0)
    session.terminate(SessTermReason.BUSY, 0)
    assert session.data_to_send().endswith(H("52 02"))
    events = drain(session)
    assert events[0] == SessionEnding(SessTermReason.BUSY, False)
    assert closed_event(events).reason == SessTermReason.BUSY
    session.terminate(SessTermReason.BUSY, 0)  # idempotent
    session.receive_data(b"anything", 0)
    assert drain(session) == []


def test_terminate_when_idle_closes_both_sides() -> None:
    p = pair()
    p.active.terminate(SessTermReason.IDLE_TIMEOUT, 0)
    p.pump()
    assert p.wire["active"].endswith(H("52 00"))
    for side, by_peer in (("active", False), ("passive", True)):
        events = p.take(side)
        assert events[0] == SessionEnding(SessTermReason.IDLE_TIMEOUT, by_peer)
        closed = closed_event(events)
        assert (closed.reason, closed.by_peer, closed.clean) == (
            SessTermReason.IDLE_TIMEOUT,
            by_peer,
            True,
        )
    with pytest.raises(LocalProtocolError):
        p.active.start_transfer(1, 0)


def test_after_our_shutdown_we_wait_for_the_acks_of_what_we_sent() -> None:
    p = pair(max_segment_size=2)
    tid = p.active.start_transfer(4, 0)
    p.active.send_segment(tid, b"ab", 0, end=False)
    p.active.terminate(SessTermReason.UNKNOWN, 0)
    with pytest.raises(LocalProtocolError, match="SHUTDOWN"):
        p.active.send_segment(tid, b"cd", 0, end=True)
    assert p.active.state is SessionStateV3.ENDING
    p.pump()
    closed = closed_event(p.take("active"))
    assert closed.clean and closed.unfinished == (UnfinishedTransfer(tid, 2, 2, 4),)
    passive = p.take("passive")
    assert IncomingTransferAborted(0, XferRefuseReason.SESSION_TERMINATING, True) in passive


def test_after_our_shutdown_the_peer_may_finish_its_bundle() -> None:
    session = against_peer()
    session.receive_data(segment(b"ab", end=False), 0)
    session.terminate(SessTermReason.UNKNOWN, 0)
    assert session.data_to_send() == H("2002 50")
    session.receive_data(segment(b"cd", start=False), 0)
    assert not session.closed  # waiting for accept_transfer to send the final ack
    session.accept_transfer(0, 0)
    assert session.data_to_send() == H("2004")
    events = drain(session)
    assert SegmentReceived(0, b"cd", False, True) in events and closed_event(events).clean
    # A new bundle after our SHUTDOWN would have been refused.
    late = against_peer()
    late.send_bundle(b"q", 0)  # its ack keeps the session ending for a while
    late.terminate(SessTermReason.UNKNOWN, 0)
    late.data_to_send()
    late.receive_data(encode_length(1) + segment(b"x"), 0)
    assert IncomingTransferAborted(0, XferRefuseReason.SESSION_TERMINATING, False) in drain(late)
    assert late.data_to_send() == H("30")


def test_peer_shutdown_lets_us_finish_our_bundle() -> None:
    session = against_peer(max_segment_size=2)
    tid = session.start_transfer(4, 0)
    session.send_segment(tid, b"ab", 0, end=False)
    session.receive_data(H("53 02 8f00"), 0)  # busy, come back in 1920 s
    assert session.reconnect_delay_s == 1920
    assert drain(session) == [SessionEnding(SessTermReason.BUSY, True)]
    session.send_segment(tid, b"cd", 0, end=True)
    session.receive_data(H("2002 2004"), 0)
    events = drain(session)
    assert events[-2:-1] == [TransferSucceeded(tid, 4)]
    closed = closed_event(events)
    assert (closed.reason, closed.by_peer, closed.clean) == (SessTermReason.BUSY, True, True)


def test_peer_shutdown_aborts_the_bundle_it_was_sending() -> None:
    session = against_peer()
    session.receive_data(segment(b"ab", end=False) + H("50"), 0)
    events = drain(session)
    assert events[1:3] == [
        SessionEnding(SessTermReason.UNKNOWN, True),
        IncomingTransferAborted(0, XferRefuseReason.SESSION_TERMINATING, True),
    ]
    assert closed_event(events).clean


def test_peer_shutdown_waits_for_our_final_ack() -> None:
    session = against_peer()
    session.receive_data(segment(b"whole") + H("52 01"), 0)
    assert drain(session)[-1] == SessionEnding(SessTermReason.VERSION_MISMATCH, True)
    session.accept_transfer(0, 0)
    assert session.data_to_send() == H("2005")
    assert closed_event(drain(session)).by_peer


def test_ending_times_out() -> None:
    session = against_peer(ending_timeout_ms=1_000)
    session.receive_data(segment(b"ab", end=False), 0)
    session.terminate(SessTermReason.UNKNOWN, 100)
    assert session.get_timer() == 1_100
    session.handle_timer(1_100)
    events = drain(session)
    assert IncomingTransferAborted(0, XferRefuseReason.SESSION_TERMINATING, False) in events
    assert not closed_event(events).clean


def test_terminate_after_peer_shutdown_closes_at_once() -> None:
    session = against_peer()
    session.receive_data(segment(b"whole") + H("50"), 0)
    session.terminate(SessTermReason.UNKNOWN, 0)
    assert session.closed and session.data_to_send() == b""


def test_data_after_peer_shutdown_is_misbehaviour() -> None:
    session = against_peer(max_segment_size=2)
    session.start_transfer(4, 0)  # keeps the session in the ending state
    session.receive_data(H("50") + segment(b"x"), 0)
    assert any(isinstance(e, PeerMisbehaved) for e in drain(session))
    assert session.closed


# -- peer errors ----------------------------------------------------------------------------------


def test_bad_magic_closes_without_shutdown() -> None:
    session = SessionV3(Role.PASSIVE, config(), 0)
    session.data_to_send()
    session.receive_data(b"GET / HTTP/1.1\r\n", 0)
    events = drain(session)
    assert isinstance(events[0], PeerMisbehaved) and "dtn!" in events[0].description
    closed = closed_event(events)
    assert (closed.reason, closed.by_peer, closed.clean) == (None, False, False)
    assert session.data_to_send() == b""


def test_version_mismatch_sends_shutdown_with_its_reason() -> None:
    session = SessionV3(Role.PASSIVE, config(), 0)
    header = session.data_to_send()
    session.receive_data(H("64746e21 04 00"), 0)
    assert session.data_to_send() == H("52 01")
    assert header.startswith(H("64746e21 03"))
    events = drain(session)
    assert events[0] == SessionEnding(SessTermReason.VERSION_MISMATCH, False)
    closed = closed_event(events)
    assert closed.reason == SessTermReason.VERSION_MISMATCH and "version 4" in closed.description


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (H("70"), "unknown message type"),
        (H("00"), "unknown message type"),
        (segment(b"x", start=False), "without START"),
        (H("20 ffffffffffffffffffff"), "SDNV"),
    ],
)
def test_protocol_violations_end_the_session(data: bytes, words: str) -> None:
    session = against_peer()
    session.receive_data(data, 0)
    events = drain(session)
    assert isinstance(events[0], PeerMisbehaved) and words in events[0].description
    assert closed_event(events).reason == SessTermReason.UNKNOWN
    assert session.data_to_send() == H("50")


def test_ack_beyond_what_was_sent_is_misbehaviour() -> None:
    session = against_peer()
    session.send_bundle(b"abc", 0)
    session.receive_data(H("2004"), 0)
    assert isinstance(drain(session)[0], PeerMisbehaved)


def test_unsolicited_acks_and_refusals_are_ignored() -> None:
    session = against_peer()
    session.receive_data(H("2005 32 2000"), 0)
    assert drain(session) == [] and session.established
    no_acks = against_peer(0)
    no_acks.send_bundle(b"abc", 0)
    no_acks.receive_data(H("2003"), 0)
    assert drain(no_acks) == [TransferSucceeded(0, 3)]


def test_connection_loss_reports_what_was_acknowledged() -> None:
    p = pair(max_segment_size=3)
    tid = p.active.start_transfer(9, 0)
    p.active.send_segment(tid, b"abc", 0, end=False)
    p.active.send_segment(tid, b"def", 0, end=False)
    p.pump()
    p.active.send_segment(tid, b"gh", 0, end=False)  # not delivered
    p.disconnect()
    closed = closed_event(p.take("active"))
    assert closed.reason is None and not closed.clean and closed.by_peer
    assert closed.unfinished == (UnfinishedTransfer(tid, 6, 8, 9),)
    assert IncomingTransferAborted(0, XferRefuseReason.SESSION_TERMINATING, True) in p.take(
        "passive"
    )
    p.active.connection_lost(0)  # idempotent
    assert p.active.next_event() is None


def test_connection_loss_after_shutdown_is_clean() -> None:
    session = against_peer()
    session.receive_data(segment(b"x") + H("50"), 0)
    session.connection_lost(0)
    closed = closed_event(drain(session))
    assert closed.clean and closed.by_peer


# -- commands misused ------------------------------------------------------------------------------


def test_command_misuse_raises_local_protocol_error() -> None:
    session = against_peer(max_segment_size=4)
    with pytest.raises(LocalProtocolError):
        session.start_transfer(0, 0)
    tid = session.start_transfer(6, 0)
    with pytest.raises(LocalProtocolError, match="still being sent"):
        session.start_transfer(1, 0)
    with pytest.raises(LocalProtocolError):
        session.send_segment(tid, b"12345", 0, end=False)  # over max_segment_size
    with pytest.raises(LocalProtocolError):
        session.send_segment(tid, b"", 0, end=False)
    with pytest.raises(LocalProtocolError):
        session.send_segment(tid, b"1234", 0, end=True)  # end too early
    with pytest.raises(LocalProtocolError):
        session.send_segment(tid + 1, b"1", 0, end=False)
    session.send_segment(tid, b"1234", 0, end=False)
    with pytest.raises(LocalProtocolError):
        session.send_segment(tid, b"123", 0, end=True)  # overshoots
    with pytest.raises(LocalProtocolError):
        session.send_segment(tid, b"12", 0, end=False)  # completes without end
    with pytest.raises(LocalProtocolError):
        session.accept_transfer(0, 0)
    with pytest.raises(LocalProtocolError):
        session.refuse_transfer(0, XferRefuseReason.UNKNOWN, 0)
    with pytest.raises(TransferRefused) as info:
        against_peer().start_transfer(U64_MAX + 1, 0)
    assert info.value.reason == XferRefuseReason.NO_RESOURCES


# -- hostile lengths --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        encode_data_segment_header(start=True, end=True, length=U64_MAX),
        encode_length(U64_MAX) + encode_data_segment_header(start=True, end=False, length=1),
        encode_ack_segment(U64_MAX),
        H("12 ffffffffffffffffff7f"),
        H("60 ffffffffffffffffffff"),
    ],
)
@pytest.mark.parametrize("peer_flags", [DEFAULT_FLAGS, 0])
def test_hostile_lengths_never_allocate(message: bytes, peer_flags: int) -> None:
    session = against_peer(peer_flags)
    junk = bytes(64 * 1024)
    tracemalloc.start()
    try:
        session.receive_data(message, 0)
        for _ in range(16):  # a megabyte of "payload" after the header
            session.receive_data(junk, 0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 512 * 1024
    drain(session)


def test_hostile_eid_length_never_allocates() -> None:
    session = SessionV3(Role.PASSIVE, config(), 0)
    tracemalloc.start()
    try:
        session.receive_data(H("64746e21 03 00 0000 81ffffffffffffffff7f"), 0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024
    assert session.closed and isinstance(drain(session)[0], PeerMisbehaved)


def test_reasons_v3_lacks_go_out_without_a_code() -> None:
    session = against_peer()
    session.terminate(0xF0, 0)  # a private TCPCLv4 reason
    assert session.data_to_send() == H("50")
    assert drain(session)[0] == SessionEnding(0xF0, False)


# -- pipelining -----------------------------------------------------------------------------------


def test_bundles_are_pipelined_and_acks_settle_them_in_order() -> None:
    p = pair()
    first = p.active.send_bundle(b"one", 0)
    assert p.active.awaiting_acks == 1 and not p.active.sending
    second = p.active.send_bundle(b"two!", 0)  # before the first is acknowledged
    assert p.active.awaiting_acks == 2
    p.pump()
    received = [e for e in p.take("passive") if isinstance(e, SegmentReceived)]
    assert [(e.transfer_id, e.data) for e in received] == [(0, b"one"), (1, b"two!")]
    p.passive.accept_transfer(1, 0)  # out of order: its ack waits behind bundle 0's
    p.pump()
    assert not any(isinstance(e, TransferSucceeded) for e in p.take("active"))
    p.passive.accept_transfer(0, 0)
    p.pump()
    assert [e for e in p.take("active") if isinstance(e, TransferSucceeded)] == [
        TransferSucceeded(first, 3),
        TransferSucceeded(second, 4),
    ]
    assert p.active.awaiting_acks == 0 and not p.active.outgoing_open


def test_a_refusal_settles_the_oldest_pipelined_bundle() -> None:
    p = pair()
    first = p.active.send_bundle(b"one", 0)
    second = p.active.send_bundle(b"two", 0)
    p.pump()
    p.passive.refuse_transfer(0, XferRefuseReason.COMPLETED, 0)
    p.passive.accept_transfer(1, 0)
    p.pump()
    events = [e for e in p.take("active") if not isinstance(e, SegmentAcknowledged)]
    assert events == [
        TransferRefusedByPeer(first, XferRefuseReason.COMPLETED, 0),
        TransferSucceeded(second, 3),
    ]


def test_connection_loss_lists_every_unsettled_bundle() -> None:
    p = pair()
    p.active.send_bundle(b"one", 0)
    p.active.send_bundle(b"two", 0)
    p.disconnect()
    (closed,) = [e for e in p.take("active") if isinstance(e, SessionClosed)]
    assert [(u.transfer_id, u.acknowledged, u.sent) for u in closed.unfinished] == [
        (0, 0, 3),
        (1, 0, 3),
    ]
