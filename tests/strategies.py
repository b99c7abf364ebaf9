"""Hypothesis strategies for BPv7 values: EIDs, blocks and whole bundles that obey RFC 9171.

Every bundle that :func:`bundles` draws passes :func:`dtncloud.bpv7.check_bundle` in strict
mode, so any test may encode it with validation on. The strategies lean towards the values
where encodings change shape (CBOR head boundaries 23/24, 255/256, 65535/65536, 2^32, 2^64-1)
and keep sizes small enough for CI (payloads up to a few hundred bytes, a handful of blocks).

Options narrow a strategy to what another implementation supports; for example pyd3tn
knows no unknown block types and no BPSec blocks::

    bundles(unknown_blocks_allowed=False, security_blocks=False, reserved_flags=False)

Hypothesis shrinks every value here towards a simple bundle: ipn EIDs with small numbers,
a CRC-32C primary block, no extension blocks, an empty payload.

The last section is an encoder written apart from dtncloud's (:func:`raw_encode`), with
bit-by-bit reference CRCs: it gives the canonical bytes to compare ``encode_bundle`` with, and
the non-canonical encodings a receiver may accept (:func:`noncanonical_encodings`).

Strategy factories are cached (``functools.cache``): Hypothesis validates each new strategy
object on first use, and building them once keeps drawing a bundle to a few milliseconds.
"""

from __future__ import annotations

import functools
from typing import Any

import cbor2
from hypothesis import strategies as st

from dtncloud.bpv7 import (
    PAYLOAD_BLOCK_NUMBER,
    BlockFlag,
    BlockType,
    Bundle,
    BundleFlag,
    CanonicalBlock,
    CrcType,
    PrimaryBlock,
    bundle_age_block,
    hop_count_block,
    payload_block,
    previous_node_block,
)
from dtncloud.eid import DTN_NONE, EID, DtnEID, IpnEID

MAX_UINT64 = 2**64 - 1

#: Integers at which a CBOR head changes length, and their neighbours.
CBOR_BOUNDARIES = (0, 1, 23, 24, 255, 256, 65_535, 65_536, 2**32 - 1, 2**32, MAX_UINT64)

#: Block type codes RFC 9171/9172 give a meaning to (0 is reserved); the rest are "unknown".
KNOWN_BLOCK_TYPES = frozenset({0, 1, 6, 7, 10, 11, 12})

#: Bundle flag bits RFC 9171 leaves reserved or unassigned (receivers must ignore them).
RESERVED_BUNDLE_FLAG_BITS = tuple([3, 4, *range(7, 14), 15, *range(19, 64)])
#: Block flag bits RFC 9171 leaves reserved or unassigned.
RESERVED_BLOCK_FLAG_BITS = (3, 5, 6, *range(7, 64))

_DEFINED_BLOCK_FLAGS = (
    BlockFlag.REPLICATE,
    BlockFlag.REPORT_IF_UNPROCESSABLE,
    BlockFlag.DELETE_BUNDLE_IF_UNPROCESSABLE,
    BlockFlag.DISCARD_IF_UNPROCESSABLE,
)
_REPORT_FLAGS = (
    BundleFlag.REPORT_RECEPTION,
    BundleFlag.REPORT_FORWARDING,
    BundleFlag.REPORT_DELIVERY,
    BundleFlag.REPORT_DELETION,
)

# VCHAR (RFC 5234): printable ASCII without space. A node name cannot contain "/".
_VCHAR = "".join(chr(c) for c in range(0x21, 0x7F))


# -- integers -------------------------------------------------------------------------------


@functools.cache
def uints(min_value: int = 0, max_value: int = MAX_UINT64) -> st.SearchStrategy[int]:
    """Unsigned integers in ``[min_value, max_value]``, often at a CBOR head boundary."""
    edges = sorted(
        {v for v in CBOR_BOUNDARIES if min_value <= v <= max_value} | {min_value, max_value}
    )
    return st.one_of(
        st.integers(min_value, min(max_value, max(min_value, 30))),
        st.sampled_from(edges),
        st.integers(min_value, max_value),
    )


