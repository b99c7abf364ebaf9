"""Property tests for the TCPCLv3 session: split invariance, robustness, and delivery.

* Any split of a valid byte stream from a peer gives the same events and the same output.
* Random bytes and random message sequences never make ``receive_data`` raise, and the
  session stays in its declared states (at most one ``SessionClosed``, nothing after it).
* Bundles sent over a session pair arrive whole, whatever the flags, segment sizes and MRUs.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from dtncloud.tcpcl.codes import Role, SessTermReason, XferRefuseReason
from dtncloud.tcpcl.config import SessionConfig
from dtncloud.tcpcl.events import Event, SegmentReceived, SessionClosed, TransferSucceeded
from dtncloud.tcpcl.pair import SessionPair
from dtncloud.tcpcl.v3 import SessionStateV3, SessionV3
from dtncloud.tcpcl.v3messages import (
    V3ContactFlag,
    encode_ack_segment,
    encode_contact_header,
    encode_data_segment_header,
    encode_keepalive,
    encode_length,
    encode_refuse_bundle,
    encode_shutdown,
)

ACKS = int(V3ContactFlag.REQUEST_ACKS)
VALID_FLAGS = st.sampled_from([0, ACKS, ACKS | 0x04, ACKS | 0x0C, 0x08, 0x0F, 0x02])
U64 = st.integers(0, (1 << 64) - 1)
SMALL_BYTES = st.binary(min_size=1, max_size=40)


def config(**changes: Any) -> SessionConfig:
    base: dict[str, Any] = {"node_id": "ipn:1.0", "keepalive_s": 10}
    base.update(changes)
    return SessionConfig(**base)


def drain(session: SessionV3) -> list[Event]:
    events = []
    while (event := session.next_event()) is not None:
        events.append(event)
    return events


@st.composite
def bundle_messages(draw: st.DrawFn, announce: bool) -> bytes:
    """One bundle in one or more DATA_SEGMENTs, maybe announced by a (truthful) LENGTH."""
    pieces = draw(st.lists(st.binary(max_size=30), min_size=1, max_size=4))
    out = bytearray(encode_length(sum(map(len, pieces)))) if announce else bytearray()
    for i, piece in enumerate(pieces):
        head = encode_data_segment_header(start=i == 0, end=i == len(pieces) - 1, length=len(piece))
        out += head + piece
    return bytes(out)


@st.composite
def valid_streams(draw: st.DrawFn) -> tuple[int, bytes]:
    """A peer's contact header and a valid message sequence; returns (peer flags, bytes)."""
    flags = draw(VALID_FLAGS)
    eid = draw(st.text(min_size=0, max_size=20))
    stream = bytearray(encode_contact_header(flags, draw(st.integers(0, 0xFFFF)), eid))
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["bundle", "bundle", "keepalive", "ack", "refuse"]))
        if kind == "bundle":
            stream += draw(bundle_messages(announce=draw(st.booleans())))
        elif kind == "keepalive":
            stream += encode_keepalive()
        elif kind == "ack":
            stream += encode_ack_segment(draw(st.integers(0, 10)))
        else:
            stream += encode_refuse_bundle(draw(st.integers(0, 15)))
    if draw(st.booleans()):
        reason = draw(st.none() | st.integers(0, 255))
        stream += encode_shutdown(reason, draw(st.none() | U64))
    return flags, bytes(stream)


def run(stream: bytes, cuts: list[int], segment_mru: int) -> tuple[list[Event], bytes]:
    session = SessionV3(Role.PASSIVE, config(segment_mru=segment_mru), 0)
    output = bytearray(session.data_to_send())
    events: list[Event] = []
    previous = 0
    for cut in [*sorted(set(cuts)), len(stream)]:
        session.receive_data(stream[previous:cut], 0)
        previous = cut
        events += drain(session)
        output += session.data_to_send()
    return events, bytes(output)


@given(
    valid_streams(),
    st.lists(st.integers(0, 400), max_size=30),
    st.sampled_from([1, 3, 7, 1 << 20]),
)
def test_any_split_gives_the_same_events_and_output(
    flagged: tuple[int, bytes], cuts: list[int], segment_mru: int
) -> None:
    _, stream = flagged
    whole = run(stream, [], segment_mru)
    cuts = [c for c in cuts if c < len(stream)]
    assert run(stream, cuts, segment_mru) == whole
    assert run(stream, list(range(len(stream))), segment_mru) == whole  # byte by byte


