"""BCB-AES-GCM, security context 2 of RFC 9173 (section 4): confidentiality by AES-GCM.

Parameters:

====  ==================  ==========================================================
 id   name                value
====  ==================  ==========================================================
 1    IV                  byte string, 12 bytes (16 accepted); required
 2    AES variant         1 = A128GCM, 3 = A256GCM (default)
 3    wrapped key         RFC 3394 AES key wrap of the content-encryption key
 4    AAD scope flags     0x1 primary block, 0x2 target header, 0x4 security header;
                          default 7
====  ==================  ==========================================================

Each target's plaintext is its raw block-type-specific data (not wrapped in a byte string);
the ciphertext, of the same length, replaces it, and the one result per target (id 1) is the
16-byte authentication tag. The AAD is the scope prefix of :mod:`dtncloud.bpsec.scope`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, IntFlag

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from dtncloud.bpsec.asb import AbstractSecurityBlock, Pair
from dtncloud.bpsec.scope import ContextSpec, header_of, scope_prefix
from dtncloud.bpv7.blocks import CanonicalBlock
from dtncloud.errors import ConfigError, DecryptionFailed

#: The security context ID of BCB-AES-GCM.
BCB_AES_GCM = 2

PARAM_IV = 1
PARAM_AES_VARIANT = 2
PARAM_WRAPPED_KEY = 3
PARAM_SCOPE = 4
RESULT_AUTH_TAG = 1

TAG_SIZE = 16
IV_SIZES = (12, 16)
DEFAULT_IV_SIZE = 12

#: How this context reads a received BCB (see :class:`~dtncloud.bpsec.scope.ContextSpec`).
BCB_CONTEXT = ContextSpec(
    context_id=BCB_AES_GCM,
    name="BCB-AES-GCM",
    block_kind="BCB",
    purpose="confidentiality",
    error=DecryptionFailed,
    parameter_ids=frozenset({PARAM_IV, PARAM_AES_VARIANT, PARAM_WRAPPED_KEY, PARAM_SCOPE}),
    wrapped_key_id=PARAM_WRAPPED_KEY,
    scope_id=PARAM_SCOPE,
    scope_name="AAD scope flags",
    result_id=RESULT_AUTH_TAG,
    result_name="authentication tag",
)


class AesVariant(IntEnum):
    """AES variant parameter values (COSE algorithm IDs)."""

    A128GCM = 1
    A256GCM = 3

    @property
    def key_size(self) -> int:
        return 16 if self is AesVariant.A128GCM else 32


class AadScope(IntFlag):
    """AAD scope flags: what the authentication covers besides the ciphertext."""

    NONE = 0
    PRIMARY_BLOCK = 0x1
    TARGET_HEADER = 0x2
    SECURITY_HEADER = 0x4
    ALL = 0x7


@dataclass(frozen=True, slots=True)
class BcbParameters:
    """The context parameters of one BCB-AES-GCM block."""

    iv: bytes
    aes_variant: AesVariant = AesVariant.A256GCM
    scope: AadScope = AadScope.ALL
    wrapped_key: bytes | None = None

    def to_pairs(self) -> tuple[Pair, ...]:
        """The ``[id, value]`` parameter list, in ID order."""
        pairs: list[Pair] = [(PARAM_IV, self.iv), (PARAM_AES_VARIANT, int(self.aes_variant))]
        if self.wrapped_key is not None:
            pairs.append((PARAM_WRAPPED_KEY, self.wrapped_key))
        pairs.append((PARAM_SCOPE, int(self.scope)))
        return tuple(pairs)

    @classmethod
    def from_asb(cls, asb: AbstractSecurityBlock, block_number: int) -> BcbParameters:
        """The parameters of a received BCB, defaults filled in.

        Raises :class:`DecryptionFailed` (reason 15) when the IV is missing or malformed, for a
        parameter this context does not define, a repeated one or a value of the wrong kind."""
        seen = BCB_CONTEXT.parameters(asb, block_number)
        iv = seen.get(PARAM_IV)
        if type(iv) is not bytes or len(iv) not in IV_SIZES:
            raise BCB_CONTEXT.fail(
                block_number, "the IV parameter is missing or is not a 12- or 16-byte string"
            )
        variant = seen.get(PARAM_AES_VARIANT, AesVariant.A256GCM)
        if not isinstance(variant, int) or isinstance(variant, bool) or variant not in (1, 3):
            raise BCB_CONTEXT.fail(
                block_number, f"unsupported AES variant {variant!r:.20} (1 or 3 expected)"
            )
        scope = BCB_CONTEXT.scope(seen, block_number)
        wrapped = BCB_CONTEXT.wrapped_key(seen, block_number)
        return cls(iv, AesVariant(variant), AadScope(scope), wrapped)


def additional_authenticated_data(
    scope: int, primary: bytes, target: CanonicalBlock, bcb_header: bytes
) -> bytes:
    """The AAD of RFC 9173 section 4.7.2 for one target (a BCB never targets the primary)."""
    return scope_prefix(scope, primary, header_of(target), bcb_header)


def check_key(variant: AesVariant, key: bytes) -> None:
    """Raise :class:`~dtncloud.errors.ConfigError` unless ``key`` fits ``variant``."""
    if len(key) != variant.key_size:
        raise ConfigError(
            f"{variant.name} needs a {variant.key_size}-byte key, not {len(key)} bytes"
        )


def seal(key: bytes, iv: bytes, plaintext: bytes, aad: bytes) -> tuple[bytes, bytes]:
    """AES-GCM encryption: ``(ciphertext, tag)``, the ciphertext as long as the plaintext."""
    sealed = AESGCM(key).encrypt(iv, plaintext, aad)
    return sealed[:-TAG_SIZE], sealed[-TAG_SIZE:]


def open_sealed(key: bytes, iv: bytes, ciphertext: bytes, tag: bytes, aad: bytes) -> bytes | None:
    """AES-GCM decryption; None when the tag does not authenticate the data."""
    if len(tag) != TAG_SIZE or len(key) not in (16, 32):
        return None
    try:
        return AESGCM(key).decrypt(iv, ciphertext + tag, aad)
    except InvalidTag:
        return None


def auth_tag(asb: AbstractSecurityBlock, index: int, block_number: int) -> bytes:
    """The authentication tag a received BCB carries for ``asb.targets[index]``."""
    tag = BCB_CONTEXT.result(asb, index, block_number)
    if type(tag) is not bytes or len(tag) != TAG_SIZE:
        raise BCB_CONTEXT.fail(
            block_number, f"the tag for target {asb.targets[index]} is not a {TAG_SIZE}-byte string"
        )
    return tag
