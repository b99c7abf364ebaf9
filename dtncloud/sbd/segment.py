"""Bundles in SBD messages: a 4-byte segmentation header, and reassembly on the far side.

A bundle that fits one message is sent as it is. A larger one is cut into pieces, each with
this header in front::

    byte 0   0xD0 | tag bits 11..8    (high nibble 0xD marks a segment)
    byte 1   tag bits 7..0            (tells the pieces of different bundles apart)
    byte 2   index of this piece      (0-based)
    byte 3   index of the last piece  (so a bundle has at most 256 pieces)

A receiver tells the two kinds apart by the first byte: a BPv7 bundle starts with 0x9F (a
CBOR indefinite array) and a BPv6 bundle with 0x06, never with 0xD0-0xDF. A bundle that
happens to start with such a byte is sent segmented, even when it fits one message.

Why not BPv7 fragments: each fragment repeats the primary block (30 to 60 bytes for short
``ipn`` IDs, more for ``dtn`` names) of a message of 270 or 340 bytes, and SBD is billed per
50 bytes, so fragments would cost a credit or more per message. Four bytes cost nothing in
most messages. docs/sbd.md has the longer argument.
"""

from __future__ import annotations

import zlib
from collections import OrderedDict
from dataclasses import dataclass, field

from dtncloud.sbd.cost import CREDIT_BYTES

__all__ = [
    "HEADER_SIZE",
    "MAX_PIECES",
    "TAG_MASK",
    "Reassembler",
    "ReassemblyStats",
    "Segment",
    "SegmentError",
    "is_segment",
    "max_bundle_size",
    "parse_segment",
    "piece_capacity",
    "split_bundle",
]

HEADER_SIZE = 4
MAX_PIECES = 256
TAG_MASK = 0x0FFF
_MARK = 0xD0


class SegmentError(ValueError):
    """A message that claims to be a segment but cannot be one."""


@dataclass(frozen=True)
class Segment:
    tag: int
    index: int
    last: int
    data: bytes


def is_segment(message: bytes) -> bool:
    """Whether ``message`` carries a segmentation header (rather than a whole bundle)."""
    return bool(message) and message[0] & 0xF0 == _MARK


def encode_segment(tag: int, index: int, last: int, data: bytes) -> bytes:
    if not 0 <= index <= last < MAX_PIECES or not 0 <= tag <= TAG_MASK:
        raise ValueError("segment header field out of range")
    return bytes((_MARK | tag >> 8, tag & 0xFF, index, last)) + data


def parse_segment(message: bytes) -> Segment:
    """The header and data of a segment; raises :class:`SegmentError` for a bad one."""
    if len(message) < HEADER_SIZE + 1 or not is_segment(message):
        raise SegmentError("too short or not a segment")
    tag = (message[0] & 0x0F) << 8 | message[1]
    index, last = message[2], message[3]
    if index > last:
        raise SegmentError(f"piece index {index} is beyond the last index {last}")
    return Segment(tag, index, last, bytes(message[HEADER_SIZE:]))


def piece_capacity(piece_size: int, *, prefix: int = 0, credit_aligned: bool = True) -> int:
    """Bundle bytes per segment for messages of at most ``piece_size`` bytes (what arrives).

    ``prefix`` bytes go in front of every message sent (a RockBLOCK ``RB`` address) and are
    billed but not delivered. With ``credit_aligned`` the billed size is rounded down to a
    whole number of credits when that leaves room for data: a 270-byte message costs 6
    credits for 266 bytes of bundle, a 250-byte one 5 credits for 246 (49 against 44 bytes
    per credit).
    """
    capacity = piece_size - HEADER_SIZE
    if credit_aligned:
        billed = (piece_size + prefix) // CREDIT_BYTES * CREDIT_BYTES
        aligned = billed - prefix - HEADER_SIZE
        if aligned >= CREDIT_BYTES // 2:
            capacity = aligned
    if capacity < 1:
        raise ValueError(f"a piece size of {piece_size} bytes leaves no room for data")
    return capacity


def max_bundle_size(capacity: int) -> int:
    """The largest bundle that can be cut into pieces of ``capacity`` data bytes."""
    return capacity * MAX_PIECES


