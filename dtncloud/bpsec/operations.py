"""The BPSec operations: sign, verify, accept, encrypt, decrypt (RFC 9172 with RFC 9173).

Every function takes a :class:`~dtncloud.bpv7.Bundle` and returns a new one (or a report); none
does I/O or keeps state. The adding side (:func:`sign`, :func:`encrypt`) checks RFC 9172's rules
and raises :class:`~dtncloud.errors.SecurityPolicyError` rather than build a bundle that breaks
them; caller mistakes that are not protocol rules (a wrong key length, an unknown variant, a
block number in use) raise :class:`~dtncloud.errors.ConfigError`. The receiving side
(:func:`verify`, :func:`accept_integrity`, :func:`decrypt`) raises a
:class:`~dtncloud.errors.SecurityError` whose ``reason`` is the status-report reason code for
discarding the bundle: 13 for a security context dtncloud does not implement, 14/16 for broken
target rules, 15 for a failed check or a missing key.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum, IntFlag
from typing import TypeVar

from dtncloud.bpsec.asb import AbstractSecurityBlock
from dtncloud.bpsec.bcb_aes_gcm import (
    BCB_AES_GCM,
    BCB_CONTEXT,
    DEFAULT_IV_SIZE,
    IV_SIZES,
    RESULT_AUTH_TAG,
    AadScope,
    AesVariant,
    BcbParameters,
    additional_authenticated_data,
    auth_tag,
    check_key,
    open_sealed,
    seal,
)
from dtncloud.bpsec.bib_hmac_sha2 import (
    BIB_CONTEXT,
    BIB_HMAC_SHA2,
    RESULT_EXPECTED_HMAC,
    BibParameters,
    IntegrityScope,
    ShaVariant,
    compute_hmac,
    expected_hmac,
    hmac_matches,
    integrity_protected_plaintext,
)
from dtncloud.bpsec.keys import Keys, as_key_ring, wrap_key
from dtncloud.bpsec.policy import (
    BCB,
    BIB,
    SecurityMap,
    check_can_encrypt,
    check_can_sign,
    describe,
    insert_security_block,
    new_block_number,
    survey,
)
from dtncloud.bpsec.scope import block_header, header_of, valid_scope
from dtncloud.bpv7.blocks import CanonicalBlock
from dtncloud.bpv7.bundle import Bundle
from dtncloud.bpv7.encode import encode_primary
from dtncloud.bpv7.flags import BlockFlag, StatusReportReason
from dtncloud.cborutil import MAX_UINT64
from dtncloud.eid import EID, parse_eid
from dtncloud.errors import (
    ConfigError,
    DecryptionFailed,
    IntegrityCheckFailed,
    MissingKey,
    SecurityPolicyError,
)

_UNEXPECTED = int(StatusReportReason.UNEXPECTED_SECURITY_OPERATION)
_FAILED = int(StatusReportReason.FAILED_SECURITY_OPERATION)

_E = TypeVar("_E", bound=IntEnum)
_F = TypeVar("_F", bound=IntFlag)


@dataclass(frozen=True, slots=True)
class VerifiedTarget:
    """One security target whose integrity :func:`verify` confirmed."""

    target: int  #: block number of the target, 0 for the primary block
    bib: int  #: block number of the BIB that covers it
    security_source: EID
    sha_variant: ShaVariant
    scope: IntegrityScope


# -- adding security -------------------------------------------------------------------------


def sign(
    bundle: Bundle,
    targets: Iterable[int],
    *,
    key: bytes,
    security_source: EID | str,
    sha_variant: ShaVariant | int = ShaVariant.HMAC_384,
    scope: IntegrityScope | int = IntegrityScope.ALL,
    key_encryption_key: bytes | None = None,
    block_number: int | None = None,
    block_flags: BlockFlag = BlockFlag.NONE,
) -> Bundle:
    """Add one BIB (BIB-HMAC-SHA2) covering ``targets`` (block numbers, 0 = primary block).

    ``key`` is the HMAC key. With ``key_encryption_key`` the HMAC key travels in the BIB,
    wrapped (RFC 3394) under that KEK, and the verifier needs only the KEK. The BIB gets
    ``block_number`` (default: the next free number) and goes after any BIBs at the front of
    the bundle. Raises :class:`SecurityPolicyError` if a target is a security block, is
    already covered by a BIB, or is encrypted by a BCB.
    """
    wanted = _target_list(targets)
    variant = _member(ShaVariant, sha_variant, "SHA variant")
    flags = _scope(IntegrityScope, scope)
    source = parse_eid(security_source)
    hmac_key = _key(key, "key")
    smap = survey(bundle)
    for target in wanted:
        check_can_sign(smap, target)
    number = new_block_number(bundle, block_number)
    block_flags = BlockFlag(block_flags)
    header = block_header(BIB, number, block_flags)
    wrapped = _wrap(key_encryption_key, hmac_key)
    primary = encode_primary(bundle.primary)
    results = []
    for target in wanted:
        block = None if target == 0 else smap.blocks[target]
        ippt = integrity_protected_plaintext(flags, primary, block, header)
        results.append(((RESULT_EXPECTED_HMAC, compute_hmac(variant, hmac_key, ippt)),))
    asb = AbstractSecurityBlock(
        wanted,
        BIB_HMAC_SHA2,
        source,
        BibParameters(variant, flags, wrapped).to_pairs(),
        tuple(results),
    )
    bib = CanonicalBlock(BIB, number, asb.encode(), block_flags)
    return insert_security_block(bundle, bib)


def encrypt(
    bundle: Bundle,
    targets: Iterable[int],
    *,
    key: bytes,
    security_source: EID | str,
    iv: bytes | None = None,
    aes_variant: AesVariant | int = AesVariant.A256GCM,
    scope: AadScope | int = AadScope.ALL,
    key_encryption_key: bytes | None = None,
    block_number: int | None = None,
    block_flags: BlockFlag = BlockFlag.NONE,
) -> Bundle:
    """Add one BCB (BCB-AES-GCM) encrypting ``targets`` in place.

    ``key`` is the content-encryption key (16 bytes for A128GCM, 32 for A256GCM); with
    ``key_encryption_key`` it travels in the BCB, wrapped under that KEK. ``iv`` defaults to 12
    random bytes from :mod:`secrets`; pass one only to reproduce a known output. Every BIB
    that covers one of ``targets`` is encrypted by the same BCB, as RFC 9172 section 3.9
    requires; it is listed first among the BCB's targets, as in RFC 9173 example A.4. The BCB
    carries block flag REPLICATE (plus ``block_flags``) and goes after the security blocks at
    the front of the bundle.

    One BCB has one IV parameter, so all of its targets are encrypted under the same key and
    IV (RFC 9173's design, seen in A.4). AES-GCM is weak when a key and IV pair is reused;
    prefer one target per call, with a fresh IV (the default) or a fresh wrapped key each time.
    """
    wanted = _target_list(targets)
    variant = _member(AesVariant, aes_variant, "AES variant")
    flags = _scope(AadScope, scope)
    source = parse_eid(security_source)
    content_key = _key(key, "key")
    check_key(variant, content_key)
    if iv is None:
        iv = secrets.token_bytes(DEFAULT_IV_SIZE)
    elif not isinstance(iv, bytes | bytearray) or len(iv) not in IV_SIZES:
        raise ConfigError("the IV must be 12 bytes (16 are accepted)")
    iv = bytes(iv)
    smap = survey(bundle)
    for target in wanted:
        check_can_encrypt(smap, target)
    requested = set(wanted)
    covering = [
        n for n, asb in smap.bibs.items() if n not in requested and requested & {*asb.targets}
    ]
    all_targets = (*covering, *wanted)
    for target in wanted:
        bib = smap.bibs.get(target)
        if bib is not None and not set(bib.targets) & set(all_targets):
            raise SecurityPolicyError(
                f"BIB block {target} shares no target with this BCB; RFC 9172 lets a BCB "
                "encrypt a BIB only together with a block that BIB covers",
                reason=_UNEXPECTED,
            )
    number = new_block_number(bundle, block_number)
    bcb_flags = BlockFlag.REPLICATE | BlockFlag(block_flags)
    header = block_header(BCB, number, bcb_flags)
    wrapped = _wrap(key_encryption_key, content_key)
    primary = encode_primary(bundle.primary)
    ciphertexts: dict[int, bytes] = {}
    results = []
    for target in all_targets:
        block = smap.blocks[target]
        aad = additional_authenticated_data(flags, primary, block, header)
        ciphertexts[target], tag = seal(content_key, iv, block.data, aad)
        results.append(((RESULT_AUTH_TAG, tag),))
    asb = AbstractSecurityBlock(
        all_targets,
        BCB_AES_GCM,
        source,
        BcbParameters(iv, variant, flags, wrapped).to_pairs(),
        tuple(results),
    )
    bcb = CanonicalBlock(BCB, number, asb.encode(), bcb_flags)
    encrypted = bundle.with_blocks(
        b.with_data(ciphertexts[b.number]) if b.number in ciphertexts else b for b in bundle.blocks
    )
    return insert_security_block(encrypted, bcb)


# -- receiving ----------------------------------------------------------------------------


def verify(bundle: Bundle, keys: Keys, *, partial: bool = False) -> list[VerifiedTarget]:
    """Check every BIB of ``bundle``; return what was verified, in wire order.

    ``keys`` is a :class:`~dtncloud.bpsec.KeyRing` or one key for every source; for a BIB with
    a wrapped key, the key found is the KEK. Raises :class:`IntegrityCheckFailed` (reason 15)
    naming the block whose HMAC does not match, :class:`MissingKey` when no key fits a BIB or
    a BIB is still encrypted (decrypt first), :class:`~dtncloud.bpsec.UnknownSecurityContext`
    (reason 13) for a BIB of another security context, and the errors of
    :func:`~dtncloud.bpsec.policy.survey`. With ``partial`` the BIBs it cannot process
    (encrypted, no key, unknown context) are skipped instead, and only checked ones are
    returned; a mismatch still raises.
    """
    ring = as_key_ring(keys)
    smap = survey(bundle)
    if smap.encrypted_bibs and not partial:
        number = smap.encrypted_bibs[0]
        raise MissingKey(
            f"BIB block {number} is encrypted by BCB block {smap.encrypted_by[number]}: "
            "decrypt the bundle before verifying it",
            reason=_FAILED,
        )
    primary = encode_primary(bundle.primary)
    verified: list[VerifiedTarget] = []
    for number, asb, key in BIB_CONTEXT.processable(smap.bibs, ring, partial):
        verified.extend(_verify_bib(smap, number, asb, key, primary))
    return verified


def accept_integrity(bundle: Bundle, keys: Keys, *, partial: bool = False) -> Bundle:
    """:func:`verify`, then remove every verified BIB, as a security acceptor does (RFC 9172
    section 5.1.2). With ``partial``, BIBs that could not be processed stay in the bundle."""
    done = {v.bib for v in verify(bundle, keys, partial=partial)}
    return bundle.with_blocks(b for b in bundle.blocks if b.number not in done)


def decrypt(bundle: Bundle, keys: Keys, *, partial: bool = False) -> Bundle:
    """Decrypt every BCB's targets and remove the BCBs (RFC 9172 section 5.1.1).

    Raises :class:`DecryptionFailed` (reason 15) naming the block whose authentication tag
    does not match (wrong key, or altered ciphertext, headers or primary block),
    :class:`MissingKey` when no key fits a BCB, :class:`~dtncloud.bpsec.UnknownSecurityContext`
    (reason 13) for a BCB of another context, and policy errors. With ``partial`` the BCBs it
    cannot process (no key, unknown context) stay, with their targets still encrypted. Nothing
    is returned unless every processed BCB decrypted.
    """
    ring = as_key_ring(keys)
    smap = survey(bundle)
    primary = encode_primary(bundle.primary)
    plaintexts: dict[int, bytes] = {}
    done: dict[int, AbstractSecurityBlock] = {}
    for number, asb, key in BCB_CONTEXT.processable(smap.bcbs, ring, partial):
        plaintexts.update(_decrypt_bcb(smap, number, asb, key, primary))
        done[number] = asb
    result = bundle.with_blocks(
        b.with_data(plaintexts[b.number]) if b.number in plaintexts else b
        for b in bundle.blocks
        if b.number not in done
    )
    after = survey(result)
    for number, asb in done.items():
        for target in asb.targets:
            bib = after.bibs.get(target)
            if bib is not None and not set(bib.targets) & set(asb.targets):
                raise SecurityPolicyError(
                    f"BCB block {number} encrypted BIB block {target}, which shares no target "
                    "with it",
                    reason=_UNEXPECTED,
                )
    return result


# -- one block at a time ----------------------------------------------------------------------


def _verify_bib(
    smap: SecurityMap, number: int, asb: AbstractSecurityBlock, key: bytes, primary: bytes
) -> list[VerifiedTarget]:
    params = BibParameters.from_asb(asb, number)
    hmac_key = BIB_CONTEXT.unwrap(asb, number, key, params.wrapped_key)
    header = header_of(smap.blocks[number])
    verified = []
    for index, target in enumerate(asb.targets):
        expected = expected_hmac(asb, index, number)
        block = None if target == 0 else smap.blocks[target]
        ippt = integrity_protected_plaintext(params.scope, primary, block, header)
        if not hmac_matches(expected, compute_hmac(params.sha_variant, hmac_key, ippt)):
            raise IntegrityCheckFailed(
                f"BIB block {number}: {describe(smap.blocks, target)} does not match its "
                "HMAC (altered, or signed with another key)"
            )
        verified.append(
            VerifiedTarget(target, number, asb.source, params.sha_variant, params.scope)
        )
    return verified


def _decrypt_bcb(
    smap: SecurityMap, number: int, asb: AbstractSecurityBlock, key: bytes, primary: bytes
) -> dict[int, bytes]:
    params = BcbParameters.from_asb(asb, number)
    content_key = BCB_CONTEXT.unwrap(asb, number, key, params.wrapped_key)
    if len(content_key) != params.aes_variant.key_size:
        raise DecryptionFailed(
            f"BCB block {number}: {params.aes_variant.name} needs a "
            f"{params.aes_variant.key_size}-byte key, the key found has {len(content_key)}"
        )
    header = header_of(smap.blocks[number])
    plaintexts = {}
    for index, target in enumerate(asb.targets):
        tag = auth_tag(asb, index, number)
        block = smap.blocks[target]
        aad = additional_authenticated_data(params.scope, primary, block, header)
        plaintext = open_sealed(content_key, params.iv, block.data, tag, aad)
        if plaintext is None:
            raise DecryptionFailed(
                f"BCB block {number}: {describe(smap.blocks, target)} fails authentication "
                "(wrong key, or altered ciphertext, headers or primary block)"
            )
        plaintexts[target] = plaintext
    return plaintexts


# -- checks and helpers -------------------------------------------------------------------------


def _target_list(targets: Iterable[int]) -> tuple[int, ...]:
    try:
        wanted = tuple(targets)
    except TypeError:
        raise ConfigError("targets must be an iterable of block numbers") from None
    if not wanted:
        raise ConfigError("a security block needs at least one target")
    if not all(type(t) is int and 0 <= t <= MAX_UINT64 for t in wanted):
        raise ConfigError(f"targets must be block numbers, not {wanted!r}")
    if len(set(wanted)) != len(wanted):
        raise ConfigError(f"targets {list(wanted)} name a block twice")
    return wanted


def _member(enum: type[_E], value: object, what: str) -> _E:
    try:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(value)
        return enum(value)
    except ValueError:
        allowed = ", ".join(f"{m.value} ({m.name})" for m in enum)
        raise ConfigError(f"unsupported {what} {value!r}; use one of {allowed}") from None


def _scope(flag_type: type[_F], value: object) -> _F:
    if not isinstance(value, int) or not valid_scope(value):
        raise ConfigError(f"scope flags must be an integer from 0 to 7, not {value!r}")
    return flag_type(value)


def _key(key: object, name: str) -> bytes:
    if not isinstance(key, bytes | bytearray) or not key:
        raise ConfigError(f"{name} must be a non-empty byte string")
    return bytes(key)


def _wrap(key_encryption_key: bytes | None, key: bytes) -> bytes | None:
    """The wrapped key parameter for ``key``: None unless the caller gave a KEK."""
    if key_encryption_key is None:
        return None
    return wrap_key(_key(key_encryption_key, "key_encryption_key"), key)
