"""BPv7 administrative records (RFC 9171 section 6.1, draft-ietf-dtn-bibect).

The payload (ADU) of a bundle flagged :attr:`~dtncloud.bpv7.BundleFlag.ADMIN_RECORD` is the
CBOR array ``[record type, content]``. dtncloud knows three kinds: bundle status reports
(:class:`StatusReport`), BIBE PDUs (:class:`~dtncloud.bpv7.bibe.BibePdu`) and BIBE custody
signals (:class:`~dtncloud.bpv7.bibe.CustodySignal`). Any other record type decodes to an
:class:`UnknownAdminRecord` that re-encodes byte for byte. Only the status report has an
IANA-registered number; the BIBE numbers differ between the draft (3, 4) and ION (7, 8), so
they come from an :class:`AdminRecordTypes`.

:func:`decode_admin_record` is bounded and strict: whatever the input, it returns a record or
raises :class:`~dtncloud.errors.AdminRecordError`. RFC 9171 says to ignore an unknown or
malformed record; that choice is the caller's. :func:`encode_admin_record` writes
deterministic CBOR. Invalid values are refused when a record is built (``ValueError``).

>>> from dtncloud.eid import EID
>>> report = StatusReport(
...     received=StatusItem(True, 755_000_000_000),
...     subject_source=EID.parse("ipn:1.0"), subject_creation_time=754_999_990_000,
...     subject_sequence=3,
... )
>>> decode_admin_record(encode_admin_record(report)) == report
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dtncloud.bpv7.bibe import (
    BibePdu,
    CustodySignal,
    encode_bibe_pdu_content,
    encode_custody_signal_content,
    parse_bibe_pdu,
    parse_custody_signal,
)
from dtncloud.bpv7.bundle import Bundle, BundleId
from dtncloud.bpv7.flags import BundleFlag, CrcType, StatusReportReason
from dtncloud.cborutil import (
    BREAK,
    MAJOR_ARRAY,
    MAX_UINT64,
    CborError,
    DecodeBudget,
    decode_item,
    encode_uint,
    head,
    read_head,
)
from dtncloud.eid import EID
from dtncloud.errors import AdminRecordError, BundleEncodeError, InvalidEID

#: Default limit on CBOR data items in one record: a custody signal costs three per run.
DEFAULT_MAX_ITEMS = 65_536


def _check_uint(name: str, value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_UINT64:
        return int(value)
    raise ValueError(f"{name} must be an unsigned 64-bit integer, not {value!r:.40}")


@dataclass(frozen=True, slots=True)
class AdminRecordTypes:
    """The record type numbers in use. The default follows the BIBE draft; use
    :data:`ION_ADMIN_RECORD_TYPES` to talk BIBE to ION."""

    status_report: int = 1
    bibe_pdu: int = 3
    custody_signal: int = 4

    def __post_init__(self) -> None:
        codes = [
            _check_uint("status report type", self.status_report),
            _check_uint("BIBE PDU type", self.bibe_pdu),
            _check_uint("custody signal type", self.custody_signal),
        ]
        if len(set(codes)) != 3:
            raise ValueError(f"admin record types must be distinct, not {codes}")

    def type_of(self, record: AdminRecord) -> int:
        """The record type number that ``record`` is sent with."""
        if isinstance(record, StatusReport):
            return self.status_report
        if isinstance(record, BibePdu):
            return self.bibe_pdu
        if isinstance(record, CustodySignal):
            return self.custody_signal
        if isinstance(record, UnknownAdminRecord):
            if record.record_type in (self.status_report, self.bibe_pdu, self.custody_signal):
                raise BundleEncodeError(
                    f"record type {record.record_type} belongs to a known record kind; build "
                    "that kind instead of an UnknownAdminRecord"
                )
            return record.record_type
        raise TypeError(f"not an administrative record: {type(record).__name__}")


#: The BIBE draft's numbering: status report 1, BIBE PDU 3, custody signal 4.
DEFAULT_ADMIN_RECORD_TYPES = AdminRecordTypes()
#: ION's numbering (from an older BIBE draft): BIBE PDU 7, custody signal 8.
ION_ADMIN_RECORD_TYPES = AdminRecordTypes(bibe_pdu=7, custody_signal=8)


@dataclass(frozen=True, slots=True)
class StatusItem:
    """One status assertion of a report: whether it holds and, if the subject asked for
    status times, the DTN time (ms) at which it did."""

    asserted: bool
    time: int | None = None

    def __post_init__(self) -> None:
        if type(self.asserted) is not bool:
            raise ValueError(f"asserted must be a bool, not {self.asserted!r:.40}")
        if self.time is not None:
            _check_uint("status time", self.time)
            if not self.asserted:
                raise ValueError("a status that is not asserted cannot carry a time")


#: The status item of a status that is not asserted.
NOT_ASSERTED = StatusItem(False)


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusReport:
    """A bundle status report (RFC 9171 section 6.1.1).

    The ``subject_*`` fields are as carried (``subject_source`` is whatever the subject's
    primary block names as its source); :attr:`subject_id` is the key to match against
    :attr:`Bundle.id <dtncloud.bpv7.Bundle.id>`. The fragment fields are set exactly when the
    subject is a fragment. ``reason`` is a :class:`StatusReportReason`, or an int if unknown.
    """

    received: StatusItem = NOT_ASSERTED
    forwarded: StatusItem = NOT_ASSERTED
    delivered: StatusItem = NOT_ASSERTED
    deleted: StatusItem = NOT_ASSERTED
    reason: StatusReportReason | int = StatusReportReason.NO_ADDITIONAL_INFORMATION
    subject_source: EID
    subject_creation_time: int
    subject_sequence: int
    subject_fragment_offset: int | None = None
    subject_payload_length: int | None = None

    def __post_init__(self) -> None:
        for name in ("received", "forwarded", "delivered", "deleted"):
            if not isinstance(getattr(self, name), StatusItem):
                raise ValueError(f"{name} must be a StatusItem")
        reason = _check_uint("reason code", self.reason)
        try:
            object.__setattr__(self, "reason", StatusReportReason(reason))
        except ValueError:
            object.__setattr__(self, "reason", reason)
        if not isinstance(self.subject_source, EID):
            raise ValueError("subject_source must be an EID")
        _check_uint("subject creation time", self.subject_creation_time)
        _check_uint("subject sequence number", self.subject_sequence)
        if (self.subject_fragment_offset is None) != (self.subject_payload_length is None):
            raise ValueError("subject fragment offset and payload length go together")
        if self.subject_fragment_offset is not None:
            _check_uint("subject fragment offset", self.subject_fragment_offset)
            _check_uint("subject payload length", self.subject_payload_length)

    @property
    def subject_id(self) -> BundleId:
        """The subject's :class:`~dtncloud.bpv7.BundleId` (source reduced to its node ID)."""
        return BundleId(
            self.subject_source.node_id,
            self.subject_creation_time,
            self.subject_sequence,
            self.subject_fragment_offset,
            self.subject_payload_length,
        )

    def is_about(self, bundle: Bundle) -> bool:
        """Whether this report's subject is ``bundle``."""
        return self.subject_id == bundle.id


