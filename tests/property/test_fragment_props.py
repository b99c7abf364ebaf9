"""Properties of BPv7 fragmentation and reassembly, for arbitrary bundles and sizes."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from dtncloud.bpv7 import (
    BlockFlag,
    Bundle,
    BundleFlag,
    CanonicalBlock,
    CrcType,
    decode_bundle,
    encode_bundle,
    encoded_size,
    previous_node_block,
)
from dtncloud.bpv7.fragment import (
    FragmentCollector,
    MissingFragments,
    fragment_bundle,
    reassemble,
    split_at,
)
from dtncloud.eid import EID

# Primary block fields grow by at most this much when fragmented (two 9-byte integers).
FRAGMENT_FIELDS = 18

crc_types = st.sampled_from(CrcType)
eids = st.one_of(
    st.builds(
        lambda n, s: EID.parse(f"ipn:{n}.{s}"), st.integers(1, 2**64 - 1), st.integers(0, 2**32)
    ),
    st.from_regex(r"dtn://[a-z0-9]{1,12}/[a-z0-9~]{0,12}", fullmatch=True).map(EID.parse),
)
bundle_flags = st.sets(
    st.sampled_from(
        [
            BundleFlag.ACK_REQUESTED,
            BundleFlag.STATUS_TIME_REQUESTED,
            BundleFlag.REPORT_RECEPTION,
            BundleFlag.REPORT_DELIVERY,
            BundleFlag.REPORT_DELETION,
            # Reserved and unassigned bits, which must survive fragmentation and reassembly.
            BundleFlag(0x08),
            BundleFlag(0x80),
            BundleFlag(1 << 40),
        ]
    )
).map(lambda flags: BundleFlag(sum(flags)))
block_flags = st.sets(
    st.sampled_from(
        [
            BlockFlag.REPLICATE,
            BlockFlag.REPORT_IF_UNPROCESSABLE,
            BlockFlag.DELETE_BUNDLE_IF_UNPROCESSABLE,
            BlockFlag.DISCARD_IF_UNPROCESSABLE,
        ]
    )
).map(lambda flags: BlockFlag(sum(flags)))
private_blocks = st.builds(
    CanonicalBlock,
    type_code=st.integers(192, 255),
    number=st.just(0),
    data=st.binary(max_size=40),
    flags=block_flags,
    crc_type=crc_types,
)


@st.composite
def bundles(draw: st.DrawFn, min_payload: int = 0) -> Bundle:
    """Arbitrary valid, fragmentable bundles."""
    extensions = draw(st.lists(private_blocks, max_size=4))
    if draw(st.booleans()):
        extensions.append(previous_node_block(draw(eids).node_id, 0, flags=draw(block_flags)))
    clockless = draw(st.booleans())
    return Bundle.create(
        source=draw(eids),
        destination=draw(eids),
        payload=draw(st.binary(min_size=min_payload, max_size=1500)),
        creation_time=0 if clockless else draw(st.integers(1, 2**40)),
        sequence=draw(st.integers(0, 2**64 - 1)),
        lifetime=draw(st.integers(0, 2**40)),
        flags=draw(bundle_flags),
        crc_type=draw(st.sampled_from([CrcType.CRC16, CrcType.CRC32C])),
        block_crc_type=draw(crc_types),
        hop_limit=draw(st.none() | st.integers(1, 255)),
        bundle_age=draw(st.integers(0, 2**40)) if clockless or draw(st.booleans()) else None,
        extension_blocks=extensions,
    )


def smallest_safe_size(bundle: Bundle) -> int:
    """A max_size with room for at least one payload byte in any fragment of ``bundle``."""
    return (
        encoded_size(bundle.replace_block(bundle.payload_block.with_data(b"")))
        + FRAGMENT_FIELDS
        + 1
    )


@st.composite
def fragmented(draw: st.DrawFn, slack: int = 0) -> tuple[Bundle, int, list[Bundle]]:
    """A bundle, a max_size below its encoded size (by at least ``slack`` bytes above the
    smallest workable size), and the bundle's fragments."""
    # A payload of 20 + slack bytes makes the size range below non-empty.
    bundle = draw(bundles(min_payload=20 + slack))
    low, high = smallest_safe_size(bundle) + slack, encoded_size(bundle) - 1
    max_size = draw(st.integers(low, high))
    return bundle, max_size, fragment_bundle(bundle, max_size)


def ranges_of(fragments: list[Bundle]) -> list[tuple[int, int]]:
    out = []
    for fragment in fragments:
        offset = fragment.primary.fragment_offset
        assert offset is not None
        out.append((offset, offset + len(fragment.payload)))
    return out


