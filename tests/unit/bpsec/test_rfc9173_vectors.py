"""RFC 9173 Appendix A, all four examples, byte for byte in both directions.

Each example's input bundle goes through sign/encrypt with the example's keys, IV and block
numbers and must give the published output bundle; the output bundle goes through
decrypt/verify/accept_integrity and must give the input back. The intermediate values the
vectors list (IPPT, AAD, signatures, ciphertexts, tags, wrapped key, ASBs, blocks) are checked
against the building blocks that compute them.

RFC 9173's example bundles have creation time 0 without a bundle age block and no primary-block
CRC, which RFC 9171 does not allow, hence ``lenient=True`` and ``validate=False``.
"""

from __future__ import annotations

from typing import Any

import pytest

from dtncloud.bpsec import (
    AadScope,
    AbstractSecurityBlock,
    AesVariant,
    IntegrityScope,
    KeyRing,
    ShaVariant,
    accept_integrity,
    decrypt,
    encrypt,
    sign,
    verify,
)
from dtncloud.bpsec.bcb_aes_gcm import additional_authenticated_data, seal
from dtncloud.bpsec.bib_hmac_sha2 import compute_hmac, integrity_protected_plaintext
from dtncloud.bpsec.keys import unwrap_key, wrap_key
from dtncloud.bpsec.scope import block_header
from dtncloud.bpv7 import Bundle, decode_bundle, encode_block, encode_bundle, encode_primary
from dtncloud.errors import MissingKey
from tests.vectors import load_vectors

HMAC_KEY = bytes.fromhex("1a2b" * 8)
CEK_128 = b"qwertyuiopasdfgh"
CEK_256 = CEK_128 * 2
KEK = b"abcdefghijklmnop"
IV = b"Twelve121212"


def vector(n: int) -> dict[str, Any]:
    data: dict[str, Any] = load_vectors(f"rfc9173_A{n}")
    return data


def bundle_of(hex_text: str) -> Bundle:
    return decode_bundle(bytes.fromhex(hex_text), lenient=True)


def wire(bundle: Bundle) -> str:
    return encode_bundle(bundle, validate=False).hex()


# -- A.1: simple integrity ---------------------------------------------------------------


def a1_sign(bundle: Bundle) -> Bundle:
    return sign(
        bundle,
        [1],
        key=HMAC_KEY,
        security_source="ipn:2.1",
        sha_variant=ShaVariant.HMAC_512,
        scope=IntegrityScope.NONE,
    )


def test_a1_sign_gives_the_published_bundle() -> None:
    v = vector(1)
    assert wire(a1_sign(bundle_of(v["input_bundle_hex"]))) == v["output_bundle_hex"]


def test_a1_verify_and_accept_give_the_input_back() -> None:
    v = vector(1)
    out = bundle_of(v["output_bundle_hex"])
    [checked] = verify(out, HMAC_KEY)
    assert (checked.target, checked.bib, str(checked.security_source)) == (1, 2, "ipn:2.1")
    assert checked.sha_variant is ShaVariant.HMAC_512 and checked.scope == 0
    assert wire(accept_integrity(out, HMAC_KEY)) == v["input_bundle_hex"]


def test_a1_intermediate_values() -> None:
    v, mid = vector(1), vector(1)["intermediate"]
    out = bundle_of(v["output_bundle_hex"])
    assert encode_primary(out.primary).hex() == mid["primary_block_hex"]
    assert encode_block(out.payload_block).hex() == mid["payload_block_hex"]
    ippt = integrity_protected_plaintext(0, encode_primary(out.primary), out.payload_block, b"")
    assert ippt.hex() == mid["ippt_hex"]
    assert compute_hmac(ShaVariant.HMAC_512, HMAC_KEY, ippt).hex() == mid["signature_hex"]
    bib = out.block(2)
    assert bib.data.hex() == mid["bib_asb_hex"]
    assert encode_block(bib).hex() == mid["bib_block_hex"]
    assert AbstractSecurityBlock.decode(bib.data).encode() == bib.data


# -- A.2: confidentiality with key wrap --------------------------------------------------


def a2_encrypt(bundle: Bundle) -> Bundle:
    return encrypt(
        bundle,
        [1],
        key=CEK_128,
        security_source="ipn:2.1",
        iv=IV,
        aes_variant=AesVariant.A128GCM,
        scope=AadScope.NONE,
        key_encryption_key=KEK,
    )


def test_a2_encrypt_gives_the_published_bundle() -> None:
    v = vector(2)
    assert wire(a2_encrypt(bundle_of(v["input_bundle_hex"]))) == v["output_bundle_hex"]


