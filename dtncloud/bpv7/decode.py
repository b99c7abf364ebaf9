"""BPv7 decoding: strict, bounded and fast.

Two paths produce the same result:

* The fast path hands the whole input to cbor2's C decoder, then works out where each block
  lies in the input from the decoded values, assuming deterministic encoding. The assumption
  is checked, not trusted: every non-deterministic form of a value is longer than the
  deterministic one, so the block lengths add up to the input length exactly when the whole
  input is deterministic. Only then are CRCs checked over those extents.
* The exact path walks the input with :func:`dtncloud.cborutil.decode_item`, which records
  where every block starts and ends. It takes inputs the fast path will not: large ones (cbor2
  would allocate Python objects in proportion to the input before we could count blocks),
  non-deterministic encodings that RFC 9171 lets a receiver accept (definite-length outer
  array, tag 55799, tag 24 around block data, long-form integers), and anything malformed, so
  that the error message is precise.

Both are bounded: the input size and block count are parameters, a length field that
announces more bytes than remain fails at once, and nesting and item counts are capped.
"""

from __future__ import annotations

from typing import Any

import cbor2

from dtncloud.bpv7.blocks import CanonicalBlock, PrimaryBlock
from dtncloud.bpv7.bundle import Bundle
import crc32c as _crc32c_lib

from dtncloud.bpv7.crc import CRC_SIZE, crc16_x25
from dtncloud.bpv7.flags import BlockFlag, BundleFlag, CrcType
from dtncloud.bpv7.validate import check_bundle, check_rules
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
from dtncloud.eid import EID, EidCache
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
_crc32c = _crc32c_lib.crc32c
_crc16 = crc16_x25
_ZERO2 = b"\x00\x00"
_ZERO4 = b"\x00\x00\x00\x00"
# Bypass the NamedTuple and dataclass constructors: the decoder has checked every field.
_new_tuple = tuple.__new__
_Bundle = Bundle


_set_primary = Bundle.__dict__["primary"].__set__  # the slots' own descriptors
_set_blocks = Bundle.__dict__["blocks"].__set__
_new_object = object.__new__


def _new_bundle(
    cls: type[Bundle], primary: PrimaryBlock, blocks: tuple[CanonicalBlock, ...]
) -> Bundle:
    bundle = _new_object(cls)
    _set_primary(bundle, primary)
    _set_blocks(bundle, blocks)
    return bundle


# The enums' own value-to-member maps (dict lookups instead of Enum calls; misses fall back).
_bundle_flag = BundleFlag._value2member_map_.get
_block_flag = BlockFlag._value2member_map_.get
#: Memo of decoded EIDs shared by decode_bundle calls (see EidCache: results never depend on it).
_DEFAULT_EID_CACHE = EidCache()


