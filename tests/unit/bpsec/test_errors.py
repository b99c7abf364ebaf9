"""Every way sign/verify/encrypt/decrypt refuse: tampering, keys, contexts, RFC 9172 rules."""

from __future__ import annotations

import pytest

from dtncloud.bpsec import (
    AbstractSecurityBlock,
    AesVariant,
    IntegrityScope,
    KeyRing,
    MalformedSecurityBlock,
    UnknownSecurityContext,
    accept_integrity,
    check_security,
    decrypt,
    encrypt,
    sign,
    verify,
)
from dtncloud.bpsec.bcb_aes_gcm import BcbParameters, additional_authenticated_data, seal
from dtncloud.bpsec.scope import block_header
from dtncloud.bpv7 import (
    BlockFlag,
    Bundle,
    CanonicalBlock,
    bundle_age_block,
    encode_primary,
    hop_count_block,
)
from dtncloud.eid import EID
from dtncloud.errors import (
    ConfigError,
    DecryptionFailed,
    IntegrityCheckFailed,
    MissingKey,
    SecurityError,
    SecurityPolicyError,
)

HMAC_KEY = b"0123456789abcdef"
CEK = bytes(range(32))
KEK = b"K" * 16
SRC = "ipn:2.1"


def base() -> Bundle:
    return Bundle.create(
        source="ipn:2.1",
        destination="ipn:1.2",
        payload=b"the payload",
        creation_time=760_000_000_000,
        extension_blocks=[hop_count_block(30, 2, 0), bundle_age_block(5, 0)],
    )


def signed(targets: tuple[int, ...] = (1,), scope: int = IntegrityScope.ALL) -> Bundle:
    return sign(base(), targets, key=HMAC_KEY, security_source=SRC, scope=scope)


def sealed(bundle: Bundle | None = None, targets: tuple[int, ...] = (1,)) -> Bundle:
    return encrypt(bundle or base(), targets, key=CEK, security_source=SRC)


def flip(data: bytes, bit: int = 0) -> bytes:
    return bytes([data[0] ^ (1 << bit)]) + data[1:]


def security_block(type_code: int, number: int, asb: AbstractSecurityBlock) -> CanonicalBlock:
    return CanonicalBlock(type_code, number, asb.encode())


def asb(targets: tuple[int, ...], context: int = 1) -> AbstractSecurityBlock:
    return AbstractSecurityBlock(
        targets, context, EID.parse(SRC), None, tuple(((1, b"x" * 16),) for _ in targets)
    )


def with_block(bundle: Bundle, block: CanonicalBlock) -> Bundle:
    return bundle.with_blocks((block, *bundle.blocks))


# -- integrity -------------------------------------------------------------------------------


def test_tampered_payload_fails_naming_the_block() -> None:
    bundle = signed()
    bad = bundle.replace_block(bundle.payload_block.with_data(b"the paylOad"))
    with pytest.raises(IntegrityCheckFailed, match=r"BIB block 4: block 1 \(PAYLOAD\)") as info:
        verify(bad, HMAC_KEY)
    assert info.value.reason == 15


def test_tampered_primary_fails_when_in_scope() -> None:
    for bundle in (signed(scope=IntegrityScope.PRIMARY_BLOCK), signed((0,), scope=0)):
        bad = bundle.with_primary(lifetime=bundle.primary.lifetime + 1)
        with pytest.raises(IntegrityCheckFailed):
            verify(bad, HMAC_KEY)


def test_primary_outside_scope_is_not_protected() -> None:
    bundle = signed(scope=IntegrityScope.NONE)
    assert verify(bundle.with_primary(lifetime=1), HMAC_KEY)


def test_tampered_headers_fail_when_in_scope() -> None:
    bundle = signed(scope=IntegrityScope.TARGET_HEADER)
    bad = bundle.with_block_flags(1, BlockFlag.REPLICATE)
    with pytest.raises(IntegrityCheckFailed):
        verify(bad, HMAC_KEY)
    bundle = signed(scope=IntegrityScope.SECURITY_HEADER)
    with pytest.raises(IntegrityCheckFailed):
        verify(bundle.with_block_flags(4, BlockFlag.REPLICATE), HMAC_KEY)
    # Outside the scope, header changes go unnoticed.
    assert verify(signed(scope=0).with_block_flags(1, BlockFlag.REPLICATE), HMAC_KEY)