def test_a2_decrypt_with_the_kek_gives_the_input_back() -> None:
    v = vector(2)
    out = bundle_of(v["output_bundle_hex"])
    assert wire(decrypt(out, KEK)) == v["input_bundle_hex"]
    ring = KeyRing().with_key(KEK, source="ipn:2.1", context_id=2)
    assert wire(decrypt(out, ring)) == v["input_bundle_hex"]


def test_a2_intermediate_values() -> None:
    v, mid, keys = vector(2), vector(2)["intermediate"], vector(2)["keys"]
    assert bytes.fromhex(keys["content_encryption_key_hex"]) == CEK_128
    assert bytes.fromhex(keys["key_encryption_key_hex"]) == KEK
    assert bytes.fromhex(keys["iv_hex"]) == IV
    assert wrap_key(KEK, CEK_128).hex() == keys["aes_wrapped_key_hex"]
    assert unwrap_key(KEK, bytes.fromhex(keys["aes_wrapped_key_hex"])) == CEK_128
    out = bundle_of(v["output_bundle_hex"])
    inp = bundle_of(v["input_bundle_hex"])
    bcb = out.block(2)
    aad = additional_authenticated_data(0, encode_primary(out.primary), out.payload_block, b"")
    assert aad.hex() == mid["aad_hex"]
    assert inp.payload.hex() == mid["payload_plaintext_hex"]
    ciphertext, tag = seal(CEK_128, IV, inp.payload, aad)
    assert ciphertext.hex() == mid["payload_ciphertext_hex"] == out.payload.hex()
    assert tag.hex() == mid["auth_tag_hex"]
    assert bcb.data.hex() == mid["bcb_asb_hex"]
    assert encode_block(bcb).hex() == mid["bcb_block_hex"]
    assert int(bcb.flags) == 1


# -- A.3: security blocks from multiple sources ------------------------------------------


A3_RING = (
    KeyRing()
    .with_key(HMAC_KEY, source="ipn:3.0", context_id=1)
    .with_key(CEK_128, source="ipn:2.1", context_id=2)
)


def a3_bib(bundle: Bundle, block_number: int | None = None) -> Bundle:
    return sign(
        bundle,
        [0, 2],
        key=HMAC_KEY,
        security_source="ipn:3.0",
        sha_variant=ShaVariant.HMAC_256,
        scope=0,
        block_number=block_number,
    )


def a3_bcb(bundle: Bundle, block_number: int | None = None) -> Bundle:
    return encrypt(
        bundle,
        [1],
        key=CEK_128,
        security_source="ipn:2.1",
        iv=IV,
        aes_variant=AesVariant.A128GCM,
        scope=0,
        block_number=block_number,
    )


def test_a3_source_encrypts_then_waypoint_signs() -> None:
    # The story of the example: the source adds BCB 4, a waypoint adds BIB 3.
    v = vector(3)
    bundle = a3_bib(a3_bcb(bundle_of(v["input_bundle_hex"]), 4), 3)
    assert wire(bundle) == v["output_bundle_hex"]


def test_a3_sign_then_encrypt_with_automatic_block_numbers() -> None:
    v = vector(3)
    assert wire(a3_bcb(a3_bib(bundle_of(v["input_bundle_hex"])))) == v["output_bundle_hex"]


def test_a3_receiver_gets_the_input_back() -> None:
    v = vector(3)
    out = bundle_of(v["output_bundle_hex"])
    # The BIB covers plaintext blocks, so it verifies before and after decryption.
    assert [(c.target, c.bib) for c in verify(out, A3_RING)] == [(0, 3), (2, 3)]
    assert wire(accept_integrity(decrypt(out, A3_RING), A3_RING)) == v["input_bundle_hex"]
    assert wire(decrypt(accept_integrity(out, A3_RING), A3_RING)) == v["input_bundle_hex"]


def test_a3_intermediate_values() -> None:
    v, mid = vector(3), vector(3)["intermediate"]
    out = bundle_of(v["output_bundle_hex"])
    primary = encode_primary(out.primary)
    age = out.block(2)
    assert encode_block(age).hex() == mid["bundle_age_block_hex"]
    assert out.bundle_age == mid["bundle_age_ms"]
    ippt_primary = integrity_protected_plaintext(0, primary, None, b"")
    ippt_age = integrity_protected_plaintext(0, primary, age, b"")
    assert ippt_primary.hex() == mid["ippt_primary_hex"]
    assert ippt_age.hex() == mid["ippt_bundle_age_hex"]
    assert compute_hmac(ShaVariant.HMAC_256, HMAC_KEY, ippt_primary).hex() == mid["sig_primary_hex"]
    assert compute_hmac(ShaVariant.HMAC_256, HMAC_KEY, ippt_age).hex() == mid["sig_bundle_age_hex"]
    assert out.block(3).data.hex() == mid["bib_asb_hex"]
    assert encode_block(out.block(3)).hex() == mid["bib_block_hex"]
    aad = additional_authenticated_data(0, primary, out.payload_block, b"")
    assert aad.hex() == mid["bcb_aad_hex"]
    assert out.payload.hex() == mid["payload_ciphertext_hex"]
    assert out.block(4).data.hex() == mid["bcb_asb_hex"]
    assert encode_block(out.block(4)).hex() == mid["bcb_block_hex"]
    asb = AbstractSecurityBlock.decode(out.block(4).data)
    assert asb.results_for(1) == ((1, bytes.fromhex(mid["auth_tag_hex"])),)


