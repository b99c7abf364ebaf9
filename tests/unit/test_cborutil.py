"""dtncloud.cborutil: deterministic heads and the bounded decoder, checked against cbor2 and
RFC 8949's well-formedness rules."""

from __future__ import annotations

import math
import tracemalloc
from typing import Any

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dtncloud.cborutil import (
    MAX_UINT64,
    UNDEFINED,
    CborError,
    DecodeBudget,
    Tagged,
    decode_item,
    encode_bytes,
    encode_text,
    encode_uint,
    head,
    head_len,
    read_head,
)
from tests.strategies import CBOR_BOUNDARIES, cbor_items, uints

# -- heads ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("major", "value", "encoded"),
    [
        (0, 0, "00"),
        (0, 23, "17"),
        (0, 24, "1818"),
        (0, 255, "18ff"),
        (0, 256, "190100"),
        (0, 65_535, "19ffff"),
        (0, 65_536, "1a00010000"),
        (0, 2**32 - 1, "1affffffff"),
        (0, 2**32, "1b0000000100000000"),
        (0, MAX_UINT64, "1bffffffffffffffff"),
        (2, 5, "45"),
        (3, 24, "7818"),
        (4, 2, "82"),
        (5, 1, "a1"),
        (6, 24, "d818"),
        (6, 55_799, "d9d9f7"),
        (7, 20, "f4"),
    ],
)
def test_head(major: int, value: int, encoded: str) -> None:
    assert head(major, value).hex() == encoded
    assert head_len(value) == len(bytes.fromhex(encoded))


def test_head_refuses_more_than_64_bits() -> None:
    with pytest.raises(ValueError, match="does not fit in 64 bits"):
        head(0, MAX_UINT64 + 1)


def test_head_refuses_negative_values() -> None:
    with pytest.raises(ValueError):
        head(0, -1)


@given(uints())
def test_uint_encoding_matches_cbor2(value: int) -> None:
    assert encode_uint(value) == cbor2.dumps(value)
    assert head_len(value) == len(encode_uint(value))


@given(st.binary(max_size=300))
def test_bytes_encoding_matches_cbor2(value: bytes) -> None:
    assert encode_bytes(value) == cbor2.dumps(value)


@given(st.text(max_size=100))
def test_text_encoding_matches_cbor2(value: str) -> None:
    assert encode_text(value) == cbor2.dumps(value)


# -- read_head --------------------------------------------------------------------------------


def test_read_head() -> None:
    assert read_head(b"\x1a\x00\x01\x00\x00", 0, 5) == (0, 26, 65_536, 5)
    assert read_head(b"\x00\x9f", 1, 2) == (4, 31, None, 2)
    with pytest.raises(CborError, match=r"unexpected end of data$"):
        read_head(b"\x01", 1, 1)
    with pytest.raises(CborError, match="unexpected end of data in a CBOR head"):
        read_head(b"\x1b\x00\x00", 0, 3)
    with pytest.raises(CborError, match="reserved additional information value 29"):
        read_head(b"\x1d", 0, 1)
    # ``end`` is honoured even when the buffer goes on
    with pytest.raises(CborError):
        read_head(b"\x19\x01\x00", 0, 2)


# -- decode_item ------------------------------------------------------------------------------


def decode(data: bytes, items: int = 10_000) -> Any:
    value, end = decode_item(data, 0, len(data), DecodeBudget(items=items))
    assert end == len(data)
    return value


def as_cbor2(value: Any) -> Any:
    """decode_item's value in cbor2's vocabulary (Tagged -> CBORTag), for comparison."""
    if isinstance(value, Tagged):
        return cbor2.CBORTag(value.tag, as_cbor2(value.value))
    if isinstance(value, list):
        return [as_cbor2(v) for v in value]
    if isinstance(value, dict):
        return {k: as_cbor2(v) for k, v in value.items()}
    return value


@given(cbor_items())
def test_decode_item_agrees_with_cbor2_encoding(item: Any) -> None:
    data = cbor2.dumps(item)
    value = as_cbor2(decode(data))
    # Compare through cbor2's encoder: equal encodings mean equal values, NaN and -0.0 included.
    assert cbor2.dumps(value) == data


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("00", 0),
        ("20", -1),
        ("3bffffffffffffffff", -(2**64)),
        ("1818", 24),  # non-shortest forms are well formed
        ("1b0000000000000001", 1),
        ("40", b""),
        ("5f41614162ff", b"ab"),
        ("7f6161ff", "a"),
        ("9f01820203ff", [1, [2, 3]]),
        ("a201020304", {1: 2, 3: 4}),
        ("bf6161f5ff", {"a": True}),
        ("c11a514b67b0", Tagged(1, 1_363_896_240)),
        ("d818420102", Tagged(24, b"\x01\x02")),
        ("f4", False),
        ("f5", True),
        ("f6", None),
        ("f93c00", 1.0),
        ("fa47c35000", 100_000.0),
        ("fb3ff199999999999a", 1.1),
    ],
)
def test_decode_item_values(data: str, expected: Any) -> None:
    assert decode(bytes.fromhex(data)) == expected


def test_decode_item_special_values() -> None:
    assert decode(b"\xf7") is UNDEFINED
    assert repr(UNDEFINED) == "undefined"
    assert math.isnan(decode(bytes.fromhex("f97e00")))
    assert math.isnan(decode(bytes.fromhex("fb7ff8000000000000")))


