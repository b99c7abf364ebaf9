"""BIB-HMAC-SHA2, security context 1 of RFC 9173 (section 3): integrity by HMAC-SHA2.

Parameters (all optional on receipt; dtncloud always writes variant and scope, as the RFC 9173
examples do):

====  ======================  ======================================================
 id   name                    value
====  ======================  ======================================================
 1    SHA variant             5 = HMAC 256/256, 6 = HMAC 384/384 (default), 7 = HMAC 512/512
 2    wrapped key             RFC 3394 AES key wrap of the HMAC key (byte string)
 3    integrity scope flags   0x1 primary block, 0x2 target header, 0x4 security header;
                              default 7
====  ======================  ======================================================

The one result per target has id 1: the HMAC (32, 48 or 64 bytes) of the target's
integrity-protected plaintext (IPPT, :func:`integrity_protected_plaintext`).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum, IntFlag
from typing import Any

from dtncloud.bpsec.asb import AbstractSecurityBlock, Pair
from dtncloud.bpsec.scope import ContextSpec, header_of, scope_prefix
from dtncloud.bpv7.blocks import CanonicalBlock
from dtncloud.cborutil import encode_bytes
from dtncloud.errors import ConfigError, IntegrityCheckFailed

#: The security context ID of BIB-HMAC-SHA2.
BIB_HMAC_SHA2 = 1

PARAM_SHA_VARIANT = 1
PARAM_WRAPPED_KEY = 2
PARAM_SCOPE = 3
RESULT_EXPECTED_HMAC = 1

#: How this context reads a received BIB (see :class:`~dtncloud.bpsec.scope.ContextSpec`).
BIB_CONTEXT = ContextSpec(
    context_id=BIB_HMAC_SHA2,
    name="BIB-HMAC-SHA2",
    block_kind="BIB",
    purpose="integrity",
    error=IntegrityCheckFailed,
    parameter_ids=frozenset({PARAM_SHA_VARIANT, PARAM_WRAPPED_KEY, PARAM_SCOPE}),
    wrapped_key_id=PARAM_WRAPPED_KEY,
    scope_id=PARAM_SCOPE,
    scope_name="integrity scope flags",
    result_id=RESULT_EXPECTED_HMAC,
    result_name="expected HMAC",
)


class ShaVariant(IntEnum):
    """SHA variant parameter values (COSE algorithm IDs of the HMACs)."""

    HMAC_256 = 5
    HMAC_384 = 6
    HMAC_512 = 7

    @property
    def digest_size(self) -> int:
        return {5: 32, 6: 48, 7: 64}[self.value]


class IntegrityScope(IntFlag):
    """Integrity scope flags: what the IPPT covers besides the target's data."""

    NONE = 0
    PRIMARY_BLOCK = 0x1
    TARGET_HEADER = 0x2
    SECURITY_HEADER = 0x4
    ALL = 0x7


_HASHES: dict[int, Callable[[], Any]] = {
    ShaVariant.HMAC_256: hashlib.sha256,
    ShaVariant.HMAC_384: hashlib.sha384,
    ShaVariant.HMAC_512: hashlib.sha512,
}


@dataclass(frozen=True, slots=True)
class BibParameters:
    """The context parameters of one BIB-HMAC-SHA2 block."""

    sha_variant: ShaVariant = ShaVariant.HMAC_384
    scope: IntegrityScope = IntegrityScope.ALL
    wrapped_key: bytes | None = None

    def to_pairs(self) -> tuple[Pair, ...]:
        """The ``[id, value]`` parameter list, in ID order."""
        pairs: list[Pair] = [(PARAM_SHA_VARIANT, int(self.sha_variant))]
        if self.wrapped_key is not None:
            pairs.append((PARAM_WRAPPED_KEY, self.wrapped_key))
        pairs.append((PARAM_SCOPE, int(self.scope)))
        return tuple(pairs)

    @classmethod
    def from_asb(cls, asb: AbstractSecurityBlock, block_number: int) -> BibParameters:
        """The parameters of a received BIB, defaults filled in.

        Raises :class:`IntegrityCheckFailed` (reason 15) for a parameter this context does not
        define, a repeated parameter or a value of the wrong kind."""
        seen = BIB_CONTEXT.parameters(asb, block_number)
        variant = seen.get(PARAM_SHA_VARIANT, ShaVariant.HMAC_384)
        if type(variant) is not int and not isinstance(variant, ShaVariant):
            raise BIB_CONTEXT.fail(block_number, f"SHA variant {variant!r:.20} is not an integer")
        if variant not in _HASHES:
            raise BIB_CONTEXT.fail(
                block_number, f"unsupported SHA variant {variant} (5, 6 or 7 expected)"
            )
        scope = BIB_CONTEXT.scope(seen, block_number)
        wrapped = BIB_CONTEXT.wrapped_key(seen, block_number)
        return cls(ShaVariant(variant), IntegrityScope(scope), wrapped)


def integrity_protected_plaintext(
    scope: int, primary: bytes, target: CanonicalBlock | None, bib_header: bytes
) -> bytes:
    """The IPPT of RFC 9173 section 3.7 for one target.

    ``primary`` is the primary block's encoding, ``target`` the target block or ``None`` for
    the primary block, ``bib_header`` the BIB's own header (:func:`~scope.block_header`). The
    target's data is appended as a CBOR byte string; for the primary block that is its whole
    encoding wrapped in a byte string.
    """
    if target is None:
        return scope_prefix(scope, primary, None, bib_header) + encode_bytes(primary)
    return scope_prefix(scope, primary, header_of(target), bib_header) + encode_bytes(target.data)


def compute_hmac(variant: ShaVariant, key: bytes, ippt: bytes) -> bytes:
    """HMAC-SHA2 of ``ippt`` under ``key``; the full digest, never truncated."""
    hash_factory = _HASHES.get(variant)
    if hash_factory is None:
        raise ConfigError(f"unsupported SHA variant {variant!r} (5, 6 or 7)")
    return hmac.new(key, ippt, hash_factory).digest()


def expected_hmac(asb: AbstractSecurityBlock, index: int, block_number: int) -> bytes:
    """The expected HMAC that a received BIB carries for ``asb.targets[index]``."""
    value = BIB_CONTEXT.result(asb, index, block_number)
    if type(value) is not bytes:
        raise BIB_CONTEXT.fail(
            block_number, f"the HMAC for target {asb.targets[index]} is not bytes"
        )
    return value


def hmac_matches(expected: bytes, computed: bytes) -> bool:
    """Constant-time comparison of an expected and a computed HMAC."""
    return hmac.compare_digest(expected, computed)
