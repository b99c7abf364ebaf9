"""BPv7 encoding: deterministic CBOR (RFC 8949 section 4.2.1) in an indefinite-length array."""

from __future__ import annotations

from dtncloud.bpv7.blocks import CanonicalBlock, PrimaryBlock
from dtncloud.bpv7.bundle import Bundle
from dtncloud.bpv7.crc import CRC_HEAD, CRC_SIZE, crc_value
from dtncloud.bpv7.validate import check_bundle
from dtncloud.cborutil import MAJOR_BYTES, MAX_UINT64, encode_uint, head
from dtncloud.errors import BundleEncodeError, InvalidBundle

_BUNDLE_START = b"\x9f"
_BUNDLE_END = b"\xff"


def _uint(name: str, value: int) -> bytes:
    if type(value) is not int or not 0 <= value <= MAX_UINT64:
        if isinstance(value, int) and 0 <= value <= MAX_UINT64:  # IntFlag / IntEnum
            return encode_uint(int(value))
        raise BundleEncodeError(f"{name} must be an unsigned 64-bit integer, not {value!r}")
    return encode_uint(value)


def encode_primary(primary: PrimaryBlock) -> bytes:
    """The primary block's encoding, CRC included."""
    crc_type = primary.crc_type
    if crc_type not in (0, 1, 2):
        raise BundleEncodeError(f"unknown CRC type {crc_type!r}")
    fragment = primary.fragment_offset is not None
    if fragment != (primary.total_adu_length is not None):
        raise BundleEncodeError("fragment offset and total ADU length go together")
    count = 8 + (2 if fragment else 0) + (1 if crc_type else 0)
    parts = [
        bytes((0x80 | count, 7)),
        _uint("bundle flags", primary.flags),
        bytes((crc_type,)),
        primary.destination.to_cbor(),
        primary.source.to_cbor(),
        primary.report_to.to_cbor(),
        b"\x82",
        _uint("creation time", primary.creation_time),
        _uint("sequence number", primary.sequence),
        _uint("lifetime", primary.lifetime),
    ]
    if fragment:
        parts.append(_uint("fragment offset", primary.fragment_offset))  # type: ignore[arg-type]
        parts.append(_uint("total ADU length", primary.total_adu_length))  # type: ignore[arg-type]
    if not crc_type:
        return b"".join(parts)
    body = b"".join(parts)
    return body + CRC_HEAD[crc_type] + crc_value(crc_type, body, CRC_HEAD[crc_type])


def encode_block_header(block: CanonicalBlock) -> bytes:
    """Everything of a canonical block's encoding that precedes its data bytes."""
    crc_type = block.crc_type
    if crc_type not in (0, 1, 2):
        raise BundleEncodeError(f"unknown CRC type {crc_type!r} in block {block.number}")
    if type(block.data) is not bytes:
        raise BundleEncodeError(f"block {block.number} data must be bytes")
    return b"".join(
        (
            b"\x86" if crc_type else b"\x85",
            _uint("block type", block.type_code),
            _uint("block number", block.number),
            _uint("block flags", block.flags),
            bytes((crc_type,)),
            head(MAJOR_BYTES, len(block.data)),
        )
    )


def encode_block(block: CanonicalBlock) -> bytes:
    """A canonical block's encoding, CRC included."""
    header = encode_block_header(block)
    crc_type = block.crc_type
    if not crc_type:
        return header + block.data
    crc_head = CRC_HEAD[crc_type]
    return b"".join(
        (header, block.data, crc_head, crc_value(crc_type, header, block.data, crc_head))
    )


def encode_bundle(bundle: Bundle, *, validate: bool = True) -> bytes:
    """Encode ``bundle``. With ``validate`` (the default) a bundle that breaks an RFC 9171
    validity rule raises :class:`~dtncloud.errors.BundleEncodeError` instead of being sent."""
    if validate:
        try:
            check_bundle(bundle)
        except InvalidBundle as exc:
            raise BundleEncodeError(f"invalid bundle: {exc}") from exc
    parts = [_BUNDLE_START, encode_primary(bundle.primary)]
    parts.extend(encode_block(block) for block in bundle.blocks)
    parts.append(_BUNDLE_END)
    return b"".join(parts)


def encoded_size(bundle: Bundle) -> int:
    """``len(encode_bundle(bundle))``, computed without copying the payload."""
    size = 2 + len(encode_primary(bundle.primary))
    for block in bundle.blocks:
        crc_size = CRC_SIZE[block.crc_type]
        size += (
            len(encode_block_header(block)) + len(block.data) + (1 + crc_size if crc_size else 0)
        )
    return size
