"""peek_bundle_id: the bundle ID from the first bytes of an encoded bundle."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dtncloud.bpv7 import Bundle, encode_bundle, fragment_bundle, peek_bundle_id
from tests.strategies import bundles


@given(bundle=bundles(), cut=st.integers(min_value=0, max_value=200))
def test_peek_agrees_with_decode_or_waits_for_more(bundle: Bundle, cut: int) -> None:
    data = encode_bundle(bundle)
    peeked = peek_bundle_id(data[:cut])
    if bundle.primary.fragment_offset is not None:
        assert peeked is None
    else:
        assert peeked in (None, bundle.id)
        assert peek_bundle_id(data) == bundle.id


def test_whole_primary_block_is_enough() -> None:
    bundle = Bundle.create(
        source="ipn:7.1", destination="ipn:9.2", payload=b"p" * 10_000, creation_time=123
    )
    data = encode_bundle(bundle)
    assert peek_bundle_id(data[:80]) == bundle.id
    assert peek_bundle_id(data[:5]) is None


def test_garbage_and_fragments_give_none() -> None:
    assert peek_bundle_id(b"") is None
    assert peek_bundle_id(b"\x06\x00\x01") is None
    assert peek_bundle_id(b"\x9f\x89\xff") is None
    bundle = Bundle.create(
        source="ipn:7.1", destination="ipn:9.2", payload=b"p" * 100, creation_time=1
    )
    first = fragment_bundle(bundle, 60)[0]
    assert peek_bundle_id(encode_bundle(first)) is None
