"""The tshark harness itself: it must pass bundles pyd3tn built and flag broken ones.

Bundles come from pyd3tn (software nobody here wrote), so these tests check the harness, not
dtncloud. The corrupted-CRC cases prove that a harness check can fail.
"""

from __future__ import annotations

import struct

import pytest
from pyd3tn.bundle7 import CRCType, create_bundle7, serialize_bundle7

from tests.interop.tshark import (
    DLT_USER0,
    MAX_PACKET_SIZE,
    dissect_bpv7,
    pcap_bytes,
    requires_tshark,
)

# pyd3tn takes Unix seconds for the creation time and seconds for the lifetime.
CREATED_UNIX_S = 1_700_000_000
DTN_EPOCH_UNIX_S = 946_684_800
PAYLOAD = b"hello, tshark"


def make_bundle(
    source: str = "dtn://a/", destination: str = "dtn://b/inbox", **kwargs: object
) -> bytes:
    options: dict[str, object] = {
        "creation_timestamp": CREATED_UNIX_S,
        "sequence_number": 7,
        "lifetime": 3600,
    }
    options.update(kwargs)
    return bytes(serialize_bundle7(source, destination, PAYLOAD, **options))


def flip(data: bytes, index: int) -> bytes:
    broken = bytearray(data)
    broken[index] ^= 0x01
    return bytes(broken)


# -- pcap writer (no tshark needed) -------------------------------------------------------


def test_pcap_has_a_global_header_and_one_record_per_packet() -> None:
    packets = [b"\x9f\xff", b"abc"]
    data = pcap_bytes(packets)

    magic, major, minor, _zone, _sigfigs, snaplen, linktype = struct.unpack_from("<IHHiIII", data)
    assert (magic, major, minor, snaplen, linktype) == (0xA1B2C3D4, 2, 4, MAX_PACKET_SIZE, 147)
    assert linktype == DLT_USER0
    offset = 24
    for packet in packets:
        _sec, _usec, incl_len, orig_len = struct.unpack_from("<IIII", data, offset)
        assert incl_len == orig_len == len(packet)
        assert data[offset + 16 : offset + 16 + incl_len] == packet
        offset += 16 + incl_len
    assert offset == len(data)


def test_pcap_refuses_packets_tshark_would_truncate() -> None:
    with pytest.raises(ValueError, match="at most"):
        pcap_bytes([bytes(MAX_PACKET_SIZE + 1)])


# -- tshark ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "destination", "crc_type"),
    [
        ("dtn://a/", "dtn://b/inbox", CRCType.CRC32),
        ("ipn:1.0", "ipn:2.1", CRCType.CRC16),
    ],
)
@pytest.mark.interop
@requires_tshark
def test_valid_bundle_is_clean(source: str, destination: str, crc_type: CRCType) -> None:
    (result,) = dissect_bpv7([make_bundle(source, destination, crc_type_primary=crc_type)])

    assert result.clean, result.describe()
    assert not result.malformed
    assert result.problems() == ()
    assert "bpv7" in result.protocols
    assert result.key_fields["version"] == 7
    assert result.key_fields["crc_type"] == int(crc_type)
    assert result.key_fields["destination"] == destination
    assert result.key_fields["source"] == source
    assert result.key_fields["payload_length"] == len(PAYLOAD)
    assert result.key_fields["sequence_number"] == 7
    assert result.key_fields["lifetime"] == 3_600_000
    assert result.key_fields["creation_time"] == (CREATED_UNIX_S - DTN_EPOCH_UNIX_S) * 1000
    assert result.value("bpv7.primary.version") == "7"


@pytest.mark.interop
@requires_tshark
def test_unknown_type_code_warning_is_reported_but_filtered() -> None:
    (result,) = dissect_bpv7([make_bundle()])

    harmless = [item for item in result.expert if item.harmless]
    assert [item.message for item in harmless] == ["Unknown type code"]
    assert harmless[0].severity == "warn"
    assert result.problems(ignore=()) == tuple(harmless)
    assert result.problems() == ()


@pytest.mark.interop
@requires_tshark
def test_corrupted_payload_crc_gives_a_checksum_warning() -> None:
    good = make_bundle()
    # The bundle ends with: CRC-16 byte string (0x42 hi lo), then the 0xff break.
    assert good[-4] == 0x42 and good[-1] == 0xFF
    (result,) = dissect_bpv7([flip(good, -2)])

    assert not result.clean
    checksum = [item for item in result.problems() if item.group == "checksum"]
    assert checksum, result.describe()
    assert checksum[0].at_least("warn")
    assert "CRC" in checksum[0].message


@pytest.mark.interop
@requires_tshark
def test_corrupted_primary_crc_gives_a_checksum_warning() -> None:
    bundle = create_bundle7(
        "dtn://a/",
        "dtn://b/inbox",
        PAYLOAD,
        creation_timestamp=CREATED_UNIX_S,
        sequence_number=7,
        lifetime=3600,
    )
    data = bytes(bundle)
    primary = bytes(bundle.primary_block)
    assert data[1 : 1 + len(primary)] == primary  # after the 0x9f array head
    assert primary[-5] == 0x44  # CRC-32: a 4-byte byte string ends the primary block
    (result,) = dissect_bpv7([flip(data, len(primary))])  # last byte of the primary CRC

    checksum = [item for item in result.problems() if item.group == "checksum"]
    assert checksum, result.describe()


@pytest.mark.interop
@requires_tshark
def test_truncated_bundle_is_malformed() -> None:
    good = make_bundle()
    (result,) = dissect_bpv7([good[: len(good) // 2]])

    assert result.malformed, result.describe()
    assert not result.clean
    assert any(item.severity == "error" for item in result.expert)


@pytest.mark.interop
@requires_tshark
def test_results_come_back_in_order() -> None:
    bundles = [
        make_bundle(destination="dtn://b/one"),
        flip(make_bundle(destination="dtn://b/two"), -2),
        make_bundle(destination="dtn://b/three", sequence_number=8),
    ]
    results = dissect_bpv7(bundles)

    assert [r.frame for r in results] == [1, 2, 3]
    assert [r.key_fields["destination"] for r in results] == [
        "dtn://b/one",
        "dtn://b/two",
        "dtn://b/three",
    ]
    assert [r.clean for r in results] == [True, False, True]


def test_no_bundles_needs_no_tshark() -> None:
    assert dissect_bpv7([]) == []
