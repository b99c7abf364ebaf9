"""What the RFC 9173 contexts feed their algorithms besides the target data: the scope prefix.

Both default contexts extend what they protect with the same three optional parts, chosen by a
3-bit scope flags field (RFC 9173 sections 3.3.3/3.7 for BIB-HMAC-SHA2, 4.3.4/4.7.2 for
BCB-AES-GCM): the primary block, the target block's header, and the security block's header.
A *header* here is the block type code, block number and block processing control flags, each
as a deterministic CBOR unsigned integer. The prefix is::

    scope flags (uint) || [primary block] || [target header] || [security header]

BIB-HMAC-SHA2 appends the target's block-type-specific data as a CBOR byte string to make the
IPPT; BCB-AES-GCM uses the prefix alone as the AAD. When the target is the primary block, RFC
9173 section 3.7 skips the primary-block and target-header parts (the primary block would
appear twice, and it has no block header), while the scope flags field itself is unchanged.
"""

from __future__ import annotations

from dtncloud.bpv7.blocks import CanonicalBlock
from dtncloud.cborutil import MAX_UINT64, encode_uint

#: Scope flag bits, identical for the integrity scope and the AAD scope registries.
SCOPE_PRIMARY_BLOCK = 0x1
SCOPE_TARGET_HEADER = 0x2
SCOPE_SECURITY_HEADER = 0x4
#: Every bit RFC 9173 assigns; other bits are unassigned and refused.
SCOPE_ALL = SCOPE_PRIMARY_BLOCK | SCOPE_TARGET_HEADER | SCOPE_SECURITY_HEADER


def block_header(type_code: int, number: int, flags: int) -> bytes:
    """A block's header in RFC 9173's sense: type, number and flags as CBOR uints."""
    return encode_uint(int(type_code)) + encode_uint(int(number)) + encode_uint(int(flags))


def header_of(block: CanonicalBlock) -> bytes:
    """:func:`block_header` of an existing block."""
    return block_header(block.type_code, block.number, block.flags)


def valid_scope(scope: object) -> bool:
    """Whether ``scope`` is an integer using only the assigned scope bits."""
    return isinstance(scope, int) and not isinstance(scope, bool) and 0 <= scope <= SCOPE_ALL


def scope_prefix(
    scope: int,
    primary: bytes,
    target_header: bytes | None,
    security_header: bytes,
) -> bytes:
    """The scope part of an IPPT or AAD.

    ``primary`` is the primary block's full deterministic encoding, ``target_header`` the
    target's header or ``None`` when the target is the primary block, ``security_header`` the
    header of the BIB or BCB itself.
    """
    if not 0 <= scope <= MAX_UINT64:
        raise ValueError(f"scope flags {scope} are not an unsigned integer")
    parts = [encode_uint(int(scope))]
    if target_header is not None:
        if scope & SCOPE_PRIMARY_BLOCK:
            parts.append(primary)
        if scope & SCOPE_TARGET_HEADER:
            parts.append(target_header)
    if scope & SCOPE_SECURITY_HEADER:
        parts.append(security_header)
    return b"".join(parts)
