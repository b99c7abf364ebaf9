"""The TCPCLv4 session: establishment, keepalive, MSG_REJECT, session extensions and
termination, through SessionPair and against hand-made bytes.
"""

from __future__ import annotations

import pytest

from dtncloud.errors import LocalProtocolError
from dtncloud.tcpcl.codes import MsgRejectReason, Role, SessTermReason, XferRefuseReason
from dtncloud.tcpcl.events import (
    ContactEstablished,
    ExtensionItem,
    IncomingTransferAborted,
    MessageRejected,
    PeerMisbehaved,
    SegmentAcknowledged,
    SessionClosed,
    SessionEnding,
    SessionEstablished,
    TransferSucceeded,
    UnfinishedTransfer,
)
from dtncloud.tcpcl.messages import (
    ContactHeader,
    Item,
    Keepalive,
    MsgReject,
    SessInit,
    SessTerm,
    XferAck,
    XferRefuse,
    XferSegment,
)
from dtncloud.tcpcl.pair import SessionPair
from dtncloud.tcpcl.states import SessionState
from tests.unit.tcpcl.session_helpers import (
    ACTIVE,
    CONTACT,
    CONTACT_TLS,
    END,
    PASSIVE,
    START,
    UNEXPECTED,
    connect,
    established,
    events,
    make,
    of,
    raw,
    refusals,
    sent,
    sess_init,
)


# --- establishment -------------------------------------------------------------------------
def test_establishment_negotiates_parameters() -> None:
    pair = connect(
        active={"keepalive_s": 30, "segment_mru": 5000, "transfer_mru": 90_000},
        passive={"keepalive_s": 45, "max_segment_size": 4000},
    )
    a_events, p_events = pair.take("active"), pair.take("passive")
    assert a_events == [
        ContactEstablished(4, use_tls=False, server_side=False),
        SessionEstablished("dtn://p/", 30, 1 << 20, 100_000_000, tls=False),
    ]
    assert p_events == [
        ContactEstablished(4, use_tls=False, server_side=True),
        SessionEstablished("dtn://a/", 30, 5000, 90_000, tls=False),
    ]
    active, passive = pair.active, pair.passive
    assert active.state is passive.state is SessionState.ESTABLISHED
    assert (active.peer_node_id, passive.peer_node_id) == ("dtn://p/", "dtn://a/")
    assert active.keepalive_s == passive.keepalive_s == 30
    assert active.max_segment_size == 1 << 20
    assert passive.max_segment_size == 4000  # min(peer's MRU 5000, our cap 4000)
    assert (active.peer_transfer_mru, passive.peer_transfer_mru) == (100_000_000, 90_000)
    assert not active.tls and not active.outgoing_open and not active.closed


def test_active_speaks_first_and_passive_answers_each_step() -> None:
    active, passive = make(ACTIVE), make(PASSIVE, node_id="dtn://p/")
    assert passive.data_to_send() == b""
    assert sent(active, contact=True) == [ContactHeader(4, 0)]
    assert active.state is SessionState.CONTACT_WAIT
    passive.receive_data(CONTACT, 0)
    # The passive side answers the contact header, then waits for the active SESS_INIT.
    assert sent(passive, contact=True) == [ContactHeader(4, 0)]
    assert passive.state is SessionState.SESS_INIT_WAIT
    passive.receive_data(sess_init(keepalive=10), 0)
    assert sent(passive) == [SessInit(60, 1 << 20, 100_000_000, "dtn://p/")]  # its own offer
    assert passive.established and passive.keepalive_s == 10


def test_active_sends_sess_init_right_after_contact_and_accepts_an_early_peer() -> None:
    active = make(ACTIVE, keepalive_s=7)
    active.data_to_send()
    active.receive_data(CONTACT + sess_init(node=""), 0)  # a peer that did not wait
    assert sent(active) == [SessInit(7, 1 << 20, 100_000_000, "")]
    assert active.established
    assert active.peer_node_id is None  # not disclosed