@dataclass(frozen=True, slots=True)
class UnknownAdminRecord:
    """A record of a type dtncloud does not know; ``content`` is the CBOR encoding of the
    record's second element, exactly as received."""

    record_type: int
    content: bytes = field(repr=False)

    def __post_init__(self) -> None:
        _check_uint("record type", self.record_type)
        if type(self.content) is not bytes:
            raise ValueError("content must be the bytes of one CBOR data item")
        try:
            # Depth 1, as inside the record, so content accepted here also decodes there.
            size = len(self.content)
            _, end = decode_item(self.content, 0, size, _budget(size), 1)
        except CborError as exc:
            raise ValueError(f"content is not one well-formed CBOR data item: {exc}") from exc
        if end != len(self.content):
            raise ValueError("content holds more than one CBOR data item")


#: Any administrative record.
AdminRecord = StatusReport | BibePdu | CustodySignal | UnknownAdminRecord


def _budget(items: int) -> DecodeBudget:
    return DecodeBudget(items=items + 1)


# -- encoding ---------------------------------------------------------------------------------


def _status_item(item: StatusItem) -> bytes:
    if not item.asserted:
        return b"\x81\xf4"  # [false]
    if item.time is None:
        return b"\x81\xf5"  # [true]
    return b"\x82\xf5" + encode_uint(item.time)


def _status_report_content(report: StatusReport) -> bytes:
    fragment = report.subject_fragment_offset is not None
    parts = [
        head(MAJOR_ARRAY, 6 if fragment else 4),
        head(MAJOR_ARRAY, 4),
        _status_item(report.received),
        _status_item(report.forwarded),
        _status_item(report.delivered),
        _status_item(report.deleted),
        encode_uint(int(report.reason)),
        report.subject_source.to_cbor(),
        b"\x82",
        encode_uint(report.subject_creation_time),
        encode_uint(report.subject_sequence),
    ]
    if fragment:
        parts.append(encode_uint(report.subject_fragment_offset))  # type: ignore[arg-type]
        parts.append(encode_uint(report.subject_payload_length))  # type: ignore[arg-type]
    return b"".join(parts)


