"""The extension block readers (read_bundle_age, read_hop_count, read_previous_node) agree with
a reference built on the bounded decoder alone: the data must be exactly one CBOR item, and
that item must have the block's shape. The readers take shortcuts for common encodings; this
checks that the shortcuts never answer differently (value, or refusal) from the long way."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cbor2
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from dtncloud.bpv7 import (
    CanonicalBlock,
    HopCount,
    read_bundle_age,
    read_hop_count,
    read_previous_node,
)
from dtncloud.cborutil import CborError, DecodeBudget, decode_item
from dtncloud.eid import EID
from dtncloud.errors import InvalidBundle, InvalidEID
from tests.strategies import MAX_UINT64, cbor_items

REFUSED = "refused"

# Encodings a reader meets in practice, in shortest and long forms, and near misses.
SAMPLES = [
    b"\x00",
    b"\x17",
    b"\x18\x18",
    b"\x19\x01\x00",
    b"\x1a\x00\x01\x00\x00",
    b"\x1b" + MAX_UINT64.to_bytes(8, "big"),
    b"\x18\x05",
    b"\x20",
    b"\x82\x1e\x00",
    b"\x82\x18\xff\x17",
    b"\x82\x19\x00\x1e\x18\x00",
    b"\x9f\x1e\x00\xff",
    b"\x82\x01\x00",
    b"\x82\x01\x64//n/",
    b"\x82\x01\x78\x04//n/",
    b"\x82\x01\x63GS4",
    b"\x82\x01\x62\xc3\x28",
    b"\x82\x01\x7f\x62//\x62n/\xff",
    b"\x82\x02\x82\x01\x00",
    b"\x82\x02\x82\x1b" + MAX_UINT64.to_bytes(8, "big") + b"\x00",
    b"\x82\x02\x82\x01\x20",
    b"\x82\x02\x82\x01\x00\x00",
    b"\x82\x03\x00",
    b"\x81\x00",
    b"\x83\x01\x02\x03",
]


@st.composite
def btsd_bytes(draw: st.DrawFn) -> bytes:
    base = draw(
        st.one_of(
            st.sampled_from(SAMPLES),
            st.binary(max_size=12),
            cbor_items(max_leaves=4).map(cbor2.dumps),
        )
    )
    # Splice a few random bytes in (or cut some out) at a random place.
    start = draw(st.integers(0, len(base)))
    stop = draw(st.integers(start, min(len(base), start + 2)))
    return base[:start] + draw(st.binary(max_size=2)) + base[stop:]


def reference(data: bytes, shape: Callable[[Any], object]) -> object:
    try:
        value, end = decode_item(data, 0, len(data), DecodeBudget(items=8, max_depth=2))
    except CborError:
        return REFUSED
    if end != len(data):
        return REFUSED
    try:
        return shape(value)
    except (ValueError, InvalidEID):
        return REFUSED


def bundle_age_shape(value: Any) -> int:
    if type(value) is not int or not 0 <= value <= MAX_UINT64:
        raise ValueError
    return value


def hop_count_shape(value: Any) -> HopCount:
    if type(value) is not list or len(value) != 2:
        raise ValueError
    if not all(type(v) is int and 0 <= v <= MAX_UINT64 for v in value):
        raise ValueError
    return HopCount(value[0], value[1])


def outcome(read: Callable[[CanonicalBlock], object], data: bytes) -> object:
    try:
        return read(CanonicalBlock(6, 2, data))
    except InvalidBundle:
        return REFUSED


@pytest.mark.parametrize("lenient", [False, True])
@given(data=btsd_bytes())
@example(data=b"\x07\xff")
@example(data=b"\x82\x05\x00\x00")
def test_readers_agree_with_the_bounded_decoder(lenient: bool, data: bytes) -> None:
    assert outcome(read_bundle_age, data) == reference(data, bundle_age_shape)
    assert outcome(read_hop_count, data) == reference(data, hop_count_shape)
    got = outcome(lambda block: read_previous_node(block, lenient), data)
    assert got == reference(data, lambda value: EID.from_cbor(value, lenient=lenient))
