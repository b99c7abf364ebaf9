"""BPv7 decoding: strict, bounded and fast.

Two paths produce the same result:

* The regular path (:mod:`dtncloud.bpv7.fastdecode`) hands the whole input to cbor2's C
  decoder and works out where each block lies from the decoded values, assuming deterministic
  encoding; the assumption is checked, not trusted. It takes the bundles almost every peer
  sends, and declines everything else.
* The exact path walks the input with :func:`dtncloud.cborutil.decode_item`, which records
  where every block starts and ends. It takes what the regular path declines: large inputs
  (cbor2 would allocate Python objects in proportion to the input before blocks could be
  counted), the non-deterministic encodings RFC 9171 lets a receiver accept (definite-length
  outer array, tag 55799, tag 24 around block data, long-form integers), and anything
  malformed, so that the error message is precise.

Both are bounded: the input size and block count are parameters, a length field that
announces more bytes than remain fails at once, and nesting and item counts are capped.
"""

from __future__ import annotations

from typing import Any

import cbor2

from dtncloud.bpv7.blocks import CanonicalBlock, PrimaryBlock
from dtncloud.bpv7.bundle import Bundle, BundleId
from dtncloud.bpv7.crc import CRC_SIZE, crc_matches
from dtncloud.bpv7.fastdecode import decode_regular
from dtncloud.bpv7.flags import BlockFlag, BundleFlag, CrcType
from dtncloud.bpv7.validate import check_rules
from dtncloud.cborutil import (
    BREAK,
    MAJOR_ARRAY,
    MAJOR_TAG,
    MAX_UINT64,
    CborError,
    DecodeBudget,
    Tagged,
    decode_item,
    read_head,
)
from dtncloud.eid import DEFAULT_EID_CACHE, EID, EidCache
from dtncloud.errors import BundleDecodeError, BundleTooLarge, CrcMismatch, InvalidEID

#: Default limit on the encoded size of one bundle held in memory.
DEFAULT_MAX_BUNDLE_SIZE = 64 * 1024 * 1024
#: Default limit on the number of blocks (primary block included).
DEFAULT_MAX_BLOCKS = 64
# Inputs up to this size go to cbor2 whole: its memory use is a small multiple of the input.
_FAST_PATH_LIMIT = 256 * 1024
_SELF_DESCRIBED_CBOR = b"\xd9\xd9\xf7"
_CRC_TYPES = (CrcType.NONE, CrcType.CRC16, CrcType.CRC32C)
_TAG_ENCODED_CBOR = 24

_loads = cbor2.loads


# A primary block is small; peeking never looks further than this.
_PEEK_LIMIT = 4096


def decode_bundle(
    data: bytes,
    *,
    max_size: int = DEFAULT_MAX_BUNDLE_SIZE,
    max_blocks: int = DEFAULT_MAX_BLOCKS,
    lenient: bool = False,
    eid_cache: EidCache = DEFAULT_EID_CACHE,
) -> Bundle:
    """Decode one BPv7 bundle, checking every CRC and the RFC 9171 validity rules.

    Raises a :class:`~dtncloud.errors.BundleDecodeError` (never anything else) whose
    ``reason`` is the status-report reason code for discarding the bundle. ``lenient``
    accepts the pre-RFC forms that older implementations send (see :func:`check_bundle`, and
    ``dtn:`` EIDs without ``//``). ``max_blocks`` counts the primary block too.
    """
    if type(data) is not bytes:
        if isinstance(data, bytes | bytearray | memoryview):
            data = bytes(data)
        else:
            raise TypeError(f"decode_bundle needs bytes, not {type(data).__name__}")
    size = len(data)
    if size > max_size:
        raise BundleTooLarge(f"bundle of {size} bytes exceeds the limit of {max_size} bytes")
    if size < 2:
        raise BundleDecodeError(f"{size} bytes cannot hold a bundle")
    if size <= _FAST_PATH_LIMIT and data[0] == 0x9F and data[-1] == BREAK:
        try:
            items = _loads(data)
        except Exception:  # cbor2 raises a handful of classes; the exact path explains
            items = None
        if type(items) is list:
            if len(items) > max_blocks:
                raise BundleTooLarge(f"bundle has more than {max_blocks} blocks")
            bundle = decode_regular(items, data, eid_cache, lenient)
            if bundle is not None:
                return bundle
    items, extents = _walk(data, max_blocks)
    bundle, crcs = _build(items, lenient, eid_cache)
    view = memoryview(data)
    for index, (crc, (start, end)) in enumerate(zip(crcs, extents, strict=True)):
        if crc is None:
            continue
        if not crc_matches(CrcType.CRC32C if len(crc) == 4 else CrcType.CRC16, view[start:end]):
            what = "primary block" if index == 0 else f"block {bundle.blocks[index - 1].number}"
            raise CrcMismatch(f"CRC of the {what} does not match")
    check_rules(bundle, lenient)
    return bundle


