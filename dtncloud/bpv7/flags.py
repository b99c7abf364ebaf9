"""BPv7 code points: flags, CRC types, block types and status-report reason codes (RFC 9171, 9172)."""

from __future__ import annotations

from enum import IntEnum, IntFlag


class BundleFlag(IntFlag):
    """Bundle processing control flags (RFC 9171 section 4.2.3). Unknown bits are kept."""

    NONE = 0
    IS_FRAGMENT = 0x000001
    ADMIN_RECORD = 0x000002
    MUST_NOT_FRAGMENT = 0x000004
    ACK_REQUESTED = 0x000020
    STATUS_TIME_REQUESTED = 0x000040
    REPORT_RECEPTION = 0x004000
    REPORT_FORWARDING = 0x010000
    REPORT_DELIVERY = 0x020000
    REPORT_DELETION = 0x040000

    #: All four status-report request bits.
    REPORTS = REPORT_RECEPTION | REPORT_FORWARDING | REPORT_DELIVERY | REPORT_DELETION


class BlockFlag(IntFlag):
    """Block processing control flags (RFC 9171 section 4.2.4)."""

    NONE = 0
    REPLICATE = 0x01
    REPORT_IF_UNPROCESSABLE = 0x02
    DELETE_BUNDLE_IF_UNPROCESSABLE = 0x04
    DISCARD_IF_UNPROCESSABLE = 0x10


class CrcType(IntEnum):
    """CRC type of a block (RFC 9171 section 4.2.1)."""

    NONE = 0
    CRC16 = 1  # CRC-16/X.25
    CRC32C = 2  # CRC-32C (Castagnoli)


class BlockType(IntEnum):
    """Block type codes defined by RFC 9171 and RFC 9172; other codes are kept as plain ints."""

    PAYLOAD = 1
    PREVIOUS_NODE = 6
    BUNDLE_AGE = 7
    HOP_COUNT = 10
    BLOCK_INTEGRITY = 11
    BLOCK_CONFIDENTIALITY = 12


class StatusReportReason(IntEnum):
    """Bundle status report reason codes (RFC 9171 6.1.1, plus 12-16 from RFC 9172 section 11)."""

    NO_ADDITIONAL_INFORMATION = 0
    LIFETIME_EXPIRED = 1
    FORWARDED_OVER_UNIDIRECTIONAL_LINK = 2
    TRANSMISSION_CANCELED = 3
    DEPLETED_STORAGE = 4
    DESTINATION_ENDPOINT_UNAVAILABLE = 5
    NO_KNOWN_ROUTE = 6
    NO_TIMELY_CONTACT = 7
    BLOCK_UNINTELLIGIBLE = 8
    HOP_LIMIT_EXCEEDED = 9
    TRAFFIC_PARED = 10
    BLOCK_UNSUPPORTED = 11
    MISSING_SECURITY_OPERATION = 12
    UNKNOWN_SECURITY_OPERATION = 13
    UNEXPECTED_SECURITY_OPERATION = 14
    FAILED_SECURITY_OPERATION = 15
    CONFLICTING_SECURITY_OPERATION = 16


def bundle_flags(value: int) -> BundleFlag:
    """``BundleFlag(value)`` through the enum's own member cache (decoding is hot)."""
    member = BundleFlag._value2member_map_.get(value)
    return member if member is not None else BundleFlag(value)  # type: ignore[return-value]


def block_flags(value: int) -> BlockFlag:
    """``BlockFlag(value)`` through the enum's own member cache."""
    member = BlockFlag._value2member_map_.get(value)
    return member if member is not None else BlockFlag(value)  # type: ignore[return-value]
