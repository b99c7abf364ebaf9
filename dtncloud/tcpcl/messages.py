"""TCPCLv4 messages (RFC 9174 sections 4 and 5): dataclasses, encoders and a bounded parser.

Each message class has ``encode()``, which writes the RFC form. :class:`MessageReader` is an
incremental parser: feed it bytes as they arrive and pull items with ``next()``, which
returns ``None`` when it needs more data. Its memory use is bounded by its own limits, never
by the lengths the peer announces:

* a segment longer than ``max_segment`` is skipped as it arrives (reported as
  :class:`SkippedSegment`), as is any segment the ``on_segment`` hook declines;
* transfer and session extension blocks longer than ``max_extensions`` are skipped, not
  buffered (:class:`SkippedSegment` with ``length=None`` or :class:`BadMessage`);
* everything else is small by construction (a SESS_INIT is at most ~128 KiB).

Reading is strictly by RFC 9174. dtn7-gold's variant, which puts the transfer extension
length on every XFER_SEGMENT rather than only on START segments, cannot be told apart from
the RFC form in general, so it is not guessed at: such a peer's second segment shows up as a
zero-length segment followed by an unknown message type.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from dtncloud.tcpcl.codes import MAGIC, ExtensionFlag, MessageType, SegmentFlag
from dtncloud.tcpcl.events import ExtensionItem

#: The TCPCL version this module speaks.
VERSION = 4
#: Default cap on an extension block (session or transfer) we are willing to buffer.
MAX_EXTENSIONS_LENGTH = 64 * 1024

_CONTACT = struct.Struct("!4sBB")
_SESS_INIT = struct.Struct("!BHQQH")
_SESS_TERM = struct.Struct("!BBB")
_SEGMENT_HEAD = struct.Struct("!BBQ")
_ACK = struct.Struct("!BBQQ")
_REFUSE = struct.Struct("!BBQ")
_REJECT = struct.Struct("!BBB")
_EXT_HEAD = struct.Struct("!BHH")
_U32 = struct.Struct("!I")
_U64 = struct.Struct("!Q")
# Whole segment headers for the session's hot path, one pack() each:
#: type, flags, transfer ID, data length (a segment without START).
SEGMENT_HEAD = struct.Struct("!BBQQ")
#: type, flags, transfer ID, extension length 0, data length (START, no extensions).
SEGMENT_START_HEAD = struct.Struct("!BBQIQ")
#: type, flags, transfer ID, extension length 13, one Transfer Length item (flags, type 1,
#: length 8, total), data length.
SEGMENT_LENGTH_HEAD = struct.Struct("!BBQIBHHQQ")
#: type, flags, transfer ID, acknowledged length.
ACK = _ACK
#: type, reason, transfer ID.
REFUSE = _REFUSE
KEEPALIVE_BYTES = bytes([MessageType.KEEPALIVE])

_START = SegmentFlag.START.value
_SEG_HEAD_SIZE = _SEGMENT_HEAD.size  # 10
_SESS_INIT_SIZE = _SESS_INIT.size  # 21


# --- messages -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ContactHeader:
    """The contact header: magic, version and flags (0x01 CAN_TLS)."""

    version: int = VERSION
    flags: int = 0

    def encode(self) -> bytes:
        return _CONTACT.pack(MAGIC, self.version, self.flags)


@dataclass(frozen=True, slots=True)
class SessInit:
    """SESS_INIT: keepalive interval (s), segment and transfer MRU, node ID, extensions."""

    keepalive: int
    segment_mru: int
    transfer_mru: int
    node_id: str = ""
    extensions: tuple[ExtensionItem, ...] = ()

    def encode(self) -> bytes:
        node = self.node_id.encode("utf-8")
        items = encode_extensions(self.extensions)
        return b"".join(
            (
                _SESS_INIT.pack(
                    MessageType.SESS_INIT,
                    self.keepalive,
                    self.segment_mru,
                    self.transfer_mru,
                    len(node),
                ),
                node,
                _U32.pack(len(items)),
                items,
            )
        )


@dataclass(frozen=True, slots=True)
class SessTerm:
    """SESS_TERM: flags (0x01 REPLY) and reason code."""

    flags: int
    reason: int

    def encode(self) -> bytes:
        return _SESS_TERM.pack(MessageType.SESS_TERM, self.flags, self.reason)


@dataclass(frozen=True, slots=True)
class XferSegment:
    """XFER_SEGMENT: flags (END, START), transfer ID, data and (START only) extensions."""

    flags: int
    transfer_id: int
    data: bytes
    extensions: tuple[ExtensionItem, ...] = ()

    def encode(self) -> bytes:
        head = _SEGMENT_HEAD.pack(MessageType.XFER_SEGMENT, self.flags, self.transfer_id)
        if self.flags & _START:
            items = encode_extensions(self.extensions)
            head += _U32.pack(len(items)) + items
        return head + _U64.pack(len(self.data)) + self.data


@dataclass(frozen=True, slots=True)
class XferAck:
    """XFER_ACK: the acknowledged segment's flags, transfer ID, cumulative length."""

    flags: int
    transfer_id: int
    length: int

    def encode(self) -> bytes:
        return _ACK.pack(MessageType.XFER_ACK, self.flags, self.transfer_id, self.length)


