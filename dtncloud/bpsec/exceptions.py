"""The two BPSec error classes that :mod:`dtncloud.errors` does not have.

Both derive from :class:`~dtncloud.errors.SecurityError`, so ``except SecurityError`` catches
every BPSec failure; :class:`MalformedSecurityBlock` is also a
:class:`~dtncloud.errors.BundleDecodeError`, because a security block whose data does not parse is
an unintelligible block in RFC 9171's terms.
"""

from __future__ import annotations

from dtncloud.bpv7.flags import StatusReportReason
from dtncloud.errors import BundleDecodeError, SecurityError


class MalformedSecurityBlock(SecurityError, BundleDecodeError):
    """A BIB's or BCB's block-type-specific data is not a well-formed abstract security block
    (RFC 9172 section 3.6). ``reason`` is 8, block unintelligible."""

    default_reason = int(StatusReportReason.BLOCK_UNINTELLIGIBLE)


class UnknownSecurityContext(SecurityError):
    """A security block uses a security context this library does not implement.

    ``reason`` is 13, unknown security operation (RFC 9172 section 11.2)."""

    default_reason = int(StatusReportReason.UNKNOWN_SECURITY_OPERATION)
