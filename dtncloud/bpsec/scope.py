"""What the two RFC 9173 security contexts share: the scope prefix, and reading received blocks.

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

Both contexts also read a received block the same way: the key looked up by context and
source, each parameter at most once and only the IDs the context defines, the scope flags and
wrapped key parameters checked alike, a wrapped key unwrapped by the key found, and exactly one
result per target. :class:`ContextSpec` holds what differs (IDs, names, the error class), so
that reading is written once; each context module defines its own spec.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from dtncloud.bpsec.asb import AbstractSecurityBlock
from dtncloud.bpsec.exceptions import UnknownSecurityContext
from dtncloud.bpsec.keys import KeyRing, unwrap_key
from dtncloud.bpv7.blocks import CanonicalBlock
from dtncloud.cborutil import MAX_UINT64, encode_uint
from dtncloud.errors import MissingKey, SecurityError

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


@dataclass(frozen=True, slots=True)
class ContextSpec:
    """What tells one RFC 9173 security context apart when a received block is read.

    A bad parameter, result or wrapped key raises ``error`` (reason 15) with a message that
    starts ``"<block_kind> block <number>: "``, the same for both contexts.
    """

    context_id: int
    name: str  #: "BIB-HMAC-SHA2"
    block_kind: str  #: "BIB" or "BCB", as error messages name the block
    purpose: str  #: "integrity" or "confidentiality"
    error: type[SecurityError]
    parameter_ids: frozenset[int]  #: every parameter ID the context defines
    wrapped_key_id: int
    scope_id: int
    scope_name: str  #: how the scope flags parameter is named in error messages
    result_id: int
    result_name: str  #: how the one result per target is named in error messages

    def fail(self, block_number: int, problem: str) -> SecurityError:
        """The error to raise for ``problem`` with a block of this context."""
        return self.error(f"{self.block_kind} block {block_number}: {problem}")

    def processable(
        self, security_blocks: dict[int, AbstractSecurityBlock], ring: KeyRing, partial: bool
    ) -> Iterator[tuple[int, AbstractSecurityBlock, bytes]]:
        """The BIBs or BCBs (by block number) of this context that have a key in ``ring``,
        each with that key. Without ``partial`` a block of another context (reason 13) or one
        without a key raises instead. A generator, so that the blocks before such a block are
        processed (and may raise) first, as they would in a plain loop."""
        kind = self.block_kind
        for number, asb in security_blocks.items():
            if asb.context_id != self.context_id:
                if partial:
                    continue
                raise UnknownSecurityContext(
                    f"{kind} block {number} uses security context {asb.context_id}, which "
                    f"dtncloud does not implement ({self.context_id}, {self.name}, is the "
                    f"{self.purpose} context it knows)"
                )
            key = ring.key_for(self.context_id, asb.source)
            if key is None:
                if partial:
                    continue
                raise MissingKey(
                    f"no key for {kind} block {number} from security source {asb.source}"
                )
            yield number, asb, key

    def unwrap(
        self, asb: AbstractSecurityBlock, block_number: int, key: bytes, wrapped: bytes | None
    ) -> bytes:
        """The key that protects the block's targets: ``key`` itself, or, when the block
        carries a wrapped key, the key that ``key`` unwraps (a KEK that does not fit is a failed
        check, like a wrong key)."""
        if wrapped is None:
            return key
        unwrapped = unwrap_key(key, wrapped)
        if unwrapped is None:
            raise self.fail(
                block_number, f"the key for {asb.source} does not unwrap its wrapped key"
            )
        return unwrapped

    def parameters(self, asb: AbstractSecurityBlock, block_number: int) -> dict[int, Any]:
        """The parameters of a received block by ID; raises for a repeated or unknown ID."""
        seen: dict[int, Any] = {}
        for pid, value in asb.parameters or ():
            if pid in seen:
                raise self.fail(block_number, f"parameter {pid} appears twice")
            seen[pid] = value
        unknown = set(seen) - self.parameter_ids
        if unknown:
            raise self.fail(block_number, f"unknown {self.name} parameter(s) {sorted(unknown)}")
        return seen

    def scope(self, parameters: dict[int, Any], block_number: int) -> int:
        """The scope flags parameter (default: all bits); raises for unassigned bits."""
        scope = parameters.get(self.scope_id, SCOPE_ALL)
        if not valid_scope(scope):
            raise self.fail(block_number, f"{self.scope_name} {scope!r:.20} use unassigned bits")
        return int(scope)

    def wrapped_key(self, parameters: dict[int, Any], block_number: int) -> bytes | None:
        """The wrapped key parameter, or None; raises unless it is a byte string."""
        wrapped = parameters.get(self.wrapped_key_id)
        if wrapped is not None and type(wrapped) is not bytes:
            raise self.fail(block_number, "the wrapped key is not a byte string")
        return wrapped

    def result(self, asb: AbstractSecurityBlock, index: int, block_number: int) -> Any:
        """The value of the one result a received block carries for ``asb.targets[index]``,
        unchecked (what it must be differs by context)."""
        results = asb.results[index]
        if len(results) != 1 or results[0][0] != self.result_id:
            raise self.fail(
                block_number,
                f"target {asb.targets[index]} needs exactly one result, "
                f"the {self.result_name} (id {self.result_id})",
            )
        return results[0][1]