@dataclass(frozen=True, slots=True)
class XferRefuse:
    """XFER_REFUSE: reason code and transfer ID."""

    reason: int
    transfer_id: int

    def encode(self) -> bytes:
        return _REFUSE.pack(MessageType.XFER_REFUSE, self.reason, self.transfer_id)


@dataclass(frozen=True, slots=True)
class Keepalive:
    """KEEPALIVE: no content."""

    def encode(self) -> bytes:
        return KEEPALIVE_BYTES


@dataclass(frozen=True, slots=True)
class MsgReject:
    """MSG_REJECT in RFC field order: reason code, then the rejected message's type."""

    reason: int
    rejected_type: int

    def encode(self) -> bytes:
        return _REJECT.pack(MessageType.MSG_REJECT, self.reason, self.rejected_type)


# --- what the reader reports besides messages -----------------------------------------------
@dataclass(frozen=True, slots=True)
class BadMagic:
    """The stream does not start with "dtn!"; ``data`` holds the bytes that gave it away."""

    data: bytes


@dataclass(frozen=True, slots=True)
class UnknownMessage:
    """A message type this protocol does not define; the stream cannot be parsed further."""

    message_type: int


@dataclass(frozen=True, slots=True)
class SkippedSegment:
    """An XFER_SEGMENT whose data is discarded unread as it arrives.

    ``length`` is ``None`` when the extension block was too long to read, which leaves the
    data length unknown when the skipping starts.
    """

    flags: int
    transfer_id: int
    length: int | None


@dataclass(frozen=True, slots=True)
class BadMessage:
    """A complete message of a known type whose content is invalid (framing is intact)."""

    message_type: int
    description: str


Message = (
    ContactHeader | SessInit | SessTerm | XferSegment | XferAck | XferRefuse | Keepalive | MsgReject
)
Item = Message | BadMagic | UnknownMessage | SkippedSegment | BadMessage
#: ``on_segment(flags, transfer_id, length, extensions)`` -> take the data (True) or skip it.
#: ``length`` is None and ``extensions`` None when the extension block was too long to read;
#: ``extensions`` is None when it was malformed. The answer is ignored when skipping is forced.
SegmentHook = Callable[[int, int, int | None, tuple[ExtensionItem, ...] | None], bool]


def encode_extensions(items: tuple[ExtensionItem, ...] | list[ExtensionItem]) -> bytes:
    """The TLV encoding of extension items (flags U8, type U16, length U16, value)."""
    return b"".join(
        _EXT_HEAD.pack(ExtensionFlag.CRITICAL if item.critical else 0, item.type, len(item.value))
        + item.value
        for item in items
    )


def _slice(data: bytes | bytearray | memoryview, start: int, end: int) -> bytes:
    # One copy whatever the source type (slicing a bytearray would copy twice).
    if type(data) is bytes:
        return data[start:end]
    return bytes(memoryview(data)[start:end])


def _read_extensions(
    data: bytes | bytearray | memoryview, pos: int, length: int
) -> tuple[ExtensionItem, ...] | None:
    """Items filling exactly ``length`` bytes at ``pos``, or None if they do not."""
    end = pos + length
    items = []
    while pos < end:
        if end - pos < _EXT_HEAD.size:
            return None
        flags, kind, size = _EXT_HEAD.unpack_from(data, pos)
        pos += _EXT_HEAD.size
        if end - pos < size:
            return None
        items.append(ExtensionItem(kind, _slice(data, pos, pos + size), bool(flags & 1)))
        pos += size
    return tuple(items)


