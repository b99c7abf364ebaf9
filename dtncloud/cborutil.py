"""Small CBOR building blocks shared by the codecs.

The codecs lean on cbor2 (a C extension) for the bulk of decoding; this module holds the few
things cbor2 does not give us: RFC 8949 heads with their exact encoded lengths (needed to locate
blocks inside a bundle for CRCs and BPSec), and a bounded, position-aware decoder
(:func:`decode_item`) for inputs cbor2 cannot be trusted with (huge ones, where its memory use per
input byte would be unbounded, and non-canonical ones, where we need exact block extents).
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Any

MAX_UINT64 = 0xFFFF_FFFF_FFFF_FFFF

MAJOR_UINT = 0
MAJOR_NINT = 1
MAJOR_BYTES = 2
MAJOR_TEXT = 3
MAJOR_ARRAY = 4
MAJOR_MAP = 5
MAJOR_TAG = 6
MAJOR_SIMPLE = 7

BREAK = 0xFF
INDEFINITE_ARRAY = 0x9F

# One-byte heads, indexed [major][value] for value < 24 (immutable, so not module state).
_SHORT_HEADS: tuple[tuple[bytes, ...], ...] = tuple(
    tuple(bytes(((major << 5) | value,)) for value in range(24)) for major in range(8)
)


def head(major: int, value: int) -> bytes:
    """The shortest-form (deterministic) CBOR head for ``major`` with argument ``value``.

    Raises :class:`ValueError` unless ``0 <= value <= 2**64 - 1`` (a negative integer is
    encoded as major type 1 with argument ``-1 - n``; that is the caller's job).
    """
    if value < 0:
        # Without this check a negative value would index the table of short heads from its end.
        raise ValueError(f"CBOR argument {value} is negative")
    if value < 24:
        return _SHORT_HEADS[major][value]
    mt = major << 5
    if value < 0x100:
        return bytes((mt | 24, value))
    if value < 0x10000:
        return bytes((mt | 25,)) + value.to_bytes(2, "big")
    if value < 0x1_0000_0000:
        return bytes((mt | 26,)) + value.to_bytes(4, "big")
    if value <= MAX_UINT64:
        return bytes((mt | 27,)) + value.to_bytes(8, "big")
    raise ValueError(f"CBOR argument {value} does not fit in 64 bits")


def head_len(value: int) -> int:
    """Length in bytes of the shortest-form head carrying ``value``."""
    if value < 24:
        return 1
    if value < 0x100:
        return 2
    if value < 0x10000:
        return 3
    if value < 0x1_0000_0000:
        return 5
    return 9


def encode_uint(value: int) -> bytes:
    return head(MAJOR_UINT, value)


def encode_bytes(value: bytes) -> bytes:
    return head(MAJOR_BYTES, len(value)) + value


def encode_text(value: str) -> bytes:
    raw = value.encode("utf-8")
    return head(MAJOR_TEXT, len(raw)) + raw


class CborError(ValueError):
    """Malformed or over-limit CBOR met by :func:`decode_item`."""


@dataclass(frozen=True, slots=True)
class Tagged:
    """A tagged item as returned by :func:`decode_item` (cbor2 returns ``CBORTag``)."""

    tag: int
    value: Any


class Undefined:
    """The CBOR ``undefined`` simple value."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "undefined"


UNDEFINED = Undefined()


@dataclass(slots=True)
class DecodeBudget:
    """Limits for :func:`decode_item`: nesting depth and the total number of data items.

    Every data item costs one unit, so the work and the memory a hostile input can cause are
    proportional to the budget, never to the lengths it announces.
    """

    items: int
    max_depth: int = 16

    def spend(self) -> None:
        self.items -= 1
        if self.items < 0:
            raise CborError("too many CBOR data items")


def read_head(buf: bytes | memoryview, pos: int, end: int) -> tuple[int, int, int | None, int]:
    """Read the head at ``pos``: ``(major, additional_info, argument, new_pos)``.

    ``argument`` is ``None`` for the indefinite-length marker (additional info 31).
    """
    if pos >= end:
        raise CborError("unexpected end of data")
    initial = buf[pos]
    major = initial >> 5
    info = initial & 0x1F
    pos += 1
    if info < 24:
        return major, info, info, pos
    if info == 31:
        return major, info, None, pos
    if info > 27:
        raise CborError(f"reserved additional information value {info}")
    size = 1 << (info - 24)
    if pos + size > end:
        raise CborError("unexpected end of data in a CBOR head")
    return major, info, int.from_bytes(buf[pos : pos + size], "big"), pos + size


def decode_item(
    buf: bytes | memoryview, pos: int, end: int, budget: DecodeBudget, depth: int = 0
) -> tuple[Any, int]:
    """Decode one CBOR data item from ``buf[pos:end]``; return ``(value, new_pos)``.

    Pure Python and bounded: a declared length larger than the bytes that remain fails at once
    (nothing is allocated from an announced size), nesting is limited, and every item is charged
    to ``budget``. Maps decode to ``dict``, tags to :class:`Tagged`, byte strings to ``bytes``.
    """
    budget.spend()
    if depth > budget.max_depth:
        raise CborError("CBOR nesting too deep")
    major, info, arg, pos = read_head(buf, pos, end)
    if major == MAJOR_UINT:
        if arg is None:
            raise CborError("indefinite length on an integer")
        return arg, pos
    if major == MAJOR_NINT:
        if arg is None:
            raise CborError("indefinite length on an integer")
        return -1 - arg, pos
    if major in (MAJOR_BYTES, MAJOR_TEXT):
        if arg is None:
            return _decode_indefinite_string(buf, pos, end, major, budget, depth)
        if arg > end - pos:
            raise CborError(f"string of {arg} bytes overruns the data ({end - pos} left)")
        raw = bytes(buf[pos : pos + arg])
        if major == MAJOR_TEXT:
            try:
                return raw.decode("utf-8"), pos + arg
            except UnicodeDecodeError as exc:
                raise CborError("text string is not valid UTF-8") from exc
        return raw, pos + arg
    if major == MAJOR_ARRAY:
        items: list[Any] = []
        if arg is None:
            while True:
                if pos >= end:
                    raise CborError("unterminated indefinite-length array")
                if buf[pos] == BREAK:
                    return items, pos + 1
                value, pos = decode_item(buf, pos, end, budget, depth + 1)
                items.append(value)
        if arg > end - pos:  # every item needs at least one byte
            raise CborError(f"array of {arg} items overruns the data")
        for _ in range(arg):
            value, pos = decode_item(buf, pos, end, budget, depth + 1)
            items.append(value)
        return items, pos
    if major == MAJOR_MAP:
        mapping: dict[Any, Any] = {}
        count = arg
        while count is None or count > 0:
            if count is None:
                if pos >= end:
                    raise CborError("unterminated indefinite-length map")
                if buf[pos] == BREAK:
                    return mapping, pos + 1
            elif count > (end - pos) // 2:
                raise CborError(f"map of {count} pairs overruns the data")
            key, pos = decode_item(buf, pos, end, budget, depth + 1)
            value, pos = decode_item(buf, pos, end, budget, depth + 1)
            try:
                mapping[key] = value
            except TypeError as exc:
                raise CborError("unhashable CBOR map key") from exc
            if count is not None:
                count -= 1
        return mapping, pos
    if major == MAJOR_TAG:
        if arg is None:
            raise CborError("indefinite length on a tag")
        value, pos = decode_item(buf, pos, end, budget, depth + 1)
        return Tagged(arg, value), pos
    return _decode_simple(buf, pos, info, arg)


def _decode_indefinite_string(
    buf: bytes | memoryview, pos: int, end: int, major: int, budget: DecodeBudget, depth: int
) -> tuple[Any, int]:
    chunks: list[bytes] = []
    while True:
        if pos >= end:
            raise CborError("unterminated indefinite-length string")
        if buf[pos] == BREAK:
            raw = b"".join(chunks)
            pos += 1
            break
        budget.spend()
        chunk_major, _, size, pos = read_head(buf, pos, end)
        if chunk_major != major or size is None:
            raise CborError("bad chunk in an indefinite-length string")
        if size > end - pos:
            raise CborError("string chunk overruns the data")
        chunks.append(bytes(buf[pos : pos + size]))
        pos += size
    if major == MAJOR_TEXT:
        try:
            return raw.decode("utf-8"), pos
        except UnicodeDecodeError as exc:
            raise CborError("text string is not valid UTF-8") from exc
    return raw, pos


def _decode_simple(
    buf: bytes | memoryview, pos: int, info: int, arg: int | None
) -> tuple[Any, int]:
    """Major type 7: false, true, null, undefined and floats; other simple values are refused."""
    if arg is None:
        raise CborError("unexpected break code")
    if info == 25:
        return struct.unpack(">e", bytes(buf[pos - 2 : pos]))[0], pos
    if info == 26:
        return struct.unpack(">f", bytes(buf[pos - 4 : pos]))[0], pos
    if info == 27:
        value = struct.unpack(">d", bytes(buf[pos - 8 : pos]))[0]
        return (value if not math.isnan(value) else math.nan), pos
    if info == 24 and arg < 32:
        # RFC 8949 3.3: values below 32 take the one-byte form; f8 00..f8 1f is not well formed.
        raise CborError(
            f"unsupported CBOR simple value {arg} in two bytes (not well formed below 32)"
        )
    if arg == 20:
        return False, pos
    if arg == 21:
        return True, pos
    if arg == 22:
        return None, pos
    if arg == 23:
        return UNDEFINED, pos
    raise CborError(f"unsupported CBOR simple value {arg}")
