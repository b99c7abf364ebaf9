"""Fuzzing the BPv7 decoder: whatever the input, decode_bundle returns a valid bundle or raises
a dtncloud.errors.BundleDecodeError (any other exception is a bug), and corruption of a
CRC-protected block never goes unnoticed.

Inputs: arbitrary bytes (raw, and framed like a bundle so that they reach the cbor2 fast
path), well-formed CBOR of the wrong shape, valid bundles with one field replaced by an
arbitrary CBOR item, and valid encodings that are bit-flipped, truncated, extended or spliced.
Anything the decoder accepts must pass check_bundle and survive a round trip.
"""

from __future__ import annotations

from typing import Any

import cbor2
from hypothesis import assume, given
from hypothesis import strategies as st

from dtncloud.bpv7 import (
    Bundle,
    CrcType,
    check_bundle,
    decode_bundle,
    encode_block,
    encode_bundle,
    encode_primary,
)
from dtncloud.eid import EidCache
from dtncloud.errors import BundleDecodeError
from tests.strategies import bundles, cbor_items

REASONS = {4, 8}  # depleted storage (too large), block unintelligible


def primed(*known: Bundle) -> EidCache:
    """An EID memo that has met the EIDs of ``known``: with it, the decoder's fast path can
    take bundles made from them (it declines bundles with EIDs it has not met)."""
    memo = EidCache()
    for bundle in known:
        decode_bundle(encode_bundle(bundle), eid_cache=memo)
    return memo


def _verdict(data: bytes, lenient: bool, memo: EidCache) -> Bundle | None:
    try:
        bundle = decode_bundle(data, lenient=lenient, eid_cache=memo)
    except BundleDecodeError as exc:
        assert exc.reason in REASONS, exc
        assert str(exc), "an error must say what is wrong"
        return None
    # Whatever is accepted is a valid bundle that encodes and decodes to itself.
    check_bundle(bundle, lenient=lenient)
    again = encode_bundle(bundle, validate=not lenient)
    assert decode_bundle(again, lenient=lenient, eid_cache=memo) == bundle
    return bundle


def decode_or_refuse(
    data: bytes, *, lenient: bool = False, memo: EidCache | None = None
) -> Bundle | None:
    """decode_bundle's verdict; None when it refused with a BundleDecodeError. Other
    exceptions propagate and fail the test. With ``memo`` (see :func:`primed`) the input is
    decoded twice, with that memo and with an empty one, and the verdicts must agree: the fast
    path and the general path accept the same bundles."""
    verdict = _verdict(data, lenient, memo if memo is not None else EidCache())
    if memo is not None:
        assert _verdict(data, lenient, EidCache()) == verdict
    return verdict


def block_extents(bundle: Bundle) -> list[tuple[int, int]]:
    """Where each block lies in encode_bundle(bundle): [start, end) per block, primary first."""
    extents = []
    start = 1
    for encoded in (encode_primary(bundle.primary), *map(encode_block, bundle.blocks)):
        extents.append((start, start + len(encoded)))
        start += len(encoded)
    return extents


# -- arbitrary input ----------------------------------------------------------------------------


@given(st.binary(max_size=512))
def test_arbitrary_bytes(data: bytes) -> None:
    decode_or_refuse(data)
    decode_or_refuse(data, lenient=True)


@given(st.binary(max_size=512))
def test_arbitrary_bytes_framed_as_a_bundle(data: bytes) -> None:
    for framed in (b"\x9f" + data + b"\xff", b"\xd9\xd9\xf7\x9f" + data + b"\xff", b"\x82" + data):
        decode_or_refuse(framed)
        decode_or_refuse(framed, lenient=True)


@given(st.lists(cbor_items(), max_size=4))
def test_arbitrary_cbor_items_as_blocks(items: list[Any]) -> None:
    data = b"\x9f" + b"".join(cbor2.dumps(item) for item in items) + b"\xff"
    decode_or_refuse(data)
    decode_or_refuse(data, lenient=True)


