"""Frames for byte-stream links (serial lines, radio modems): SLIP or COBS, CRC-32C, segments.

Sans-IO: nothing here touches a port or a clock. The asyncio driver is
:mod:`dtncloud.cla.serial`; docs/serial.md describes the format for operators.

A bundle travels as one or more *frames*. Each frame's body is::

    +---------+----------+---------------------------+---------------+-----------+
    | ver/typ | transfer | last flag + segment index | payload       | CRC-32C   |
    | 1 byte  | 1 byte   | 2 bytes, big-endian       | 0..n bytes    | 4 bytes BE|
    +---------+----------+---------------------------+---------------+-----------+

* ``ver/typ``: the high nibble is the format version (1), the low nibble the frame type
  (1: a segment of a bundle). Frames of another version or type are counted and ignored, so
  other traffic on the line (a modem's status output, a later format) does no harm.
* ``transfer`` numbers the bundles a sender sends (modulo 256); ``segment index`` numbers the
  frames of one bundle from 0; its top bit marks the last frame of the bundle.
* The CRC-32C (Castagnoli) covers everything before it.

The body is then byte-stuffed and delimited: SLIP (RFC 1055) puts an END byte (0xC0) on both
sides, COBS (Cheshire & Baker, 1999) puts a zero byte on both sides. The leading delimiter ends
whatever line noise came before the frame, so a receiver resynchronises at every frame.

``max_frame_size`` always means the size of a frame *on the wire*: delimiters and stuffing
included. :class:`Segmenter` fills each frame as far as that allows; the decoders drop anything
longer (so their memory is bounded by it) and count what they drop.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Literal

import crc32c as _crc32c

from dtncloud.errors import CodecError, ConfigError

__all__ = [
    "Framing",
    "FRAMINGS",
    "FRAME_VERSION",
    "FrameType",
    "HEADER_SIZE",
    "CRC_SIZE",
    "MIN_FRAME_SIZE",
    "MAX_SEGMENTS",
    "FramingError",
    "FrameCounters",
    "slip_stuff",
    "slip_unstuff",
    "cobs_stuff",
    "cobs_unstuff",
    "slip_encode",
    "cobs_encode",
    "encode_frame",
    "FrameDecoder",
    "SlipDecoder",
    "CobsDecoder",
    "make_decoder",
    "Segment",
    "pack_segment",
    "parse_segment",
    "Segmenter",
    "Reassembler",
    "FrameReceiver",
    "min_payload_per_frame",
]

Framing = Literal["slip", "cobs"]
FRAMINGS: tuple[Framing, ...] = ("slip", "cobs")

FRAME_VERSION = 1
HEADER_SIZE = 4
CRC_SIZE = 4
#: The smallest ``max_frame_size`` accepted: a one-byte segment, fully escaped, still fits.
MIN_FRAME_SIZE = 24
_LAST = 0x8000
#: Segment indexes are 15 bits, so a bundle has at most this many frames.
MAX_SEGMENTS = 0x8000

SLIP_END = 0xC0
SLIP_ESC = 0xDB
SLIP_ESC_END = 0xDC
SLIP_ESC_ESC = 0xDD
_END = bytes([SLIP_END])
_ESC = bytes([SLIP_ESC])
_ESCAPED_END = bytes([SLIP_ESC, SLIP_ESC_END])
_ESCAPED_ESC = bytes([SLIP_ESC, SLIP_ESC_ESC])
_ZERO = b"\x00"


class FrameType(enum.IntEnum):
    """The low nibble of a frame's first byte."""

    BUNDLE_SEGMENT = 1


_SEGMENT_TYPE_BYTE = (FRAME_VERSION << 4) | FrameType.BUNDLE_SEGMENT


class FramingError(CodecError):
    """Bytes that are not a well-formed stuffed frame or segment (never escapes a decoder)."""


