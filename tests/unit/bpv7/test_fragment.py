"""BPv7 fragmentation and reassembly (RFC 9171 section 5.8)."""

from __future__ import annotations

import re

import pytest

from dtncloud.bpv7 import (
    BlockFlag,
    BlockType,
    Bundle,
    BundleFlag,
    CanonicalBlock,
    CrcType,
    decode_bundle,
    encode_bundle,
    encoded_size,
    previous_node_block,
)
from dtncloud.bpv7.admin import admin_bundle, read_admin_record
from dtncloud.bpv7.bibe import custody_signal_for
from dtncloud.bpv7.fragment import (
    FragmentCollector,
    InconsistentFragments,
    MissingFragments,
    fragment_bundle,
    reassemble,
    split_at,
)
from dtncloud.eid import EID
from dtncloud.errors import FragmentError

NOW = 755_000_000_000
PAYLOAD = bytes(range(256)) * 4  # 1024 bytes, every offset distinguishable mod 256


def make_bundle(payload: bytes = PAYLOAD, **kwargs: object) -> Bundle:
    options: dict[str, object] = {
        "source": "dtn://src/app",
        "destination": "dtn://dst/app",
        "payload": payload,
        "creation_time": NOW,
        "sequence": 4,
    }
    options.update(kwargs)
    return Bundle.create(**options)  # type: ignore[arg-type]


def with_extensions() -> Bundle:
    """A bundle with a replicated private block, a plain private block and a hop count."""
    return make_bundle(
        extension_blocks=[
            CanonicalBlock(200, 0, b"everywhere", BlockFlag.REPLICATE, CrcType.CRC16),
            CanonicalBlock(201, 0, b"first only" * 3, BlockFlag.DISCARD_IF_UNPROCESSABLE),
            previous_node_block(EID.parse("dtn://prev/"), 0),
        ],
        hop_limit=30,
        block_crc_type=CrcType.CRC32C,
    )


def payload_range(fragment: Bundle) -> tuple[int, int]:
    offset = fragment.primary.fragment_offset
    assert offset is not None
    return offset, offset + len(fragment.payload)


# -- fragmenting ------------------------------------------------------------------------------


def test_fragments_fit_and_decode() -> None:
    bundle = make_bundle(crc_type=CrcType.CRC16, block_crc_type=CrcType.CRC32C)
    fragments = fragment_bundle(bundle, 300)
    assert len(fragments) == 5
    position = 0
    for fragment in fragments:
        encoded = encode_bundle(fragment)
        assert len(encoded) <= 300
        assert decode_bundle(encoded) == fragment
        primary = fragment.primary
        assert primary.flags == BundleFlag.IS_FRAGMENT
        assert primary.fragment_offset == position
        assert primary.total_adu_length == len(PAYLOAD)
        assert primary.crc_type == CrcType.CRC16
        assert fragment.payload_block.crc_type == CrcType.CRC32C
        assert fragment.id.whole == bundle.id
        position += len(fragment.payload)
    assert b"".join(f.payload for f in fragments) == PAYLOAD
    # The limit is used to the byte where the payload allows.
    assert all(encoded_size(f) == 300 for f in fragments[:-1])


def test_bundle_that_fits_is_returned_unchanged() -> None:
    bundle = make_bundle(flags=BundleFlag.MUST_NOT_FRAGMENT)
    size = encoded_size(bundle)
    assert fragment_bundle(bundle, size) == [bundle]
    assert fragment_bundle(bundle, 10, first_fragment_size=size) == [bundle]


def test_must_not_fragment() -> None:
    bundle = make_bundle(flags=BundleFlag.MUST_NOT_FRAGMENT)
    with pytest.raises(FragmentError, match="must-not-fragment"):
        fragment_bundle(bundle, 500)
    with pytest.raises(FragmentError, match="must-not-fragment"):
        split_at(bundle, 10)
    anonymous = make_bundle(source="dtn:none")
    with pytest.raises(FragmentError, match="must-not-fragment"):
        fragment_bundle(anonymous, 500)