def decode_bundle(
    data: bytes,
    *,
    max_size: int = DEFAULT_MAX_BUNDLE_SIZE,
    max_blocks: int = DEFAULT_MAX_BLOCKS,
    lenient: bool = False,
    eid_cache: EidCache = _DEFAULT_EID_CACHE,
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
            bundle = _decode_regular(items, data, eid_cache)
            if bundle is not None:
                check_rules(bundle, lenient)
                return bundle
            parsed = _build(items, lenient, eid_cache)
            if parsed[1] + 2 == size:
                return _finish(parsed[0], data, parsed[2], 1, lenient)
    items, extents = _walk(data, max_blocks)
    bundle, _, crcs = _build(items, lenient, eid_cache)
    return _finish(bundle, data, crcs, extents, lenient)


def _decode_regular(items: list[Any], data: bytes, eids: EidCache) -> Bundle | None:
    """The bundle if ``items`` has the regular shape and every CRC matches, else ``None``.

    This is the hot path, written out in one function (calls cost more than the work here):
    deterministic encoding, primary block of 8 to 11 items with memoised EIDs, canonical
    blocks of plain integers and a byte string. Anything else, including every error, returns
    ``None`` and goes to the general path, which says precisely what is wrong. The validity
    rules are left to the caller. ``length`` arithmetic below inlines cborutil.head_len.
    """
    count = len(items)
    if count < 2:
        return None
    dtn_get = eids.dtn_get
    ipn_get = eids.ipn_get
    item = items[0]
    if type(item) is not list:
        return None
    fields = len(item)
    if fields == 9:
        version, flags, crc_type, dst, src, rpt, timestamp, lifetime, crc = item
        offset = total = None
    elif fields == 8:
        version, flags, crc_type, dst, src, rpt, timestamp, lifetime = item
        offset = total = crc = None
    elif fields == 11:
        version, flags, crc_type, dst, src, rpt, timestamp, lifetime, offset, total, crc = item
    else:
        return None
    if type(timestamp) is not list or len(timestamp) != 2:
        return None
    created, sequence = timestamp
    if (
        version != 7
        or type(flags) is not int
        or type(lifetime) is not int
        or type(created) is not int
        or type(sequence) is not int
        or type(version) is not int
        or (flags | lifetime | created | sequence) < 0
        or (flags | lifetime | created | sequence) > MAX_UINT64
    ):
        return None
    # Head lengths of the integers, the fixed bytes (array head, version, CRC type, the
    # timestamp's array head) and the CRC field.
    length = (
        4
        + (
            1
            if flags < 24
            else 2
            if flags < 256
            else 3
            if flags < 65536
            else 5
            if flags < 4294967296
            else 9
        )
        + (
            1
            if created < 24
            else 2
            if created < 256
            else 3
            if created < 65536
            else 5
            if created < 4294967296
            else 9
        )
        + (
            1
            if sequence < 24
            else 2
            if sequence < 256
            else 3
            if sequence < 65536
            else 5
            if sequence < 4294967296
            else 9
        )
        + (
            1
            if lifetime < 24
            else 2
            if lifetime < 256
            else 3
            if lifetime < 65536
            else 5
            if lifetime < 4294967296
            else 9
        )
    )
    if fields == 11:
        if (
            not flags & 1
            or type(offset) is not int
            or type(total) is not int
            or (offset | total) < 0
            or (offset | total) > MAX_UINT64
        ):
            return None
        length += _hl(offset) + _hl(total)
    elif flags & 1:
        return None
    if type(crc_type) is not int:
        return None
    if crc_type == 2:
        if type(crc) is not bytes or len(crc) != 4:
            return None
        length += 5
    elif crc_type == 1:
        if type(crc) is not bytes or len(crc) != 2:
            return None
        length += 3
    elif crc_type != 0 or crc is not None:
        return None
    # EIDs from the memo; a miss (or anything odd) takes the general path once, which
    # memoises it. Type checks keep CBOR booleans from passing for the integers they equal.
    try:
        scheme, ssp = dst
        kind = type(ssp)
        hit = (
            dtn_get(ssp)
            if kind is str or kind is int
            else ipn_get((ssp[0], ssp[1]))
            if kind is list and len(ssp) == 2 and type(ssp[0]) is int and type(ssp[1]) is int
            else None
        )
        if hit is None or scheme != hit[0].scheme or type(scheme) is not int:
            return None
        dst_eid, dst_len = hit
        scheme, ssp = src
        kind = type(ssp)
        hit = (
            dtn_get(ssp)
            if kind is str or kind is int
            else ipn_get((ssp[0], ssp[1]))
            if kind is list and len(ssp) == 2 and type(ssp[0]) is int and type(ssp[1]) is int
            else None
        )
        if hit is None or scheme != hit[0].scheme or type(scheme) is not int:
            return None
        src_eid, src_len = hit
        if rpt == src:
            rpt_eid, rpt_len = hit
        else:
            scheme, ssp = rpt
            kind = type(ssp)
            hit = (
                dtn_get(ssp)
                if kind is str or kind is int
                else ipn_get((ssp[0], ssp[1]))
                if kind is list and len(ssp) == 2 and type(ssp[0]) is int and type(ssp[1]) is int
                else None
            )
            if hit is None or scheme != hit[0].scheme or type(scheme) is not int:
                return None
            rpt_eid, rpt_len = hit
    except (TypeError, ValueError):  # not a 2-item list
        return None
    length += dst_len + src_len + rpt_len
    view = memoryview(data)
    end = 1 + length
    if crc_type == 2:
        if _crc32c(_ZERO4, _crc32c(view[1 : end - 4])) != int.from_bytes(crc, "big"):  # type: ignore[arg-type]
            return None
    elif crc_type == 1:
        if _crc16(_ZERO2, _crc16(view[1 : end - 2])) != int.from_bytes(crc, "big"):  # type: ignore[arg-type]
            return None
    bundle_flags = _bundle_flag(flags)
    if bundle_flags is None:
        bundle_flags = BundleFlag(flags)
    primary = _new_tuple(
        PrimaryBlock,
        (
            dst_eid,
            src_eid,
            rpt_eid,
            created,
            sequence,
            lifetime,
            bundle_flags,
            _CRC_TYPES[crc_type],
            offset,
            total,
        ),
    )
    blocks = []
    for index in range(1, count):
        item = items[index]
        if type(item) is not list:
            return None
        fields = len(item)
        if fields == 6:
            type_code, number, flags, crc_type, btsd, crc = item
        elif fields == 5:
            type_code, number, flags, crc_type, btsd = item
            crc = None
        else:
            return None
        if (
            type(type_code) is not int
            or type(number) is not int
            or type(flags) is not int
            or type(btsd) is not bytes
            or type(crc_type) is not int
            or (type_code | number | flags) < 0
            or (type_code | number | flags) > MAX_UINT64
        ):
            return None
        start = end
        size = len(btsd)
        end += (
            2
            + size
            + (1 if type_code < 24 else 2 if type_code < 256 else _hl(type_code))
            + (1 if number < 24 else 2 if number < 256 else _hl(number))
            + (1 if flags < 24 else 2 if flags < 256 else _hl(flags))
            + (1 if size < 24 else 2 if size < 256 else 3 if size < 65536 else _hl(size))
        )
        if crc_type == 2:
            if type(crc) is not bytes or len(crc) != 4:
                return None
            end += 5
            if _crc32c(_ZERO4, _crc32c(view[start : end - 4])) != int.from_bytes(crc, "big"):
                return None
        elif crc_type == 1:
            if type(crc) is not bytes or len(crc) != 2:
                return None
            end += 3
            if _crc16(_ZERO2, _crc16(view[start : end - 2])) != int.from_bytes(crc, "big"):
                return None
        elif crc_type != 0 or crc is not None:
            return None
        block_flags = _block_flag(flags)
        if block_flags is None:
            block_flags = BlockFlag(flags)
        blocks.append(
            _new_tuple(CanonicalBlock, (type_code, number, btsd, block_flags, _CRC_TYPES[crc_type]))
        )
    # Deterministic encodings are the shortest: the lengths add up to the input exactly when
    # every item was encoded deterministically, so the extents (and CRCs) above were right.
    if end + 1 != len(data):
        return None
    return _new_bundle(_Bundle, primary, tuple(blocks))


# A CRC to check: (CRC type, block length, CRC value bytes as decoded).
_CrcCheck = tuple[int, int, bytes | None]


def _finish(
    bundle: Bundle,
    data: bytes,
    crcs: list[_CrcCheck],
    extents: int | list[tuple[int, int]],
    lenient: bool,
) -> Bundle:
    """Check CRCs and validity. ``extents`` is the start offset of the first block when the
    blocks lie back to back in their deterministic lengths, else each block's exact extent."""
    view = memoryview(data)
    start = extents if type(extents) is int else 0
    for index, (crc_type, length, crc) in enumerate(crcs):
        if type(extents) is not int:
            start, end = extents[index]
        else:
            end = start + length
        if crc_type == 2:
            ok = _crc32c(_ZERO4, _crc32c(view[start : end - 4])) == int.from_bytes(crc, "big")  # type: ignore[arg-type]
        elif crc_type == 1:
            ok = _crc16(_ZERO2, _crc16(view[start : end - 2])) == int.from_bytes(crc, "big")  # type: ignore[arg-type]
        else:
            ok = True
        if not ok:
            what = "primary block" if index == 0 else f"block {bundle.blocks[index - 1].number}"
            raise CrcMismatch(f"CRC of the {what} does not match")
        start = end
    check_bundle(bundle, lenient=lenient)
    return bundle


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


def _hl(value: int) -> int:
    """Length of a deterministic CBOR head (inlined copy of cborutil.head_len for speed)."""
    return (
        1
        if value < 24
        else 2
        if value < 0x100
        else 3
        if value < 0x10000
        else (5 if value < 0x1_0000_0000 else 9)
    )


def _build(items: list[Any], lenient: bool, eids: EidCache) -> tuple[Bundle, int, list[_CrcCheck]]:
    """The bundle from decoded items, the sum of the blocks' deterministic encoded lengths,
    and the CRC of each block to check (primary first)."""
    if len(items) < 2:
        raise BundleDecodeError("a bundle needs a primary block and a payload block")
    primary, length, crc = _primary(items[0], lenient, eids)
    crcs = [(primary.crc_type, length, crc)]
    total = length
    blocks = []
    for item in items[1:]:
        block, length, crc = _canonical(item)
        blocks.append(block)
        crcs.append((block.crc_type, length, crc))
        total += length
    return _new_bundle(_Bundle, primary, tuple(blocks)), total, crcs


def _eid(item: Any, lenient: bool, eids: EidCache, role: str) -> tuple[EID, int]:
    try:
        return eids.lookup(item, lenient)
    except InvalidEID as exc:
        raise BundleDecodeError(f"primary block {role}: {exc}") from exc


def _primary(item: Any, lenient: bool, eids: EidCache) -> tuple[PrimaryBlock, int, bytes | None]:
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
    dst, dst_len = _eid(destination, lenient, eids, "destination")
    src, src_len = _eid(source, lenient, eids, "source")
    if report_to == source:
        rpt, rpt_len = src, src_len
    else:
        rpt, rpt_len = _eid(report_to, lenient, eids, "report-to")
    length = 4 + _hl(flags) + dst_len + src_len + rpt_len + _hl(created) + _hl(sequence)
    length += _hl(lifetime)
    offset = total = crc = None
    if is_fragment:
        offset, total = item[8], item[9]
        if type(offset) is not int or type(total) is not int or (offset | total) < 0:
            raise BundleDecodeError("fragment offset and total ADU length must be unsigned")
        if offset > MAX_UINT64 or total > MAX_UINT64:
            raise BundleDecodeError("fragment fields must fit in 64 bits")
        length += _hl(offset) + _hl(total)
    if crc_type:
        crc = item[-1]
        if type(crc) is not bytes or len(crc) != CRC_SIZE[crc_type]:
            raise BundleDecodeError("the primary block CRC field has the wrong form")
        length += 1 + CRC_SIZE[crc_type]
    bundle_flags = _bundle_flag(flags)
    if bundle_flags is None:
        bundle_flags = BundleFlag(flags)
    primary = _new_tuple(
        PrimaryBlock,
        (
            dst,
            src,
            rpt,
            created,
            sequence,
            lifetime,
            bundle_flags,
            _CRC_TYPES[crc_type],
            offset,
            total,
        ),
    )
    return primary, length, crc


def _canonical(item: Any) -> tuple[CanonicalBlock, int, bytes | None]:
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
        length = 2
    elif crc_type == 1 or crc_type == 2:
        if type(crc) is not bytes or len(crc) != CRC_SIZE[crc_type]:
            raise BundleDecodeError(f"block {number} CRC field has the wrong form")
        length = 3 + CRC_SIZE[crc_type]
    else:
        raise BundleDecodeError(f"unknown CRC type {crc_type} in block {number}")
    size = len(data)
    length += _hl(type_code) + _hl(number) + _hl(flags) + _hl(size) + size
    block_flags = _block_flag(flags)
    if block_flags is None:
        block_flags = BlockFlag(flags)
    block = _new_tuple(CanonicalBlock, (type_code, number, data, block_flags, _CRC_TYPES[crc_type]))
    return block, length, crc


def _unwrap_data(data: Any, number: int) -> bytes:
    # RFC 9171 Appendix B allows the block-type-specific data inside tag 24.
    tag = getattr(data, "tag", None)
    if isinstance(data, Tagged | cbor2.CBORTag) and tag == _TAG_ENCODED_CBOR:
        inner = data.value
        if type(inner) is bytes:
            return inner
    raise BundleDecodeError(f"block {number} data must be a byte string")