# -- endpoint IDs ---------------------------------------------------------------------------


@functools.cache
def dtn_node_names(*, exclude: str = "", max_size: int = 12) -> st.SearchStrategy[str]:
    """RFC 9171 node names: 1 or more VCHAR, no ``/`` (and none of ``exclude``)."""
    alphabet = "".join(c for c in _VCHAR if c != "/" and c not in exclude)
    return st.one_of(
        st.text("abcdefghijklmnopqrstuvwxyz0123456789.-", min_size=1, max_size=max_size),
        st.text(alphabet, min_size=1, max_size=max_size),
    )


@functools.cache
def dtn_demuxes(*, exclude: str = "", max_size: int = 30) -> st.SearchStrategy[str]:
    """Demultiplexing tokens: any VCHAR, ``/`` included, possibly empty; ``~`` marks a group."""
    alphabet = "".join(c for c in _VCHAR if c not in exclude)
    return st.one_of(
        st.just(""),
        st.text("abcdefghijklmnopqrstuvwxyz0123456789/-_~", max_size=max_size),
        st.text(alphabet, max_size=max_size),
    )


@functools.cache
def dtn_eids(*, node_id: bool = False, exclude: str = "") -> st.SearchStrategy[DtnEID]:
    """``dtn://node/demux`` EIDs; ``node_id=True`` gives ``dtn://node/`` only."""
    demux = st.just("") if node_id else dtn_demuxes(exclude=exclude)
    return st.builds(
        lambda node, dmx: DtnEID(f"//{node}/{dmx}"), dtn_node_names(exclude=exclude), demux
    )


@functools.cache
def ipn_eids(*, node_id: bool = False) -> st.SearchStrategy[IpnEID]:
    """``ipn:node.service`` EIDs; ``node_id=True`` gives service 0."""
    service = st.just(0) if node_id else uints()
    return st.builds(IpnEID, uints(), service)


@functools.cache
def node_ids(*, exclude: str = "") -> st.SearchStrategy[EID]:
    """Node IDs of either scheme (never ``dtn:none``)."""
    return st.one_of(ipn_eids(node_id=True), dtn_eids(node_id=True, exclude=exclude))


@functools.cache
def eids(*, allow_none: bool = True, exclude: str = "") -> st.SearchStrategy[EID]:
    """Any endpoint ID: ipn, dtn, and (unless ``allow_none=False``) ``dtn:none``.

    ``exclude`` lists characters dtn SSPs must avoid (pyd3tn splits its EID text on ``:``).
    """
    choices: list[st.SearchStrategy[EID]] = [ipn_eids(), dtn_eids(exclude=exclude)]
    if allow_none:
        choices.append(st.just(DTN_NONE))
    return st.one_of(*choices)


# -- flags and CRC types --------------------------------------------------------------------


@functools.cache
def crc_types(*, allow_none: bool = True, primary: bool = False) -> st.SearchStrategy[CrcType]:
    """CRC types; shrinking goes to no CRC for a canonical block and to CRC-32C (dtncloud's
    default) for a primary block (``primary=True``)."""
    members = [CrcType.NONE, CrcType.CRC16, CrcType.CRC32C]
    if primary:
        members.reverse()
    return st.sampled_from([m for m in members if allow_none or m != CrcType.NONE])


def _bits(bits: tuple[int, ...], max_count: int = 3) -> st.SearchStrategy[int]:
    return st.lists(st.sampled_from(bits), max_size=max_count).map(
        lambda chosen: sum({1 << bit for bit in chosen})
    )


