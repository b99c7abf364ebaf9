"""RFC 9172's rules on which block a security block may target, and where new ones go.

:func:`survey` reads every security block of a bundle and maps who protects what, raising
:class:`~dtncloud.errors.SecurityPolicyError` for the first rule a received bundle breaks:

* a BCB never targets the primary block, a BCB, or itself (reason 14, unexpected);
* a BIB never targets a BIB or a BCB, or itself (reason 14);
* a block is the target of at most one BIB and at most one BCB (reason 16, conflicting);
* a BIB never covers a block that a BCB encrypts unless that BCB also encrypts the BIB
  (section 3.9: a BIB is never computed over ciphertext, and a BIB that shares a target with a
  BCB is encrypted by it) (reason 16);
* every target exists in the bundle (reason 15, failed).

A BIB whose data is ciphertext (it is itself a BCB target) cannot be read until decrypted; it is
listed in :attr:`SecurityMap.encrypted_bibs`. The checks here do not depend on the security
context, so they run on blocks of contexts dtncloud does not implement too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dtncloud.bpsec.asb import AbstractSecurityBlock
from dtncloud.bpv7.blocks import PAYLOAD_BLOCK_NUMBER, CanonicalBlock
from dtncloud.bpv7.bundle import Bundle
from dtncloud.bpv7.flags import BlockType, StatusReportReason
from dtncloud.cborutil import MAX_UINT64
from dtncloud.errors import ConfigError, SecurityPolicyError

_UNEXPECTED = int(StatusReportReason.UNEXPECTED_SECURITY_OPERATION)
_FAILED = int(StatusReportReason.FAILED_SECURITY_OPERATION)
_CONFLICTING = int(StatusReportReason.CONFLICTING_SECURITY_OPERATION)

BIB = BlockType.BLOCK_INTEGRITY
BCB = BlockType.BLOCK_CONFIDENTIALITY
SECURITY_BLOCK_TYPES = (BIB, BCB)


@dataclass(slots=True)
class SecurityMap:
    """Who protects what in one bundle (built by :func:`survey`; dicts keep wire order)."""

    blocks: dict[int, CanonicalBlock] = field(default_factory=dict)
    bibs: dict[int, AbstractSecurityBlock] = field(default_factory=dict)
    bcbs: dict[int, AbstractSecurityBlock] = field(default_factory=dict)
    #: target block number -> number of the BCB that encrypts it
    encrypted_by: dict[int, int] = field(default_factory=dict)
    #: target block number (0 = primary) -> number of the BIB that covers it
    signed_by: dict[int, int] = field(default_factory=dict)
    #: BIBs whose data is ciphertext, in wire order
    encrypted_bibs: list[int] = field(default_factory=list)


def describe(bundle_blocks: dict[int, CanonicalBlock], number: int) -> str:
    """``"block 2 (BUNDLE_AGE)"``-style name of a target, for error messages."""
    if number == 0:
        return "the primary block"
    block = bundle_blocks.get(number)
    if block is None:
        return f"block {number}"
    kind = block.block_type
    return f"block {number} ({kind.name if isinstance(kind, BlockType) else f'type {kind}'})"


def survey(bundle: Bundle) -> SecurityMap:
    """Parse every readable security block of ``bundle`` and check RFC 9172's target rules.

    Raises :class:`~dtncloud.bpsec.MalformedSecurityBlock` for a security block whose data is
    not an ASB and :class:`~dtncloud.errors.SecurityPolicyError` for a broken rule.
    """
    smap = SecurityMap(blocks={b.number: b for b in bundle.blocks})
    blocks = smap.blocks
    # BCBs first: they are never encrypted, and they tell which BIBs are.
    for block in bundle.blocks:
        if block.type_code != BCB:
            continue
        number = block.number
        asb = AbstractSecurityBlock.decode(block.data)
        smap.bcbs[number] = asb
        for target in asb.targets:
            what = describe(blocks, target)
            if target == 0:
                raise SecurityPolicyError(
                    f"BCB block {number} targets the primary block, which RFC 9172 forbids",
                    reason=_UNEXPECTED,
                )
            if target == number:
                raise SecurityPolicyError(f"BCB block {number} targets itself", reason=_UNEXPECTED)
            if target not in blocks:
                raise SecurityPolicyError(
                    f"BCB block {number} targets block {target}, which is not in the bundle",
                    reason=_FAILED,
                )
            if blocks[target].type_code == BCB:
                raise SecurityPolicyError(
                    f"BCB block {number} targets BCB {what}; a BCB never targets a BCB",
                    reason=_UNEXPECTED,
                )
            other = smap.encrypted_by.setdefault(target, number)
            if other != number:
                raise SecurityPolicyError(
                    f"{what} is the target of two BCBs (blocks {other} and {number})",
                    reason=_CONFLICTING,
                )
    for block in bundle.blocks:
        if block.type_code != BIB:
            continue
        number = block.number
        if number in smap.encrypted_by:
            smap.encrypted_bibs.append(number)
            continue
        asb = AbstractSecurityBlock.decode(block.data)
        smap.bibs[number] = asb
        for target in asb.targets:
            what = describe(blocks, target)
            if target == number:
                raise SecurityPolicyError(f"BIB block {number} targets itself", reason=_UNEXPECTED)
            if target != 0 and target not in blocks:
                raise SecurityPolicyError(
                    f"BIB block {number} targets block {target}, which is not in the bundle",
                    reason=_FAILED,
                )
            if target != 0 and blocks[target].type_code in SECURITY_BLOCK_TYPES:
                raise SecurityPolicyError(
                    f"BIB block {number} targets security {what}; "
                    "a BIB never targets a BIB or a BCB",
                    reason=_UNEXPECTED,
                )
            other = smap.signed_by.setdefault(target, number)
            if other != number:
                raise SecurityPolicyError(
                    f"{what} is the target of two BIBs (blocks {other} and {number})",
                    reason=_CONFLICTING,
                )
            if target in smap.encrypted_by:
                raise SecurityPolicyError(
                    f"BIB block {number} covers {what}, which BCB block "
                    f"{smap.encrypted_by[target]} encrypts without encrypting the BIB",
                    reason=_CONFLICTING,
                )
    return smap


def check_security(bundle: Bundle) -> None:
    """Raise if ``bundle``'s security blocks break a rule of RFC 9172 (see :func:`survey`)."""
    survey(bundle)