def test_tampered_hmac_fails() -> None:
    bundle = signed()
    block = bundle.block(4)
    old = AbstractSecurityBlock.decode(block.data)
    hmac = old.results[0][0][1]
    new = AbstractSecurityBlock(old.targets, 1, old.source, old.parameters, (((1, flip(hmac)),),))
    with pytest.raises(IntegrityCheckFailed):
        verify(bundle.replace_block(block.with_data(new.encode())), HMAC_KEY)
    short = AbstractSecurityBlock(old.targets, 1, old.source, old.parameters, (((1, hmac[:-1]),),))
    with pytest.raises(IntegrityCheckFailed):
        verify(bundle.replace_block(block.with_data(short.encode())), HMAC_KEY)


def test_wrong_and_missing_keys() -> None:
    bundle = signed()
    with pytest.raises(IntegrityCheckFailed):
        verify(bundle, b"another key")
    with pytest.raises(MissingKey, match=r"no key for BIB block 4 from security source ipn:2\.1"):
        verify(bundle, KeyRing().with_key(HMAC_KEY, source="ipn:9.9"))
    with pytest.raises(MissingKey):
        verify(bundle, KeyRing().with_key(HMAC_KEY, context_id=2))
    assert verify(bundle, KeyRing(), partial=True) == []
    assert accept_integrity(bundle, KeyRing(), partial=True) == bundle


def test_wrapped_hmac_key_needs_the_right_kek() -> None:
    bundle = sign(base(), [1], key=HMAC_KEY, security_source=SRC, key_encryption_key=KEK)
    assert verify(bundle, KEK)[0].target == 1
    with pytest.raises(IntegrityCheckFailed, match="does not unwrap"):
        verify(bundle, b"k" * 16)
    with pytest.raises(IntegrityCheckFailed, match="does not unwrap"):
        verify(bundle, HMAC_KEY + b"!")  # not even a valid KEK length


def test_bad_bib_parameters() -> None:
    src = EID.parse(SRC)
    cases = [
        ((1, 9),),
        ((1, "6"),),
        ((3, 8),),
        ((2, "wrapped"),),
        ((9, 0),),
        ((1, 6), (1, 6)),
    ]
    for params in cases:
        block = AbstractSecurityBlock((1,), 1, src, params, (((1, b"x" * 48),),))
        with pytest.raises(IntegrityCheckFailed, match="BIB block 5"):
            verify(with_block(base(), security_block(11, 5, block)), HMAC_KEY)
    for results in [(((2, b"x"),),), (((1, "text"),),), (((1, b"x"), (1, b"y")),)]:
        block = AbstractSecurityBlock((1,), 1, src, None, results)
        with pytest.raises(IntegrityCheckFailed, match="BIB block 5"):
            verify(with_block(base(), security_block(11, 5, block)), HMAC_KEY)


def test_unknown_context_is_reason_13() -> None:
    bundle = with_block(base(), security_block(11, 5, asb((1,), context=99)))
    with pytest.raises(UnknownSecurityContext, match="context 99") as info:
        verify(bundle, HMAC_KEY)
    assert info.value.reason == 13 and isinstance(info.value, SecurityError)
    assert verify(bundle, HMAC_KEY, partial=True) == []
    bundle = with_block(base(), security_block(12, 5, asb((1,), context=-7)))
    with pytest.raises(UnknownSecurityContext) as info:
        decrypt(bundle, CEK)
    assert info.value.reason == 13
    assert decrypt(bundle, CEK, partial=True) == bundle


def test_malformed_security_block_data() -> None:
    bundle = with_block(base(), CanonicalBlock(11, 5, b"\x81\x01"))
    with pytest.raises(MalformedSecurityBlock):
        verify(bundle, HMAC_KEY)
    with pytest.raises(MalformedSecurityBlock):
        sign(bundle, [1], key=HMAC_KEY, security_source=SRC)


# -- confidentiality --------------------------------------------------------------------------


def test_tampering_with_an_encrypted_bundle_fails_decryption() -> None:
    bundle = sealed()
    payload = bundle.payload_block
    cases = [
        bundle.replace_block(payload.with_data(flip(payload.data))),
        bundle.with_primary(sequence=1),
        bundle.with_block_flags(1, BlockFlag.REPLICATE),
        bundle.with_block_flags(4, BlockFlag.REPLICATE | BlockFlag.REPORT_IF_UNPROCESSABLE),
    ]
    for bad in cases:
        with pytest.raises(DecryptionFailed, match=r"BCB block 4: block 1 \(PAYLOAD\)") as info:
            decrypt(bad, CEK)
        assert info.value.reason == 15