class MessageReader:
    """Incremental TCPCLv4 parser with bounded buffering.

    ``expect_contact``: the stream starts with a contact header (reported as
    :class:`ContactHeader` or :class:`BadMagic`). ``on_segment`` is called once per
    XFER_SEGMENT as soon as its header (including extensions and data length) is complete,
    before any of its data is buffered; returning False skips the data. After
    :class:`BadMagic` or :class:`UnknownMessage` the reader ignores everything.
    """

    def __init__(
        self,
        *,
        max_segment: int,
        max_extensions: int = MAX_EXTENSIONS_LENGTH,
        expect_contact: bool = False,
        on_segment: SegmentHook | None = None,
    ) -> None:
        self.max_segment = max_segment
        self.max_extensions = max_extensions
        self.on_segment = on_segment
        self._expect_contact = expect_contact
        self._buf = bytearray()
        # Parsing runs over ``_data`` from ``_pos``: either the caller's chunk (no copy when
        # whole messages arrive) or ``_buf`` holding a partial message across chunks.
        self._data: bytes | bytearray | memoryview = self._buf
        self._pos = 0
        self._dead = False
        self._skip = 0  # bytes of the current message still to discard
        self._skip_then_data = False  # after the skip, read a U64 length and skip that too
        self._seg: tuple[int, int, tuple[ExtensionItem, ...]] | None = None
        self._seg_parts: list[bytes | memoryview] = []
        self._seg_remaining = 0

    @property
    def buffered(self) -> int:
        """Bytes received but not yet consumed by a reported item."""
        return len(self._data) - self._pos

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Add received bytes (copied as needed before ``next()`` returns None)."""
        if self._dead or not data:
            return
        if isinstance(data, memoryview) and (data.format != "B" or data.ndim != 1):
            data = data.cast("B")
        if self._data is not self._buf:
            self._stash()
        elif self._pos:
            del self._buf[: self._pos]
            self._pos = 0
        if self._buf:
            self._buf += data
        else:
            self._data = data

    def _stash(self) -> None:
        """Keep the unconsumed rest of the caller's chunk in our own buffer."""
        if self._pos < len(self._data):
            rest = memoryview(self._data)[self._pos :]
            self._buf += rest
            rest.release()
        self._data = self._buf
        self._pos = 0

    def close(self) -> None:
        """Ignore all further input and drop what is buffered."""
        self._dead = True
        self._buf.clear()
        self._data = self._buf
        self._pos = 0
        self._seg = None
        self._seg_parts = []

    def next(self) -> Item | None:
        """The next complete item, or None when more data is needed."""
        while not self._dead:
            if self._skip or self._skip_then_data:
                if not self._advance_skip():
                    break
            elif self._seg is not None:
                segment = self._collect()
                if segment is None:
                    break
                return segment
            else:
                item = self._parse()
                if item is not None:
                    return item
                if self._seg is None:
                    break
                # The header was read and the data spans chunks: collect what is here.
        # Need more data: keep the rest in our own buffer, not in the caller's chunk.
        if self._data is not self._buf:
            if self._pos < len(self._data):
                self._stash()
            else:
                self._data = self._buf
                self._pos = 0
        return None

    # -- skipping and collecting segment data -----------------------------------------------
    def _advance_skip(self) -> bool:
        """Discard skipped bytes; False if the chunk ran out first."""
        data = self._data
        if self._skip:
            n = min(self._skip, len(data) - self._pos)
            self._pos += n
            self._skip -= n
            if self._skip:
                return False
        if self._skip_then_data:
            if len(data) - self._pos < _U64.size:
                return False
            self._skip_then_data = False
            self._skip = _U64.unpack_from(data, self._pos)[0]
            self._pos += _U64.size
        return True

    def _collect(self) -> XferSegment | None:
        """Gather the data of a segment that spans chunks; the segment once complete."""
        data, pos = self._data, self._pos
        n = min(self._seg_remaining, len(data) - pos)
        if n:
            if type(data) is bytes:
                # An immutable chunk can be referenced until the join: one copy in all.
                self._seg_parts.append(memoryview(data)[pos : pos + n])
            else:
                self._seg_parts.append(_slice(data, pos, pos + n))
            self._pos = pos + n
            self._seg_remaining -= n
        if self._seg_remaining or self._seg is None:
            return None
        flags, tid, exts = self._seg
        parts, self._seg, self._seg_parts = self._seg_parts, None, []
        whole = bytes(parts[0]) if len(parts) == 1 else b"".join(parts)
        return XferSegment(flags, tid, whole, exts)

    # -- one message ------------------------------------------------------------------------
    def _parse(self) -> Item | None:
        data, pos = self._data, self._pos
        avail = len(data) - pos
        if not avail:
            return None
        if self._expect_contact:
            return self._parse_contact(data, pos, avail)
        kind = data[pos]
        if kind == MessageType.XFER_SEGMENT:
            return self._parse_segment(data, pos, avail)
        if kind == MessageType.XFER_ACK:
            if avail < _ACK.size:
                return None
            _, flags, tid, length = _ACK.unpack_from(data, pos)
            self._pos = pos + _ACK.size
            return XferAck(flags, tid, length)
        if kind == MessageType.XFER_REFUSE:
            if avail < _REFUSE.size:
                return None
            _, reason, tid = _REFUSE.unpack_from(data, pos)
            self._pos = pos + _REFUSE.size
            return XferRefuse(reason, tid)
        if kind == MessageType.KEEPALIVE:
            self._pos = pos + 1
            return Keepalive()
        if kind == MessageType.SESS_TERM or kind == MessageType.MSG_REJECT:
            if avail < 3:
                return None
            _, first, second = _SESS_TERM.unpack_from(data, pos)
            self._pos = pos + 3
            if kind == MessageType.SESS_TERM:
                return SessTerm(first, second)
            return MsgReject(first, second)
        if kind == MessageType.SESS_INIT:
            return self._parse_sess_init(data, pos, avail)
        self._dead = True
        return UnknownMessage(kind)

    def _parse_contact(
        self, data: bytes | bytearray | memoryview, pos: int, avail: int
    ) -> Item | None:
        seen = _slice(data, pos, pos + min(avail, len(MAGIC)))
        if seen != MAGIC[: len(seen)]:
            self._dead = True
            return BadMagic(seen)
        if avail < _CONTACT.size:
            return None
        _, version, flags = _CONTACT.unpack_from(data, pos)
        self._pos = pos + _CONTACT.size
        self._expect_contact = False
        return ContactHeader(version, flags)

    def _parse_sess_init(
        self, data: bytes | bytearray | memoryview, pos: int, avail: int
    ) -> Item | None:
        if avail < _SESS_INIT_SIZE:
            return None
        _, keepalive, seg_mru, xfer_mru, node_len = _SESS_INIT.unpack_from(data, pos)
        p = pos + _SESS_INIT_SIZE
        if avail < _SESS_INIT_SIZE + node_len + _U32.size:
            return None
        node_raw = _slice(data, p, p + node_len)
        p += node_len
        ext_len = _U32.unpack_from(data, p)[0]
        p += _U32.size
        if ext_len > self.max_extensions:
            self._pos = p
            self._skip = ext_len
            return BadMessage(MessageType.SESS_INIT, f"session extensions of {ext_len} bytes")
        if len(data) - p < ext_len:
            return None
        self._pos = p + ext_len
        exts = _read_extensions(data, p, ext_len)
        if exts is None:
            return BadMessage(MessageType.SESS_INIT, "malformed session extension items")
        try:
            node_id = node_raw.decode("utf-8")
        except UnicodeDecodeError:
            return BadMessage(MessageType.SESS_INIT, "node ID is not UTF-8")
        return SessInit(keepalive, seg_mru, xfer_mru, node_id, exts)

    def _parse_segment(
        self, data: bytes | bytearray | memoryview, pos: int, avail: int
    ) -> Item | None:
        if avail < _SEG_HEAD_SIZE:
            return None
        _, flags, tid = _SEGMENT_HEAD.unpack_from(data, pos)
        p = pos + _SEG_HEAD_SIZE
        end = len(data)
        exts: tuple[ExtensionItem, ...] | None = ()
        if flags & _START:
            if end - p < _U32.size:
                return None
            ext_len = _U32.unpack_from(data, p)[0]
            p += _U32.size
            if ext_len > self.max_extensions:
                # Skip the extensions, then the data, without ever holding either.
                self._pos = p
                self._skip = ext_len
                self._skip_then_data = True
                if self.on_segment is not None:
                    self.on_segment(flags, tid, None, None)
                return SkippedSegment(flags, tid, None)
            if end - p < ext_len + _U64.size:
                return None
            exts = _read_extensions(data, p, ext_len)
            p += ext_len
        elif end - p < _U64.size:
            return None
        length = _U64.unpack_from(data, p)[0]
        p += _U64.size
        self._pos = p
        if self.on_segment is not None:
            take = self.on_segment(flags, tid, length, exts)
        else:
            take = exts is not None
        if not take or exts is None or length > self.max_segment:
            self._skip = length
            return SkippedSegment(flags, tid, length)
        if end - p >= length:
            self._pos = p + length
            return XferSegment(flags, tid, _slice(data, p, p + length), exts)
        # The data spans chunks: collect it (bounded by max_segment, checked above).
        self._seg = (flags, tid, exts)
        self._seg_remaining = length
        return None