@given(bundles(max_extension_blocks=2, max_payload_size=32), st.data())
def test_one_field_replaced_by_arbitrary_cbor(bundle: Bundle, data: st.DataObject) -> None:
    items = cbor2.loads(encode_bundle(bundle))
    block = data.draw(st.integers(0, len(items) - 1), label="block")
    target: list[Any] = items[block]
    field = data.draw(st.integers(0, len(target) - 1), label="field")
    # Either replace a whole field, or (for an EID or the timestamp) one of its parts.
    if type(target[field]) is list and target[field] and data.draw(st.booleans()):
        target = target[field]
        field = data.draw(st.integers(0, len(target) - 1), label="part")
    action = data.draw(st.sampled_from(["replace", "insert", "delete"]), label="action")
    if action == "replace":
        target[field] = data.draw(cbor_items(max_leaves=6), label="item")
    elif action == "insert":
        target.insert(field, data.draw(cbor_items(max_leaves=6), label="item"))
    else:
        del target[field]
    mutated = b"\x9f" + b"".join(cbor2.dumps(item) for item in items) + b"\xff"
    memo = primed(bundle)
    decode_or_refuse(mutated, memo=memo)
    decode_or_refuse(mutated, lenient=True, memo=memo)


# -- damaged encodings of valid bundles ---------------------------------------------------------


@given(bundles(), st.data())
def test_flipped_bits(bundle: Bundle, data: st.DataObject) -> None:
    encoded = encode_bundle(bundle)
    position = data.draw(st.integers(0, len(encoded) - 1), label="position")
    mask = data.draw(st.integers(1, 255), label="mask")
    damaged = bytearray(encoded)
    damaged[position] ^= mask
    memo = primed(bundle)
    decode_or_refuse(bytes(damaged), memo=memo)
    decode_or_refuse(bytes(damaged), lenient=True, memo=memo)


@given(bundles(all_crcs=True), st.data())
def test_corruption_inside_a_crc_protected_block_is_detected(
    bundle: Bundle, data: st.DataObject
) -> None:
    """With a CRC on every block, any change of up to 8 bits inside one block is refused
    (both CRCs detect every burst of 16 bits or fewer)."""
    assert bundle.primary.crc_type != CrcType.NONE
    assert all(block.crc_type != CrcType.NONE for block in bundle.blocks)
    encoded = encode_bundle(bundle)
    extents = block_extents(bundle)
    assert extents[-1][1] == len(encoded) - 1
    start, end = data.draw(st.sampled_from(extents), label="block")
    position = data.draw(st.integers(start, end - 1), label="position")
    damaged = bytearray(encoded)
    damaged[position] ^= data.draw(st.integers(1, 255), label="mask")

    memo = primed(bundle)
    assert decode_or_refuse(bytes(damaged), memo=memo) is None
    assert decode_or_refuse(bytes(damaged), lenient=True, memo=memo) is None


@given(bundles(), st.data())
def test_truncated(bundle: Bundle, data: st.DataObject) -> None:
    encoded = encode_bundle(bundle)
    cut = data.draw(st.integers(0, len(encoded) - 1), label="cut")
    assert decode_or_refuse(encoded[:cut]) is None
    assert decode_or_refuse(encoded[:cut], lenient=True) is None


@given(bundles(), st.binary(min_size=1, max_size=16))
def test_trailing_bytes(bundle: Bundle, junk: bytes) -> None:
    encoded = encode_bundle(bundle)
    assert decode_or_refuse(encoded + junk) is None


@given(bundles(), bundles(), st.data())
def test_spliced(first: Bundle, second: Bundle, data: st.DataObject) -> None:
    a, b = encode_bundle(first), encode_bundle(second)
    i = data.draw(st.integers(0, len(a)), label="cut in first")
    j = data.draw(st.integers(0, len(b)), label="cut in second")
    spliced = a[:i] + b[j:]
    accepted = decode_or_refuse(spliced, memo=primed(first, second))
    if accepted is not None:
        # Only a whole bundle can come out: at a block boundary of both, or the input itself.
        assume(spliced not in (a, b))
        assert spliced == encode_bundle(accepted)


@given(bundles(max_extension_blocks=3), st.data())
def test_blocks_reordered_or_dropped(bundle: Bundle, data: st.DataObject) -> None:
    """Whole blocks moved, dropped or duplicated (every CRC still right): the result is
    refused or is a valid bundle in its own right, never an exception."""
    extents = block_extents(bundle)
    encoded = encode_bundle(bundle)
    pieces = [encoded[s:e] for s, e in extents]
    chosen = data.draw(st.lists(st.sampled_from(pieces), max_size=len(pieces) + 1))
    decode_or_refuse(b"\x9f" + b"".join(chosen) + b"\xff", memo=primed(bundle))