@pytest.mark.parametrize(
    ("active_tls", "passive_tls", "agreed"),
    [(True, True, True), (True, False, False), (False, True, False), (False, False, False)],
)
def test_tls_is_used_when_both_can(active_tls: bool, passive_tls: bool, agreed: bool) -> None:
    pair = connect(active={"can_tls": active_tls}, passive={"can_tls": passive_tls})
    contact = of(ContactEstablished, pair.events["active"])
    assert contact == [ContactEstablished(4, use_tls=agreed, server_side=False)]
    assert of(ContactEstablished, pair.events["passive"]) == [
        ContactEstablished(4, use_tls=agreed, server_side=True)
    ]
    assert pair.wire["active"][5] == int(active_tls)  # CAN_TLS flag
    assert pair.active.tls == pair.passive.tls == agreed
    (done,) = of(SessionEstablished, pair.events["passive"])
    assert done.tls == agreed


def test_tls_pauses_the_session_until_the_handshake() -> None:
    passive = make(PASSIVE, can_tls=True)
    passive.receive_data(CONTACT_TLS, 0)
    assert events(passive) == [ContactEstablished(4, use_tls=True, server_side=True)]
    assert sent(passive, contact=True) == [ContactHeader(4, 1)]
    assert passive.state is SessionState.TLS_HANDSHAKE
    passive.tls_established(5)
    assert passive.state is SessionState.SESS_INIT_WAIT and passive.tls
    assert passive.data_to_send() == b""  # passive still waits for the SESS_INIT
    with pytest.raises(LocalProtocolError):
        passive.tls_established(6)


def test_plain_data_where_tls_was_agreed_closes() -> None:
    passive = make(PASSIVE, can_tls=True)
    passive.receive_data(CONTACT_TLS + sess_init(), 0)
    got = events(passive)
    assert of(PeerMisbehaved, got)
    (closed,) = of(SessionClosed, got)
    assert not closed.clean and passive.closed


@pytest.mark.parametrize("role", [ACTIVE, PASSIVE])
def test_require_tls_refuses_a_peer_without_tls(role: Role) -> None:
    if role is ACTIVE:
        pair = connect(active={"can_tls": True, "require_tls": True})
        requirer, other = "active", "passive"
    else:
        pair = connect(passive={"can_tls": True, "require_tls": True})
        requirer, other = "passive", "active"
    assert pair.active.closed and pair.passive.closed
    assert not of(SessionEstablished, pair.events[requirer] + pair.events[other])
    assert of(SessionEnding, pair.events[requirer]) == [
        SessionEnding(SessTermReason.CONTACT_FAILURE, by_peer=False)
    ]
    (closed,) = of(SessionClosed, pair.events[other])
    assert closed.reason is SessTermReason.CONTACT_FAILURE and closed.by_peer and closed.clean
    assert "TLS" in of(SessionClosed, pair.events[requirer])[0].description


def test_passive_answers_another_version_with_sess_term() -> None:
    passive = make(PASSIVE)
    passive.receive_data(b"dtn!\x03\x00\x00\x3c\x05dtn:x", 0)  # a TCPCLv3 contact header
    assert sent(passive, contact=True) == [
        ContactHeader(4, 0),
        SessTerm(0, SessTermReason.VERSION_MISMATCH),
    ]
    (closed,) = events(passive)
    assert isinstance(closed, SessionClosed)
    assert closed.reason is SessTermReason.VERSION_MISMATCH and not closed.clean
    assert "version 3" in closed.description


def test_active_closes_on_another_version() -> None:
    active = make(ACTIVE)
    active.data_to_send()
    active.receive_data(b"dtn!\x05\x00", 0)
    assert active.data_to_send() == b""
    (closed,) = events(active)
    assert isinstance(closed, SessionClosed)
    assert closed.reason is SessTermReason.VERSION_MISMATCH and active.closed