@functools.cache
def block_flags(
    *, allow_report: bool = True, reserved: bool = True
) -> st.SearchStrategy[BlockFlag]:
    """Block processing control flags: any mix of the four defined ones, sometimes with
    reserved bits; without REPORT_IF_UNPROCESSABLE when ``allow_report`` is false."""
    defined = [
        f for f in _DEFINED_BLOCK_FLAGS if allow_report or f != BlockFlag.REPORT_IF_UNPROCESSABLE
    ]
    chosen = st.lists(st.sampled_from(defined), unique=True).map(
        lambda flags: sum(flags, BlockFlag.NONE)
    )
    extra = _bits(RESERVED_BLOCK_FLAG_BITS) if reserved else st.just(0)
    return st.builds(lambda a, b: BlockFlag(int(a) | b), chosen, st.one_of(st.just(0), extra))


@functools.cache
def _reserved_bundle_bits(reserved: bool) -> st.SearchStrategy[int]:
    return st.one_of(st.just(0), _bits(RESERVED_BUNDLE_FLAG_BITS)) if reserved else st.just(0)


# -- blocks ---------------------------------------------------------------------------------
# The block strategies draw everything but the block number (callers pick distinct numbers for
# a whole bundle); the cached "_..._any_number" strategies are built once, which keeps drawing
# fast (Hypothesis validates each new strategy object on first use).


@functools.cache
def unknown_type_codes() -> st.SearchStrategy[int]:
    """Block type codes without an RFC 9171/9172 meaning: 2-5, 8, 9, 13-191, private 192-255,
    and large codes."""
    return uints(2).filter(lambda code: code not in KNOWN_BLOCK_TYPES)


@functools.cache
def block_numbers(count: int) -> st.SearchStrategy[list[int]]:
    """``count`` distinct extension block numbers (2 and up: 0 and 1 are taken)."""
    return st.lists(uints(2), min_size=count, max_size=count, unique=True)


@functools.cache
def payload_blocks(
    *, max_size: int = 256, allow_report: bool = True, reserved_flags: bool = True
) -> st.SearchStrategy[CanonicalBlock]:
    return st.builds(
        lambda data, crc, flags: payload_block(data, crc_type=crc, flags=flags),
        st.binary(max_size=max_size),
        crc_types(),
        block_flags(allow_report=allow_report, reserved=reserved_flags),
    )


@functools.cache
def _previous_node_any_number(
    allow_report: bool, exclude: str, reserved_flags: bool
) -> st.SearchStrategy[CanonicalBlock]:
    return st.builds(
        lambda node, crc, flags: previous_node_block(node, 2, crc_type=crc, flags=flags),
        node_ids(exclude=exclude),
        crc_types(),
        block_flags(allow_report=allow_report, reserved=reserved_flags),
    )


@functools.cache
def _bundle_age_any_number(
    allow_report: bool, reserved_flags: bool
) -> st.SearchStrategy[CanonicalBlock]:
    return st.builds(
        lambda age, crc, flags: bundle_age_block(age, 2, crc_type=crc, flags=flags),
        uints(),
        crc_types(),
        block_flags(allow_report=allow_report, reserved=reserved_flags),
    )


@functools.cache
def _hop_count_any_number(
    allow_report: bool, reserved_flags: bool
) -> st.SearchStrategy[CanonicalBlock]:
    # The count may exceed the limit: such a bundle is well formed (a node deletes it on
    # receipt with reason 9, which is not the codec's business).
    return st.builds(
        lambda limit, count, crc, flags: hop_count_block(
            limit, count, 2, crc_type=crc, flags=flags
        ),
        uints(1, 255),
        uints(),
        crc_types(),
        block_flags(allow_report=allow_report, reserved=reserved_flags),
    )


@functools.cache
def _unknown_any_number(
    allow_report: bool, reserved_flags: bool
) -> st.SearchStrategy[CanonicalBlock]:
    return st.builds(
        lambda code, data, crc, flags: CanonicalBlock(code, 2, data, flags, crc),
        unknown_type_codes(),
        st.binary(max_size=64),
        crc_types(),
        block_flags(allow_report=allow_report, reserved=reserved_flags),
    )


