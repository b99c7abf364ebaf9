"""Properties of dtncloud.bpsec over arbitrary bundles, targets, variants, scopes and keys.

* sign then verify/accept, and encrypt then decrypt, give the original bundle back, also after a
  trip through the wire encoding;
* flipping any bit of a protected target (or of the primary block when it is in scope) makes
  verification or decryption fail;
* arbitrary bytes as an ASB, or as a BIB's/BCB's data, give errors, never a crash.
"""

from __future__ import annotations

import contextlib
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from dtncloud.bpsec import (
    AbstractSecurityBlock,
    AesVariant,
    KeyRing,
    MalformedSecurityBlock,
    ShaVariant,
    accept_integrity,
    decrypt,
    encrypt,
    sign,
    verify,
)
from dtncloud.bpv7 import (
    BlockFlag,
    Bundle,
    CanonicalBlock,
    CrcType,
    bundle_age_block,
    decode_bundle,
    encode_bundle,
    hop_count_block,
)
from dtncloud.eid import EID, DtnEID, IpnEID
from dtncloud.errors import (
    BundleDecodeError,
    DecryptionFailed,
    IntegrityCheckFailed,
    SecurityError,
)

SOURCE = "ipn:7.1"
FLAGS = st.sampled_from(
    [BlockFlag.NONE, BlockFlag.REPLICATE, BlockFlag.DISCARD_IF_UNPROCESSABLE, BlockFlag(0x13)]
)
CRCS = st.sampled_from(list(CrcType))


@st.composite
def bundles(draw: st.DrawFn) -> Bundle:
    extensions: list[CanonicalBlock] = []
    if draw(st.booleans()):
        extensions.append(hop_count_block(draw(st.integers(1, 255)), draw(st.integers(0, 9)), 0))
    if draw(st.booleans()):
        extensions.append(bundle_age_block(draw(st.integers(0, 2**40)), 0))
    for _ in range(draw(st.integers(0, 3))):
        data = draw(st.binary(min_size=1, max_size=40))
        extensions.append(
            CanonicalBlock(draw(st.integers(192, 255)), 0, data, draw(FLAGS), draw(CRCS))
        )
    bundle = Bundle.create(
        source=f"ipn:{draw(st.integers(1, 2**32))}.{draw(st.integers(0, 9))}",
        destination="dtn://dest/app",
        payload=draw(st.binary(min_size=1, max_size=300)),
        creation_time=draw(st.integers(1, 2**45)),
        sequence=draw(st.integers(0, 2**20)),
        crc_type=draw(CRCS),
        block_crc_type=draw(CRCS),
        extension_blocks=extensions,
    )
    return bundle.with_block_flags(1, draw(FLAGS))


def subset(draw: st.DrawFn, numbers: list[int]) -> list[int]:
    chosen = draw(st.lists(st.sampled_from(numbers), min_size=1, unique=True))
    return chosen


@st.composite
def signing(draw: st.DrawFn) -> tuple[Bundle, list[int], dict[str, Any]]:
    bundle = draw(bundles())
    targets = subset(draw, [0, *(b.number for b in bundle.blocks)])
    options: dict[str, Any] = {
        "key": draw(st.binary(min_size=16, max_size=64).filter(lambda k: len(k) % 8 == 0)),
        "sha_variant": draw(st.sampled_from(list(ShaVariant))),
        "scope": draw(st.integers(0, 7)),
        "block_flags": draw(FLAGS),
    }
    if draw(st.booleans()):
        options["key_encryption_key"] = draw(st.binary(min_size=16, max_size=16))
    return bundle, targets, options


@st.composite
def encrypting(
    draw: st.DrawFn, bundle: Bundle | None = None
) -> tuple[Bundle, list[int], dict[str, Any]]:
    if bundle is None:
        bundle = draw(bundles())
    numbers = [b.number for b in bundle.blocks if b.type_code not in (11, 12)]
    variant = draw(st.sampled_from(list(AesVariant)))
    options: dict[str, Any] = {
        "key": draw(st.binary(min_size=variant.key_size, max_size=variant.key_size)),
        "aes_variant": variant,
        "scope": draw(st.integers(0, 7)),
        "iv": draw(st.sampled_from([12, 16]).flatmap(lambda n: st.binary(min_size=n, max_size=n))),
        "block_flags": draw(FLAGS),
    }
    if draw(st.booleans()):
        options["key_encryption_key"] = draw(st.binary(min_size=32, max_size=32))
    return bundle, subset(draw, numbers), options


def receiver_key(options: dict[str, Any]) -> bytes:
    key: bytes = options.get("key_encryption_key") or options["key"]
    return key


def over_the_wire(bundle: Bundle) -> Bundle:
    return decode_bundle(encode_bundle(bundle, validate=False), lenient=True)


@given(signing())
def test_sign_then_verify_is_the_identity(case: tuple[Bundle, list[int], dict[str, Any]]) -> None:
    bundle, targets, options = case
    signed = sign(bundle, targets, security_source=SOURCE, **options)
    key = receiver_key(options)
    for received in (signed, over_the_wire(signed)):
        checked = verify(received, key)
        assert [c.target for c in checked] == targets
        assert accept_integrity(received, key) == bundle


@given(encrypting())
def test_encrypt_then_decrypt_is_the_identity(
    case: tuple[Bundle, list[int], dict[str, Any]],
) -> None:
    bundle, targets, options = case
    sealed = encrypt(bundle, targets, security_source=SOURCE, **options)
    assert all(len(sealed.block(t).data) == len(bundle.block(t).data) for t in targets)
    key = receiver_key(options)
    for received in (sealed, over_the_wire(sealed)):
        assert decrypt(received, key) == bundle


