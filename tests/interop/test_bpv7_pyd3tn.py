"""Differential tests against pyd3tn 0.15.2 (uD3TN's Python BPv7 codec), in both directions.

* pyd3tn builds and serialises a bundle (its own CBOR, BTSD and CRC code); dtncloud decodes it
  strictly to the same field values and encodes the same bundle to the same bytes.
* dtncloud encodes a generated bundle; ``pyd3tn.bundle7.Bundle.parse`` reads the same field
  values, pyd3tn's own CRC code agrees with every CRC we wrote, and pyd3tn re-serialises the
  parsed bundle to our bytes.

What pyd3tn cannot take is left out of the generated bundles: unknown block types and BPSec
blocks (``Bundle.parse`` rejects them), dtn SSPs with ``:`` (its EID parser splits on it), and
creation times past year 9999 (it converts through ``datetime``). pyd3tn moves a previous
node block to the front of a bundle, so byte comparisons put ours there too.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dtncloud.bpv7 import (
    BlockType,
    Bundle,
    BundleFlag,
    CanonicalBlock,
    CrcType,
    HopCount,
    decode_bundle,
    encode_bundle,
    read_bundle_age,
    read_hop_count,
    read_previous_node,
)
from dtncloud.dtntime import DTN_EPOCH, DTN_EPOCH_UNIX
from dtncloud.eid import EID
from tests.strategies import bundles, eids, node_ids

pyd3tn_bundle7 = pytest.importorskip("pyd3tn.bundle7")

pytestmark = pytest.mark.interop

# Year 6460: well inside what pyd3tn's datetime arithmetic takes.
MAX_CREATION_TIME = 2**47


def pyd3tn_compatible_bundles(**options: Any) -> st.SearchStrategy[Bundle]:
    return bundles(
        unknown_blocks_allowed=False,
        security_blocks=False,
        max_creation_time=MAX_CREATION_TIME,
        exclude=":",
        **options,
    )


def pyd3tn_order(bundle: Bundle) -> Bundle:
    """``bundle`` with its previous node block first, where pyd3tn puts it."""
    first = [b for b in bundle.blocks if b.type_code == BlockType.PREVIOUS_NODE]
    rest = [b for b in bundle.blocks if b.type_code != BlockType.PREVIOUS_NODE]
    return bundle.with_blocks((*first, *rest))


def to_pyd3tn(bundle: Bundle) -> Any:
    """The same bundle built with pyd3tn's classes (its block classes encode the BTSD)."""
    p7 = pyd3tn_bundle7
    p = bundle.primary
    created = 0 if p.creation_time == 0 else DTN_EPOCH + timedelta(milliseconds=p.creation_time)
    primary = p7.PrimaryBlock(
        bundle_proc_flags=int(p.flags),
        crc_type=p7.CRCType(int(p.crc_type)),
        destination=str(p.destination),
        source=str(p.source),
        report_to=str(p.report_to),
        creation_time=p7.CreationTimestamp(created, p.sequence),
        lifetime=p.lifetime,
        fragment_offset=p.fragment_offset,
        total_payload_length=p.total_adu_length,
    )
    blocks = []
    for block in bundle.extension_blocks:
        options = {
            "block_number": block.number,
            "block_proc_flags": int(block.flags),
            "crc_type": p7.CRCType(int(block.crc_type)),
        }
        if block.type_code == BlockType.PREVIOUS_NODE:
            blocks.append(p7.PreviousNodeBlock(str(read_previous_node(block)), **options))
        elif block.type_code == BlockType.HOP_COUNT:
            hops = read_hop_count(block)
            blocks.append(p7.HopCountBlock(hops.limit, hops.count, **options))
        elif block.type_code == BlockType.BUNDLE_AGE:
            # BundleAgeBlock takes float seconds; the generic CBOR block takes exact ms.
            blocks.append(p7.CBORBlock(p7.BlockType.BUNDLE_AGE, read_bundle_age(block), **options))
        else:
            raise AssertionError(f"pyd3tn cannot build block type {block.type_code}")
    payload = bundle.payload_block
    payload_block = p7.PayloadBlock(
        payload.data,
        block_proc_flags=int(payload.flags),
        crc_type=p7.CRCType(int(payload.crc_type)),
    )
    return p7.Bundle(primary, payload_block, blocks)


