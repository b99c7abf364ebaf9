"""TCPCLv3 (RFC 7242) wire format: the contact header and the six messages, sans-IO.

Layout (RFC 7242 sections 4.1, 5 and 6.1; all integers big-endian, lengths as SDNVs)::

    contact header   "dtn!" | version U8 (3) | flags U8 | keepalive U16 (s) | EID length SDNV | EID
    message header   type in the high four bits, flags in the low four bits of one byte
    DATA_SEGMENT 0x1 flags START 0x2, END 0x1 | length SDNV | data
    ACK_SEGMENT  0x2 cumulative acknowledged length SDNV
    REFUSE_BUNDLE 0x3 reason in the flag bits (0 unknown, 1 completed, 2 no resources, 3 retransmit)
    KEEPALIVE    0x4 nothing
    SHUTDOWN     0x5 flags REASON 0x2, DELAY 0x1 | [reason U8] | [reconnection delay SDNV (s)]
    LENGTH       0x6 total length of the next bundle SDNV

>>> encode_data_segment_header(start=True, end=True, length=5).hex()
'1305'
>>> decode_message(bytearray.fromhex("2081 00"), 0)
(AckSegment(length=128), 3)

Decoding is incremental and bounded: :func:`decode_message` and :func:`decode_contact_header`
return ``None`` while a message is incomplete, read at most ten bytes of any SDNV, refuse SDNVs
above 64 bits, and never allocate from a length field (the body of a DATA_SEGMENT is left to the
caller, who knows how much it is willing to buffer). Malformed input raises
:class:`~dtncloud.errors.RemoteProtocolError` (or one of its subclasses below).
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass
from enum import IntEnum, IntFlag

from dtncloud.bpv6.sdnv import MAX_SDNV_LENGTH, SdnvError, decode_sdnv, encode_sdnv
from dtncloud.errors import RemoteProtocolError
from dtncloud.tcpcl.codes import MAGIC

__all__ = [
    "VERSION",
    "MAX_EID_LENGTH",
    "V3MessageType",
    "V3ContactFlag",
    "V3ShutdownFlag",
    "V3ShutdownReason",
    "V3RefuseReason",
    "ContactHeader",
    "Negotiated",
    "negotiate",
    "DataSegmentHeader",
    "AckSegment",
    "RefuseBundle",
    "Keepalive",
    "Shutdown",
    "LengthMessage",
    "Message",
    "BadMagic",
    "VersionMismatch",
    "read_sdnv",
    "encode_contact_header",
    "decode_contact_header",
    "encode_data_segment_header",
    "encode_ack_segment",
    "encode_refuse_bundle",
    "encode_keepalive",
    "encode_shutdown",
    "encode_length",
    "decode_message",
    "AckQueue",
]

#: The protocol version in the contact header.
VERSION = 3
#: The longest local EID accepted in a peer's contact header (the TCPCLv4 node-ID bound).
MAX_EID_LENGTH = 0xFFFF

_FIXED = struct.Struct("!4sBBH")  # magic, version, flags, keepalive
_KEEPALIVE_BYTE = b"\x40"


class V3MessageType(IntEnum):
    """Message type codes (the high four bits of a message's first byte)."""

    DATA_SEGMENT = 0x1
    ACK_SEGMENT = 0x2
    REFUSE_BUNDLE = 0x3
    KEEPALIVE = 0x4
    SHUTDOWN = 0x5
    LENGTH = 0x6


class V3ContactFlag(IntFlag):
    """Contact header flags: what a node requests or supports."""

    REQUEST_ACKS = 0x01
    REACTIVE_FRAGMENTATION = 0x02
    BUNDLE_REFUSAL = 0x04  # only meaningful together with REQUEST_ACKS
    LENGTH_MESSAGES = 0x08


class V3ShutdownFlag(IntFlag):
    """SHUTDOWN flags: which optional fields follow the header byte."""

    DELAY = 0x01
    REASON = 0x02


class V3ShutdownReason(IntEnum):
    """SHUTDOWN reason codes."""

    IDLE_TIMEOUT = 0x00
    VERSION_MISMATCH = 0x01
    BUSY = 0x02


class V3RefuseReason(IntEnum):
    """REFUSE_BUNDLE reason codes (the same numbers as TCPCLv4's first four)."""

    UNKNOWN = 0x0
    COMPLETED = 0x1
    NO_RESOURCES = 0x2
    RETRANSMIT = 0x3


class BadMagic(RemoteProtocolError):
    """The peer's first bytes are not "dtn!": it does not speak TCPCL."""


class VersionMismatch(RemoteProtocolError):
    """The peer's contact header carries a version other than 3."""

    def __init__(self, version: int) -> None:
        super().__init__(f"peer speaks TCPCL version {version}, not {VERSION}")
        self.version = version


@dataclass(frozen=True, slots=True)
class ContactHeader:
    """A decoded contact header. ``flags`` keeps unknown bits as they came."""

    flags: int
    keepalive_s: int
    eid: str


@dataclass(frozen=True, slots=True)
class Negotiated:
    """What two contact headers agree on (RFC 7242 section 4.2).

    Each feature is on only if both sides request it (bundle refusal also needs segment
    acknowledgements); the keepalive interval is the smaller offer, 0 meaning none.
    """

    segment_acks: bool = False
    bundle_refusal: bool = False
    length_messages: bool = False
    reactive_fragmentation: bool = False
    keepalive_s: int = 0


def negotiate(our_flags: int, our_keepalive_s: int, peer: ContactHeader) -> Negotiated:
    """The session parameters our offer and the peer's contact header agree on."""
    both = our_flags & peer.flags
    acks = bool(both & V3ContactFlag.REQUEST_ACKS)
    return Negotiated(
        segment_acks=acks,
        bundle_refusal=acks and bool(both & V3ContactFlag.BUNDLE_REFUSAL),
        length_messages=bool(both & V3ContactFlag.LENGTH_MESSAGES),
        reactive_fragmentation=bool(both & V3ContactFlag.REACTIVE_FRAGMENTATION),
        keepalive_s=min(our_keepalive_s, peer.keepalive_s),
    )


@dataclass(frozen=True, slots=True)
class DataSegmentHeader:
    """The header of a DATA_SEGMENT; ``length`` bytes of data follow it."""

    start: bool
    end: bool
    length: int


@dataclass(frozen=True, slots=True)
class AckSegment:
    """ACK_SEGMENT: ``length`` leading bytes of the current bundle arrived."""

    length: int


@dataclass(frozen=True, slots=True)
class RefuseBundle:
    """REFUSE_BUNDLE with its four-bit reason code."""

    reason: int


@dataclass(frozen=True, slots=True)
class Keepalive:
    """KEEPALIVE."""


@dataclass(frozen=True, slots=True)
class Shutdown:
    """SHUTDOWN; ``reason`` and ``delay_s`` are ``None`` when absent."""

    reason: int | None = None
    delay_s: int | None = None


@dataclass(frozen=True, slots=True)
class LengthMessage:
    """LENGTH: the total length of the next bundle."""

    length: int


Message = DataSegmentHeader | AckSegment | RefuseBundle | Keepalive | Shutdown | LengthMessage


def read_sdnv(buf: bytes | bytearray, pos: int) -> tuple[int, int] | None:
    """Decode the SDNV at ``pos``: ``(value, position after it)``, or ``None`` if incomplete.

    Raises :class:`~dtncloud.errors.RemoteProtocolError` if it runs past ten bytes or above 64
    bits, so a hostile endless SDNV costs at most ten bytes of look-ahead.
    """
    end = len(buf)
    if pos < end and buf[pos] < 0x80:  # the common one-byte case
        return buf[pos], pos + 1
    limit = min(end, pos + MAX_SDNV_LENGTH)
    for i in range(pos, limit):
        if buf[i] < 0x80:
            break
    else:
        if limit - pos >= MAX_SDNV_LENGTH:
            raise RemoteProtocolError(f"SDNV runs past {MAX_SDNV_LENGTH} bytes")
        return None
    try:
        return decode_sdnv(buf, pos)
    except SdnvError as exc:
        raise RemoteProtocolError(str(exc)) from None


# -- contact header ----------------------------------------------------------------------------


def encode_contact_header(flags: int, keepalive_s: int, eid: str) -> bytes:
    """The contact header we send: version 3, our flags, keepalive and local EID."""
    raw = eid.encode("utf-8")
    return _FIXED.pack(MAGIC, VERSION, flags & 0xFF, keepalive_s) + encode_sdnv(len(raw)) + raw


def decode_contact_header(buf: bytes | bytearray, pos: int = 0) -> tuple[ContactHeader, int] | None:
    """Decode a contact header at ``pos``: ``(header, position after it)``, or ``None``.

    Raises :class:`BadMagic` as soon as the bytes seen differ from "dtn!",
    :class:`VersionMismatch` as soon as the version byte is not 3 (a TCPCLv4 header is only
    six bytes long, so waiting for more would stall), and
    :class:`~dtncloud.errors.RemoteProtocolError` for an EID that is too long or not UTF-8.
    """
    seen = bytes(buf[pos : pos + 4])
    if not MAGIC.startswith(seen):
        raise BadMagic(f"contact header starts with {seen.hex()}, not 'dtn!'")
    if len(buf) - pos < 5:
        return None
    if buf[pos + 4] != VERSION:
        raise VersionMismatch(buf[pos + 4])
    if len(buf) - pos < _FIXED.size + 1:
        return None
    _, _, flags, keepalive = _FIXED.unpack_from(buf, pos)
    got = read_sdnv(buf, pos + _FIXED.size)
    if got is None:
        return None
    length, start = got
    if length > MAX_EID_LENGTH:
        raise RemoteProtocolError(f"local EID of {length} bytes (at most {MAX_EID_LENGTH})")
    if len(buf) - start < length:
        return None
    try:
        eid = bytes(buf[start : start + length]).decode("utf-8")
    except UnicodeDecodeError:
        raise RemoteProtocolError("local EID in the contact header is not UTF-8") from None
    return ContactHeader(flags, keepalive, eid), start + length


# -- messages ----------------------------------------------------------------------------------


def encode_data_segment_header(*, start: bool, end: bool, length: int) -> bytes:
    """The header of a DATA_SEGMENT carrying ``length`` bytes."""
    return bytes(((0x10 | (0x02 if start else 0) | (0x01 if end else 0)),)) + encode_sdnv(length)


def encode_ack_segment(length: int) -> bytes:
    """ACK_SEGMENT for ``length`` cumulative bytes."""
    return b"\x20" + encode_sdnv(length)


def encode_refuse_bundle(reason: int) -> bytes:
    """REFUSE_BUNDLE; ``reason`` must fit the four flag bits."""
    if not 0 <= reason <= 0xF:
        raise ValueError(f"refusal reason {reason} does not fit four bits")
    return bytes((0x30 | reason,))


def encode_keepalive() -> bytes:
    """KEEPALIVE."""
    return _KEEPALIVE_BYTE


def encode_shutdown(reason: int | None = None, delay_s: int | None = None) -> bytes:
    """SHUTDOWN with an optional reason code and reconnection delay (seconds)."""
    head = 0x50
    tail = b""
    if reason is not None:
        head |= V3ShutdownFlag.REASON
        tail += bytes((reason,))
    if delay_s is not None:
        head |= V3ShutdownFlag.DELAY
        tail += encode_sdnv(delay_s)
    return bytes((head,)) + tail


def encode_length(total: int) -> bytes:
    """LENGTH announcing a bundle of ``total`` bytes."""
    return b"\x60" + encode_sdnv(total)


def decode_message(buf: bytes | bytearray, pos: int) -> tuple[Message, int] | None:
    """Decode the message at ``pos``: ``(message, position after it)``, or ``None``.

    A DATA_SEGMENT decodes to its header only; its data starts at the returned position.
    Raises :class:`~dtncloud.errors.RemoteProtocolError` for an unknown type or a bad SDNV.
    """
    if pos >= len(buf):
        return None
    first = buf[pos]
    kind = first >> 4
    flags = first & 0x0F
    if kind == V3MessageType.DATA_SEGMENT:
        got = read_sdnv(buf, pos + 1)
        if got is None:
            return None
        return DataSegmentHeader(bool(flags & 0x02), bool(flags & 0x01), got[0]), got[1]
    if kind == V3MessageType.ACK_SEGMENT or kind == V3MessageType.LENGTH:
        got = read_sdnv(buf, pos + 1)
        if got is None:
            return None
        value, after = got
        return (
            AckSegment(value) if kind == V3MessageType.ACK_SEGMENT else LengthMessage(value)
        ), after
    if kind == V3MessageType.KEEPALIVE:
        return Keepalive(), pos + 1
    if kind == V3MessageType.REFUSE_BUNDLE:
        return RefuseBundle(flags), pos + 1
    if kind == V3MessageType.SHUTDOWN:
        return _decode_shutdown(buf, pos, flags)
    raise RemoteProtocolError(f"unknown message type {kind:#x} (byte {first:#04x})")


def _decode_shutdown(buf: bytes | bytearray, pos: int, flags: int) -> tuple[Shutdown, int] | None:
    after = pos + 1
    reason: int | None = None
    delay: int | None = None
    if flags & V3ShutdownFlag.REASON:
        if after >= len(buf):
            return None
        reason = buf[after]
        after += 1
    if flags & V3ShutdownFlag.DELAY:
        got = read_sdnv(buf, after)
        if got is None:
            return None
        delay, after = got
    return Shutdown(reason, delay), after


# -- acknowledgement order ---------------------------------------------------------------------

_ACK, _FINAL, _REFUSE = 0, 1, 2


class _Pending:
    __slots__ = ("kind", "tid", "value")

    def __init__(self, tid: int, kind: int, value: int) -> None:
        self.tid = tid
        self.kind = kind
        self.value = value


class AckQueue:
    """Puts a receiver's ACK_SEGMENT and REFUSE_BUNDLE messages in the order v3 needs.

    Neither message names a bundle: the sender applies each to the oldest bundle it has not
    seen settled. So once the final ACK of bundle ``n`` is held back (until the bundle is
    safely stored), every message about bundle ``n + 1`` and later waits behind it. Bundles
    are numbered in arrival order. Each method returns the bytes that may be sent now.
    """

    __slots__ = ("_items",)

    def __init__(self) -> None:
        self._items: deque[_Pending] = deque()

    def __len__(self) -> int:
        return len(self._items)

    def ack(self, tid: int, value: int, *, final: bool) -> bytes:
        """Acknowledge ``value`` bytes of bundle ``tid``; a final ACK waits for :meth:`release`."""
        items = self._items
        kind = _FINAL if final else _ACK
        if not items:
            if final:
                items.append(_Pending(tid, kind, value))
                return b""
            return encode_ack_segment(value)
        tail = items[-1]
        if tail.tid == tid and tail.kind == _ACK:  # acks are cumulative: keep the latest
            tail.value, tail.kind = value, kind
        else:
            items.append(_Pending(tid, kind, value))
        return b""

    def release(self, tid: int) -> bytes:
        """Let the held-back final ACK of bundle ``tid`` go (in its turn)."""
        for item in self._items:
            if item.tid == tid and item.kind == _FINAL:
                item.kind = _ACK
                break
        return self._flush()

    def refuse(self, tid: int, reason: int) -> bytes:
        """Refuse bundle ``tid`` instead of acknowledging it (in its turn)."""
        items = [p for p in self._items if p.tid < tid]
        items.append(_Pending(tid, _REFUSE, reason))
        items.extend(p for p in self._items if p.tid > tid)
        self._items = deque(items)
        return self._flush()

    def drop(self, tid: int) -> None:
        """Forget everything queued about bundle ``tid`` (the sender abandoned it)."""
        self._items = deque(p for p in self._items if p.tid != tid)

    def clear(self) -> None:
        """Forget everything (the session is over)."""
        self._items.clear()

    def _flush(self) -> bytes:
        items = self._items
        out = bytearray()
        while items and items[0].kind != _FINAL:
            item = items.popleft()
            if item.kind == _ACK:
                out += encode_ack_segment(item.value)
            else:
                out += encode_refuse_bundle(item.value)
        return bytes(out)
