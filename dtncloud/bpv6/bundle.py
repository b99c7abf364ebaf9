"""The BPv6 bundle value: primary-block fields, canonical blocks, and RFC 5050 validity rules."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from dtncloud.bpv6.dictionary import DTN_NONE
from dtncloud.bpv6.flags import BlockFlag, BlockType, BundleFlag, Priority
from dtncloud.errors import BundleEncodeError

__all__ = ["Bundle", "BundleId", "CanonicalBlock", "payload_block", "validity_problems"]

_REPR_DATA_BYTES = 24


@dataclass(frozen=True, slots=True, repr=False)
class CanonicalBlock:
    """A canonical block (RFC 5050 4.5.2/4.5.3): type code, flags, EID references, data.

    ``data`` is kept exactly as received, so blocks this codec does not interpret (every
    type but the payload) re-encode byte for byte. ``eid_references`` are ``"scheme:ssp"``
    strings; they are written only when ``flags`` has
    :attr:`~dtncloud.bpv6.BlockFlag.HAS_EID_REFERENCES` (possibly as an empty list).
    ``flags`` never carries :attr:`~dtncloud.bpv6.BlockFlag.LAST_BLOCK`: the codec manages it.
    """

    block_type: int
    data: bytes
    flags: BlockFlag = BlockFlag.NONE
    eid_references: tuple[str, ...] = ()

    def __repr__(self) -> str:
        # Payloads can be megabytes; a repr that prints them all is useless in a log line.
        shown = bytes(self.data[:_REPR_DATA_BYTES])
        more = f"...({len(self.data)} bytes)" if len(self.data) > _REPR_DATA_BYTES else ""
        try:
            kind = BlockType(self.block_type).name
        except ValueError:
            kind = str(self.block_type)
        refs = f", eid_references={self.eid_references!r}" if self.eid_references else ""
        return f"CanonicalBlock({kind}, flags={self.flags!r}{refs}, data={shown!r}{more})"


def payload_block(data: bytes, flags: BlockFlag = BlockFlag.NONE) -> CanonicalBlock:
    """Return a payload block (type 1) carrying ``data``."""
    return CanonicalBlock(BlockType.PAYLOAD, data, flags)


@dataclass(frozen=True, slots=True)
class BundleId:
    """What identifies a BPv6 bundle (RFC 5050 3.1): source EID and creation timestamp, plus
    fragment offset and payload length for a fragment. Custody signals and status reports
    name their subject by these fields.

    Its text form is the one BPv7's :class:`~dtncloud.bpv7.BundleId` uses,
    ``SOURCE@TIME.SEQUENCE`` with ``/OFFSET+LENGTH`` appended for a fragment (here TIME is in
    seconds, as RFC 5050 counts it)::

        ipn:11.64@731539820.377
        dtn://c/d@1000.2/300+5
    """

    source: str
    creation_time: int
    sequence: int
    fragment_offset: int | None = None
    fragment_length: int | None = None

    def __str__(self) -> str:
        text = f"{self.source}@{self.creation_time}.{self.sequence}"
        if self.fragment_offset is not None:
            text += f"/{self.fragment_offset}+{self.fragment_length}"
        return text


@dataclass(frozen=True, slots=True)
class Bundle:
    """A BPv6 bundle. Fields follow the primary block's wire order (RFC 5050 4.5.1).

    EIDs are ``"scheme:ssp"`` strings; the dictionary is built on encoding. Times are whole
    seconds: ``creation_time`` since 2000-01-01 00:00:00 UTC, ``lifetime`` after it.
    ``fragment_offset`` and ``total_adu_length`` are set exactly when ``flags`` has
    :attr:`~BundleFlag.IS_FRAGMENT`. ``blocks`` are the canonical blocks in wire order.
    ``cbhe`` selects Compressed Bundle Header Encoding (RFC 6260: empty dictionary, ipn
    node/service numbers in the offset fields); the decoder sets it when the dictionary is
    empty. Build a new bundle with :meth:`create`, change one with :func:`dataclasses.replace`.
    """

    flags: BundleFlag
    destination: str
    source: str
    report_to: str
    custodian: str
    creation_time: int
    sequence: int
    lifetime: int
    blocks: tuple[CanonicalBlock, ...]
    fragment_offset: int | None = None
    total_adu_length: int | None = None
    cbhe: bool = False

    @classmethod
    def create(
        cls,
        *,
        source: str,
        destination: str,
        payload: bytes,
        creation_time: int,
        sequence: int = 0,
        lifetime: int = 86_400,
        report_to: str = DTN_NONE,
        custodian: str = DTN_NONE,
        flags: BundleFlag = BundleFlag.SINGLETON_DESTINATION | BundleFlag.PRIORITY_NORMAL,
        extension_blocks: Iterable[CanonicalBlock] = (),
        cbhe: bool = False,
    ) -> Bundle:
        """Build a new, unfragmented bundle with the extension blocks before the payload.

        An anonymous bundle (source ``dtn:none``) gets
        :attr:`~BundleFlag.MUST_NOT_FRAGMENT`, which RFC 5050 4.2 requires of it.
        """
        if source == DTN_NONE:
            flags |= BundleFlag.MUST_NOT_FRAGMENT
        return cls(
            flags=flags,
            destination=destination,
            source=source,
            report_to=report_to,
            custodian=custodian,
            creation_time=creation_time,
            sequence=sequence,
            lifetime=lifetime,
            blocks=(*extension_blocks, payload_block(payload)),
            cbhe=cbhe,
        )

    @property
    def payload_block(self) -> CanonicalBlock:
        """The payload block. Raises :class:`~dtncloud.errors.BundleEncodeError` if there is
        none (a decoded bundle always has exactly one)."""
        for block in self.blocks:
            if block.block_type == BlockType.PAYLOAD:
                return block
        raise BundleEncodeError("the bundle has no payload block")

    @property
    def payload(self) -> bytes:
        """The application data unit (or, for a fragment, this fragment's part of it)."""
        return self.payload_block.data

    @property
    def extension_blocks(self) -> tuple[CanonicalBlock, ...]:
        """Every block but the payload block, in wire order."""
        return tuple(b for b in self.blocks if b.block_type != BlockType.PAYLOAD)

    @property
    def priority(self) -> Priority:
        """The class-of-service priority (flag bits 7-8)."""
        return self.flags.priority

    @property
    def is_fragment(self) -> bool:
        """True when the bundle is a fragment."""
        return bool(self.flags & BundleFlag.IS_FRAGMENT)

    @property
    def is_admin_record(self) -> bool:
        """True when the payload is an administrative record (see :mod:`dtncloud.bpv6.admin`)."""
        return bool(self.flags & BundleFlag.ADMIN_RECORD)

    @property
    def bundle_id(self) -> BundleId:
        """The identity of this bundle (or fragment)."""
        if self.fragment_offset is None:
            return BundleId(self.source, self.creation_time, self.sequence)
        return BundleId(
            self.source,
            self.creation_time,
            self.sequence,
            self.fragment_offset,
            len(self.payload),
        )


def validity_problems(bundle: Bundle) -> list[str]:
    """Return the RFC 5050 validity rules ``bundle`` breaks, as sentences; empty if valid.

    The rules: exactly one payload block; the fragment fields present exactly when the
    bundle is a fragment, and the fragment inside its ADU; an administrative record asks for
    neither custody transfer nor status reports, and none of its blocks asks for a report if
    it cannot be processed (4.2, 4.3); an anonymous bundle (source ``dtn:none``) asks for no
    custody and no reports and must not be fragmented (4.2); no block after the payload block
    is to be replicated in every fragment (4.3).
    """
    problems: list[str] = []
    flags = bundle.flags
    payload_indexes = [i for i, b in enumerate(bundle.blocks) if b.block_type == BlockType.PAYLOAD]
    if len(payload_indexes) != 1:
        problems.append(f"a bundle has exactly one payload block, not {len(payload_indexes)}")
    offset, total = bundle.fragment_offset, bundle.total_adu_length
    if (offset is None) != (total is None):
        problems.append("fragment offset and total ADU length go together")
    elif (offset is not None) != bool(flags & BundleFlag.IS_FRAGMENT):
        problems.append("fragment fields are present exactly when the is-fragment flag is set")
    elif (
        offset is not None
        and total is not None
        and len(payload_indexes) == 1
        and offset + len(bundle.blocks[payload_indexes[0]].data) > total
    ):
        problems.append("the fragment ends beyond the total ADU length")
    if flags & BundleFlag.ADMIN_RECORD:
        if flags & (BundleFlag.CUSTODY_REQUESTED | BundleFlag.REPORTS):
            problems.append("an administrative record requests no custody transfer or reports")
        if any(b.flags & BlockFlag.REPORT_IF_UNPROCESSABLE for b in bundle.blocks):
            problems.append("an administrative record's blocks request no status reports")
    if bundle.source == DTN_NONE:
        if flags & (BundleFlag.CUSTODY_REQUESTED | BundleFlag.REPORTS):
            problems.append("an anonymous bundle requests no custody transfer or reports")
        if not flags & BundleFlag.MUST_NOT_FRAGMENT:
            problems.append("an anonymous bundle must have the must-not-fragment flag")
    if payload_indexes:
        after = bundle.blocks[payload_indexes[0] + 1 :]
        if any(b.flags & BlockFlag.REPLICATE for b in after):
            problems.append("blocks after the payload block are not replicated in fragments")
    return problems
