"""BPv7 administrative records: status reports, BIBE PDUs, custody signals, unknown records."""

from __future__ import annotations

from typing import Any

import cbor2
import pytest

from dtncloud.bpv7 import Bundle, BundleFlag, decode_bundle, encode_bundle
from dtncloud.bpv7.admin import (
    DEFAULT_ADMIN_RECORD_TYPES,
    ION_ADMIN_RECORD_TYPES,
    NOT_ASSERTED,
    AdminRecordTypes,
    StatusItem,
    StatusReport,
    UnknownAdminRecord,
    admin_bundle,
    decode_admin_record,
    encode_admin_record,
    make_status_report,
    read_admin_record,
)
from dtncloud.bpv7.bibe import (
    BibePdu,
    CustodyDisposition,
    CustodySignal,
    bibe_encapsulate,
    custody_signal_for,
)
from dtncloud.bpv7.flags import StatusReportReason
from dtncloud.bpv7.fragment import split_at
from dtncloud.eid import DTN_NONE, EID
from dtncloud.errors import AdminRecordError, BundleDecodeError, BundleEncodeError
from tests.vectors import load_vectors

VECTORS = {case["name"]: case for case in load_vectors("bpv7_admin_records")["vectors"]}
NOW = 755_000_000_000


def adu(*items: Any) -> bytes:
    return cbor2.dumps(list(items))


def subject_bundle(flags: BundleFlag = BundleFlag.NONE, payload: bytes = b"hello") -> Bundle:
    return Bundle.create(
        source="dtn://src/app",
        destination="dtn://dst/app",
        payload=payload,
        creation_time=NOW - 5_000,
        sequence=7,
        flags=flags,
    )


# -- vectors ----------------------------------------------------------------------------------


def _item(expected: list[Any]) -> StatusItem:
    return StatusItem(True, expected[1]) if expected[0] else NOT_ASSERTED


@pytest.mark.parametrize(
    "name", ["ud3tn_status_report_received_forwarded", "ud3tn_status_report_received"]
)
def test_status_report_vectors(name: str) -> None:
    case = VECTORS[name]
    raw = bytes.fromhex(case["adu_hex"])
    record_type, (info, reason, source, timestamp) = case["expected_decoded"]
    assert record_type == 1
    report = decode_admin_record(raw)
    assert report == StatusReport(
        received=_item(info[0]),
        forwarded=_item(info[1]),
        delivered=_item(info[2]),
        deleted=_item(info[3]),
        reason=reason,
        subject_source=EID.from_cbor(source),
        subject_creation_time=timestamp[0],
        subject_sequence=timestamp[1],
    )
    assert report.reason is StatusReportReason.NO_ADDITIONAL_INFORMATION
    assert encode_admin_record(report) == raw


def test_status_report_vector_details() -> None:
    report = decode_admin_record(
        bytes.fromhex(VECTORS["ud3tn_status_report_received_forwarded"]["adu_hex"])
    )
    assert isinstance(report, StatusReport)
    assert report.received == StatusItem(True, 100)
    assert report.forwarded == StatusItem(True, 200)
    assert report.delivered == report.deleted == NOT_ASSERTED
    # uD3TN puts the full source EID (not just the node ID) in the report; we keep it as sent.
    assert str(report.subject_source) == "ipn:243.350"
    assert str(report.subject_id) == "ipn:243.0@1000.0"


def test_bibe_vector() -> None:
    content = bytes.fromhex(VECTORS["ud3tn_bibe_bpdu_content"]["adu_hex"])
    for types, code in ((DEFAULT_ADMIN_RECORD_TYPES, b"\x03"), (ION_ADMIN_RECORD_TYPES, b"\x07")):
        raw = b"\x82" + code + content
        pdu = decode_admin_record(raw, types)
        assert isinstance(pdu, BibePdu)
        assert (pdu.transmission_id, pdu.retransmission_time) == (0, 0)
        assert not pdu.custody_requested
        assert len(pdu.bundle_bytes) == 90
        assert pdu.bundle_bytes == content[-90:]
        assert encode_admin_record(pdu, types) == raw
    # The encapsulated bundle of this fixture is malformed on purpose: opaque to the record,
    # refused only when someone asks for the bundle itself.
    assert isinstance(pdu, BibePdu)
    with pytest.raises(BundleDecodeError):
        pdu.bundle()


