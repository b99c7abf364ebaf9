"""TCPCLv3 (RFC 7242) wire format: every message as literal bytes, both ways."""

from __future__ import annotations

from typing import Any

import pytest

from dtncloud.errors import RemoteProtocolError
from dtncloud.tcpcl.v3 import DEFAULT_FLAGS
from dtncloud.tcpcl.v3messages import (
    AckQueue,
    AckSegment,
    BadMagic,
    ContactHeader,
    DataSegmentHeader,
    Keepalive,
    LengthMessage,
    Negotiated,
    RefuseBundle,
    Shutdown,
    V3ContactFlag,
    VersionMismatch,
    decode_contact_header,
    decode_message,
    encode_ack_segment,
    encode_contact_header,
    encode_data_segment_header,
    encode_keepalive,
    encode_length,
    encode_refuse_bundle,
    encode_shutdown,
    negotiate,
    read_sdnv,
)

ACKS = V3ContactFlag.REQUEST_ACKS
REFUSAL = V3ContactFlag.BUNDLE_REFUSAL
LENGTHS = V3ContactFlag.LENGTH_MESSAGES
U64_MAX = (1 << 64) - 1
H = bytes.fromhex


# -- wire format: literal bytes -------------------------------------------------------------


def test_contact_header_bytes() -> None:
    encoded = encode_contact_header(0x0D, 60, "dtn://a/")
    assert encoded == H("64746e21 03 0d 003c 08") + b"dtn://a/"
    assert decode_contact_header(encoded) == (ContactHeader(0x0D, 60, "dtn://a/"), 17)
    # A longer EID takes a two-byte SDNV length.
    eid = "ipn:" + "9" * 200
    assert encode_contact_header(0, 0, eid)[8:10] == H("814c")


def test_contact_header_needs_all_its_bytes() -> None:
    encoded = encode_contact_header(0x01, 30, "ipn:1.0") + b"\x40"
    for cut in range(len(encoded) - 1):
        assert decode_contact_header(encoded[:cut]) is None
    assert decode_contact_header(encoded) == (ContactHeader(1, 30, "ipn:1.0"), len(encoded) - 1)


@pytest.mark.parametrize("prefix", [b"x", b"dtx", b"DTN!", b"\x00\x00\x00\x00\x03"])
def test_bad_magic_is_seen_as_soon_as_it_differs(prefix: bytes) -> None:
    with pytest.raises(BadMagic):
        decode_contact_header(prefix)


def test_version_is_checked_at_the_fifth_byte() -> None:
    with pytest.raises(VersionMismatch) as info:
        decode_contact_header(H("64746e21 04"))  # a TCPCLv4 header is only six bytes long
    assert info.value.version == 4


@pytest.mark.parametrize(
    "data",
    [
        H("64746e21 03 00 0000 84 80 80 00"),  # EID length 2^23: over the 65535 bound
        H("64746e21 03 00 0000 02 ff fe"),  # EID not UTF-8
        H("64746e21 03 00 0000 ffffffffffffffffffff"),  # endless SDNV
    ],
)
def test_malformed_contact_headers(data: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        decode_contact_header(data)


MESSAGES: list[tuple[bytes, Any]] = [
    (H("13 05"), DataSegmentHeader(start=True, end=True, length=5)),
    (H("12 8100"), DataSegmentHeader(start=True, end=False, length=128)),
    (H("10 00"), DataSegmentHeader(start=False, end=False, length=0)),
    (H("11 7f"), DataSegmentHeader(start=False, end=True, length=127)),
    (H("20 8100"), AckSegment(128)),
    (H("20 81ffffffffffffffff7f"), AckSegment(U64_MAX)),
    (H("30"), RefuseBundle(0)),
    (H("32"), RefuseBundle(2)),
    (H("3f"), RefuseBundle(15)),
    (H("40"), Keepalive()),
    (H("50"), Shutdown()),
    (H("52 00"), Shutdown(reason=0)),
    (H("52 02"), Shutdown(reason=2)),
    (H("51 8f00"), Shutdown(delay_s=1920)),
    (H("53 01 3c"), Shutdown(reason=1, delay_s=60)),
    (H("60 868d20"), LengthMessage(100_000)),
]


@pytest.mark.parametrize(("data", "message"), MESSAGES)
def test_message_bytes_decode(data: bytes, message: Any) -> None:
    assert decode_message(data, 0) == (message, len(data))
    assert decode_message(b"\xff" + data, 1) == (message, len(data) + 1)
    for cut in range(len(data)):
        assert decode_message(data[:cut], 0) is None


def test_message_bytes_encode() -> None:
    assert encode_data_segment_header(start=True, end=True, length=5) == H("13 05")
    assert encode_data_segment_header(start=False, end=False, length=128) == H("10 8100")
    assert encode_ack_segment(128) == H("20 8100")
    assert encode_refuse_bundle(3) == H("33")
    assert encode_keepalive() == H("40")
    assert encode_shutdown() == H("50")
    assert encode_shutdown(reason=0) == H("52 00")
    assert encode_shutdown(delay_s=1920) == H("51 8f00")
    assert encode_shutdown(reason=1, delay_s=60) == H("53 01 3c")
    assert encode_length(100_000) == H("60 868d20")
    with pytest.raises(ValueError):
        encode_refuse_bundle(16)


@pytest.mark.parametrize("first", [0x00, 0x07, 0x70, 0x8F, 0xF0])
def test_unknown_message_types_are_errors(first: int) -> None:
    with pytest.raises(RemoteProtocolError, match="unknown message type"):
        decode_message(bytes((first, 0)), 0)


def test_sdnv_reading_is_bounded() -> None:
    assert read_sdnv(H("80" * 9), 0) is None  # nine bytes without an end: wait for more
    with pytest.raises(RemoteProtocolError):
        read_sdnv(H("80" * 10), 0)  # ten without an end: never an SDNV of 64 bits
    with pytest.raises(RemoteProtocolError):
        read_sdnv(H("82 80808080808080 80 00"), 0)  # 2^64: too big
    assert read_sdnv(H("81ffffffffffffffff7f"), 0) == (U64_MAX, 10)
    assert read_sdnv(H("8080 05"), 0) == (5, 3)  # leading zero groups are tolerated


def test_negotiation_is_the_and_of_both_offers() -> None:
    peer = ContactHeader(int(ACKS | LENGTHS | V3ContactFlag.REACTIVE_FRAGMENTATION), 30, "x")
    assert negotiate(int(DEFAULT_FLAGS), 60, peer) == Negotiated(True, False, True, False, 30)
    # Refusal without acks does not count, whatever the peer claims.
    assert negotiate(int(REFUSAL | LENGTHS), 10, ContactHeader(0xFF, 0, "")) == Negotiated(
        False, False, True, False, 0
    )


def test_ack_queue_keeps_later_bundles_behind_a_held_final_ack() -> None:
    queue = AckQueue()
    assert queue.ack(0, 10, final=False) == H("200a")
    assert queue.ack(0, 20, final=True) == b""
    assert queue.ack(1, 5, final=False) == b""
    assert queue.ack(1, 7, final=False) == b""  # coalesced: acks are cumulative
    assert queue.refuse(2, 2) == b""
    assert queue.release(1) == b""  # bundle 1 is not complete and 0 still holds the line
    assert queue.release(0) == H("2014 2007 32")
    queue.drop(3)
    assert len(queue) == 0