@pytest.mark.parametrize("role", [ACTIVE, PASSIVE])
def test_bad_magic_closes_without_sess_term(role: Role) -> None:
    session = make(role)
    session.data_to_send()
    session.receive_data(b"GET / HTTP/1.1\r\n", 0)
    assert session.data_to_send() == b""
    got = events(session)
    assert isinstance(got[0], PeerMisbehaved)
    assert isinstance(got[1], SessionClosed) and got[1].reason is None and not got[1].clean
    assert session.closed and session.get_timer() is None


@pytest.mark.parametrize("role", [ACTIVE, PASSIVE])
def test_contact_timeout(role: Role) -> None:
    session = make(role, now=1000, contact_timeout_ms=5000)
    session.data_to_send()
    assert session.get_timer() == 6000
    session.handle_timer(5999)
    assert not session.closed
    session.handle_timer(6000)
    assert session.data_to_send() == b""
    (closed,) = events(session)
    assert isinstance(closed, SessionClosed) and "contact header" in closed.description


def test_sess_init_timeout_sends_contact_failure() -> None:
    passive = make(PASSIVE, contact_timeout_ms=5000, ending_timeout_ms=1000)
    passive.receive_data(CONTACT, 2000)
    passive.data_to_send()
    assert passive.get_timer() == 7000  # the wait restarts once the contact header is in
    passive.handle_timer(7000)
    assert sent(passive) == [SessTerm(0, SessTermReason.CONTACT_FAILURE)]
    assert passive.state is SessionState.ENDING and passive.get_timer() == 8000
    passive.handle_timer(8000)
    (_, ending, closed) = events(passive)
    assert ending == SessionEnding(SessTermReason.CONTACT_FAILURE, by_peer=False)
    assert isinstance(closed, SessionClosed) and not closed.clean
    assert "SESS_INIT" in closed.description


def test_sess_init_crossing_our_sess_term_is_not_a_fault() -> None:
    passive = make(PASSIVE, contact_timeout_ms=100)
    passive.receive_data(CONTACT, 0)
    passive.handle_timer(100)  # gives up waiting: SESS_TERM
    passive.data_to_send()
    events(passive)
    passive.receive_data(sess_init() + SessTerm(1, SessTermReason.CONTACT_FAILURE).encode(), 150)
    assert passive.data_to_send() == b""  # no MSG_REJECT for the late SESS_INIT
    (closed,) = events(passive)
    assert isinstance(closed, SessionClosed) and closed.clean


def test_tls_handshake_timeout() -> None:
    active = make(ACTIVE, can_tls=True, contact_timeout_ms=100)
    active.receive_data(CONTACT_TLS, 50)
    assert active.state is SessionState.TLS_HANDSHAKE
    active.handle_timer(150)
    assert active.closed
    active.tls_established(200)  # too late: ignored, not an error


# --- keepalive and idle timeout --------------------------------------------------------------
def test_keepalive_zero_disables_timers() -> None:
    pair = established(active={"keepalive_s": 0})
    assert pair.active.keepalive_s == pair.passive.keepalive_s == 0
    assert pair.active.get_timer() is None and pair.passive.get_timer() is None


def test_keepalives_flow_when_idle_and_keep_the_session_up() -> None:
    pair = established(active={"keepalive_s": 10}, passive={"keepalive_s": 20})
    wire_before = len(pair.wire["active"]), len(pair.wire["passive"])
    pair.advance(10_000)
    assert pair.wire["active"][wire_before[0] :] == b"\x04"
    assert pair.wire["passive"][wire_before[1] :] == b"\x04"
    pair.advance(95_000)
    assert pair.active.established and pair.passive.established
    assert pair.wire["active"][wire_before[0] :] == b"\x04" * 10