def check_can_sign(smap: SecurityMap, target: int) -> None:
    """Raise :class:`SecurityPolicyError` unless a new BIB may cover ``target``."""
    what = describe(smap.blocks, target)
    if target != 0 and target not in smap.blocks:
        raise SecurityPolicyError(f"no block number {target} in the bundle", reason=_FAILED)
    if target != 0 and smap.blocks[target].type_code in SECURITY_BLOCK_TYPES:
        raise SecurityPolicyError(
            f"a BIB never targets a security block, and {what} is one", reason=_UNEXPECTED
        )
    if target in smap.encrypted_by:
        raise SecurityPolicyError(
            f"{what} is encrypted by BCB block {smap.encrypted_by[target]}; a BIB is never "
            "computed over ciphertext (RFC 9172 section 3.9)",
            reason=_CONFLICTING,
        )
    if target in smap.signed_by:
        raise SecurityPolicyError(
            f"{what} is already covered by BIB block {smap.signed_by[target]}",
            reason=_CONFLICTING,
        )


def check_can_encrypt(smap: SecurityMap, target: int) -> None:
    """Raise :class:`SecurityPolicyError` unless a new BCB may encrypt ``target``."""
    what = describe(smap.blocks, target)
    if target == 0:
        raise SecurityPolicyError("a BCB never targets the primary block", reason=_UNEXPECTED)
    if target not in smap.blocks:
        raise SecurityPolicyError(f"no block number {target} in the bundle", reason=_FAILED)
    if smap.blocks[target].type_code == BCB:
        raise SecurityPolicyError(
            f"a BCB never targets a BCB, and {what} is one", reason=_UNEXPECTED
        )
    if target in smap.encrypted_by:
        raise SecurityPolicyError(
            f"{what} is already encrypted by BCB block {smap.encrypted_by[target]}",
            reason=_CONFLICTING,
        )


def insertion_index(bundle: Bundle, type_code: int) -> int:
    """Where a new security block goes in ``bundle.blocks``.

    Security blocks sit right after the primary block: BIBs first, then BCBs, each kind in the
    order it was added. That is the layout of every RFC 9173 example (A.3: BIB, BCB, bundle
    age, payload; A.4: BIB, BCB, payload), and it puts security blocks before their targets, so
    a receiver that streams a bundle learns what is protected before it reads it.
    """
    kinds = (BIB,) if type_code == BIB else SECURITY_BLOCK_TYPES
    index = 0
    for block in bundle.blocks:
        if block.type_code not in kinds:
            break
        index += 1
    return index


def insert_security_block(bundle: Bundle, block: CanonicalBlock) -> Bundle:
    """``bundle`` with ``block`` added at its :func:`insertion_index`."""
    blocks = list(bundle.blocks)
    blocks.insert(insertion_index(bundle, block.type_code), block)
    return bundle.with_blocks(blocks)


def new_block_number(bundle: Bundle, requested: int | None) -> int:
    """The number for a new security block: ``requested``, or the next free one when None.

    A number that is taken or not a canonical block's (2 or more) is the caller's mistake,
    not a broken protocol rule, so it raises :class:`~dtncloud.errors.ConfigError`.
    """
    if requested is None:
        return bundle.next_block_number()
    if type(requested) is not int or not PAYLOAD_BLOCK_NUMBER < requested <= MAX_UINT64:
        raise ConfigError(f"block number {requested!r} is not available (2 or more)")
    if any(b.number == requested for b in bundle.blocks):
        raise ConfigError(f"block number {requested} is already in use")
    return requested