def split_bundle(bundle: bytes, *, tag: int, piece_size: int, capacity: int) -> list[bytes]:
    """The messages that carry ``bundle``: itself if it fits ``piece_size`` and does not look
    like a segment, else segments of at most ``capacity`` data bytes each (all full but the
    last, which is the cheapest cut when ``capacity`` is credit-aligned)."""
    if not bundle:
        raise ValueError("an empty bundle")
    if len(bundle) <= piece_size and not is_segment(bundle):
        return [bundle]
    count = -(-len(bundle) // capacity)
    if count > MAX_PIECES:
        raise ValueError(f"{len(bundle)} bytes need {count} pieces; at most {MAX_PIECES}")
    return [
        encode_segment(tag, index, count - 1, bundle[index * capacity : (index + 1) * capacity])
        for index in range(count)
    ]


# -- reassembly --------------------------------------------------------------------------------


@dataclass
class ReassemblyStats:
    bundles: int = 0
    pieces: int = 0
    duplicates: int = 0
    expired: int = 0
    evicted: int = 0
    invalid: int = 0


@dataclass
class _Partial:
    last: int
    updated_at: int
    pieces: dict[int, bytes] = field(default_factory=dict)
    size: int = 0


@dataclass
class _Completed:
    last: int
    done_at: int
    crcs: dict[int, int]


class Reassembler:
    """Puts segmented bundles back together; whole bundles pass straight through.

    Bounded: at most ``max_partials`` bundles in progress holding at most ``max_bytes``
    between them; the least recently advanced is dropped to make room. A partial bundle that
    gets no new piece for ``timeout_ms`` expires (see :meth:`get_timer`). Duplicate pieces
    are ignored, also late ones of a bundle completed in the last ``timeout_ms`` (up to
    ``remember`` of them), so a retransmitted piece does not start a new bundle. A piece that
    disagrees with what is held under its tag (another piece count, other bytes at the same
    index) means the tag was reused: the old partial is dropped.
    """

    def __init__(
        self,
        *,
        timeout_ms: int,
        max_partials: int = 8,
        max_bytes: int = 1 << 20,
        remember: int = 64,
    ) -> None:
        if timeout_ms <= 0 or max_partials < 1 or max_bytes < 1:
            raise ValueError("reassembly limits must be positive")
        self.timeout_ms = timeout_ms
        self.max_partials = max_partials
        self.max_bytes = max_bytes
        self.remember = remember
        self.stats = ReassemblyStats()
        self._partials: OrderedDict[int, _Partial] = OrderedDict()
        self._completed: OrderedDict[int, _Completed] = OrderedDict()
        self._held = 0

    @property
    def partial_bundles(self) -> int:
        return len(self._partials)

    @property
    def held_bytes(self) -> int:
        return self._held

    def add(self, message: bytes, now: int) -> bytes | None:
        """Take one received message; returns a whole bundle when one is complete."""
        if not message:
            self.stats.invalid += 1
            return None
        if not is_segment(message):
            self.stats.bundles += 1
            return bytes(message)
        try:
            segment = parse_segment(message)
        except SegmentError:
            self.stats.invalid += 1
            return None
        self.stats.pieces += 1
        self.handle_timer(now)
        if self._is_late_duplicate(segment, now):
            self.stats.duplicates += 1
            return None
        partial = self._partials.get(segment.tag)
        if partial is not None and partial.last != segment.last:
            self._drop(segment.tag)
            partial = None
        if partial is not None and segment.index in partial.pieces:
            if partial.pieces[segment.index] == segment.data:
                self.stats.duplicates += 1
                return None
            self._drop(segment.tag)
            partial = None
        if partial is None:
            partial = _Partial(segment.last, now)
            self._partials[segment.tag] = partial
        partial.pieces[segment.index] = segment.data
        partial.size += len(segment.data)
        partial.updated_at = now
        self._held += len(segment.data)
        self._partials.move_to_end(segment.tag)
        if len(partial.pieces) == partial.last + 1:
            return self._complete(segment.tag, partial, now)
        self._enforce_limits(segment.tag)
        return None

    def get_timer(self) -> int | None:
        """When the least recently advanced partial bundle expires."""
        for partial in self._partials.values():
            return partial.updated_at + self.timeout_ms
        return None

    def handle_timer(self, now: int) -> int:
        """Drop expired partial bundles; returns how many."""
        count = 0
        while self._partials:
            tag, partial = next(iter(self._partials.items()))
            if partial.updated_at + self.timeout_ms > now:
                break
            self._drop(tag)
            count += 1
        self.stats.expired += count
        while self._completed:
            tag, done = next(iter(self._completed.items()))
            if done.done_at + self.timeout_ms > now:
                break
            del self._completed[tag]
        return count

    def _is_late_duplicate(self, segment: Segment, now: int) -> bool:
        done = self._completed.get(segment.tag)
        if done is None:
            return False
        if done.last == segment.last and done.crcs.get(segment.index) == zlib.crc32(segment.data):
            return True
        del self._completed[segment.tag]  # the tag is in use again
        return False

    def _complete(self, tag: int, partial: _Partial, now: int) -> bytes:
        bundle = b"".join(partial.pieces[index] for index in range(partial.last + 1))
        crcs = {index: zlib.crc32(data) for index, data in partial.pieces.items()}
        self._drop(tag)
        self._completed[tag] = _Completed(partial.last, now, crcs)
        self._completed.move_to_end(tag)
        while len(self._completed) > self.remember:
            self._completed.popitem(last=False)
        self.stats.bundles += 1
        return bundle

    def _enforce_limits(self, keep: int) -> None:
        while len(self._partials) > self.max_partials or self._held > self.max_bytes:
            victim = next(iter(self._partials))
            if victim == keep and len(self._partials) == 1:
                # This bundle alone is over the byte limit: it can never be completed.
                self._drop(victim)
                self.stats.evicted += 1
                return
            if victim == keep:
                victim = list(self._partials)[1]
            self._drop(victim)
            self.stats.evicted += 1

    def _drop(self, tag: int) -> None:
        partial = self._partials.pop(tag, None)
        if partial is not None:
            self._held -= partial.size