# -- pyd3tn writes, dtncloud reads ---------------------------------------------------------------


@settings(max_examples=60)
@given(pyd3tn_compatible_bundles(reserved_flags=False))
def test_bundles_pyd3tn_builds_decode_to_the_same_fields(bundle: Bundle) -> None:
    data = bytes(to_pyd3tn(bundle))

    decoded = decode_bundle(data)  # strict, CRCs checked

    assert decoded == pyd3tn_order(bundle)
    assert data == encode_bundle(pyd3tn_order(bundle))


@settings(max_examples=60)
@given(
    source=node_ids(exclude=":"),
    destination=eids(allow_none=False, exclude=":"),
    report_to=st.one_of(st.none(), eids(exclude=":")),
    payload=st.binary(max_size=200),
    unix_seconds=st.integers(DTN_EPOCH_UNIX + 1, DTN_EPOCH_UNIX + 2**36),
    sequence=st.integers(0, 2**64 - 1),
    lifetime_s=st.integers(0, 2**40),
    flags=st.sampled_from([0, 0x4, 0x20, 0x40, 0x4000, 0x10000, 0x20000, 0x40000, 0x74064]),
    crc_primary=st.sampled_from([1, 2]),
    crc_canonical=st.sampled_from([0, 1, 2]),
    hops=st.one_of(st.none(), st.tuples(st.integers(1, 255), st.integers(0, 300))),
    bundle_age_s=st.one_of(st.none(), st.integers(0, 2**40)),
    previous_node=st.one_of(st.none(), node_ids(exclude=":")),
)
def test_serialize_bundle7_output_decodes_to_its_arguments(
    source: EID,
    destination: EID,
    report_to: EID | None,
    payload: bytes,
    unix_seconds: int,
    sequence: int,
    lifetime_s: int,
    flags: int,
    crc_primary: int,
    crc_canonical: int,
    hops: tuple[int, int] | None,
    bundle_age_s: int | None,
    previous_node: EID | None,
) -> None:
    """pyd3tn's all-in-one serialiser: Unix seconds in, DTN milliseconds on the wire."""
    data = bytes(
        pyd3tn_bundle7.serialize_bundle7(
            str(source),
            str(destination),
            payload,
            report_to_eid=str(report_to) if report_to is not None else None,
            crc_type_primary=crc_primary,
            creation_timestamp=unix_seconds,
            sequence_number=sequence,
            lifetime=lifetime_s,
            flags=flags,
            hop_limit=hops[0] if hops else None,
            hop_count=hops[1] if hops else 0,
            bundle_age=bundle_age_s,
            previous_node_eid=str(previous_node) if previous_node is not None else None,
            crc_type_canonical=crc_canonical,
        )
    )

    bundle = decode_bundle(data)

    p = bundle.primary
    assert (p.source, p.destination) == (source, destination)
    assert p.report_to == (report_to if report_to is not None else EID.parse("dtn:none"))
    assert p.creation_time == (unix_seconds - DTN_EPOCH_UNIX) * 1000
    assert p.sequence == sequence
    assert p.lifetime == lifetime_s * 1000
    assert p.flags == flags
    assert p.crc_type == crc_primary
    assert bundle.payload == payload
    assert {b.crc_type for b in bundle.blocks} == {crc_canonical}
    assert bundle.hop_count == (HopCount(*hops) if hops else None)
    assert bundle.bundle_age == (bundle_age_s * 1000 if bundle_age_s is not None else None)
    assert bundle.previous_node == previous_node
    if previous_node is not None:
        assert bundle.blocks[0].type_code == BlockType.PREVIOUS_NODE
    assert encode_bundle(bundle) == data