def test_decode_item_reports_where_it_stopped() -> None:
    data = bytes.fromhex("01028301020304")
    assert decode_item(data, 0, len(data), DecodeBudget(10)) == (1, 1)
    assert decode_item(data, 2, len(data), DecodeBudget(10)) == ([1, 2, 3], 6)


@pytest.mark.parametrize(
    ("data", "pattern"),
    [
        ("", r"unexpected end of data"),
        ("1f", r"indefinite length on an integer"),
        ("3f", r"indefinite length on an integer"),
        ("df00", r"indefinite length on a tag"),
        ("ff", r"unexpected break code"),
        ("1c", r"reserved additional information value 28"),
        ("5e", r"reserved additional information value 30"),
        ("43aabb", r"string of 3 bytes overruns the data \(2 left\)"),
        ("5b8000000000000000", r"string of 9223372036854775808 bytes overruns"),
        ("9b0000000100000000", r"array of 4294967296 items overruns the data"),
        ("bb0000000100000000", r"map of 4294967296 pairs overruns the data"),
        ("8301", r"overruns|unexpected end"),
        ("9f01", r"unterminated indefinite-length array"),
        ("bf01", r"unexpected end|unterminated"),
        ("bf", r"unterminated indefinite-length map"),
        ("5f41", r"unexpected end|overruns"),
        ("5f", r"unterminated indefinite-length string"),
        ("5f6161ff", r"bad chunk in an indefinite-length string"),
        ("5f5fffff", r"bad chunk in an indefinite-length string"),
        ("5f5b8000000000000000ff", r"string chunk overruns the data"),
        ("62c328", r"text string is not valid UTF-8"),
        ("7f62c328ff", r"text string is not valid UTF-8"),
        ("a18100f6", r"unhashable CBOR map key"),
        ("f820", r"unsupported CBOR simple value 32"),
        ("f0", r"unsupported CBOR simple value 16"),
        ("f800", r"unsupported CBOR simple value 0"),
        ("f81f", r"unsupported CBOR simple value 31"),
    ],
)
def test_decode_item_errors(data: str, pattern: str) -> None:
    raw = bytes.fromhex(data)
    with pytest.raises(CborError, match=pattern):
        decode_item(raw, 0, len(raw), DecodeBudget(items=100))


@pytest.mark.parametrize("data", ["f814", "f815", "f816", "f817"])
def test_two_byte_simple_values_below_32_are_malformed(data: str) -> None:
    # f8 00..f8 13 and f8 18..f8 1f already fail ("unsupported simple value"); these do not.
    raw = bytes.fromhex(data)
    with pytest.raises(CborError):
        decode_item(raw, 0, len(raw), DecodeBudget(items=10))


def test_end_limits_the_decoder() -> None:
    data = bytes.fromhex("4301020300")
    with pytest.raises(CborError, match="overruns"):
        decode_item(data, 0, 3, DecodeBudget(10))
    assert decode_item(data, 0, 4, DecodeBudget(10)) == (b"\x01\x02\x03", 4)


# -- budget -----------------------------------------------------------------------------------


def test_every_item_costs_one_unit() -> None:
    data = cbor2.dumps([1, [2, 3], {4: 5}])  # 1 + 1 + 1 + 2 + 1 + 2 = 8 items
    assert decode_item(data, 0, len(data), DecodeBudget(items=8))[0] == [1, [2, 3], {4: 5}]
    with pytest.raises(CborError, match="too many CBOR data items"):
        decode_item(data, 0, len(data), DecodeBudget(items=7))


def test_indefinite_string_chunks_are_charged() -> None:
    data = b"\x5f" + b"\x41x" * 50 + b"\xff"
    assert decode_item(data, 0, len(data), DecodeBudget(items=51))[0] == b"x" * 50
    with pytest.raises(CborError, match="too many"):
        decode_item(data, 0, len(data), DecodeBudget(items=50))


def test_nesting_is_limited() -> None:
    budget = DecodeBudget(items=1000)
    assert budget.max_depth == 16
    ok = b"\x81" * 16 + b"\x00"
    assert decode_item(ok, 0, len(ok), DecodeBudget(items=1000))[1] == len(ok)
    deep = b"\x81" * 17 + b"\x00"
    with pytest.raises(CborError, match="nesting too deep"):
        decode_item(deep, 0, len(deep), DecodeBudget(items=1000))
    tagged = b"\xc1" * 40 + b"\x00"
    with pytest.raises(CborError, match="nesting too deep"):
        decode_item(tagged, 0, len(tagged), DecodeBudget(items=1000))


@pytest.mark.parametrize(
    "data",
    [
        b"\x5b\x7f" + bytes(7) + bytes(9),
        b"\x9b\x00\x00\x00\x01\x00\x00\x00\x00" + bytes(11),
        b"\xbb\x00\x00\x00\x01\x00\x00\x00\x00" + bytes(11),
        b"\x9f" * 5000,
        b"\x5f" + b"\x40" * 100_000 + b"\xff",
    ],
    ids=[
        "2^63-byte string",
        "2^32-item array",
        "2^32-pair map",
        "nested indefinite arrays",
        "100k empty chunks",
    ],
)
def test_hostile_lengths_cost_no_memory(data: bytes) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(CborError):
            decode_item(data, 0, len(data), DecodeBudget(items=1000))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000


@given(st.sampled_from(CBOR_BOUNDARIES))
def test_non_shortest_uints_decode_to_the_same_value(value: int) -> None:
    for size, info in ((1, 24), (2, 25), (4, 26), (8, 27)):
        if value < 1 << (8 * size):
            data = bytes((info,)) + value.to_bytes(size, "big")
            assert decode(data) == value