def test_max_size_too_small_says_how_small() -> None:
    bundle = with_extensions()
    with pytest.raises(FragmentError, match="too small") as info:
        fragment_bundle(bundle, 40)
    found = re.search(r"at least (\d+) bytes", str(info.value))
    assert found is not None
    needed = int(found.group(1))
    with pytest.raises(FragmentError, match="too small"):
        fragment_bundle(bundle, needed - 1)
    fragments = fragment_bundle(bundle, needed)
    assert len(fragments[0].payload) == 1
    assert encoded_size(fragments[0]) == needed
    assert reassemble(fragments) == bundle


def test_first_fragment_size_in_error() -> None:
    with pytest.raises(FragmentError, match="first_fragment_size 20 is too small"):
        fragment_bundle(make_bundle(), 500, first_fragment_size=20)


def test_tiny_payload_cannot_be_split() -> None:
    bundle = make_bundle(b"x")
    with pytest.raises(FragmentError, match="cannot be split"):
        fragment_bundle(bundle, encoded_size(bundle) - 1)
    with pytest.raises(FragmentError, match="cannot split"):
        split_at(bundle, 1)


def test_replicated_blocks() -> None:
    bundle = with_extensions()
    fragments = fragment_bundle(bundle, 200)
    assert len(fragments) > 3
    first, *others = fragments
    assert first.extension_blocks == bundle.extension_blocks
    for fragment in others:
        assert [b.type_code for b in fragment.extension_blocks] == [200]
        assert fragment.extension_blocks[0] == bundle.block(2)
        assert decode_bundle(encode_bundle(fragment)) == fragment
    assert reassemble(reversed(fragments)) == bundle


def test_bundle_age_travels_with_every_fragment_without_a_clock() -> None:
    bundle = make_bundle(creation_time=0, bundle_age=1234)
    fragments = fragment_bundle(bundle, 200)
    for fragment in fragments:
        assert fragment.bundle_age == 1234
        decode_bundle(encode_bundle(fragment))  # valid: creation time 0 needs the age block
    assert reassemble(fragments) == bundle
    # With a clock, an unflagged age block stays in the first fragment only.
    timed = make_bundle(bundle_age=1234)
    ages = [f.bundle_age for f in fragment_bundle(timed, 400)]
    assert ages == [1234] + [None] * (len(ages) - 1) and len(ages) > 2


def test_first_fragment_size() -> None:
    bundle = make_bundle()
    fragments = fragment_bundle(bundle, 400, first_fragment_size=100)
    assert encoded_size(fragments[0]) == 100
    assert all(encoded_size(f) <= 400 for f in fragments[1:])
    bigger = fragment_bundle(bundle, 300, first_fragment_size=800)
    assert encoded_size(bigger[0]) == 800 and encoded_size(bigger[1]) <= 300
    assert reassemble(fragments) == reassemble(bigger) == bundle


def test_fragment_of_a_fragment() -> None:
    bundle = with_extensions()
    fragments = fragment_bundle(bundle, 400)
    second = fragments[1]
    start, end = payload_range(second)
    pieces = fragment_bundle(second, 150)
    assert len(pieces) > 2
    assert payload_range(pieces[0])[0] == start and payload_range(pieces[-1])[1] == end
    for piece in pieces:
        assert piece.primary.total_adu_length == len(PAYLOAD)
        assert piece.extension_blocks == second.extension_blocks  # only replicated ones
        assert encoded_size(piece) <= 150
    # The head fragment, re-fragmented, keeps every block in its own first piece.
    heads = fragment_bundle(fragments[0], 200)
    assert heads[0].extension_blocks == bundle.extension_blocks
    assert reassemble([*heads, *pieces, *fragments[2:]]) == bundle


