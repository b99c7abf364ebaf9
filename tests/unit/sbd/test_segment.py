"""Segmentation of bundles into SBD messages, and reassembly."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dtncloud.sbd.segment import (
    HEADER_SIZE,
    MAX_PIECES,
    Reassembler,
    SegmentError,
    is_segment,
    max_bundle_size,
    parse_segment,
    piece_capacity,
    split_bundle,
)

BPV7 = b"\x9f" + bytes(range(256)) * 40  # looks like a BPv7 bundle: 0x9F first


def test_header_layout() -> None:
    pieces = split_bundle(BPV7[:600], tag=0xABC, piece_size=270, capacity=246)
    assert [piece[:HEADER_SIZE] for piece in pieces] == [
        bytes([0xDA, 0xBC, 0, 2]),
        bytes([0xDA, 0xBC, 1, 2]),
        bytes([0xDA, 0xBC, 2, 2]),
    ]
    assert [len(piece) for piece in pieces] == [250, 250, 4 + 600 - 492]
    segment = parse_segment(pieces[1])
    assert (segment.tag, segment.index, segment.last) == (0xABC, 1, 2)
    assert segment.data == BPV7[246:492]


def test_a_bundle_that_fits_goes_whole() -> None:
    assert split_bundle(BPV7[:270], tag=1, piece_size=270, capacity=246) == [BPV7[:270]]
    assert split_bundle(b"\x06" + bytes(10), tag=1, piece_size=270, capacity=246) == [
        b"\x06" + bytes(10)
    ]


def test_a_bundle_that_looks_like_a_segment_is_always_segmented() -> None:
    odd = b"\xd5hello"
    pieces = split_bundle(odd, tag=7, piece_size=270, capacity=246)
    assert pieces == [bytes([0xD0, 7, 0, 0]) + odd]
    assert Reassembler(timeout_ms=1000).add(pieces[0], 0) == odd


def test_piece_capacity() -> None:
    assert piece_capacity(270) == 246  # 250 bytes billed: 5 credits, not 6
    assert piece_capacity(270, credit_aligned=False) == 266
    assert piece_capacity(340) == 296  # 300 bytes billed
    assert piece_capacity(270, prefix=9) == 237  # 9 + 4 + 237 = 250
    assert piece_capacity(60) == 46  # 50 bytes billed
    assert piece_capacity(30) == 26  # below one credit: nothing to align to
    with pytest.raises(ValueError):
        piece_capacity(4)
    assert max_bundle_size(246) == 246 * MAX_PIECES


def test_too_many_pieces_is_an_error() -> None:
    with pytest.raises(ValueError):
        split_bundle(b"\x9f" * (10 * 257), tag=0, piece_size=14, capacity=10)


@pytest.mark.parametrize(
    "message", [b"\xd0\x00\x01", b"\xd0\x00\x03\x02data", b"\x9f"[:0], b"\xd0\x00\x00\x00"]
)
def test_bad_segments(message: bytes) -> None:
    if is_segment(message):
        with pytest.raises(SegmentError):
            parse_segment(message)
    reassembler = Reassembler(timeout_ms=1000)
    assert reassembler.add(message, 0) is None
    assert reassembler.stats.invalid == 1


def test_partial_bundles_expire() -> None:
    reassembler = Reassembler(timeout_ms=1000)
    pieces = split_bundle(BPV7[:1000], tag=5, piece_size=270, capacity=246)
    assert reassembler.add(pieces[0], 0) is None
    assert reassembler.add(pieces[1], 400) is None
    assert reassembler.get_timer() == 1400  # measured from the last progress
    assert reassembler.handle_timer(1399) == 0
    assert reassembler.handle_timer(1400) == 1
    assert reassembler.partial_bundles == 0 and reassembler.held_bytes == 0
    assert reassembler.get_timer() is None
    # The rest alone no longer makes a bundle.
    for piece in pieces[2:]:
        assert reassembler.add(piece, 1500) is None
    assert reassembler.stats.expired == 1


def test_memory_is_bounded() -> None:
    reassembler = Reassembler(timeout_ms=10_000, max_partials=2, max_bytes=1000)
    first = [split_bundle(BPV7[:800], tag=t, piece_size=270, capacity=246)[0] for t in range(3)]
    for now, piece in enumerate(first):
        reassembler.add(piece, now)
    assert reassembler.partial_bundles == 2  # the oldest made room
    assert reassembler.held_bytes <= 1000
    assert reassembler.stats.evicted >= 1
    # A bundle that alone exceeds the byte limit is never held whole.
    big = split_bundle(BPV7[:3000], tag=9, piece_size=270, capacity=246)
    for piece in big:
        assert reassembler.add(piece, 10) is None
    assert reassembler.held_bytes <= 1000


def test_a_reused_tag_replaces_the_stale_partial() -> None:
    reassembler = Reassembler(timeout_ms=10_000)
    old = split_bundle(BPV7[:700], tag=3, piece_size=270, capacity=246)
    new = split_bundle(BPV7[100:1100], tag=3, piece_size=270, capacity=246)
    reassembler.add(old[0], 0)
    results = [reassembler.add(piece, 1) for piece in new]
    assert results[-1] == BPV7[100:1100]
    # Same piece count, different bytes at an index already held: the old partial goes.
    other = split_bundle(BPV7[1:701], tag=4, piece_size=270, capacity=246)
    same = split_bundle(BPV7[:700], tag=4, piece_size=270, capacity=246)
    reassembler.add(other[0], 2)
    assert [reassembler.add(piece, 3) for piece in same][-1] == BPV7[:700]


def test_late_duplicates_of_a_completed_bundle_are_ignored() -> None:
    reassembler = Reassembler(timeout_ms=10_000)
    pieces = split_bundle(BPV7[:700], tag=11, piece_size=270, capacity=246)
    assert [reassembler.add(piece, 0) for piece in pieces][-1] == BPV7[:700]
    assert reassembler.add(pieces[1], 5) is None
    assert reassembler.partial_bundles == 0
    assert reassembler.stats.duplicates == 1
    # After the timeout the tag is forgotten: a piece then starts a new bundle.
    reassembler.add(pieces[1], 20_000)
    assert reassembler.partial_bundles == 1


@given(
    size=st.integers(1, 6000),
    capacity=st.integers(1, 266),
    tag=st.integers(0, 0xFFF),
    data=st.data(),
)
def test_any_order_with_duplicates_reassembles(
    size: int, capacity: int, tag: int, data: st.DataObject
) -> None:
    bundle = data.draw(st.binary(min_size=size, max_size=size))
    if -(-size // capacity) > MAX_PIECES:
        capacity = -(-size // MAX_PIECES)
    pieces = split_bundle(bundle, tag=tag, piece_size=capacity + HEADER_SIZE, capacity=capacity)
    assert all(len(piece) <= capacity + HEADER_SIZE for piece in pieces)
    order = data.draw(st.permutations(range(len(pieces))))
    extra = data.draw(st.lists(st.sampled_from(range(len(pieces))), max_size=5))
    reassembler = Reassembler(timeout_ms=1000, max_bytes=1 << 16)
    delivered = [
        result
        for index in [*order, *extra]
        if (result := reassembler.add(pieces[index], 0)) is not None
    ]
    if is_segment(pieces[0]):
        assert delivered == [bundle]
    else:  # a whole bundle passes straight through, duplicates too (the node drops those)
        assert delivered == [bundle] * (1 + len(extra))
    assert reassembler.partial_bundles == 0 and reassembler.held_bytes == 0


@given(st.lists(st.binary(max_size=300), max_size=40))
def test_garbage_messages_never_raise(messages: list[bytes]) -> None:
    reassembler = Reassembler(timeout_ms=1000, max_partials=3, max_bytes=2000)
    for now, message in enumerate(messages):
        reassembler.add(message, now)
        assert reassembler.held_bytes <= 2000
        assert reassembler.partial_bundles <= 3