def test_serialize_bundle7_example() -> None:
    """One fixed example, readable when the generated ones fail."""
    data = bytes(
        pyd3tn_bundle7.serialize_bundle7(
            "dtn://sender/",
            "ipn:2.1",
            b"hello",
            creation_timestamp=1_700_000_000,
            sequence_number=7,
            lifetime=3600,
            hop_limit=16,
            bundle_age=5,
            previous_node_eid="ipn:9.0",
        )
    )
    bundle = decode_bundle(data)
    assert str(bundle.primary.source) == "dtn://sender/"
    assert bundle.primary.creation_timestamp == (753_315_200_000, 7)
    assert bundle.primary.lifetime == 3_600_000
    assert bundle.primary.crc_type == CrcType.CRC32C
    assert [(b.type_code, b.number) for b in bundle.blocks] == [(6, 3), (10, 2), (7, 4), (1, 1)]
    assert bundle.bundle_age == 5000
    assert bundle.hop_count == HopCount(16, 0)


# -- dtncloud writes, pyd3tn reads ---------------------------------------------------------------


def assert_pyd3tn_block_matches(theirs: Any, ours: CanonicalBlock) -> None:
    assert int(theirs.block_type) == ours.type_code
    assert theirs.block_number == ours.number
    assert int(theirs.block_proc_flags) == ours.flags
    assert int(theirs.crc_type) == ours.crc_type
    assert theirs.data == ours.data
    if ours.crc_type:
        assert theirs.crc_provided == theirs.calculate_crc()  # pyd3tn's CRC code agrees


@settings(max_examples=80)
@given(pyd3tn_compatible_bundles())
def test_bundles_we_encode_parse_in_pyd3tn_to_the_same_fields(bundle: Bundle) -> None:
    data = encode_bundle(bundle)

    parsed = pyd3tn_bundle7.Bundle.parse(data)

    primary = parsed.primary_block
    p = bundle.primary
    assert int(primary.bundle_proc_flags) == p.flags
    assert int(primary.crc_type) == p.crc_type
    assert str(primary.destination) == str(p.destination)
    assert str(primary.source) == str(p.source)
    assert str(primary.report_to) == str(p.report_to)
    assert list(primary.creation_time) == [p.creation_time, p.sequence]
    assert primary.lifetime == p.lifetime
    assert (primary.fragment_offset, primary.total_payload_length) == (
        p.fragment_offset,
        p.total_adu_length,
    )
    assert primary.crc_provided == primary.calculate_crc()  # pyd3tn's CRC code agrees
    theirs = {b.block_number: b for b in [*parsed.blocks, parsed.payload_block]}
    assert sorted(theirs) == sorted(b.number for b in bundle.blocks)
    for block in bundle.blocks:
        assert_pyd3tn_block_matches(theirs[block.number], block)
    # pyd3tn writes what it read as we would (previous node block first).
    assert bytes(parsed) == encode_bundle(pyd3tn_order(bundle))


def test_pyd3tn_rejects_what_it_does_not_support() -> None:
    """The limits this module works around are real (if pyd3tn lifts them, widen the tests)."""
    unknown = Bundle.create(
        source="ipn:1.1",
        destination="ipn:2.1",
        payload=b"x",
        creation_time=10**12,
        extension_blocks=[CanonicalBlock(200, 0, b"")],
    )
    with pytest.raises(ValueError):
        pyd3tn_bundle7.Bundle.parse(encode_bundle(unknown))
    with pytest.raises(ValueError):
        pyd3tn_bundle7.EID("dtn://a:b/")


def test_flags_survive_pyd3tn_for_each_defined_bit() -> None:
    for flag in BundleFlag:
        if flag in (BundleFlag.NONE, BundleFlag.REPORTS, BundleFlag.IS_FRAGMENT):
            continue
        bundle = Bundle.create(
            source="ipn:1.1",
            destination="ipn:2.1",
            payload=b"x",
            creation_time=10**12,
            flags=flag,
        )
        if flag == BundleFlag.ADMIN_RECORD:
            bundle = bundle.with_primary(flags=flag)
        parsed = pyd3tn_bundle7.Bundle.parse(encode_bundle(bundle))
        assert int(parsed.primary_block.bundle_proc_flags) == int(flag)