def test_split_at() -> None:
    bundle = with_extensions()
    head, tail = split_at(bundle, 100)
    assert head.payload == PAYLOAD[:100] and tail.payload == PAYLOAD[100:]
    assert head.extension_blocks == bundle.extension_blocks
    assert [b.type_code for b in tail.extension_blocks] == [200]
    assert reassemble([tail, head]) == bundle
    # Reactive fragmentation of what is left: offsets stay relative to the whole ADU.
    middle, rest = split_at(tail, 300)
    assert payload_range(middle) == (100, 400) and payload_range(rest) == (400, len(PAYLOAD))
    assert reassemble([rest, head, middle]) == bundle
    with pytest.raises(FragmentError, match="at offset 0"):
        split_at(bundle, 0)
    with pytest.raises(FragmentError, match="at offset 1024"):
        split_at(bundle, len(PAYLOAD))


def test_admin_record_bundle_round_trip() -> None:
    record = custody_signal_for(range(0, 2000, 3))
    bundle = admin_bundle(record, source="ipn:1.0", destination="ipn:2.0", creation_time=NOW)
    fragments = fragment_bundle(bundle, 512)
    assert all(
        f.primary.flags == BundleFlag.ADMIN_RECORD | BundleFlag.IS_FRAGMENT for f in fragments
    )
    assert read_admin_record(reassemble(fragments)) == record


# -- reassembly -------------------------------------------------------------------------------


def test_reassemble_overlapping_episodes() -> None:
    bundle = with_extensions()
    one = fragment_bundle(bundle, 300)
    two = fragment_bundle(bundle, 450, first_fragment_size=250)
    assert reassemble([two[1], one[3], one[0], *two, one[1], one[2], one[4]]) == bundle
    assert reassemble([*one, *one]) == bundle


def test_reassemble_reports_gaps() -> None:
    fragments = fragment_bundle(make_bundle(), 300)
    gap_one, gap_two = payload_range(fragments[1]), payload_range(fragments[3])
    with pytest.raises(MissingFragments) as info:
        reassemble([fragments[0], fragments[2], fragments[4]])
    assert info.value.missing == [gap_one, gap_two]
    assert info.value.total_length == len(PAYLOAD)
    assert f"[{gap_one[0]}, {gap_one[1]})" in str(info.value)
    assert f"[{gap_two[0]}, {gap_two[1]})" in str(info.value)
    with pytest.raises(MissingFragments, match=r"\[0, "):
        reassemble(fragments[1:])


def test_reassemble_refuses_non_fragments() -> None:
    bundle = make_bundle()
    fragments = fragment_bundle(bundle, 300)
    with pytest.raises(FragmentError, match="not a fragment"):
        reassemble([*fragments, bundle])
    with pytest.raises(FragmentError, match="no fragments"):
        reassemble([])


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"source": EID.parse("dtn://other/app")}, "source"),
        ({"creation_time": NOW + 1}, "creation time"),
        ({"sequence": 5}, "sequence"),
        ({"destination": EID.parse("dtn://elsewhere/app")}, "destination"),
        ({"total_adu_length": len(PAYLOAD) + 1}, "total adu length"),
        ({"lifetime": 1}, "lifetime"),
    ],
)
def test_reassemble_refuses_inconsistent_fragments(change: dict[str, object], field: str) -> None:
    fragments = fragment_bundle(make_bundle(), 300)
    stranger = fragments[2].with_primary(**change)
    with pytest.raises(InconsistentFragments, match=field):
        reassemble([*fragments[:2], stranger, *fragments[3:]])


def test_reassemble_refuses_disagreeing_bytes() -> None:
    bundle = make_bundle()
    fragments = fragment_bundle(bundle, 300)
    other = fragment_bundle(make_bundle(PAYLOAD[:500] + b"!" + PAYLOAD[501:]), 450)
    with pytest.raises(InconsistentFragments, match=r"range \[500, 501\)"):
        reassemble([*fragments, other[1]])
    with pytest.raises(InconsistentFragments, match="different bytes"):
        reassemble([other[1], *fragments])


