"""The BPv7 bundle value and its identity."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from dtncloud.bpv7.blocks import (
    PAYLOAD_BLOCK_NUMBER,
    CanonicalBlock,
    HopCount,
    PrimaryBlock,
    bundle_age_block,
    hop_count_block,
    payload_block,
    read_bundle_age,
    read_hop_count,
    read_previous_node,
)
from dtncloud.bpv7.flags import BlockFlag, BlockType, BundleFlag, CrcType
from dtncloud.cborutil import MAX_UINT64
from dtncloud.eid import DTN_NONE, EID, parse_eid
from dtncloud.errors import CodecError


class InvalidBundleId(CodecError, ValueError):
    """Text that :meth:`BundleId.parse` cannot read as a bundle ID."""


# What follows the last "@" of a bundle ID's text: creation time, sequence number and, for a
# fragment, offset and payload length. ASCII digits only.
_ID_TAIL = re.compile(r"(\d+)\.(\d+)(?:/(\d+)\+(\d+))?", re.ASCII)
_UINT64_DIGITS = len(str(MAX_UINT64))


@dataclass(frozen=True, slots=True)
class BundleId:
    """What identifies a bundle (RFC 9171 section 4.2.6 and 5.9): the source node ID and the
    creation timestamp, plus offset and payload length for a fragment.

    Its text form is ``SOURCE@TIME.SEQUENCE``, with ``/OFFSET+LENGTH`` appended for a
    fragment::

        dtn://sensor-7/@767880000000.0
        ipn:10.0@755000000000.0/253+252

    Everything after the last ``@`` is digits, so the text is unambiguous whatever the source
    EID holds (a dtn EID may itself contain ``@``), and :meth:`parse` reads it back.
    """

    source: EID
    creation_time: int
    sequence: int
    fragment_offset: int | None = None
    fragment_length: int | None = None

    def __str__(self) -> str:
        text = f"{self.source}@{self.creation_time}.{self.sequence}"
        if self.fragment_offset is not None:
            text += f"/{self.fragment_offset}+{self.fragment_length}"
        return text

    @classmethod
    def parse(cls, text: str) -> BundleId:
        """Read the text form back: ``BundleId.parse(str(bundle_id)) == bundle_id``.

        Raises :class:`InvalidBundleId` (a :class:`~dtncloud.errors.CodecError` and a
        :class:`ValueError`) saying what is wrong.
        """
        source, at, tail = text.rpartition("@")
        match = _ID_TAIL.fullmatch(tail)
        if not at or match is None:
            raise InvalidBundleId(
                f"{_clip(text)!r} is not a bundle ID (expected SOURCE@TIME.SEQUENCE, "
                "such as ipn:10.0@755000000000.0, with /OFFSET+LENGTH for a fragment)"
            )
        time, sequence, offset, length = match.groups()
        try:  # InvalidEID is a ValueError too
            return cls(
                EID.parse(source),
                _id_number(time),
                _id_number(sequence),
                None if offset is None else _id_number(offset),
                None if length is None else _id_number(length),
            )
        except ValueError as exc:
            raise InvalidBundleId(f"{_clip(text)!r} is not a bundle ID: {exc}") from exc

    @property
    def whole(self) -> BundleId:
        """The ID of the original (unfragmented) bundle."""
        return BundleId(self.source, self.creation_time, self.sequence)


def _id_number(digits: str) -> int:
    # The length is checked before int(), which refuses over 4300 digits with a ValueError.
    digits = digits.lstrip("0") or "0"
    if len(digits) > _UINT64_DIGITS or int(digits) > MAX_UINT64:
        raise ValueError("its numbers must be 0..2^64-1")
    return int(digits)


def _clip(text: str, limit: int = 60) -> str:
    """``text`` shortened for an error message."""
    return text if len(text) <= limit else text[:limit] + "..."


@dataclass(frozen=True, slots=True)
class Bundle:
    """A BPv7 bundle: the primary block and the canonical blocks in wire order (payload last).

    Build one with :meth:`create`; change one with :func:`dataclasses.replace` or the
    ``with_*`` helpers (a bundle is never mutated in place).
    """

    primary: PrimaryBlock
    blocks: tuple[CanonicalBlock, ...]

    @classmethod
    def create(
        cls,
        *,
        source: EID | str,
        destination: EID | str,
        payload: bytes,
        creation_time: int,
        sequence: int = 0,
        lifetime: int = 86_400_000,
        report_to: EID | str | None = None,
        flags: BundleFlag = BundleFlag.NONE,
        crc_type: CrcType = CrcType.CRC32C,
        block_crc_type: CrcType = CrcType.NONE,
        hop_limit: int | None = None,
        bundle_age: int | None = None,
        extension_blocks: Iterable[CanonicalBlock] = (),
    ) -> Bundle:
        """Build a new bundle. Times are DTN milliseconds; ``creation_time=0`` (no accurate
        clock) needs ``bundle_age``. Extension blocks are numbered from 2 in the order given,
        unless they already carry a number other than 0 or 1."""
        src = parse_eid(source)
        if src.is_none:
            # RFC 9171 4.2.3: an anonymous bundle must not be fragmented.
            flags |= BundleFlag.MUST_NOT_FRAGMENT
        primary = PrimaryBlock(
            destination=parse_eid(destination),
            source=src,
            report_to=parse_eid(report_to) if report_to is not None else src.node_id,
            creation_time=creation_time,
            sequence=sequence,
            lifetime=lifetime,
            flags=flags,
            crc_type=crc_type,
        )
        extensions: list[CanonicalBlock] = []
        used = {b.number for b in extension_blocks if b.number > PAYLOAD_BLOCK_NUMBER}
        next_number = 2

        def allocate() -> int:
            nonlocal next_number
            while next_number in used:
                next_number += 1
            used.add(next_number)
            return next_number

        for block in extension_blocks:
            if block.number <= PAYLOAD_BLOCK_NUMBER:
                block = block.replace(number=allocate())
            extensions.append(block)
        if hop_limit is not None:
            extensions.append(hop_count_block(hop_limit, 0, allocate(), crc_type=block_crc_type))
        if bundle_age is not None:
            extensions.append(bundle_age_block(bundle_age, allocate(), crc_type=block_crc_type))
        blocks = (*extensions, payload_block(payload, crc_type=block_crc_type))
        return cls(primary, blocks)

    # -- reading --------------------------------------------------------------------------

    @property
    def payload_block(self) -> CanonicalBlock:
        last = self.blocks[-1]
        if last.type_code == BlockType.PAYLOAD:
            return last
        for block in self.blocks:
            if block.type_code == BlockType.PAYLOAD:
                return block
        raise LookupError("bundle has no payload block")

    @property
    def payload(self) -> bytes:
        return self.payload_block.data

    @property
    def extension_blocks(self) -> tuple[CanonicalBlock, ...]:
        return tuple(b for b in self.blocks if b.type_code != BlockType.PAYLOAD)

    @property
    def id(self) -> BundleId:
        p = self.primary
        if p.fragment_offset is not None:
            return BundleId(
                p.source.node_id, p.creation_time, p.sequence, p.fragment_offset, len(self.payload)
            )
        return BundleId(p.source.node_id, p.creation_time, p.sequence)

    def block(self, number: int) -> CanonicalBlock:
        """The canonical block with that number (KeyError if there is none)."""
        for block in self.blocks:
            if block.number == number:
                return block
        raise KeyError(f"no block number {number}")

    def blocks_of_type(self, type_code: int) -> Iterator[CanonicalBlock]:
        return (b for b in self.blocks if b.type_code == type_code)

    def first_block_of_type(self, type_code: int) -> CanonicalBlock | None:
        return next(self.blocks_of_type(type_code), None)

    @property
    def previous_node(self) -> EID | None:
        """The node ID in the previous node block, or None when there is none.

        Read leniently: a bundle that only lenient decoding accepted (uD3TN writes
        ``dtn:GS4`` here) still answers, and for a bundle that strict decoding accepted the
        answer is the same. Checking the block is :func:`~dtncloud.bpv7.check_bundle`'s job.
        """
        block = self.first_block_of_type(BlockType.PREVIOUS_NODE)
        return read_previous_node(block, lenient=True) if block else None

    @property
    def bundle_age(self) -> int | None:
        block = self.first_block_of_type(BlockType.BUNDLE_AGE)
        return read_bundle_age(block) if block else None

    @property
    def hop_count(self) -> HopCount | None:
        block = self.first_block_of_type(BlockType.HOP_COUNT)
        return read_hop_count(block) if block else None

    @property
    def is_anonymous(self) -> bool:
        return self.primary.source == DTN_NONE

    # -- deriving -------------------------------------------------------------------------

    def with_primary(self, **changes: object) -> Bundle:
        return Bundle(self.primary.replace(**changes), self.blocks)

    def with_blocks(self, blocks: Iterable[CanonicalBlock]) -> Bundle:
        return Bundle(self.primary, tuple(blocks))

    def replace_block(self, block: CanonicalBlock) -> Bundle:
        """A copy with the block of the same number replaced by ``block``."""
        return self.with_blocks(block if b.number == block.number else b for b in self.blocks)

    def add_block(self, block: CanonicalBlock, *, before_payload: bool = True) -> Bundle:
        """A copy with ``block`` added (numbered automatically when its number is 0)."""
        if block.number == 0:
            block = block.replace(number=self.next_block_number())
        blocks = list(self.blocks)
        blocks.insert(len(blocks) - 1 if before_payload else 0, block)
        return self.with_blocks(blocks)

    def remove_block(self, number: int) -> Bundle:
        return self.with_blocks(b for b in self.blocks if b.number != number)

    def next_block_number(self) -> int:
        return max((b.number for b in self.blocks), default=1) + 1

    def with_block_flags(self, number: int, flags: BlockFlag) -> Bundle:
        return self.replace_block(self.block(number).replace(flags=flags))