def encode_admin_record(
    record: AdminRecord, types: AdminRecordTypes = DEFAULT_ADMIN_RECORD_TYPES
) -> bytes:
    """The ADU ``[record type, content]`` in deterministic CBOR.

    Raises :class:`~dtncloud.errors.BundleEncodeError` for an :class:`UnknownAdminRecord`
    whose type number ``types`` assigns to a known kind.
    """
    record_type = encode_uint(types.type_of(record))
    if isinstance(record, StatusReport):
        content = _status_report_content(record)
    elif isinstance(record, BibePdu):
        content = encode_bibe_pdu_content(record)
    elif isinstance(record, CustodySignal):
        content = encode_custody_signal_content(record)
    else:
        content = record.content
    return b"\x82" + record_type + content


# -- decoding ---------------------------------------------------------------------------------


def decode_admin_record(
    adu: bytes | bytearray | memoryview,
    types: AdminRecordTypes = DEFAULT_ADMIN_RECORD_TYPES,
    *,
    max_items: int = DEFAULT_MAX_ITEMS,
) -> AdminRecord:
    """Decode an administrative record ADU.

    Raises :class:`~dtncloud.errors.AdminRecordError`, and nothing else, for input that is not
    a well-formed record; decoding stops after ``max_items`` CBOR data items. Encodings that
    are not deterministic are accepted (RFC 9171 lets a receiver do so).
    """
    if isinstance(adu, bytearray | memoryview):
        adu = bytes(adu)
    elif not isinstance(adu, bytes):
        raise TypeError(f"decode_admin_record needs bytes, not {type(adu).__name__}")
    end = len(adu)
    budget = _budget(max_items)
    try:
        major, _, count, pos = read_head(adu, 0, end)
        if major != MAJOR_ARRAY:
            raise AdminRecordError("an administrative record must be a CBOR array")
        if count is not None and count != 2:
            raise AdminRecordError(
                f"an administrative record is [record type, content], not {count} items"
            )
        if count is None and pos < end and adu[pos] == BREAK:
            raise AdminRecordError("an administrative record is [record type, content], not []")
        record_type, pos = decode_item(adu, pos, end, budget, 1)
        if count is None and pos < end and adu[pos] == BREAK:
            raise AdminRecordError("administrative record has no content")
        start = pos
        content, pos = decode_item(adu, pos, end, budget, 1)
        raw = adu[start:pos]
        if count is None:
            if pos >= end:
                raise AdminRecordError("administrative record array is not terminated")
            if adu[pos] != BREAK:
                raise AdminRecordError("an administrative record has more than 2 items")
            pos += 1
    except CborError as exc:
        raise AdminRecordError(f"malformed CBOR in administrative record: {exc}") from exc
    if pos != end:
        raise AdminRecordError(
            f"{end - pos} bytes of trailing data after the administrative record"
        )
    if type(record_type) is not int or record_type < 0:
        raise AdminRecordError(f"record type must be an unsigned integer, not {record_type!r:.40}")
    try:
        if record_type == types.status_report:
            return _parse_status_report(content)
        if record_type == types.bibe_pdu:
            return parse_bibe_pdu(content)
        if record_type == types.custody_signal:
            return parse_custody_signal(content)
        return UnknownAdminRecord(record_type, raw)
    except ValueError as exc:  # a constructor's check; the parsers should catch everything first
        raise AdminRecordError(f"invalid record of type {record_type}: {exc}") from exc


def _uint_item(value: Any, what: str) -> int:
    if type(value) is not int or value < 0:
        raise AdminRecordError(f"{what} must be an unsigned integer, not {value!r:.40}")
    return value


def _parse_status_item(value: Any, name: str) -> StatusItem:
    if type(value) is list and value:
        flag = value[0]
        if flag is False and len(value) == 1:
            return NOT_ASSERTED
        if flag is True and len(value) == 1:
            return StatusItem(True)
        if flag is True and len(value) == 2:
            return StatusItem(True, _uint_item(value[1], f"status report {name} time"))
    raise AdminRecordError(
        f"status report {name} item must be [false], [true] or [true, time], not {value!r:.40}"
    )


