"""Properties of the TCPCLv4 session.

1. Splitting: whatever chunks a byte stream arrives in, a session reports the same events and
   sends the same bytes. Streams are recorded from whole conversations between two sessions
   (bundles both ways, small segments, refusals, keepalives, termination) and replayed into
   fresh sessions.
2. Robustness: any sequence of valid, invalid and random messages, mixed with driver
   commands and timer calls, never makes ``receive_data`` raise; the session changes state
   only along the transition table; its own output always parses; and ``handle_timer`` always
   moves the deadline past ``now``.
"""

from __future__ import annotations

from typing import Any

from hypothesis import event, given
from hypothesis import strategies as st

from dtncloud.errors import LocalProtocolError, TransferRefused
from dtncloud.tcpcl.codes import Role, SessTermReason, XferRefuseReason
from dtncloud.tcpcl.config import SessionConfig
from dtncloud.tcpcl.events import (
    ContactEstablished,
    Event,
    ExtensionItem,
    IncomingTransferAborted,
    SegmentReceived,
)
from dtncloud.tcpcl.messages import (
    ContactHeader,
    Keepalive,
    MessageReader,
    MsgReject,
    SessInit,
    SessTerm,
    UnknownMessage,
    XferAck,
    XferRefuse,
    XferSegment,
)
from dtncloud.tcpcl.pair import SessionPair
from dtncloud.tcpcl.session import Session
from dtncloud.tcpcl.states import TRANSITIONS, SessionState, Trigger

ROLES = st.sampled_from([Role.ACTIVE, Role.PASSIVE])


# --- 1. any split of a recorded stream gives the same events ---------------------------------
@st.composite
def configs(draw: st.DrawFn, tls: bool) -> SessionConfig:
    return SessionConfig(
        node_id=draw(st.sampled_from(["", "dtn://n/", "ipn:7.0"])),
        keepalive_s=draw(st.sampled_from([0, 1, 30])),
        segment_mru=draw(st.integers(1, 300)),
        transfer_mru=draw(st.integers(1, 2000)),
        can_tls=tls,
    )


def converse(draw: st.DrawFn) -> tuple[SessionPair, bool]:
    """A whole conversation between two sessions, driven by Hypothesis."""
    tls = draw(st.booleans())
    pair = SessionPair(
        Session(Role.ACTIVE, draw(configs(tls)), 0), Session(Role.PASSIVE, draw(configs(tls)), 0)
    )
    pair.pump()
    steps = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["active", "passive"]),
                st.sampled_from(["send", "send", "refuse", "wait"]),
                st.integers(0, 900),
            ),
            max_size=8,
        )
    )
    for side, action, size in steps:
        sender = getattr(pair, side)
        other = "passive" if side == "active" else "active"
        receiver = getattr(pair, other)
        if action == "wait":
            pair.advance(size * 10)
            continue
        if not sender.established or sender.outgoing_open:
            continue
        try:
            tid = sender.send_bundle(bytes([size % 256]) * size, pair.now)
        except TransferRefused:
            continue
        pair.pump()
        for done in pair.take(other):
            if isinstance(done, SegmentReceived) and done.end and done.transfer_id == tid:
                if action == "refuse":
                    receiver.refuse_transfer(tid, XferRefuseReason.COMPLETED, pair.now)
                else:
                    receiver.accept_transfer(tid, pair.now)
        pair.pump()
    if draw(st.booleans()):
        getattr(pair, draw(st.sampled_from(["active", "passive"]))).terminate(
            SessTermReason.BUSY, pair.now
        )
        pair.pump()
    return pair, tls


def replay(
    role: Role, config: SessionConfig, stream: bytes, cuts: list[int], tls: bool
) -> tuple[list[Event], bytes]:
    session = Session(role, config, 0)
    out = bytearray(session.data_to_send())
    seen: list[Event] = []
    complete: list[int] = []
    # Under TLS the contact header is read alone (a driver reads exactly 6 bytes first).
    bounds = sorted({*cuts, len(stream)} | ({6} if tls else set()))
    position = 0
    for bound in bounds:
        session.receive_data(stream[position:bound], 0)
        position = bound
        while (event := session.next_event()) is not None:
            seen.append(event)
            if isinstance(event, ContactEstablished) and event.use_tls:
                session.tls_established(0)
            if isinstance(event, SegmentReceived) and event.end:
                complete.append(event.transfer_id)
            if isinstance(event, IncomingTransferAborted) and event.transfer_id in complete:
                complete.remove(event.transfer_id)
        out += session.data_to_send()
    # Accept only at the end, so that acceptance does not depend on the chunking either.
    for tid in complete:
        session.accept_transfer(tid, 0)
    while (event := session.next_event()) is not None:
        seen.append(event)
    out += session.data_to_send()
    return seen, bytes(out)