def _numbered(
    strategy: st.SearchStrategy[CanonicalBlock], number: int
) -> st.SearchStrategy[CanonicalBlock]:
    return strategy.map(lambda block: block.replace(number=number))


def previous_node_blocks(
    number: int, *, allow_report: bool = True, exclude: str = "", reserved_flags: bool = True
) -> st.SearchStrategy[CanonicalBlock]:
    """Previous node blocks naming a node ID of either scheme."""
    return _numbered(_previous_node_any_number(allow_report, exclude, reserved_flags), number)


def bundle_age_blocks(
    number: int, *, allow_report: bool = True, reserved_flags: bool = True
) -> st.SearchStrategy[CanonicalBlock]:
    return _numbered(_bundle_age_any_number(allow_report, reserved_flags), number)


def hop_count_blocks(
    number: int, *, allow_report: bool = True, reserved_flags: bool = True
) -> st.SearchStrategy[CanonicalBlock]:
    """Hop count blocks, limit 1..255; the count may exceed the limit."""
    return _numbered(_hop_count_any_number(allow_report, reserved_flags), number)


def unknown_blocks(
    number: int, *, allow_report: bool = True, reserved_flags: bool = True
) -> st.SearchStrategy[CanonicalBlock]:
    """Blocks of a type dtncloud does not know, holding arbitrary bytes."""
    return _numbered(_unknown_any_number(allow_report, reserved_flags), number)


def bib_asb(targets: list[int], source: EID, macs: list[bytes]) -> bytes:
    """An abstract security block shaped like RFC 9173 BIB-HMAC-SHA2 (context 1, HMAC
    512/512) listing ``targets``, one made-up result per target."""
    return b"".join(
        (
            cbor2.dumps(targets),
            cbor2.dumps(1),  # security context id: BIB-HMAC-SHA2
            cbor2.dumps(1),  # context flags: parameters present
            source.to_cbor(),
            cbor2.dumps([[1, 7]]),  # SHA variant HMAC 512/512
            cbor2.dumps([[[1, mac]] for mac in macs]),
        )
    )


@functools.cache
def _bib_parts(allow_report: bool) -> st.SearchStrategy[tuple[EID, bytes, CrcType, BlockFlag]]:
    return st.tuples(
        node_ids(),
        st.binary(min_size=64, max_size=64),
        crc_types(),
        block_flags(allow_report=allow_report, reserved=False),
    )


def bib_blocks(
    number: int, targets: list[int], *, allow_report: bool = True
) -> st.SearchStrategy[CanonicalBlock]:
    """Block integrity blocks over ``targets`` (see :func:`bib_asb`); nothing verifies the
    MACs at the codec level, only the target list matters to ``check_bundle``."""

    def build(parts: tuple[EID, bytes, CrcType, BlockFlag]) -> CanonicalBlock:
        source, mac, crc, flags = parts
        asb = bib_asb(targets, source, [mac] * len(targets))
        return CanonicalBlock(BlockType.BLOCK_INTEGRITY, number, asb, flags, crc)

    return _bib_parts(allow_report).map(build)


# -- primary block and bundles ----------------------------------------------------------------


