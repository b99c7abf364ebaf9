"""BPv6 administrative records: bundle status reports and custody signals (RFC 5050 6.1)."""

from __future__ import annotations

import pytest

from dtncloud.bpv6 import (
    BundleId,
    BundleStatusReport,
    CustodySignal,
    CustodySignalReason,
    DtnTime,
    StatusFlag,
    StatusReportReason,
    decode_admin_record,
    encode_admin_record,
)
from dtncloud.errors import AdminRecordError, BundleEncodeError

SUBJECT = BundleId("ipn:11.64", 731539820, 377)
SUBJECT_TAIL = bytes.fromhex("82dce9d26c 8279 09") + b"ipn:11.64"


def test_status_report_literal() -> None:
    report = BundleStatusReport(
        reason=StatusReportReason.NO_KNOWN_ROUTE,
        subject=SUBJECT,
        received_at=DtnTime(1, 2),
        deleted_at=DtnTime(3, 0),
    )
    encoded = bytes.fromhex("10 11 06 0102 0300") + SUBJECT_TAIL
    assert report.status == StatusFlag.RECEIVED | StatusFlag.DELETED
    assert encode_admin_record(report) == encoded
    assert decode_admin_record(encoded) == report


def test_status_report_with_every_time_in_flag_order() -> None:
    times = {
        name: DtnTime(10 + i, i)
        for i, name in enumerate(
            ["received_at", "custody_accepted_at", "forwarded_at", "delivered_at", "deleted_at"]
        )
    }
    report = BundleStatusReport(reason=0, subject=SUBJECT, **times)
    encoded = encode_admin_record(report)
    assert encoded[:3] == bytes.fromhex("10 1f 00")
    assert encoded[3:13] == bytes.fromhex("0a00 0b01 0c02 0d03 0e04")
    assert decode_admin_record(encoded) == report
    assert report.status == 0x1F


def test_status_report_about_a_fragment() -> None:
    subject = BundleId("dtn://x/y", 5, 6, fragment_offset=1000, fragment_length=200)
    report = BundleStatusReport(
        reason=StatusReportReason.LIFETIME_EXPIRED, subject=subject, deleted_at=DtnTime(9)
    )
    encoded = encode_admin_record(report)
    # fragment flag in the header's low nibble; offset and length after the reason code
    assert encoded[:7] == bytes.fromhex("11 10 01 8768 8148")
    assert decode_admin_record(encoded) == report


def test_custody_signal_literal() -> None:
    signal = CustodySignal(
        succeeded=True,
        reason=CustodySignalReason.NO_ADDITIONAL_INFORMATION,
        signal_time=DtnTime(731540048, 5),
        subject=SUBJECT,
    )
    encoded = bytes.fromhex("20 80 82dce9d450 05") + SUBJECT_TAIL
    assert encode_admin_record(signal) == encoded
    assert decode_admin_record(encoded) == signal


def test_custody_signal_about_a_fragment_with_every_reason() -> None:
    subject = BundleId("ipn:1.2", 0, 0, fragment_offset=0, fragment_length=1)
    for reason in CustodySignalReason:
        signal = CustodySignal(False, reason, DtnTime(0), subject)
        encoded = encode_admin_record(signal)
        assert encoded[:2] == bytes((0x21, reason))
        decoded = decode_admin_record(encoded)
        assert decoded == signal
        assert isinstance(decoded, CustodySignal) and decoded.reason is reason


def test_unassigned_reason_codes_are_kept_as_ints() -> None:
    signal = CustodySignal(True, 0x55, DtnTime(0), SUBJECT)
    decoded = decode_admin_record(encode_admin_record(signal))
    assert isinstance(decoded, CustodySignal)
    assert decoded.reason == 0x55 and type(decoded.reason) is int
    report = BundleStatusReport(reason=200, subject=SUBJECT, delivered_at=DtnTime(1))
    assert decode_admin_record(encode_admin_record(report)) == report


def test_nanoseconds_are_kept_as_sent() -> None:
    signal = CustodySignal(True, 0, DtnTime(1, 3_000_000_000), SUBJECT)
    assert decode_admin_record(encode_admin_record(signal)) == signal


GOOD_SIGNAL = bytes.fromhex("20 80 00 00") + SUBJECT_TAIL
DECODE_ERRORS = {
    "empty": (b"", "record header: data ends"),
    "unknown type": (bytes.fromhex("40") + GOOD_SIGNAL[1:], "unknown administrative record type 4"),
    "type 0": (bytes.fromhex("00"), "type 0"),
    "reserved header flag": (bytes.fromhex("22") + GOOD_SIGNAL[1:], "unknown flag bits"),
    "unassigned status bit": (bytes.fromhex("10 20 00") + SUBJECT_TAIL, "unassigned bits"),
    "truncated time": (bytes.fromhex("20 80 81"), "signal time seconds"),
    "truncated fragment": (bytes.fromhex("21 80 05"), "fragment length"),
    "missing report time": (bytes.fromhex("10 01 00"), "received_at seconds"),
    "EID longer than the data": (GOOD_SIGNAL[:-9] + b"ipn", "9 bytes announced"),
    "non-ASCII EID": (GOOD_SIGNAL[:-2] + "ä".encode(), "not ASCII"),
    "trailing byte": (GOOD_SIGNAL + b"\x00", "1 bytes follow"),
    "overlong SDNV": (bytes.fromhex("20 80") + b"\xff" * 11, "runs past 10 bytes"),
}


@pytest.mark.parametrize(("data", "match"), DECODE_ERRORS.values(), ids=DECODE_ERRORS.keys())
def test_decode_errors(data: bytes, match: str) -> None:
    with pytest.raises(AdminRecordError, match=match):
        decode_admin_record(data)


def test_valid_signal_used_by_the_error_cases() -> None:
    assert isinstance(decode_admin_record(GOOD_SIGNAL), CustodySignal)


ENCODE_ERRORS = {
    "custody reason above 7 bits": (CustodySignal(True, 128, DtnTime(0), SUBJECT), "0 to 127"),
    "report reason above a byte": (BundleStatusReport(256, SUBJECT), "0 to 255"),
    "reason that is a bool": (BundleStatusReport(True, SUBJECT), "reason code"),
    "half a fragment": (
        CustodySignal(True, 0, DtnTime(0), BundleId("ipn:1.1", 0, 0, fragment_offset=3)),
        "both fragment offset and length",
    ),
    "negative time": (CustodySignal(True, 0, DtnTime(-1), SUBJECT), "signal time seconds"),
    "non-ASCII source": (
        CustodySignal(True, 0, DtnTime(0), BundleId("dtn://ä", 0, 0)),
        "ASCII",
    ),
    "negative creation time": (
        BundleStatusReport(0, BundleId("ipn:1.1", -5, 0)),
        "subject creation time",
    ),
    "not a record": ("custody signal", "not an administrative record"),
}


@pytest.mark.parametrize(("record", "match"), ENCODE_ERRORS.values(), ids=ENCODE_ERRORS.keys())
def test_encode_errors(record: object, match: str) -> None:
    with pytest.raises(BundleEncodeError, match=match):
        encode_admin_record(record)  # type: ignore[arg-type]


def test_not_bytes_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        decode_admin_record([0x20])  # type: ignore[arg-type]
