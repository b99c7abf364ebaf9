"""Reactive fragmentation: for any bundle and any cut, the receiver's prefix fragment and the
sender's remainder put the bundle back together, and neither side ever raises anything but a
codec error."""

from __future__ import annotations

import contextlib

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from dtncloud.bpv7 import Bundle, BundleFlag, decode_bundle, encode_bundle, reassemble, split_at
from dtncloud.bpv7.reactive import acknowledged_payload, prefix_fragment
from dtncloud.errors import CodecError
from tests.strategies import bundles


@settings(max_examples=60)
@given(
    bundle=bundles(unknown_blocks_allowed=True, admin=False, max_payload_size=300),
    cut=st.floats(0, 1),
    extra=st.integers(0, 40),
)
def test_prefix_and_rest_reassemble_to_the_original(bundle: Bundle, cut: float, extra: int) -> None:
    assume(not bundle.primary.flags & BundleFlag.MUST_NOT_FRAGMENT)
    wire = encode_bundle(bundle)
    acknowledged = int(len(wire) * cut)
    kept = acknowledged_payload(wire, acknowledged)
    # the receiver may hold a few bytes more than it acknowledged
    received = min(len(wire), acknowledged + extra)
    fragment = prefix_fragment(wire[:received])
    payload = bundle.payload
    if fragment is None:
        return
    assert payload.startswith(fragment.payload)
    assert len(fragment.payload) >= kept
    fragment = decode_bundle(encode_bundle(fragment))  # it is a valid bundle
    if not 0 < kept < len(payload):
        return  # the sender sends the whole bundle again (or nothing is left to send)
    rest = split_at(bundle, kept)[1]
    if bundle.primary.fragment_offset is None:
        assert reassemble([fragment, rest]).payload == payload
    else:  # both are pieces of the same original, adjacent or overlapping
        assert rest.primary.fragment_offset == bundle.primary.fragment_offset + kept
        assert fragment.primary.fragment_offset == bundle.primary.fragment_offset


@given(data=st.binary(max_size=200), cut=st.integers(0, 200))
def test_prefix_fragment_of_arbitrary_bytes_raises_only_codec_errors(data: bytes, cut: int) -> None:
    with contextlib.suppress(CodecError):
        prefix_fragment(b"\x9f" + data[:cut])
