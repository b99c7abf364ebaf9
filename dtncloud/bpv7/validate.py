"""The validity rules of RFC 9171 for a whole bundle.

:func:`check_bundle` raises :class:`~dtncloud.errors.InvalidBundle` naming the first rule a
bundle breaks. The decoder runs it on every bundle it accepts and the encoder on every bundle
it writes, so an invalid bundle is neither accepted nor sent. It runs once per received bundle,
so it is written for speed: plain ``int`` arithmetic on flags (IntFlag operators are slow) and
nothing allocated for the common bundle that has only a payload block.
"""

from __future__ import annotations

from dtncloud.bpv7.blocks import (
    PAYLOAD_BLOCK_NUMBER,
    CanonicalBlock,
    read_bundle_age,
    read_hop_count,
    read_previous_node,
)
from dtncloud.bpv7.bundle import Bundle
from dtncloud.bpv7.flags import BlockType, BundleFlag
from dtncloud.cborutil import CborError, DecodeBudget, decode_item
from dtncloud.eid import DtnNone
from dtncloud.errors import InvalidBundle

_PAYLOAD = int(BlockType.PAYLOAD)
_PREVIOUS_NODE = int(BlockType.PREVIOUS_NODE)
_BUNDLE_AGE = int(BlockType.BUNDLE_AGE)
_HOP_COUNT = int(BlockType.HOP_COUNT)
_BIB = int(BlockType.BLOCK_INTEGRITY)
_BCB = int(BlockType.BLOCK_CONFIDENTIALITY)
_IS_FRAGMENT = int(BundleFlag.IS_FRAGMENT)
_ADMIN_RECORD = int(BundleFlag.ADMIN_RECORD)
_MUST_NOT_FRAGMENT = int(BundleFlag.MUST_NOT_FRAGMENT)
_REPORTS = int(BundleFlag.REPORTS)
_REPORT_IF_UNPROCESSABLE = 0x02


def check_bundle(bundle: Bundle, *, lenient: bool = False) -> None:
    """Raise :class:`InvalidBundle` if ``bundle`` breaks a rule of RFC 9171.

    ``lenient`` accepts what older implementations (and RFC 9173's own examples) send although
    RFC 9171 does not allow it: no primary-block CRC without a BIB covering the primary block,
    creation time 0 without a bundle age block, report requests on anonymous bundles or
    administrative records, and an anonymous bundle without must-not-fragment.
    """
    check_rules(bundle, lenient)


def is_plainly_valid(bundle: Bundle) -> bool:
    """Whether ``bundle`` is of the shape for which every rule below holds trivially: a
    primary block and a payload block numbered 1 and nothing else, not a fragment, not an
    administrative record, from a named source, with a creation time and a primary CRC.

    The decoder's hot path (``fastdecode``) evaluates this same condition inline on the
    values it has in hand and skips :func:`check_rules` when it holds. Keep the two in step:
    a rule that such a bundle could break belongs here as well. A property test checks that
    :func:`check_bundle` accepts every bundle for which this returns True.
    """
    primary = bundle.primary
    blocks = bundle.blocks
    return (
        len(blocks) == 1
        and blocks[0].type_code == _PAYLOAD
        and blocks[0].number == PAYLOAD_BLOCK_NUMBER
        and not int(primary.flags) & (_IS_FRAGMENT | _ADMIN_RECORD)
        and primary.fragment_offset is None
        and type(primary.source) is not DtnNone
        and primary.creation_time != 0
        and primary.crc_type != 0
    )