@dataclass
class FrameCounters:
    """What a link's framing saw; the driver copies these into ``LinkStats.extra``."""

    frames_received: int = 0
    frames_sent: int = 0
    wire_bytes_received: int = 0
    wire_bytes_sent: int = 0
    #: longer than ``max_frame_size`` on the wire
    oversized_frames: int = 0
    #: stuffing that does not decode (a bad SLIP escape, a truncated COBS block, a runt)
    garbled_frames: int = 0
    bad_crc_frames: int = 0
    #: a good CRC but another version or frame type
    ignored_frames: int = 0
    #: a segment that belongs to no bundle being reassembled
    orphan_segments: int = 0
    duplicate_segments: int = 0
    #: bundles abandoned half-way: a segment lost, or the next bundle started
    incomplete_bundles: int = 0
    #: bundles abandoned because they grew past ``max_bundle_size``
    oversized_bundles: int = 0
    reassembly_timeouts: int = 0

    @property
    def dropped_frames(self) -> int:
        """Frames thrown away before reassembly, for whatever reason."""
        return (
            self.oversized_frames + self.garbled_frames + self.bad_crc_frames + self.ignored_frames
        )

    def as_dict(self) -> dict[str, int]:
        counts = asdict(self)
        counts["dropped_frames"] = self.dropped_frames
        return counts


def _check_framing(framing: str) -> Framing:
    if framing == "slip":
        return "slip"
    if framing == "cobs":
        return "cobs"
    raise ConfigError(f"framing must be 'slip' or 'cobs', not {framing!r}")


# -- byte stuffing ----------------------------------------------------------------------------


def slip_stuff(data: bytes) -> bytes:
    """``data`` with END and ESC escaped (RFC 1055), without delimiters."""
    # ESC first: escaping END afterwards adds ESC bytes that must stay as they are.
    return bytes(data).replace(_ESC, _ESCAPED_ESC).replace(_END, _ESCAPED_END)


def slip_unstuff(raw: bytes) -> bytes:
    """Undo :func:`slip_stuff`; raises :class:`FramingError` on END or a bad escape."""
    if SLIP_END in raw:
        raise FramingError("END inside a SLIP frame")
    if SLIP_ESC not in raw:
        return bytes(raw)
    pieces = bytes(raw).split(_ESC)
    out = bytearray(pieces[0])
    for piece in pieces[1:]:
        if not piece:
            raise FramingError("SLIP ESC at the end of a frame or before another ESC")
        code = piece[0]
        if code == SLIP_ESC_END:
            out.append(SLIP_END)
        elif code == SLIP_ESC_ESC:
            out.append(SLIP_ESC)
        else:
            raise FramingError(f"SLIP ESC followed by 0x{code:02x}")
        out += piece[1:]
    return bytes(out)


def cobs_stuff(data: bytes) -> bytes:
    """``data`` COBS-encoded: no zero byte left, at most 1 + len/254 bytes longer."""
    out = bytearray()
    # A message is a run of zero-free blocks, each ending in a zero (the last one implied).
    blocks = bytes(data).split(_ZERO)
    last = len(blocks) - 1
    for number, block in enumerate(blocks):
        full = False
        while len(block) >= 254:
            out.append(0xFF)  # 254 data bytes and no zero after them
            out += block[:254]
            block = block[254:]
            full = True
        if block or not full or number != last:  # a message ending on a full block stops there
            out.append(len(block) + 1)
            out += block
    return bytes(out)


def cobs_unstuff(raw: bytes) -> bytes:
    """Undo :func:`cobs_stuff`; raises :class:`FramingError` on a zero or a truncated block."""
    out = bytearray()
    end = len(raw)
    position = 0
    while position < end:
        code = raw[position]
        if code == 0:
            raise FramingError("zero byte inside a COBS frame")
        following = position + code
        if following > end:
            raise FramingError("COBS block runs past the end of the frame")
        out += raw[position + 1 : following]
        position = following
        if code != 0xFF and position < end:
            out.append(0)
    return bytes(out)


def _crc(data: bytes) -> bytes:
    return int(_crc32c.crc32c(data)).to_bytes(CRC_SIZE, "big")


def slip_encode(body: bytes) -> bytes:
    """A complete SLIP wire frame: END, ``body`` and its CRC-32C stuffed, END."""
    return _END + slip_stuff(body + _crc(body)) + _END