# -- record type numbers ----------------------------------------------------------------------


def test_ion_numbering() -> None:
    signal = custody_signal_for([1, 2, 3])
    ion = encode_admin_record(signal, ION_ADMIN_RECORD_TYPES)
    assert ion[:2] == b"\x82\x08"
    assert decode_admin_record(ion, ION_ADMIN_RECORD_TYPES) == signal
    # Under the draft's numbering, type 8 is unknown and kept as is.
    unknown = decode_admin_record(ion)
    assert unknown == UnknownAdminRecord(8, ion[2:])
    assert encode_admin_record(unknown) == ion
    assert isinstance(
        decode_admin_record(encode_admin_record(signal), ION_ADMIN_RECORD_TYPES), UnknownAdminRecord
    )


def test_admin_record_types_checks() -> None:
    assert AdminRecordTypes(1, 7, 8) == ION_ADMIN_RECORD_TYPES
    with pytest.raises(ValueError, match="distinct"):
        AdminRecordTypes(bibe_pdu=1)
    with pytest.raises(ValueError, match="unsigned"):
        AdminRecordTypes(custody_signal=-1)
    with pytest.raises(TypeError):
        DEFAULT_ADMIN_RECORD_TYPES.type_of("report")  # type: ignore[arg-type]


def test_unknown_record_with_known_number_refused() -> None:
    with pytest.raises(BundleEncodeError, match="known record kind"):
        encode_admin_record(UnknownAdminRecord(3, b"\x80"))
    assert (
        encode_admin_record(UnknownAdminRecord(3, b"\x80"), ION_ADMIN_RECORD_TYPES)
        == b"\x82\x03\x80"
    )


def test_unknown_record_kept_byte_for_byte() -> None:
    # Non-deterministic content (a long-form integer, an indefinite array) survives a round trip.
    raw = b"\x82\x19\xfb\x80" + b"\x9f\x18\x01\xff"
    record = decode_admin_record(raw)
    assert record == UnknownAdminRecord(0xFB80, b"\x9f\x18\x01\xff")
    assert encode_admin_record(record) == raw


def test_unknown_record_checks_its_content() -> None:
    with pytest.raises(ValueError, match="well-formed"):
        UnknownAdminRecord(99, b"\x82\x01")
    with pytest.raises(ValueError, match="more than one"):
        UnknownAdminRecord(99, b"\x01\x02")
    with pytest.raises(ValueError, match="bytes"):
        UnknownAdminRecord(99, "x")  # type: ignore[arg-type]


def test_non_deterministic_input_accepted() -> None:
    # Indefinite outer array and a long-form record type: accepted, re-encoded canonically.
    raw = b"\x9f\x18\x04" + bytes.fromhex("820081820102") + b"\xff"
    signal = decode_admin_record(raw)
    assert signal == CustodySignal(CustodyDisposition.ACCEPTED, ((1, 2),))
    assert encode_admin_record(signal) == bytes.fromhex("8204820081820102")


# -- status reports ---------------------------------------------------------------------------


def test_make_status_report_with_times() -> None:
    subject = subject_bundle(BundleFlag.STATUS_TIME_REQUESTED | BundleFlag.REPORT_DELIVERY)
    report = make_status_report(subject, received=NOW - 10, delivered=True)
    assert report.received == StatusItem(True, NOW - 10)
    assert report.delivered == StatusItem(True)
    assert report.forwarded == report.deleted == NOT_ASSERTED
    assert report.subject_source == subject.primary.source
    assert report.subject_id == subject.id
    assert report.is_about(subject)
    assert not report.is_about(subject.with_primary(sequence=8))
    assert decode_admin_record(encode_admin_record(report)) == report


