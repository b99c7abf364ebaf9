"""Round-trip properties of the BPv7 codec over generated bundles (tests.strategies).

* decode(encode(b)) == b, for every valid bundle, including every flag combination, CRC
  type, fragment and extension block the strategies make;
* encode is deterministic, and equals an encoder written apart from dtncloud's
  (tests.strategies.raw_encode), so encode(decode(x)) == x holds for canonical x made
  independently of encode_bundle;
* encoded_size(b) == len(encode_bundle(b));
* encodings a receiver may accept (long-form integers, definite outer array, tag 55799, tag
  24) decode to the same bundle, on the decoder's exact path, and re-encode canonically;
* lenient decoding of a strictly valid bundle gives the same bundle.
"""

from __future__ import annotations

import cbor2
from hypothesis import given, settings
from hypothesis import strategies as st

from dtncloud.bpv7 import (
    Bundle,
    CanonicalBlock,
    check_bundle,
    decode_bundle,
    encode_block,
    encode_bundle,
    encode_primary,
    encoded_size,
    read_bundle_age,
    read_hop_count,
    read_previous_node,
)
from dtncloud.bpv7.flags import BlockType
from dtncloud.eid import EID, EidCache
from tests.strategies import (
    bundles,
    eids,
    noncanonical_encodings,
    primary_blocks,
    raw_encode,
    reference_crc16_x25,
    reference_crc32c,
)


@given(bundles())
def test_decode_inverts_encode(bundle: Bundle) -> None:
    data = encode_bundle(bundle)
    decoded = decode_bundle(data)
    assert decoded == bundle
    assert decoded.blocks == bundle.blocks  # wire order kept
    assert decode_bundle(data, lenient=True) == bundle


@given(bundles())
def test_fast_and_general_paths_agree(bundle: Bundle) -> None:
    """The decoder's fast path only takes bundles whose EIDs its memo has met; the first
    decoding with an empty memo goes the general way, the second the fast way."""
    data = encode_bundle(bundle)
    memo = EidCache()
    first = decode_bundle(data, eid_cache=memo)
    second = decode_bundle(data, eid_cache=memo)
    assert first == second == bundle
    assert decode_bundle(data, lenient=True, eid_cache=memo) == bundle


@given(bundles())
def test_encode_equals_independent_canonical_encoding(bundle: Bundle) -> None:
    canonical = raw_encode(bundle)
    assert encode_bundle(bundle) == canonical
    assert encode_bundle(bundle) == encode_bundle(bundle)  # deterministic
    assert encode_bundle(decode_bundle(canonical)) == canonical


@given(bundles())
def test_encoded_size_is_the_real_length(bundle: Bundle) -> None:
    assert encoded_size(bundle) == len(encode_bundle(bundle))


@given(bundles())
def test_encoding_is_what_cbor2_reads(bundle: Bundle) -> None:
    """cbor2, an unrelated decoder, sees the fields we meant."""
    data = encode_bundle(bundle)
    assert data[0] == 0x9F and data[-1] == 0xFF
    items = cbor2.loads(data)
    primary = items[0]
    p = bundle.primary
    assert primary[:3] == [7, p.flags, p.crc_type]
    assert [EID.from_cbor(e) for e in primary[3:6]] == [p.destination, p.source, p.report_to]
    assert primary[6:8] == [[p.creation_time, p.sequence], p.lifetime]
    if p.is_fragment:
        assert primary[8:10] == [p.fragment_offset, p.total_adu_length]
    assert len(primary) == 8 + 2 * p.is_fragment + (p.crc_type != 0)
    for item, block in zip(items[1:], bundle.blocks, strict=True):
        assert item[:5] == [block.type_code, block.number, block.flags, block.crc_type, block.data]
        assert len(item) == 5 + (block.crc_type != 0)


@given(bundles())
def test_every_crc_covers_its_whole_block(bundle: Bundle) -> None:
    """Each CRC is the reference CRC of the block's encoding with the CRC value zeroed."""
    for encoded, crc_type in [
        (encode_primary(bundle.primary), bundle.primary.crc_type),
        *[(encode_block(b), b.crc_type) for b in bundle.blocks],
    ]:
        if crc_type == 0:
            continue
        size = 2 if crc_type == 1 else 4
        assert encoded[-size - 1] == (0x42 if size == 2 else 0x44)
        zeroed = encoded[:-size] + bytes(size)
        expected = reference_crc16_x25(zeroed) if size == 2 else reference_crc32c(zeroed)
        assert encoded[-size:] == expected.to_bytes(size, "big")


@settings(max_examples=60)
@given(st.data(), bundles(max_extension_blocks=3, max_payload_size=64))
def test_accepted_non_canonical_encodings_decode_to_the_same_bundle(
    data: st.DataObject, bundle: Bundle
) -> None:
    encoded = data.draw(noncanonical_encodings(bundle))
    assert encoded != encode_bundle(bundle)
    decoded = decode_bundle(encoded)
    assert decoded == bundle
    assert encode_bundle(decoded) == encode_bundle(bundle)


@given(bundles())
def test_extension_block_readers_give_what_the_builders_took(bundle: Bundle) -> None:
    check_bundle(bundle)
    decoded = decode_bundle(encode_bundle(bundle))
    for block in decoded.blocks:
        if block.type_code == BlockType.PREVIOUS_NODE:
            assert read_previous_node(block).is_node_id
            assert decoded.previous_node == read_previous_node(block)
        elif block.type_code == BlockType.BUNDLE_AGE:
            assert decoded.bundle_age == read_bundle_age(block) == cbor2.loads(block.data)
        elif block.type_code == BlockType.HOP_COUNT:
            hops = read_hop_count(block)
            assert [hops.limit, hops.count] == cbor2.loads(block.data)
            assert 1 <= hops.limit <= 255


@given(bundles(), eids(allow_none=False))
def test_changing_a_field_changes_the_encoding(bundle: Bundle, other: EID) -> None:
    """The encoding is injective on the fields tried here (a change never goes unnoticed)."""
    if other == bundle.primary.destination:
        return
    changed = bundle.with_primary(destination=other)
    assert encode_bundle(changed) != encode_bundle(bundle)
    assert decode_bundle(encode_bundle(changed)).primary.destination == other


@given(primary_blocks(fragment=True, payload_size=4))
def test_fragment_primary_round_trips(primary: object) -> None:
    bundle = Bundle(primary, (CanonicalBlock(1, 1, b"frag"),))  # type: ignore[arg-type]
    if bundle.primary.creation_time == 0:
        return  # needs a bundle age block; bundles() covers that case
    if bundle.primary.crc_type == 0:
        bundle = bundle.with_primary(crc_type=2)
    decoded = decode_bundle(encode_bundle(bundle))
    assert decoded.primary.is_fragment
    assert (decoded.primary.fragment_offset, decoded.primary.total_adu_length) == (
        bundle.primary.fragment_offset,
        bundle.primary.total_adu_length,
    )
    assert decoded.id.fragment_offset == bundle.primary.fragment_offset
    assert decoded.id.fragment_length == 4