def test_tampered_tag_and_wrong_keys() -> None:
    bundle = sealed()
    block = bundle.block(4)
    old = AbstractSecurityBlock.decode(block.data)
    new = AbstractSecurityBlock(
        old.targets, 2, old.source, old.parameters, (((1, flip(old.results[0][0][1])),),)
    )
    with pytest.raises(DecryptionFailed):
        decrypt(bundle.replace_block(block.with_data(new.encode())), CEK)
    with pytest.raises(DecryptionFailed):
        decrypt(bundle, bytes(32))
    with pytest.raises(DecryptionFailed, match="needs a 32-byte key"):
        decrypt(bundle, bytes(16))
    with pytest.raises(MissingKey, match="BCB block 4"):
        decrypt(bundle, KeyRing().with_key(CEK, context_id=1))
    assert decrypt(bundle, KeyRing(), partial=True) == bundle


def test_wrapped_content_key_needs_the_right_kek() -> None:
    bundle = encrypt(
        base(),
        [1],
        key=CEK[:16],
        security_source=SRC,
        aes_variant=AesVariant.A128GCM,
        key_encryption_key=KEK,
    )
    assert decrypt(bundle, KEK) == base()
    with pytest.raises(DecryptionFailed, match="does not unwrap"):
        decrypt(bundle, b"x" * 16)


def test_bad_bcb_parameters() -> None:
    src = EID.parse(SRC)
    tag = (((1, b"t" * 16),),)
    for params in [
        None,
        ((1, b"short"),),
        ((1, b"Twelve121212"), (2, 2)),
        ((1, b"Twelve121212"), (4, 9)),
        ((1, b"Twelve121212"), (3, 5)),
        ((1, b"Twelve121212"), (7, 0)),
        ((1, b"Twelve121212"), (1, b"Twelve121212")),
    ]:
        block = AbstractSecurityBlock((1,), 2, src, params, tag)
        with pytest.raises(DecryptionFailed, match="BCB block 5"):
            decrypt(with_block(base(), security_block(12, 5, block)), CEK)
    params = ((1, b"Twelve121212"),)
    for results in [(((1, b"t" * 15),),), (((2, b"t" * 16),),), ()]:
        try:
            block = AbstractSecurityBlock((1,), 2, src, params, results)
        except MalformedSecurityBlock:
            continue
        with pytest.raises(DecryptionFailed, match="BCB block 5"):
            decrypt(with_block(base(), security_block(12, 5, block)), CEK)


# -- RFC 9172 rules when adding --------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "reason", "message"),
    [
        (lambda: sealed(targets=(0,)), 14, "primary block"),
        (lambda: sealed(sealed(), (4,)), 14, "a BCB never targets a BCB"),
        (lambda: sealed(sealed(), (1,)), 16, "already encrypted"),
        (lambda: sealed(targets=(9,)), 15, "no block number 9"),
        (lambda: sign(sealed(), [1], key=HMAC_KEY, security_source=SRC), 16, "ciphertext"),
        (lambda: sign(sealed(), [4], key=HMAC_KEY, security_source=SRC), 14, "security block"),
        (lambda: sign(signed(), [4], key=HMAC_KEY, security_source=SRC), 14, "security block"),
        (lambda: sign(signed(), [1], key=HMAC_KEY, security_source=SRC), 16, "already covered"),
        (lambda: sign(base(), [7], key=HMAC_KEY, security_source=SRC), 15, "no block number 7"),
        (lambda: sealed(signed((2,)), (4,)), 14, "shares no target"),
    ],
)
def test_adding_refuses_what_rfc_9172_forbids(make, reason: int, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SecurityPolicyError, match=message) as info:
        make()
    assert info.value.reason == reason


def test_encrypting_a_signed_block_encrypts_its_bib_too() -> None:
    bundle = sealed(signed((0, 1)), (1,))
    [bcb] = [b for b in bundle.blocks if b.type_code == 12]
    assert AbstractSecurityBlock.decode(bcb.data).targets == (4, 1)
    ring = KeyRing().with_key(HMAC_KEY, context_id=1).with_key(CEK, context_id=2)
    assert accept_integrity(decrypt(bundle, ring), ring) == base()


