"""BPv6 code points: bundle and block processing flags, priority and block types (RFC 5050).

Flag values keep bits this module does not name, so a bundle from a newer or odder
implementation re-encodes with the same bits it arrived with.

>>> flags = BundleFlag.SINGLETON_DESTINATION.with_priority(Priority.EXPEDITED)
>>> flags.priority.name, int(flags)
('EXPEDITED', 272)
"""

from __future__ import annotations

from enum import IntEnum, IntFlag

__all__ = ["BlockFlag", "BlockType", "BundleFlag", "Priority"]

_PRIORITY_SHIFT = 7
_PRIORITY_BITS = 0x3 << _PRIORITY_SHIFT


class Priority(IntEnum):
    """Class-of-service priority, bits 7-8 of the bundle processing flags (RFC 5050 4.2)."""

    BULK = 0
    NORMAL = 1
    EXPEDITED = 2
    #: Both bits set: RFC 5050 reserves this value; it is kept, not refused.
    RESERVED = 3


class BundleFlag(IntFlag):
    """Bundle processing control flags of the primary block (RFC 5050 section 4.2).

    Bits 0-6 are general flags, bits 7-8 the priority (see :attr:`priority`), bits 14-18
    ask for status reports. Unnamed bits are kept as they are.
    """

    NONE = 0
    IS_FRAGMENT = 0x000001
    ADMIN_RECORD = 0x000002
    MUST_NOT_FRAGMENT = 0x000004
    CUSTODY_REQUESTED = 0x000008
    SINGLETON_DESTINATION = 0x000010
    ACK_REQUESTED = 0x000020
    PRIORITY_NORMAL = 0x000080
    PRIORITY_EXPEDITED = 0x000100
    REPORT_RECEPTION = 0x004000
    REPORT_CUSTODY_ACCEPTANCE = 0x008000
    REPORT_FORWARDING = 0x010000
    REPORT_DELIVERY = 0x020000
    REPORT_DELETION = 0x040000

    #: Both priority bits.
    PRIORITY_MASK = PRIORITY_NORMAL | PRIORITY_EXPEDITED
    #: All five status-report request bits.
    REPORTS = (
        REPORT_RECEPTION
        | REPORT_CUSTODY_ACCEPTANCE
        | REPORT_FORWARDING
        | REPORT_DELIVERY
        | REPORT_DELETION
    )

    @property
    def priority(self) -> Priority:
        """The class-of-service priority that bits 7-8 carry."""
        return Priority((int(self) & _PRIORITY_BITS) >> _PRIORITY_SHIFT)

    def with_priority(self, priority: Priority | int) -> BundleFlag:
        """Return these flags with bits 7-8 replaced by ``priority``."""
        level = Priority(priority)
        return BundleFlag((int(self) & ~_PRIORITY_BITS) | (level << _PRIORITY_SHIFT))


class BlockFlag(IntFlag):
    """Block processing control flags of a canonical block (RFC 5050 section 4.3).

    :attr:`LAST_BLOCK` belongs to the encoder: it sets the bit on the final block and clears
    it elsewhere, and the decoder takes it off again after checking it, so block values in a
    :class:`~dtncloud.bpv6.Bundle` never carry it.
    """

    NONE = 0
    REPLICATE = 0x01
    REPORT_IF_UNPROCESSABLE = 0x02
    DELETE_BUNDLE_IF_UNPROCESSABLE = 0x04
    LAST_BLOCK = 0x08
    DISCARD_IF_UNPROCESSABLE = 0x10
    FORWARDED_UNPROCESSED = 0x20
    HAS_EID_REFERENCES = 0x40


class BlockType(IntEnum):
    """Canonical block type codes seen in BPv6 deployments; other codes stay plain ints.

    Only the payload block is interpreted here; every other block travels as opaque bytes.
    """

    PAYLOAD = 1  # RFC 5050
    BUNDLE_AUTHENTICATION = 2  # RFC 6257 (BSP BAB)
    PAYLOAD_INTEGRITY = 3  # RFC 6257 (BSP PIB)
    PAYLOAD_CONFIDENTIALITY = 4  # RFC 6257 (BSP PCB)
    PREVIOUS_HOP_INSERTION = 5  # RFC 6259
    METADATA = 8  # RFC 6258
    EXTENSION_SECURITY = 9  # RFC 6257 (BSP ESB)
    CUSTODY_TRANSFER_ENHANCEMENT = 10  # CTEB, used by aggregate custody signals (ION, DTNME)
    EXTENDED_CLASS_OF_SERVICE = 19  # ECOS, CCSDS 734.2-B-1
