"""The decoder's hot path: a bundle of the regular shape, from cbor2's decoded items.

:func:`decode_regular` is written out as one function because at this scale a Python call
costs more than the work it wraps. It accepts only deterministic encodings of the regular
shape: a primary block of 8 to 11 items whose EIDs are already memoised, and canonical blocks
of plain integers and a byte string. Anything else, including every error, returns ``None``,
and :mod:`dtncloud.bpv7.decode` takes its general path, which says precisely what is wrong.
The validity rules of RFC 9171 are left to the caller.

How block extents are found without a position-aware parser: each block's deterministic
encoded length follows from its decoded values, and a non-deterministic form of a value is
longer than the deterministic one. So when the lengths add up to the input's length, the
input is deterministic and the computed extents are the blocks' own. One thing breaks that
argument: cbor2 also resolves shared values (tags 28/29) and string references (tags
256/25), with which a value can be written *shorter*, and a long form elsewhere can make up
the difference. Such a pair shifts a block boundary, so every boundary is also checked where
it is cheap to: the array head where each block starts and the bstr head of each CRC. A CRC
mismatch, or any failed check, merely sends the input down the general path, which is exact.
(An input built to pass these checks with shifted boundaries would only have its CRCs read
over the wrong bytes; CRCs guard against accidents, not adversaries, and dtncloud re-encodes
every bundle it forwards with fresh CRCs.)
"""

from __future__ import annotations

from typing import Any

import crc32c as _crc32c_lib

from dtncloud.bpv7.blocks import CanonicalBlock, PrimaryBlock
from dtncloud.bpv7.bundle import Bundle
from dtncloud.bpv7.crc import crc16_x25
from dtncloud.bpv7.flags import BlockFlag, BundleFlag, CrcType
from dtncloud.bpv7.validate import check_rules
from dtncloud.eid import DTN_NONE, EID, EidCache
from dtncloud.errors import InvalidEID

_MAX_UINT64 = 0xFFFF_FFFF_FFFF_FFFF
_CRC_TYPES = (CrcType.NONE, CrcType.CRC16, CrcType.CRC32C)
_ZERO2 = b"\x00\x00"
_ZERO4 = b"\x00\x00\x00\x00"
# Identity checks against these small ints keep CBOR booleans and bignums out (True == 1);
# were CPython ever to stop sharing small ints, the check would only fail towards the
# general path, never accept something wrong.
_DTN_SCHEME = 1
_IPN_SCHEME = 2

_crc32c = _crc32c_lib.crc32c
_crc16 = crc16_x25
_from_bytes = int.from_bytes
# Bypass the NamedTuple and dataclass constructors: every field has been checked here.
_new_tuple = tuple.__new__
_new_object = object.__new__
_set_primary = Bundle.__dict__["primary"].__set__  # the slots' own descriptors
_set_blocks = Bundle.__dict__["blocks"].__set__
# The enums' own value-to-member maps: a dict lookup instead of an Enum call.
_bundle_flag = BundleFlag._value2member_map_.get
_block_flag = BlockFlag._value2member_map_.get


def _head_len(value: int) -> int:
    # fmt: off
    return (1 if value < 24 else 2 if value < 0x100 else 3 if value < 0x10000
            else 5 if value < 0x1_0000_0000 else 9)
    # fmt: on


def _memoise(eids: EidCache, item: Any) -> tuple[EID, int] | None:
    """Decode and memoise an EID the memo has not met (strictly: ``None`` if invalid, and the
    general path then explains, or accepts a lenient form)."""
    try:
        return eids.lookup(item)
    except InvalidEID:
        return None