@st.composite
def primary_blocks(
    draw: st.DrawFn,
    *,
    anonymous: bool | None = None,
    admin: bool | None = None,
    fragment: bool | None = None,
    payload_size: int = 0,
    crc_type: st.SearchStrategy[CrcType] | None = None,
    reserved_flags: bool = True,
    max_creation_time: int = MAX_UINT64,
    exclude: str = "",
) -> PrimaryBlock:
    """A primary block that obeys RFC 9171's flag rules.

    ``anonymous``/``admin``/``fragment`` force (True), forbid (False) or leave to chance (None)
    a dtn:none source, the administrative-record flag and fragmentation. ``payload_size`` is
    the payload length the fragment fields must leave room for. Every valid flag combination
    can come out: an anonymous bundle is must-not-fragment without report requests, an
    administrative record requests no reports, a fragment is not must-not-fragment.

    Two rules need the rest of the bundle and are left to :func:`bundles`: creation time 0
    needs a bundle age block, and a primary block without CRC needs a BIB over it.
    """
    if anonymous is None:
        # One bundle in four is anonymous (never a fragment); shrinking prefers a named source.
        anonymous = not fragment and draw(st.sampled_from((False, False, False, True)))
    if admin is None:
        admin = draw(st.sampled_from((False, False, False, True)))
    source = DTN_NONE if anonymous else draw(eids(allow_none=False, exclude=exclude))
    flags = BundleFlag.NONE
    if admin:
        flags |= BundleFlag.ADMIN_RECORD
    if draw(st.booleans()):
        flags |= BundleFlag.ACK_REQUESTED
    if draw(st.booleans()):
        flags |= BundleFlag.STATUS_TIME_REQUESTED
    if not (anonymous or admin):
        for report in _REPORT_FLAGS:
            if draw(st.booleans()):
                flags |= report
    flags |= draw(_reserved_bundle_bits(reserved_flags))
    must_not_fragment = anonymous or draw(st.booleans())
    if fragment is None:
        fragment = not must_not_fragment and draw(st.booleans())
    if fragment:
        if anonymous:
            raise ValueError("an anonymous bundle cannot be a fragment")
        must_not_fragment = False
    if must_not_fragment:
        flags |= BundleFlag.MUST_NOT_FRAGMENT
    offset = total = None
    if fragment:
        flags |= BundleFlag.IS_FRAGMENT
        # Clamped draws (not uints(offset + size)): a new strategy object per draw is slow.
        offset = min(draw(uints()), MAX_UINT64 - payload_size)
        total = min(MAX_UINT64, offset + payload_size + draw(st.sampled_from((0, 0, 1, 1000))))
        if draw(st.booleans()):
            total = max(total, draw(uints()))
    return PrimaryBlock(
        destination=draw(eids(exclude=exclude)),
        source=source,
        report_to=source if draw(st.booleans()) else draw(eids(exclude=exclude)),
        # One in four has no accurate clock (creation time 0).
        creation_time=(
            0
            if draw(st.sampled_from((False, False, False, True)))
            else draw(uints(1, max_creation_time))
        ),
        sequence=draw(uints()),
        lifetime=draw(uints()),
        flags=BundleFlag(flags),
        crc_type=draw(crc_type if crc_type is not None else crc_types(primary=True)),
        fragment_offset=offset,
        total_adu_length=total,
    )


_EXTENSION_KINDS = ("previous_node", "bundle_age", "hop_count", "unknown")


@functools.cache
def _extension_kinds(kinds: tuple[str, ...], max_count: int) -> st.SearchStrategy[list[str]]:
    # Previous node, bundle age and hop count appear at most once; unknown blocks any number.
    return st.lists(st.sampled_from(kinds), max_size=max_count).map(
        lambda picks: [k for i, k in enumerate(picks) if k == "unknown" or k not in picks[:i]]
    )


