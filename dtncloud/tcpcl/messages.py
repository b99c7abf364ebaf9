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
    """XFER_SEGMENT: flags (END, START), transfer ID, data and (START only) extensions.

    A parsed segment's ``data`` is a read-only memoryview of the reader's receive buffer.
    """

    flags: int
    transfer_id: int
    data: bytes | memoryview
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


#: The smallest receive block (a session that carries small bundles needs no more).
MIN_BLOCK = 64 * 1024
#: The least free room a read is offered; with less, the reader moves on to another block.
MIN_READ = 16 * 1024
#: Used blocks kept for reuse, and the largest block kept (larger ones are left to the
#: garbage collector once nothing refers to them).
_SPARE_BLOCKS = 4
_MAX_SPARE_BLOCK = 16 << 20
#: Blocks up to this size are kept between transfers.
_IDLE_BLOCK = 256 * 1024
#: A block for a segment of this size or less has room for two of them.
_DOUBLE_UP_TO = 8 << 20
#: Room for the header of the segment after the one in a block (extensions aside).
_HEAD_ROOM = 64


def _block_size(length: int) -> int:
    """The room to make for a segment of ``length`` bytes: with room for a second one like it
    after it (up to a limit), and for the start of a read beyond."""
    return (2 * length + _HEAD_ROOM if length <= _DOUBLE_UP_TO else length) + MIN_READ


def _unshared(block: bytearray) -> bool:
    """Whether no memoryview of ``block`` is alive, so that it may be overwritten.

    A bytearray refuses to change size (BufferError) while a view of it exists; shrinking
    by one byte and growing back stays within its allocation.
    """
    try:
        del block[-1]
    except BufferError:
        return False
    block.append(0)
    return True