def test_make_status_report_without_times() -> None:
    subject = subject_bundle()
    report = make_status_report(
        subject, deleted=NOW, forwarded=False, reason=StatusReportReason.LIFETIME_EXPIRED
    )
    assert report.deleted == StatusItem(True)  # the subject did not ask for times
    assert report.forwarded == NOT_ASSERTED
    raw = encode_admin_record(report)
    assert raw.startswith(bytes.fromhex("8201848481f481f481f481f501"))


def test_status_report_about_a_fragment() -> None:
    first, second = split_at(subject_bundle(payload=b"0123456789"), 4)
    report = make_status_report(second, received=True)
    assert (report.subject_fragment_offset, report.subject_payload_length) == (4, 6)
    assert report.is_about(second) and not report.is_about(first)
    raw = encode_admin_record(report)
    assert raw[2] == 0x86  # six items for a fragment subject
    assert decode_admin_record(raw) == report


def test_status_report_unknown_reason_kept() -> None:
    report = StatusReport(
        reason=200, subject_source=DTN_NONE, subject_creation_time=1, subject_sequence=2
    )
    assert type(report.reason) is int
    decoded = decode_admin_record(encode_admin_record(report))
    assert isinstance(decoded, StatusReport) and decoded.reason == 200


def test_extra_status_items_ignored() -> None:
    raw = adu(1, [[[False], [False], [False], [True], [True, 5]], 0, [1, 0], [3, 4]])
    report = decode_admin_record(raw)
    assert isinstance(report, StatusReport)
    assert report.deleted == StatusItem(True)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"reason": -1}, "reason"),
        ({"subject_sequence": 2**64}, "sequence"),
        ({"subject_fragment_offset": 3}, "go together"),
        ({"subject_source": "dtn://a/"}, "EID"),
        ({"received": True}, "StatusItem"),
    ],
)
def test_status_report_refuses_bad_values(kwargs: dict[str, Any], message: str) -> None:
    fields: dict[str, Any] = {
        "subject_source": DTN_NONE,
        "subject_creation_time": 1,
        "subject_sequence": 2,
    }
    with pytest.raises(ValueError, match=message):
        StatusReport(**{**fields, **kwargs})