def test_traffic_postpones_keepalive_and_idle_timeout() -> None:
    session = raw(ACTIVE, keepalive_s=10)
    session.receive_data(b"\x01", 15_000)  # a partial message still proves the peer alive
    session.handle_timer(10_000)
    assert sent(session) == [Keepalive()]
    session.send_bundle(b"x", 18_000)
    session.data_to_send()
    session.handle_timer(20_000)  # the idle timeout is 2 x 10 s after the last input
    assert session.established and session.get_timer() == 28_000


def test_idle_timeout_ends_the_session() -> None:
    session = raw(PASSIVE, keepalive_s=10, idle_timeout_factor=3, ending_timeout_ms=500)
    now = 0
    seen: list[Item] = []
    while not session.closed:
        deadline = session.get_timer()
        assert deadline is not None and deadline > now
        now = deadline
        session.handle_timer(now)
        seen += sent(session)
        assert session.closed or session.get_timer() > now  # type: ignore[operator]
    assert seen == [Keepalive(), Keepalive(), SessTerm(0, SessTermReason.IDLE_TIMEOUT)]
    assert now == 30_500
    got = events(session)
    assert got[0] == SessionEnding(SessTermReason.IDLE_TIMEOUT, by_peer=False)
    assert isinstance(got[1], SessionClosed) and not got[1].clean


# --- MSG_REJECT ------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", [0x00, 0x08, 0xF0, 0xFF])
def test_unknown_message_type_is_rejected_then_closed(kind: int) -> None:
    session = raw(PASSIVE)
    session.receive_data(bytes([kind]) + Keepalive().encode(), 0)
    assert sent(session) == [MsgReject(MsgRejectReason.TYPE_UNKNOWN, kind)]
    got = events(session)
    assert isinstance(got[0], PeerMisbehaved)
    assert isinstance(got[1], SessionClosed) and not got[1].clean
    assert session.closed


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        (sess_init(), 0x07),
        (XferAck(3, 9, 1).encode(), 0x02),
        (XferRefuse(1, 9).encode(), 0x03),
    ],
    ids=["second SESS_INIT", "ack of unknown transfer", "refusal of unknown transfer"],
)
def test_unexpected_messages_are_rejected(message: bytes, kind: int) -> None:
    session = raw(PASSIVE)
    session.receive_data(message, 0)
    assert sent(session) == [MsgReject(UNEXPECTED, kind)]
    assert of(PeerMisbehaved, events(session))
    assert session.established


@pytest.mark.parametrize(
    "message",
    [Keepalive().encode(), XferAck(3, 0, 1).encode(), XferRefuse(1, 0).encode()],
    ids=["keepalive", "ack", "refuse"],
)
def test_messages_before_sess_init_are_rejected(message: bytes) -> None:
    session = make(PASSIVE)
    session.receive_data(CONTACT + message, 0)
    assert sent(session, contact=True)[1:] == [MsgReject(UNEXPECTED, message[0])]
    assert session.state is SessionState.SESS_INIT_WAIT


def test_bad_ack_lengths_are_rejected() -> None:
    pair = established(passive={"segment_mru": 10})
    tid = pair.active.start_transfer(30, 0)
    pair.active.send_segment(tid, bytes(10), 0, end=False)
    pair.active.data_to_send()
    pair.active.receive_data(XferAck(START, tid, 11).encode(), 0)  # more than sent
    assert sent(pair.active) == [MsgReject(UNEXPECTED, 0x02)]
    pair.active.receive_data(XferAck(START, tid, 10).encode(), 0)
    pair.active.receive_data(XferAck(START, tid, 5).encode(), 0)  # going backwards
    assert sent(pair.active) == [MsgReject(UNEXPECTED, 0x02)]
    got = events(pair.active)
    assert len(of(PeerMisbehaved, got)) == 2
    assert of(SegmentAcknowledged, got) == [SegmentAcknowledged(tid, 10)]


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        ("060301", MessageRejected(0x01, 3)),  # RFC order
        ("060702", MessageRejected(0x07, 2)),  # dtn-demo-agent's order, unambiguous
        ("060203", MessageRejected(0x03, 2)),  # ambiguous: read as the RFC says
        ("060003", MessageRejected(0x03, 0)),  # 0 is no message type: read as the RFC says
    ],
)
def test_msg_reject_is_reported(wire: str, expected: MessageRejected) -> None:
    session = raw(ACTIVE)
    session.receive_data(bytes.fromhex(wire), 0)
    assert events(session) == [expected]
    assert session.data_to_send() == b""  # never answer a rejection