# -- A.4: full scope; the BCB also encrypts the BIB --------------------------------------


A4_RING = KeyRing().with_key(HMAC_KEY, context_id=1).with_key(CEK_256, context_id=2)


def a4_sign(bundle: Bundle) -> Bundle:
    return sign(bundle, [1], key=HMAC_KEY, security_source="ipn:2.1", block_number=3)


def a4_encrypt(bundle: Bundle) -> Bundle:
    # Only the payload is named: the BIB that covers it is added to the targets, first.
    return encrypt(bundle, [1], key=CEK_256, security_source="ipn:2.1", iv=IV, block_number=2)


def test_a4_sign_then_encrypt_gives_the_published_bundle() -> None:
    v = vector(4)
    signed = a4_sign(bundle_of(v["input_bundle_hex"]))
    assert wire(signed) == v["intermediate"]["intermediate_bundle_with_plain_bib_hex"]
    assert wire(a4_encrypt(signed)) == v["output_bundle_hex"]


def test_a4_naming_both_targets_gives_the_same_bundle() -> None:
    v = vector(4)
    signed = a4_sign(bundle_of(v["input_bundle_hex"]))
    both = encrypt(signed, [3, 1], key=CEK_256, security_source="ipn:2.1", iv=IV, block_number=2)
    assert wire(both) == v["output_bundle_hex"]


def test_a4_receiver_decrypts_then_verifies() -> None:
    v = vector(4)
    out = bundle_of(v["output_bundle_hex"])
    with pytest.raises(MissingKey, match="BIB block 3 is encrypted by BCB block 2"):
        verify(out, A4_RING)
    assert verify(out, A4_RING, partial=True) == []
    plain = decrypt(out, A4_RING)
    assert wire(plain) == v["intermediate"]["intermediate_bundle_with_plain_bib_hex"]
    [checked] = verify(plain, A4_RING)
    assert checked.sha_variant is ShaVariant.HMAC_384 and checked.scope == IntegrityScope.ALL
    assert wire(accept_integrity(plain, A4_RING)) == v["input_bundle_hex"]


def test_a4_intermediate_values() -> None:
    v, mid = vector(4), vector(4)["intermediate"]
    assert bytes.fromhex(v["keys"]["content_encryption_key_hex"]) == CEK_256
    plain = bundle_of(mid["intermediate_bundle_with_plain_bib_hex"])
    primary = encode_primary(plain.primary)
    bib, payload = plain.block(3), plain.payload_block
    ippt = integrity_protected_plaintext(7, primary, payload, block_header(11, 3, 0))
    assert ippt.hex() == mid["bib_ippt_hex"]
    assert compute_hmac(ShaVariant.HMAC_384, HMAC_KEY, ippt).hex() == mid["bib_signature_hex"]
    assert bib.data.hex() == mid["bib_asb_plaintext_hex"]
    assert encode_block(bib).hex() == mid["bib_block_plaintext_hex"]
    bcb_header = block_header(12, 2, 1)
    payload_aad = additional_authenticated_data(7, primary, payload, bcb_header)
    bib_aad = additional_authenticated_data(7, primary, bib, bcb_header)
    assert payload_aad.hex() == mid["payload_aad_hex"]
    assert bib_aad.hex() == mid["bib_aad_hex"]
    ct, tag = seal(CEK_256, IV, payload.data, payload_aad)
    assert (ct.hex(), tag.hex()) == (mid["payload_ciphertext_hex"], mid["payload_auth_tag_hex"])
    ct, tag = seal(CEK_256, IV, bib.data, bib_aad)
    assert (ct.hex(), tag.hex()) == (mid["bib_ciphertext_hex"], mid["bib_auth_tag_hex"])
    out = bundle_of(v["output_bundle_hex"])
    assert out.block(2).data.hex() == mid["bcb_asb_hex"]
    assert encode_block(out.block(2)).hex() == mid["bcb_block_hex"]
    assert AbstractSecurityBlock.decode(out.block(2).data).targets == (3, 1)


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_every_published_asb_re_encodes_unchanged(n: int) -> None:
    for name, value in vector(n)["intermediate"].items():
        if name.endswith("asb_hex") or name == "bib_asb_plaintext_hex":
            data = bytes.fromhex(value)
            assert AbstractSecurityBlock.decode(data).encode() == data, name