def test_status_item_checks() -> None:
    with pytest.raises(ValueError, match="not asserted"):
        StatusItem(False, 5)
    with pytest.raises(ValueError, match="bool"):
        StatusItem(1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unsigned"):
        StatusItem(True, -1)


# -- custody signals and BIBE -----------------------------------------------------------------


def test_custody_signal_encoding() -> None:
    signal = custody_signal_for([7, 1, 3, 2, 2], CustodyDisposition.REDUNDANT_RECEPTION)
    assert signal.scope == ((1, 3), (7, 1))
    assert encode_admin_record(signal) == bytes.fromhex("8204820382820103820701")
    assert [signal.covers(i) for i in range(9)] == [False, True, True, True] + [False] * 3 + [
        True,
        False,
    ]
    assert list(signal.transmission_ids()) == [1, 2, 3, 7]
    assert not signal.accepted
    assert custody_signal_for([]).scope == ()


def test_custody_disposition_unknown_kept() -> None:
    signal = decode_admin_record(adu(4, [2, [[5, 1]]]))
    assert isinstance(signal, CustodySignal)
    assert signal.disposition == 2 and type(signal.disposition) is int
    accepted = decode_admin_record(adu(4, [0, []]))
    assert isinstance(accepted, CustodySignal)
    assert accepted.disposition is CustodyDisposition.ACCEPTED and accepted.accepted


def test_custody_signal_keeps_scope_order() -> None:
    raw = adu(4, [0, [[9, 1], [1, 2]]])
    signal = decode_admin_record(raw)
    assert isinstance(signal, CustodySignal)
    assert signal.scope == ((9, 1), (1, 2))
    assert encode_admin_record(signal) == raw


@pytest.mark.parametrize(
    ("scope", "message"),
    [
        (((1, 0),), "count 0"),
        (((2**64 - 1, 2),), "past"),
        (((1,),), "first ID, count"),
        ((5,), "first ID, count"),
        (((-1, 1),), "unsigned"),
    ],
)
def test_custody_signal_refuses_bad_scope(scope: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CustodySignal(0, scope)


def test_custody_signal_for_refuses_bad_ids() -> None:
    with pytest.raises(ValueError, match="unsigned"):
        custody_signal_for([1, -2])


def test_bibe_encapsulate_round_trip() -> None:
    inner = subject_bundle()
    pdu = bibe_encapsulate(inner, transmission_id=12, retransmission_time=NOW + 60_000)
    assert pdu.custody_requested
    assert pdu.bundle() == inner
    outer = admin_bundle(
        pdu,
        source="dtn://relay/",
        destination="dtn://next/bibe",
        creation_time=NOW,
        types=ION_ADMIN_RECORD_TYPES,
    )
    received = decode_bundle(encode_bundle(outer))
    decoded = read_admin_record(received, ION_ADMIN_RECORD_TYPES)
    assert decoded == pdu
    assert isinstance(decoded, BibePdu) and decoded.bundle() == inner
    assert bibe_encapsulate(bytearray(b"xy")).bundle_bytes == b"xy"


def test_bibe_pdu_checks() -> None:
    with pytest.raises(ValueError, match="transmission ID"):
        BibePdu(-1, 0, b"")
    with pytest.raises(ValueError, match="bytes"):
        BibePdu(0, 0, "bundle")  # type: ignore[arg-type]
    assert BibePdu(0, 0, memoryview(b"ab")).bundle_bytes == b"ab"  # type: ignore[arg-type]


# -- admin bundles ----------------------------------------------------------------------------


def test_admin_bundle() -> None:
    report = make_status_report(subject_bundle(), received=True)
    bundle = admin_bundle(
        report,
        source="ipn:5.0",
        destination="ipn:6.0",
        creation_time=NOW,
        sequence=3,
        lifetime=60_000,
    )
    assert bundle.primary.flags == BundleFlag.ADMIN_RECORD
    assert bundle.primary.lifetime == 60_000 and bundle.primary.sequence == 3
    assert bundle.extension_blocks == ()
    assert read_admin_record(decode_bundle(encode_bundle(bundle))) == report


def test_admin_bundle_without_clock_gets_an_age_block() -> None:
    bundle = admin_bundle(
        custody_signal_for([1]),
        source="ipn:5.0",
        destination="ipn:6.0",
        creation_time=0,
        hop_limit=8,
    )
    assert bundle.bundle_age == 0
    assert bundle.hop_count is not None and bundle.hop_count.limit == 8
    assert decode_bundle(encode_bundle(bundle)) == bundle


def test_read_admin_record_refuses_other_bundles() -> None:
    with pytest.raises(AdminRecordError, match="not an administrative record"):
        read_admin_record(subject_bundle())
    bundle = admin_bundle(
        custody_signal_for(range(100)), source="ipn:5.0", destination="ipn:6.0", creation_time=NOW
    )
    first, _ = split_at(bundle, 3)
    with pytest.raises(AdminRecordError, match="fragment"):
        read_admin_record(first)


# -- malformed input --------------------------------------------------------------------------

STATUS_OK = [[[True, 1], [False], [False], [False]], 0, [1, 0], [3, 4]]


def _status(index: int, value: Any) -> bytes:
    content = list(STATUS_OK)
    content[index] = value
    return adu(1, content)


def _status_item(value: Any) -> bytes:
    return _status(0, [value, [False], [False], [False]])


MALFORMED = [
    ("empty", b"", "malformed CBOR"),
    ("not an array", b"\x01", "must be a CBOR array"),
    ("three items", adu(1, 2, 3), "not 3 items"),
    ("one item", adu(1), "not 1 items"),
    ("indefinite, empty", b"\x9f\xff", "not []"),
    ("indefinite, one item", b"\x9f\x01\xff", "no content"),
    ("indefinite, three items", b"\x9f\x01\x80\x80\xff", "more than 2 items"),
    ("indefinite, unterminated", b"\x9f\x01\x80", "not terminated"),
    ("truncated", b"\x82\x01", "malformed CBOR"),
    ("truncated string", b"\x82\x01\x5a\xff\xff\xff\xff", "overruns"),
    ("trailing data", b"\x82\x01\x80\x00", "trailing data"),
    ("negative type", adu(-1, []), "record type"),
    ("text type", adu("1", []), "record type"),
    ("reserved simple value", b"\x82\x01\xfc", "malformed CBOR"),
    ("status report not an array", adu(1, 5), "4 items"),
    ("status report of 5 items", adu(1, [*STATUS_OK, 1]), "4 items"),
    ("status info too short", _status(0, [[False]] * 3), "at least 4"),
    ("status info not an array", _status(0, 1), "at least 4"),
    ("status item empty", _status_item([]), "received item"),
    ("status item false with time", _status_item([False, 5]), "received item"),
    ("status item not a bool", _status_item([1]), "received item"),
    ("status item three long", _status_item([True, 1, 2]), "received item"),
    ("status item negative time", _status_item([True, -1]), "received time"),
    ("status item text time", _status_item([True, "x"]), "received time"),
    ("negative reason", _status(1, -3), "reason"),
    ("bool reason", _status(1, False), "reason"),
    ("unknown EID scheme", _status(2, [3, 0]), "subject source"),
    ("bad dtn EID", _status(2, [1, "nobody"]), "subject source"),
    ("timestamp not an array", _status(3, 4), "timestamp"),
    ("timestamp of 3", _status(3, [1, 2, 3]), "timestamp"),
    ("negative creation time", _status(3, [-1, 2]), "creation time"),
    ("text sequence", _status(3, [1, "2"]), "sequence"),
    ("bad fragment offset", adu(1, [*STATUS_OK, "0", 5]), "fragment offset"),
    ("bad payload length", adu(1, [*STATUS_OK, 0, -5]), "payload length"),
    ("BPDU not an array", adu(3, b"bundle"), "BIBE PDU content"),
    ("BPDU of 2", adu(3, [0, b""]), "BIBE PDU content"),
    ("BPDU negative ID", adu(3, [-1, 0, b""]), "transmission ID"),
    ("BPDU float time", adu(3, [0, 1.5, b""]), "retransmission time"),
    ("BPDU text bundle", adu(3, [0, 0, "bundle"]), "byte string"),
    ("signal not an array", adu(4, 0), "disposition, scope"),
    ("signal of 3", adu(4, [0, [], 1]), "disposition, scope"),
    ("signal negative disposition", adu(4, [-1, []]), "disposition code"),
    ("signal scope not an array", adu(4, [0, 5]), "array of"),
    ("signal run not an array", adu(4, [0, [5]]), "run 0"),
    ("signal run of 3", adu(4, [0, [[1, 2, 3]]]), "run 0"),
    ("signal run count 0", adu(4, [0, [[1, 1], [5, 0]]]), "run 1 has count 0"),
    ("signal run overflow", adu(4, [0, [[2**64 - 1, 2]]]), "past 2**64"),
    ("signal run negative", adu(4, [0, [[-1, 2]]]), "first ID"),
    ("too deep", b"\x82\x18\x63" + b"\x81" * 20 + b"\x01", "too deep"),
    ("bad UTF-8", b"\x82\x01\x61\xff", "UTF-8"),
]


@pytest.mark.parametrize(("raw", "message"), [pytest.param(r, m, id=n) for n, r, m in MALFORMED])
def test_malformed_records(raw: bytes, message: str) -> None:
    with pytest.raises(AdminRecordError, match=message.replace("*", r"\*").replace("[", r"\[")):
        decode_admin_record(raw)


def test_item_budget() -> None:
    signal = custody_signal_for(range(0, 200, 2))  # 100 runs: 3 items each
    raw = encode_admin_record(signal)
    assert decode_admin_record(raw, max_items=400) == signal
    with pytest.raises(AdminRecordError, match="too many"):
        decode_admin_record(raw, max_items=100)


def test_decode_accepts_bytes_like_only() -> None:
    raw = encode_admin_record(custody_signal_for([1]))
    assert decode_admin_record(bytearray(raw)) == decode_admin_record(memoryview(raw))
    with pytest.raises(TypeError):
        decode_admin_record(raw.hex())  # type: ignore[arg-type]