@st.composite
def bundles(
    draw: st.DrawFn,
    *,
    max_extension_blocks: int = 4,
    max_payload_size: int = 256,
    unknown_blocks_allowed: bool = True,
    security_blocks: bool = True,
    reserved_flags: bool = True,
    all_crcs: bool = False,
    anonymous: bool | None = None,
    admin: bool | None = None,
    fragment: bool | None = None,
    max_creation_time: int = MAX_UINT64,
    exclude: str = "",
    payloads: st.SearchStrategy[bytes] | None = None,
) -> Bundle:
    """A whole bundle that passes ``check_bundle`` in strict mode.

    Extension blocks (at most one each of previous node, bundle age and hop count, plus
    unknown types) get distinct numbers from 2 up and come in random order before the
    payload block (number 1, last). A creation time of 0 always comes with a bundle age
    block. A primary block without CRC comes with a BIB that lists block 0 among its targets
    (only when ``security_blocks``; otherwise the primary CRC is CRC-16 or CRC-32C).
    ``all_crcs`` puts a CRC on every block. Anonymous and administrative-record bundles
    never set REPORT_IF_UNPROCESSABLE on a block.
    """
    payload = draw(payloads if payloads is not None else st.binary(max_size=max_payload_size))
    primary_crc = crc_types(allow_none=security_blocks and not all_crcs, primary=True)
    primary = draw(
        primary_blocks(
            anonymous=anonymous,
            admin=admin,
            fragment=fragment,
            payload_size=len(payload),
            crc_type=primary_crc,
            reserved_flags=reserved_flags,
            max_creation_time=max_creation_time,
            exclude=exclude,
        )
    )
    restricted = primary.source.is_none or primary.is_admin_record
    allow_report = not restricted

    kinds = _EXTENSION_KINDS if unknown_blocks_allowed else _EXTENSION_KINDS[:3]
    chosen: list[str] = draw(_extension_kinds(kinds, max_extension_blocks))
    if primary.creation_time == 0 and "bundle_age" not in chosen:
        chosen.append("bundle_age")
    need_bib = primary.crc_type == CrcType.NONE
    numbers = draw(block_numbers(len(chosen) + need_bib))

    extensions: list[CanonicalBlock] = []
    for kind, number in zip(chosen, numbers, strict=False):
        if kind == "previous_node":
            base = _previous_node_any_number(allow_report, exclude, reserved_flags)
        elif kind == "bundle_age":
            base = _bundle_age_any_number(allow_report, reserved_flags)
        elif kind == "hop_count":
            base = _hop_count_any_number(allow_report, reserved_flags)
        else:
            base = _unknown_any_number(allow_report, reserved_flags)
        extensions.append(draw(base).replace(number=number))
    if need_bib:
        others = draw(st.lists(st.sampled_from([PAYLOAD_BLOCK_NUMBER, *numbers[:-1]]), unique=True))
        extensions.append(draw(bib_blocks(numbers[-1], [0, *others], allow_report=allow_report)))
    extensions = draw(st.permutations(extensions))

    last = payload_block(
        payload,
        crc_type=draw(crc_types()),
        flags=draw(block_flags(allow_report=allow_report, reserved=reserved_flags)),
    )
    blocks = (*extensions, last)
    if all_crcs:
        blocks = tuple(
            b if b.crc_type else b.replace(crc_type=draw(crc_types(allow_none=False)))
            for b in blocks
        )
    return Bundle(primary, blocks)


@functools.cache
def status_report_adus(subject_fragment: bool | None = None) -> st.SearchStrategy[bytes]:
    """Well-formed bundle status report ADUs (admin record type 1, RFC 9171 6.1.1), for
    administrative-record bundles that a peer will dissect."""

    def build(
        asserted: list[bool],
        times: list[int] | None,
        reason: int,
        source: EID,
        created: int,
        sequence: int,
        fragment: tuple[int, int] | None,
    ) -> bytes:
        info: list[list[Any]] = []
        for index, flag in enumerate(asserted):
            item: list[Any] = [flag]
            if flag and times is not None:
                item.append(times[index])
            info.append(item)
        report: list[Any] = [
            info,
            reason,
            cbor2.loads(source.to_cbor()),
            [created, sequence],
        ]
        if fragment is not None:
            report.extend(fragment)
        return cbor2.dumps([1, report])

    fragments: st.SearchStrategy[tuple[int, int] | None]
    pair = st.tuples(uints(), uints())
    if subject_fragment is None:
        fragments = st.one_of(st.none(), pair)
    else:
        fragments = pair if subject_fragment else st.none()
    return st.builds(
        build,
        st.lists(st.booleans(), min_size=4, max_size=4),
        st.one_of(st.none(), st.lists(uints(), min_size=4, max_size=4)),
        st.integers(0, 16),
        eids(),
        uints(),
        uints(),
        fragments,
    )