# --- session extensions -----------------------------------------------------------------------
def test_unknown_critical_session_extension_fails_the_contact() -> None:
    passive = make(PASSIVE)
    ext = (ExtensionItem(0x8001, b"x", critical=True),)
    passive.receive_data(CONTACT + sess_init(extensions=ext), 0)
    assert sent(passive, contact=True)[1:] == [SessTerm(0, SessTermReason.CONTACT_FAILURE)]
    assert passive.state is SessionState.ENDING
    passive.receive_data(SessTerm(1, 4).encode(), 0)
    closed = events(passive)[-1]
    assert isinstance(closed, SessionClosed) and closed.clean
    assert "0x8001" in closed.description


@pytest.mark.parametrize(("seg", "xfer"), [(0, 10**8), (1 << 20, 0)])
def test_an_mru_of_zero_fails_the_contact(seg: int, xfer: int) -> None:
    passive = make(PASSIVE)
    passive.receive_data(CONTACT + sess_init(seg=seg, xfer=xfer), 0)
    assert sent(passive, contact=True)[1:] == [SessTerm(0, SessTermReason.CONTACT_FAILURE)]
    assert not any(isinstance(e, SessionEstablished) for e in events(passive))


def test_unknown_plain_session_extensions_are_reported() -> None:
    ext = (ExtensionItem(0x8001, b"x"), ExtensionItem(0x8002, b""))
    active = make(ACTIVE)
    active.receive_data(CONTACT + sess_init(extensions=ext), 0)
    (_, done) = events(active)
    assert isinstance(done, SessionEstablished) and done.extensions == ext


def test_invalid_sess_init_fails_the_contact() -> None:
    passive = make(PASSIVE)
    bad = SessInit(60, 100, 100, "x").encode().replace(b"\x00\x01x", b"\x00\x01\xff")
    passive.receive_data(CONTACT + bad, 0)
    assert sent(passive, contact=True)[1:] == [SessTerm(0, SessTermReason.CONTACT_FAILURE)]
    assert of(PeerMisbehaved, events(passive))


def test_hostile_session_extension_length_is_answered_at_once() -> None:
    passive = make(PASSIVE)
    head = SessInit(60, 100, 100, "x").encode()[:-4] + b"\xff\xff\xff\xff"
    passive.receive_data(CONTACT + head, 0)  # no wait for 4 GiB of extensions
    assert sent(passive, contact=True)[1:] == [SessTerm(0, SessTermReason.CONTACT_FAILURE)]


# --- termination ---------------------------------------------------------------------------
@pytest.mark.parametrize("case", ["active", "passive", "tls"])
def test_terminate_before_contact_or_during_tls_just_closes(case: str) -> None:
    session = make(PASSIVE if case == "passive" else ACTIVE, can_tls=True)
    if case == "tls":
        session.receive_data(CONTACT_TLS, 0)
        assert session.state is SessionState.TLS_HANDSHAKE
    session.data_to_send()
    events(session)
    session.terminate(SessTermReason.BUSY, 0)
    assert session.data_to_send() == b""
    (closed,) = events(session)
    assert isinstance(closed, SessionClosed) and not closed.clean
    session.terminate(SessTermReason.BUSY, 0)  # idempotent
    assert events(session) == []


