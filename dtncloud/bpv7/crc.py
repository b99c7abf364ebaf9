"""Block CRCs (RFC 9171 section 4.2.1): CRC-16/X.25 and CRC-32C, from C-accelerated libraries.

A block's CRC covers the block's whole CBOR encoding, with the CRC value bytes (not the bstr
head in front of them) taken as zeros. The value is stored big-endian in a 2- or 4-byte bstr.
"""

from __future__ import annotations

import anycrc
import crc32c as _crc32c

from dtncloud.bpv7.flags import CrcType

# anycrc's model object is a stateless calculator (the running value is passed in and out).
_CRC16_X25 = anycrc.Model("CRC16-IBM-SDLC")

#: Bytes of the CRC value field, by CRC type.
CRC_SIZE = (0, 2, 4)
#: The bstr heads in front of the CRC value: 0x42 (2 bytes) and 0x44 (4 bytes).
CRC_HEAD = (b"", b"\x42", b"\x44")
_ZEROS = (b"", b"\x00\x00", b"\x00\x00\x00\x00")


def crc16_x25(data: bytes | memoryview, value: int | None = None) -> int:
    """CRC-16/X.25 (IBM-SDLC) of ``data``, continuing from ``value`` if given."""
    return int(_CRC16_X25.calc(data, value))


def crc32c(data: bytes | memoryview, value: int = 0) -> int:
    """CRC-32C (Castagnoli) of ``data``, continuing from ``value`` if given."""
    return int(_crc32c.crc32c(data, value))


def crc_value(crc_type: int, *parts: bytes | memoryview) -> bytes:
    """The CRC of a block whose encoding up to its CRC value is ``parts`` (concatenated): the
    value bytes are taken as zeros. Returns the value, big-endian, as it is written."""
    if crc_type == CrcType.CRC32C:
        value = 0
        for part in parts:
            value = crc32c(part, value)
        return crc32c(_ZEROS[2], value).to_bytes(4, "big")
    value16: int | None = None
    for part in parts:
        value16 = crc16_x25(part, value16)
    return crc16_x25(_ZEROS[1], value16).to_bytes(2, "big")


def crc_matches(crc_type: int, encoded: bytes | memoryview) -> bool:
    """Whether the last 2 or 4 bytes of a block's whole encoding ``encoded`` are its CRC."""
    size = CRC_SIZE[crc_type]
    view = memoryview(encoded)
    return crc_value(crc_type, view[:-size]) == view[-size:]