@functools.cache
def cbor_items(max_leaves: int = 20) -> st.SearchStrategy[Any]:
    """Arbitrary CBOR data items (as cbor2 encodes them): integers of both signs, byte and
    text strings, booleans, None, floats, tags, nested arrays and maps."""
    leaves = st.one_of(
        uints(),
        st.integers(-(2**64), -1),
        st.binary(max_size=20),
        st.text(max_size=10),
        st.booleans(),
        st.none(),
        st.floats(allow_nan=False),
    )
    return st.recursive(
        leaves,
        lambda children: st.one_of(
            st.lists(children, max_size=6),
            st.dictionaries(st.one_of(uints(), st.text(max_size=5)), children, max_size=4),
            st.builds(cbor2.CBORTag, st.sampled_from([1, 2, 24, 99, 55799]), children),
        ),
        max_leaves=max_leaves,
    )


# -- raw encodings ----------------------------------------------------------------------------
# An encoder written apart from dtncloud's, for two uses: a canonical encoding to compare
# encode_bundle with, and non-canonical encodings of the same bundle that RFC 9171 lets a
# receiver accept (long-form integers and lengths, a definite-length outer array, tag 55799
# in front, tag 24 around block data). CRCs are computed by the bit-by-bit reference
# functions below, straight from the CRC parameters (RFC 9171 4.2.1, standards.md 1.7).