def peek_bundle_id(prefix: bytes | bytearray | memoryview) -> BundleId | None:
    """The ID of the bundle whose encoding starts with ``prefix``, or ``None`` if the prefix
    does not (yet) hold a whole, well-formed primary block.

    For a receiver that wants to refuse a bundle it already holds before the rest of it
    arrives (TCPCL XFER_REFUSE "completed"). Nothing is validated beyond the primary block,
    so ``None`` decides nothing: the whole bundle is checked by :func:`decode_bundle` later.
    """
    data = bytes(prefix[:_PEEK_LIMIT])
    pos = 3 if data.startswith(_SELF_DESCRIBED_CBOR) else 0
    try:
        major, _, _, pos = read_head(data, pos, len(data))
        if major != MAJOR_ARRAY:
            return None
        item, _ = decode_item(data, pos, len(data), DecodeBudget(items=64), 1)
        primary, _ = _primary(item, True, DEFAULT_EID_CACHE)
    except (CborError, BundleDecodeError):
        return None
    if primary.fragment_offset is not None:
        return None  # a fragment's ID needs its payload length, which comes later
    return BundleId(primary.source.node_id, primary.creation_time, primary.sequence)


def _walk(data: bytes, max_blocks: int) -> tuple[list[Any], list[tuple[int, int]]]:
    """The exact path: decode the outer array item by item, recording each block's extent."""
    end = len(data)
    pos = 3 if data.startswith(_SELF_DESCRIBED_CBOR) else 0
    budget = DecodeBudget(items=64 + 16 * max_blocks)
    try:
        major, _, count, pos = read_head(data, pos, end)
        if major == MAJOR_TAG:
            raise BundleDecodeError(f"unexpected CBOR tag {count} in front of the bundle")
        if major != MAJOR_ARRAY:
            hint = " (it looks like a BPv6 bundle)" if data[0] == 0x06 else ""
            raise BundleDecodeError(f"a bundle is a CBOR array; this input is not{hint}")
        items: list[Any] = []
        extents: list[tuple[int, int]] = []
        while True:
            if count is None:
                if pos >= end:
                    raise BundleDecodeError("bundle is truncated (no end marker)")
                if data[pos] == BREAK:
                    pos += 1
                    break
            elif len(items) == count:
                break
            if len(items) >= max_blocks:
                raise BundleTooLarge(f"bundle has more than {max_blocks} blocks")
            start = pos
            value, pos = decode_item(data, pos, end, budget, 1)
            items.append(value)
            extents.append((start, pos))
    except CborError as exc:
        raise BundleDecodeError(f"malformed CBOR: {exc}") from exc
    if pos != end:
        raise BundleDecodeError(f"{end - pos} bytes of trailing data after the bundle")
    return items, extents


def _build(items: list[Any], lenient: bool, eids: EidCache) -> tuple[Bundle, list[bytes | None]]:
    """The bundle from decoded items, and each block's CRC value as sent (primary first)."""
    if len(items) < 2:
        raise BundleDecodeError("a bundle needs a primary block and a payload block")
    primary, crc = _primary(items[0], lenient, eids)
    crcs = [crc]
    blocks = []
    for item in items[1:]:
        block, crc = _canonical(item)
        blocks.append(block)
        crcs.append(crc)
    return Bundle(primary, tuple(blocks)), crcs


def _eid(item: Any, lenient: bool, eids: EidCache, role: str) -> EID:
    try:
        return eids.lookup(item, lenient)[0]
    except InvalidEID as exc:
        raise BundleDecodeError(f"primary block {role}: {exc}") from exc


