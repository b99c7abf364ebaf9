"""BPv6 administrative records (RFC 5050 section 6): bundle status reports and custody signals.

An administrative record is the payload of a bundle whose flags have
:attr:`~dtncloud.bpv6.BundleFlag.ADMIN_RECORD`. Its first byte carries the record type in the
high nibble and flags in the low nibble (0x1: the subject bundle is a fragment, so fragment
offset and length follow). Times are DTN times: SDNV seconds since 2000-01-01 plus SDNV
nanoseconds. The subject bundle is named by its :class:`~dtncloud.bpv6.BundleId`.

>>> signal = CustodySignal(
...     succeeded=True,
...     reason=CustodySignalReason.NO_ADDITIONAL_INFORMATION,
...     signal_time=DtnTime(731540048),
...     subject=BundleId("ipn:11.64", 731539820, 377),
... )
>>> decode_admin_record(encode_admin_record(signal)) == signal
True
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, IntFlag

from dtncloud.bpv6.bundle import BundleId
from dtncloud.bpv6.sdnv import ByteReader, encode_sdnv
from dtncloud.errors import AdminRecordError, BundleDecodeError, BundleEncodeError

__all__ = [
    "AdminRecord",
    "AdminRecordType",
    "BundleStatusReport",
    "CustodySignal",
    "CustodySignalReason",
    "DtnTime",
    "StatusFlag",
    "StatusReportReason",
    "decode_admin_record",
    "encode_admin_record",
]

_FRAGMENT_FLAG = 0x1
_SUCCEEDED_BIT = 0x80
_REASON_BITS = 0x7F


class AdminRecordType(IntEnum):
    """Record type, the high nibble of the record's first byte (RFC 5050 6.1)."""

    STATUS_REPORT = 1
    CUSTODY_SIGNAL = 2


class StatusFlag(IntFlag):
    """The status flags byte of a bundle status report (RFC 5050 6.1.1)."""

    NONE = 0
    RECEIVED = 0x01
    CUSTODY_ACCEPTED = 0x02
    FORWARDED = 0x04
    DELIVERED = 0x08
    DELETED = 0x10


class StatusReportReason(IntEnum):
    """Status report reason codes (RFC 5050 6.1.1, table 3). Other codes stay plain ints."""

    NO_ADDITIONAL_INFORMATION = 0
    LIFETIME_EXPIRED = 1
    FORWARDED_OVER_UNIDIRECTIONAL_LINK = 2
    TRANSMISSION_CANCELED = 3
    DEPLETED_STORAGE = 4
    DESTINATION_EID_UNINTELLIGIBLE = 5
    NO_KNOWN_ROUTE = 6
    NO_TIMELY_CONTACT = 7
    BLOCK_UNINTELLIGIBLE = 8


class CustodySignalReason(IntEnum):
    """Custody signal reason codes (RFC 5050 6.1.2, table 4). Other codes stay plain ints."""

    NO_ADDITIONAL_INFORMATION = 0
    REDUNDANT_RECEPTION = 3
    DEPLETED_STORAGE = 4
    DESTINATION_EID_UNINTELLIGIBLE = 5
    NO_KNOWN_ROUTE = 6
    NO_TIMELY_CONTACT = 7
    BLOCK_UNINTELLIGIBLE = 8


@dataclass(frozen=True, slots=True)
class DtnTime:
    """A DTN time: seconds since 2000-01-01 00:00:00 UTC and nanoseconds into that second.

    Values are kept as sent; some implementations do not keep ``nanoseconds`` below 10**9.
    """

    seconds: int
    nanoseconds: int = 0


# The report's times in wire order, each paired with the status bit that announces it.
_REPORT_TIMES = (
    ("received_at", StatusFlag.RECEIVED),
    ("custody_accepted_at", StatusFlag.CUSTODY_ACCEPTED),
    ("forwarded_at", StatusFlag.FORWARDED),
    ("delivered_at", StatusFlag.DELIVERED),
    ("deleted_at", StatusFlag.DELETED),
)


@dataclass(frozen=True, slots=True)
class BundleStatusReport:
    """A bundle status report (RFC 5050 6.1.1) about the bundle ``subject``.

    Each status the report asserts is given by its time; :attr:`status` is derived from which
    times are present, so the flags and the times cannot disagree.
    """

    reason: int
    subject: BundleId
    received_at: DtnTime | None = None
    custody_accepted_at: DtnTime | None = None
    forwarded_at: DtnTime | None = None
    delivered_at: DtnTime | None = None
    deleted_at: DtnTime | None = None

    @property
    def status(self) -> StatusFlag:
        """The status flags byte: one bit per time that is present."""
        flags = StatusFlag.NONE
        for name, bit in _REPORT_TIMES:
            if getattr(self, name) is not None:
                flags |= bit
        return flags


@dataclass(frozen=True, slots=True)
class CustodySignal:
    """A custody signal (RFC 5050 6.1.2) about the bundle ``subject``.

    ``succeeded`` is bit 7 of the status byte (custody accepted), ``reason`` bits 0-6.
    """

    succeeded: bool
    reason: int
    signal_time: DtnTime
    subject: BundleId


#: Either kind of BPv6 administrative record.
AdminRecord = BundleStatusReport | CustodySignal


# -- encoding ------------------------------------------------------------------------------


def _sdnv(value: int, what: str) -> bytes:
    try:
        return encode_sdnv(value)
    except BundleEncodeError as exc:
        raise BundleEncodeError(f"{what}: {exc}") from None


def _time(value: DtnTime, what: str) -> bytes:
    return _sdnv(value.seconds, f"{what} seconds") + _sdnv(value.nanoseconds, f"{what} ns")


