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

import cbor2

from dtncloud.bpv7.flags import BlockFlag, BlockType, BundleFlag, CrcType
from dtncloud.cborutil import MAX_UINT64, encode_uint
from dtncloud.eid import DTN_NONE, EID
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


def _btsd(block: CanonicalBlock, what: str) -> object:
    try:
        return cbor2.loads(block.data)
    except Exception as exc:  # cbor2 raises several unrelated classes
        raise InvalidBundle(f"{what} block {block.number} does not hold valid CBOR") from exc


def read_previous_node(block: CanonicalBlock) -> EID:
    """The node ID held by a previous node block."""
    try:
        return EID.from_cbor(_btsd(block, "previous node"))
    except InvalidEID as exc:
        raise InvalidBundle(f"previous node block {block.number}: {exc}") from exc


def read_bundle_age(block: CanonicalBlock) -> int:
    """The age in milliseconds held by a bundle age block."""
    value = _btsd(block, "bundle age")
    if type(value) is not int or not 0 <= value <= MAX_UINT64:
        raise InvalidBundle(f"bundle age block {block.number} must hold an unsigned integer")
    return value


def read_hop_count(block: CanonicalBlock) -> HopCount:
    """The hop limit and count held by a hop count block."""
    value = _btsd(block, "hop count")
    if (
        type(value) is not list
        or len(value) != 2
        or not all(type(v) is int and 0 <= v <= MAX_UINT64 for v in value)
    ):
        raise InvalidBundle(f"hop count block {block.number} must hold [limit, count]")
    return HopCount(value[0], value[1])