def check_rules(bundle: Bundle, lenient: bool) -> None:
    """:func:`check_bundle` with positional arguments, for the decoder's hot path."""
    primary = bundle.primary
    blocks = bundle.blocks
    if not blocks:
        raise InvalidBundle("a bundle needs a payload block")
    last = blocks[-1]
    if last.type_code != _PAYLOAD or last.number != PAYLOAD_BLOCK_NUMBER:
        raise InvalidBundle("the last block must be the payload block, numbered 1")
    flags = int(primary.flags)
    anonymous = type(primary.source) is DtnNone
    restricted = not lenient and (anonymous or flags & _ADMIN_RECORD != 0)
    if restricted and int(last.flags) & _REPORT_IF_UNPROCESSABLE:
        raise InvalidBundle(_report_flag_message(last.number, anonymous))
    has_bundle_age = False
    if len(blocks) > 1:
        has_bundle_age = _check_extension_blocks(blocks, restricted, anonymous, lenient)

    offset = primary.fragment_offset
    if offset is None:
        if flags & _IS_FRAGMENT:
            raise InvalidBundle("the is-fragment flag is set but the fragment fields are missing")
    else:
        if not flags & _IS_FRAGMENT:
            raise InvalidBundle("fragment fields are present but the is-fragment flag is clear")
        if offset + len(last.data) > (primary.total_adu_length or 0):
            raise InvalidBundle("fragment extends beyond the total ADU length")
        if flags & _MUST_NOT_FRAGMENT:
            raise InvalidBundle("a fragment cannot be flagged must-not-fragment")
    if not lenient:
        if anonymous or flags & _ADMIN_RECORD:
            if anonymous and not flags & _MUST_NOT_FRAGMENT:
                raise InvalidBundle(
                    "an anonymous bundle (source dtn:none) must be must-not-fragment"
                )
            if flags & _REPORTS:
                raise InvalidBundle(
                    "an anonymous or administrative-record bundle must not request status reports"
                )
        if not primary.creation_time and not has_bundle_age:
            raise InvalidBundle("creation time 0 (no accurate clock) needs a bundle age block")
        if not primary.crc_type and not _bib_covers_primary(bundle):
            raise InvalidBundle("the primary block needs a CRC unless a BIB covers it")


def _report_flag_message(number: int, anonymous: bool) -> str:
    kind = "an anonymous" if anonymous else "an administrative-record"
    return f"block {number} requests a status report, which {kind} bundle must not"


def _check_extension_blocks(
    blocks: tuple[CanonicalBlock, ...], restricted: bool, anonymous: bool, lenient: bool
) -> bool:
    """Rules on the blocks before the payload; returns whether a bundle age block is present."""
    numbers = {PAYLOAD_BLOCK_NUMBER}
    known: list[CanonicalBlock] = []
    known_codes: set[int] = set()
    encrypted: set[int] = set()
    for block in blocks[:-1]:
        number = block.number
        if number in numbers:
            raise InvalidBundle(
                "block number 1 is reserved for the payload block"
                if number == PAYLOAD_BLOCK_NUMBER
                else f"block number {number} is used twice"
            )
        if number == 0:
            raise InvalidBundle("block number 0 belongs to the primary block")
        numbers.add(number)
        code = block.type_code
        if code == _PAYLOAD:
            raise InvalidBundle("a bundle has exactly one payload block, and it comes last")
        if code == 0:
            raise InvalidBundle(f"block {number} has the reserved type code 0")
        if code in (_PREVIOUS_NODE, _BUNDLE_AGE, _HOP_COUNT):
            if code in known_codes:
                raise InvalidBundle(f"more than one {BlockType(code).name} block")
            known_codes.add(code)
            known.append(block)
        elif code == _BCB:
            encrypted.update(security_targets(block))
        if restricted and int(block.flags) & _REPORT_IF_UNPROCESSABLE:
            raise InvalidBundle(_report_flag_message(number, anonymous))
    has_bundle_age = False
    for block in known:
        code = block.type_code
        if code == _BUNDLE_AGE:
            has_bundle_age = True
        # A block a BCB encrypts holds ciphertext until decrypted: its contents can't be read.
        if block.number in encrypted:
            continue
        if code == _PREVIOUS_NODE:
            read_previous_node(block, lenient)
        elif code == _BUNDLE_AGE:
            read_bundle_age(block)
        else:
            hops = read_hop_count(block)
            if not 1 <= hops.limit <= 255:
                raise InvalidBundle(f"hop limit {hops.limit} is outside 1..255")
    return has_bundle_age


def security_targets(block: CanonicalBlock) -> list[int]:
    """The target block numbers listed first in a BIB's or BCB's data ([] if unreadable).

    Only the first item of the abstract security block is read; dtncloud.bpsec parses the rest.
    """
    try:
        targets, _ = decode_item(block.data, 0, len(block.data), DecodeBudget(items=1 + 256))
    except CborError:
        return []
    if type(targets) is not list:
        return []
    return [t for t in targets if type(t) is int]


def _bib_covers_primary(bundle: Bundle) -> bool:
    """Whether some BIB lists block 0 among its security targets (RFC 9171 4.3.1)."""
    return any(0 in security_targets(block) for block in bundle.blocks if block.type_code == _BIB)
