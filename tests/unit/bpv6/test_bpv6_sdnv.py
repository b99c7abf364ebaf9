"""SDNV encoding and decoding (RFC 6256) and the bounded byte reader."""

from __future__ import annotations

import pytest

from dtncloud.bpv6.sdnv import (
    MAX_SDNV_LENGTH,
    MAX_SDNV_VALUE,
    ByteReader,
    SdnvError,
    decode_sdnv,
    encode_sdnv,
    sdnv_length,
)
from dtncloud.errors import BundleDecodeError, BundleEncodeError

# (value, encoding): the RFC 6256 section 2.1 examples, the 7-bit boundaries and 64-bit limit.
KNOWN = [
    (0, "00"),
    (1, "01"),
    (0x7F, "7f"),
    (0x80, "8100"),
    (0xABC, "953c"),
    (0x1234, "a434"),
    (0x3FFF, "ff7f"),
    (0x4000, "818000"),
    (0x4234, "818434"),
    (731540048, "82dce9d450"),
    ((1 << 63), "81" + "80" * 8 + "00"),
    (MAX_SDNV_VALUE, "81" + "ff" * 8 + "7f"),
]


@pytest.mark.parametrize(("value", "hex_"), KNOWN)
def test_known_encodings(value: int, hex_: str) -> None:
    assert encode_sdnv(value).hex() == hex_
    assert decode_sdnv(bytes.fromhex(hex_)) == (value, len(hex_) // 2)
    assert sdnv_length(value) == len(hex_) // 2


def test_decode_at_offset_and_ignores_what_follows() -> None:
    data = b"\xaa" + bytes.fromhex("a434") + b"\x99\x99"
    assert decode_sdnv(data, 1) == (0x1234, 3)


def test_decode_accepts_leading_zero_groups_within_ten_bytes() -> None:
    assert decode_sdnv(b"\x80\x80\x05") == (5, 3)
    padded = b"\x80" * (MAX_SDNV_LENGTH - 1) + b"\x05"
    assert decode_sdnv(padded) == (5, MAX_SDNV_LENGTH)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x81",
        b"\xff\xff\xff",
        bytes.fromhex("82dce9d4"),
    ],
)
def test_truncated_sdnv(data: bytes) -> None:
    with pytest.raises(SdnvError, match="ends inside"):
        decode_sdnv(data)


def test_endless_continuation_bytes_fail_after_ten() -> None:
    hostile = b"\x80" * 1_000_000
    with pytest.raises(SdnvError, match="runs past 10 bytes") as info:
        decode_sdnv(hostile)
    assert info.value.reason == 8


def test_eleven_byte_sdnv_is_refused_even_if_it_ends() -> None:
    with pytest.raises(SdnvError, match="runs past"):
        decode_sdnv(b"\x80" * MAX_SDNV_LENGTH + b"\x01")


@pytest.mark.parametrize("first", [0x82, 0xFF])
def test_ten_byte_sdnv_above_64_bits(first: int) -> None:
    data = bytes((first,)) + b"\x80" * 8 + b"\x00"
    with pytest.raises(SdnvError, match="exceeds 64 bits"):
        decode_sdnv(data)


def test_sdnv_error_is_a_bundle_decode_error() -> None:
    assert issubclass(SdnvError, BundleDecodeError)


@pytest.mark.parametrize("value", [-1, MAX_SDNV_VALUE + 1, True, 1.0, "1", None])
def test_encode_refuses_non_sdnv_values(value: object) -> None:
    with pytest.raises(BundleEncodeError):
        encode_sdnv(value)  # type: ignore[arg-type]


class TestByteReader:
    def test_reads_in_order(self) -> None:
        reader = ByteReader(b"\x06\x81\x12abc")
        assert reader.byte("version") == 6
        assert reader.sdnv("flags") == 0x92
        assert reader.remaining == 3
        assert reader.take(3, "data") == b"abc"
        assert reader.at_end()

    def test_take_refuses_an_overlong_length_without_reading(self) -> None:
        reader = ByteReader(b"abc")
        with pytest.raises(BundleDecodeError, match="1000000 bytes announced"):
            reader.take(1_000_000, "block data")
        assert reader.pos == 0

    def test_byte_at_end(self) -> None:
        with pytest.raises(BundleDecodeError, match="one byte needed"):
            ByteReader(b"").byte("version")

    def test_window_end_is_respected(self) -> None:
        reader = ByteReader(b"\x01\x81\x01", 0, 2)
        assert reader.sdnv("first") == 1
        with pytest.raises(SdnvError, match="second"):
            reader.sdnv("second")
        with pytest.raises(BundleDecodeError):
            ByteReader(b"abcdef", 1, 3).take(3, "x")