@given(st.data())
def test_any_split_of_a_stream_gives_the_same_events(data: st.DataObject) -> None:
    pair, tls = converse(data.draw)
    event("TLS" if tls else "no TLS")
    for role, side in ((Role.PASSIVE, "active"), (Role.ACTIVE, "passive")):
        receiver = pair.passive if role is Role.PASSIVE else pair.active
        stream = bytes(pair.wire[side])
        whole = replay(role, receiver.config, stream, [], tls)
        for name in {type(e).__name__ for e in whole[0]}:
            event(f"{role.value} replay: {name}")
        cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=12))
        assert replay(role, receiver.config, stream, cuts, tls) == whole
        assert replay(role, receiver.config, stream, list(range(len(stream))), tls) == whole


# --- 2. random input never breaks the session ----------------------------------------------
class Recording(Session):
    """A session that logs every state change it makes."""

    def __init__(self, role: Role, config: SessionConfig, now: int) -> None:
        self.moves: list[tuple[SessionState, Trigger, SessionState]] = []
        self.contact_pending = True  # our contact header is still to be parsed back
        super().__init__(role, config, now)

    def _move(self, trigger: Trigger) -> None:
        before = self.state
        super()._move(trigger)
        self.moves.append((before, trigger, self.state))


U64 = st.one_of(st.integers(0, 5), st.just(2**64 - 1), st.integers(0, 2**64 - 1))
EXTENSIONS = st.lists(
    st.one_of(
        st.builds(
            ExtensionItem,
            st.just(1),
            st.one_of(U64.map(lambda n: n.to_bytes(8, "big")), st.binary(max_size=9)),
            st.booleans(),
        ),
        st.builds(ExtensionItem, st.integers(0, 0xFFFF), st.binary(max_size=6), st.booleans()),
    ),
    max_size=3,
).map(tuple)


@st.composite
def transfers(draw: st.DrawFn) -> bytes:
    """A plausible whole transfer: START (maybe with Transfer Length), more segments, END."""
    tid = draw(st.integers(0, 3))
    pieces = draw(st.lists(st.binary(max_size=12), min_size=1, max_size=4))
    total = sum(map(len, pieces)) + draw(st.sampled_from([0, 0, 0, 1, -1]))
    exts: tuple[ExtensionItem, ...] = ()
    if len(pieces) > 1 and draw(st.booleans()) and total >= 0:
        exts = (ExtensionItem(1, total.to_bytes(8, "big")),)
    out = b""
    for index, piece in enumerate(pieces):
        flags = (2 if index == 0 else 0) | (1 if index == len(pieces) - 1 else 0)
        out += XferSegment(flags, tid, piece, exts if index == 0 else ()).encode()
    return out