def reference_crc16_x25(data: bytes) -> int:
    """CRC-16/X.25: reflected poly 0x8408, init 0xFFFF, xorout 0xFFFF (slow, obviously right)."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc ^ 0xFFFF


def reference_crc32c(data: bytes) -> int:
    """CRC-32C: reflected poly 0x82F63B78, init and xorout 0xFFFFFFFF."""
    crc = 0xFFFF_FFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F6_3B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFF_FFFF


def with_reference_crc(block: bytes, crc_type: int) -> bytes:
    """``block`` (a whole block encoding ending in its CRC value) with the CRC value set."""
    if crc_type == 0:
        return block
    size = 2 if crc_type == 1 else 4
    zeroed = block[:-size] + bytes(size)
    value = reference_crc16_x25(zeroed) if crc_type == 1 else reference_crc32c(zeroed)
    return block[:-size] + value.to_bytes(size, "big")


class RawEncoder:
    """Encodes a bundle head by head; the heads whose index is in ``widen`` use a longer form
    than needed (the next wider argument size, 8 bytes at most)."""

    def __init__(self, widen: frozenset[int] = frozenset()) -> None:
        self.widen = widen
        self.index = 0

    def head(self, major: int, value: int) -> bytes:
        index, self.index = self.index, self.index + 1
        sizes = (0, 1, 2, 4, 8)
        needed = (
            0
            if value < 24
            else 1
            if value < 256
            else 2
            if value < 65_536
            else (3 if value < 2**32 else 4)
        )
        if index in self.widen and needed < 4:
            needed += 1
        if needed == 0:
            return bytes(((major << 5) | value,))
        size = sizes[needed]
        return bytes(((major << 5) | (23 + needed),)) + value.to_bytes(size, "big")

    def uint(self, value: int) -> bytes:
        return self.head(0, int(value))

    def eid(self, eid: EID) -> bytes:
        if eid.is_none:
            return self.head(4, 2) + self.uint(1) + self.uint(0)
        if isinstance(eid, IpnEID):
            return (
                self.head(4, 2)
                + self.uint(2)
                + self.head(4, 2)
                + self.uint(eid.node)
                + self.uint(eid.service)
            )
        assert isinstance(eid, DtnEID)
        ssp = eid.ssp.encode()
        return self.head(4, 2) + self.uint(1) + self.head(3, len(ssp)) + ssp

    def crc_field(self, crc_type: int) -> bytes:
        size = (0, 2, 4)[crc_type]
        return self.head(2, size) + bytes(size) if size else b""

    def primary(self, p: PrimaryBlock) -> bytes:
        count = 8 + (2 if p.fragment_offset is not None else 0) + (1 if p.crc_type else 0)
        out = self.head(4, count) + self.uint(7) + self.uint(p.flags) + self.uint(p.crc_type)
        out += self.eid(p.destination) + self.eid(p.source) + self.eid(p.report_to)
        out += self.head(4, 2) + self.uint(p.creation_time) + self.uint(p.sequence)
        out += self.uint(p.lifetime)
        if p.fragment_offset is not None:
            assert p.total_adu_length is not None
            out += self.uint(p.fragment_offset) + self.uint(p.total_adu_length)
        return with_reference_crc(out + self.crc_field(p.crc_type), p.crc_type)

    def canonical(self, b: CanonicalBlock, tag24: bool = False) -> bytes:
        out = self.head(4, 6 if b.crc_type else 5) + self.uint(b.type_code) + self.uint(b.number)
        out += self.uint(b.flags) + self.uint(b.crc_type)
        if tag24:
            out += self.head(6, 24)
        out += self.head(2, len(b.data)) + b.data + self.crc_field(b.crc_type)
        return with_reference_crc(out, b.crc_type)


def raw_encode(
    bundle: Bundle,
    *,
    widen: frozenset[int] = frozenset(),
    definite: bool = False,
    self_described: bool = False,
    tag24: frozenset[int] = frozenset(),
) -> bytes:
    """``bundle`` encoded by :class:`RawEncoder`; with the defaults, the canonical encoding
    RFC 9171 asks for (it must equal ``encode_bundle``). ``tag24`` holds the wire positions
    (0 = first canonical block) of blocks whose data goes inside tag 24."""
    encoder = RawEncoder(widen)
    body = raw_encode_with(encoder, bundle, tag24)
    if definite:
        framed = encoder.head(4, 1 + len(bundle.blocks)) + body
    else:
        framed = b"\x9f" + body + b"\xff"
    return (b"\xd9\xd9\xf7" if self_described else b"") + framed


def raw_encode_with(
    encoder: RawEncoder, bundle: Bundle, tag24: frozenset[int] = frozenset()
) -> bytes:
    """The blocks of ``bundle`` back to back, as ``encoder`` writes them (no outer array)."""
    parts = [encoder.primary(bundle.primary)]
    parts += [encoder.canonical(b, i in tag24) for i, b in enumerate(bundle.blocks)]
    return b"".join(parts)


@st.composite
def noncanonical_encodings(draw: st.DrawFn, bundle: Bundle) -> bytes:
    """Encodings of ``bundle`` that are not deterministic CBOR but that a receiver may accept:
    some heads in long form, and maybe a definite outer array, tag 55799, tag 24 around block
    data. At least one of these is always applied, so the bytes differ from the canonical."""
    counter = RawEncoder()
    raw_encode_with(counter, bundle)
    widen = draw(st.frozensets(st.integers(0, counter.index - 1), max_size=6))
    definite = draw(st.booleans())
    self_described = draw(st.booleans())
    tag24 = draw(st.frozensets(st.integers(0, len(bundle.blocks) - 1), max_size=2))
    encoded = raw_encode(
        bundle, widen=widen, definite=definite, self_described=self_described, tag24=tag24
    )
    if encoded == raw_encode(bundle):  # every widened head was already 8 bytes long
        encoded = raw_encode(bundle, widen=widen, definite=True)
    return encoded