def cobs_encode(body: bytes) -> bytes:
    """A complete COBS wire frame: zero, ``body`` and its CRC-32C stuffed, zero."""
    return _ZERO + cobs_stuff(body + _crc(body)) + _ZERO


def encode_frame(body: bytes, framing: Framing) -> bytes:
    """:func:`slip_encode` or :func:`cobs_encode`, by name."""
    return slip_encode(body) if framing == "slip" else cobs_encode(body)


# -- incremental decoding ---------------------------------------------------------------------


class FrameDecoder:
    """Splits a received byte stream into frame bodies with a good CRC (CRC removed).

    :meth:`feed` never raises: what is not a good frame is counted in :attr:`counters` and
    dropped. A frame longer than ``max_frame_size`` on the wire is dropped as soon as it is
    that long, and the decoder waits for the next delimiter, so it never holds more than
    ``max_frame_size`` bytes.
    """

    delimiter: int

    def __init__(self, max_frame_size: int, counters: FrameCounters | None = None) -> None:
        if max_frame_size < MIN_FRAME_SIZE:
            raise ConfigError(f"max frame size must be at least {MIN_FRAME_SIZE} bytes")
        self.max_frame_size = max_frame_size
        self.counters = counters if counters is not None else FrameCounters()
        self._buffer = bytearray()
        self._discarding = False
        self._delimiter = bytes([self.delimiter])

    def feed(self, data: bytes) -> list[bytes]:
        """The bodies of the frames that ``data`` completes, in order."""
        bodies: list[bytes] = []
        data = bytes(data)
        self.counters.wire_bytes_received += len(data)
        start = 0
        while True:
            end = data.find(self._delimiter, start)
            if end < 0:
                self._collect(data, start, len(data))
                return bodies
            self._collect(data, start, end)
            if self._discarding:
                self._discarding = False
            elif self._buffer:
                body = self._finish(bytes(self._buffer))
                if body is not None:
                    bodies.append(body)
            self._buffer.clear()
            start = end + 1

    def _collect(self, data: bytes, start: int, end: int) -> None:
        if self._discarding or start == end:
            return
        # The two delimiters count towards the size on the wire.
        if len(self._buffer) + (end - start) + 2 > self.max_frame_size:
            self.counters.oversized_frames += 1
            self._discarding = True
            self._buffer.clear()
            return
        self._buffer += data[start:end]

    def _finish(self, raw: bytes) -> bytes | None:
        counters = self.counters
        try:
            frame = self._unstuff(raw)
        except FramingError:
            counters.garbled_frames += 1
            return None
        if len(frame) <= CRC_SIZE:
            counters.garbled_frames += 1
            return None
        body, check = frame[:-CRC_SIZE], frame[-CRC_SIZE:]
        if _crc(body) != check:
            counters.bad_crc_frames += 1
            return None
        counters.frames_received += 1
        return body

    def _unstuff(self, raw: bytes) -> bytes:
        raise NotImplementedError


class SlipDecoder(FrameDecoder):
    """:class:`FrameDecoder` for SLIP frames (END-delimited, RFC 1055 escapes)."""

    delimiter = SLIP_END

    def _unstuff(self, raw: bytes) -> bytes:
        return slip_unstuff(raw)


class CobsDecoder(FrameDecoder):
    """:class:`FrameDecoder` for COBS frames (zero-delimited)."""

    delimiter = 0

    def _unstuff(self, raw: bytes) -> bytes:
        return cobs_unstuff(raw)


def make_decoder(
    framing: Framing, max_frame_size: int, counters: FrameCounters | None = None
) -> FrameDecoder:
    """A fresh decoder for ``framing`` ("slip" or "cobs")."""
    if _check_framing(framing) == "slip":
        return SlipDecoder(max_frame_size, counters)
    return CobsDecoder(max_frame_size, counters)


# -- segments ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """One frame's worth of a bundle."""

    transfer: int
    index: int
    last: bool
    payload: bytes