def _primary(item: Any, lenient: bool, eids: EidCache) -> tuple[PrimaryBlock, bytes | None]:
    if type(item) is not list:
        raise BundleDecodeError("the primary block must be a CBOR array")
    count = len(item)
    if not 8 <= count <= 11:
        raise BundleDecodeError(f"the primary block has {count} items (8 to 11 allowed)")
    version, flags, crc_type, destination, source, report_to, timestamp, lifetime = item[:8]
    if version != 7 or type(version) is not int:
        raise BundleDecodeError(f"unsupported bundle protocol version {version!r:.20}")
    if type(flags) is not int or type(crc_type) is not int or type(lifetime) is not int:
        raise BundleDecodeError("primary block flags, CRC type and lifetime must be integers")
    if (flags | lifetime) < 0 or flags > MAX_UINT64 or lifetime > MAX_UINT64:
        raise BundleDecodeError("primary block integers must be unsigned 64-bit")
    if crc_type not in (0, 1, 2):
        raise BundleDecodeError(f"unknown CRC type {crc_type} in the primary block")
    is_fragment = flags & 1
    expected = 8 + (2 if is_fragment else 0) + (1 if crc_type else 0)
    if count != expected:
        raise BundleDecodeError(
            f"the primary block has {count} items, but its flags and CRC type call for {expected}"
        )
    if type(timestamp) is not list or len(timestamp) != 2:
        raise BundleDecodeError("the creation timestamp must be [time, sequence]")
    created, sequence = timestamp
    if type(created) is not int or type(sequence) is not int or (created | sequence) < 0:
        raise BundleDecodeError("creation timestamp values must be unsigned integers")
    if created > MAX_UINT64 or sequence > MAX_UINT64:
        raise BundleDecodeError("creation timestamp values must fit in 64 bits")
    dst = _eid(destination, lenient, eids, "destination")
    src = _eid(source, lenient, eids, "source")
    rpt = _eid(report_to, lenient, eids, "report-to")
    offset = total = crc = None
    if is_fragment:
        offset, total = item[8], item[9]
        if type(offset) is not int or type(total) is not int or (offset | total) < 0:
            raise BundleDecodeError("fragment offset and total ADU length must be unsigned")
        if offset > MAX_UINT64 or total > MAX_UINT64:
            raise BundleDecodeError("fragment fields must fit in 64 bits")
    if crc_type:
        crc = item[-1]
        if type(crc) is not bytes or len(crc) != CRC_SIZE[crc_type]:
            raise BundleDecodeError("the primary block CRC field has the wrong form")
    primary = PrimaryBlock(
        dst, src, rpt, created, sequence, lifetime, BundleFlag(flags), _CRC_TYPES[crc_type],
        offset, total,
    )  # fmt: skip
    return primary, crc


def _canonical(item: Any) -> tuple[CanonicalBlock, bytes | None]:
    if type(item) is not list:
        raise BundleDecodeError("a canonical block must be a CBOR array")
    count = len(item)
    if count == 5:
        type_code, number, flags, crc_type, data = item
        crc = None
    elif count == 6:
        type_code, number, flags, crc_type, data, crc = item
    else:
        raise BundleDecodeError(f"a canonical block has 5 or 6 items, not {count}")
    if not (
        type(type_code) is int
        and type(number) is int
        and type(flags) is int
        and type(crc_type) is int
    ):
        raise BundleDecodeError("block type, number, flags and CRC type must be integers")
    if (type_code | number | flags) < 0 or (type_code | number | flags) > MAX_UINT64:
        raise BundleDecodeError("block header integers must be unsigned 64-bit")
    if type(data) is not bytes:
        data = _unwrap_data(data, number)
    if crc_type == 0:
        if crc is not None:
            raise BundleDecodeError(f"block {number} has a CRC field but CRC type 0")
    elif crc_type == 1 or crc_type == 2:
        if type(crc) is not bytes or len(crc) != CRC_SIZE[crc_type]:
            raise BundleDecodeError(f"block {number} CRC field has the wrong form")
    else:
        raise BundleDecodeError(f"unknown CRC type {crc_type} in block {number}")
    block = CanonicalBlock(type_code, number, data, BlockFlag(flags), _CRC_TYPES[crc_type])
    return block, crc


def _unwrap_data(data: Any, number: int) -> bytes:
    # RFC 9171 Appendix B allows the block-type-specific data inside tag 24.
    tag = getattr(data, "tag", None)
    if isinstance(data, Tagged) and tag == _TAG_ENCODED_CBOR:
        inner = data.value
        if type(inner) is bytes:
            return inner
    raise BundleDecodeError(f"block {number} data must be a byte string")