def decode_regular(items: list[Any], data: bytes, eids: EidCache, lenient: bool) -> Bundle | None:
    """The bundle ``data`` holds, given ``items = cbor2.loads(data)``, checked against the
    validity rules; or ``None`` if the input is not of the regular shape or a CRC does not
    match. Raises :class:`~dtncloud.errors.InvalidBundle` for a bundle that breaks a rule."""
    if len(items) < 2:
        return None
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
        type(flags) is not int
        or type(lifetime) is not int
        or type(created) is not int
        or type(sequence) is not int
        or version != 7
        or type(version) is not int
        or type(crc_type) is not int
    ):
        return None
    combined = flags | lifetime | created | sequence
    if combined < 0 or combined > _MAX_UINT64:
        return None
    # Array head, version, CRC type and the timestamp's array head are one byte each.
    # fmt: off
    length = (
        4
        + (1 if flags < 24 else 2 if flags < 0x100 else _head_len(flags))
        + (9 if created >= 0x1_0000_0000 else _head_len(created))
        + (1 if sequence < 24 else 2 if sequence < 0x100 else _head_len(sequence))
        + (5 if 0x10000 <= lifetime < 0x1_0000_0000 else _head_len(lifetime))
    )
    # fmt: on
    if fields == 11:
        if type(offset) is not int or type(total) is not int or not flags & 1:
            return None
        if (offset | total) < 0 or (offset | total) > _MAX_UINT64:
            return None
        length += _head_len(offset) + _head_len(total)
    elif flags & 1:
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

    # EIDs come from the memo; one it has not met is decoded and memoised once.
    dtn_get = eids.dtn_get
    ipn_get = eids.ipn_get
    try:
        scheme, ssp = dst
        kind = type(ssp)
        if (kind is str or kind is int) and scheme is _DTN_SCHEME:
            hit = dtn_get(ssp)
        elif kind is list and scheme is _IPN_SCHEME and type(ssp[0]) is int is type(ssp[1]):
            hit = ipn_get((ssp[0], ssp[1])) if len(ssp) == 2 else None
        else:
            return None
        if hit is None:
            hit = _memoise(eids, dst)
            if hit is None:
                return None
        dst_eid, dst_len = hit
        scheme, ssp = src
        kind = type(ssp)
        if (kind is str or kind is int) and scheme is _DTN_SCHEME:
            hit = dtn_get(ssp)
        elif kind is list and scheme is _IPN_SCHEME and type(ssp[0]) is int is type(ssp[1]):
            hit = ipn_get((ssp[0], ssp[1])) if len(ssp) == 2 else None
        else:
            return None
        if hit is None:
            hit = _memoise(eids, src)
            if hit is None:
                return None
        src_eid, src_len = hit
        if rpt == src:
            rpt_eid, rpt_len = src_eid, src_len
        else:
            scheme, ssp = rpt
            kind = type(ssp)
            if (kind is str or kind is int) and scheme is _DTN_SCHEME:
                hit = dtn_get(ssp)
            elif kind is list and scheme is _IPN_SCHEME and type(ssp[0]) is int is type(ssp[1]):
                hit = ipn_get((ssp[0], ssp[1])) if len(ssp) == 2 else None
            else:
                return None
            if hit is None:
                hit = _memoise(eids, rpt)
                if hit is None:
                    return None
            rpt_eid, rpt_len = hit
    except (TypeError, ValueError, IndexError):  # an EID that is not a 2-item list
        return None

    end = 1 + length + dst_len + src_len + rpt_len
    # Boundary checks (see the module docstring): the array head where the block starts, the
    # CRC's bstr head where its value starts.
    if data[1] != 0x80 + fields:
        return None
    view = memoryview(data)
    if crc_type == 2:
        if data[end - 5] != 0x44:
            return None
        if _crc32c(_ZERO4, _crc32c(view[1 : end - 4])) != _from_bytes(crc, "big"):
            return None
    elif crc_type == 1:
        if data[end - 3] != 0x42:
            return None
        if _crc16(_ZERO2, _crc16(view[1 : end - 2])) != _from_bytes(crc, "big"):
            return None
    primary_flags = flags
    primary_crc_type = crc_type
    bundle_flags = _bundle_flag(flags)
    if bundle_flags is None:
        bundle_flags = BundleFlag(flags)
    primary = _new_tuple(
        PrimaryBlock,
        (dst_eid, src_eid, rpt_eid, created, sequence, lifetime, bundle_flags,
         _CRC_TYPES[crc_type], offset, total),
    )  # fmt: skip

    blocks = []
    for item in items[1:]:
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
        ):
            return None
        combined = type_code | number | flags
        if combined < 0 or combined > _MAX_UINT64:
            return None
        start = end
        if data[start] != 0x80 + fields:
            return None
        size = len(btsd)
        # fmt: off
        end += (
            2 + size
            + (1 if type_code < 24 else 2 if type_code < 0x100 else _head_len(type_code))
            + (1 if number < 24 else 2 if number < 0x100 else _head_len(number))
            + (1 if flags < 24 else 2 if flags < 0x100 else _head_len(flags))
            + (1 if size < 24 else 2 if size < 0x100 else 3 if size < 0x10000 else _head_len(size))
        )
        # fmt: on
        if crc_type == 2:
            if type(crc) is not bytes or len(crc) != 4:
                return None
            end += 5
            if data[end - 5] != 0x44:
                return None
            if _crc32c(_ZERO4, _crc32c(view[start : end - 4])) != _from_bytes(crc, "big"):
                return None
        elif crc_type == 1:
            if type(crc) is not bytes or len(crc) != 2:
                return None
            end += 3
            if data[end - 3] != 0x42:
                return None
            if _crc16(_ZERO2, _crc16(view[start : end - 2])) != _from_bytes(crc, "big"):
                return None
        elif crc_type != 0 or crc is not None:
            return None
        block_flags = _block_flag(flags)
        if block_flags is None:
            block_flags = BlockFlag(flags)
        blocks.append(
            _new_tuple(CanonicalBlock, (type_code, number, btsd, block_flags, _CRC_TYPES[crc_type]))
        )
    if end + 1 != len(data):
        return None  # not deterministic: the extents above were not the blocks' own
    bundle = _new_object(Bundle)
    _set_primary(bundle, primary)
    _set_blocks(bundle, tuple(blocks))
    # validate.is_plainly_valid, inlined on the values at hand: for this most common shape
    # every rule holds, and check_rules would only cost time.
    if not (
        len(blocks) == 1
        and type_code == 1
        and number == 1
        and not primary_flags & 3  # neither a fragment nor an administrative record
        and created
        and primary_crc_type
        and src_eid is not DTN_NONE
    ):
        check_rules(bundle, lenient)
    return bundle