VALID_MESSAGES = st.one_of(
    st.builds(
        SessInit,
        st.integers(0, 3),
        U64,
        U64,
        st.sampled_from(["", "dtn://x/"]),
        EXTENSIONS,
    ).map(lambda m: m.encode()),
    st.builds(SessTerm, st.integers(0, 2), st.integers(0, 255)).map(lambda m: m.encode()),
    st.builds(
        XferSegment,
        st.sampled_from([0, 1, 2, 3, 0x43]),
        st.integers(0, 3),
        st.binary(max_size=40),
        st.one_of(st.just(()), EXTENSIONS),
    ).map(lambda m: m.encode()),
    st.builds(XferAck, st.integers(0, 255), st.integers(0, 3), U64).map(lambda m: m.encode()),
    st.builds(XferRefuse, st.integers(0, 255), st.integers(0, 3)).map(lambda m: m.encode()),
    st.builds(MsgReject, st.integers(0, 255), st.integers(0, 255)).map(lambda m: m.encode()),
    st.just(Keepalive().encode()),
)
# Random bytes end most sessions at once (unknown message type), so they come in rarely.
MESSAGE_KINDS = {
    "transfer": transfers(),
    "valid": VALID_MESSAGES,
    "typed": st.builds(
        lambda kind, rest: bytes([kind]) + rest, st.integers(1, 7), st.binary(max_size=12)
    ),
    "junk": st.binary(min_size=1, max_size=12),
}
MESSAGES = st.sampled_from(["transfer"] * 5 + ["valid"] * 5 + ["typed", "junk"]).flatmap(
    MESSAGE_KINDS.__getitem__
)
HEADER_KINDS = {
    "valid": st.builds(ContactHeader, st.just(4), st.integers(0, 255)).map(lambda h: h.encode()),
    "version": st.builds(ContactHeader, st.integers(0, 255)).map(lambda h: h.encode()),
    "junk": st.binary(max_size=6),
}
HEADERS = st.sampled_from(["valid"] * 8 + ["version", "junk"]).flatmap(HEADER_KINDS.__getitem__)
COMMANDS = st.sampled_from(
    ["accept", "accept", "refuse", "terminate", "send", "send", "timer", "lost", "tls", "segment"]
)


def check_output(session: Recording) -> None:
    """What the session sends is always well formed."""
    reader = MessageReader(max_segment=1 << 30, expect_contact=session.contact_pending)
    reader.feed(session.data_to_send())
    while (item := reader.next()) is not None:
        assert not isinstance(item, UnknownMessage)
        if isinstance(item, ContactHeader):
            session.contact_pending = False
    assert reader.buffered == 0


def command(session: Session, name: str, now: int, arg: int) -> None:
    try:
        if name == "accept":
            session.accept_transfer(arg, now)
        elif name == "refuse":
            session.refuse_transfer(arg, XferRefuseReason.NO_RESOURCES, now)
        elif name == "terminate":
            session.terminate(SessTermReason.UNKNOWN, now)
        elif name == "send":
            session.send_bundle(bytes(arg * 7), now)
        elif name == "segment":
            session.send_segment(arg, b"xy", now, end=bool(arg % 2))
        elif name == "lost":
            session.connection_lost(now)
        elif name == "tls":
            session.tls_established(now)
        else:
            session.handle_timer(now)
            deadline = session.get_timer()
            assert deadline is None or deadline > now
    except (LocalProtocolError, TransferRefused):
        pass


@given(
    role=ROLES,
    tls=st.booleans(),
    mru=st.integers(1, 80),
    header=HEADERS,
    sess_init=st.sampled_from([True, True, True, False]),
    steps=st.lists(
        st.one_of(
            MESSAGES.map(lambda m: ("data", m)),
            MESSAGES.map(lambda m: ("data", m)),
            st.tuples(COMMANDS, st.integers(0, 5)),
        ),
        min_size=2,
        max_size=30,
    ),
    chunk=st.integers(1, 50),
)
def test_random_input_never_breaks_the_session(
    role: Role,
    tls: bool,
    mru: int,
    header: bytes,
    sess_init: bool,
    steps: list[tuple[str, Any]],
    chunk: int,
) -> None:
    config = SessionConfig(
        keepalive_s=1, segment_mru=mru, transfer_mru=4 * mru, can_tls=tls, ending_timeout_ms=500
    )
    session = Recording(role, config, 0)
    check_output(session)
    first = [("data", header)]
    if sess_init:
        first.append(("data", SessInit(1, 50, 500).encode()))
    now = 0
    for kind, arg in [*first, *steps]:
        now += 100
        if kind == "data":
            for offset in range(0, len(arg), chunk):
                session.receive_data(arg[offset : offset + chunk], now)
        else:
            command(session, kind, now, arg)
        if session.state is SessionState.TLS_HANDSHAKE and kind == "data":
            session.tls_established(now)  # as a driver would, mostly
        while (happened := session.next_event()) is not None:
            event(type(happened).__name__)
        check_output(session)
        assert isinstance(session.state, SessionState)
        if session.closed:
            assert session.get_timer() is None
    event(f"ended in {session.state.value}")
    state = SessionState.CONTACT_WAIT
    for before, trigger, after in session.moves:
        assert before is state
        assert TRANSITIONS[before, trigger] is after
        state = after
    assert state is session.state