@given(signing(), st.data())
def test_sign_encrypt_decrypt_accept(
    case: tuple[Bundle, list[int], dict[str, Any]], data: st.DataObject
) -> None:
    bundle, targets, sign_options = case
    signed = sign(bundle, targets, security_source="ipn:3.0", **sign_options)
    _, enc_targets, enc_options = data.draw(encrypting(signed))
    sealed = encrypt(signed, enc_targets, security_source=SOURCE, **enc_options)
    ring = (
        KeyRing()
        .with_key(receiver_key(sign_options), source="ipn:3.0", context_id=1)
        .with_key(receiver_key(enc_options), source=SOURCE, context_id=2)
    )
    received = over_the_wire(sealed)
    assert accept_integrity(decrypt(received, ring), ring) == bundle


@given(signing(), st.data())
def test_flipping_a_protected_bit_fails_verification(
    case: tuple[Bundle, list[int], dict[str, Any]], data: st.DataObject
) -> None:
    bundle, targets, options = case
    signed = sign(bundle, targets, security_source=SOURCE, **options)
    target = data.draw(st.sampled_from(targets))
    if target == 0:
        bit = data.draw(st.integers(0, 40))
        tampered = signed.with_primary(lifetime=signed.primary.lifetime ^ (1 << bit))
    else:
        block = signed.block(target)
        position = data.draw(st.integers(0, len(block.data) * 8 - 1))
        flipped = bytearray(block.data)
        flipped[position // 8] ^= 1 << (position % 8)
        tampered = signed.replace_block(block.with_data(bytes(flipped)))
    try:
        verify(tampered, receiver_key(options))
    except IntegrityCheckFailed as exc:
        assert exc.reason == 15
    else:
        raise AssertionError("a flipped bit went unnoticed")


@given(encrypting(), st.data())
def test_flipping_a_ciphertext_bit_fails_decryption(
    case: tuple[Bundle, list[int], dict[str, Any]], data: st.DataObject
) -> None:
    bundle, targets, options = case
    sealed = encrypt(bundle, targets, security_source=SOURCE, **options)
    block = sealed.block(data.draw(st.sampled_from(targets)))
    position = data.draw(st.integers(0, len(block.data) * 8 - 1))
    flipped = bytearray(block.data)
    flipped[position // 8] ^= 1 << (position % 8)
    tampered = sealed.replace_block(block.with_data(bytes(flipped)))
    try:
        decrypt(tampered, receiver_key(options))
    except DecryptionFailed as exc:
        assert exc.reason == 15
    else:
        raise AssertionError("a flipped ciphertext bit went unnoticed")


@given(st.binary(max_size=200))
def test_arbitrary_bytes_as_an_asb(data: bytes) -> None:
    try:
        asb = AbstractSecurityBlock.decode(data)
    except MalformedSecurityBlock:
        return
    assert AbstractSecurityBlock.decode(asb.encode()) == asb


cbor_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**64), 2**64 - 1)
    | st.binary(max_size=20)
    | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.integers(-5, 5) | st.text(max_size=3), inner, max_size=4)
    ),
    max_leaves=10,
)
pairs = st.lists(st.tuples(st.integers(-(2**63), 2**64 - 1), cbor_values), max_size=4)
eids = st.builds(IpnEID, st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1)) | st.builds(
    DtnEID, st.from_regex(r"//[a-z]{1,8}/[a-z]{0,8}", fullmatch=True)
)


@st.composite
def asbs(draw: st.DrawFn) -> AbstractSecurityBlock:
    targets = draw(st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=5, unique=True))
    return AbstractSecurityBlock(
        targets=tuple(targets),
        context_id=draw(st.integers(-(2**63), 2**63)),
        source=draw(eids),
        parameters=draw(st.none() | pairs.map(tuple)),
        results=tuple(tuple(draw(pairs)) for _ in targets),
        reserved_flags=draw(st.integers(0, 2**8).map(lambda f: f & ~1)),
    )


def normalized(value: Any) -> Any:
    # Decoding gives lists where the generator made tuples.
    if isinstance(value, tuple | list):
        return [normalized(v) for v in value]
    if isinstance(value, dict):
        return {k: normalized(v) for k, v in value.items()}
    return value


@given(asbs())
def test_asb_encoding_round_trips(asb: AbstractSecurityBlock) -> None:
    again = AbstractSecurityBlock.decode(asb.encode(), max_items=100_000)
    assert again.encode() == asb.encode()
    assert normalized(again.results) == normalized(asb.results)
    assert (again.targets, again.context_id, again.source) == (
        asb.targets,
        asb.context_id,
        asb.source,
    )


@given(
    bundles(), st.sampled_from([11, 12]), st.binary(max_size=120) | asbs().map(lambda a: a.encode())
)
def test_arbitrary_security_block_data_never_crashes(
    bundle: Bundle, kind: int, data: bytes
) -> None:
    hostile = bundle.with_blocks((CanonicalBlock(kind, 99, data), *bundle.blocks))
    for process in (verify, decrypt):
        with contextlib.suppress(SecurityError, BundleDecodeError):
            process(hostile, b"k" * 32)


@given(bundles(), st.sampled_from([1, 2]), pairs, st.lists(pairs, min_size=1, max_size=1))
def test_garbage_parameters_of_known_contexts_are_security_errors(
    bundle: Bundle, context: int, parameters: list[Any], results: list[Any]
) -> None:
    asb = AbstractSecurityBlock(
        (1,), context, EID.parse(SOURCE), tuple(parameters), tuple(map(tuple, results))
    )
    kind = 11 if context == 1 else 12
    hostile = bundle.with_blocks((CanonicalBlock(kind, 99, asb.encode()), *bundle.blocks))
    for process in (verify, decrypt):
        with contextlib.suppress(SecurityError):
            process(hostile, b"k" * 32)