@pytest.mark.parametrize(
    "call",
    [
        lambda: sign(base(), [], key=HMAC_KEY, security_source=SRC),
        lambda: sign(base(), [1, 1], key=HMAC_KEY, security_source=SRC),
        lambda: sign(base(), 1, key=HMAC_KEY, security_source=SRC),  # type: ignore[arg-type]
        lambda: sign(base(), [1], key=b"", security_source=SRC),
        lambda: sign(base(), [1], key=HMAC_KEY, security_source=SRC, sha_variant=4),
        lambda: sign(base(), [1], key=HMAC_KEY, security_source=SRC, scope=8),
        lambda: sign(base(), [1], key=HMAC_KEY, security_source=SRC, block_number=2),
        lambda: sign(base(), [1], key=HMAC_KEY, security_source=SRC, block_number=1),
        lambda: sign(base(), [1], key=b"short", security_source=SRC, key_encryption_key=KEK),
        lambda: sign(base(), [1], key=HMAC_KEY, security_source=SRC, key_encryption_key=b"k"),
        lambda: encrypt(base(), [1], key=CEK[:16], security_source=SRC),
        lambda: encrypt(base(), [1], key=CEK, security_source=SRC, iv=b"x" * 11),
        lambda: encrypt(base(), [1], key=CEK, security_source=SRC, aes_variant=2),
        lambda: encrypt(base(), [1], key=CEK, security_source=SRC, scope=-1),
        lambda: verify(signed(), "key"),  # type: ignore[arg-type]
    ],
)
def test_caller_mistakes_are_config_errors(call) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError):
        call()


# -- RFC 9172 rules on received bundles ----------------------------------------------------------


@pytest.mark.parametrize(
    ("blocks", "reason", "message"),
    [
        ([(12, 5, (0,))], 14, "targets the primary block"),
        ([(12, 5, (5,))], 14, "targets itself"),
        ([(12, 5, (8,))], 15, "not in the bundle"),
        ([(12, 5, (1,)), (12, 6, (5,))], 14, "never targets a BCB"),
        ([(12, 5, (1,)), (12, 6, (1,))], 16, "two BCBs"),
        ([(11, 5, (5,))], 14, "targets itself"),
        ([(11, 5, (8,))], 15, "not in the bundle"),
        ([(11, 5, (1,)), (11, 6, (5,))], 14, "never targets a BIB or a BCB"),
        ([(11, 5, (1, 2)), (11, 6, (0, 2))], 16, "two BIBs"),
        ([(11, 5, (1,)), (12, 6, (1,))], 16, "without encrypting the BIB"),
    ],
)
def test_received_bundles_breaking_the_rules(blocks, reason: int, message: str) -> None:  # type: ignore[no-untyped-def]
    bundle = base()
    for type_code, number, targets in reversed(blocks):
        bundle = with_block(bundle, security_block(type_code, number, asb(targets)))
    with pytest.raises(SecurityPolicyError, match=message) as info:
        check_security(bundle)
    assert info.value.reason == reason
    with pytest.raises(SecurityPolicyError):
        verify(bundle, HMAC_KEY, partial=True)
    with pytest.raises(SecurityPolicyError):
        decrypt(bundle, CEK, partial=True)


def test_decrypted_bib_must_share_a_target_with_its_bcb() -> None:
    # A sender that breaks the rule: BCB 6 encrypts BIB 5 (covering block 2 only) and block 1.
    # encrypt() refuses to build this, so it is assembled from the context's building blocks.
    bundle = with_block(base(), security_block(11, 5, asb((2,))))
    with pytest.raises(SecurityPolicyError, match="shares no target"):
        encrypt(bundle, [5, 1], key=CEK, security_source=SRC)
    iv, header = b"Twelve121212", block_header(12, 6, BlockFlag.REPLICATE)
    primary = encode_primary(bundle.primary)
    results, blocks = [], {}
    for number in (5, 1):
        target = bundle.block(number)
        aad = additional_authenticated_data(7, primary, target, header)
        blocks[number], tag = seal(CEK, iv, target.data, aad)
        results.append(((1, tag),))
    bcb = AbstractSecurityBlock(
        (5, 1), 2, EID.parse(SRC), BcbParameters(iv).to_pairs(), tuple(results)
    )
    forged = bundle.with_blocks(
        b.with_data(blocks[b.number]) if b.number in blocks else b for b in bundle.blocks
    )
    forged = with_block(forged, CanonicalBlock(12, 6, bcb.encode(), BlockFlag.REPLICATE))
    with pytest.raises(SecurityPolicyError, match="shares no target") as info:
        decrypt(forged, CEK)
    assert info.value.reason == 14