def test_terminate_while_waiting_for_sess_init() -> None:
    pair = SessionPair(make(ACTIVE), make(PASSIVE))
    pair.passive.receive_data(pair.active.data_to_send(), 0)  # contact header only
    pair.passive.terminate(SessTermReason.BUSY, 0)
    pair.pump()
    assert pair.active.closed and pair.passive.closed
    assert not of(SessionEstablished, pair.events["active"])
    (closed,) = of(SessionClosed, pair.events["active"])
    assert (
        closed == SessionClosed(SessTermReason.BUSY, True, True, closed.description)
        and closed.description
    )


def test_sess_term_right_after_the_contact_header_gets_a_reply() -> None:
    passive = make(PASSIVE)
    passive.receive_data(CONTACT + SessTerm(0, SessTermReason.BUSY).encode(), 0)
    assert sent(passive, contact=True)[1:] == [SessTerm(1, SessTermReason.BUSY)]
    assert events(passive)[1:] == [
        SessionEnding(SessTermReason.BUSY, by_peer=True),
        SessionClosed(SessTermReason.BUSY, True, True, "SESS_TERM busy from the peer"),
    ]


@pytest.mark.parametrize("private", [False, True])
def test_peer_sess_term_is_answered_with_its_reason(private: bool) -> None:
    session = raw(ACTIVE)
    reason = 0xF7 if private else SessTermReason.IDLE_TIMEOUT
    session.receive_data(SessTerm(0, reason).encode(), 0)
    assert sent(session) == [SessTerm(1, reason)]
    ending, closed = events(session)
    assert ending == SessionEnding(reason, by_peer=True)
    assert isinstance(closed, SessionClosed) and closed.clean and closed.reason == reason


def test_clean_termination_when_established() -> None:
    pair = established()
    pair.active.terminate(SessTermReason.UNKNOWN, 0)
    assert pair.active.state is SessionState.ENDING
    with pytest.raises(LocalProtocolError):
        pair.active.send_bundle(b"x", 0)
    pair.pump()
    ending, closed = pair.take("active")
    assert ending == SessionEnding(SessTermReason.UNKNOWN, by_peer=False)
    assert closed == SessionClosed(SessTermReason.UNKNOWN, False, True, closed.description)
    assert [type(e) for e in pair.take("passive")] == [SessionEnding, SessionClosed]
    assert pair.wire["active"].endswith(SessTerm(0, 0).encode())
    assert pair.wire["passive"].endswith(SessTerm(1, 0).encode())


def test_second_sess_term_is_rejected() -> None:
    session = raw(PASSIVE)
    session.receive_data(XferSegment(START, 0, b"a").encode(), 0)  # keeps the session open
    session.terminate(SessTermReason.BUSY, 0)
    session.data_to_send()
    session.receive_data(SessTerm(1, 3).encode() + SessTerm(1, 3).encode(), 0)
    assert of(MsgReject, sent(session)) == [MsgReject(UNEXPECTED, 0x05)]


@pytest.mark.parametrize("who", ["sender", "receiver"])
def test_open_transfers_finish_in_the_ending_state(who: str) -> None:
    pair = established(passive={"segment_mru": 10})
    tid = pair.active.start_transfer(20, 0)
    pair.active.send_segment(tid, bytes(10), 0, end=False)
    pair.pump()
    (pair.active if who == "sender" else pair.passive).terminate(SessTermReason.BUSY, 0)
    pair.pump()
    assert pair.active.state is pair.passive.state is SessionState.ENDING
    with pytest.raises(LocalProtocolError):
        pair.active.start_transfer(1, 0)  # no new transfer...
    pair.active.send_segment(tid, bytes(10), 0, end=True)  # ...but the open one finishes
    pair.pump()
    assert pair.passive.state is SessionState.ENDING  # the final ack is still held back
    pair.passive.accept_transfer(tid, 0)
    pair.pump()
    assert of(TransferSucceeded, pair.events["active"]) == [TransferSucceeded(tid, 20)]
    for side in ("active", "passive"):
        (closed,) = of(SessionClosed, pair.events[side])
        assert closed.clean and closed.unfinished == ()