def message_bytes() -> st.SearchStrategy[bytes]:
    """Messages, well-formed or not: any first byte with an SDNV-ish or random tail."""
    sdnv = (
        st.lists(st.integers(0x80, 0xFF), max_size=11)
        .map(bytes)
        .flatmap(lambda prefix: st.integers(0, 0x7F).map(lambda last: prefix + bytes((last,))))
    )
    return st.one_of(
        st.builds(lambda first, tail: bytes((first,)) + tail, st.integers(0, 255), sdnv),
        st.builds(lambda first, tail: bytes((first,)) + tail, st.integers(0, 255), st.binary()),
        st.builds(
            lambda s, e, data: encode_data_segment_header(start=s, end=e, length=len(data)) + data,
            st.booleans(),
            st.booleans(),
            st.binary(max_size=20),
        ),
        st.builds(encode_length, U64),
        st.builds(encode_ack_segment, U64),
        st.just(encode_keepalive()),
    )


@st.composite
def hostile_streams(draw: st.DrawFn) -> bytes:
    prefix = b""
    if draw(st.booleans()):
        prefix = encode_contact_header(draw(st.integers(0, 255)), draw(st.integers(0, 5)), "p")
    body = b"".join(draw(st.lists(message_bytes(), max_size=12)))
    return prefix + body if draw(st.booleans()) else draw(st.binary(max_size=60))


@settings(max_examples=300)
@given(
    hostile_streams(),
    st.lists(st.integers(0, 200), max_size=10),
    st.integers(0, 255),
    st.sampled_from([1, 5, 1 << 20]),
    st.randoms(use_true_random=False),
)
def test_random_input_never_raises_and_states_stay_declared(
    stream: bytes, cuts: list[int], flags: int, segment_mru: int, rng: Any
) -> None:
    flags &= ~0x04 if not flags & 0x01 else 0xFF
    session = SessionV3(
        Role.PASSIVE,
        config(segment_mru=segment_mru, transfer_mru=64, keepalive_s=1),
        0,
        flags=flags,
    )
    now = 0
    closed_seen = False
    previous = 0
    for cut in [*sorted({c for c in cuts if c < len(stream)}), len(stream)]:
        session.receive_data(stream[previous:cut], now)
        previous = cut
        session.data_to_send()
        while (event := session.next_event()) is not None:
            assert not closed_seen, "an event after SessionClosed"
            closed_seen = isinstance(event, SessionClosed)
            if isinstance(event, SegmentReceived) and event.end and not session.closed:
                if rng.random() < 0.5:
                    session.accept_transfer(event.transfer_id, now)
                else:
                    reason = rng.choice(list(XferRefuseReason))
                    session.refuse_transfer(event.transfer_id, reason, now)
        assert session.state in SessionStateV3
        assert session.closed == closed_seen
        timer = session.get_timer()
        if timer is not None and rng.random() < 0.3:
            now = max(now, timer)
            session.handle_timer(now)
            after = session.get_timer()
            assert after is None or after > now
    session.connection_lost(now)
    assert session.closed and session.get_timer() is None


@settings(max_examples=150)
@given(
    st.lists(SMALL_BYTES, min_size=1, max_size=5),
    VALID_FLAGS,
    VALID_FLAGS,
    st.integers(1, 16),
    st.sampled_from([1, 4, 1 << 20]),
    st.none() | st.integers(1, 9),
)
def test_bundles_arrive_whole_over_a_pair(
    bundles: list[bytes],
    active_flags: int,
    passive_flags: int,
    max_segment_size: int,
    segment_mru: int,
    chunk: int | None,
) -> None:
    changes = {"max_segment_size": max_segment_size, "segment_mru": segment_mru}
    pair = SessionPair(
        SessionV3(Role.ACTIVE, config(**changes), 0, flags=active_flags),
        SessionV3(Role.PASSIVE, config(node_id="ipn:2.0", **changes), 0, flags=passive_flags),
        chunk=chunk,
    )
    pair.pump()
    for data in bundles:
        tid = pair.active.send_bundle(data, 0)
        pair.pump()
        received = pair.of_type("passive", SegmentReceived)
        last = [e for e in received if e.transfer_id == tid]
        assert b"".join(e.data for e in last) == data
        assert last[0].start and last[-1].end
        pair.passive.accept_transfer(tid, 0)
        pair.pump()
        assert pair.of_type("active", TransferSucceeded)[-1] == TransferSucceeded(tid, len(data))
        assert not pair.active.outgoing_open
    pair.active.terminate(SessTermReason.UNKNOWN, 0)
    pair.pump()
    assert pair.active.closed and pair.passive.closed
    assert all(e.clean for side in ("active", "passive") for e in pair.of_type(side, SessionClosed))
