"""SLIP/COBS framing, CRC-32C and link-layer segments for serial links (sans-IO)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dtncloud.cla.framing import (
    FRAMINGS,
    MIN_FRAME_SIZE,
    CobsDecoder,
    FrameCounters,
    FrameReceiver,
    Framing,
    FramingError,
    Reassembler,
    Segment,
    Segmenter,
    SlipDecoder,
    cobs_encode,
    cobs_stuff,
    cobs_unstuff,
    encode_frame,
    make_decoder,
    min_payload_per_frame,
    pack_segment,
    parse_segment,
    slip_encode,
    slip_stuff,
    slip_unstuff,
)
from dtncloud.errors import ConfigError

framings = st.sampled_from(FRAMINGS)
bodies = st.binary(min_size=1, max_size=600)
# Bytes that stuffing has to deal with turn up often, not once in 256.
nasty_bytes = st.lists(
    st.one_of(st.sampled_from([0x00, 0xC0, 0xDB, 0xDC, 0xDD, 0xFF]), st.integers(0, 255)),
    max_size=700,
).map(bytes)
payloads = st.one_of(st.binary(max_size=3000), nasty_bytes)
BIG = 4096


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    """``data`` cut at the given positions (taken modulo its length)."""
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, start = [], 0
    for point in [*points, len(data)]:
        pieces.append(data[start:point])
        start = point
    return pieces


# -- stuffing: literal vectors ----------------------------------------------------------------


def test_slip_escapes_end_and_esc() -> None:
    assert slip_stuff(b"a\xc0b\xdbc") == b"a\xdb\xdcb\xdb\xddc"
    assert slip_stuff(b"\xdb\xdc") == b"\xdb\xdd\xdc"  # ESC_END alone is plain data
    assert slip_unstuff(b"a\xdb\xdcb\xdb\xddc") == b"a\xc0b\xdbc"


@pytest.mark.parametrize("raw", [b"\xdb", b"a\xdb", b"\xdb\x01", b"\xdb\xdb\xdc", b"a\xc0"])
def test_slip_rejects_bad_escapes(raw: bytes) -> None:
    with pytest.raises(FramingError):
        slip_unstuff(raw)


# The examples of Cheshire & Baker's encoding as usually given (delimiters left out).
COBS_VECTORS = [
    (b"", b"\x01"),
    (b"\x00", b"\x01\x01"),
    (b"\x00\x00", b"\x01\x01\x01"),
    (b"\x00\x11\x00", b"\x01\x02\x11\x01"),
    (b"\x11\x22\x00\x33", b"\x03\x11\x22\x02\x33"),
    (b"\x11\x22\x33\x44", b"\x05\x11\x22\x33\x44"),
    (b"\x11\x00\x00\x00", b"\x02\x11\x01\x01\x01"),
    (bytes(range(1, 255)), b"\xff" + bytes(range(1, 255))),
    (bytes(range(255)), b"\x01\xff" + bytes(range(1, 255))),
    (bytes(range(1, 256)), b"\xff" + bytes(range(1, 255)) + b"\x02\xff"),
    (bytes(range(2, 256)) + b"\x00", b"\xff" + bytes(range(2, 256)) + b"\x01\x01"),
    (bytes(range(3, 256)) + b"\x00\x01", b"\xfe" + bytes(range(3, 256)) + b"\x02\x01"),
]


@pytest.mark.parametrize(("data", "stuffed"), COBS_VECTORS)
def test_cobs_vectors(data: bytes, stuffed: bytes) -> None:
    assert cobs_stuff(data) == stuffed
    assert cobs_unstuff(stuffed) == data


@pytest.mark.parametrize("raw", [b"\x00", b"\x03\x11", b"\x02\x11\x00", b"\xff\x01"])
def test_cobs_rejects_bad_blocks(raw: bytes) -> None:
    with pytest.raises(FramingError):
        cobs_unstuff(raw)


def test_wire_frames_are_delimited_and_carry_a_crc32c() -> None:
    # CRC-32C of "123456789" is the standard check value 0xE3069283.
    assert slip_encode(b"123456789") == b"\xc0123456789\xe3\x06\x92\x83\xc0"
    assert cobs_encode(b"123456789") == b"\x00\x0e123456789\xe3\x06\x92\x83\x00"
    assert encode_frame(b"x", "slip") == slip_encode(b"x")
    assert encode_frame(b"x", "cobs") == cobs_encode(b"x")


@given(st.one_of(st.binary(max_size=2000), nasty_bytes))
def test_stuffing_round_trips_and_removes_the_delimiter(data: bytes) -> None:
    assert b"\xc0" not in slip_stuff(data)
    assert slip_unstuff(slip_stuff(data)) == data
    stuffed = cobs_stuff(data)
    assert b"\x00" not in stuffed
    assert cobs_unstuff(stuffed) == data
    assert len(stuffed) <= len(data) + 1 + len(data) // 254  # COBS's bounded overhead


# -- decoders ---------------------------------------------------------------------------------


@given(
    framings,
    st.lists(st.one_of(bodies, nasty_bytes.filter(bool)), max_size=8),
    st.lists(st.integers(0, 10_000)),
)
def test_decoder_round_trips_over_any_split_of_the_stream(
    framing: Framing, frames: list[bytes], cuts: list[int]
) -> None:
    stream = b"".join(encode_frame(body, framing) for body in frames)
    decoder = make_decoder(framing, BIG)
    received = [body for piece in split(stream, cuts) for body in decoder.feed(piece)]
    assert received == frames
    assert decoder.counters.frames_received == len(frames)
    assert decoder.counters.dropped_frames == 0
    assert decoder.counters.wire_bytes_received == len(stream)


@given(framings, st.binary(max_size=3000), st.lists(st.integers(0, 10_000), max_size=20))
def test_garbage_never_raises_and_memory_stays_bounded(
    framing: Framing, garbage: bytes, cuts: list[int]
) -> None:
    decoder = make_decoder(framing, 64)
    for piece in split(garbage, cuts):
        decoder.feed(piece)
        assert len(decoder._buffer) <= 64
    receiver = FrameReceiver(
        framing, max_frame_size=64, max_bundle_size=100, reassembly_timeout_ms=5
    )
    for now, piece in enumerate(split(garbage, cuts)):
        receiver.receive_data(piece, now)


@given(framings, bodies, st.data())
def test_a_flipped_bit_anywhere_drops_the_frame(
    framing: Framing, body: bytes, data: st.DataObject
) -> None:
    wire = bytearray(encode_frame(body, framing))
    bit = data.draw(st.integers(0, len(wire) * 8 - 1), label="bit")
    wire[bit // 8] ^= 1 << (bit % 8)
    decoder = make_decoder(framing, BIG)
    assert decoder.feed(bytes(wire)) == []
    # The frame that follows is not hurt.
    assert decoder.feed(encode_frame(b"next", framing)) == [b"next"]


@given(framings, st.one_of(st.binary(max_size=500), nasty_bytes), bodies)
def test_decoder_resynchronises_after_garbage(
    framing: Framing, garbage: bytes, body: bytes
) -> None:
    decoder = make_decoder(framing, BIG)
    received = decoder.feed(garbage + encode_frame(body, framing))
    assert received[-1:] == [body]


def test_noise_before_a_frame_is_counted_as_a_dropped_frame() -> None:
    slip = SlipDecoder(100)
    assert slip.feed(b"line noise" + slip_encode(b"hello")) == [b"hello"]
    assert (slip.counters.bad_crc_frames, slip.counters.frames_received) == (1, 1)
    cobs = CobsDecoder(100)
    assert cobs.feed(b"\x7fnoise" + cobs_encode(b"hello")) == [b"hello"]
    assert (cobs.counters.garbled_frames, cobs.counters.frames_received) == (1, 1)


def test_oversized_frames_are_dropped_counted_and_resynchronised() -> None:
    for framing in FRAMINGS:
        decoder = make_decoder(framing, 40)
        assert decoder.feed(encode_frame(b"x" * 60, framing)) == []
        assert decoder.counters.oversized_frames == 1
        # Endless bytes without a delimiter do not grow the buffer.
        for _ in range(100):
            decoder.feed(b"\x55" * 37)
        assert len(decoder._buffer) <= 40
        assert decoder.counters.oversized_frames == 2
        assert decoder.feed(encode_frame(b"ok", framing)) == [b"ok"]
        # A frame of exactly the maximum fits.
        exact = encode_frame(b"y" * 30, framing)
        assert len(make_decoder(framing, len(exact)).feed(exact)) == 1
        assert make_decoder(framing, len(exact) - 1).feed(exact) == []


def test_runts_and_empty_frames() -> None:
    decoder = SlipDecoder(100)
    assert decoder.feed(b"\xc0\xc0\xc0") == []  # back-to-back delimiters: nothing at all
    assert decoder.counters.dropped_frames == 0
    assert decoder.feed(b"\xc0abc\xc0") == []  # shorter than a CRC
    assert decoder.counters.garbled_frames == 1


def test_decoder_limits_are_checked() -> None:
    with pytest.raises(ConfigError):
        SlipDecoder(MIN_FRAME_SIZE - 1)
    with pytest.raises(ConfigError):
        make_decoder("kiss", 255)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        Segmenter("cobs", 10)


# -- segments ---------------------------------------------------------------------------------


def test_segment_header() -> None:
    body = pack_segment(7, 3, True, b"data")
    assert body == b"\x11\x07\x80\x03data"
    assert parse_segment(body) == Segment(7, 3, True, b"data")
    assert parse_segment(pack_segment(255, 0x7FFF, False, b"")) == Segment(255, 0x7FFF, False, b"")
    for bad in (b"\x11\x00\x00", b"\x21\x00\x00\x00", b"\x12\x00\x00\x00"):
        with pytest.raises(FramingError):
            parse_segment(bad)


@given(
    framings,
    st.integers(MIN_FRAME_SIZE, 600),
    st.lists(payloads, min_size=1, max_size=5),
    st.lists(st.integers(0, 100_000), max_size=30),
    st.integers(0, 255),
)
def test_bundles_round_trip_through_segments(
    framing: Framing, max_frame: int, bundles: list[bytes], cuts: list[int], first: int
) -> None:
    segmenter = Segmenter(framing, max_frame, first_transfer=first)
    frames = [frame for bundle in bundles for frame in segmenter.frames(bundle)]
    assert all(len(frame) <= max_frame for frame in frames)
    assert len(frames) >= len(bundles)
    receiver = FrameReceiver(
        framing, max_frame_size=max_frame, max_bundle_size=BIG, reassembly_timeout_ms=1000
    )
    received = [
        bundle
        for piece in split(b"".join(frames), cuts)
        for bundle in receiver.receive_data(piece, 0)
    ]
    assert received == bundles
    counts = receiver.counters.as_dict()
    assert counts["frames_received"] == len(frames)
    assert (
        sum(v for k, v in counts.items() if k not in {"frames_received", "wire_bytes_received"})
        == 0
    )


@given(framings, st.integers(MIN_FRAME_SIZE, 600), nasty_bytes)
def test_frames_carry_at_least_the_guaranteed_payload(
    framing: Framing, max_frame: int, data: bytes
) -> None:
    guaranteed = min_payload_per_frame(framing, max_frame)
    assert guaranteed >= 1
    frames = list(Segmenter(framing, max_frame).frames(data))
    assert len(frames) <= max(1, -(-len(data) // guaranteed))


def test_frames_are_filled_to_the_maximum() -> None:
    data = bytes(range(1, 256)) * 20  # no zero, one END, one ESC in every 255 bytes
    for framing in FRAMINGS:
        frames = list(Segmenter(framing, 255).frames(data))
        assert all(len(frame) >= 253 for frame in frames[:-1])
    assert min_payload_per_frame("cobs", 255) == 244
    assert Segmenter("cobs", 255).max_bundle_size() == 244 * 0x8000


def frames_of(framing: Framing, *bundles: bytes, max_frame: int = 64) -> list[list[bytes]]:
    segmenter = Segmenter(framing, max_frame)
    return [list(segmenter.frames(bundle)) for bundle in bundles]


def receiver(
    framing: Framing = "cobs", *, max_bundle_size: int = 1000, reassembly_timeout_ms: int = 100
) -> FrameReceiver:
    return FrameReceiver(
        framing,
        max_frame_size=64,
        max_bundle_size=max_bundle_size,
        reassembly_timeout_ms=reassembly_timeout_ms,
    )


@pytest.mark.parametrize("lost", [0, 1, 3])
def test_a_lost_frame_loses_its_bundle_only(lost: int) -> None:
    first, second, third = b"a" * 200, b"b" * 200, b"c" * 10
    frames = frames_of("cobs", first, second, third)
    del frames[1][lost]
    rx = receiver()
    assert rx.receive_data(b"".join(b"".join(f) for f in frames), now=0) == [first, third]
    counters = rx.counters
    if lost == 0:
        assert counters.orphan_segments == len(frames[1]) and counters.incomplete_bundles == 0
    else:
        # the frames after the gap are orphans; a lost last frame shows when the next starts
        assert counters.incomplete_bundles == 1
        assert counters.orphan_segments == len(frames[1]) - lost


def test_a_half_sent_bundle_gives_way_to_the_next() -> None:
    first, second = frames_of("slip", b"x" * 300, b"y" * 30)
    rx = receiver("slip")
    assert rx.receive_data(b"".join(first[:2]), 0) == []
    assert rx.receive_data(b"".join(second), 1) == [b"y" * 30]
    assert rx.counters.incomplete_bundles == 1


def test_duplicated_frames_are_ignored() -> None:
    (frames,) = frames_of("cobs", b"z" * 200)
    stream = frames[0] + frames[1] + frames[1] + b"".join(frames[2:])
    rx = receiver()
    assert rx.receive_data(stream, 0) == [b"z" * 200]
    assert rx.counters.duplicate_segments == 1


def test_reassembly_times_out() -> None:
    (frames,) = frames_of("cobs", b"q" * 200)
    rx = receiver(reassembly_timeout_ms=100)
    assert rx.get_timer() is None
    assert rx.receive_data(frames[0], now=1000) == []
    assert rx.get_timer() == 1100
    rx.handle_timer(1099)
    assert rx.reassembler.in_progress
    rx.handle_timer(1100)
    assert not rx.reassembler.in_progress and rx.get_timer() is None
    assert rx.counters.reassembly_timeouts == 1
    assert rx.receive_data(b"".join(frames[1:]), now=1101) == []  # the rest are orphans now
    assert rx.counters.orphan_segments == len(frames) - 1


def test_bundles_over_the_limit_are_dropped_early() -> None:
    big, small = frames_of("cobs", b"B" * 600, b"s" * 20)
    rx = receiver(max_bundle_size=500)
    assert rx.receive_data(b"".join(big[:-1]), 0) == []
    assert rx.counters.oversized_bundles == 1
    assert not rx.reassembler.in_progress  # nothing held for it
    assert rx.receive_data(big[-1] + b"".join(small), 0) == [b"s" * 20]


def test_other_traffic_is_ignored() -> None:
    rx = receiver()
    other = encode_frame(b"\x12\x00\x00\x00hello", "cobs")  # frame type 2
    future = encode_frame(b"\x21\x00\x80\x00hello", "cobs")  # format version 2
    assert rx.receive_data(other + future + encode_frame(b"\x11", "cobs"), 0) == []
    assert rx.counters.ignored_frames == 3
    assert rx.counters.dropped_frames == 3


def test_reassembler_checks_its_limits() -> None:
    with pytest.raises(ConfigError):
        Reassembler(0, 100)
    with pytest.raises(ConfigError):
        Reassembler(100, 0)


def test_counters_as_dict() -> None:
    counters = FrameCounters(bad_crc_frames=2, garbled_frames=1)
    counts = counters.as_dict()
    assert counts["dropped_frames"] == 3 and counts["bad_crc_frames"] == 2


@given(framings, bodies)
def test_a_byte_turned_upside_down_drops_the_frame(framing: Framing, body: bytes) -> None:
    wire = bytearray(encode_frame(body, framing))
    wire[len(wire) // 2] ^= 0xFF  # may even become a delimiter and split the frame in two
    decoder = make_decoder(framing, BIG)
    assert decoder.feed(bytes(wire) + encode_frame(b"after", framing)) == [b"after"]
