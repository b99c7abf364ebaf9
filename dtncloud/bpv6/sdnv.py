"""Self-Delimiting Numeric Values (RFC 6256) and a bounded reader for BPv6 wire data.

An SDNV carries an unsigned integer seven bits per byte, most significant group first; every
byte but the last has its high bit set. RFC 6256 puts no limit on the length, so a hostile
sender could send an endless run of ``0x80`` bytes. Here an SDNV must fit an unsigned 64-bit
integer: at most :data:`MAX_SDNV_LENGTH` bytes, and a value no larger than
:data:`MAX_SDNV_VALUE`. Encodings are minimal; on decoding, leading zero groups are accepted
(some implementations pad fields they patch later) as long as the 10-byte bound holds.

>>> encode_sdnv(0xABC).hex()
'953c'
>>> decode_sdnv(bytes.fromhex("953c"))
(2748, 2)
"""

from __future__ import annotations

from dtncloud.errors import BundleDecodeError, BundleEncodeError

__all__ = [
    "MAX_SDNV_LENGTH",
    "MAX_SDNV_VALUE",
    "ByteReader",
    "SdnvError",
    "decode_sdnv",
    "encode_sdnv",
    "sdnv_length",
]

#: The largest value an SDNV may carry here (an unsigned 64-bit integer).
MAX_SDNV_VALUE = (1 << 64) - 1
#: The most bytes an SDNV may take: ten groups of seven bits cover 64 bits.
MAX_SDNV_LENGTH = 10


class SdnvError(BundleDecodeError):
    """An SDNV is truncated, longer than :data:`MAX_SDNV_LENGTH` or above 64 bits."""


def encode_sdnv(value: int) -> bytes:
    """Return the minimal SDNV encoding of ``value`` (0 <= value <= :data:`MAX_SDNV_VALUE`).

    Raises :class:`~dtncloud.errors.BundleEncodeError` for anything else, including bools.
    """
    if not isinstance(value, int) or isinstance(value, bool):
        raise BundleEncodeError(f"an SDNV holds an int, not {type(value).__name__}")
    if value < 0 or value > MAX_SDNV_VALUE:
        raise BundleEncodeError(f"{value} does not fit an SDNV (0 to 2**64-1)")
    out = bytearray((value & 0x7F,))
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    out.reverse()
    return bytes(out)


def sdnv_length(value: int) -> int:
    """Return how many bytes :func:`encode_sdnv` uses for ``value`` (at least 1)."""
    return max(1, (value.bit_length() + 6) // 7)


def decode_sdnv(data: bytes | bytearray | memoryview, offset: int = 0) -> tuple[int, int]:
    """Decode the SDNV that starts at ``offset``; return ``(value, offset just past it)``.

    Raises :class:`SdnvError` if the data ends inside the SDNV, or if the SDNV runs longer
    than :data:`MAX_SDNV_LENGTH` bytes or exceeds 64 bits; at most ten bytes are looked at.
    """
    return _decode_sdnv(data, offset, len(data))


def _decode_sdnv(data: bytes | bytearray | memoryview, offset: int, end: int) -> tuple[int, int]:
    value = 0
    pos = offset
    while pos < end:
        byte = data[pos]
        pos += 1
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            if value > MAX_SDNV_VALUE:
                raise SdnvError(f"SDNV at offset {offset} exceeds 64 bits")
            return value, pos
        if pos - offset >= MAX_SDNV_LENGTH:
            raise SdnvError(
                f"SDNV at offset {offset} runs past {MAX_SDNV_LENGTH} bytes without ending"
            )
    raise SdnvError(f"data ends inside the SDNV at offset {offset}")


class ByteReader:
    """A cursor over an immutable byte string that never reads past its end.

    Every read checks the bytes that remain before it slices, so a length field that
    announces more data than there is fails at once, with a message that names the field,
    instead of allocating or raising :class:`IndexError`. Reads raise :class:`SdnvError` for
    bad SDNVs and :class:`~dtncloud.errors.BundleDecodeError` for truncation.
    """

    __slots__ = ("_data", "_end", "pos")

    def __init__(self, data: bytes, start: int = 0, end: int | None = None) -> None:
        self._data = data
        self._end = len(data) if end is None else end
        self.pos = start

    @property
    def remaining(self) -> int:
        """How many bytes are left before the end of the window."""
        return self._end - self.pos

    def at_end(self) -> bool:
        """True when every byte of the window has been read."""
        return self.pos >= self._end

    def sdnv(self, what: str) -> int:
        """Read one SDNV; ``what`` names the field in error messages."""
        try:
            value, pos = _decode_sdnv(self._data, self.pos, self._end)
        except SdnvError as exc:
            raise SdnvError(f"{what}: {exc}") from None
        self.pos = pos
        return value

    def byte(self, what: str) -> int:
        """Read one byte."""
        if self.pos >= self._end:
            raise BundleDecodeError(f"{what}: data ends at offset {self.pos}, one byte needed")
        value = self._data[self.pos]
        self.pos += 1
        return value

    def take(self, length: int, what: str) -> bytes:
        """Read ``length`` bytes, refusing at once if fewer remain."""
        if length > self.remaining:
            raise BundleDecodeError(
                f"{what}: {length} bytes announced at offset {self.pos}, "
                f"only {self.remaining} remain"
            )
        start = self.pos
        self.pos += length
        return self._data[start : self.pos]
