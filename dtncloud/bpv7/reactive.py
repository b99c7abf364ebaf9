"""Reactive fragmentation (RFC 9171 section 5.8): what to do with a transfer that broke.

When a link fails part-way through a bundle, the bytes the receiver acknowledged need not be
sent again. Both ends cut the bundle at the same payload offset:

- the receiver turns the prefix it holds into a fragment with :func:`prefix_fragment`;
- the sender learns from the convergence layer how many bytes were acknowledged, turns that
  into a payload offset with :func:`acknowledged_payload`, and keeps only the rest
  (:func:`~dtncloud.bpv7.fragment.split_at`).

Both work on the encoding that was on the wire, so the offsets agree even though the sender
rewrote extension blocks (previous node, hop count, age) just before sending.

The payload of a prefix cannot be checked against the payload block's CRC, which covers the
whole block; the transport's reliability up to the acknowledged byte is what vouches for it.
The primary and extension blocks before it are complete and are checked as usual.
"""

from __future__ import annotations

from dtncloud.bpv7.blocks import CanonicalBlock
from dtncloud.bpv7.bundle import Bundle
from dtncloud.bpv7.decode import DEFAULT_MAX_BLOCKS, decode_bundle
from dtncloud.bpv7.flags import BlockFlag, BundleFlag, CrcType
from dtncloud.cborutil import (
    MAJOR_ARRAY,
    MAJOR_BYTES,
    MAJOR_UINT,
    CborError,
    DecodeBudget,
    decode_item,
    encode_uint,
    read_head,
)
from dtncloud.cborutil import head as cbor_head
from dtncloud.errors import BundleDecodeError, FragmentError

__all__ = ["acknowledged_payload", "prefix_fragment"]

_CRC_BYTES = {CrcType.NONE: 0, CrcType.CRC16: 3, CrcType.CRC32C: 5}  # bstr head + value
_INDEFINITE_ARRAY = 0x9F


def acknowledged_payload(wire: bytes, acknowledged: int) -> int:
    """How many leading payload bytes of the encoded bundle ``wire`` lie within its first
    ``acknowledged`` bytes (0 if the acknowledgement stops before the payload)."""
    bundle = decode_bundle(wire, max_size=max(len(wire), 1))
    payload = bundle.payload_block
    # The payload block comes last: its data, its CRC (if any), then the array's break byte.
    data_end = len(wire) - 1 - _CRC_BYTES.get(CrcType(payload.crc_type), 0)
    data_start = data_end - len(payload.data)
    return max(0, min(len(payload.data), acknowledged - data_start))


def _uint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    major, _, value, pos = read_head(buf, pos, end)
    if major != MAJOR_UINT or value is None:
        raise CborError("expected an unsigned integer")
    return value, pos


def prefix_fragment(prefix: bytes, *, max_blocks: int = DEFAULT_MAX_BLOCKS) -> Bundle | None:
    """The fragment made of what a broken transfer delivered, or None when the prefix does not
    reach past the payload block's head (nothing worth keeping), holds the whole payload,
    belongs to a bundle that must not be fragmented, or is not a BPv7 bundle.

    Raises :class:`~dtncloud.errors.BundleDecodeError` when the complete blocks in the prefix
    are invalid (a bad CRC, an unknown version, ...).
    """
    end = len(prefix)
    if end < 2 or prefix[0] != _INDEFINITE_ARRAY:
        return None
    budget = DecodeBudget(items=64 * max_blocks)
    try:
        pos = decode_item(prefix, 1, end, budget)[1]  # the primary block, complete
        complete_end = pos
        for _ in range(max_blocks):
            major, _, count, pos = read_head(prefix, pos, end)
            if major != MAJOR_ARRAY or count not in (5, 6):
                return None
            type_code, pos = _uint(prefix, pos, end)
            number, pos = _uint(prefix, pos, end)
            flags, pos = _uint(prefix, pos, end)
            crc_type, pos = _uint(prefix, pos, end)
            if type_code != 1:
                for _ in range(count - 4):
                    pos = decode_item(prefix, pos, end, budget)[1]
                complete_end = pos
                continue
            major, _, length, data_start = read_head(prefix, pos, end)
            if major != MAJOR_BYTES or length is None:
                return None
            available = end - data_start
            if available <= 0 or available >= length:
                return None
            break
        else:
            return None
    except CborError:
        return None
    # Decode the complete blocks as a bundle with an empty payload, checking their CRCs.
    empty_payload = (
        cbor_head(MAJOR_ARRAY, 5)
        + encode_uint(1)
        + encode_uint(number)
        + encode_uint(flags)
        + encode_uint(0)
        + b"\x40"
    )
    skeleton = prefix[:complete_end] + empty_payload + b"\xff"
    skeleton_bundle = decode_bundle(skeleton, max_size=len(skeleton), max_blocks=max_blocks)
    try:
        crc = CrcType(crc_type)
    except ValueError:
        raise BundleDecodeError(f"payload block with unknown CRC type {crc_type}") from None
    primary = skeleton_bundle.primary
    if primary.flags & (BundleFlag.MUST_NOT_FRAGMENT | BundleFlag.ADMIN_RECORD):
        # an administrative record (a BPDU, a custody signal) is sent again whole, under a
        # new timestamp: a piece of it would never be completed
        return None
    base = primary.fragment_offset or 0
    total = primary.total_adu_length if primary.fragment_offset is not None else length
    if total is None:
        raise FragmentError("fragment without a total application data unit length")
    if base + length > total:
        raise BundleDecodeError(
            f"payload of {length} bytes at offset {base} overruns the total length {total}"
        )
    fragment_primary = primary.replace(
        flags=BundleFlag(int(primary.flags) | BundleFlag.IS_FRAGMENT),
        fragment_offset=base,
        total_adu_length=total,
    )
    payload = CanonicalBlock(1, number, prefix[data_start:end], BlockFlag(flags), crc)
    blocks = (*skeleton_bundle.extension_blocks, payload)
    return Bundle(fragment_primary, blocks)