def _header_and_fragment(kind: AdminRecordType, subject: BundleId) -> tuple[bytes, bytes]:
    offset, length = subject.fragment_offset, subject.fragment_length
    if offset is None and length is None:
        return bytes((kind << 4,)), b""
    if offset is None or length is None:
        raise BundleEncodeError("a fragment subject needs both fragment offset and length")
    fragment = _sdnv(offset, "fragment offset") + _sdnv(length, "fragment length")
    return bytes((kind << 4 | _FRAGMENT_FLAG,)), fragment


def _subject_tail(subject: BundleId) -> bytes:
    source = subject.source
    if not isinstance(source, str) or not source.isascii():
        raise BundleEncodeError(f"subject source EID {source!r} must be an ASCII string")
    text = source.encode("ascii")
    return b"".join(
        (
            _sdnv(subject.creation_time, "subject creation time"),
            _sdnv(subject.sequence, "subject sequence number"),
            encode_sdnv(len(text)),
            text,
        )
    )


def _byte(value: int, what: str, limit: int = 0xFF) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
        raise BundleEncodeError(f"{what} must be an int from 0 to {limit}, not {value!r}")
    return value


def encode_admin_record(record: AdminRecord) -> bytes:
    """Encode a status report or custody signal as a bundle payload.

    Raises :class:`~dtncloud.errors.BundleEncodeError` for out-of-range values.
    """
    if isinstance(record, BundleStatusReport):
        head, fragment = _header_and_fragment(AdminRecordType.STATUS_REPORT, record.subject)
        parts = [head, bytes((record.status, _byte(record.reason, "reason code"))), fragment]
        for name, _bit in _REPORT_TIMES:
            value: DtnTime | None = getattr(record, name)
            if value is not None:
                parts.append(_time(value, name))
    elif isinstance(record, CustodySignal):
        head, fragment = _header_and_fragment(AdminRecordType.CUSTODY_SIGNAL, record.subject)
        status = _byte(record.reason, "custody signal reason", _REASON_BITS)
        if record.succeeded:
            status |= _SUCCEEDED_BIT
        parts = [head, bytes((status,)), fragment, _time(record.signal_time, "signal time")]
    else:
        raise BundleEncodeError(f"not an administrative record: {type(record).__name__}")
    parts.append(_subject_tail(record.subject))
    return b"".join(parts)


# -- decoding ------------------------------------------------------------------------------


def _read_time(reader: ByteReader, what: str) -> DtnTime:
    return DtnTime(reader.sdnv(f"{what} seconds"), reader.sdnv(f"{what} nanoseconds"))


def _read_subject(reader: ByteReader, fragment: tuple[int, int] | None) -> BundleId:
    creation_time = reader.sdnv("subject creation time")
    sequence = reader.sdnv("subject sequence number")
    raw = reader.take(reader.sdnv("subject source EID length"), "subject source EID")
    if not raw.isascii():
        raise AdminRecordError("the subject source EID is not ASCII text")
    source = raw.decode("ascii")
    if fragment is None:
        return BundleId(source, creation_time, sequence)
    return BundleId(source, creation_time, sequence, fragment[0], fragment[1])


def _known(enum: type[IntEnum], value: int) -> int:
    try:
        return enum(value)
    except ValueError:
        return value


def _decode(reader: ByteReader) -> AdminRecord:
    header = reader.byte("record header")
    kind, flags = header >> 4, header & 0x0F
    if flags & ~_FRAGMENT_FLAG:
        raise AdminRecordError(f"record header 0x{header:02x} has unknown flag bits set")
    if kind == AdminRecordType.STATUS_REPORT:
        status = reader.byte("status flags")
        if status & ~0x1F:
            raise AdminRecordError(f"status flags 0x{status:02x} have unassigned bits set")
        reason = _known(StatusReportReason, reader.byte("reason code"))
        fragment = None
        if flags & _FRAGMENT_FLAG:
            fragment = (reader.sdnv("fragment offset"), reader.sdnv("fragment length"))
        times = {name: _read_time(reader, name) for name, bit in _REPORT_TIMES if status & bit}
        subject = _read_subject(reader, fragment)
        record: AdminRecord = BundleStatusReport(reason, subject, **times)
    elif kind == AdminRecordType.CUSTODY_SIGNAL:
        status = reader.byte("custody signal status")
        fragment = None
        if flags & _FRAGMENT_FLAG:
            fragment = (reader.sdnv("fragment offset"), reader.sdnv("fragment length"))
        signal_time = _read_time(reader, "signal time")
        subject = _read_subject(reader, fragment)
        record = CustodySignal(
            succeeded=bool(status & _SUCCEEDED_BIT),
            reason=_known(CustodySignalReason, status & _REASON_BITS),
            signal_time=signal_time,
            subject=subject,
        )
    else:
        raise AdminRecordError(f"unknown administrative record type {kind}")
    if not reader.at_end():
        raise AdminRecordError(f"{reader.remaining} bytes follow the administrative record")
    return record


def decode_admin_record(data: bytes | bytearray | memoryview) -> AdminRecord:
    """Decode a BPv6 administrative record, usually ``bundle.payload``.

    Raises :class:`~dtncloud.errors.AdminRecordError` for an unknown record type (such as
    aggregate custody signals), unassigned flag bits, truncated or malformed fields, or
    bytes after the record; nothing else escapes for any input bytes.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"decode_admin_record() needs bytes, not {type(data).__name__}")
    try:
        return _decode(ByteReader(bytes(data)))
    except BundleDecodeError as exc:
        raise AdminRecordError(str(exc)) from exc