def _parse_status_report(content: Any) -> StatusReport:
    if type(content) is not list or len(content) not in (4, 6):
        raise AdminRecordError(
            "status report content must be an array of 4 items (6 for a fragment subject)"
        )
    info = content[0]
    # RFC 9171 allows more than four status items, for future use; the extra ones are ignored.
    if type(info) is not list or len(info) < 4:
        raise AdminRecordError("status report information must be an array of at least 4 items")
    items = [
        _parse_status_item(value, name)
        for value, name in zip(
            info[:4], ("received", "forwarded", "delivered", "deleted"), strict=True
        )
    ]
    reason = _uint_item(content[1], "status report reason code")
    try:
        source = EID.from_cbor(content[2])
    except InvalidEID as exc:
        raise AdminRecordError(f"status report subject source: {exc}") from exc
    timestamp = content[3]
    if type(timestamp) is not list or len(timestamp) != 2:
        raise AdminRecordError("status report subject creation timestamp must be [time, sequence]")
    created = _uint_item(timestamp[0], "subject creation time")
    sequence = _uint_item(timestamp[1], "subject sequence number")
    offset = length = None
    if len(content) == 6:
        offset = _uint_item(content[4], "subject fragment offset")
        length = _uint_item(content[5], "subject payload length")
    return StatusReport(
        received=items[0],
        forwarded=items[1],
        delivered=items[2],
        deleted=items[3],
        reason=reason,
        subject_source=source,
        subject_creation_time=created,
        subject_sequence=sequence,
        subject_fragment_offset=offset,
        subject_payload_length=length,
    )


# -- bundles ----------------------------------------------------------------------------------


def read_admin_record(
    bundle: Bundle, types: AdminRecordTypes = DEFAULT_ADMIN_RECORD_TYPES
) -> AdminRecord:
    """The administrative record a bundle carries; AdminRecordError if it carries none."""
    if not bundle.primary.is_admin_record:
        raise AdminRecordError(f"bundle {bundle.id} is not an administrative record")
    if bundle.primary.is_fragment:
        raise AdminRecordError(f"bundle {bundle.id} is a fragment: reassemble it first")
    return decode_admin_record(bundle.payload, types)


def admin_bundle(
    record: AdminRecord,
    *,
    source: EID | str,
    destination: EID | str,
    creation_time: int,
    sequence: int = 0,
    lifetime: int = 86_400_000,
    types: AdminRecordTypes = DEFAULT_ADMIN_RECORD_TYPES,
    crc_type: CrcType = CrcType.CRC32C,
    hop_limit: int | None = None,
) -> Bundle:
    """A bundle carrying ``record``: flagged as an administrative record and asking for no
    status reports (RFC 9171 forbids both for admin records). ``creation_time`` 0 (no
    accurate clock) adds a bundle age block of 0."""
    return Bundle.create(
        source=source,
        destination=destination,
        payload=encode_admin_record(record, types),
        creation_time=creation_time,
        sequence=sequence,
        lifetime=lifetime,
        flags=BundleFlag.ADMIN_RECORD,
        crc_type=crc_type,
        hop_limit=hop_limit,
        bundle_age=0 if creation_time == 0 else None,
    )


def _status(value: int | bool | None, name: str, with_time: bool) -> StatusItem:
    if value is None or value is False:
        return NOT_ASSERTED
    if value is True:
        return StatusItem(True)
    return StatusItem(True, _check_uint(f"{name} time", value) if with_time else None)


def make_status_report(
    subject: Bundle,
    *,
    received: int | bool | None = None,
    forwarded: int | bool | None = None,
    delivered: int | bool | None = None,
    deleted: int | bool | None = None,
    reason: StatusReportReason | int = StatusReportReason.NO_ADDITIONAL_INFORMATION,
) -> StatusReport:
    """A status report about ``subject``.

    Give each status that holds as the DTN time (ms) at which it held, or ``True`` if the time
    is unknown; ``None`` or ``False`` for a status not asserted. Times are put in the report
    only if the subject asked for them (:attr:`~dtncloud.bpv7.BundleFlag.STATUS_TIME_REQUESTED`).
    """
    primary = subject.primary
    with_time = bool(primary.flags & BundleFlag.STATUS_TIME_REQUESTED)
    fragment = primary.fragment_offset is not None
    return StatusReport(
        received=_status(received, "received", with_time),
        forwarded=_status(forwarded, "forwarded", with_time),
        delivered=_status(delivered, "delivered", with_time),
        deleted=_status(deleted, "deleted", with_time),
        reason=reason,
        subject_source=primary.source,
        subject_creation_time=primary.creation_time,
        subject_sequence=primary.sequence,
        subject_fragment_offset=primary.fragment_offset,
        subject_payload_length=len(subject.payload) if fragment else None,
    )