def test_new_incoming_transfer_is_refused_while_ending() -> None:
    session = raw(PASSIVE)
    session.terminate(SessTermReason.BUSY, 0)
    session.data_to_send()
    session.receive_data(XferSegment(START | END, 0, b"late").encode(), 0)
    assert refusals(session) == [XferRefuse(XferRefuseReason.SESSION_TERMINATING, 0)]
    got = events(session)
    assert of(IncomingTransferAborted, got) == [
        IncomingTransferAborted(0, XferRefuseReason.SESSION_TERMINATING, by_peer=False)
    ]
    assert not of(PeerMisbehaved, got)


def test_ending_times_out_with_transfers_open_both_ways() -> None:
    pair = established(
        active={"segment_mru": 10, "ending_timeout_ms": 2000},
        passive={"segment_mru": 10, "ending_timeout_ms": 3000},
    )
    a_tid = pair.active.start_transfer(30, 0)
    pair.active.send_segment(a_tid, bytes(10), 0, end=False)
    p_tid = pair.passive.start_transfer(30, 0)
    pair.passive.send_segment(p_tid, bytes(10), 0, end=False)
    pair.pump()
    pair.active.terminate(SessTermReason.UNKNOWN, pair.now)
    pair.pump()
    pair.take("active")
    pair.take("passive")
    pair.advance(2000)
    assert pair.active.closed
    got = pair.take("active")
    assert got[0] == IncomingTransferAborted(
        p_tid, XferRefuseReason.SESSION_TERMINATING, by_peer=False
    )
    assert isinstance(got[1], SessionClosed) and not got[1].clean
    assert got[1].unfinished == (UnfinishedTransfer(a_tid, 10, 10, 30),)
    pair.disconnect()
    (closed,) = of(SessionClosed, pair.take("passive"))
    assert closed.clean  # both SESS_TERMs had been exchanged
    assert closed.unfinished == (UnfinishedTransfer(p_tid, 10, 10, 30),)


def test_connection_loss_reports_acknowledged_bytes() -> None:
    pair = established(passive={"segment_mru": 100})
    tid = pair.active.start_transfer(1000, 0)
    for _ in range(3):
        pair.active.send_segment(tid, bytes(100), 0, end=False)
    pair.pump()
    pair.active.send_segment(tid, bytes(100), 0, end=False)  # sent, never acknowledged
    pair.take("active")
    pair.take("passive")
    pair.disconnect()
    (closed,) = pair.take("active")
    assert closed == SessionClosed(
        None, True, False, "connection lost", (UnfinishedTransfer(tid, 300, 400, 1000),)
    )
    assert pair.take("passive") == [
        IncomingTransferAborted(tid, XferRefuseReason.UNKNOWN, by_peer=True),
        SessionClosed(None, True, False, "connection lost"),
    ]
    pair.active.connection_lost(1)  # idempotent
    pair.passive.accept_transfer(tid, 1)  # too late, but not an error
    assert events(pair.active) == [] and events(pair.passive) == []
    with pytest.raises(LocalProtocolError):
        pair.active.send_segment(tid, bytes(100), 1, end=False)


def test_connection_loss_after_our_sess_term_is_clean() -> None:
    pair = established()
    pair.active.terminate(SessTermReason.BUSY, 0)
    pair.disconnect()
    (_, closed) = pair.take("active")
    assert isinstance(closed, SessionClosed)
    assert closed.clean and closed.reason is SessTermReason.BUSY and not closed.by_peer


def test_nothing_is_parsed_after_close() -> None:
    session = raw(PASSIVE)
    session.receive_data(b"\x09", 0)
    events(session)
    session.data_to_send()
    session.receive_data(XferSegment(3, 0, b"x").encode(), 1)
    session.handle_timer(10**9)
    assert events(session) == [] and session.data_to_send() == b""