def pack_segment(transfer: int, index: int, last: bool, payload: bytes) -> bytes:
    """A segment frame's body (header and payload; the encoder adds the CRC)."""
    if not 0 <= transfer <= 0xFF:
        raise ValueError(f"transfer number {transfer} out of range")
    if not 0 <= index < MAX_SEGMENTS:
        raise ValueError(f"segment index {index} out of range")
    word = index | (_LAST if last else 0)
    return bytes((_SEGMENT_TYPE_BYTE, transfer, word >> 8, word & 0xFF)) + payload


def parse_segment(body: bytes) -> Segment:
    """The segment in a frame body; :class:`FramingError` if it is not a version-1 segment."""
    if len(body) < HEADER_SIZE:
        raise FramingError(f"frame body of {len(body)} bytes is shorter than a header")
    if body[0] >> 4 != FRAME_VERSION:
        raise FramingError(f"frame format version {body[0] >> 4}")
    if body[0] & 0x0F != FrameType.BUNDLE_SEGMENT:
        raise FramingError(f"frame type {body[0] & 0x0F}")
    word = (body[2] << 8) | body[3]
    return Segment(body[1], word & ~_LAST, bool(word & _LAST), bytes(body[HEADER_SIZE:]))


def min_payload_per_frame(framing: Framing, max_frame_size: int) -> int:
    """Bundle bytes every frame carries at least, whatever the data (worst-case stuffing)."""
    room = max_frame_size - 2  # delimiters
    if framing == "slip":
        return max(0, room // 2 - HEADER_SIZE - CRC_SIZE)  # every byte may need escaping
    return max(0, room - 1 - room // 254 - HEADER_SIZE - CRC_SIZE)


class Segmenter:
    """Cuts bundles into wire frames no longer than ``max_frame_size``, each as full as fits."""

    def __init__(self, framing: Framing, max_frame_size: int, *, first_transfer: int = 0) -> None:
        self.framing = _check_framing(framing)
        if max_frame_size < MIN_FRAME_SIZE:
            raise ConfigError(f"max frame size must be at least {MIN_FRAME_SIZE} bytes")
        self.max_frame_size = max_frame_size
        # A driver starts from a random number so that a restarted sender's first bundle is
        # unlikely to carry the number of the one it was sending before.
        self._next_transfer = first_transfer & 0xFF

    def max_bundle_size(self) -> int:
        """The largest bundle whose frames are sure to fit in the segment index space."""
        return MAX_SEGMENTS * min_payload_per_frame(self.framing, self.max_frame_size)

    def frames(self, bundle: bytes) -> Iterator[bytes]:
        """The wire frames that carry ``bundle``, in order (a new transfer number each call)."""
        transfer = self._next_transfer
        self._next_transfer = (transfer + 1) & 0xFF
        data = bytes(bundle)
        total = len(data)
        # Without any stuffing this much payload would fit; stuffing may make it less.
        ceiling = self.max_frame_size - 2 - HEADER_SIZE - CRC_SIZE
        if self.framing == "cobs":
            ceiling -= 1 + (self.max_frame_size - 2) // 254
        offset = 0
        index = 0
        while True:
            if index >= MAX_SEGMENTS:
                raise FramingError(
                    f"a bundle of {total} bytes needs more than {MAX_SEGMENTS} frames"
                )
            size = min(ceiling, total - offset)
            while True:
                last = offset + size == total
                wire = encode_frame(
                    pack_segment(transfer, index, last, data[offset : offset + size]), self.framing
                )
                excess = len(wire) - self.max_frame_size
                if excess <= 0:
                    break
                if size <= 1:  # cannot happen for max_frame_size >= MIN_FRAME_SIZE
                    raise FramingError("no payload fits in a frame")
                # Each byte taken out shortens the frame by one or two bytes (escaped); the CRC
                # and the header may stuff differently, so measure again.
                size = max(1, size - (excess + 1) // 2)
            yield wire
            offset += size
            index += 1
            if last:
                return


class Reassembler:
    """Joins segments into bundles; one bundle at a time, as the sender sends them.

    A sender finishes one bundle before it starts the next, so a segment 0 abandons any
    bundle still incomplete, and a gap in the indexes abandons the bundle it falls in. A
    bundle also goes if it grows past ``max_bundle_size`` or if no segment of it arrives for
    ``timeout_ms``. Memory is bounded by ``max_bundle_size``.
    """

    def __init__(
        self, max_bundle_size: int, timeout_ms: int, counters: FrameCounters | None = None
    ) -> None:
        if max_bundle_size < 1:
            raise ConfigError("max bundle size must be at least 1 byte")
        if timeout_ms < 1:
            raise ConfigError("reassembly timeout must be at least 1 ms")
        self.max_bundle_size = max_bundle_size
        self.timeout_ms = timeout_ms
        self.counters = counters if counters is not None else FrameCounters()
        self._transfer: int | None = None
        self._next_index = 0
        self._parts: list[bytes] = []
        self._size = 0
        self._deadline_at: int | None = None

    @property
    def in_progress(self) -> bool:
        return self._transfer is not None

    def receive_segment(self, segment: Segment, now: int) -> bytes | None:
        """The complete bundle if ``segment`` finishes one, else ``None``."""
        counters = self.counters
        if segment.index == 0:
            # Always a fresh start, even with the transfer number in progress: a sender that
            # restarted numbers from the beginning, and mixing two bundles would be worse than
            # losing one.
            if self._transfer is not None:
                counters.incomplete_bundles += 1
            self._start(segment.transfer)
        elif self._transfer is None or segment.transfer != self._transfer:
            counters.orphan_segments += 1
            return None
        elif segment.index == self._next_index - 1:
            counters.duplicate_segments += 1
            return None
        elif segment.index != self._next_index:
            counters.incomplete_bundles += 1
            counters.orphan_segments += 1
            self._reset()
            return None
        self._size += len(segment.payload)
        if self._size > self.max_bundle_size:
            counters.oversized_bundles += 1
            self._reset()
            return None
        self._parts.append(segment.payload)
        self._next_index += 1
        self._deadline_at = now + self.timeout_ms
        if not segment.last:
            return None
        bundle = b"".join(self._parts)
        self._reset()
        return bundle

    def get_timer(self) -> int | None:
        """When :meth:`handle_timer` must run next (``None``: nothing pending)."""
        return self._deadline_at

    def handle_timer(self, now: int) -> None:
        """Abandon the bundle in progress if its time is up."""
        if self._deadline_at is not None and now >= self._deadline_at:
            self.counters.reassembly_timeouts += 1
            self._reset()

    def _start(self, transfer: int) -> None:
        self._reset()
        self._transfer = transfer

    def _reset(self) -> None:
        self._transfer = None
        self._next_index = 0
        self._parts = []
        self._size = 0
        self._deadline_at = None


class FrameReceiver:
    """Everything a receiving end does: bytes in (with ``now``), whole bundles out."""

    def __init__(
        self,
        framing: Framing,
        *,
        max_frame_size: int,
        max_bundle_size: int,
        reassembly_timeout_ms: int,
        counters: FrameCounters | None = None,
    ) -> None:
        self.counters = counters if counters is not None else FrameCounters()
        self.decoder = make_decoder(framing, max_frame_size, self.counters)
        self.reassembler = Reassembler(max_bundle_size, reassembly_timeout_ms, self.counters)

    def receive_data(self, data: bytes, now: int) -> list[bytes]:
        """The bundles that ``data`` completes, in order; never raises for bad input."""
        self.handle_timer(now)
        bundles: list[bytes] = []
        for body in self.decoder.feed(data):
            try:
                segment = parse_segment(body)
            except FramingError:
                self.counters.ignored_frames += 1
                continue
            bundle = self.reassembler.receive_segment(segment, now)
            if bundle is not None:
                bundles.append(bundle)
        return bundles

    def get_timer(self) -> int | None:
        return self.reassembler.get_timer()

    def handle_timer(self, now: int) -> None:
        self.reassembler.handle_timer(now)
