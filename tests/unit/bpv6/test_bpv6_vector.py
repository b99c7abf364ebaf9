"""A real BPv6 custody signal captured from NASA DTNME (tests/vectors/bpv6_rfc5050_custody_signal)."""

from __future__ import annotations

from typing import Any

import pytest

from dtncloud.bpv6 import (
    AdminRecordType,
    BlockFlag,
    BlockType,
    Bundle,
    BundleFlag,
    BundleId,
    CanonicalBlock,
    CustodySignal,
    CustodySignalReason,
    DtnTime,
    Priority,
    decode_admin_record,
    decode_bundle,
    encode_admin_record,
    encode_bundle,
)
from dtncloud.errors import BundleDecodeError
from tests.vectors import load_vectors

VECTOR: dict[str, Any] = load_vectors("bpv6_rfc5050_custody_signal")
RAW = bytes.fromhex(VECTOR["bundle_hex"])
ADU = bytes.fromhex(VECTOR["payload_block"]["adu_hex"])


def test_primary_block() -> None:
    bundle = decode_bundle(RAW)
    assert bundle.flags == (
        BundleFlag.ADMIN_RECORD | BundleFlag.SINGLETON_DESTINATION | BundleFlag.PRIORITY_NORMAL
    )
    assert bundle.priority is Priority.NORMAL
    assert bundle.is_admin_record and not bundle.is_fragment
    # DTNME sent it with CBHE (RFC 6260): an empty dictionary, ipn numbers in the offsets.
    assert bundle.cbhe
    assert bundle.destination == "ipn:32969.0"
    assert bundle.source == "ipn:32768.0"
    assert bundle.report_to == "dtn:none"
    assert bundle.custodian == "dtn:none"
    # The signal was made as the bundle was created: same second as its time of signal.
    assert bundle.creation_time == VECTOR["decoded"]["time_of_signal_seconds_since_2000"]
    assert bundle.sequence == 71325
    assert bundle.lifetime == 86400
    assert bundle.fragment_offset is None and bundle.total_adu_length is None


def test_blocks() -> None:
    bundle = decode_bundle(RAW)
    phib, ecos, payload = bundle.blocks
    # Previous-hop insertion block (RFC 6259): the sender's EID as scheme NUL SSP NUL.
    assert phib.block_type == 5 == int(BlockType.PREVIOUS_HOP_INSERTION)
    assert phib.flags == BlockFlag.DISCARD_IF_UNPROCESSABLE
    assert phib.data == b"ipn\x0032768.0\x00"
    # Type 19, which the vector calls unknown: kept as opaque bytes.
    assert ecos.block_type == 19
    assert ecos.flags == BlockFlag.REPLICATE
    assert ecos.data == b"\x08\xff"
    expected = VECTOR["payload_block"]
    assert payload.block_type == expected["type"]
    assert len(payload.data) == expected["length"]
    assert payload.data == ADU == bundle.payload
    # On the wire the payload block's flags SDNV is 8: the last-block flag, which the
    # decoder checks and then keeps out of the block value.
    assert expected["flags_sdnv"] == BlockFlag.LAST_BLOCK
    assert payload.flags == BlockFlag.NONE
    wire_header = bytes((expected["type"], expected["flags_sdnv"], expected["length"]))
    assert RAW.endswith(wire_header + ADU)


def test_admin_record_header_byte() -> None:
    header = ADU[0]
    decoded = VECTOR["decoded"]
    assert header >> 4 == decoded["admin_record_type"] == AdminRecordType.CUSTODY_SIGNAL
    assert header & 0x0F == decoded["admin_record_flags"]
    assert ADU[1] == int(decoded["status_byte"], 16)


def test_custody_signal() -> None:
    record = decode_admin_record(decode_bundle(RAW).payload)
    decoded = VECTOR["decoded"]
    assert isinstance(record, CustodySignal)
    assert record.succeeded is decoded["custody_transfer_succeeded"]
    assert record.reason == decoded["reason_code"]
    assert record.reason is CustodySignalReason.REDUNDANT_RECEPTION
    assert record.reason.name.replace("_", " ").capitalize() == decoded["reason_name"]
    assert record.signal_time == DtnTime(
        decoded["time_of_signal_seconds_since_2000"], decoded["time_of_signal_nanoseconds"]
    )
    assert record.subject == BundleId(
        decoded["subject_source_eid"],
        decoded["subject_creation_timestamp_seconds"],
        decoded["subject_creation_sequence"],
    )


def test_reencodes_byte_identical() -> None:
    bundle = decode_bundle(RAW)
    assert encode_bundle(bundle) == RAW
    assert encode_admin_record(decode_admin_record(bundle.payload)) == ADU


def test_rebuilt_from_values_is_byte_identical() -> None:
    # The same bundle made from scratch, not from a decode: the encoder's choices (minimal
    # SDNVs, CBHE, last-block flag) match what DTNME wrote.
    decoded = VECTOR["decoded"]
    signal = CustodySignal(
        succeeded=False,
        reason=CustodySignalReason.REDUNDANT_RECEPTION,
        signal_time=DtnTime(decoded["time_of_signal_seconds_since_2000"]),
        subject=BundleId("ipn:11.64", 731539820, 377),
    )
    original = decode_bundle(RAW)
    rebuilt = Bundle.create(
        source="ipn:32768.0",
        destination="ipn:32969.0",
        payload=encode_admin_record(signal),
        creation_time=731540048,
        sequence=71325,
        lifetime=86400,
        flags=BundleFlag.ADMIN_RECORD
        | BundleFlag.SINGLETON_DESTINATION
        | BundleFlag.PRIORITY_NORMAL,
        extension_blocks=[
            CanonicalBlock(5, b"ipn\x0032768.0\x00", BlockFlag.DISCARD_IF_UNPROCESSABLE),
            CanonicalBlock(19, b"\x08\xff", BlockFlag.REPLICATE),
        ],
        cbhe=True,
    )
    assert rebuilt == original
    assert encode_bundle(rebuilt) == RAW


@pytest.mark.parametrize("cut", range(1, len(RAW)))
def test_every_truncation_is_refused(cut: int) -> None:
    with pytest.raises(BundleDecodeError) as info:
        decode_bundle(RAW[:cut])
    assert info.value.reason == 8