class MessageReader:
    """Incremental TCPCLv4 parser with bounded buffering.

    ``expect_contact``: the stream starts with a contact header (reported as
    :class:`ContactHeader` or :class:`BadMagic`). ``on_segment`` is called once per
    XFER_SEGMENT as soon as its header (including extensions and data length) is complete,
    before any of its data is buffered; returning False skips the data. After
    :class:`BadMagic` or :class:`UnknownMessage` the reader ignores everything.

    Received bytes go into blocks the reader owns: either copied in by :meth:`feed`, or
    written there by the caller (:meth:`get_buffer`, then :meth:`buffer_updated`), as an
    ``asyncio.BufferedProtocol`` does, which spares every copy. Each segment's data is laid
    out contiguously, so an :class:`XferSegment` carries a read-only memoryview of the block
    rather than a copy. A block is written again only once no view of it is left (whoever
    keeps a segment's data keeps its block); until then the reader uses another one.
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
        # The bytes received and not yet consumed are ``_block[_pos:_end]``.
        self._block = bytearray()
        self._pos = 0
        self._end = 0
        self._spares: list[bytearray] = []
        self._dead = False
        self._skip = 0  # bytes of the current message still to discard
        self._skip_then_data = False  # after the skip, read a U64 length and skip that too
        # The segment whose data is being received: flags, transfer ID, extensions, length.
        # Its data starts at ``_pos`` and has room up to ``_pos + length`` in the block.
        self._seg: tuple[int, int, tuple[ExtensionItem, ...], int] | None = None
        self._last_length = 0  # of the last segment taken: the next is likely as long

    @property
    def buffered(self) -> int:
        """Bytes received but not yet consumed by a reported item."""
        return self._end - self._pos

    # -- input ------------------------------------------------------------------------------
    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Add received bytes (copied: the caller may reuse ``data`` at once)."""
        if self._dead or not data:
            return
        if isinstance(data, memoryview) and (data.format != "B" or data.ndim != 1):
            data = data.cast("B")
        size = len(data)
        if len(self._block) - self._end < size:
            self._relocate(max(self._end - self._pos + size, self._segment_room()))
        end = self._end
        self._block[end : end + size] = data
        self._end = end + size

    def get_buffer(self, sizehint: int = -1) -> memoryview:
        """Writable room for the next received bytes; report them with :meth:`buffer_updated`.

        The room is never empty; ``sizehint`` is ignored (the reader knows better how much it
        can take without moving a segment's data).
        """
        if self._dead:
            return memoryview(self._block)  # whatever arrives now is dropped
        block = self._block
        seg = self._seg
        if seg is not None:
            seg_end = self._pos + seg[3]
            if self._end < seg_end and len(block) - seg_end < seg[3] + _HEAD_ROOM:
                # A next segment as long would not fit after this one: stop the read at
                # this segment's end, so that the next read starts afresh in another block
                # instead of the next segment's first bytes being copied there.
                return memoryview(block)[self._end : seg_end]
            if len(block) - self._end >= MIN_READ:
                return memoryview(block)[self._end :]
        elif len(block) - self._end >= max(MIN_READ, self._last_length + _HEAD_ROOM):
            return memoryview(block)[self._end :]
        self._relocate(
            max(
                self._end - self._pos + MIN_READ,
                _block_size(self._last_length),
                self._segment_room(),
            )
        )
        return memoryview(self._block)[self._end :]

    def buffer_updated(self, nbytes: int) -> None:
        """``nbytes`` bytes were written at the start of the room :meth:`get_buffer` gave."""
        if not self._dead:
            self._end = min(self._end + nbytes, len(self._block))

    def _segment_room(self) -> int:
        """The room the segment being received needs from its data's start (0 if none)."""
        seg = self._seg
        return 0 if seg is None else seg[3]

    def _relocate(self, need: int) -> None:
        """Move the unconsumed bytes to the start of a block with room for ``need`` bytes
        from there: this one if nothing refers to it any more, else another."""
        block, pos, end = self._block, self._pos, self._end
        kept = end - pos
        if len(block) >= need and _unshared(block):
            if pos:
                block[:kept] = block[pos:end]
        else:
            fresh = self._take_spare(need)
            if kept:
                fresh[:kept] = memoryview(block)[pos:end]
            if block:
                self._retire(block)
            self._block = fresh
        self._pos = 0
        self._end = kept

    def _take_spare(self, need: int) -> bytearray:
        spares = self._spares
        for index, block in enumerate(spares):
            if len(block) >= need and _unshared(block):
                del spares[index]
                return block
        size = max(MIN_BLOCK, need)
        return bytearray(size)

    def _retire(self, block: bytearray) -> None:
        if len(block) > _MAX_SPARE_BLOCK:
            return
        spares = self._spares
        spares.append(block)
        if len(spares) > _SPARE_BLOCKS:
            del spares[0]

    def trim(self) -> None:
        """Let go of the blocks a run of large segments needed (call it between transfers):
        spare blocks are dropped, and a large block in use is swapped for a small one."""
        if self._spares:
            self._spares = []
        if len(self._block) > _IDLE_BLOCK and self._seg is None:
            kept = self._end - self._pos
            fresh = bytearray(max(MIN_BLOCK, kept + MIN_READ))
            if kept:
                fresh[:kept] = memoryview(self._block)[self._pos : self._end]
            self._block = fresh
            self._pos = 0
            self._end = kept

    def close(self) -> None:
        """Ignore all further input and drop what is buffered."""
        self._dead = True
        self._block = bytearray(MIN_READ)  # only for get_buffer, which must offer room
        self._spares = []
        self._pos = self._end = 0
        self._seg = None

    def next(self) -> Item | None:
        """The next complete item, or None when more data is needed."""
        while not self._dead:
            if self._skip or self._skip_then_data:
                if not self._advance_skip():
                    break
            elif self._seg is not None:
                return self._collect()
            else:
                item = self._parse()
                if item is not None:
                    return item
                if self._seg is None:
                    break
                # The header was read and the data spans reads: wait for the rest.
        if self._pos == self._end and self._pos and self._seg is None and _unshared(self._block):
            self._pos = self._end = 0  # all consumed and nothing refers to it: start over
        return None

    # -- skipping and collecting segment data -----------------------------------------------
    def _advance_skip(self) -> bool:
        """Discard skipped bytes; False if the received bytes ran out first."""
        block, end = self._block, self._end
        if self._skip:
            n = min(self._skip, end - self._pos)
            self._pos += n
            self._skip -= n
            if self._skip:
                return False
        if self._skip_then_data:
            if end - self._pos < _U64.size:
                return False
            self._skip_then_data = False
            self._skip = _U64.unpack_from(block, self._pos)[0]
            self._pos += _U64.size
        return True

    def _collect(self) -> XferSegment | None:
        """The segment whose data spans reads, once all of it is in."""
        seg = self._seg
        assert seg is not None
        flags, tid, exts, length = seg
        pos = self._pos
        if self._end - pos < length:
            return None
        self._seg = None
        self._pos = pos + length
        data = memoryview(self._block)[pos : pos + length].toreadonly()
        return XferSegment(flags, tid, data, exts)

    # -- one message ------------------------------------------------------------------------
    def _parse(self) -> Item | None:
        data, pos = self._block, self._pos
        avail = self._end - pos
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

    def _parse_contact(self, data: bytearray, pos: int, avail: int) -> Item | None:
        seen = bytes(data[pos : pos + min(avail, len(MAGIC))])
        if seen != MAGIC[: len(seen)]:
            self._dead = True
            return BadMagic(seen)
        if avail < _CONTACT.size:
            return None
        _, version, flags = _CONTACT.unpack_from(data, pos)
        self._pos = pos + _CONTACT.size
        self._expect_contact = False
        return ContactHeader(version, flags)

    def _parse_sess_init(self, data: bytearray, pos: int, avail: int) -> Item | None:
        if avail < _SESS_INIT_SIZE:
            return None
        _, keepalive, seg_mru, xfer_mru, node_len = _SESS_INIT.unpack_from(data, pos)
        p = pos + _SESS_INIT_SIZE
        if avail < _SESS_INIT_SIZE + node_len + _U32.size:
            return None
        node_raw = bytes(data[p : p + node_len])
        p += node_len
        ext_len = _U32.unpack_from(data, p)[0]
        p += _U32.size
        if ext_len > self.max_extensions:
            self._pos = p
            self._skip = ext_len
            return BadMessage(MessageType.SESS_INIT, f"session extensions of {ext_len} bytes")
        if self._end - p < ext_len:
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

    def _parse_segment(self, data: bytearray, pos: int, avail: int) -> Item | None:
        if avail < _SEG_HEAD_SIZE:
            return None
        _, flags, tid = _SEGMENT_HEAD.unpack_from(data, pos)
        p = pos + _SEG_HEAD_SIZE
        end = self._end
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
        self._last_length = length
        if end - p >= length:
            self._pos = p + length
            return XferSegment(flags, tid, memoryview(data)[p : p + length].toreadonly(), exts)
        # The data spans reads (bounded by max_segment, checked above): keep room for all of
        # it right after what has come, moving that to another block if need be.
        self._seg = (flags, tid, exts, length)
        if len(data) - p < length:
            # Room for this segment only: an announced length is not yet data (the next
            # segments get room for two, once one like them has come).
            self._relocate(length + MIN_READ)
        return None