def test_fragment_beyond_its_adu() -> None:
    fragment = split_at(make_bundle(), 10)[1].with_primary(total_adu_length=500)
    with pytest.raises(FragmentError, match="beyond"):
        reassemble([fragment])


def test_unknown_bundle_flags_survive() -> None:
    flags = BundleFlag(0x08 | 0x100000) | BundleFlag.STATUS_TIME_REQUESTED
    bundle = make_bundle(flags=flags)
    fragments = fragment_bundle(bundle, 300)
    assert all(int(f.primary.flags) == int(flags) | 1 for f in fragments)
    whole = reassemble(decode_bundle(encode_bundle(f)) for f in fragments)
    assert whole == bundle and int(whole.primary.flags) == int(flags)


def test_crc_type_of_the_head_fragment_wins() -> None:
    bundle = make_bundle()
    fragments = fragment_bundle(bundle, 300)
    relabelled = [f.with_primary(crc_type=CrcType.CRC16) for f in fragments[1:]]
    assert reassemble([*relabelled, fragments[0]]) == bundle


# -- the incremental collector ----------------------------------------------------------------


def test_collector_step_by_step() -> None:
    bundle = with_extensions()
    fragments = fragment_bundle(bundle, 300)
    ranges = [payload_range(f) for f in fragments]
    collector = FragmentCollector()
    assert collector.missing() == [] and collector.bundle_id is None
    assert collector.add(fragments[2]) is None
    assert collector.bundle_id == bundle.id and collector.total_length == len(PAYLOAD)
    assert collector.missing() == [(0, ranges[2][0]), (ranges[2][1], len(PAYLOAD))]
    held = collector.received_length
    assert collector.add(fragments[2]) is None  # a duplicate stores nothing more
    assert collector.received_length == held
    for fragment in fragments[3:] + fragments[1:2]:
        assert collector.add(fragment) is None
    assert collector.missing() == [ranges[0]]
    assert not collector.is_complete
    assert collector.add(fragments[0]) == bundle
    assert collector.is_complete and collector.result == bundle and collector.missing() == []
    # Completed: later copies are checked, but the bundle is handed out only once.
    assert collector.add(fragments[1]) is None
    assert collector.received_length == len(PAYLOAD)


def test_collector_refusal_changes_nothing() -> None:
    fragments = fragment_bundle(make_bundle(), 300)
    collector = FragmentCollector()
    collector.add(fragments[1])
    before = (collector.missing(), collector.received_length)
    bad = fragments[2].with_blocks(
        [*fragments[2].extension_blocks, fragments[2].payload_block.with_data(b"?" * 300)]
    )
    bad = bad.with_primary(fragment_offset=payload_range(fragments[1])[1] - 5)
    with pytest.raises(InconsistentFragments):
        collector.add(bad)
    assert (collector.missing(), collector.received_length) == before


def test_collector_stores_overlaps_once() -> None:
    bundle = make_bundle()
    collector = FragmentCollector()
    for fragment in fragment_bundle(bundle, 300)[:3]:
        collector.add(fragment)
    held = collector.received_length
    for fragment in fragment_bundle(bundle, 200)[:4]:  # all inside what is held
        collector.add(fragment)
    assert collector.received_length == held


def test_collector_max_length() -> None:
    fragments = fragment_bundle(make_bundle(), 300)
    collector = FragmentCollector(max_length=1000)
    with pytest.raises(FragmentError, match="over the limit of 1000"):
        collector.add(fragments[0])
    assert collector.total_length is None


def test_empty_adu() -> None:
    bundle = make_bundle(b"")
    fragment = bundle.with_primary(
        flags=BundleFlag.IS_FRAGMENT, fragment_offset=0, total_adu_length=0
    )
    assert reassemble([fragment]) == bundle
    assert fragment.first_block_of_type(BlockType.PAYLOAD) is not None
