"""BPv7 blocks: the primary block and canonical blocks (RFC 9171 sections 4.3.1-4.4).

Blocks are immutable values. A :class:`CanonicalBlock` always carries its block-type-specific
data (``data``) as the exact bytes that travel, so a block of a type dtncloud does not know is
re-encoded byte for byte; the helpers at the bottom build and read the extension blocks that
RFC 9171 defines.

The two block classes are named tuples rather than frozen dataclasses: decoding builds one per
block on the hot path, and a tuple is built five times faster. Change one with ``replace()``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from dtncloud.bpv7.flags import BlockFlag, BlockType, BundleFlag, CrcType
from dtncloud.cborutil import (
    MAJOR_TEXT,
    MAJOR_UINT,
    MAX_UINT64,
    CborError,
    DecodeBudget,
    decode_item,
    encode_uint,
)
from dtncloud.eid import DEFAULT_EID_CACHE, DTN_NONE, EID, SCHEME_DTN, SCHEME_IPN
from dtncloud.errors import InvalidBundle, InvalidEID

PAYLOAD_BLOCK_NUMBER = 1


class PrimaryBlock(NamedTuple):
    """The primary block. ``creation_time`` is DTN time in ms (0 = unknown clock), ``lifetime``
    is in ms; ``fragment_offset`` and ``total_adu_length`` are set exactly when the bundle is a
    fragment."""

    destination: EID
    source: EID = DTN_NONE
    report_to: EID = DTN_NONE
    creation_time: int = 0
    sequence: int = 0
    lifetime: int = 86_400_000
    flags: BundleFlag = BundleFlag.NONE
    crc_type: CrcType = CrcType.CRC32C
    fragment_offset: int | None = None
    total_adu_length: int | None = None

    @property
    def version(self) -> int:
        return 7

    def replace(self, **changes: Any) -> PrimaryBlock:
        """A copy with the given fields changed."""
        return self._replace(**changes)

    @property
    def creation_timestamp(self) -> tuple[int, int]:
        return (self.creation_time, self.sequence)

    @property
    def is_fragment(self) -> bool:
        return bool(self.flags & BundleFlag.IS_FRAGMENT)

    @property
    def is_admin_record(self) -> bool:
        return bool(self.flags & BundleFlag.ADMIN_RECORD)

    @property
    def expires_at(self) -> int | None:
        """DTN time at which the bundle expires, or None when the creation time is unknown."""
        return self.creation_time + self.lifetime if self.creation_time else None


class CanonicalBlock(NamedTuple):
    """A non-primary block: ``data`` is the block-type-specific data, exactly as carried."""

    type_code: int
    number: int
    data: bytes
    flags: BlockFlag = BlockFlag.NONE
    crc_type: CrcType = CrcType.NONE

    @property
    def block_type(self) -> BlockType | int:
        """The type as a :class:`BlockType` member when dtncloud knows it, else the int."""
        try:
            return BlockType(self.type_code)
        except ValueError:
            return self.type_code

    @property
    def is_payload(self) -> bool:
        return self.type_code == BlockType.PAYLOAD

    def replace(self, **changes: Any) -> CanonicalBlock:
        """A copy with the given fields changed."""
        return self._replace(**changes)

    def with_data(self, data: bytes) -> CanonicalBlock:
        return self._replace(data=data)


@dataclass(frozen=True, slots=True)
class HopCount:
    """Contents of a hop count block: the hop limit (1-255) and the hops taken so far."""

    limit: int
    count: int

    @property
    def exceeded(self) -> bool:
        return self.count > self.limit


def _check_uint(name: str, value: int) -> None:
    if not (type(value) is int and 0 <= value <= MAX_UINT64):
        raise ValueError(f"{name} must be an unsigned 64-bit integer, not {value!r}")


def payload_block(
    data: bytes, *, crc_type: CrcType = CrcType.NONE, flags: BlockFlag = BlockFlag.NONE
) -> CanonicalBlock:
    """The payload block (type 1, always number 1)."""
    return CanonicalBlock(BlockType.PAYLOAD, PAYLOAD_BLOCK_NUMBER, bytes(data), flags, crc_type)


def previous_node_block(
    node: EID, number: int, *, crc_type: CrcType = CrcType.NONE, flags: BlockFlag = BlockFlag.NONE
) -> CanonicalBlock:
    """A previous node block (type 6) naming the node that forwarded the bundle."""
    return CanonicalBlock(BlockType.PREVIOUS_NODE, number, node.node_id.to_cbor(), flags, crc_type)


def bundle_age_block(
    age_ms: int, number: int, *, crc_type: CrcType = CrcType.NONE, flags: BlockFlag = BlockFlag.NONE
) -> CanonicalBlock:
    """A bundle age block (type 7): milliseconds the bundle has existed."""
    _check_uint("bundle age", age_ms)
    return CanonicalBlock(BlockType.BUNDLE_AGE, number, encode_uint(age_ms), flags, crc_type)


def hop_count_block(
    limit: int,
    count: int,
    number: int,
    *,
    crc_type: CrcType = CrcType.NONE,
    flags: BlockFlag = BlockFlag.NONE,
) -> CanonicalBlock:
    """A hop count block (type 10) with ``limit`` (1-255) and ``count`` hops so far."""
    if not 1 <= limit <= 255:
        raise ValueError(f"hop limit must be 1..255, not {limit}")
    _check_uint("hop count", count)
    data = b"\x82" + encode_uint(limit) + encode_uint(count)
    return CanonicalBlock(BlockType.HOP_COUNT, number, data, flags, crc_type)


# -- reading the extension blocks --------------------------------------------------------------
#
# The block-type-specific data must be exactly one CBOR item: trailing bytes make the block
# invalid (cbor2.loads would ignore them). Every bundle that has these blocks is checked on
# receipt, so each reader first tries the encodings senders actually use with a few byte
# comparisons, and hands anything else to the bounded decoder, which also words the errors.
# The fast paths return only what the bounded decoder would give for the same bytes.


def _head_at(data: bytes, pos: int, major: int) -> tuple[int, int] | None:
    """``(argument, end)`` of a definite-length head of ``major`` at ``pos``, or None."""
    if pos >= len(data):
        return None
    info = data[pos] - (major << 5)
    if 0 <= info < 24:
        return info, pos + 1
    if 24 <= info <= 27:
        end = pos + 1 + (1 << (info - 24))
        if end <= len(data):
            return int.from_bytes(data[pos + 1 : end], "big"), end
    return None


def _btsd(block: CanonicalBlock, what: str) -> object:
    """The one CBOR item that the block's data consists of, read by the bounded decoder.

    The largest item read here, an ipn EID, has five data items at nesting depth 2; the budget
    leaves room for that and stops anything bigger at once.
    """
    data = block.data
    try:
        value, end = decode_item(data, 0, len(data), DecodeBudget(items=8, max_depth=2))
    except CborError as exc:
        raise InvalidBundle(f"{what} block {block.number} does not hold valid CBOR: {exc}") from exc
    if end != len(data):
        raise InvalidBundle(
            f"{what} block {block.number} has {len(data) - end} bytes after its CBOR item"
        )
    return value


def _quick_eid_item(data: bytes) -> list[Any] | None:
    """The decoded ``[scheme, SSP]`` of a plainly encoded EID, or None."""
    if data[:3] == b"\x82\x02\x82":
        node = _head_at(data, 3, MAJOR_UINT)
        service = _head_at(data, node[1], MAJOR_UINT) if node else None
        if node and service and service[1] == len(data):
            return [SCHEME_IPN, [node[0], service[0]]]
    elif data[:2] == b"\x82\x01":
        if len(data) == 3 and data[2] == 0:
            return [SCHEME_DTN, 0]
        text = _head_at(data, 2, MAJOR_TEXT)
        if text and text[1] + text[0] == len(data):
            try:
                return [SCHEME_DTN, data[text[1] :].decode("utf-8")]
            except UnicodeDecodeError:
                return None
    return None


def read_previous_node(block: CanonicalBlock, lenient: bool = False) -> EID:
    """The node ID held by a previous node block (InvalidBundle if it holds anything else).

    ``lenient`` also accepts the pre-RFC ``dtn`` forms without ``//`` that
    :meth:`EID.parse <dtncloud.eid.EID.parse>` accepts leniently (uD3TN sends them).
    """
    data = block.data
    known = DEFAULT_EID_CACHE.encoded_get(data)
    if known is not None:
        return known
    item = _quick_eid_item(data)
    try:
        eid = EID.from_cbor(
            item if item is not None else _btsd(block, "previous node"), lenient=lenient
        )
    except InvalidEID as exc:
        raise InvalidBundle(f"previous node block {block.number}: {exc}") from exc
    DEFAULT_EID_CACHE.remember_encoding(eid, data)
    return eid


def read_bundle_age(block: CanonicalBlock) -> int:
    """The age in milliseconds held by a bundle age block (InvalidBundle if anything else)."""
    data = block.data
    age = _head_at(data, 0, MAJOR_UINT)
    if age is not None and age[1] == len(data):
        return age[0]
    value = _btsd(block, "bundle age")
    if type(value) is not int or not 0 <= value <= MAX_UINT64:
        raise InvalidBundle(f"bundle age block {block.number} must hold an unsigned integer")
    return value


def read_hop_count(block: CanonicalBlock) -> HopCount:
    """The hop limit and count held by a hop count block (InvalidBundle if anything else)."""
    data = block.data
    if data[:1] == b"\x82":
        limit = _head_at(data, 1, MAJOR_UINT)
        count = _head_at(data, limit[1], MAJOR_UINT) if limit else None
        if limit and count and count[1] == len(data):
            return HopCount(limit[0], count[0])
    value = _btsd(block, "hop count")
    if (
        type(value) is not list
        or len(value) != 2
        or not all(type(v) is int and 0 <= v <= MAX_UINT64 for v in value)
    ):
        raise InvalidBundle(f"hop count block {block.number} must hold [limit, count]")
    return HopCount(value[0], value[1])