@given(fragmented())
def test_fragments_fit_decode_and_tile_the_payload(case: tuple[Bundle, int, list[Bundle]]) -> None:
    bundle, max_size, fragments = case
    assert len(fragments) >= 2
    position = 0
    for index, fragment in enumerate(fragments):
        encoded = encode_bundle(fragment)
        assert len(encoded) <= max_size
        assert decode_bundle(encoded) == fragment
        assert fragment.primary.is_fragment
        assert fragment.primary.total_adu_length == len(bundle.payload)
        assert fragment.primary.fragment_offset == position
        assert len(fragment.payload) >= 1
        if index == 0:
            assert fragment.extension_blocks == bundle.extension_blocks
        else:
            kept = fragment.extension_blocks
            assert all(b.flags & BlockFlag.REPLICATE or b.type_code == 7 for b in kept)
            assert [b for b in bundle.extension_blocks if b.flags & BlockFlag.REPLICATE] == [
                b for b in kept if b.flags & BlockFlag.REPLICATE
            ]
        position += len(fragment.payload)
    assert b"".join(f.payload for f in fragments) == bundle.payload


@given(fragmented(), st.data())
def test_any_permutation_reassembles(
    case: tuple[Bundle, int, list[Bundle]], data: st.DataObject
) -> None:
    bundle, _, fragments = case
    assert reassemble(data.draw(st.permutations(fragments))) == bundle


@given(fragmented(), st.data())
def test_second_episode_overlaps_and_duplicates(
    case: tuple[Bundle, int, list[Bundle]], data: st.DataObject
) -> None:
    bundle, _, fragments = case
    other_size = data.draw(st.integers(smallest_safe_size(bundle), encoded_size(bundle) + 10))
    first_size = data.draw(
        st.none() | st.integers(smallest_safe_size(bundle), encoded_size(bundle))
    )
    second = fragment_bundle(bundle, other_size, first_fragment_size=first_size)
    if second == [bundle]:  # it fitted: no second episode, only duplicates of the first
        pool = list(fragments)
    else:
        # The second episode is complete, so any part of the first may go missing.
        kept = [f for f in fragments if data.draw(st.booleans())]
        pool = [*kept, *second]
    duplicates = data.draw(st.lists(st.sampled_from(pool), max_size=4))
    assert reassemble(data.draw(st.permutations([*pool, *duplicates]))) == bundle


@given(fragmented(slack=40), st.data())
def test_refragmenting_a_fragment(
    case: tuple[Bundle, int, list[Bundle]], data: st.DataObject
) -> None:
    bundle, _, fragments = case
    # With the slack, every fragment but perhaps the last has room to be split again.
    candidates = [i for i, f in enumerate(fragments) if smallest_safe_size(f) < encoded_size(f)]
    assume(candidates)
    index = data.draw(st.sampled_from(candidates))
    target = fragments[index]
    low = smallest_safe_size(target)
    pieces = fragment_bundle(target, data.draw(st.integers(low, encoded_size(target) - 1)))
    assert len(pieces) >= 2
    assert ranges_of(pieces)[0][0] == ranges_of([target])[0][0]
    assert ranges_of(pieces)[-1][1] == ranges_of([target])[0][1]
    assert all(p.primary.total_adu_length == len(bundle.payload) for p in pieces)
    for piece in pieces:
        assert decode_bundle(encode_bundle(piece)) == piece
    rebuilt = fragments[:index] + pieces + fragments[index + 1 :]
    assert reassemble(data.draw(st.permutations(rebuilt))) == bundle


@given(fragmented(), st.data())
def test_dropping_a_fragment_names_the_gap(
    case: tuple[Bundle, int, list[Bundle]], data: st.DataObject
) -> None:
    _, _, fragments = case
    index = data.draw(st.integers(0, len(fragments) - 1))
    dropped = ranges_of([fragments[index]])[0]
    rest = data.draw(st.permutations(fragments[:index] + fragments[index + 1 :]))
    with pytest.raises(MissingFragments) as info:
        reassemble(rest)
    assert info.value.missing == [dropped]
    assert f"[{dropped[0]}, {dropped[1]})" in str(info.value)


@given(bundles(min_payload=2), st.data())
def test_split_at_any_offset(bundle: Bundle, data: st.DataObject) -> None:
    offset = data.draw(st.integers(1, len(bundle.payload) - 1))
    head, tail = split_at(bundle, offset)
    assert head.payload + tail.payload == bundle.payload
    for part in (head, tail):
        assert decode_bundle(encode_bundle(part)) == part
    assert reassemble([tail, head]) == bundle


@given(fragmented(), st.data())
def test_collector_tracks_missing_ranges(
    case: tuple[Bundle, int, list[Bundle]], data: st.DataObject
) -> None:
    bundle, _, fragments = case
    second = fragment_bundle(bundle, data.draw(st.integers(smallest_safe_size(bundle), 2000)))
    pool = [*fragments, *(f for f in second if f.primary.is_fragment)]
    order = data.draw(st.permutations(pool))
    collector = FragmentCollector()
    covered = bytearray(len(bundle.payload))
    results = []
    for fragment in order:
        result = collector.add(fragment)
        if result is not None:
            results.append(result)
        start, end = ranges_of([fragment])[0]
        covered[start:end] = b"\x01" * (end - start)
        gaps = []
        position = 0
        while position < len(covered):
            if covered[position]:
                position += 1
                continue
            end = covered.find(b"\x01", position)
            end = len(covered) if end < 0 else end
            gaps.append((position, end))
            position = end
        assert collector.missing() == gaps
        assert collector.received_length == sum(covered)
    assert results == [bundle]
