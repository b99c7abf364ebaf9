"""TCPCL code points: message types, reason codes, flags and roles (RFC 9174 section 9, RFC 7242).

The TCPCLv4 reason codes double as the vocabulary every session reports in its events, so a
TCPCLv3 session maps its own codes onto them (see :mod:`dtncloud.tcpcl.v3`).
"""

from __future__ import annotations

from enum import Enum, IntEnum, IntFlag

#: The four bytes every TCPCL contact header starts with ("dtn!").
MAGIC = b"dtn!"
#: IANA-assigned TCP port of TCPCL (v3 and v4).
DEFAULT_PORT = 4556


class Role(Enum):
    """Which side opened the TCP connection: the active side sends its contact header first."""

    ACTIVE = "active"
    PASSIVE = "passive"


class MessageType(IntEnum):
    """TCPCLv4 message type codes (the first byte of every message after the contact header)."""

    XFER_SEGMENT = 0x01
    XFER_ACK = 0x02
    XFER_REFUSE = 0x03
    KEEPALIVE = 0x04
    SESS_TERM = 0x05
    MSG_REJECT = 0x06
    SESS_INIT = 0x07


class ContactFlag(IntFlag):
    """TCPCLv4 contact header flags."""

    CAN_TLS = 0x01


class SegmentFlag(IntFlag):
    """XFER_SEGMENT (and XFER_ACK) flags."""

    END = 0x01
    START = 0x02


class SessTermFlag(IntFlag):
    """SESS_TERM flags."""

    REPLY = 0x01


class ExtensionFlag(IntFlag):
    """Session and transfer extension item flags."""

    CRITICAL = 0x01


class TransferExtensionType(IntEnum):
    """Transfer extension item types."""

    TRANSFER_LENGTH = 0x0001


class SessTermReason(IntEnum):
    """Why a session ends (SESS_TERM reason codes)."""

    UNKNOWN = 0
    IDLE_TIMEOUT = 1
    VERSION_MISMATCH = 2
    BUSY = 3
    CONTACT_FAILURE = 4
    RESOURCE_EXHAUSTION = 5


class XferRefuseReason(IntEnum):
    """Why a receiver refuses a transfer (XFER_REFUSE reason codes)."""

    UNKNOWN = 0
    COMPLETED = 1
    NO_RESOURCES = 2
    RETRANSMIT = 3
    NOT_ACCEPTABLE = 4
    EXTENSION_FAILURE = 5
    SESSION_TERMINATING = 6


class MsgRejectReason(IntEnum):
    """Why a message was rejected (MSG_REJECT reason codes)."""

    TYPE_UNKNOWN = 1
    UNSUPPORTED = 2
    UNEXPECTED = 3


def sess_term_reason(code: int) -> SessTermReason | int:
    """The enum member for ``code``, or the bare int for private/unassigned codes."""
    try:
        return SessTermReason(code)
    except ValueError:
        return code


def xfer_refuse_reason(code: int) -> XferRefuseReason | int:
    """The enum member for ``code``, or the bare int for private/unassigned codes."""
    try:
        return XferRefuseReason(code)
    except ValueError:
        return code
